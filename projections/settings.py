"""``dispatch-projector``'s settings, from the environment (see docs/read-side.md)."""

from __future__ import annotations

from pydantic import Field

from projections.store import DEFAULT_SQLITE_PATH
from services.settings import EnvironmentSettings, KafkaProcessSettings


class ViewSettings(EnvironmentSettings):
    """What the workflow view folds with, as the processor does."""

    # Distinct statuses kept per message (the processor's
    # ``Policy.max_statuses_per_message``, from the same variable).
    max_statuses_per_message: int = Field(
        16, ge=1, validation_alias="DISPATCH_MAX_STATUSES_PER_MESSAGE"
    )


class ProjectorSettings(KafkaProcessSettings, ViewSettings):
    # ``postgresql://...`` or ``sqlite:///path``; empty: the SQLite file at ``db``.
    store_url: str = Field("", validation_alias="PROJECTOR_STORE_URL")
    db: str = Field(DEFAULT_SQLITE_PATH, validation_alias="PROJECTOR_DB")
    # The consumer group of projectors sharing a PostgreSQL store; empty:
    # derived from the database's address.
    group: str = Field("", validation_alias="PROJECTOR_GROUP")
    host: str = Field("127.0.0.1", validation_alias="PROJECTOR_HOST")
    port: int = Field(8070, ge=0, le=65535, validation_alias="PROJECTOR_PORT")
    # How long a fetch that follows one with records waits for more (see
    # ``services/fetch_wait.py``). Longer than the other processes' window:
    # no send and no webhook waits for the read side, and each batch is a
    # store transaction, so fewer, fuller batches cost much less under a
    # trickle; the read models lag by up to this much more.
    fetch_gather_ms: int = Field(100, ge=0, le=1_000, validation_alias="PROJECTOR_FETCH_GATHER_MS")

    @property
    def store(self) -> str:
        return self.store_url.strip() or self.db
