"""The seed's rules that tie fields together, as pure functions over the parsed
JSON body.

They run on the raw body (not on the pydantic models) so that a request with a
wrong type in one message still gets every other broken rule reported. Each
check is defensive about types: a field of the wrong JSON type is reported by
the models in :mod:`services.gateway.schema`, not here.
"""

from __future__ import annotations

import re
from typing import Any, get_args

from events.dispatch import Channel
from services.gateway.message_rules import InvalidParameter, check_message, object_or_empty

__all__ = ["InvalidParameter", "check_dispatch", "check_item"]

CHANNELS: tuple[str, ...] = get_args(Channel)

# Which address field each channel needs, per side (seed: "The ID of the message
# recipient", "The phone number of the message sender", ...).
TO_NEEDS = {
    "sms": "number",
    "mms": "number",
    "whatsapp": "number",
    "viber_service_msg": "number",
    "messenger": "id",
}
FROM_NEEDS = {
    "sms": "number",
    "mms": "number",
    "whatsapp": "number",
    "viber_service_msg": "id",
    "messenger": "id",
}

EXPIRY_MIN, EXPIRY_MAX = 15, 86_400

# E.164 without ``+`` or ``00``: country code first (never 0), 7 to 15 digits.
E164 = re.compile(r"[1-9][0-9]{6,14}")


def check_dispatch(body: Any) -> list[InvalidParameter]:
    """Every cross-field rule of the seed that ``body`` breaks."""
    if not isinstance(body, dict) or not isinstance(body.get("workflow"), list):
        return []
    workflow: list[Any] = body["workflow"]
    problems: list[InvalidParameter] = []
    for index, item in enumerate(workflow):
        if isinstance(item, dict):
            problems.extend(check_item(item, f"workflow[{index}]", last=index == len(workflow) - 1))
    return problems


def _channel(value: Any) -> str | None:
    kind = object_or_empty(value).get("type")
    return kind if kind in CHANNELS else None


def check_item(item: dict[str, Any], path: str, *, last: bool) -> list[InvalidParameter]:
    problems: list[InvalidParameter] = []
    to_channel = _channel(item.get("to"))
    from_channel = _channel(item.get("from"))
    if to_channel and from_channel and to_channel != from_channel:
        problems.append(
            InvalidParameter(
                f"{path}.from.type",
                f"must equal to.type ({to_channel!r}): one message travels over one channel",
            )
        )
    if to_channel:
        problems += _check_address(item["to"], f"{path}.to", TO_NEEDS[to_channel], to_channel)
    if from_channel:
        problems += _check_address(
            item["from"], f"{path}.from", FROM_NEEDS[from_channel], from_channel
        )
    problems += _check_failover(item, path, last=last)
    channel = to_channel or from_channel
    message = item.get("message")
    if channel and isinstance(message, dict):
        problems += check_message(message, f"{path}.message", channel)
    return problems


def _check_address(
    endpoint: dict[str, Any], path: str, needs: str, channel: str
) -> list[InvalidParameter]:
    problems: list[InvalidParameter] = []
    if endpoint.get(needs) is None:
        problems.append(InvalidParameter(f"{path}.{needs}", f"is required for channel {channel}"))
    number = endpoint.get("number")
    if isinstance(number, str) and not E164.fullmatch(number):
        problems.append(
            InvalidParameter(
                f"{path}.number",
                "must be an E.164 number without a leading + or 00, "
                "starting with the country code (e.g. 447700900000)",
            )
        )
    ident = endpoint.get("id")
    if isinstance(ident, str) and not ident.strip():
        problems.append(InvalidParameter(f"{path}.id", "must not be empty"))
    return problems


def _check_failover(item: dict[str, Any], path: str, *, last: bool) -> list[InvalidParameter]:
    failover = item.get("failover")
    if last:
        if failover is not None:
            return [InvalidParameter(f"{path}.failover", "must not be set on the last message")]
        return []
    if failover is None:
        return [InvalidParameter(f"{path}.failover", "is required on every message but the last")]
    expiry = object_or_empty(failover).get("expiry_time")
    if isinstance(expiry, int) and not EXPIRY_MIN <= expiry <= EXPIRY_MAX:
        return [
            InvalidParameter(
                f"{path}.failover.expiry_time",
                f"must be between {EXPIRY_MIN} and {EXPIRY_MAX} seconds",
            )
        ]
    return []
