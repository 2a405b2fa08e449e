"""A readable timeline of one dispatch, from its history."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from rich.console import Console
from rich.table import Table


def describe(event: dict[str, Any], workflow: list[dict[str, Any]] | None = None) -> str:
    """One line a person can read for one event (``workflow``: the dispatch's
    request, for what an event implies without saying it)."""
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
            expiry = _expiry_time(workflow or [], step)
            if expiry is None:
                return accepted
            deadline = datetime.fromisoformat(event["occurred_at"]) + timedelta(seconds=expiry)
            condition = _condition(workflow or [], step)
            return f"{accepted}; fails over at {deadline.isoformat()} unless {condition}"
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


def _expiry_time(workflow: list[dict[str, Any]], step: Any) -> int | None:
    """A non-last step's expiry_time (the last step has no failover)."""
    if not isinstance(step, int) or not 0 <= step < len(workflow) - 1:
        return None
    expiry = (workflow[step].get("failover") or {}).get("expiry_time")
    return int(expiry) if expiry is not None else None


def _condition(workflow: list[dict[str, Any]], step: Any) -> str:
    condition = (workflow[step].get("failover") or {}).get("condition_status")
    return f"{condition or 'delivered'} by then"


def timeline(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    workflow: list[dict[str, Any]] = []
    entries = []
    for entry in history:
        event = entry["event"]
        if entry["type"] == "WorkflowRequested":
            workflow = event.get("workflow") or []
        entries.append(
            {
                "at": entry["occurred_at"],
                "type": entry["type"],
                "what": describe(event, workflow),
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
