"""The one module that touches the disk: a TinyDB storage that keeps the database in memory and writes
it to one JSON file atomically.

TinyDB's own JSONStorage re-reads and rewrites the file on every operation; here the working set stays
in memory and `persist()` writes a snapshot to a temporary file in the same directory, fsyncs it and
renames it over the old one, so a crash leaves either the old file or the new one, never half of one.
`SandboxTable` updates tables in place: TinyDB's default copies the whole table on every write, which
is O(n) per insert at 100,000 jobs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, MutableMapping
from pathlib import Path
from typing import Any

import orjson
from tinydb import TinyDB
from tinydb.storages import Storage
from tinydb.table import Table

DATA_FILE = "propops.json"


class StorageError(RuntimeError):
    """The data dir cannot be used (reported at startup in one line)."""


class SandboxStorage(Storage):
    def __init__(self, path: Path | None = None):
        self.path = path
        self.dirty = False
        self.memory: dict[str, Any] = {}
        if path is not None and path.exists():
            try:
                self.memory = json.loads(path.read_bytes())
            except (OSError, ValueError) as exc:
                raise StorageError(f"cannot read {path}: {exc}") from None
            if not isinstance(self.memory, dict):
                raise StorageError(f"{path} is not a PropOps Sandbox data file")

    def read(self) -> dict[str, Any]:
        return self.memory

    def write(self, data: dict[str, Any]) -> None:
        self.memory = data
        self.dirty = True

    def snapshot(self) -> bytes:
        """Serialise now, on the event loop, so the bytes are one consistent state."""
        self.dirty = False
        return orjson.dumps(self.memory)  # the same bytes json.dumps would write, much faster

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


class _IntKeys(MutableMapping):
    """TinyDB's updaters speak int ids; the stored table is keyed by str (as JSON is)."""

    __slots__ = ("raw",)

    def __init__(self, raw: dict[str, Any]):
        self.raw = raw

    def __getitem__(self, key: int) -> Any:
        return self.raw[str(key)]

    def __setitem__(self, key: int, value: Any) -> None:
        self.raw[str(key)] = value

    def __delitem__(self, key: int) -> None:
        del self.raw[str(key)]

    def __contains__(self, key: object) -> bool:
        return str(key) in self.raw

    def __iter__(self) -> Iterator[int]:
        return (int(k) for k in list(self.raw))

    def __len__(self) -> int:
        return len(self.raw)


class SandboxTable(Table):
    def _update_table(self, updater: Callable[[dict[int, Any]], None]) -> None:
        tables = self._storage.read()
        updater(_IntKeys(tables.setdefault(self.name, {})))  # type: ignore[arg-type]
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
        except OSError as exc:
            raise StorageError(f"data dir {data_dir} is not writable: {exc.strerror or exc}") from None
        path = data_dir / DATA_FILE
    return SandboxDB(storage=SandboxStorage, path=path)
