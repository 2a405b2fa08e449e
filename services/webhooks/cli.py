"""``dispatch webhooks ...``"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import click
from aiokafka.errors import KafkaError

from events.codec import encode
from services.kafka import KafkaSettings, make_producer
from services.webhooks.state import DeliveryState, latest_states


@click.group()
def webhooks() -> None:
    """Inspect and redeliver webhooks."""


def select(
    states: list[DeliveryState],
    *,
    dispatch: uuid.UUID | None,
    since: datetime | None,
    abandoned: bool,
) -> list[DeliveryState]:
    """Finished webhooks matching every filter given, in their original order.

    Pending ones are left out: they are still being delivered anyway.
    """
    chosen = [
        s
        for s in states
        if s.phase != "pending"
        and (dispatch is None or s.command.dispatch_uuid == dispatch)
        and (since is None or s.command.occurred_at >= since)
        and (not abandoned or s.phase == "abandoned")
    ]
    return sorted(chosen, key=lambda s: (s.source_partition, s.source_offset))


async def _redeliver(
    settings: KafkaSettings,
    *,
    dispatch: uuid.UUID | None,
    since: datetime | None,
    abandoned: bool,
    dry_run: bool,
) -> list[DeliveryState]:
    states = await latest_states(settings)
    chosen = select(list(states.values()), dispatch=dispatch, since=since, abandoned=abandoned)
    if dry_run or not chosen:
        return chosen
    producer = make_producer(settings)
    await producer.start()
    try:
        futures = [
            await producer.send(
                settings.topics.webhooks,
                encode(state.command.replace(redeliver=True)),
                key=str(state.command.dispatch_uuid).encode(),
                # The partition it came from: that is where its state lives.
                partition=state.source_partition,
            )
            for state in chosen
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return chosen


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@webhooks.command()
@click.option("--dispatch", "dispatch", type=click.UUID, help="Only this dispatch's webhooks.")
@click.option(
    "--since",
    type=click.DateTime(["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"]),
    metavar="TIME",
    help="Only webhooks created at or after this time (ISO 8601; UTC if no offset).",
)
@click.option("--abandoned", is_flag=True, help="Only webhooks that were abandoned.")
@click.option("--dry-run", is_flag=True, help="List what would be redelivered; send nothing.")
def redeliver(
    dispatch: uuid.UUID | None, since: datetime | None, abandoned: bool, dry_run: bool
) -> None:
    """Send delivered or abandoned webhooks again, with the same webhook ids."""
    if dispatch is None and since is None and not abandoned:
        raise click.UsageError("give at least one of --dispatch, --since, --abandoned")
    settings = KafkaSettings.from_env()
    try:
        chosen = asyncio.run(
            _redeliver(
                settings,
                dispatch=dispatch,
                since=_aware(since) if since is not None else None,
                abandoned=abandoned,
                dry_run=dry_run,
            )
        )
    except KafkaError as exc:
        raise click.ClickException(
            f"Kafka at {settings.bootstrap_servers} failed: {type(exc).__name__}: {exc}"
        ) from exc
    for state in chosen:
        click.echo(
            f"{state.webhook_id}  {state.command.kind:<6} dispatch {state.command.dispatch_uuid}"
            f"  was {state.phase} after {state.attempts} attempt(s)"
        )
    verb = "would be redelivered" if dry_run else "queued for redelivery"
    click.echo(f"{len(chosen)} webhook(s) {verb}")
