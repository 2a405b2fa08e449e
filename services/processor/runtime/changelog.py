"""A table's writes as faust makes them, a batch at a time.

faust writes a table key into its store (RocksDB) and sends one changelog
record for it through its producer buffer, with a future per record and a
RocksDB write of the changelog's offset (where a restore resumes) when each
record is acknowledged: about a fifth of the processor's CPU per fired timer.
``TableWriter`` writes the same bytes to the same places: the store, a
changelog record per key on the partition's changelog partition, gathered into
record batches by the outbox, and the store's persisted offset once per record
batch when the broker has it. faust restores tables, standbys included, from
these records as from its own: its restore writes a record's key and value
bytes into the store unchanged, which is what the store holds here too.

Reads and writes go to the partition's RocksDB directly (``table_reader``,
``TableWriter``): faust's store would pick it by the current event, at the
cost of a context lookup and a key-index update per key. ``memory://`` (unit
tests) goes through faust's table, which needs the partition's event as the
current one: the agent writes one partition at a time that way.

faust internals touched (pinned by ``tests/unit/processor/test_runtime_contract.py``
and ``test_changelog.py``): ``rocksdb.Store.use_rocksdict``,
``Store._db_for_partition``, ``Store._encode_key``, ``Store._decode_key``,
``Store._encode_value``, ``Store._decode_value``, ``Store.set_persisted_offset``,
``Store.key_serializer``, ``Store.value_serializer``, the memory store's
``Store.data``; ``Table.changelog_topic``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, cast

import rocksdict
from faust.stores.rocksdb import Store as RocksDBStore
from faust.types import TP

from services.processor.runtime.outbox import Outbox
from services.processor.writeback import Reader


def _rocksdict_store(store: Any) -> bool:
    return isinstance(store, RocksDBStore) and store.use_rocksdict


def key_encoder(store: Any) -> Callable[[str], bytes]:
    """The store's key encoding (faust's json serializer: the key as a JSON
    string), written out for the keys the processor uses: uuids, digits and
    colons need no escaping. Any other key goes through faust's serializer
    registry (a lookup per call: a microsecond per key, several per event)."""
    slow = store._encode_key
    if store.key_serializer != "json":
        return cast(Callable[[str], bytes], slow)

    def encode(key: str) -> bytes:
        if key.isascii() and key.isprintable() and '"' not in key and "\\" not in key:
            return b'"' + key.encode() + b'"'
        return cast(bytes, slow(key))

    return encode


def value_codec(store: Any) -> tuple[Callable[[bytes], bytes], Callable[[bytes], bytes]]:
    """(encode, decode) of the store's values: the identity for ``raw`` bytes,
    faust's serializer registry otherwise."""
    if store.value_serializer == "raw":
        return (lambda value: value), (lambda value: value)
    return store._encode_value, store._decode_value


def table_reader(table: Any) -> Reader:
    """``read(key, partition)``: the table's value for ``key`` in the store of
    ``partition``, or None. For RocksDB, one lookup in the partition's
    database, as faust's table makes it for an event of that partition, without
    its current-event lookup, KeyError and key-index bookkeeping per read."""
    store = table.data
    if not _rocksdict_store(store):
        # ``memory://`` keeps keys unserialized in one dict: faust's own path (tests).
        return lambda key, partition: store.get(key)
    encode_key, (_, decode_value) = key_encoder(store), value_codec(store)
    database = store._db_for_partition

    def read(key: str, partition: int) -> bytes | None:
        raw = database(partition).get(encode_key(key))
        return None if raw is None else decode_value(raw)

    return read


def table_keys(table: Any, partition: int) -> Iterator[str]:
    """Every key the table holds for ``partition`` (a scan of its store: for
    the rare reader that must see all of them)."""
    store = table.data
    if not _rocksdict_store(store):
        # ``memory://``: one dict for every partition, keyed "<partition>:...".
        prefix = f"{partition}:"
        return (key for key in list(store.data) if key.startswith(prefix))
    database = store._db_for_partition(partition)
    # The database also holds faust's own keys (the changelog offset it
    # persists), which are not JSON strings: only the table's keys are.
    keys = database.keys()
    return (store._decode_key(key) for key in keys if key[:1] == b'"')


class TableWriter:
    def __init__(self, table: Any, outbox: Outbox) -> None:
        self._table = table
        self._store = table.data
        self._topic: str = table.changelog_topic.get_topic_name()
        self._outbox = outbox
        outbox.watch(self._topic, self._written)
        if _rocksdict_store(self._store):
            self._encode_key = key_encoder(self._store)
            self._encode_value = value_codec(self._store)[0]

    async def write(self, partition: int, changes: Sequence[tuple[str, bytes | None]]) -> None:
        """Write ``changes`` (a value of None deletes the key) for ``partition``."""
        store = self._store
        if not _rocksdict_store(store):
            # ``memory://`` keeps keys unserialized: faust's own path (tests).
            for key, value in changes:
                if value is not None:
                    self._table[key] = value
                elif key in self._table:
                    del self._table[key]
            return
        # One RocksDB write for the batch's changes of this partition (what
        # faust's own changelog restore does), instead of a put per key; made
        # before the changelog records go out, so the persisted offset that
        # their acknowledgement sets never runs ahead of the store.
        batch = rocksdict.WriteBatch(raw_mode=True)
        records: list[tuple[bytes, bytes | None]] = []
        encode_key, encode_value = self._encode_key, self._encode_value
        for key, value in changes:
            key_bytes = encode_key(key)
            value_bytes: bytes | None = None
            if value is None:
                batch.delete(key_bytes)
            else:
                value_bytes = encode_value(value)
                batch.put(key_bytes, value_bytes)
            records.append((key_bytes, value_bytes))
        store._db_for_partition(partition).write(batch)
        for key_bytes, value_bytes in records:
            await self._outbox.add(self._topic, key_bytes, value_bytes, partition)

    def _written(self, partition: int, offset: int) -> None:
        # faust's ``Collection._on_changelog_sent``, once per record batch.
        self._store.set_persisted_offset(TP(self._topic, partition), offset)
