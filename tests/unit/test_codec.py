"""The codec's fast path writes exactly what pydantic-core writes, for every
output the engine makes, and falls back to pydantic where orjson cannot go."""

from __future__ import annotations

import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events.base import Message
from events.codec import decode_webhook, encode
from events.commands import DeliverWebhook
from events.dispatch import Tick
from tests.fixtures_events import T0
from tests.unit.processor.test_properties import actions, run


def pydantic_bytes(message: Message) -> bytes:
    return message.__pydantic_serializer__.to_json(message, by_alias=True)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    steps=st.integers(1, 5),
    condition=st.sampled_from(["delivered", "read"]),
    actions=actions,
)
def test_every_engine_output_encodes_as_pydantic_would(
    steps: int, condition: str, actions: list[tuple[object, ...]]
) -> None:
    h = run(steps, condition, actions)
    assert h.outputs
    for output in h.outputs:
        assert encode(output) == pydantic_bytes(output), output


def test_a_tick_at_a_whole_second_encodes_as_pydantic_would() -> None:
    tick = Tick(partition=3, now=T0)  # no microseconds: both omit the fraction
    assert encode(tick) == pydantic_bytes(tick)


def test_an_integer_beyond_64_bits_in_a_payload_still_encodes() -> None:
    big = 2**70
    webhook = DeliverWebhook(
        dispatch_uuid=uuid.uuid4(),
        application_id="app-1",
        kind="status",
        payload={"custom": {"n": big}},
    )
    assert decode_webhook(encode(webhook)).payload == {"custom": {"n": big}}
