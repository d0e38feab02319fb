"""Uploaded file bytes: photos, documents, note attachments, thumbnails.

Rows in the store describe files; the bytes live here, keyed by a content hash — in memory by default,
or as files under ``<data-dir>/blobs/`` written atomically (temporary file, fsync, rename) *before* the
row that points at them is committed, and removed only *after* the removal of their row is committed
(`delete` queues, `reap` removes), so a row never points at a missing file, whenever the process dies.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


class Blobs:
    def __init__(self, data_dir: Path | None = None):
        self.root = None if data_dir is None else data_dir / "blobs"
        self._memory: dict[str, bytes] = {}
        self._pinned: set[str] = set()  # on disk: files a snapshot may bring a row back to
        self._doomed: set[str] = set()  # on disk: files to remove once their rows' removal is saved
        if self.root is not None:
            self.root.mkdir(parents=True, exist_ok=True)
            # A server killed while writing a blob leaves its temporary file behind; nothing points at it.
            for stale in self.root.glob(".*.tmp"):
                stale.unlink(missing_ok=True)

    def put(self, data: bytes) -> str:
        key = hashlib.sha256(data).hexdigest()
        if self.root is None:
            self._memory[key] = data
            return key
        self._doomed.discard(key)  # the same bytes uploaded again: a new row points at the file
        path = self.root / key
        if not path.exists():
            tmp = path.with_name(f".{key}.{os.getpid()}.tmp")
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
            dir_fd = os.open(self.root, os.O_RDONLY)  # the rename itself must be durable before the row is
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        return key

    def get(self, key: str) -> bytes | None:
        if self.root is None:
            return self._memory.get(key)
        try:
            return (self.root / key).read_bytes()
        except (FileNotFoundError, OSError):
            return None

    def snapshot(self) -> dict[str, bytes]:
        """In memory, the blobs themselves (bytes are shared, not copied). On disk, files are content-addressed
        and a restored row finds its file again — as long as it is still there: the files that exist now are
        kept from here on (`delete` leaves them), since a snapshot or the baseline may bring back a row that
        points at one. (Was a bug: deleting a case note and restoring a snapshot left its attachment's row
        pointing at a deleted file.)"""
        if self.root is not None:
            self._pinned.update(p.name for p in self.root.iterdir() if not p.name.startswith("."))
        return dict(self._memory)

    def restore(self, saved: dict[str, bytes]) -> None:
        self._memory = dict(saved)

    def delete(self, key: str) -> None:
        """Forget the bytes (callers check no other row still points at them), unless a snapshot may
        still need them. On disk the file goes in `reap()`, after the commit that removes its row."""
        if self.root is None:
            self._memory.pop(key, None)
        elif key not in self._pinned:
            self._doomed.add(key)

    def doomed(self) -> tuple[str, ...]:
        """The files queued for removal so far: take them before a commit, `reap` them after it."""
        return tuple(self._doomed)

    def reap(self, keys: tuple[str, ...]) -> None:
        for key in keys:
            if key in self._doomed:  # not uploaded again meanwhile
                self._doomed.discard(key)
                (self.root / key).unlink(missing_ok=True)
