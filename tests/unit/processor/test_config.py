"""The processor's configuration agrees with what faust will do."""

from __future__ import annotations

from pathlib import Path

from services.processor.app import build_app
from services.processor.config import ProcessorConfig


def test_the_changelogs_created_before_start_are_the_ones_faust_writes(tmp_path: Path) -> None:
    config = ProcessorConfig(store="memory://", data_dir=tmp_path)
    app = build_app(config)
    faust_changelogs = {table.changelog_topic.get_topic_name() for table in app.tables.values()}
    specs = config.changelog_specs()
    assert faust_changelogs == {spec.name for spec in specs}
    assert {spec.num_partitions for spec in specs} == {config.kafka.partitions}
