"""The projector folds the real log into the read model that GET, audit and
replay show; it survives a kill -9 without applying anything twice. On both
stores: a SQLite file and a PostgreSQL database."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
import orjson
import pytest

from events.codec import encode
from projections.store import is_postgresql, sqlite_path
from services.inbound.lookup import MessageRef, ReadSideLookup
from services.kafka import KafkaSettings, make_producer
from tests.conftest import kafka_env
from tests.fixtures_events import failover_history, rejected_history
from tests.processes import BIN, Process, free_port

pytestmark = pytest.mark.kafka


async def _append(settings: KafkaSettings, events: list[object]) -> None:
    producer = make_producer(settings)
    await producer.start()
    try:
        for event in events:
            key = str(event.dispatch_uuid).encode()  # type: ignore[attr-defined]
            await producer.send_and_wait(settings.topics.events, encode(event), key=key)  # type: ignore[arg-type]
    finally:
        await producer.stop()


def _get(port: int, path: str, expect: int = 200, timeout: float = 20) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        response = httpx.get(f"http://127.0.0.1:{port}{path}", timeout=5)
        if response.status_code == expect or time.monotonic() > deadline:
            return response
        time.sleep(0.2)


def _start_projector(
    settings: KafkaSettings, store: str, port: int, tmp: Path, name: str
) -> Process:
    env = {**kafka_env(settings), "PROJECTOR_STORE_URL": store, "PROJECTOR_PORT": str(port)}
    process = Process(name, ["dispatch-projector"], env, tmp)
    process.wait_for_port(port)
    return process


def _cli(
    settings: KafkaSettings, port: int, store: str, *args: str
) -> subprocess.CompletedProcess[str]:
    env = {
        **kafka_env(settings),
        "PROJECTOR_URL": f"http://127.0.0.1:{port}",
        "PROJECTOR_STORE_URL": store,
    }
    return subprocess.run(
        [str(BIN / "dispatch"), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def _tamper(store: str, dispatch_uuid: str, view: dict[str, object]) -> None:
    """Change one view behind the projector's back."""
    if is_postgresql(store):
        db = await asyncpg.connect(store)
        try:
            await db.execute(
                "UPDATE views SET view = $1 WHERE dispatch_uuid = $2",
                orjson.dumps(view),
                dispatch_uuid,
            )
        finally:
            await db.close()
    else:
        with sqlite3.connect(sqlite_path(store)) as db:
            db.execute(
                "UPDATE views SET view = ? WHERE dispatch_uuid = ?",
                (orjson.dumps(view), dispatch_uuid),
            )


async def test_views_audit_and_replay_from_the_real_log(
    kafka_settings: KafkaSettings, tmp_path: Path, processes: list[Process], store_url: str
) -> None:
    completed, failed = uuid.uuid4(), uuid.uuid4()
    await _append(kafka_settings, failover_history(completed) + rejected_history(failed))
    db, port = store_url, free_port()
    projector = _start_projector(kafka_settings, db, port, tmp_path, "projector-1")
    processes.append(projector)

    assert _get(port, "/readyz").status_code == 200
    view = _get(port, f"/internal/dispatches/{completed}").json()
    assert view["status"] == "completed"
    assert [s["state"] for s in view["steps"]] == ["timed_out", "delivered"]
    assert view["usage"] == {"price": "0.0833", "currency": "EUR"}
    assert _get(port, f"/internal/dispatches/{failed}").json()["status"] == "error"
    assert _get(port, "/internal/messages/m-1").json() == {
        "dispatch_uuid": str(completed),
        "step": 1,
    }
    assert _get(port, f"/internal/dispatches/{uuid.uuid4()}", expect=404).status_code == 404
    # What the gateway asks for a status without a client_ref of ours.
    lookup = ReadSideLookup(f"http://127.0.0.1:{port}", wait_s=0.3)
    try:
        assert await lookup.lookup("m-1") == MessageRef(completed, 1)
        assert await lookup.lookup("never-sent") is None
    finally:
        await lookup.close()

    history = _get(port, f"/internal/dispatches/{completed}/events").json()["events"]
    assert [e["type"] for e in history] == [e.type for e in failover_history(completed)]

    result = _cli(kafka_settings, port, db, "audit", str(completed), "--json")
    assert result.returncode == 0, result.stderr
    timeline = orjson.loads(result.stdout)["timeline"]
    assert len(timeline) == len(history)
    assert "deadline" in timeline[5]["what"] and "failing over" in timeline[5]["what"]
    human = _cli(kafka_settings, port, db, "audit", str(completed))
    assert human.returncode == 0 and "StepTimedOut" in human.stdout

    # kill -9, more events, restart: resumes where the store says, nothing twice.
    projector.kill9()
    later = uuid.uuid4()
    await _append(kafka_settings, rejected_history(later))
    restarted = _start_projector(kafka_settings, db, port, tmp_path, "projector-2")
    processes.append(restarted)
    assert _get(port, f"/internal/dispatches/{later}").json()["status"] == "error"
    again = _get(port, f"/internal/dispatches/{completed}/events").json()["events"]
    assert again == history

    replayed = _cli(kafka_settings, port, db, "replay", "--no-decisions")
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert "replay equals live" in replayed.stdout

    # A live store that disagrees with the log is caught.
    restarted.stop()
    await _tamper(db, str(completed), {**view, "status": "error"})
    caught = _cli(kafka_settings, port, db, "replay", "--no-decisions")
    assert caught.returncode == 1
    assert f"view of {completed}: live and replay differ" in caught.stdout
