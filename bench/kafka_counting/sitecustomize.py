"""Counts every Kafka request a Python process makes, for the end-to-end
benchmark's record and request table (``bench/kafka_counts.py``).

Loaded by the interpreter at start when this folder is on ``PYTHONPATH`` and
does nothing unless ``DISPATCH_BENCH_KAFKA_COUNTS_DIR`` is set: then it wraps
aiokafka's one request path (``AIOKafkaConnection.send``, under faust too),
counting requests by API, the partitions each fetch names, and the records of
each fetch response by topic (control batches left out), and writes the counts
to ``<dir>/<pid>.json`` four times a second from a thread. The product's code is untouched.
"""

from __future__ import annotations

import json
import os
import struct
import threading
import time
from collections import Counter
from typing import Any

_DIR = os.environ.get("DISPATCH_BENCH_KAFKA_COUNTS_DIR", "")

# Kafka API keys by name (the ones these clients send).
_API_NAMES = {
    0: "Produce", 1: "Fetch", 2: "ListOffsets", 3: "Metadata", 8: "OffsetCommit",
    9: "OffsetFetch", 10: "FindCoordinator", 11: "JoinGroup", 12: "Heartbeat",
    13: "LeaveGroup", 14: "SyncGroup", 18: "ApiVersions", 19: "CreateTopics",
    22: "InitProducerId", 24: "AddPartitionsToTxn", 25: "AddOffsetsToTxn", 26: "EndTxn",
    28: "TxnOffsetCommit", 32: "DescribeConfigs",
}  # fmt: skip
_BATCH_HEADER = 61  # bytes of a v2 record batch header


def _records_in(data: bytes | None) -> int:
    """Data records in a fetched record set (v2 batches)."""
    count = 0
    position = 0
    while data and position + _BATCH_HEADER <= len(data):
        (length,) = struct.unpack_from(">i", data, position + 8)
        (attributes,) = struct.unpack_from(">h", data, position + 21)
        if not attributes & 0x20:  # not a control batch (transaction marker)
            (records,) = struct.unpack_from(">i", data, position + 57)
            count += records
        position += 12 + length
    return count


def _install(directory: str) -> None:
    from aiokafka.conn import AIOKafkaConnection

    counts: Counter[str] = Counter()
    original_send = AIOKafkaConnection.send

    async def _count_fetched(waiting: Any) -> Any:
        response = await waiting
        for topic, partitions in response.topics:
            fetched = sum(_records_in(partition[-1]) for partition in partitions)
            if fetched:
                counts[f"fetched {topic}"] += fetched
        return response

    def send(self: Any, request: Any, expect_response: bool = True) -> Any:
        api = _API_NAMES.get(request.API_KEY, str(request.API_KEY))
        counts[f"request {api}"] += 1
        if api == "Fetch":
            # How many partitions the request names: the broker reads each one.
            counts["partitions Fetch"] += sum(len(p) for _, p in getattr(request, "topics", ()))
        waiting = original_send(self, request, expect_response)
        if api == "Fetch" and expect_response:
            return _count_fetched(waiting)
        return waiting

    AIOKafkaConnection.send = send  # type: ignore[method-assign]
    path = os.path.join(directory, f"{os.getpid()}.json")

    def write() -> None:
        written: dict[str, int] = {}
        while True:
            time.sleep(0.25)
            snapshot = dict(counts)  # one C-level copy: safe beside the event loop
            if snapshot != written:
                with open(path + ".tmp", "w") as out:
                    json.dump(snapshot, out)
                os.replace(path + ".tmp", path)
                written = snapshot

    threading.Thread(target=write, name="kafka-counts", daemon=True).start()


if _DIR:
    _install(_DIR)
