"""The processor's configuration agrees with what faust will do."""

from __future__ import annotations

from pathlib import Path

import pytest
from faust.types import TP

from services.processor.app import build_app, recovery_silence
from services.processor.config import ProcessorConfig


def test_the_changelogs_created_before_start_are_the_ones_faust_writes(tmp_path: Path) -> None:
    config = ProcessorConfig(store="memory://", data_dir=tmp_path)
    app = build_app(config)
    faust_changelogs = {table.changelog_topic.get_topic_name() for table in app.tables.values()}
    specs = config.changelog_specs()
    assert faust_changelogs == {spec.name for spec in specs}
    assert {spec.num_partitions for spec in specs} == {config.kafka.partitions}


def test_the_leader_topic_created_before_start_is_the_one_faust_elects_by(
    tmp_path: Path,
) -> None:
    config = ProcessorConfig(store="memory://", data_dir=tmp_path)
    app = build_app(config)
    leader_tp = app._leader_assignor._leader_tp  # type: ignore[attr-defined]
    [spec] = [s for s in config.faust_topic_specs() if s.name == leader_tp.topic]
    assert spec.num_partitions == 1 and leader_tp.partition == 0


def test_the_recovery_watchdog_reads_what_faust_records(tmp_path: Path) -> None:
    app = build_app(ProcessorConfig(store="memory://", data_dir=tmp_path))
    recovery = app.tables.recovery  # type: ignore[attr-defined]
    assert recovery_silence(recovery, now=1000.0) is None  # not recovering
    # What faust sets when a recovery starts, and as changelog records come.
    recovery._set_recovery_started()
    started = recovery._recovery_started_at
    assert recovery_silence(recovery, now=started + 30) == pytest.approx(30)
    tp = TP("t-dispatch-processor-dispatches-changelog", 0)
    recovery._active_events_received_at[tp] = started + 25
    assert recovery_silence(recovery, now=started + 30) == pytest.approx(5)
    recovery._set_recovery_ended()
    assert recovery_silence(recovery, now=started + 300) is None
