"""How events reach the fold agent: the processor's two hooks into faust's
consumer take effect (each reaches into faust, so each is pinned here)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from faust.types import TP, Message

from services.processor.app import build_app
from services.processor.config import ProcessorConfig
from services.processor.intake import ORIGIN_HEADER, EventsTopic, OwnDecision


def message(value: bytes, headers: list[tuple[str, bytes]] | None) -> Message:
    return Message(
        "t.dispatch.events", 0, 7, 0.0, 0, headers, b"k", value, None, tp=TP("t.dispatch.events", 0)
    )


def events_topic(app: Any) -> EventsTopic:
    (agent,) = app.agents.values()
    assert isinstance(agent.channel, EventsTopic)
    return agent.channel


async def test_the_worker_consumer_fetches_with_the_configured_wait(tmp_path: Path) -> None:
    # faust itself passes 1.5 s, which stalls intake behind empty partitions.
    app = build_app(ProcessorConfig(store="memory://", data_dir=tmp_path, fetch_max_wait_ms=123))
    thread = app.consumer._thread  # type: ignore[attr-defined]
    consumer = thread._create_worker_consumer(app.transport)
    try:
        assert consumer._fetch_max_wait_ms == 123
    finally:
        await consumer.stop()
        thread.thread_loop.close()  # made for the thread that never ran


async def test_own_decisions_are_dropped_while_decoding_and_others_pass(tmp_path: Path) -> None:
    app = build_app(ProcessorConfig(store="memory://", data_dir=tmp_path))
    topic = events_topic(app)
    with pytest.raises(OwnDecision):
        await topic.decode(message(b"decision", [ORIGIN_HEADER]), propagate=True)
    event = await topic.decode(message(b"input", [("other", b"x")]), propagate=True)
    assert event.value == b"input"
    # Dropping one is not an error: nothing is raised into the agent's stream.
    await topic.on_value_decode_error(OwnDecision(), message(b"decision", [ORIGIN_HEADER]))
