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
    request = FetchRequest(50, 1, 1024, 0, [("t", [(0, 0, 1024)])])
    assert request._max_wait_ms == 50
    assert request.topics == [("t", [(0, 0, 1024)])]


def test_every_consumer_of_a_process_gets_the_idle_fetch_wait() -> None:
    import services.kafka  # noqa: F401  (installs it)

    assert Fetcher._get_actions_per_node is fetch_wait._actions_with_idle_wait
