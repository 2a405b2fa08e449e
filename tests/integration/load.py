"""A steady load of mixed-outcome dispatches, and the count of what became of
them: the scale-out and chaos tests (and `bench/bench_chaos.py`) post through
``Load`` and judge the run with ``tally``.

Every figure ``tally`` reports is read from what a user or the provider sees:
the final reports and status webhooks at the receiver, the sends the provider
(the simulator) counted per ``client_ref``, and the records on the topics.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from events.codec import UndecodableMessage, decode_event
from events.references import client_ref
from services.kafka import KafkaSettings
from tests.integration.stack import App, Stack


def item(channel: str, number: str, failover: dict[str, object] | None = None) -> dict[str, object]:
    body: dict[str, object] = {
        "from": {"type": channel, "number": "447700900000"},
        "to": {"type": channel, "number": number},
        "message": {"content": {"type": "text", "text": "hello"}},
    }
    if failover:
        body["failover"] = failover
    return body


@dataclass(frozen=True)
class Kind:
    """One shape of dispatch and what must become of it (the simulator's
    script is chosen by the recipient's last digit)."""

    workflow: list[dict[str, object]]
    final: str
    # Per message: statuses its client must be told of, at least.
    statuses: list[list[str]]
    # Steps whose expiry must fire (exactly once each).
    timed_out: tuple[int, ...] = ()

    def with_unsent(self, steps: set[int]) -> Kind:
        """What must become of this dispatch if ``steps`` never reached the
        provider though their outcome was left unknown: a sender killed
        between a call's intent and the call. Such a step is never sent again
        (the provider might have it), so it waits out its expiry, with no
        status, and fails over; a last step ends ``error`` at the final-step
        limit (docs/channels.md, "Unknown outcomes")."""
        if not steps:
            return self
        last = len(self.workflow) - 1
        return Kind(
            self.workflow,
            "error" if last in steps else self.final,
            [[] if step in steps else seen for step, seen in enumerate(self.statuses)],
            tuple(sorted(set(self.timed_out) | (steps - {last}))),
        )


MIX: list[Kind] = [
    Kind([item("sms", "447700900001")], "completed", [["submitted", "delivered"]]),
    Kind([item("sms", "447700900000")], "completed", [["submitted", "delivered", "read"]]),
    # Refused at once: fails over to WhatsApp.
    Kind(
        [
            item("sms", "447700900002", {"expiry_time": 60, "condition_status": "delivered"}),
            item("whatsapp", "447700900001"),
        ],
        "completed",
        [["rejected"], ["submitted", "delivered"]],
    ),
    Kind([item("sms", "447700900003")], "error", [["submitted", "undeliverable"]]),
    # Never delivered: its 15 s expiry fires and it fails over.
    Kind(
        [
            item("sms", "447700900004", {"expiry_time": 15, "condition_status": "delivered"}),
            item("whatsapp", "447700900001"),
        ],
        "completed",
        [["submitted"], ["submitted", "delivered"]],
        timed_out=(0,),
    ),
    # The provider answers 503 twice before accepting.
    Kind([item("sms", "447700900005")], "completed", [["submitted", "delivered", "read"]]),
]


@dataclass
class Load:
    """Posts dispatches of ``MIX`` in turn at ``rate`` a second, spread over
    the stack's gateways, and remembers every one a gateway accepted (202)."""

    stack: Stack
    app: App
    rate: float
    accepted: dict[str, int] = field(default_factory=dict)  # dispatch → index in MIX
    answers: Counter[int] = field(default_factory=Counter)  # status code (0: no answer)
    unexpected: list[str] = field(default_factory=list)  # answers neither 202 nor 503
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        posts: set[asyncio.Task[None]] = set()
        async with httpx.AsyncClient(timeout=15) as client:
            n = 0
            next_at = time.monotonic()
            while not self._stop.is_set():
                post = asyncio.create_task(self._post(client, n % len(MIX)))
                posts.add(post)
                post.add_done_callback(posts.discard)
                n += 1
                next_at += 1 / self.rate
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            await asyncio.gather(*posts)

    async def _post(self, client: httpx.AsyncClient, kind: int) -> None:
        body = {"template": "failover", "workflow": MIX[kind].workflow}
        gateway = self.stack.next_gateway()
        if gateway is None:
            self.answers[0] += 1  # no gateway in rotation: the client gets no answer
            return
        try:
            response = await client.post(
                f"{gateway}/v0.1/dispatch",
                content=orjson.dumps(body),
                headers={**self.app.auth, "Content-Type": "application/json"},
            )
        except httpx.HTTPError:
            self.answers[0] += 1  # a gateway down or killed mid-request: not accepted
            return
        self.answers[response.status_code] += 1
        if response.status_code == 202:
            self.accepted[response.json()["dispatch_uuid"]] = kind
        elif (
            response.status_code != 503
            or response.headers.get("content-type") != "application/problem+json"
        ):
            # Anything but "try again later" would be a bug worth seeing.
            self.unexpected.append(f"{response.status_code} {response.text[:300]}")

    async def wait_until_ended(self, timeout: float) -> None:
        """Until every accepted dispatch has a final report (or the time is up)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self.stack.receiver.of(d, "final") for d in self.accepted):
                return
            await asyncio.sleep(0.5)


async def known_to_every_gateway(stack: Stack, app: App) -> None:
    """A new application reaches each gateway's registry on its own time."""
    body = orjson.dumps({"template": "failover", "workflow": MIX[0].workflow})
    headers = {**app.auth, "Content-Type": "application/json"}
    async with httpx.AsyncClient(timeout=15) as client:
        for gateway in stack.gateways:
            deadline = time.monotonic() + 30
            while (
                await client.post(f"{gateway}/v0.1/dispatch", content=body, headers=headers)
            ).status_code != 202:
                assert time.monotonic() < deadline, f"{gateway} never accepted {app.name}"
                await asyncio.sleep(0.25)


async def read_topic(
    settings: KafkaSettings, topic: str, partitions_count: int
) -> list[tuple[int, int, bytes]]:
    """Every record of ``topic`` up to its current end: (partition, offset, value)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(partitions_count)]
        ends = await consumer.end_offsets(partitions)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        records: list[tuple[int, int, bytes]] = []
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            batch = await consumer.getmany(timeout_ms=500)
            for tp, messages in batch.items():
                records += [(tp.partition, m.offset, m.value or b"") for m in messages]
        return records
    finally:
        await consumer.stop()


@dataclass
class Tally:
    accepted: int = 0
    lost: int = 0  # accepted, no final report
    duplicate_finals: int = 0  # a second final report (a distinct webhook id)
    redelivered_finals: int = 0  # the same final report again (same id: receivers dedupe)
    wrong_final_status: int = 0
    double_sends: int = 0  # a step the provider accepted more than once
    missing_status_webhooks: int = 0  # (message, status) the client was never told of
    timers_fired_twice: int = 0  # a StepTimedOut id per (dispatch, step) more than one
    timers_repeated: int = 0  # the same StepTimedOut appended at more than one offset
    timers_missing: int = 0  # an expiry that should have fired and did not
    dead_lettered: int = 0
    # Steps never sent because a sender died between the intent and the call:
    # not a fault of the run, but what it cost (see ``Kind.with_unsent``).
    unsent_unknown: int = 0
    problems: list[str] = field(default_factory=list)
    lost_dispatches: list[str] = field(default_factory=list)

    def table(self) -> str:
        rows = [
            ("accepted", self.accepted),
            ("lost", self.lost),
            ("duplicate final reports", self.duplicate_finals),
            ("double sends", self.double_sends),
            ("missing status webhooks", self.missing_status_webhooks),
            ("dead-lettered", self.dead_lettered),
            ("wrong final status", self.wrong_final_status),
            ("timers fired twice", self.timers_fired_twice),
            ("timers missing", self.timers_missing),
            ("timer events repeated (same id)", self.timers_repeated),
            ("final reports redelivered (same id)", self.redelivered_finals),
            ("steps unknown and never sent", self.unsent_unknown),
        ]
        return "\n".join(f"  {name:38} {value:8d}" for name, value in rows)


async def tally(stack: Stack, load: Load) -> Tally:
    """What became of every dispatch ``load`` got accepted."""
    async with httpx.AsyncClient(timeout=15) as client:
        sends: dict[str, Any] = (await client.get(f"{stack.simulator}/_sim/sends")).json()
    topics = stack.settings.topics
    timer_offsets: dict[tuple[str, int], dict[str, int]] = defaultdict(Counter)
    # Each dispatch's events in order, to say where a lost one stopped.
    histories: dict[str, list[str]] = defaultdict(list)
    unknown_steps: set[tuple[str, int]] = set()
    for partition, offset, value in await read_topic(
        stack.settings, topics.events, stack.settings.partitions
    ):
        try:
            event = decode_event(value)
        except UndecodableMessage:  # garbage a test wrote: the tally is about dispatches
            continue
        dispatch_uuid = str(getattr(event, "dispatch_uuid", ""))
        step = getattr(event, "step", "")
        histories[dispatch_uuid].append(f"{type(event).__name__}({step})@{partition}:{offset}")
        if type(event).__name__ == "MessageOutcomeUnknown":
            unknown_steps.add((dispatch_uuid, int(step)))
        if b'"StepTimedOut"' not in value:
            continue
        key = (dispatch_uuid, event.step)  # type: ignore[attr-defined]
        timer_offsets[key][str(event.event_id)] += 1
    # One partition: services.kafka.ensure_topics makes it so.
    dead = await read_topic(stack.settings, topics.dead_letters, 1)

    result = Tally(accepted=len(load.accepted), dead_lettered=len(dead))
    receiver = stack.receiver
    finals_by_dispatch: dict[str, list[dict[str, Any]]] = defaultdict(list)
    statuses_by_dispatch: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in receiver.received:
        dispatch = str(record["payload"].get("dispatch_uuid"))
        if record["kind"] == "final":
            finals_by_dispatch[dispatch].append(record)
        else:
            statuses_by_dispatch[dispatch].append(record["payload"])
    for dispatch, index in load.accepted.items():
        unsent = {
            step
            for step in range(len(MIX[index].workflow))
            if (dispatch, step) in unknown_steps
            and sends["attempts"].get(client_ref(dispatch, step), 0) == 0
        }
        result.unsent_unknown += len(unsent)
        kind = MIX[index].with_unsent(unsent)
        finals = finals_by_dispatch.get(dispatch, [])
        ids = {f["webhook_id"] for f in finals}
        result.duplicate_finals += max(0, len(ids) - 1)
        result.redelivered_finals += len(finals) - len(ids)
        for step in range(len(kind.workflow)):
            if sends["accepted"].get(client_ref(dispatch, step), 0) > 1:
                result.double_sends += 1
                result.problems.append(f"{dispatch} step {step}: accepted twice by the provider")
            fired = timer_offsets.get((dispatch, step), {})
            result.timers_fired_twice += max(0, len(fired) - 1)
            result.timers_repeated += sum(n - 1 for n in fired.values())
            if step in kind.timed_out and not fired:
                result.timers_missing += 1
                result.problems.append(f"{dispatch} step {step}: expiry never fired")
            if len(fired) > 1 or any(n > 1 for n in fired.values()):
                result.problems.append(f"{dispatch} step {step}: StepTimedOut {dict(fired)}")
        if not finals:
            result.lost += 1
            result.lost_dispatches.append(dispatch)
            history = " ".join(histories.get(dispatch, [])) or "no events"
            # What the provider saw of each step: whether a send ever reached it.
            provider = " ".join(
                f"step {step} reached the provider {sends['attempts'].get(ref, 0)}x, "
                f"accepted {sends['accepted'].get(ref, 0)}x;"
                for step in range(len(kind.workflow))
                for ref in [client_ref(dispatch, step)]
            )
            result.problems.append(
                f"{dispatch}: no final report (kind {index}): {history}; {provider}"
            )
            continue
        final = finals[0]["payload"]
        if final["status"] != kind.final:
            result.wrong_final_status += 1
            result.problems.append(f"{dispatch}: ended {final['status']}, not {kind.final}")
        statuses = statuses_by_dispatch.get(dispatch, [])
        # The report links only the messages that reached the provider.
        sent = [step for step in range(len(kind.workflow)) if step not in unsent]
        for step, link in zip(sent, final["_links"]["messages"], strict=False):
            seen = {s["status"] for s in statuses if s.get("message_uuid") == link["message_uuid"]}
            missing = set(kind.statuses[step]) - seen if step < len(kind.statuses) else set()
            if missing:
                result.missing_status_webhooks += len(missing)
                result.problems.append(f"{dispatch} message {step}: no {sorted(missing)} webhook")
    return result
