"""A broker of a three-node cluster dies under load: nothing accepted is lost.

The whole product runs on a local three-node KRaft cluster (``broker/kafka.sh
cluster-start``) with the cluster profile: every topic replicated three times,
``min.insync.replicas`` 2. While dispatches of mixed outcomes arrive at a
steady rate, the node that leads most partitions of ``dispatch.events`` is
killed with SIGKILL, and started again later on its storage. Every dispatch
the gateway accepted (202) then ends with exactly one final report, every
status webhook its messages earned, and no step sent to the provider twice.
"""

from __future__ import annotations

import asyncio
import collections
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError

from events.topics import Topics
from services.kafka import KafkaSettings, ensure_topics
from tests.integration.stack import (
    App,
    Receiver,
    Stack,
    post_until_accepted,
    serve_receiver,
    wait_for_finals,
)

# About 100 s alone on a quiet machine: three brokers, the whole product, 33 s
# of load and then every dispatch to its end.
pytestmark = [pytest.mark.kafka, pytest.mark.timeout(600)]

KAFKA_SH = Path(__file__).resolve().parents[2] / "broker" / "kafka.sh"
NODES = (1, 2, 3)
# Dispatches per second, and how long the load runs around the fault.
RATE = 10
BEFORE_KILL_S = 10
NODE_DOWN_S = 15
AFTER_RESTART_S = 8


def cluster_port() -> int:
    """The first port of the cluster: clear of the suite's own broker (and its
    controller port), so both run side by side."""
    if "KAFKA_CLUSTER_PORT" in os.environ:
        return int(os.environ["KAFKA_CLUSTER_PORT"])
    return int(os.environ.get("KAFKA_PORT", "19092")) + 10


class Cluster:
    def __init__(self, port: int) -> None:
        self.port = port
        self.env = {**os.environ, "KAFKA_PORT": str(port), "KAFKA_HEAP": "320m"}

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{self.port + n - 1}" for n in NODES)

    def run(self, *command: str) -> None:
        # The script's own bound on a node's start (180 s) comes first.
        subprocess.run([str(KAFKA_SH), *command], env=self.env, check=True, timeout=300)

    def node_of(self, broker_id: int) -> int:
        return broker_id  # node N runs the broker with node.id N


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    cluster = Cluster(cluster_port())
    cluster.run("cluster-start")
    try:
        yield cluster
    finally:
        cluster.run("cluster-stop")


def item(channel: str, number: str, failover: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "from": {"type": channel, "number": "447700900000"},
        "to": {"type": channel, "number": number},
        "message": {"content": {"type": "text", "text": "hello"}},
    }
    if failover is not None:
        body["failover"] = failover
    return body


# name → (workflow, final status, statuses each sent message earns); the
# simulator's script follows the recipient's last digit (docs/channels.md).
SCENARIOS: dict[str, tuple[list[dict[str, Any]], str, list[list[str]]]] = {
    "delivered": (
        [item("sms", "447700900001", {"expiry_time": 60, "condition_status": "delivered"}),
         item("whatsapp", "447700900000")],
        "completed",
        [["submitted", "delivered"]],
    ),
    "rejected, then undeliverable": (
        [item("sms", "447700900002", {"expiry_time": 60, "condition_status": "delivered"}),
         item("sms", "447700900003")],
        "error",
        [["rejected"], ["submitted", "undeliverable"]],
    ),
    "read": (
        [item("whatsapp", "447700900000", {"expiry_time": 60, "condition_status": "read"}),
         item("sms", "447700900001")],
        "completed",
        [["submitted", "delivered", "read"]],
    ),
    "deadline passes, next delivered": (
        [item("whatsapp", "447700900004", {"expiry_time": 15, "condition_status": "read"}),
         item("sms", "447700900001")],
        "completed",
        [["submitted"], ["submitted", "delivered"]],
    ),
}  # fmt: skip


@dataclass
class Load:
    """What the steady load got from the gateway."""

    accepted: dict[str, str] = field(default_factory=dict)  # dispatch_uuid → scenario
    refused: collections.Counter[str] = field(default_factory=collections.Counter)
    refused_at: list[float] = field(default_factory=list)  # monotonic time of each refusal

    async def post(self, client: httpx.AsyncClient, stack: Stack, app: App, name: str) -> None:
        body = {"template": "failover", "workflow": SCENARIOS[name][0]}
        try:
            response = await client.post(
                f"{stack.gateway}/v0.1/dispatch",
                content=orjson.dumps(body),
                headers={**app.auth, "Content-Type": "application/json"},
            )
        except httpx.HTTPError as exc:
            self.refused[type(exc).__name__] += 1
            self.refused_at.append(time.monotonic())
            return
        if response.status_code == 202:
            self.accepted[str(response.json()["dispatch_uuid"])] = name
        else:
            # A refusal is the gateway saying "not taken": allowed, never counted.
            assert response.status_code == 503, response.text
            assert response.headers["content-type"] == "application/problem+json"
            self.refused[str(response.status_code)] += 1
            self.refused_at.append(time.monotonic())

    async def run(
        self, client: httpx.AsyncClient, stack: Stack, app: App, until: asyncio.Event
    ) -> None:
        """POST ``RATE`` dispatches a second, cycling through the scenarios,
        without waiting for answers (a slow answer does not slow the load)."""
        names = list(SCENARIOS)
        posts: set[asyncio.Task[None]] = set()
        started = time.monotonic()
        sent = 0
        while not until.is_set():
            task = asyncio.create_task(self.post(client, stack, app, names[sent % len(names)]))
            posts.add(task)
            task.add_done_callback(posts.discard)
            sent += 1
            await asyncio.sleep(max(0.0, started + sent / RATE - time.monotonic()))
        # Every answer is in before the client closes; then the first
        # unexpected one (an assertion in ``post``) fails the test.
        for outcome in await asyncio.gather(*posts, return_exceptions=True):
            if isinstance(outcome, BaseException):
                raise outcome


