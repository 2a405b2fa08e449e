"""Every Kafka record and request of an end-to-end run, counted per dispatch.

Three sources, each the reliable one for what it counts:

- records produced per topic: the growth of each topic's end offsets over the
  run, read from the broker (the run's topics, ``__consumer_offsets`` included:
  each committed partition offset is a record there, so its growth is the
  offset commits as the broker stored them);
- requests per process by API (Produce, Fetch, OffsetCommit, ...) and the
  records each process fetched per topic: counted inside each process by
  ``bench/kafka_counting/sitecustomize.py`` on aiokafka's request path;
- the broker's CPU split by thread (request handlers and network threads,
  the KRaft controller, the group coordinator, GC, the JIT, ...) from
  ``/proc/<pid>/task``: the JVM names its threads, Linux keeps the first 15
  characters of each name.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from pathlib import Path

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition

from bench.e2e_support import TICKS

COUNTING_DIR = Path(__file__).resolve().parent / "kafka_counting"
# Grows by one record per partition offset committed.
OFFSETS = "__consumer_offsets"


def counting_env(directory: Path) -> dict[str, str]:
    """The environment that makes a Python process count its Kafka requests into ``directory``."""
    path = os.pathsep.join(p for p in (str(COUNTING_DIR), os.environ.get("PYTHONPATH")) if p)
    return {"PYTHONPATH": path, "DISPATCH_BENCH_KAFKA_COUNTS_DIR": str(directory)}


def process_counts(directory: Path, pids: dict[str, int]) -> dict[str, Counter[str]]:
    """The counts each named process has written so far."""
    out: dict[str, Counter[str]] = {}
    for name, pid in pids.items():
        path = directory / f"{pid}.json"
        out[name] = Counter(json.loads(path.read_text())) if path.exists() else Counter()
    return out


async def end_offsets(bootstrap: str, prefix: str = "") -> dict[str, int]:
    """The sum of the end offsets of each topic's partitions: the topics named
    with ``prefix``, and the offsets topic (commits). Only those: a broker that
    has held many runs has thousands of partitions, and asking for all their
    offsets outlasted the request timeout."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        topics = [t for t in await admin.list_topics() if t.startswith(prefix) or t == OFFSETS]
        described = await admin.describe_topics(topics)
    finally:
        await admin.close()
    partitions = [
        TopicPartition(topic["topic"], partition["partition"])
        for topic in described
        for partition in topic["partitions"]
    ]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        offsets = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    totals: Counter[str] = Counter()
    for tp, offset in offsets.items():
        totals[tp.topic] += offset
    return dict(totals)


def broker_threads(pid: int) -> dict[str, float]:
    """CPU-seconds of the broker's threads, by thread name without its numbers."""
    out: Counter[str] = Counter()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except FileNotFoundError:
            continue
        name = re.sub(r"[-#]?\d+$", "", stat[stat.index("(") + 1 : stat.rindex(")")]).strip()
        fields = stat.rsplit(")", 1)[1].split()
        out[name] += (int(fields[11]) + int(fields[12])) / TICKS
    return dict(out)


def _short(topic: str, prefix: str) -> str:
    return topic.replace(prefix, "") if prefix else topic


def table(
    completed: int,
    prefix: str,
    offsets: tuple[dict[str, int], dict[str, int]],
    processes: tuple[dict[str, Counter[str]], dict[str, Counter[str]]],
    broker: tuple[dict[str, float], dict[str, float]] | None,
) -> list[str]:
    """Lines of the per-dispatch table from snapshots taken before and after a run."""
    n = max(completed, 1)
    lines = [f"Kafka per dispatch (over {completed} dispatches; topic prefix {prefix!r} dropped):"]
    before, after = offsets
    produced = {t: after[t] - before.get(t, 0) for t in after if after[t] - before.get(t, 0) > 0}
    fetched: Counter[str] = Counter()
    requests: dict[str, Counter[str]] = {}
    fetch_partitions: Counter[str] = Counter()
    for name, counts in processes[1].items():
        delta = counts - processes[0].get(name, Counter())
        requests[name] = Counter(
            {k.split(" ", 1)[1]: v for k, v in delta.items() if k.startswith("request ")}
        )
        fetch_partitions[name] = delta.get("partitions Fetch", 0)
        for key, value in delta.items():
            if key.startswith("fetched "):
                fetched[key.split(" ", 1)[1]] += value
    lines.append(f"  {'topic':44} {'produced':>9} {'fetched':>9}")
    for topic in sorted(set(produced) | set(fetched)):
        lines.append(
            f"  {_short(topic, prefix):44} {produced.get(topic, 0) / n:9.2f} "
            f"{fetched.get(topic, 0) / n:9.2f}"
        )
    lines.append(
        f"  {'all topics':44} {sum(produced.values()) / n:9.2f} {sum(fetched.values()) / n:9.2f}"
    )
    apis = ["Produce", "Fetch", "OffsetCommit", "TxnOffsetCommit", "Heartbeat", "Metadata"]
    lines.append(
        "  requests per dispatch, by process: "
        + ", ".join(apis)
        + ", other; partitions a fetch names"
    )
    for name, counts in sorted(requests.items()):
        other = sum(v for k, v in counts.items() if k not in apis)
        fetches = counts.get("Fetch", 0)
        per_fetch = f"{fetch_partitions[name] / fetches:7.1f}" if fetches else f"{'-':>7}"
        lines.append(
            f"    {name:28} "
            + " ".join(f"{counts.get(api, 0) / n:7.2f}" for api in apis)
            + f" {other / n:7.2f} {per_fetch}"
        )
    totals = sum(requests.values(), Counter())
    lines.append(
        f"    {'all processes':28} "
        + " ".join(f"{totals.get(api, 0) / n:7.2f}" for api in apis)
        + f" {sum(v for k, v in totals.items() if k not in apis) / n:7.2f}"
    )
    if broker is not None:
        threads = {k: broker[1][k] - broker[0].get(k, 0.0) for k in broker[1]}
        total = sum(threads.values()) or 1.0
        lines.append("  broker CPU by thread (CPU-ms per dispatch, share):")
        for name, seconds in sorted(threads.items(), key=lambda kv: -kv[1])[:10]:
            if seconds > 0:
                lines.append(
                    f"    {name:28} {1000 * seconds / n:6.2f} ms {100 * seconds / total:5.1f} %"
                )
    return lines
