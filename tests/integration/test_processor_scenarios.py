"""Every rule of the failover template, end to end: the real ``dispatch-processor``
on the real broker. The test plays the gateway and the sender by appending to
dispatch.events and reads back what the processor writes. The scenarios run
side by side so the deadline waits overlap."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from events.base import utcnow
from events.dispatch import UsageAmended
from services.kafka import KafkaSettings
from tests.integration.processor_helpers import Driver, Watcher, item, start_processor
from tests.kafka_helpers import read_records
from tests.processes import Process
from tests.waiting import holds_for

pytestmark = pytest.mark.kafka


@pytest.fixture
async def rig(
    kafka_settings: KafkaSettings, processes: list[Process], tmp_path: Path
) -> AsyncIterator[tuple[Driver, Watcher]]:
    processor = start_processor(
        kafka_settings,
        tmp_path / "data",
        tmp_path,
        PROCESSOR_STORE="memory://",
        PROCESSOR_FINAL_STEP_LIMIT_S="20",
    )
    processes.append(processor)
    driver, watcher = Driver(kafka_settings), Watcher(kafka_settings)
    await driver.start()
    await watcher.start()
    processor.wait_for_log("Worker]: Ready", timeout=60)
    try:
        yield driver, watcher
        assert watcher.misplaced == []
    finally:
        await watcher.stop()
        await driver.stop()


async def condition_delivered_completes(driver: Driver, watcher: Watcher) -> None:
    d = await driver.request([item(), item("whatsapp", None)])
    await watcher.until(lambda: watcher.steps_sent(d) == [0])
    [send] = [s for _, s in watcher.sends if s.dispatch_uuid == d]
    assert "failover" not in send.message
    m = await driver.submitted(d, 0)
    at = utcnow()
    await driver.status(d, m, "delivered", price="0.0333", timestamp=at)
    await driver.status(d, m, "delivered", price="0.0333", timestamp=at)  # a duplicate
    await driver.status(d, m, "read", price="0.0333")
    await watcher.until(lambda: len(watcher.hooks(d, "final")) == 1)
    await watcher.until(lambda: len(watcher.hooks(d, "status")) == 2)
    [report] = watcher.hooks(d, "final")
    assert report["status"] == "completed"
    assert report["usage"] == {"price": "0.0333", "currency": "EUR"}
    assert report["_links"]["messages"][0]["message_uuid"] == m
    assert watcher.steps_sent(d) == [0]
    # The duplicate was dropped: delivered and read reach the client, once each.
    raw = [w for w in watcher.webhooks if w.dispatch_uuid == d and w.kind == "status"]
    assert [w.payload["status"] for w in raw] == ["delivered", "read"]
    status_hooks = watcher.hooks(d, "status")
    assert status_hooks[0]["_links"] == {
        "workflow": {"dispatch_uuid": str(d), "href": f"/workflows/{d}"}
    }
    assert "WorkflowCompleted" in watcher.event_types(d)


async def condition_read_waits_for_read(driver: Driver, watcher: Watcher) -> None:
    d = await driver.request([item(condition="read", expiry=60), item("whatsapp", None)])
    await watcher.until(lambda: watcher.steps_sent(d) == [0])
    m = await driver.submitted(d, 0)
    await driver.status(d, m, "delivered")
    await watcher.until(lambda: len(watcher.hooks(d, "status")) == 1)
    # Nothing signals a decision not taken: watched for a while instead.
    await holds_for(lambda: watcher.hooks(d, "final") == [], 1, what="no final before the read")
    await driver.status(d, m, "read")
    await watcher.until(lambda: len(watcher.hooks(d, "final")) == 1)
    assert watcher.hooks(d, "final")[0]["status"] == "completed"
    assert watcher.steps_sent(d) == [0]


async def rejected_fails_over_at_once(driver: Driver, watcher: Watcher) -> None:
    d = await driver.request([item(expiry=60), item("whatsapp", None)])
    await watcher.until(lambda: watcher.steps_sent(d) == [0])
    m0 = await driver.submitted(d, 0)
    await driver.status(d, m0, "rejected", price="0.0333")
    await watcher.until(lambda: watcher.steps_sent(d) == [0, 1], timeout=10)
    m1 = await driver.submitted(d, 1)
    await driver.status(d, m1, "delivered", price="0.02")
    await watcher.until(lambda: len(watcher.hooks(d, "final")) == 1)
    [report] = watcher.hooks(d, "final")
    assert report["status"] == "completed"
    assert report["usage"]["price"] == "0.0533"
    assert [m["message_uuid"] for m in report["_links"]["messages"]] == [m0, m1]


async def send_failure_is_rejected_and_last_step_errors(driver: Driver, watcher: Watcher) -> None:
    d = await driver.request([item(expiry=60), item("whatsapp", None)])
    await watcher.until(lambda: watcher.steps_sent(d) == [0])
    await driver.send_failed(d, 0)
    await watcher.until(lambda: watcher.steps_sent(d) == [0, 1], timeout=10)
    [rejected] = watcher.hooks(d, "status")
    assert rejected["status"] == "rejected"
    assert rejected["error"] == {"code": 1300, "reason": "Not part of the provider network"}
    m1 = await driver.submitted(d, 1)
    await driver.status(d, m1, "undeliverable")
    await watcher.until(lambda: len(watcher.hooks(d, "final")) == 1)
    assert watcher.hooks(d, "final")[0]["status"] == "error"


async def deadline_fails_over(driver: Driver, watcher: Watcher) -> None:
    d = await driver.request([item(expiry=15), item("whatsapp", None)])
    await watcher.until(lambda: watcher.steps_sent(d) == [0])
    submitted_at = time.time()
    await driver.submitted(d, 0)
    await watcher.until(lambda: watcher.steps_sent(d) == [0, 1], timeout=25)
    sent = watcher.send_time(d, 1)
    assert sent is not None
    assert sent - submitted_at >= 15 - 0.2  # never early (the broker stamps the record)
    assert sent - submitted_at <= 15 + 2.5
    assert "StepTimedOut" in watcher.event_types(d)


async def last_step_limit_ends_the_dispatch(driver: Driver, watcher: Watcher) -> None:
    d = await driver.request([item("whatsapp", None)])
    await watcher.until(lambda: watcher.steps_sent(d) == [0])
    m = await driver.submitted(d, 0)
    await driver.status(d, m, "submitted")
    await watcher.until(lambda: len(watcher.hooks(d, "final")) == 1, timeout=30)
    assert watcher.hooks(d, "final")[0]["status"] == "error"


async def late_price_is_amended(driver: Driver, watcher: Watcher) -> None:
    d = await driver.request([item(expiry=60), item("whatsapp", None)])
    await watcher.until(lambda: watcher.steps_sent(d) == [0])
    m0 = await driver.submitted(d, 0)
    await driver.status(d, m0, "rejected")
    await watcher.until(lambda: watcher.steps_sent(d) == [0, 1])
    m1 = await driver.submitted(d, 1)
    await driver.status(d, m1, "read", price="0.02")
    await watcher.until(lambda: len(watcher.hooks(d, "final")) == 1)
    await driver.status(d, m0, "undeliverable", price="0.0333")
    await watcher.until(lambda: "UsageAmended" in watcher.event_types(d))
    [amended] = [e for e in watcher.events if isinstance(e, UsageAmended) and e.dispatch_uuid == d]
    assert Decimal(amended.total.price) == Decimal("0.0533")
    await watcher.until(lambda: len(watcher.hooks(d, "status")) == 3)
    assert watcher.hooks(d, "status")[-1]["message_uuid"] == m0
    assert len(watcher.hooks(d, "final")) == 1


async def test_every_failover_rule_on_the_real_broker(
    rig: tuple[Driver, Watcher], kafka_settings: KafkaSettings
) -> None:
    driver, watcher = rig
    # Garbage first: the processor must neither crash nor stall behind it.
    await driver.producer.send_and_wait(kafka_settings.topics.events, b"{not json", key=b"x")
    await asyncio.gather(
        condition_delivered_completes(driver, watcher),
        condition_read_waits_for_read(driver, watcher),
        rejected_fails_over_at_once(driver, watcher),
        send_failure_is_rejected_and_last_step_errors(driver, watcher),
        deadline_fails_over(driver, watcher),
        last_step_limit_ends_the_dispatch(driver, watcher),
        late_price_is_amended(driver, watcher),
    )
    dead = await read_records(
        kafka_settings, kafka_settings.topics.dead_letters, until=lambda r: len(r) >= 1
    )
    assert dead[0].value == b"{not json"
    assert dict(dead[0].headers)["reason"].startswith(b"not JSON")
    # One final report per finished dispatch (the deadline one is still on its
    # last step), none of them twice.
    finals = [w.event_id for w in watcher.webhooks if w.kind == "final"]
    assert len(finals) == len(set(finals)) == 6
