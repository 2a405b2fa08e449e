"""Replication comes from configuration and reaches every topic the project creates."""

from __future__ import annotations

import pytest

from services.kafka import KafkaSettings, topic_specs
from services.processor.config import ProcessorConfig

CLUSTER = {"DISPATCH_REPLICATION_FACTOR": "3", "DISPATCH_MIN_INSYNC_REPLICAS": "2"}


def test_a_cluster_profile_replicates_every_topic_three_times_with_min_isr_two(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in CLUSTER.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("PROCESSOR_REPLICATION_FACTOR", raising=False)
    settings = KafkaSettings.from_env()
    specs = [*topic_specs(settings), *ProcessorConfig.from_env().changelog_specs()]
    assert len(specs) == 8
    for spec in specs:
        assert spec.replication_factor == 3, spec.name
        assert spec.topic_configs["min.insync.replicas"] == "2", spec.name
    # Each topic's own settings are kept beside the replication ones.
    events = next(s for s in specs if s.name == settings.topics.events)
    assert events.topic_configs["retention.ms"] == "-1"


def test_by_default_one_replica_and_the_brokers_own_min_isr(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in CLUSTER:
        monkeypatch.delenv(name, raising=False)
    for spec in topic_specs(KafkaSettings.from_env()):
        assert spec.replication_factor == 1
        assert "min.insync.replicas" not in spec.topic_configs


def test_the_processor_changelogs_can_be_replicated_on_their_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in CLUSTER.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PROCESSOR_REPLICATION_FACTOR", "2")
    config = ProcessorConfig.from_env()
    assert config.replication_factor == 2
    assert {spec.replication_factor for spec in config.changelog_specs()} == {2}


@pytest.mark.parametrize(
    ("replicas", "min_isr", "named"),
    [("0", "", "DISPATCH_REPLICATION_FACTOR"), ("3", "4", "DISPATCH_MIN_INSYNC_REPLICAS"),
     ("1", "0", "DISPATCH_MIN_INSYNC_REPLICAS")],
)  # fmt: skip
def test_a_min_isr_no_write_could_meet_is_refused_at_start(
    monkeypatch: pytest.MonkeyPatch, replicas: str, min_isr: str, named: str
) -> None:
    monkeypatch.setenv("DISPATCH_REPLICATION_FACTOR", replicas)
    monkeypatch.setenv("DISPATCH_MIN_INSYNC_REPLICAS", min_isr)
    with pytest.raises(ValueError, match=named):
        KafkaSettings.from_env()


def test_a_replication_setting_that_is_not_a_number_is_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DISPATCH_MIN_INSYNC_REPLICAS", "two")
    with pytest.raises(
        ValueError, match="DISPATCH_MIN_INSYNC_REPLICAS: Input should be a valid integer"
    ):
        KafkaSettings.from_env()


def test_a_replication_factor_of_zero_is_refused_not_raised_to_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DISPATCH_REPLICATION_FACTOR", "0")
    with pytest.raises(
        ValueError, match="DISPATCH_REPLICATION_FACTOR: Input should be greater than or equal to 1"
    ):
        KafkaSettings.from_env()
