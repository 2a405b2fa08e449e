"""A log recorded before the rules moved to ``services/failover`` (event schema
version 1, the processor's stored states of then), replayed through today's
code: the same decisions, commands, ids and final reports, and the same
stored states, record by record."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from events.codec import decode_event, decode_send, decode_webhook, encode
from events.commands import DeliverWebhook
from services.failover.decide import Policy
from services.processor.engine import Stores, process
from services.processor.state_codec import decode_state, encode_state
from tests.unit.failover.record_fixture import FIXTURE


def recorded() -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in FIXTURE.read_bytes().splitlines() if line]


def _today(output: dict[str, Any]) -> bytes:
    """A recorded output as today's code reads it (older versions upgraded)."""
    raw = orjson.dumps(output)
    if output["type"] == "SendMessage":
        return encode(decode_send(raw))
    if output["type"] == "DeliverWebhook":
        return encode(decode_webhook(raw))
    return encode(decode_event(raw))


def test_the_fixture_holds_every_scenario_in_the_old_shapes() -> None:
    lines = recorded()
    types = {line["record"]["type"] for line in lines}
    assert {"MessageOutcomeUnknown", "MessageSendFailed", "StepTimedOut", "UsageAmended"} <= types
    assert {"WebhookDelivered", "WebhookAbandoned", "TimerScheduled", "Tick"} <= types
    versions = {line["record"]["schema_version"] for line in lines}
    assert versions == {1}
    finals = [o for line in lines for o in line["outputs"] if o.get("kind") == "final"]
    assert {f["payload"]["status"] for f in finals} == {"completed", "error"}


def test_replaying_the_recorded_log_takes_the_same_decisions() -> None:
    stores = Stores(dispatches={}, buckets={}, cursors={})
    compared = 0
    for line in recorded():
        event = decode_event(orjson.dumps(line["record"]))
        result = process(stores, 0, line["offset"], event, Policy())
        assert result.rejected is None
        produced = [encode(o) for o in result.outputs]
        expected = [_today(o) for o in line["outputs"]]
        assert produced == expected, f"offset {line['offset']}: {line['record']['type']}"
        compared += len(expected)
        dispatch = line["record"].get("dispatch_uuid")
        if line["state"] is not None:
            assert stores.dispatches[dispatch] == orjson.dumps(line["state"])
    assert compared == 76  # every output of the fixture


@pytest.mark.parametrize("line", [n for n in recorded() if n["state"] is not None][::7])
def test_a_state_stored_then_loads_and_stores_the_same_bytes(line: dict[str, Any]) -> None:
    stored = orjson.dumps(line["state"])
    state = decode_state(stored)
    assert encode_state(state) == stored
    if state.steps and state.steps[0].started_at is not None:
        # Times are times now, not text.
        assert state.steps[0].started_at.tzinfo is not None


def test_final_reports_replayed_are_those_recorded() -> None:
    stores = Stores(dispatches={}, buckets={}, cursors={})
    reports: list[dict[str, Any]] = []
    for line in recorded():
        result = process(
            stores, 0, line["offset"], decode_event(orjson.dumps(line["record"])), Policy()
        )
        reports.extend(
            o.payload for o in result.outputs if isinstance(o, DeliverWebhook) and o.kind == "final"
        )
    expected = [
        o["payload"] for line in recorded() for o in line["outputs"] if o.get("kind") == "final"
    ]
    assert reports == expected