async def describe_events(settings: KafkaSettings) -> tuple[list[dict[str, Any]], str]:
    """The partitions of dispatch.events (leader, replicas, ISR) and its min ISR.

    Asked again on an error: a broker learns of a topic a moment after it is
    created (until then it answers with an error and no configs), and the
    admin client sends to any broker it knows of, the dead one included.
    """
    failure: object = None
    for _ in range(100):
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
        try:
            await admin.start()
            [described] = await admin.describe_topics([settings.topics.events])
            [configs] = await admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, settings.topics.events)]
            )
            # resources: (error_code, error_message, type, name, [(name, value, ...)])
            [resource] = configs.resources
            if not described["error_code"] and not resource[0]:
                entries = {entry[0]: entry[1] for entry in resource[4]}
                return described["partitions"], entries["min.insync.replicas"]
            failure = (described, resource)
        except (KafkaError, OSError) as exc:
            failure = exc
        finally:
            await admin.close()
        await asyncio.sleep(0.3)
    raise AssertionError(f"could not describe {settings.topics.events}: {failure}")


def leader_of_most(partitions: list[dict[str, Any]]) -> tuple[int, int]:
    """The broker leading most partitions, and how many it leads."""
    leaders = collections.Counter(p["leader"] for p in partitions)
    return leaders.most_common(1)[0]


async def replication_of_every_topic(settings: KafkaSettings) -> dict[str, tuple[set[int], str]]:
    """Each topic of this deployment: its partitions' replica counts, and its min ISR."""
    prefix = settings.topics.events.removesuffix("dispatch.events")
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        names = sorted(t for t in await admin.list_topics() if t.startswith(prefix))
        described = await admin.describe_topics(names)
        configs = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
        )
    finally:
        await admin.close()
    min_isr = {
        resource[3]: dict((entry[0], entry[1]) for entry in resource[4]).get(
            "min.insync.replicas", f"not described (error {resource[0]})"
        )
        for response in configs
        for resource in response.resources
    }
    return {
        topic["topic"]: ({len(p["replicas"]) for p in topic["partitions"]}, min_isr[topic["topic"]])
        for topic in described
    }


