"""The processor's own settings, from the environment (documented in docs/processor.md)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from aiokafka.admin import NewTopic

from services.failover.decide import Policy
from services.kafka import KafkaSettings, new_topic

# The processor's faust tables: the deadline index, its cursors, the dispatches.
TABLES = ("deadlines", "timer-cursors", "dispatches")


@dataclass(frozen=True)
class ProcessorConfig:
    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    app_id: str = "dispatch-processor"
    store: str = "rocksdb://"
    data_dir: Path = Path(".local/processor")
    policy: Policy = field(default_factory=Policy)
    # A timer waits up to this long for the tick that fires it (see docs/processor.md).
    tick_interval_s: float = 0.25
    metrics_port: int = 9102
    # How soon the group notices a dead worker (kill -9) and hands its
    # partitions, timers included, to whoever is alive or restarted.
    session_timeout_s: float = 10.0
    producer_linger_s: float = 0.005
    # The longest the broker holds a fetch (faust's own is 1.5 s; see intake.py).
    fetch_max_wait_ms: int = 100
    # A recovery that has received nothing from its changelogs for this long
    # is stuck (faust-streaming can hang there after a rebalance): exit, and
    # let the supervisor start a fresh worker.
    recovery_stall_s: float = 60.0
    replication_factor: int = 1
    rocksdb_write_buffer_mib: int = 8
    rocksdb_block_cache_mib: int = 16
    log_level: str = "INFO"

    @property
    def full_app_id(self) -> str:
        # The topic prefix isolates deployments (and tests) sharing one broker,
        # so it must isolate the consumer group and changelog topics too.
        prefix = self.kafka.topics.events.removesuffix("dispatch.events")
        return f"{prefix}{self.app_id}"

    def changelog_topic(self, table: str) -> str:
        """The name faust gives the changelog topic of ``table``."""
        return f"{self.full_app_id}-{table}-changelog"

    def changelog_specs(self) -> list[NewTopic]:
        # Created before faust starts: a changelog faust creates itself can be
        # missing from its consumer's first metadata, and the first table write
        # then fails (PartitionsMismatch: "the changelog topic has 0 partitions").
        compact = {"cleanup.policy": "compact"}
        return [
            new_topic(
                self.kafka,
                self.changelog_topic(table),
                self.kafka.partitions,
                compact,
                replication_factor=self.replication_factor,
            )
            for table in TABLES
        ]

    @property
    def leader_topic(self) -> str:
        """faust's assignor topic: the worker given its one partition is the
        leader, the one that runs the ticker."""
        return f"{self.full_app_id}-__assignor-__leader"

    def faust_topic_specs(self) -> list[NewTopic]:
        """Every topic faust would create itself, to be created before it starts.
        The leader topic too: when faust creates it, the group's first
        assignment can come before the topic is in the leader's metadata; it is
        then assigned to nobody, in that and every later rebalance until a
        metadata refresh, so no worker ticks and no timer fires (seen under
        load with processors joining)."""
        leader = NewTopic(self.leader_topic, 1, self.replication_factor)
        return [*self.changelog_specs(), leader]

    @classmethod
    def from_env(cls) -> ProcessorConfig:
        env = os.environ
        kafka = KafkaSettings.from_env()
        return cls(
            kafka=kafka,
            app_id=env.get("PROCESSOR_APP_ID", "dispatch-processor"),
            store=env.get("PROCESSOR_STORE", "rocksdb://"),
            data_dir=Path(env.get("PROCESSOR_DATA_DIR", ".local/processor")),
            policy=Policy(
                max_statuses_per_message=int(env.get("DISPATCH_MAX_STATUSES_PER_MESSAGE", "16")),
                final_step_limit=timedelta(
                    seconds=float(env.get("PROCESSOR_FINAL_STEP_LIMIT_S", "86400"))
                ),
            ),
            tick_interval_s=float(env.get("PROCESSOR_TICK_INTERVAL_S", "0.25")),
            metrics_port=int(env.get("PROCESSOR_METRICS_PORT", "9102")),
            session_timeout_s=float(env.get("PROCESSOR_SESSION_TIMEOUT_S", "10")),
            producer_linger_s=float(env.get("PROCESSOR_LINGER_S", "0.005")),
            fetch_max_wait_ms=int(env.get("PROCESSOR_FETCH_MAX_WAIT_MS", "100")),
            # The changelogs are replicated like every other topic unless told otherwise.
            replication_factor=int(
                env.get("PROCESSOR_REPLICATION_FACTOR", str(kafka.replication_factor))
            ),
            recovery_stall_s=float(env.get("PROCESSOR_RECOVERY_STALL_S", "60")),
            rocksdb_write_buffer_mib=int(env.get("PROCESSOR_ROCKSDB_WRITE_BUFFER_MIB", "8")),
            rocksdb_block_cache_mib=int(env.get("PROCESSOR_ROCKSDB_BLOCK_CACHE_MIB", "16")),
            log_level=env.get("PROCESSOR_LOG_LEVEL", "INFO"),
        )
