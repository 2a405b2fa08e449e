"""The Idempotency-Key memory is bounded per application."""

from __future__ import annotations

import pytest

from services.gateway.idempotency import IdempotencyCache, KeyReused


async def _noop() -> None:
    return None


async def test_one_applications_keys_never_evict_anothers() -> None:
    cache = IdempotencyCache(max_entries=3)
    await cache.run_once("quiet", "k-1", "hash-a", _noop)
    for n in range(100):  # a busy application
        await cache.run_once("busy", f"k-{n}", "hash", _noop)
    # The quiet application's key is still remembered: another body is refused.
    with pytest.raises(KeyReused):
        await cache.run_once("quiet", "k-1", "hash-b", _noop)
    # The busy one kept only its last three keys.
    appended: list[str] = []

    async def append() -> None:
        appended.append("again")

    await cache.run_once("busy", "k-0", "other", append)
    assert appended == ["again"]
    with pytest.raises(KeyReused):
        await cache.run_once("busy", "k-99", "other", append)
