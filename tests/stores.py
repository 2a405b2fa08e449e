"""The projection store a test runs on: every test that takes ``store_url``
runs twice, on a SQLite file and on a fresh PostgreSQL database of the server
``make test`` starts (address in ``TEST_POSTGRES_URL``)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest


def _server_url() -> str:
    url = os.environ.get("TEST_POSTGRES_URL")
    if not url:
        pytest.fail(
            "no PostgreSQL server for the store tests (TEST_POSTGRES_URL): run the suite "
            "with `make test`, which starts one, or start one with scripts/postgres.sh"
        )
    return url


async def _admin(server: str, statement: str) -> None:
    admin = await asyncpg.connect(server, timeout=10)
    try:
        await admin.execute(statement)
    finally:
        await admin.close()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A new, empty database on the test server; dropped afterwards."""
    # Synchronous (its own short event loop): a parametrised fixture asks for
    # it by name, which only works for fixtures that are not coroutines.
    server = _server_url()
    name = f"t_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(server, f'CREATE DATABASE "{name}"'))
    yield server.rsplit("/", 1)[0] + f"/{name}"
    asyncio.run(_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'projections.sqlite3'}"
    url: str = request.getfixturevalue("postgres_url")
    return url
