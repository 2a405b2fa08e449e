"""The echo of a decision the processor took is a no-op, whatever came between:
what lets the worker skip the echoes of its own decisions (``echoes.py``)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events.codec import LogEvent, encode
from services.processor.decide import Output, Policy
from services.processor.echoes import SKIPPABLE, OwnDecisions
from services.processor.writeback import WriteBack
from tests.unit.processor.harness import Harness
from tests.unit.processor.test_properties import LIMIT, actions, run


class EchoingHarness(Harness):
    """Reads every skippable decision back right after taking it, as the log
    would, and checks that folding it again changes nothing."""

    def __init__(self) -> None:
        super().__init__(Policy(final_step_limit=LIMIT))
        self.decisions: list[Output] = []

    def feed(self, event: LogEvent, offset: int | None = None) -> list[Output]:
        outputs = super().feed(event, offset)
        for output in outputs:
            if output.type in SKIPPABLE:
                self.decisions.append(output)
                self.assert_no_op(output)
        return outputs

    def assert_no_op(self, decision: Output) -> None:
        before = dict(self.stores.dispatches)
        buckets = dict(self.stores.buckets)
        assert super().feed(decision) == [], decision  # type: ignore[arg-type]
        assert self.stores.dispatches == before
        assert self.stores.buckets == buckets


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    steps=st.integers(1, 5),
    condition=st.sampled_from(["delivered", "read"]),
    actions=actions,
)
def test_an_echo_of_an_own_decision_changes_nothing(
    steps: int, condition: str, actions: list[tuple[object, ...]]
) -> None:
    h = EchoingHarness()
    run(steps, condition, actions, h)
    # ...read back again late, after everything that followed it.
    for decision in list(h.decisions):
        h.assert_no_op(decision)


def test_own_decisions_are_recognised_once_by_their_exact_bytes() -> None:
    h = Harness()
    h.request(steps=2)
    own = OwnDecisions()
    values = [(encode(o), o.type) for o in h.outputs]
    for value, kind in values:
        own.appended(value, kind)
    started = next(value for value, kind in values if kind == "StepStarted")
    assert own.echo(started) == "StepStarted"
    assert own.echo(started) is None  # a second copy takes the ordinary path
    assert own.echo(started[:-1] + b" ") is None
    own.forget()
    assert len(own) == 0


def test_own_decisions_never_include_usage_amendments_and_stay_bounded() -> None:
    own = OwnDecisions(limit=2)
    own.appended(b"a", "UsageAmended")
    assert own.echo(b"a") is None
    for value in (b"1", b"2", b"3"):
        own.appended(value, "StepStarted")
    assert len(own) == 2
    assert own.echo(b"1") is None
    assert own.echo(b"3") == "StepStarted"


def test_write_back_reads_its_own_writes_and_flushes_by_partition() -> None:
    table: dict[str, bytes] = {"kept": b"0", "gone": b"0"}
    cache = WriteBack(table)
    cache.partition = 1
    cache["a"] = b"1"
    del cache["gone"]
    cache.partition = 2
    cache["b"] = b"2"
    cache["tmp"] = b"x"
    del cache["tmp"]
    assert cache.get("a") == b"1" and cache.get("gone") is None and "tmp" not in cache
    assert cache["kept"] == b"0"
    assert table == {"kept": b"0", "gone": b"0"}
    assert cache.partitions() == {1, 2}
    cache.flush(1)
    assert table == {"kept": b"0", "a": b"1"}
    cache.flush(2)
    assert table == {"kept": b"0", "a": b"1", "b": b"2"}
    assert cache.partitions() == set()
    cache["c"] = b"3"
    cache.discard()
    assert cache.get("c") is None and "c" not in table
