"""The webhook deliverer end to end: the real ``dispatch-webhooks`` process, the
real broker, and a real HTTP receiver (uvicorn + starlette on a loopback port)
that answers each path from a script and records everything it got."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
import uvicorn
from aiokafka import ConsumerRecord
from jsonschema import Draft202012Validator
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from events.applications import ApplicationRegistered
from events.base import deterministic_id
from events.codec import decode_event, encode, to_json
from events.commands import DeliverWebhook
from events.dispatch import WebhookAbandoned, WebhookAttemptFailed, WebhookDelivered
from services.kafka import KafkaSettings, make_producer
from services.webhooks.state import decode_state, state_topic
from services.webhooks.verify import InvalidWebhook, verify_webhook
from tests.conftest import kafka_env
from tests.kafka_helpers import read_records, wait_for
from tests.processes import BIN, Process, free_port
from tests.waiting import holds_for, wait_until

pytestmark = pytest.mark.kafka

# -- the receiver ------------------------------------------------------------------


@dataclass
class Received:
    path: str
    body: bytes
    headers: dict[str, str]
    arrived_at: float
    answered_at: float = 0.0

    @property
    def webhook_id(self) -> str:
        return self.headers["x-dispatch-webhook-id"]

    @property
    def attempt(self) -> int:
        return int(self.headers["x-dispatch-webhook-attempt"])


@dataclass
class Answer:
    status: int = 200
    delay_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"{}"


# path -> (nth request to that path, 1-based) -> answer
Script = Callable[[int], Answer]


class Receiver:
    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[Received] = []
        self.scripts: dict[str, Script] = {}
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def at(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    async def _handle(self, request: Request) -> Response:
        path = request.url.path
        got = Received(path, await request.body(), dict(request.headers), time.time())
        self.received.append(got)
        script = self.scripts.get(path, lambda n: Answer())
        answer = script(len(self.at(path)))
        if answer.delay_s:
            await asyncio.sleep(answer.delay_s)
        got.answered_at = time.time()
        return Response(answer.body, status_code=answer.status, headers=answer.headers)

    async def __aenter__(self) -> Receiver:
        app = Starlette(routes=[Route("/{path:path}", self._handle, methods=["POST"])])
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        server = self._server
        await wait_until(lambda: server.started, 10, what="the receiver listens")
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None and self._task is not None
        self._server.should_exit = True
        await self._task


# -- helpers -----------------------------------------------------------------------
SECRET = "s3cret-for-webhooks-at-least-32-bytes-long"


def status_payload(dispatch: uuid.UUID, status: str = "delivered") -> dict[str, Any]:
    return {
        "message_uuid": str(uuid.uuid4()),
        "to": {"type": "sms", "number": "447700900000"},
        "from": {"type": "sms", "number": "447700900001"},
        "timestamp": "2020-01-01T14:00:00.000Z",
        "status": status,
        "usage": {"currency": "EUR", "price": "0.0333"},
        "dispatch_uuid": str(dispatch),
        "_links": {"workflow": {"dispatch_uuid": str(dispatch), "href": f"/workflows/{dispatch}"}},
    }


OPENAPI = Path(__file__).parents[2] / "services" / "gateway" / "openapi.json"


def callback_validator(schema: str) -> Draft202012Validator:
    """A validator for one of the API document's callback bodies."""
    document = orjson.loads(OPENAPI.read_bytes())
    root = {"components": document["components"], "$ref": f"#/components/schemas/{schema}"}
    return Draft202012Validator(root, format_checker=Draft202012Validator.FORMAT_CHECKER)


def final_payload(dispatch: uuid.UUID) -> dict[str, Any]:
    message = str(uuid.uuid4())
    return {
        "dispatch_uuid": str(dispatch),
        "template": "failover",
        "status": "completed",
        "timestamp": "2020-01-01T14:00:00.000Z",
        "usage": {"price": "0.0333", "currency": "EUR"},
        "_links": {
            "messages": [
                {
                    "message_uuid": message,
                    "href": message,
                    "channel": "sms",
                    "usage": {"currency": "EUR", "price": "0.0333"},
                    "status": "delivered",
                }
            ]
        },
    }


