"""A readable timeline of one dispatch, from its history."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def describe(event: dict[str, Any]) -> str:
    """One line a person can read for one event."""
    kind = event["type"]
    step = event.get("step")
    where = f"step {step}" if step is not None else ""
    match kind:
        case "WorkflowRequested":
            channels = ", ".join(str((i.get("to") or {}).get("type")) for i in event["workflow"])
            return f"requested by {event['application_id']}: {channels}"
        case "StepStarted":
            guard = event.get("deadline_at")
            limit = f"; ends by {guard} unless submitted" if guard else ""
            return f"{where}: send over {event['channel']}{limit}"
        case "MessageSubmitted":
            return f"{where}: accepted by the provider as {event['message_uuid']}"
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
        case "WebhookAbandoned":
            return (
                f"{event['kind']} webhook abandoned after {event['attempts']} attempt(s): "
                f"{event['reason']}"
            )
        case _:
            return kind


def timeline(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "at": entry["occurred_at"],
            "type": entry["type"],
            "what": describe(entry["event"]),
            "offset": entry["offset"],
        }
        for entry in history
    ]


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
