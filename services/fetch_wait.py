"""Fetch waits that are short while a consumer is busy and long while it idles.

Every consumer here fetches with a short ``fetch_max_wait_ms`` (50 ms, the
processor 100 ms; see ``services/kafka.py``) for a reason that only holds
while it is busy: aiokafka keeps one fetch in flight per broker, and the fetch
sent while some partitions still have records waiting to be handled leaves
those partitions out. If the others are empty the broker holds it the whole
wait, and the partitions left out get nothing new meanwhile. So the wait bounds
that stall.

A fetch that asks for every partition the consumer reads from that broker
leaves nothing out: any record arriving on any of them ends the broker's wait
at once, so a long wait costs no latency there. Idle, every fetch is such a
fetch, and the short wait only made an idle consumer ask twenty times a second
(each time a request for the broker to answer: with six consumers in a stack
about half the broker's CPU at rest). ``install`` makes aiokafka send those
fetches with ``IDLE_FETCH_MAX_WAIT_MS``, and every other fetch as configured.

aiokafka internals touched (pinned by ``tests/unit/test_fetch_wait.py``):
``Fetcher._get_actions_per_node`` (its arguments and the 5-tuple it returns),
``Fetcher._select_read_replica``, ``Fetcher._fetch_min_bytes``, ``FetchRequest._max_wait_ms``,
``FetchRequest.topics``, ``Assignment.tps``.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from aiokafka.consumer.fetcher import Fetcher

# Kafka's and aiokafka's own default wait.
IDLE_FETCH_MAX_WAIT_MS = 500

_actions_per_node = Fetcher._get_actions_per_node


def _actions_with_idle_wait(self: Any, assignment: Any) -> Any:
    fetch_requests, *rest = _actions_per_node(self, assignment)
    # Only a fetch that any one record ends (fetch.min.bytes 1, the default
    # everywhere here) may wait long; one that waits for more bytes would wait
    # the whole of it while records trickle in.
    if fetch_requests and self._fetch_min_bytes <= 1:
        read_from = Counter(self._select_read_replica(tp) for tp in assignment.tps)
        for node_id, request in fetch_requests:
            asked = sum(len(partitions) for _, partitions in request.topics)
            if asked == read_from[node_id] and request._max_wait_ms < IDLE_FETCH_MAX_WAIT_MS:
                request._max_wait_ms = IDLE_FETCH_MAX_WAIT_MS
    return (fetch_requests, *rest)


def install() -> None:
    """For every aiokafka consumer of this process (faust's included)."""
    Fetcher._get_actions_per_node = _actions_with_idle_wait
