"""The chaos run, bounded: a steady load of mixed-outcome dispatches while,
in turn, every process is killed -9 and started again, the broker is
restarted, the webhook receiver answers 503 for a while, and the provider
answers 503 and then times out for a while (`tests/integration/chaos.py`).

Nothing a gateway accepted may be lost, no final report may come twice, no
step may be sent twice, no status webhook may be missing and nothing may be
dead-lettered. The longer form is `bench/bench_chaos.py --minutes N`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.chaos import run_chaos
from tests.integration.test_broker_restart import Broker, own_broker  # noqa: F401

pytestmark = pytest.mark.kafka


@pytest.mark.timeout(420)
async def test_chaos_loses_repeats_and_parks_nothing(
    own_broker: Broker,  # noqa: F811
    tmp_path: Path,
) -> None:
    run = await run_chaos(own_broker, tmp_path, rate=5, pause_s=4)
    t = run.tally
    report = "\n".join(["", *run.timeline, f"answers {run.answers}", t.table(), *t.problems[:30]])
    print(report)
    assert not run.processes_down_at_end, run.processes_down_at_end
    assert not run.unexpected_answers, run.unexpected_answers[:5]
    assert t.accepted >= 300, report
    assert t.lost == 0, report
    assert t.duplicate_finals == 0, report
    assert t.double_sends == 0, report
    assert t.missing_status_webhooks == 0, report
    assert t.dead_lettered == 0, report
    assert t.wrong_final_status == 0, report
    assert t.timers_missing == 0 and t.timers_fired_twice == 0, report
