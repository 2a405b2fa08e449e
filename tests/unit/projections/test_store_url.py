"""Choosing the projection store by URL."""

from __future__ import annotations

import pytest

from projections.store import (
    default_group,
    is_postgresql,
    redacted,
    sqlite_path,
    store_url_from_env,
)


def test_sqlite_is_the_default_at_projector_db() -> None:
    assert store_url_from_env({}) == ".local/projections.sqlite3"
    assert store_url_from_env({"PROJECTOR_DB": "/var/p.db"}) == "/var/p.db"
    url = "postgresql://u:pw@db:5432/reads"
    assert store_url_from_env({"PROJECTOR_DB": "/var/p.db", "PROJECTOR_STORE_URL": url}) == url


def test_sqlite_urls_and_paths() -> None:
    assert sqlite_path("sqlite:///relative/p.db") == "relative/p.db"
    assert sqlite_path("sqlite:////abs/p.db") == "/abs/p.db"
    assert sqlite_path("/abs/p.db") == "/abs/p.db"
    for wrong in ("sqlite:p.db", "mysql://db/reads"):
        with pytest.raises(ValueError, match="sqlite:///"):
            sqlite_path(wrong)


def test_postgresql_urls_never_show_their_password() -> None:
    assert is_postgresql("postgres://db/reads") and is_postgresql("postgresql://db/reads")
    assert redacted("postgresql://reader:s3cret@db:6543/reads") == (
        "postgresql://reader@db:6543/reads"
    )


def test_projectors_of_different_databases_never_share_a_group() -> None:
    one = default_group("postgresql://a:x@db:5432/reads", "prod.")
    assert one.startswith("prod.dispatch-projector-")
    # The same database, whoever connects and however the port is spelt.
    assert one == default_group("postgresql://b:y@db/reads", "prod.")
    assert one != default_group("postgresql://a:x@db:5432/reads2", "prod.")
    assert one != default_group("postgresql://a:x@other:5432/reads", "prod.")
