"""A readable timeline of one dispatch, from its history.

What an event implies without saying it (when a submitted step fails over)
comes from the failover rules' own fold of the history (:class:`Narration`),
not from a second reading of the workflow.
"""

from __future__ import annotations

import contextlib
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from events.codec import UndecodableMessage, decode_event
from services.failover.fold import apply as fold
from services.failover.state import DispatchState
from services.failover.workflow import InvalidWorkflow


class Narration:
    """Describes a dispatch's events in log order, folding each into the
    rules' state first, so a line can say what the event meant."""

    def __init__(self) -> None:
        self.state: DispatchState | None = None

    def describe(self, event: dict[str, Any]) -> str:
        # One the rules cannot read is described from the record alone.
        with contextlib.suppress(UndecodableMessage, InvalidWorkflow):
            self.state = fold(self.state, decode_event(orjson.dumps(event)))
        return describe(event, self.state)


def describe(event: dict[str, Any], state: DispatchState | None = None) -> str:
    """One line a person can read for one event (``state``: the dispatch as the
    rules' fold has it just after this event, for what the event implies)."""
    kind = event["type"]
    step = event.get("step")
    where = f"step {step}" if step is not None else ""
    match kind:
        case "WorkflowRequested":
            channels = ", ".join(str((i.get("to") or {}).get("type")) for i in event["workflow"])
            return f"requested by {event['application_id']}: {channels}"
        case "StepStarted":
            # Its deadline_at is a 24 h guard against a send that never
            # completes, not the failover deadline (that one counts from the
            # submission, below): saying it here would mislead the reader.
            return f"{where}: send over {event['channel']}"
        case "MessageSubmitted":
            accepted = f"{where}: accepted by the provider as {event['message_uuid']}"
            armed = _failover_deadline(state, step)
            return f"{accepted}; fails over at {armed}" if armed else accepted
        case "MessageOutcomeUnknown":
            return (
                f"{where}: no answer from the provider ({event['reason']}); not sent again, "
                "waiting for a status naming it or the deadline"
            )
        case "MessageSendFailed":
            error = event["error"]
            return f"{where}: send failed ({error.get('code')}: {error.get('reason')})"
        case "MessageStatusReceived":
            price = (event.get("usage") or {}).get("price")
            extra = f", price {price}" if price else ""
            error = event.get("error")
            if error:
                extra += f", error {error.get('code')}: {error.get('reason')}"
            return f"{where or event['message_uuid']}: status {event['status']}{extra}"
        case "TimerScheduled":
            if event["reason"] == "final_step_limit":
                return (
                    f"{where}: the dispatch ends in error if this message has no final "
                    f"status by {event['deadline_at']} (final step limit)"
                )
            return f"{where}: timer ({event['reason']}) due {event['deadline_at']}"
        case "StepTimedOut":
            return f"{where}: deadline {event['deadline_at']} passed, failing over"
        case "WorkflowCompleted":
            return f"completed by {where}"
        case "WorkflowFailed":
            return f"ended in error at {where}: {event['reason']}"
        case "UsageAmended":
            return (
                f"usage amended: total now {event['total']['price']} {event['total']['currency']}"
            )
        case "WebhookDelivered":
            return (
                f"{event['kind']} webhook delivered (HTTP {event['http_status']}, "
                f"{event['attempts']} attempt(s))"
            )
        case "WebhookAttemptFailed":
            redelivery = f" (redelivery {event['round']})" if event.get("round") else ""
            return (
                f"{event['kind']} webhook attempt {event['attempt']}{redelivery} failed: "
                f"{event['answer']}; next attempt at {event['next_attempt_at']}"
            )
        case "WebhookAbandoned":
            return (
                f"{event['kind']} webhook abandoned after {event['attempts']} attempt(s): "
                f"{event['reason']}"
            )
        case _:
            return kind


def _failover_deadline(state: DispatchState | None, step: Any) -> str | None:
    """``<deadline> unless <condition> by then`` for a non-last step its
    submission armed (the last step has no failover)."""
    if state is None or not isinstance(step, int):
        return None
    folded = state.step(step)
    if folded is None or folded.deadline_at is None or not folded.armed_on_submission:
        return None
    if state.is_last(step):
        return None
    condition = state.workflow.failover(step).condition_status
    return f"{folded.deadline_at.isoformat()} unless {condition} by then"


def timeline(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    narration = Narration()
    entries = []
    for entry in history:
        entries.append(
            {
                "at": entry["occurred_at"],
                "type": entry["type"],
                "what": narration.describe(entry["event"]),
                "offset": entry["offset"],
            }
        )
    return entries


def render_timeline(view: dict[str, Any], entries: list[dict[str, Any]]) -> None:
    console = Console()
    usage = view["usage"]
    console.print(
        f"[bold]{view['dispatch_uuid']}[/bold]  status [bold]{view['status']}[/bold]  "
        f"usage {usage['price']} {usage['currency']}"
    )
    table = Table(show_header=True, header_style="bold")
    table.add_column("at")
    table.add_column("event")
    table.add_column("what")
    for entry in entries:
        table.add_row(entry["at"], entry["type"], entry["what"])
    console.print(table)
