"""Bodies of the webhooks, shaped as the seed shows (status and final report)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from events.dispatch import MessageStatusReceived
from services.failover.state import DispatchState, Outcome, StepState


def seed_timestamp(moment: datetime) -> str:
    """``2020-01-01T14:00:00.000Z``: UTC, milliseconds, as the seed writes it."""
    # isoformat: C code, several times faster than strftime. A UTC time (what
    # the log holds) needs no conversion, only its offset written as "Z".
    text = moment.isoformat(timespec="milliseconds")
    if text.endswith("+00:00"):
        return text[:-6] + "Z"
    utc = moment.astimezone(UTC).replace(tzinfo=None)
    return utc.isoformat(timespec="milliseconds") + "Z"


def workflow_link(dispatch_uuid: str) -> dict[str, Any]:
    return {"workflow": {"dispatch_uuid": dispatch_uuid, "href": f"/workflows/{dispatch_uuid}"}}


def status_payload(dispatch_uuid: str, status: MessageStatusReceived) -> dict[str, Any]:
    body: dict[str, Any] = {
        "message_uuid": status.message_uuid,
        "to": status.to,
        "from": status.from_,
        "timestamp": seed_timestamp(status.timestamp),
        "status": status.status,
    }
    if status.error is not None:
        body["error"] = status.error.model_dump(exclude_none=True)
    if status.usage is not None:
        body["usage"] = {"currency": status.usage.currency, "price": status.usage.price}
    body["dispatch_uuid"] = dispatch_uuid
    body["_links"] = workflow_link(dispatch_uuid)
    return body


def message_id_of(step: StepState) -> str:
    """A failed send has no provider message_uuid; the command id (passed to the
    provider as client_ref) stands in for it so the client can still correlate."""
    return step.message_uuid or step.command_id


def send_failure_payload(state: DispatchState, step: StepState) -> dict[str, Any]:
    failure = step.send_failed
    assert failure is not None
    item = state.workflow.as_sent[step.index]
    error: dict[str, Any] = {"reason": failure.reason}
    if failure.code is not None:
        error = {"code": failure.code, **error}
    return {
        "message_uuid": message_id_of(step),
        "to": item.get("to", {}),
        "from": item.get("from", {}),
        "timestamp": seed_timestamp(failure.at),
        "status": "rejected",
        "error": error,
        "dispatch_uuid": state.dispatch_uuid,
        "_links": workflow_link(state.dispatch_uuid),
    }


def message_status(step: StepState) -> str | None:
    """What a step's message came to, as the final report and the view show it
    (None: the step never reached the provider)."""
    if step.message_uuid is None and step.send_failed is None:
        return None
    if step.statuses:
        return step.statuses[-1]
    return "rejected" if step.send_failed is not None else "submitted"


def _message_link(state: DispatchState, step: StepState) -> dict[str, Any] | None:
    status = message_status(step)
    if status is None:
        return None  # started but never reached the provider: nothing to link
    message_id = message_id_of(step)
    link: dict[str, Any] = {"message_uuid": message_id, "href": message_id, "channel": step.channel}
    usage = state.usage.get(message_id)
    if usage is not None:
        link["usage"] = {"currency": usage["currency"], "price": usage["price"]}
    link["status"] = status
    return link


def final_report_payload(state: DispatchState, outcome: Outcome, at: datetime) -> dict[str, Any]:
    links = [link for step in state.steps if (link := _message_link(state, step)) is not None]
    return {
        "dispatch_uuid": state.dispatch_uuid,
        "template": "failover",
        "status": outcome,
        "timestamp": seed_timestamp(at),
        "usage": state.total_usage(),
        "_links": {"messages": links},
    }
