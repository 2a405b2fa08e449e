"""The processor's settings, from the environment (documented in docs/processor.md)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Literal

from aiokafka.admin import NewTopic
from pydantic import Field

from services.failover.decide import Policy
from services.kafka import new_topic
from services.settings import KafkaProcessSettings

# The processor's faust tables: the deadline index, its cursors, the dispatches.
TABLES = ("deadlines", "timer-cursors", "dispatches")


class ProcessorConfig(KafkaProcessSettings):
    app_id: str = Field("dispatch-processor", validation_alias="PROCESSOR_APP_ID")
    store: str = Field("rocksdb://", validation_alias="PROCESSOR_STORE")
    data_dir: Path = Field(Path(".local/processor"), validation_alias="PROCESSOR_DATA_DIR")
    # Distinct statuses kept (and webhooked) per message (see Policy).
    max_statuses_per_message: int = Field(
        16, ge=1, validation_alias="DISPATCH_MAX_STATUSES_PER_MESSAGE"
    )
    final_step_limit_s: float = Field(
        86_400.0, gt=0, validation_alias="PROCESSOR_FINAL_STEP_LIMIT_S"
    )
    # A timer waits up to this long for the tick that fires it (see docs/processor.md).
    tick_interval_s: float = Field(0.25, gt=0, validation_alias="PROCESSOR_TICK_INTERVAL_S")
    # 0: no metrics endpoint.
    metrics_port: int = Field(9102, ge=0, le=65535, validation_alias="PROCESSOR_METRICS_PORT")
    # Loopback unless set (then behind DISPATCH_INTERNAL_TOKEN): see docs/security.md.
    metrics_host: str = Field("127.0.0.1", validation_alias="PROCESSOR_METRICS_HOST")
    # How soon the group notices a dead worker (kill -9) and hands its
    # partitions, timers included, to whoever is alive or restarted.
    session_timeout_s: float = Field(10.0, gt=0, validation_alias="PROCESSOR_SESSION_TIMEOUT_S")
    producer_linger_s: float = Field(0.005, ge=0, validation_alias="PROCESSOR_LINGER_S")
    # The longest the broker holds a fetch (faust's own is 1.5 s; see intake.py).
    fetch_max_wait_ms: int = Field(100, ge=0, validation_alias="PROCESSOR_FETCH_MAX_WAIT_MS")
    # A recovery that has received nothing from its changelogs for this long
    # is stuck (faust-streaming can hang there after a rebalance): exit, and
    # let the supervisor start a fresh worker.
    recovery_stall_s: float = Field(60.0, gt=0, validation_alias="PROCESSOR_RECOVERY_STALL_S")
    # The changelogs are replicated like every other topic unless told otherwise.
    changelog_replication_factor: int | None = Field(
        None, ge=1, validation_alias="PROCESSOR_REPLICATION_FACTOR"
    )
    rocksdb_write_buffer_mib: int = Field(
        8, ge=1, validation_alias="PROCESSOR_ROCKSDB_WRITE_BUFFER_MIB"
    )
    rocksdb_block_cache_mib: int = Field(
        16, ge=1, validation_alias="PROCESSOR_ROCKSDB_BLOCK_CACHE_MIB"
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        "INFO", validation_alias="PROCESSOR_LOG_LEVEL"
    )

    @property
    def policy(self) -> Policy:
        return Policy(
            max_statuses_per_message=self.max_statuses_per_message,
            final_step_limit=timedelta(seconds=self.final_step_limit_s),
        )

    @property
    def replication_factor(self) -> int:
        return self.changelog_replication_factor or self.kafka.replication_factor

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
