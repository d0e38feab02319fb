"""The store: every read and write of sandbox state goes through here.

Layers, as in TinyDB: `Store` (records, ids, uuids, encryption, timing) → TinyDB tables → the storage in
`storage.py` (memory + atomic file). Handlers never touch TinyDB.

Concurrency: all store calls are synchronous and the server runs one event loop, so a handler that reads
and then writes without an ``await`` in between cannot interleave with another request — the event loop
is the write lock. `commit()` is the one await: it persists a consistent snapshot (serialised on the
loop, written in a worker thread) and an `asyncio.Lock` keeps two snapshots from racing. A write request
answers only after its snapshot is on disk, so an acknowledged write survives a crash.

Encryption: the fields in `ENCRYPTED` hold SecretBox ciphertext in the database (and so on disk).
`get()`/`find()`/`reveal()` return decrypted copies; `select()` returns raw rows for filtering. `plain()`
keeps decrypted rows in memory (never on disk) until the row changes: list views join the same few
agents and contractors on every row, and decrypting them each time was a quarter of a jobs list.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import pickle
import time
import uuid as uuidlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import orjson
from tinydb.table import Document

from .crypto import Cipher
from .index import FieldIndex
from .storage import SandboxDB, int_keys, open_database

Row = dict[str, Any]
_NONE: dict[int, Row] = {}
PICKLE_ROWS = 100_000  # snapshots of up to this many rows are pickled, bigger ones JSON (see snapshot())

# Fields PropOps documents as encrypted at rest (jobs guide, tenants guide, users guide, case notes).
ENCRYPTED: dict[str, tuple[str, ...]] = {
    "jobs": ("private_contact_name", "private_contact_email", "access_details"),
    "users": ("first_name", "last_name", "email", "phone"),
    "agents": ("first_name", "last_name", "email"),
    "contractors": ("first_name", "last_name", "email"),
    "tenants": ("tenant_name", "tenant_email", "tenant_number_primary", "tenant_number_work"),
    "case_notes": ("message",),
    "emails": ("to", "body"),
    "job_commits": ("changes",),  # a JSON text of {field: [old, new]}: it can hold any job field
    "amend_requests": ("current_value", "requested_value"),  # any amendable field, access_details included
    "notifications": ("message",),  # may quote a recall reason or a job's details
    "push_subscriptions": ("endpoint", "public_key", "auth_token"),  # a browser's push credentials
    "whatsapp_messages": ("phone_number", "text"),
    "gdpr_consents": ("email", "fingerprint"),
    "activity_log": ("ip_address", "details"),
    "access_blacklist": ("reason",),
    "sessions": ("ip_address", "user_agent"),
}

_db_time: contextvars.ContextVar[list[float]] = contextvars.ContextVar("db_time")


def start_timer() -> list[float]:
    """Begin counting store time for the current request; returns the accumulator."""
    acc = [0.0]
    _db_time.set(acc)
    return acc


def _timed(fn: Callable) -> Callable:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            acc = _db_time.get(None)
            if acc is not None:
                acc[0] += time.perf_counter() - t0

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


def _as_id(value: Any) -> int | None:
    """An id given as something other than an int ("5", 5.0): the int, or None when it is not one."""
    if value is None or isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        return None
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        return None


class Store:
    def __init__(self, cipher: Cipher, data_dir: Path | None = None, seed: int = 0):
        self.cipher = cipher
        self.seed = seed
        self.db: SandboxDB = open_database(data_dir)
        self._storage = self.db.storage  # TinyDB's `storage` is a property: hold it once
        self._plain: dict[tuple[str, int], Row] = {}  # (table, id) -> decrypted row
        self._indexes: dict[str, dict[str, FieldIndex]] = {}  # table -> field -> index (built on first use)
        self.persistent = data_dir is not None
        self._lock = asyncio.Lock()
        self._uuids: dict[str, dict[str, int]] = {}
        self._next: dict[str, int] = {}
        for name in self.db.storage.read():
            self._index(name)

    # -- reading ---------------------------------------------------------------------------------

    def _raw(self, table: str) -> dict[int, Row]:
        return self._storage.memory.get(table, _NONE)

    def raw(self, table: str, id_: int | None) -> Row | None:
        """The stored row itself (read-only; encrypted fields are ciphertext). For joins."""
        if type(id_) is not int:
            id_ = _as_id(id_)
        return self._storage.memory.get(table, _NONE).get(id_)

    def plain(self, table: str, id_: int | None) -> Row | None:
        """The decrypted row, shared and cached until it changes (read-only: do not mutate). For joins."""
        if type(id_) is not int and (id_ := _as_id(id_)) is None:
            return None
        key = (table, id_)
        row = self._plain.get(key)
        if row is None:
            row = self._storage.memory.get(table, _NONE).get(id_)
            if row is None:
                return None
            row = self._plain[key] = self.reveal(table, row) if table in ENCRYPTED else row
        return row

    def raw_by_uuid(self, table: str, uuid: str) -> Row | None:
        return self.raw(table, self._uuids.get(table, {}).get(uuid))

    @_timed
    def get(self, table: str, id_: int | None) -> Row | None:
        row = self.plain(table, id_)
        return None if row is None else dict(row)

    @_timed
    def find(self, table: str, uuid: str) -> Row | None:
        id_ = self._uuids.get(table, {}).get(uuid)
        return None if id_ is None else self.reveal(table, self._raw(table)[id_])

    @_timed
    def select(self, table: str, keep: Callable[[Row], bool] | None = None,
               where: Iterable[tuple[str, Any]] = ()) -> list[Row]:
        """Raw rows in id order, optionally filtered. Do not mutate them. `where` names (field, value)
        pairs the rows must hold, answered from field indexes; `keep` then sees only those rows."""
        raw = self._raw(table)
        if where:
            found = sorted((self.index(table, field).get(value) for field, value in where), key=len)
            ids = found[0].intersection(*found[1:]) if len(found) > 1 else found[0]
            rows: Iterable[Row] = [raw[i] for i in sorted(ids)]
        else:
            rows = raw.values()
        return list(rows) if keep is None else [r for r in rows if keep(r)]

    def reveal(self, table: str, row: Row) -> Row:
        """A decrypted copy of a raw row."""
        out = dict(row)
        for name in ENCRYPTED.get(table, ()):
            value = out.get(name)
            if isinstance(value, str):
                out[name] = self.cipher.decrypt(value)
        return out

    def index(self, table: str, field: str) -> FieldIndex:
        """The table's index on `field` (read-only), built now if it is the first use: `value in index`
        checks a new job reference against 100,000 jobs with one lookup, `index.get(value)` gives ids."""
        indexes = self._indexes.setdefault(table, {})
        found = indexes.get(field)
        if found is None:
            found = indexes[field] = FieldIndex(field, self._raw(table).values())
        return found

    def count(self, table: str) -> int:
        return len(self._raw(table))

    # -- writing ---------------------------------------------------------------------------------

    def _seal(self, table: str, row: Row, *, copy: bool = True) -> Row:
        out = dict(row) if copy else row
        for name in ENCRYPTED.get(table, ()):
            value = out.get(name)
            if isinstance(value, str):
                out[name] = self.cipher.encrypt(value)
        return out

    def next_id(self, table: str) -> int:
        # Like an auto-increment column: ids of deleted rows are never handed out again.
        return max(self._next.get(table, 1), self.meta().get("next_ids", {}).get(table, 1))

    def new_uuid(self) -> str:
        """A uuid derived from the seed and a persisted serial: replayable, and unique across restarts."""
        serial = self.meta().get("serial", 0) + 1
        self.set_meta(serial=serial)
        digest = hashlib.sha256(f"propops-sandbox:{self.seed}:uuid:{serial}".encode()).digest()
        return str(uuidlib.UUID(bytes=digest[:16], version=4))

    @_timed
    def insert(self, table: str, row: Row) -> Row:
        """Insert a plaintext row; gives it an ``ID`` and ``uuid`` when it has none. Returns the row."""
        row = dict(row)
        if row.get("ID") is None:
            row = {**row, "ID": self.next_id(table)}
        if "uuid" in row and row["uuid"] is None:
            row["uuid"] = self.new_uuid()
        self.db.table(table).insert(Document(self._seal(table, row), doc_id=row["ID"]))
        self._plain.pop((table, row["ID"]), None)
        for index in self._indexes.get(table, {}).values():
            index.add(self._raw(table)[row["ID"]])
        self._add(table, row)
        self.set_meta(next_ids={**self.meta().get("next_ids", {}), table: self._next[table]})
        return row

    @_timed
    def insert_many(self, table: str, rows: Iterable[Row]) -> None:
        """Bulk load (seeding): one table write for all rows. The rows become the stored rows (sealed in
        place, not copied: at 100,000 jobs a copy would double the memory the build needs)."""
        sealed = {r["ID"]: self._seal(table, r, copy=False) for r in rows}
        data = self.db.storage.read()
        data.setdefault(table, {}).update(sealed)
        self.db.storage.write(data)
        self.db.table(table).clear_cache()
        self._forget(table)
        for key in [k for k in self._plain if k[0] == table]:
            del self._plain[key]
        self._index(table)

    @_timed
    def update(self, table: str, id_: int, changes: Row) -> Row:
        """Apply `changes` (plaintext) to one row; returns the decrypted result."""
        sealed = self._seal(table, changes)
        indexes = self._indexes.get(table)
        if indexes:
            current = self._raw(table).get(id_, {})
            for field, index in indexes.items():
                if field in sealed:
                    index.move(id_, current.get(field), sealed[field])
        self.db.table(table).update(sealed, doc_ids=[id_])
        self._plain.pop((table, id_), None)
        return self.reveal(table, self._raw(table)[id_])

    @_timed
    def delete(self, table: str, ids: Iterable[int]) -> int:
        ids = list(ids)
        if not ids:
            return 0
        raw = self._raw(table)
        uuids = self._uuids.get(table, {})
        indexes = self._indexes.get(table, {}).values()
        for id_ in ids:
            row = raw.get(id_)
            if row is not None:
                uuids.pop(row.get("uuid"), None)
                for index in indexes:
                    index.remove(row)
            self._plain.pop((table, id_), None)
        return len(self.db.table(table).remove(doc_ids=[i for i in ids if i in raw]))

    def delete_where(self, table: str, field: str, values: Iterable[Any]) -> int:
        index = self.index(table, field)
        return self.delete(table, sorted({id_ for value in values for id_ in index.get(value)}))

    # -- indexes ---------------------------------------------------------------------------------

    def _index(self, table: str) -> None:
        raw = self._raw(table)
        self._uuids[table] = {r["uuid"]: r["ID"] for r in raw.values() if r.get("uuid")}
        self._next[table] = max(raw, default=0) + 1

    def _forget(self, table: str) -> None:
        """Drop the table's field indexes (rebuilt on next use)."""
        self._indexes.pop(table, None)

    def _add(self, table: str, row: Row) -> None:
        if row.get("uuid"):
            self._uuids.setdefault(table, {})[row["uuid"]] = row["ID"]
        self._next[table] = max(self._next.get(table, 1), row["ID"] + 1)

    # -- meta and persistence --------------------------------------------------------------------

    def meta(self) -> Row:
        return self._raw("_meta").get(1, {})

    def set_meta(self, **values: Any) -> None:
        if self._raw("_meta"):
            self.db.table("_meta").update(values, doc_ids=[1])
        else:
            self.db.table("_meta").insert(Document(values, doc_id=1))

    def snapshot(self) -> bytes:
        """The whole state as bytes. A pickle of the tables and indexes restores fastest (a reset of the
        default dataset is one load, ~2 ms) but takes seconds to write for 100,000 jobs; big states are
        JSON instead (ten times faster to write; the indexes are rebuilt on restore)."""
        memory = self._storage.memory
        if sum(map(len, memory.values())) <= PICKLE_ROWS:
            return pickle.dumps((memory, self._uuids, self._next), protocol=pickle.HIGHEST_PROTOCOL)
        return orjson.dumps(memory, option=orjson.OPT_NON_STR_KEYS)  # a JSON object: b"{..."

    def clear(self) -> None:
        """Empty every table (before a dataset is built again)."""
        self._storage.write({})
        self._uuids, self._next = {}, {}
        self._plain.clear()
        self._indexes.clear()
        for table in self.db._tables.values():
            table.clear_cache()

    def mark_dirty(self) -> None:
        self.db.storage.version += 1

    def restore(self, blob: bytes) -> None:
        as_json = blob[:1] == b"{"  # else a pickle (it starts b"\x80")
        if as_json:
            self._storage.memory = {}  # let the old state go before the new one is built
            memory, self._uuids, self._next = int_keys(orjson.loads(blob)), {}, {}
        else:
            memory, self._uuids, self._next = pickle.loads(blob)
        self._plain.clear()
        self._indexes.clear()
        self.db.storage.write(memory)
        for table in self.db._tables.values():  # TinyDB keeps per-table query caches
            table.clear_cache()
        if as_json:
            for name in memory:
                self._index(name)

    async def commit(self) -> None:
        """Return once everything written so far is on disk (at once in memory mode or when it already is).

        Group commit: the caller's writes are covered by the first snapshot taken after them, whoever
        takes it; a caller whose writes went into a snapshot still being written waits for it."""
        storage = self._storage
        target = storage.version
        if not self.persistent or storage.saved >= target:
            return
        async with self._lock:
            if storage.saved >= target:  # another request's snapshot covered our writes
                return
            version, blob = storage.version, storage.snapshot()
            await asyncio.to_thread(storage.persist, blob)
            storage.saved = max(storage.saved, version)

    def flush(self) -> None:
        """Synchronous persist, for startup and shutdown."""
        storage = self._storage
        if self.persistent and storage.dirty:
            version = storage.version
            storage.persist(storage.snapshot())
            storage.saved = version
