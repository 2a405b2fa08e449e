"""The faust-streaming and aiokafka internals the runtime relies on, pinned.

``services/processor/runtime/`` and ``services/fetch_wait.py`` reach into
private parts of both libraries (each lists them in its docstring). An upgrade
that renames or reshapes one of them fails here, in one place, instead of
silently changing how batches are taken or fetches wait."""

from __future__ import annotations

import inspect
from importlib.metadata import version

import faust.streams
from aiokafka.consumer.fetcher import Fetcher
from aiokafka.protocol.fetch import FetchRequest

from services import fetch_wait

# The versions the list below was checked against: review every item of it
# before moving either pin.
PINNED = {"faust-streaming": "0.15.3", "aiokafka": "0.14.0"}


def test_the_installed_versions_are_the_ones_checked() -> None:
    assert {name: version(name) for name in PINNED} == PINNED


def test_stream_internals_take_batches_uses() -> None:
    stream = faust.streams.Stream
    for name in ("add_processor", "_enable_passive", "wait_for_stopped", "ack", "crash"):
        assert callable(getattr(stream, name)), name
    assert isinstance(stream.should_stop, property)
    # Set by the stream for the event it is handing over (what a processor sees).
    assert "self.current_event = event" in inspect.getsource(stream)
    init = inspect.getsource(stream.__init__)
    for attribute in ("self._processors", "self._active_agens", "self.enable_acks", "self.channel"):
        assert attribute in init, attribute
    assert list(inspect.signature(stream._enable_passive).parameters)[:2] == ["self", "channel"]
    # take_events is what take_batches replaces: still a wait with a timeout.
    assert "wait_for_stopped" in inspect.getsource(stream.take_events)


def test_fetcher_internals_the_idle_fetch_wait_uses() -> None:
    assert list(inspect.signature(fetch_wait._actions_per_node).parameters) == [
        "self",
        "assignment",
    ]
    source = inspect.getsource(fetch_wait._actions_per_node)
    assert "return (\n            fetch_requests," in source  # the 5-tuple, requests first
    assert "def _select_read_replica(self, tp)" in inspect.getsource(Fetcher)
    init = inspect.getsource(fetch_wait._fetcher_init)
    assert "self._fetch_min_bytes = fetch_min_bytes" in init
    # The routine's safety-net timeout: set once, used when nothing else is due.
    assert "self._fetcher_timeout = fetcher_timeout" in init
    assert "backoff = self._fetcher_timeout" in source
    # A follower's fetcher, reached from its consumer (``rest_longer``).
    from aiokafka import AIOKafkaConsumer

    assert "self._fetcher = Fetcher(" in inspect.getsource(AIOKafkaConsumer.start)
    request = FetchRequest(50, 1, 1024, 0, [("t", [(0, 0, 1024)])])
    assert request._max_wait_ms == 50
    assert request._min_bytes == 1
    assert request.topics == [("t", [(0, 0, 1024)])]
    # Gathering remembers per broker whether the last fetch brought records:
    # the fetch routine's per-node task, which says so by what it returns.
    assert list(inspect.signature(fetch_wait._proc_fetch_request).parameters) == [
        "self",
        "assignment",
        "node_id",
        "request",
    ]
    proc = inspect.getsource(fetch_wait._proc_fetch_request)
    assert "return needs_wakeup" in proc and "needs_wakeup = True" in proc
    routine = inspect.getsource(Fetcher._fetch_requests_routine)
    assert "self._proc_fetch_request(assignment, node_id, request)" in routine
    assert "self._get_actions_per_node(assignment)" in routine


def test_every_consumer_of_a_process_gets_the_idle_fetch_wait() -> None:
    import services.kafka  # noqa: F401  (installs it)

    assert Fetcher._get_actions_per_node is fetch_wait._actions_with_shaped_waits
    assert Fetcher._proc_fetch_request is fetch_wait._fetch_remembering_records
    assert Fetcher.__init__ is fetch_wait._init_waking_less


def attributes_set_in_init(cls: type) -> str:
    return inspect.getsource(cls.__init__)


