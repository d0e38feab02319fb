"""The request journal: every /api/ exchange, so a test can assert what its client really sent.

Each entry keeps method, path, query, the parsed body with secrets and encrypted-at-rest fields masked,
the status, the time taken, the scenario and what it did to the request (latency, an injected fault, a
storm, an expired token, maintenance). The journal is a ring of the last `size` entries: old ones fall
off, so a long-running sandbox does not grow without bound.
"""

from __future__ import annotations

import fnmatch
import itertools
from collections import deque
from typing import Any

from starlette.datastructures import UploadFile

from .store import ENCRYPTED

MASK = "***"
SECRETS = frozenset({"password", "token", "csrf_token", "new_password", "current_password", "api_key"})
PERSONAL = frozenset(name for names in ENCRYPTED.values() for name in names)


def mask(value: Any, key: str = "") -> Any:
    if key in SECRETS or key in PERSONAL:
        return MASK
    if isinstance(value, UploadFile):
        return {"file": value.filename, "size": value.size, "content_type": value.content_type}
    if isinstance(value, dict):
        return {k: mask(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v, key) for v in value]
    return value


class Journal:
    def __init__(self, size: int = 10_000):
        self.entries: deque[dict[str, Any]] = deque(maxlen=size)
        self._ids = itertools.count(1)

    def record(self, **entry: Any) -> None:
        entry["body"] = mask(entry.get("body") or {})
        self.entries.append({"id": next(self._ids), **entry})

    def query(self, *, method: str | None = None, path: str | None = None, status: int | None = None,
              since_id: int | None = None, since_at: str | None = None, limit: int | None = None) -> list[dict]:
        rows = [
            e for e in self.entries
            if (method is None or e["method"] == method.upper())
            and (path is None or fnmatch.fnmatchcase(e["path"], path))
            and (status is None or e["status"] == status)
            and (since_id is None or e["id"] > since_id)
            and (since_at is None or e["at"] >= since_at)
        ]
        return rows[-limit:] if limit else rows

    def clear(self) -> None:
        self.entries.clear()
