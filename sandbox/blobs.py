"""Uploaded file bytes: photos, documents, note attachments, thumbnails.

Rows in the store describe files; the bytes live here, keyed by a content hash — in memory by default,
or as files under ``<data-dir>/blobs/`` written atomically (temporary file, fsync, rename) *before* the
row that points at them is committed, so a row never points at a missing file.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


class Blobs:
    def __init__(self, data_dir: Path | None = None):
        self.root = None if data_dir is None else data_dir / "blobs"
        self._memory: dict[str, bytes] = {}
        if self.root is not None:
            self.root.mkdir(parents=True, exist_ok=True)

    def put(self, data: bytes) -> str:
        key = hashlib.sha256(data).hexdigest()
        if self.root is None:
            self._memory[key] = data
            return key
        path = self.root / key
        if not path.exists():
            tmp = path.with_name(f".{key}.{os.getpid()}.tmp")
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        return key

    def get(self, key: str) -> bytes | None:
        if self.root is None:
            return self._memory.get(key)
        try:
            return (self.root / key).read_bytes()
        except (FileNotFoundError, OSError):
            return None

    def snapshot(self) -> dict[str, bytes]:
        """In memory, the blobs themselves (bytes are shared, not copied); on disk, nothing is needed:
        files are content-addressed and a restored row finds its file again."""
        return dict(self._memory)

    def restore(self, saved: dict[str, bytes]) -> None:
        self._memory = dict(saved)

    def delete(self, key: str) -> None:
        """Forget the bytes (callers check no other row still points at them)."""
        if self.root is None:
            self._memory.pop(key, None)
        else:
            (self.root / key).unlink(missing_ok=True)
