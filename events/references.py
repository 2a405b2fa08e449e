"""The reference a message is sent with (the Messages API's ``client_ref``).

It names the dispatch and the step, so a status callback that carries it is
routed to its dispatch without an index of every message ever sent, and a
send whose outcome is unknown (the provider never answered) still learns its
message from the first status that names it. One per command: the sender
never sends the same reference twice.
"""

from __future__ import annotations

import uuid

_SEPARATOR = ":"


def client_ref(dispatch_uuid: uuid.UUID | str, step: int) -> str:
    return f"{dispatch_uuid}{_SEPARATOR}{step}"


def parse_client_ref(text: str | None) -> tuple[uuid.UUID, int] | None:
    """(dispatch, step) from a reference this system made, or None for anything
    else (a provider echoing someone else's reference, garbage)."""
    if not text or len(text) > 64:
        return None
    dispatch, separator, step = text.rpartition(_SEPARATOR)
    if not separator or not step.isascii() or not step.isdigit() or len(step) > 4:
        return None
    try:
        return uuid.UUID(dispatch), int(step)
    except ValueError:
        return None