async def wait_for_full_isr(settings: KafkaSettings, timeout: float = 90) -> None:
    """Until the restarted node has caught up: three replicas in sync everywhere."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        partitions, _ = await describe_events(settings)
        if all(len(p["isr"]) == 3 for p in partitions):
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"dispatch.events not back to 3 in-sync replicas: {partitions}")


@dataclass(frozen=True)
class Fault:
    victim: int  # the broker killed
    led: int  # how many partitions of dispatch.events it led
    killed_at: float  # monotonic
    down_for: float
    accepted_while_down: int


async def kill_and_restart_the_busiest_leader(
    cluster: Cluster, settings: KafkaSettings, load: Load
) -> Fault:
    """kill -9 the broker leading most partitions of dispatch.events, wait,
    check that others lead them all, start it again on its storage."""
    partitions, _ = await describe_events(settings)
    victim, led = leader_of_most(partitions)
    await asyncio.to_thread(cluster.run, "node-kill", str(cluster.node_of(victim)))
    killed_at = time.monotonic()
    accepted_at_kill = len(load.accepted)
    await asyncio.sleep(NODE_DOWN_S)
    partitions, _ = await describe_events(settings)
    assert all(p["leader"] not in (victim, -1) for p in partitions), partitions
    accepted_while_down = len(load.accepted) - accepted_at_kill
    await asyncio.to_thread(cluster.run, "node-start", str(cluster.node_of(victim)))
    return Fault(victim, led, killed_at, time.monotonic() - killed_at, accepted_while_down)


async def test_a_broker_killed_under_load_loses_nothing_accepted(
    cluster: Cluster, tmp_path: Path
) -> None:
    settings = KafkaSettings(
        bootstrap_servers=cluster.bootstrap,
        partitions=4,
        topics=Topics.from_prefix("cluster."),
        replication_factor=3,
        min_insync_replicas=2,
    )
    await ensure_topics(settings)
    partitions, min_isr = await describe_events(settings)
    # The cluster profile reached the topic.
    assert all(len(p["replicas"]) == 3 for p in partitions), partitions
    assert min_isr == "2"

    receiver = Receiver()
    load = Load()
    async with serve_receiver(receiver):
        stack = Stack(settings=settings, tmp=tmp_path, receiver=receiver)
        try:
            await asyncio.to_thread(stack.start_all)
            app = stack.create_app("shop")
            async with httpx.AsyncClient(timeout=15) as client:
                # Every process up and working before the load starts.
                body = {"template": "failover", "workflow": SCENARIOS["delivered"][0]}
                warm_up = await post_until_accepted(client, stack, app, body)
                await wait_for_finals(stack, [warm_up], timeout=60)
                stop_load = asyncio.Event()
                loading = asyncio.create_task(load.run(client, stack, app, stop_load))
                try:
                    await asyncio.sleep(BEFORE_KILL_S)
                    fault = await kill_and_restart_the_busiest_leader(cluster, settings, load)
                    await asyncio.sleep(AFTER_RESTART_S)
                finally:
                    stop_load.set()
                    await asyncio.wait([loading])
                loading.result()  # a POST answered other than 202 or 503 fails here
                await wait_for_full_isr(settings)

                accepted = list(load.accepted)
                await wait_for_finals(stack, accepted, timeout=240)
                # Duplicates and late statuses (a read after completion), if
                # any, would arrive now.
                await asyncio.sleep(3)
                sends = (await client.get(f"{stack.simulator}/_sim/sends")).json()["attempts"]
                replication = await replication_of_every_topic(settings)
        finally:
            await asyncio.to_thread(stack.stop_all)

    window = (
        [round(at - fault.killed_at, 1) for at in (min(load.refused_at), max(load.refused_at))]
        if load.refused_at
        else []
    )
    print(
        f"killed broker {fault.victim} (leader of {fault.led} of {settings.partitions} "
        f"partitions); down for {fault.down_for:.1f} s; "
        f"{len(accepted)} dispatches accepted, {fault.accepted_while_down} while it was down; "
        f"refused: {dict(load.refused)}, from/to s after the kill: {window}"
    )
    # Every topic the processes created follows the cluster profile, not only
    # those created up front: the sender's ledger, the webhook state, the
    # processor's changelogs and faust's own topic.
    expected = {
        "dispatch.sender-ledger",
        "dispatch.webhook-state",
        "deadlines-changelog",
        "timer-cursors-changelog",
        "dispatches-changelog",
        "__assignor-__leader",
    }
    assert all(any(t.endswith(end) for t in replication) for end in expected), replication
    assert all(r == ({3}, "2") for r in replication.values()), replication
    # The load went on through the fault: dispatches were accepted while a node was down.
    assert fault.accepted_while_down >= NODE_DOWN_S * RATE // 4, (fault, load.refused)
    problems = check_every_dispatch(receiver, load.accepted)
    assert not problems, "\n".join(problems[:40]) + f"\n{stack.logs()}"
    twice = {ref: n for ref, n in sends.items() if n != 1}
    assert not twice, f"steps sent more than once: {twice}"
    receiver.verify_all()


def check_every_dispatch(receiver: Receiver, accepted: dict[str, str]) -> list[str]:
    """What a client of each accepted dispatch would find wrong."""
    problems: list[str] = []
    for dispatch_uuid, name in accepted.items():
        _, final_status, expected = SCENARIOS[name]
        finals = receiver.of(dispatch_uuid, "final")
        if len(finals) != 1:
            problems.append(f"{dispatch_uuid} ({name}): {len(finals)} final reports")
            continue
        if finals[0]["status"] != final_status:
            problems.append(f"{dispatch_uuid} ({name}): final status {finals[0]['status']}")
        sent = [link["message_uuid"] for link in finals[0]["_links"]["messages"]]
        if len(sent) != len(expected):
            problems.append(f"{dispatch_uuid} ({name}): sent {len(sent)} messages")
            continue
        # A webhook delivered twice carries the same id: a receiver keeps one.
        statuses = {
            r["webhook_id"]: r["payload"]
            for r in receiver.received
            if r["kind"] == "status" and r["payload"].get("dispatch_uuid") == dispatch_uuid
        }.values()
        strays = {s["message_uuid"] for s in statuses} - set(sent)
        if strays:
            problems.append(f"{dispatch_uuid} ({name}): statuses of unsent messages {strays}")
        for index, message_uuid in enumerate(sent):
            seen = sorted(s["status"] for s in statuses if s["message_uuid"] == message_uuid)
            if seen != sorted(expected[index]):
                problems.append(f"{dispatch_uuid} ({name}) message {index}: statuses {seen}")
    return problems
