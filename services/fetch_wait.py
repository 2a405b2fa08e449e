"""Fetch waits shaped by how busy a consumer is: long at rest, gathering under
a trickle, short while records wait to be handled.

Every consumer here fetches with a short ``fetch_max_wait_ms`` (50 ms, the
processor 100 ms; see ``services/kafka.py``) for a reason that only holds
while it is busy: aiokafka keeps one fetch in flight per broker, and the fetch
sent while some partitions still have records waiting to be handled leaves
those partitions out. If the others are empty the broker holds it the whole
wait, and the partitions left out get nothing new meanwhile. So the wait bounds
that stall.

**At rest.** A fetch that asks for every partition the consumer reads from
that broker leaves nothing out: any record arriving on any of them ends the
broker's wait at once, so a long wait costs no latency there. Idle, every fetch
is such a fetch, and the short wait only made an idle consumer ask twenty times
a second (each time a request for the broker to answer: with six consumers in a
stack about half the broker's CPU at rest). Those fetches wait
``IDLE_FETCH_MAX_WAIT_MS``.

**Under a trickle** (tens of dispatches a second, the load most deployments
see most of the time) that same rule hands every record over alone: each one
ends a fetch, and is decoded, handled, written on and committed by itself. At
30 dispatches a second a dispatch cost four to five times the CPU it costs at
saturation, most of it per-request overhead in every process and the broker.
So once a fetch to a broker has brought records, the next one to it *gathers*:
it asks the broker to hold it until ``GATHER_MIN_BYTES`` have come or
``gather_ms`` have passed, whichever is first (Kafka's ``fetch.min.bytes`` and
``fetch.max.wait.ms``, chosen per request). The first record after a quiet
spell still goes at once (the fetch that brings it was an idle one); what
follows it within ``gather_ms`` travels with the next fetch, a batch. A
gathering fetch that brings nothing makes the next one idle again, so the cost
at rest is unchanged. ``KAFKA_FETCH_GATHER_MS=0`` turns gathering off.

**Followers at rest.** A consumer that nothing else asks the broker through
once it has caught up (no offsets looked up, no seeks: the application
registry each gateway and deliverer follows) rests longer still:
``rest_longer`` makes its idle fetches wait ``FOLLOWER_IDLE_FETCH_MAX_WAIT_MS``.
Only such a consumer: Kafka answers one connection's requests in order, so
anything else sent through it (a ``ListOffsets``, the fetch after a seek)
would queue behind that wait.

**Partitions set aside.** A consumer may be assigned partitions it does not
read for now: faust keeps the processor's table changelogs assigned once they
are restored, and aiokafka goes on fetching them, so each holds a fetched
batch nobody takes, and every later fetch leaves it out. Such a fetch would
count as partial for good, and the idle processor asked ten times a second.
A process names those partitions with ``set_aside_when``; they count neither
as read from nor as left out.

aiokafka internals touched (pinned by ``tests/unit/processor/test_runtime_contract.py``):
``Fetcher._get_actions_per_node`` (its arguments and the 5-tuple it returns),
``Fetcher._proc_fetch_request`` (its arguments, and that it returns whether
records were added), ``Fetcher._select_read_replica``,
``Fetcher._fetch_min_bytes``, ``Fetcher._fetcher_timeout``, ``AIOKafkaConsumer._fetcher``,
``FetchRequest._max_wait_ms``, ``FetchRequest._min_bytes``, ``FetchRequest.topics``,
``Assignment.tps``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection
from typing import Any

from aiokafka.consumer.fetcher import Fetcher

from services.settings import KafkaSettings, SettingsError

# Kafka's and aiokafka's own default wait.
IDLE_FETCH_MAX_WAIT_MS = 500
# ... for a follower that only fetches (``rest_longer``).
FOLLOWER_IDLE_FETCH_MAX_WAIT_MS = 5000
# A gathering fetch returns early once this much has come: under real load it
# does not wait the whole window for what one fetch can carry anyway.
GATHER_MIN_BYTES = 64 * 1024

# How long aiokafka's fetch routine sleeps when nothing signals it (its
# default, 200 ms, is ``consumer_timeout_ms``). Everything the routine acts on
# wakes it: a fetch answered, records taken, a seek, a pause ended, an
# assignment lost; the timeout is a safety net, and at rest it woke every
# consumer five times a second for nothing.
FETCH_ROUTINE_TIMEOUT_S = 1.0

_actions_per_node = Fetcher._get_actions_per_node
_proc_fetch_request = Fetcher._proc_fetch_request
_fetcher_init = Fetcher.__init__


_gather_ms = 0
_set_aside: Callable[[], Collection[Any]] | None = None


def set_aside_when(partitions: Callable[[], Collection[Any]] | None) -> None:
    """Partitions (``(topic, partition)`` pairs) this process's consumers are
    assigned but do not read for now, asked for at each fetch."""
    global _set_aside
    _set_aside = partitions


def _gathering_nodes(fetcher: Any) -> set[int]:
    nodes: set[int] | None = getattr(fetcher, "_dispatch_gathering", None)
    if nodes is None:
        nodes = fetcher._dispatch_gathering = set()
    return nodes


def _actions_with_shaped_waits(self: Any, assignment: Any) -> Any:
    fetch_requests, *rest = _actions_per_node(self, assignment)
    # Only a consumer whose fetches any one record ends (fetch.min.bytes 1,
    # the default everywhere here) is shaped; one configured to wait for more
    # bytes keeps exactly what it asked for.
    if fetch_requests and self._fetch_min_bytes <= 1:
        gathering = _gathering_nodes(self)
        aside = _set_aside() if _set_aside is not None else ()
        read_from = Counter(
            self._select_read_replica(tp) for tp in assignment.tps if tp not in aside
        )
        for node_id, request in fetch_requests:
            if _gather_ms and node_id in gathering:
                request._min_bytes = GATHER_MIN_BYTES
                request._max_wait_ms = min(request._max_wait_ms, _gather_ms)
                continue
            asked = sum(
                1
                for topic, partitions in request.topics
                for partition, *_ in partitions
                if (topic, partition) not in aside
            )
            idle_wait_ms = getattr(self, "_dispatch_idle_wait_ms", IDLE_FETCH_MAX_WAIT_MS)
            if asked == read_from[node_id] and request._max_wait_ms < idle_wait_ms:
                request._max_wait_ms = idle_wait_ms
    return (fetch_requests, *rest)


async def _fetch_remembering_records(self: Any, assignment: Any, node_id: int, request: Any) -> Any:
    brought = await _proc_fetch_request(self, assignment, node_id, request)
    gathering = _gathering_nodes(self)
    if brought:
        gathering.add(node_id)
    else:
        gathering.discard(node_id)
    return brought


def rest_longer(consumer: Any, wait_ms: int = FOLLOWER_IDLE_FETCH_MAX_WAIT_MS) -> None:
    """From now on ``consumer``'s idle fetches wait ``wait_ms``: for a started
    consumer that will only fetch (see "Followers at rest" above)."""
    consumer._fetcher._dispatch_idle_wait_ms = wait_ms


def _init_waking_less(self: Any, *args: Any, **kwargs: Any) -> None:
    _fetcher_init(self, *args, **kwargs)
    self._fetcher_timeout = max(self._fetcher_timeout, FETCH_ROUTINE_TIMEOUT_S)


def install(gather_ms: int | None = None) -> None:
    """For every aiokafka consumer of this process (faust's included), with
    ``KAFKA_FETCH_GATHER_MS`` unless ``gather_ms`` is given."""
    global _gather_ms
    if gather_ms is None:
        try:
            gather_ms = KafkaSettings.from_env().fetch_gather_ms
        except SettingsError:
            # Each process validates its Kafka settings as it starts, and
            # exits there naming the bad variable; until then, the default.
            gather_ms = KafkaSettings.model_fields["fetch_gather_ms"].default
    _gather_ms = gather_ms
    Fetcher._get_actions_per_node = _actions_with_shaped_waits
    Fetcher._proc_fetch_request = _fetch_remembering_records
    Fetcher.__init__ = _init_waking_less