def command(
    dispatch: uuid.UUID, kind: str = "status", app: str = "app-1", n: int = 0
) -> DeliverWebhook:
    payload = status_payload(dispatch) if kind == "status" else final_payload(dispatch)
    return DeliverWebhook(
        event_id=deterministic_id(dispatch, kind, n),
        dispatch_uuid=dispatch,
        application_id=app,
        kind=kind,  # type: ignore[arg-type]
        payload=payload,
    )


async def register(settings: KafkaSettings, app_id: str, status_url: str, final_url: str) -> None:
    app = ApplicationRegistered(
        application_id=app_id,
        name=app_id,
        api_key=f"key-{app_id}",
        api_secret_hash="salt$hash",
        status_url=status_url,
        final_report_url=final_url,
        signature_secret=SECRET,
    )
    await produce(settings, settings.topics.applications, [(app_id, encode(app))])


async def produce(settings: KafkaSettings, topic: str, records: list[tuple[str, bytes]]) -> None:
    producer = make_producer(settings)
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(topic, value, key=key.encode())
    finally:
        await producer.stop()


async def send_commands(settings: KafkaSettings, commands: list[DeliverWebhook]) -> None:
    await produce(
        settings, settings.topics.webhooks, [(str(c.dispatch_uuid), encode(c)) for c in commands]
    )


def deliverer_env(settings: KafkaSettings, **extra: str) -> dict[str, str]:
    env = {
        **kafka_env(settings),
        "WEBHOOK_ALLOW_PRIVATE": "1",
        "WEBHOOK_SESSION_TIMEOUT_MS": "6000",
    }
    env.update(extra)
    return env


async def start_deliverer(
    processes: list[Process], tmp_path: Path, env: dict[str, str], name: str = "webhooks"
) -> Process:
    process = Process(name, ["dispatch-webhooks"], env, tmp_path)
    processes.append(process)
    # Off the event loop: the receiver runs on it and must keep answering.
    await asyncio.to_thread(process.wait_for_log, "webhook deliverer ready", 60)
    return process


def _is_outcome(record: ConsumerRecord) -> bool:
    return isinstance(decode_event(record.value), WebhookDelivered | WebhookAbandoned)


async def outcomes(
    settings: KafkaSettings, count: int, timeout: float = 30.0
) -> list[WebhookDelivered | WebhookAbandoned]:
    """The first ``count`` outcomes on the events topic (failed attempts are
    there too, before them)."""

    def done(records: list[ConsumerRecord]) -> bool:
        return sum(1 for r in records if _is_outcome(r)) >= count

    records = await read_records(settings, settings.topics.events, until=done, timeout=timeout)
    events = [decode_event(r.value) for r in records]
    return [e for e in events if isinstance(e, WebhookDelivered | WebhookAbandoned)]


async def failed_attempts(settings: KafkaSettings, count: int) -> list[WebhookAttemptFailed]:
    def done(records: list[ConsumerRecord]) -> bool:
        return len(records) >= count

    records = await read_records(settings, settings.topics.events, until=done, timeout=30.0)
    events = [decode_event(r.value) for r in records]
    return [e for e in events if isinstance(e, WebhookAttemptFailed)]


