"""The write-back cache: a batch's writes are read back before they reach the
store, leave it once per key, and stay readable for later batches until a
rebalance makes the cache forget them."""

from __future__ import annotations

from collections import UserDict

from services.processor.writeback import WriteBack


class CountingStore(UserDict[str, bytes]):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def read(self, key: str, partition: int) -> bytes | None:
        self.reads += 1
        return self.data.get(key)


def write_through(cache: WriteBack, store: CountingStore, partition: int) -> None:
    for key, value in cache.take(partition):
        if value is None:
            store.data.pop(key, None)
        else:
            store.data[key] = value


def test_a_batch_reads_its_own_writes_and_hands_each_key_over_once() -> None:
    store = CountingStore()
    cache = WriteBack(store.read)
    cache.partition = 1
    cache["a"] = b"1"
    cache["a"] = b"2"
    cache.partition = 2
    cache["b"] = b"x"
    assert cache.get("a") == b"2" and store.reads == 0
    assert cache.partitions() == {1, 2}
    assert cache.take(1) == [("a", b"2")]
    assert cache.partitions() == {2}


def test_written_values_and_deletions_are_read_from_the_cache_until_forgotten() -> None:
    store = CountingStore()
    store.data["gone"] = b"old"
    cache = WriteBack(store.read)
    cache["kept"] = b"v"
    del cache["gone"]
    write_through(cache, store, 0)
    assert (cache.get("kept"), cache.get("gone")) == (b"v", None)
    assert store.reads == 1  # only the read that ``del`` made, before the write
    # Another owner writes the partition meanwhile (a rebalance): forgotten,
    # the store is read again.
    store.data["kept"] = b"theirs"
    cache.forget()
    assert cache.get("kept") == b"theirs"
    assert store.reads == 2


def test_only_the_newest_written_values_are_kept() -> None:
    store = CountingStore()
    cache = WriteBack(store.read, kept=3)
    for n in range(5):
        cache[f"k{n}"] = b"v"
        write_through(cache, store, 0)
    cache["k0"] = b"again"  # written again: the newest
    write_through(cache, store, 0)
    reads = store.reads
    for key in ("k0", "k3", "k4"):
        cache.get(key)
    assert store.reads == reads
    cache.get("k2")
    assert store.reads == reads + 1