def test_consumer_internals_intake_and_handover_use() -> None:
    from faust.transport import consumer as faust_consumer
    from faust.transport.drivers import aiokafka as faust_aiokafka
    from faust.types.tuples import ack_lock

    from services.processor.runtime import handover, intake

    consumer = faust_consumer.Consumer
    init = attributes_set_in_init(consumer)
    for name in ("_read_offset", "_committed_offset", "_acked", "_acked_index", "_gap"):
        assert f"self.{name}" in init, name
    assert "self._n_acked" in inspect.getsource(consumer)
    # The originals the runtime wraps, as it found them at import.
    assert callable(intake._getmany) and callable(intake._create_worker_consumer)
    assert callable(handover._on_partitions_revoked) and callable(handover._on_partitions_assigned)
    # The commit guard wraps the step that flushes the producer, then commits.
    assert list(inspect.signature(handover._commit_offsets).parameters) == [
        "self",
        "offsets",
        "start_new_transaction",
    ]
    commit_source = inspect.getsource(handover._commit_offsets)
    assert commit_source.index("producer.flush()") < commit_source.index("self._commit(")
    assert "_getmany" in vars(faust_aiokafka.Consumer) or hasattr(
        faust_aiokafka.Consumer, "_getmany"
    )
    assert hasattr(faust_aiokafka.AIOKafkaConsumerThread, "_create_worker_consumer")
    assert list(inspect.signature(intake._getmany).parameters) == [
        "self",
        "active_partitions",
        "timeout",
    ]
    assert "self._fetch_max_wait_ms = fetch_max_wait_ms" in inspect.getsource(
        fetch_wait._fetcher_init
    )
    # The partitions faust hands over (changelogs leave it once restored).
    assert "self._active_partitions = set()" in inspect.getsource(consumer._reset_state)
    pause = inspect.getsource(consumer.pause_partitions)
    assert "self._get_active_partitions().difference_update(tpset)" in pause
    assert ack_lock is not None
    assert hasattr(faust.Topic, "_compile_decode")


def test_recovery_internals_the_last_seek_patch_uses() -> None:
    from mode.utils.queues import FlowControlEvent

    from services.processor.runtime import handover

    # Each recovery ending seeks, then resumes the flow (which empties the
    # stream buffers through ``clear``): the order the patch relies on.
    for ending in (handover._on_recovery_completed, handover._resume_streams):
        source = inspect.getsource(ending)
        assert source.index("perform_seek()") < source.index("flow_control.resume()"), ending
        assert list(inspect.signature(ending).parameters) == ["self", "generation_id"]
    assert "self.clear()" in inspect.getsource(handover._resume)
    assert list(inspect.signature(handover._perform_seek).parameters) == ["self"]
    assert callable(FlowControlEvent.clear)


def test_store_internals_the_changelog_writer_uses() -> None:
    from faust.stores import base
    from faust.stores.rocksdb import Store as RocksDBStore

    for name in ("_encode_key", "_decode_key", "_encode_value", "_decode_value"):
        assert callable(getattr(base.Store, name)), name
    for name in ("_db_for_partition", "set_persisted_offset"):
        assert callable(getattr(RocksDBStore, name)), name
    assert "self.use_rocksdict" in inspect.getsource(RocksDBStore.__init__)


def test_app_internals_the_context_uses() -> None:
    from faust.streams import _current_event

    assert _current_event.name  # a ContextVar faust's tables read
    assert "_current_event.get(None)" in inspect.getsource(faust.streams)
    assert hasattr(faust.App, "consumer_generation_id")
    from faust.transport.producer import Producer

    assert hasattr(Producer, "_ensure_producer") or any(
        hasattr(cls, "_ensure_producer") for cls in Producer.__subclasses__()
    )
    from faust.tables.recovery import Recovery

    source = inspect.getsource(Recovery)
    for name in ("in_recovery", "_recovery_started_at", "_active_events_received_at"):
        assert name in source, name


def test_producer_internals_the_rebuilding_producer_uses() -> None:
    from aiokafka import AIOKafkaProducer

    init = attributes_set_in_init(AIOKafkaProducer)
    assert "self._closed" in init and "self._sender" in init
    from aiokafka import AIOKafkaConsumer

    assert "self._client" in attributes_set_in_init(AIOKafkaConsumer)
    assert "self.client" in init  # the producer's client, public
