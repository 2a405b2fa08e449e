"""No secret ever reaches a log line or a topic: the whole stack runs the demo,
a delivered and a failed dispatch, and an application record that fails
validation; then every process's log and every record of every topic of the
deployment are searched for every secret that was issued or configured."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from services.kafka import KafkaSettings, make_producer
from tests.conftest import TEST_SECRETS_KEYS
from tests.integration.stack import (
    CALLBACK_SECRET,
    Receiver,
    Stack,
    post_until_accepted,
    serve_receiver,
    wait_for_finals,
)
from tests.processes import Process, free_port

pytestmark = pytest.mark.kafka

MARKER = "leak-canary-signature-secret-0123456789"


@pytest.fixture
async def stack(kafka_settings: KafkaSettings, tmp_path: Path) -> AsyncIterator[Stack]:
    receiver = Receiver()
    async with serve_receiver(receiver):
        stack = Stack(settings=kafka_settings, tmp=tmp_path, receiver=receiver)
        try:
            await asyncio.to_thread(stack.start_all)
            yield stack
        finally:
            await asyncio.to_thread(stack.stop_all)


def sms(number: str, failover: bool = False) -> dict[str, object]:
    item: dict[str, object] = {
        "from": {"type": "sms", "number": "447700900000"},
        "to": {"type": "sms", "number": number},
        "message": {"content": {"type": "text", "text": "hello"}},
    }
    if failover:
        item["failover"] = {"expiry_time": 60, "condition_status": "delivered"}
    return item


async def every_record(settings: KafkaSettings) -> list[bytes]:
    """Keys, values and headers of every record of every topic of this test."""
    prefix = settings.topics.events.removesuffix("dispatch.events")
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        topics = [t for t in await consumer.topics() if prefix in t]
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
        await admin.start()
        try:
            described = await admin.describe_topics(topics)
        finally:
            await admin.close()
        partitions = [
            TopicPartition(t["topic"], p["partition"]) for t in described for p in t["partitions"]
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        found: list[bytes] = []
        while True:
            positions = {tp: await consumer.position(tp) for tp in ends}
            if all(positions[tp] >= end for tp, end in ends.items()):
                break
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for r in records:
                    found += [r.key or b"", r.value or b"", *(v for _, v in r.headers)]
        assert topics and found
        return found
    finally:
        await consumer.stop()


async def test_no_secret_in_any_log_or_topic(stack: Stack, kafka_settings: KafkaSettings) -> None:
    app = stack.create_app("shop")
    async with httpx.AsyncClient(timeout=10) as client:
        delivered = await post_until_accepted(
            client, stack, app, {"template": "failover", "workflow": [sms("447700900001")]}
        )
        failed = await post_until_accepted(
            client,
            stack,
            app,
            {"template": "failover", "workflow": [sms("447700900002", True), sms("447700900003")]},
        )
        await wait_for_finals(stack, [delivered, failed], timeout=90)

    # The demo runs until stopped: wait for its end-of-demo summary, which
    # shows its application's api_secret (the one place it may appear).
    demo = Process(
        "demo",
        ["dispatch", "demo", "--gateway", stack.gateway,
         "--projector", f"http://127.0.0.1:{stack.projector_port}",
         "--receiver-port", str(free_port())],
        stack.env(),
        stack.tmp,
    )  # fmt: skip
    try:
        await asyncio.to_thread(demo.wait_for_log, "all three dispatches ended", 180)
    finally:
        demo.stop()
    match = re.search(r"api_secret (\S+)", demo.log())
    assert match is not None, demo.log()[-2000:]
    demo_api_secret = match.group(1)

    # A registry record that fails validation, holding a secret.
    producer = make_producer(kafka_settings)
    await producer.start()
    try:
        bad = {"type": "ApplicationRegistered", "application_id": "broken", "name": "x",
               "signature_secret": MARKER}  # fmt: skip
        await producer.send_and_wait(
            kafka_settings.topics.applications, orjson.dumps(bad), key=b"broken"
        )
    finally:
        await producer.stop()
    gateway = next(p for p in stack.processes if p.name == "gateway")
    for _ in range(100):
        if "undecodable application record" in gateway.log():
            break
        await asyncio.sleep(0.1)
    assert "undecodable application record" in gateway.log()

    secrets = {
        "api_secret": app.api_secret,
        "the demo's api_secret": demo_api_secret,
        "signature_secret": app.signature_secret,
        "callback signature secret": CALLBACK_SECRET,
        "sealing key": TEST_SECRETS_KEYS.partition("=")[2],
    }
    logs = {p.name: p.log() for p in stack.processes}
    for name, secret in {**secrets, "invalid record's secret": MARKER}.items():
        for process, text in logs.items():
            assert secret not in text, f"{name} in the log of {process}"
    records = await every_record(kafka_settings)
    for name, secret in secrets.items():
        assert not any(secret.encode() in r for r in records), f"{name} on a topic"
