"""Every body the gateway accepts can be carried by every consumer: nesting
beyond 32 levels and integers beyond ±(2^53 - 1) are refused with a 422
naming the path, and whatever is accepted decodes, unchanged, through the
decoders of the processor and projector (``dispatch.events``) and the sender
(``dispatch.send``)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events.codec import decode_event, decode_send, encode
from events.commands import SendMessage
from events.dispatch import WorkflowRequested
from services.gateway import json_limits
from tests.unit.gateway.fakes import basic, valid_dispatch
from tests.unit.gateway.test_http import Gateway, assert_problem, gw, make_gateway


def custom_dispatch(custom: Any) -> dict[str, Any]:
    body = valid_dispatch()
    body["workflow"][0]["message"]["content"] = {"type": "custom", "custom": custom}
    return body


def nested(depth: int) -> bytes:
    """``{"a": {"a": ... 1}}``, ``depth`` objects deep, as text (orjson
    refuses to write more than 255 levels)."""
    return b'{"a":' * depth + b"1" + b"}" * depth


def with_custom(custom: bytes) -> bytes:
    return orjson.dumps(custom_dispatch("PLACEHOLDER")).replace(b'"PLACEHOLDER"', custom)


__all__ = ["gw"]  # the fixture, shared with test_http

CUSTOM_PATH = "workflow[0].message.content.custom"


@pytest.mark.parametrize("depth", [40, 220, 1000])
async def test_a_payload_nested_too_deep_is_422_naming_where(gw: Gateway, depth: int) -> None:
    # 220 levels used to get 202 and then decode nowhere; 1000 a 500.
    raw = with_custom(nested(depth))
    problem = assert_problem(await gw.post(raw=raw, auth=basic()), 422)
    (param,) = problem["invalid_parameters"]
    assert param["name"].startswith(CUSTOM_PATH + ".a.a")
    assert "nested deeper than 32 levels" in param["reason"]
    assert gw.event_log.appended == []


async def test_nesting_within_the_limit_is_accepted(gw: Gateway) -> None:
    response = await gw.post(raw=with_custom(nested(24)), auth=basic())
    assert response.status_code == 202, response.text


@pytest.mark.parametrize(
    "literal",
    [b"9007199254740992", b"-9007199254740992", b"18446744073709551616", b"1" + b"0" * 30],
)
async def test_integers_no_consumer_carries_exactly_are_422_never_changed(
    gw: Gateway, literal: bytes
) -> None:
    raw = with_custom(b'{"id":' + literal + b"}")
    problem = assert_problem(await gw.post(raw=raw, auth=basic()), 422)
    (param,) = problem["invalid_parameters"]
    assert param["name"] == CUSTOM_PATH + ".id"
    assert "as a string" in param["reason"]
    assert gw.event_log.appended == []


async def test_large_floats_and_safe_integers_are_accepted(gw: Gateway) -> None:
    custom = {"max": 9007199254740991, "min": -9007199254740991, "big": 1e300, "pi": 3.14}
    assert (await gw.post(custom_dispatch(custom), auth=basic())).status_code == 202


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=40,
)


def deepen(value: Any, depth: int) -> Any:
    for _ in range(depth):
        value = [value]
    return value


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(custom=json_values, extra_depth=st.integers(min_value=0, max_value=300))
async def test_every_accepted_body_decodes_unchanged_in_every_consumer(
    custom: Any, extra_depth: int
) -> None:
    body = custom_dispatch({"payload": deepen(custom, extra_depth)})
    async for gateway in make_gateway():
        # The standard library writes any depth (orjson stops at 255).
        response = await gateway.post(raw=json.dumps(body).encode(), auth=basic())
        assert response.status_code in (202, 422), response.text
        if response.status_code == 422:
            continue
        (event,) = gateway.event_log.appended
        assert isinstance(event, WorkflowRequested)
        # dispatch.events: the processor's and the projector's decoder.
        decoded = decode_event(encode(event))
        assert isinstance(decoded, WorkflowRequested)
        assert orjson.dumps(decoded.workflow) == orjson.dumps(body["workflow"])
        # dispatch.send: the sender's decoder, for each step's message.
        for step, item in enumerate(decoded.workflow):
            message = {k: v for k, v in item.items() if k != "failover"}
            command = SendMessage(
                dispatch_uuid=uuid.uuid4(), application_id="app-1", step=step, message=message
            )
            assert decode_send(encode(command)).message == message


@settings(max_examples=300, deadline=None)
@given(custom=json_values, extra_depth=st.integers(min_value=0, max_value=40))
def test_the_quick_scan_refuses_nothing_the_full_walk_would(custom: Any, extra_depth: int) -> None:
    # The quick scan lets a body through without naming paths; it must never
    # let through one the full walk refuses.
    raw = json.dumps(custom_dispatch({"payload": deepen(custom, extra_depth)})).encode()
    value = orjson.loads(raw)
    if json_limits._plainly_within_limits(value, json_limits.MAX_DEPTH):
        assert json_limits._problems_by_walk(value, raw, json_limits.MAX_DEPTH) == []
