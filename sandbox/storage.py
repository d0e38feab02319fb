"""The one module that touches the disk: a TinyDB storage that keeps the database in memory and writes
it to one JSON file atomically.

TinyDB's own JSONStorage re-reads and rewrites the file on every operation; here the working set stays
in memory and `persist()` writes a snapshot to a temporary file in the same directory, fsyncs it and
renames it over the old one, so a crash leaves either the old file or the new one, never half of one.
`SandboxTable` updates tables in place: TinyDB's default copies the whole table on every write, which
is O(n) per insert at 100,000 jobs. `row_maker()` makes seeded rows key-sharing dicts.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from tinydb import TinyDB
from tinydb.storages import Storage
from tinydb.table import Table

DATA_FILE = "propops.json"
_SHARED_KEYS_MAX = 30  # CPython shares at most this many keys between dicts (PEP 412)
_ROW_TYPES: dict[str, type] = {}


class StorageError(RuntimeError):
    """The data dir cannot be used (reported at startup in one line)."""


class SandboxStorage(Storage):
    def __init__(self, path: Path | None = None):
        self.path = path
        # Every change bumps `version`; `saved` is the version the file on disk holds. A request is
        # acknowledged once `saved` reaches the version its own writes made (Store.commit).
        self.version = 0
        self.saved = 0
        self.memory: dict[str, Any] = {}
        if path is not None and path.exists():
            try:
                self.memory = json.loads(path.read_bytes())
            except (OSError, ValueError) as exc:
                raise StorageError(f"cannot read {path}: {exc}") from None
            try:
                self.memory = int_keys(self.memory)
            except (AttributeError, TypeError, ValueError):
                raise StorageError(f"{path} is not a PropOps Sandbox data file") from None

    def read(self) -> dict[str, Any]:
        return self.memory

    def write(self, data: dict[str, Any]) -> None:
        self.memory = data
        self.version += 1

    @property
    def dirty(self) -> bool:
        return self.saved < self.version

    def snapshot(self) -> bytes:
        """Serialise now, on the event loop, so the bytes are one consistent state (of `version`)."""
        # The same bytes json.dumps would write (ids as string keys), much faster.
        return orjson.dumps(self.memory, option=orjson.OPT_NON_STR_KEYS)

    def persist(self, blob: bytes) -> None:
        """Write `blob` atomically (safe to run in a worker thread: it touches only the file)."""
        assert self.path is not None
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            fh.write(blob)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def close(self) -> None:
        pass


def int_keys(tables: dict[str, Any]) -> dict[str, dict[int, Any]]:
    """Tables as loaded from JSON (ids are string keys there) keyed by int ids, as they are in memory: an
    int key is the row's own ``ID`` object, where a string key would cost another ~55 bytes a row."""
    return {name: {int(k): row for k, row in table.items()} for name, table in tables.items()}


def row_maker(table: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A function that copies a row into a key-sharing dict — for the seeded bulk tables.

    A row is a plain dict, and a 13-key dict costs 464 bytes before its values: 100,000 jobs bring
    ~480,000 photo, document and note rows, which put resident memory far over budget. Dicts that are
    instance ``__dict__``s of one class share a single key table (PEP 412) and cost ~180 bytes. They are
    ordinary dicts in every other way (same type, equality, JSON, pickling); a row whose keys differ
    from its table's usual ones simply becomes an ordinary dict. Rows must be made this way as they are
    generated: converting a built table afterwards frees blocks Python keeps for reuse, and resident
    memory grows instead of shrinking."""
    kind = _ROW_TYPES.get(table)
    if kind is None:
        kind = _ROW_TYPES[table] = type(f"Row_{table}", (), {"__slots__": ("__dict__",)})

    def make(values: dict[str, Any]) -> dict[str, Any]:
        row = kind().__dict__
        for key, value in values.items():  # not update(): it rebuilds the dict with its own key table
            row[key] = value
        return row

    return make


class SandboxTable(Table):
    def _update_table(self, updater: Callable[[dict[int, Any]], None]) -> None:
        tables = self._storage.read()
        updater(tables.setdefault(self.name, {}))
        self._storage.write(tables)
        self.clear_cache()


class SandboxDB(TinyDB):
    table_class = SandboxTable
    default_storage_class = SandboxStorage


def open_database(data_dir: Path | None) -> SandboxDB:
    """The database, loaded from `data_dir` if it holds one. Checks the dir is usable first."""
    path = None
    if data_dir is not None:
        if data_dir.exists() and not data_dir.is_dir():
            raise StorageError(f"data dir {data_dir} is not a directory")
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
            probe = data_dir / f".probe.{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
            # A process killed while persisting leaves its temporary file; the data file is whole.
            for stale in data_dir.glob(f".{DATA_FILE}.*.tmp"):
                stale.unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(f"data dir {data_dir} is not writable: {exc.strerror or exc}") from None
        path = data_dir / DATA_FILE
    return SandboxDB(storage=SandboxStorage, path=path)
