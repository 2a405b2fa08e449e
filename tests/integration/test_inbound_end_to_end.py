"""End to end on the real broker: a SendMessage on dispatch.send becomes
MessageSubmitted, and the simulator's signed status callbacks come back through
the inbound endpoint as MessageStatusReceived on the dispatch's partition."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from events.codec import encode
from events.dispatch import (
    MessageSendFailed,
    MessageStatusReceived,
    MessageSubmitted,
    WorkflowRequested,
)
from services.kafka import KafkaSettings, make_producer
from tests.integration.test_sender_support import (
    SIGNATURE_SECRET,
    decoded,
    inbound_server,
    send_commands,
    sms_command,
    start_sender,
    start_simulator,
)
from tests.kafka_helpers import read_records
from tests.processes import Process

pytestmark = pytest.mark.kafka


async def _mark_dispatch(settings: KafkaSettings, dispatch: uuid.UUID) -> None:
    """Put the dispatch's first event on the log, as the gateway would."""
    producer = make_producer(settings)
    await producer.start()
    try:
        event = WorkflowRequested(dispatch_uuid=dispatch, application_id="app-1", workflow=[])
        await producer.send_and_wait(
            settings.topics.events, encode(event), key=str(dispatch).encode()
        )
    finally:
        await producer.stop()


async def test_statuses_flow_back_as_events_on_the_dispatchs_partition(
    kafka_settings: KafkaSettings, processes: list[Process], tmp_path: Path
) -> None:
    async with inbound_server(kafka_settings, signature_secret=SIGNATURE_SECRET) as (url, _):
        _, base_url = start_simulator(
            processes,
            tmp_path,
            SIMULATOR_CALLBACK_URL=f"{url}/v0.1/status",
            SIMULATOR_SIGNATURE_SECRET=SIGNATURE_SECRET,
            SIMULATOR_SPEED="5",
        )
        start_sender(processes, kafka_settings, tmp_path, base_url)

        read_dispatch, undeliverable_dispatch, refused_dispatch = (uuid.uuid4() for _ in range(3))
        for dispatch in (read_dispatch, undeliverable_dispatch, refused_dispatch):
            await _mark_dispatch(kafka_settings, dispatch)
        await send_commands(
            kafka_settings,
            [
                sms_command("447700900000", dispatch=read_dispatch),
                sms_command("447700900003", dispatch=undeliverable_dispatch),
                sms_command("447700900002", dispatch=refused_dispatch),
            ],
        )
        # 3 markers, 2 submitted + 1 failed, 3 statuses + 2 statuses.
        records = await read_records(
            kafka_settings,
            kafka_settings.topics.events,
            until=lambda rs: len(rs) >= 11,
            timeout=40,
        )

    events = decoded(records)
    by_dispatch: dict[uuid.UUID, list[tuple[int, object]]] = {}
    for partition, event in events:
        by_dispatch.setdefault(event.dispatch_uuid, []).append((partition, event))

    for dispatch, timeline in by_dispatch.items():
        partitions = {p for p, _ in timeline}
        assert len(partitions) == 1, f"{dispatch} spread over partitions {partitions}"

    read_timeline = [e for _, e in by_dispatch[read_dispatch]]
    # Routed by client_ref, a status needs no MessageSubmitted before it: the
    # provider's "submitted" may reach the log first.
    (submitted,) = [e for e in read_timeline if isinstance(e, MessageSubmitted)]
    statuses = [e for e in read_timeline if isinstance(e, MessageStatusReceived)]
    assert [s.status for s in statuses] == ["submitted", "delivered", "read"]
    assert {s.message_uuid for s in statuses} == {submitted.message_uuid}
    assert all(s.step == 0 for s in statuses)
    delivered = statuses[1]
    assert delivered.usage is not None
    assert (delivered.usage.currency, delivered.usage.price) == ("EUR", "0.0333")

    undeliverable = [
        e for _, e in by_dispatch[undeliverable_dispatch] if isinstance(e, MessageStatusReceived)
    ]
    assert [s.status for s in undeliverable] == ["submitted", "undeliverable"]
    assert undeliverable[1].error is not None
    assert undeliverable[1].error.code == 1300

    refused = [e for _, e in by_dispatch[refused_dispatch]]
    assert isinstance(refused[1], MessageSendFailed)
    assert len(refused) == 2  # no statuses for a refused message
