"""Console pages at a million dispatches: list pages (every filter, deep pages)
and dispatch pages, through the real ``dispatch-console`` process over HTTP.

The store is filled directly through ``SQLiteStore.write`` (so the
console's triggers build its index exactly as the projector's writes would)
with rows cloned from real event sequences: each synthetic dispatch is one of
four shapes (failed over then completed, rejected then error, in flight,
completed with its final report abandoned), with its own dispatch and message
uuids, one of five applications and a time spread over seven days.

    .venv/bin/python bench/bench_console.py --dispatches 1000000
    (the store is kept in .local/bench/console-<n>.sqlite3 and reused)

With ``--baseline-tree DIR`` (a source tree of another version, e.g. from
``git archive``) a second console runs that version's code on the same store
and every request goes to both in turn, so the two columns share the
machine's load.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import socket
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from events.codec import encode  # noqa: E402
from events.dispatch import WebhookAbandoned, WebhookDelivered  # noqa: E402
from projections import view as views  # noqa: E402
from projections.sqlite_store import SQLiteStore  # noqa: E402
from projections.store import Batch, HistoryRow  # noqa: E402
from tests.fixtures_events import T0, failover_history, rejected_history  # noqa: E402

TEMPLATE = uuid.UUID("00000000-0000-4000-8000-000000000000")
TEMPLATE_APP = "app-template"
TEMPLATE_HOUR = b"2026-01-01T12:0"  # every template time starts so (12:00-12:09)
APPS = [f"app-{i}-{uuid.UUID(int=i + 1)}" for i in range(5)]
SPAN = timedelta(days=7)
CHUNK = 20_000


def _abandoned_final(events: list[Any]) -> list[Any]:
    """The failover shape with its final report abandoned (HTTP 410)."""
    out = []
    for event in events:
        if isinstance(event, WebhookDelivered) and event.kind == "final":
            event = WebhookAbandoned(
                dispatch_uuid=event.dispatch_uuid,
                webhook_id=event.webhook_id,
                kind="final",
                attempts=1,
                reason="not retryable: HTTP 410",
                http_status=410,
                occurred_at=event.occurred_at,
            )
        out.append(event)
    return out


def shapes() -> list[tuple[int, bytes, list[tuple[str, str, bytes]], list[str]]]:
    """(weight, view json, [(type, occurred_at, event json)], message uuids) per shape."""
    failed_over = failover_history(TEMPLATE, app=TEMPLATE_APP)
    sequences = [
        (70, failed_over),
        (20, rejected_history(TEMPLATE, app=TEMPLATE_APP)),
        (9, failed_over[:3]),
        (1, _abandoned_final(failed_over)),
    ]
    built = []
    for weight, events in sequences:
        # Every template time inside TEMPLATE_HOUR, so that each clone gets its own.
        events = [
            e
            if e.occurred_at.isoformat().startswith(TEMPLATE_HOUR.decode())
            else e.model_copy(update={"occurred_at": T0 + timedelta(seconds=n)})
            for n, e in enumerate(events)
        ]
        view = None
        rows = []
        messages = []
        for event in events:
            view = views.apply(view, event)
            rows.append((event.type, event.occurred_at.isoformat(), encode(event)))
            message = getattr(event, "message_uuid", None)
            if message and message not in messages and event.type == "MessageSubmitted":
                messages.append(message)
        built.append((weight, orjson.dumps(view), rows, messages))
    return built


def fill(path: Path, count: int) -> None:
    store = SQLiteStore(str(path))
    written: int | None = None
    # A bulk fill of random keys: keep the B-trees in memory (2 GiB) rather than
    # re-reading pages for every insert, and let the OS write when it likes.
    store._db.execute("PRAGMA cache_size = -2000000")
    store._db.execute("PRAGMA synchronous = OFF")
    templates = shapes()
    weights = [w for w, *_ in templates]
    rng = random.Random(7)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    offset = 0
    began = time.monotonic()
    for first in range(0, count, CHUNK):
        batch = Batch(views={}, history=[], messages={}, positions={})
        for i in range(first, min(first + CHUNK, count)):
            _, view, rows, messages = rng.choices(templates, weights)[0]
            dispatch = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            moment = start + SPAN * i / count
            slot = moment.strftime("%Y-%m-%dT%H:").encode() + str(moment.minute // 10).encode()
            swaps = [
                (str(TEMPLATE).encode(), dispatch.encode()),
                (TEMPLATE_APP.encode(), APPS[i % len(APPS)].encode()),
                (TEMPLATE_HOUR, slot),
            ]
            swaps += [(m.encode(), str(uuid.uuid4()).encode()) for m in messages]

            def swap(data: bytes, swaps: list[tuple[bytes, bytes]] = swaps) -> bytes:
                for old, new in swaps:
                    data = data.replace(old, new)
                return data

            batch.views[dispatch] = orjson.loads(swap(view))
            for kind, at, event in rows:
                batch.history.append(
                    HistoryRow(0, offset, dispatch, kind, swap(at.encode()).decode(), swap(event))
                )
                offset += 1
            for step, message in enumerate(messages):
                batch.messages[swap(message.encode()).decode()] = (dispatch, step)
        batch.positions[0] = offset
        asyncio.run(store.write(batch, {0: written}))
        written = offset
        done = min(first + CHUNK, count)
        if done % 100_000 == 0 or done == count:
            rate = done / (time.monotonic() - began)
            print(f"  filled {done:,} dispatches ({offset:,} history rows), {rate:,.0f}/s")
    asyncio.run(store.close())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p = statistics.quantiles(ordered, n=100, method="inclusive")
    return (
        f"n={len(ordered)} p50 {p[49] * 1000:.1f} ms  p99 {p[98] * 1000:.1f} ms  "
        f"max {ordered[-1] * 1000:.1f} ms"
    )


def timed_pair(clients: list[httpx.Client], path: str, runs: int) -> list[list[float]]:
    """``path`` requested ``runs`` times from each client, alternating."""
    samples: list[list[float]] = [[] for _ in clients]
    for _ in range(runs):
        for client, found in zip(clients, samples, strict=True):
            found += timed(client, path, 1)
    return samples


def timed(client: httpx.Client, path: str, runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        began = time.perf_counter()
        response = client.get(path)
        samples.append(time.perf_counter() - began)
        assert response.status_code == 200, (path, response.status_code, response.text[:300])
    return samples


def sample_ids(path: Path, n: int) -> tuple[list[str], list[str]]:
    import sqlite3

    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    total = db.execute("SELECT max(rowid) FROM console_dispatches").fetchone()[0]
    rng = random.Random(11)
    dispatches = []
    for _ in range(n):
        row = db.execute(
            "SELECT dispatch_uuid FROM console_dispatches WHERE rowid >= ? LIMIT 1",
            (rng.randint(1, total),),
        ).fetchone()
        dispatches.append(row[0])
    messages = [m for (m,) in db.execute("SELECT message_uuid FROM messages LIMIT 50")]
    db.close()
    return dispatches, messages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dispatches", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=100, help="requests per list query")
    parser.add_argument("--pages", type=int, default=500, help="dispatch pages requested")
    parser.add_argument(
        "--baseline-tree", type=Path, help="also run this source tree's console, alternating"
    )
    args = parser.parse_args()
    path = ROOT / ".local" / "bench" / f"console-{args.dispatches}.sqlite3"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        print(f"filling {path} with {args.dispatches:,} dispatches")
        began = time.monotonic()
        fill(path.with_suffix(".partial"), args.dispatches)
        path.with_suffix(".partial").rename(path)
        print(
            f"  filled in {time.monotonic() - began:.0f} s, {path.stat().st_size / 2**30:.2f} GiB"
        )
    dispatches, messages = sample_ids(path, args.pages)

    token = secrets.token_hex(16)
    trees: list[Path | None] = [None] + ([args.baseline_tree] if args.baseline_tree else [])
    consoles = [start_console(path, token, tree) for tree in trees]
    try:
        clients = [
            httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30)
            for _, base in consoles
        ]
        for client in clients:
            for _ in range(100):
                try:
                    client.get("/healthz")
                    break
                except httpx.HTTPError:
                    time.sleep(0.1)
        time.sleep(2)  # the first figures sample, at start-up, is done
        columns = "this tree" + (" | baseline" if args.baseline_tree else "")
        day = "since=2026-11-04T00:00:00&until=2026-11-05T00:00:00"
        queries = {
            "newest, no filter": "",
            "application": f"application={APPS[2]}",
            "status=error": "status=error",
            "status=in_progress": "status=in_progress",
            "channel=whatsapp": "channel=whatsapp",
            "application+status+channel": f"application={APPS[1]}&status=error&channel=sms",
            "failed over": "failed_over=1",
            "webhook abandoned": "abandoned=1",
            "one day": day,
            "one day + status=error": f"{day}&status=error",
            "search dispatch uuid prefix": f"q={dispatches[0][:8]}",
            "search message uuid": f"q={messages[0]}",
        }
        list_samples: list[list[float]] = [[] for _ in clients]

        def show(name: str, samples: list[list[float]]) -> None:
            print(f"  {name:30} " + " | ".join(percentiles(s) for s in samples))

        print(
            f"\nlist page (50 rows), {args.runs} requests each, store {args.dispatches:,} "
            f"({columns}):"
        )
        for name, query in queries.items():
            samples = timed_pair(clients, f"/console/dispatches?{query}", args.runs)
            for total, found in zip(list_samples, samples, strict=True):
                total += found
            show(name, samples)
        deep: list[list[float]] = [[] for _ in clients]
        links = ["/console/dispatches" for _ in clients]
        for _ in range(200):  # paging on: 200 pages deep = 10,000 rows
            for n, client in enumerate(clients):
                began = time.perf_counter()
                text = client.get(links[n]).text
                deep[n].append(time.perf_counter() - began)
                marker = 'rel="next"'
                at = text.find(marker)
                link = "/console/dispatches" + text[text.rfind('href="', 0, at) + 6 : at - 2]
                links[n] = link.replace("&amp;", "&")
        for total, found in zip(list_samples, deep, strict=True):
            total += found
        show("200 pages deep, one by one", deep)
        show("all list requests", list_samples)
        pages: list[list[float]] = [[] for _ in clients]
        for d in dispatches:
            for total, found in zip(
                pages, timed_pair(clients, f"/console/dispatches/{d}", 1), strict=True
            ):
                total += found
        print(f"\ndispatch page, {len(dispatches)} random dispatches ({columns}):")
        show("dispatch page", pages)
        show("overview (figures, whole store)", timed_pair(clients, "/console", 20))
    finally:
        for process, _ in consoles:
            process.terminate()
            process.wait(timeout=10)


def start_console(
    store: Path, token: str, tree: Path | None
) -> tuple[subprocess.Popen[bytes], str]:
    """``dispatch-console`` on ``store``: this tree's, or the code in ``tree``
    run with this environment's packages."""
    port = free_port()
    env = {
        **os.environ,
        "CONSOLE_TOKEN": token,
        "CONSOLE_PORT": str(port),
        "PROJECTOR_DB": str(store),
        "CONSOLE_PROCESSOR_METRICS_URL": "",
        "CONSOLE_SAMPLE_INTERVAL_S": "3600",  # no background sampling during the timing
    }
    if tree is None:
        command = [str(Path(sys.executable).parent / "dispatch-console")]
    else:
        env["PYTHONPATH"] = str(tree.resolve())
        command = [sys.executable, "-c", "from services.console.main import main; main()"]
    process = subprocess.Popen(
        command, env=env, cwd=tree or ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return process, f"http://127.0.0.1:{port}"


if __name__ == "__main__":
    main()