async def arrived(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    assert await wait_for(predicate, timeout=timeout, every=0.05), "timed out waiting"


# -- tests -------------------------------------------------------------------------
async def test_signed_webhooks_arrive_as_commanded_final_last_and_once(
    kafka_settings: KafkaSettings, processes: list[Process], tmp_path: Path
) -> None:
    async with Receiver() as receiver:
        # Status webhooks take a while to answer: the final report must still
        # wait until each of them was attempted.
        receiver.scripts["/status"] = lambda n: Answer(200, delay_s=0.8)
        await register(kafka_settings, "app-1", receiver.url("/status"), receiver.url("/final"))
        dispatch = uuid.uuid4()
        first, second = command(dispatch, n=1), command(dispatch, n=2)
        final = command(dispatch, "final")
        await send_commands(kafka_settings, [first, second, final])
        await start_deliverer(processes, tmp_path, deliverer_env(kafka_settings))

        await arrived(lambda: len(receiver.at("/final")) == 1)
        statuses = receiver.at("/status")
        # Both statuses may be in flight at once; neither may be overtaken.
        assert sorted(r.webhook_id for r in statuses) == sorted(
            [str(first.event_id), str(second.event_id)]
        )
        [report] = receiver.at("/final")
        assert report.arrived_at >= max(r.answered_at for r in statuses)

        by_id = {str(c.event_id): c for c in (first, second, final)}
        schemas = {
            "/status": callback_validator("MessageStatusCallback"),
            "/final": callback_validator("FinalReport"),
        }
        assert not any(v.is_valid({"status": "completed"}) for v in schemas.values())
        for got in receiver.received:
            sent = by_id[got.webhook_id]
            schemas[got.path].validate(orjson.loads(got.body))
            assert got.body == to_json(sent.payload)  # the exact bytes commanded
            assert orjson.loads(got.body) == sent.payload
            assert got.headers["content-type"] == "application/json"
            assert got.headers["user-agent"] == "Dispatch-Webhooks/0.1"
            claims = verify_webhook(got.body, got.headers["authorization"], SECRET)
            assert claims["application_id"] == "app-1"
            with pytest.raises(InvalidWebhook):
                verify_webhook(got.body + b" ", got.headers["authorization"], SECRET)
            with pytest.raises(InvalidWebhook):
                verify_webhook(
                    got.body, got.headers["authorization"], "another-secret-also-32-bytes-or-longer"
                )

        # The same commands again (at-least-once upstream) are not sent twice;
        # a new one behind them proves they were read.
        # An unreadable command is parked in the dead-letter topic, not retried.
        late = command(dispatch, n=3)
        await produce(kafka_settings, kafka_settings.topics.webhooks, [(str(dispatch), b"{oops")])
        await send_commands(kafka_settings, [first, final, late])
        await arrived(lambda: len(receiver.at("/status")) == 3)
        [parked] = await read_records(
            kafka_settings, kafka_settings.topics.dead_letters, until=lambda r: len(r) >= 1
        )
        assert parked.value == b"{oops"
        # That the repeated commands are never sent can only be watched for a while.
        await holds_for(lambda: len(receiver.received) == 4, 0.5, what="no command sent twice")

        events = await outcomes(kafka_settings, 4)
        assert {e.webhook_id for e in events} == {
            first.event_id,
            second.event_id,
            final.event_id,
            late.event_id,
        }
        assert all(isinstance(e, WebhookDelivered) and e.attempts == 1 for e in events)
        delivered = {e.webhook_id: e for e in events}
        assert delivered[final.event_id].event_id == deterministic_id(final.event_id, "delivered")
        assert delivered[final.event_id].dispatch_uuid == dispatch


async def test_failures_are_retried_on_a_doubling_capped_schedule(
    kafka_settings: KafkaSettings, processes: list[Process], tmp_path: Path
) -> None:
    async with Receiver() as receiver:
        answers = [503, 500, 429, 408, 200]
        receiver.scripts["/status"] = lambda n: Answer(answers[min(n, len(answers)) - 1])
        await register(kafka_settings, "app-1", receiver.url("/status"), receiver.url("/final"))
        env = deliverer_env(
            kafka_settings, WEBHOOK_RETRY_INITIAL_S="0.4", WEBHOOK_RETRY_MAX_S="1.0"
        )
        await start_deliverer(processes, tmp_path, env)
        webhook = command(uuid.uuid4())
        await send_commands(kafka_settings, [webhook])

        await arrived(lambda: len(receiver.at("/status")) == 5)
        got = receiver.at("/status")
        assert {r.webhook_id for r in got} == {str(webhook.event_id)}
        assert [r.attempt for r in got] == [1, 2, 3, 4, 5]
        gaps = [b.arrived_at - a.answered_at for a, b in itertools.pairwise(got)]
        for gap, expected in zip(gaps, [0.4, 0.8, 1.0, 1.0], strict=True):
            assert expected - 0.05 <= gap <= expected + 0.6, gaps

        [event] = await outcomes(kafka_settings, 1)
        assert isinstance(event, WebhookDelivered)
        assert (event.attempts, event.http_status) == (5, 200)
        # Each failed attempt is on the log with its answer, before the outcome.
        failed = await failed_attempts(kafka_settings, 5)
        assert [(a.attempt, a.round) for a in failed] == [(1, 0), (2, 0), (3, 0), (4, 0)]
        assert [a.http_status for a in failed] == [503, 500, 429, 408]
        assert all(a.answer.startswith(f"HTTP {a.http_status}") for a in failed)
        assert {a.webhook_id for a in failed} == {webhook.event_id}
        assert all(a.next_attempt_at > a.occurred_at for a in failed)


async def test_refusals_and_exhausted_retries_are_abandoned_with_the_reason(
    kafka_settings: KafkaSettings, processes: list[Process], tmp_path: Path
) -> None:
    async with Receiver() as receiver:
        receiver.scripts["/status"] = lambda n: Answer(410)
        receiver.scripts["/final"] = lambda n: Answer(503)
        await register(kafka_settings, "app-1", receiver.url("/status"), receiver.url("/final"))
        env = deliverer_env(
            kafka_settings,
            WEBHOOK_RETRY_INITIAL_S="0.3",
            WEBHOOK_RETRY_MAX_S="0.3",
            WEBHOOK_GIVE_UP_S="1.0",
        )
        deliverer = await start_deliverer(processes, tmp_path, env)
        refused, exhausted = command(uuid.uuid4()), command(uuid.uuid4(), "final")
        await send_commands(kafka_settings, [refused, exhausted])

        events = {e.webhook_id: e for e in await outcomes(kafka_settings, 2)}
        gone = events[refused.event_id]
        assert isinstance(gone, WebhookAbandoned)
        assert (gone.attempts, gone.http_status) == (1, 410)
        assert "410" in gone.reason and "not retryable" in gone.reason
        tired = events[exhausted.event_id]
        assert isinstance(tired, WebhookAbandoned)
        assert tired.http_status == 503 and "gave up" in tired.reason
        assert 3 <= tired.attempts <= 5
        assert len(receiver.at("/status")) == 1
        assert len(receiver.at("/final")) == tired.attempts

        # SIGTERM stops it promptly and cleanly.
        stopping = time.monotonic()
        os.killpg(deliverer.popen.pid, signal.SIGTERM)
        assert await asyncio.to_thread(deliverer.popen.wait, 10) == 0
        assert time.monotonic() - stopping < 5
        assert "webhook deliverer stopped" in deliverer.log()


async def test_private_and_non_http_destinations_are_refused_by_default(
    kafka_settings: KafkaSettings, processes: list[Process], tmp_path: Path
) -> None:
    async with Receiver() as receiver:
        await register(kafka_settings, "app-1", receiver.url("/status"), "ftp://example.com/x")
        env = deliverer_env(kafka_settings)
        del env["WEBHOOK_ALLOW_PRIVATE"]
        await start_deliverer(processes, tmp_path, env)
        loopback, ftp = command(uuid.uuid4()), command(uuid.uuid4(), "final")
        await send_commands(kafka_settings, [loopback, ftp])

        events = {e.webhook_id: e for e in await outcomes(kafka_settings, 2)}
        assert isinstance(events[loopback.event_id], WebhookAbandoned)
        assert "non-public address" in events[loopback.event_id].reason  # type: ignore[union-attr]
        assert "http or https" in events[ftp.event_id].reason  # type: ignore[union-attr]
        assert receiver.received == []


async def test_a_kill_9_during_retries_loses_nothing_and_keeps_the_schedule(
    kafka_settings: KafkaSettings, processes: list[Process], tmp_path: Path
) -> None:
    async with Receiver() as receiver:
        healthy = asyncio.Event()
        receiver.scripts["/status"] = lambda n: Answer(200 if healthy.is_set() else 503)
        await register(kafka_settings, "app-1", receiver.url("/status"), receiver.url("/final"))
        # attempts at t0, t0+2, t0+6, t0+14
        env = deliverer_env(kafka_settings, WEBHOOK_RETRY_INITIAL_S="2", WEBHOOK_RETRY_MAX_S="8")
        first = await start_deliverer(processes, tmp_path, env)
        webhook = command(uuid.uuid4())
        await send_commands(kafka_settings, [webhook])

        await arrived(lambda: len(receiver.at("/status")) == 2)

        # Killed while waiting for the next retry (due 4 s later), once the
        # second attempt's outcome is recorded: a kill in the middle of an
        # attempt repeats that attempt instead (at least once, same id).
        def second_attempt_recorded(records: list[ConsumerRecord]) -> bool:
            states = [decode_state(r.value) for r in records if r.value is not None]
            return any(s.webhook_id == webhook.event_id and s.attempts >= 2 for s in states)

        recorded = await read_records(
            kafka_settings, state_topic(kafka_settings), until=second_attempt_recorded
        )
        assert second_attempt_recorded(recorded), "the second attempt was never recorded"
        first.kill9()
        await start_deliverer(processes, tmp_path, env, name="webhooks-again")

        await arrived(lambda: len(receiver.at("/status")) == 3, timeout=30)
        healthy.set()
        got = receiver.at("/status")
        # The third attempt is the third (not a fresh first one) and comes no
        # earlier than the schedule said, though the process was restarted.
        assert [r.attempt for r in got] == [1, 2, 3]
        assert got[2].arrived_at >= got[0].answered_at + 2 + 4 - 0.1
        assert {r.webhook_id for r in got} == {str(webhook.event_id)}

        await arrived(lambda: len(receiver.at("/status")) == 4, timeout=30)
        [event] = await outcomes(kafka_settings, 1)
        assert isinstance(event, WebhookDelivered) and event.attempts == 4


async def test_a_dead_endpoint_does_not_slow_another(
    kafka_settings: KafkaSettings, processes: list[Process], tmp_path: Path
) -> None:
    async with Receiver() as dead, Receiver() as alive:
        dead.scripts["/status"] = lambda n: Answer(200, delay_s=20)
        await register(kafka_settings, "dead", dead.url("/status"), dead.url("/final"))
        await register(kafka_settings, "alive", alive.url("/status"), alive.url("/final"))
        env = deliverer_env(
            kafka_settings, WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT="4", WEBHOOK_READ_TIMEOUT_S="30"
        )
        await start_deliverer(processes, tmp_path, env)
        stuck = [command(uuid.uuid4(), app="dead") for _ in range(40)]
        await send_commands(kafka_settings, stuck)
        await arrived(lambda: len(dead.received) == 4)

        started = time.monotonic()
        await send_commands(kafka_settings, [command(uuid.uuid4(), app="alive") for _ in range(40)])
        await arrived(lambda: len(alive.received) == 40, timeout=10)
        assert time.monotonic() - started < 5
        # The dead one never had more than its share in flight.
        assert len(dead.received) == 4


async def test_cli_redelivers_abandoned_webhooks_with_the_same_id(
    kafka_settings: KafkaSettings, processes: list[Process], tmp_path: Path
) -> None:
    async with Receiver() as receiver:
        fixed = asyncio.Event()
        receiver.scripts["/status"] = lambda n: Answer(200 if fixed.is_set() else 404)
        await register(kafka_settings, "app-1", receiver.url("/status"), receiver.url("/final"))
        await start_deliverer(processes, tmp_path, deliverer_env(kafka_settings))
        lost, fine = command(uuid.uuid4()), command(uuid.uuid4(), "final")
        await send_commands(kafka_settings, [lost, fine])
        await outcomes(kafka_settings, 2)

        fixed.set()
        cli = await asyncio.to_thread(
            subprocess.run,
            [str(BIN / "dispatch"), "webhooks", "redeliver", "--abandoned"],
            env={**os.environ, **kafka_env(kafka_settings)},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert cli.returncode == 0, cli.stderr
        assert "1 webhook(s) queued for redelivery" in cli.stdout
        assert str(lost.event_id) in cli.stdout

        await arrived(lambda: len(receiver.at("/status")) == 2)
        assert {r.webhook_id for r in receiver.at("/status")} == {str(lost.event_id)}
        events = await outcomes(kafka_settings, 3)
        again = [e for e in events if e.webhook_id == lost.event_id]
        assert [type(e) for e in again] == [WebhookAbandoned, WebhookDelivered]
        assert again[1].event_id == deterministic_id(lost.event_id, "delivered", 1)
        assert len(receiver.at("/final")) == 1  # the delivered one was not resent


async def test_cli_refuses_to_redeliver_everything_by_accident() -> None:
    cli = await asyncio.to_thread(
        subprocess.run,
        [str(BIN / "dispatch"), "webhooks", "redeliver"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode == 2
    assert "at least one of --dispatch, --since, --abandoned" in cli.stderr
