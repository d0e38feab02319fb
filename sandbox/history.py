"""Job change history: every change to a job is recorded as a commit of the fields it changed.

A commit row keeps ``{field: [old, new]}`` as JSON text, encrypted at rest (it may hold any job field,
private contact details included). `list_commits` reads them; `restore_commit` puts the old values back
and records that as a commit too (jobs reference: "Jobs keep a change history").
"""

from __future__ import annotations

import json
from typing import Any

from .store import Row, Store


def diff(before: Row, changes: dict[str, Any]) -> dict[str, list[Any]]:
    return {k: [before.get(k), v] for k, v in changes.items() if k != "updated_at" and before.get(k) != v}


def record(store: Store, now: str, job: Row, changes: dict[str, Any], *, user_id: int | None,
           kind: str = "update", note: str | None = None) -> Row | None:
    """Record what `changes` does to `job` (plaintext row before the change). Nothing changed → None."""
    delta = diff(job, changes)
    if not delta:
        return None
    return store.insert("job_commits", {
        "ID": None, "uuid": None, "org_id": job["org_id"], "job_id": job["ID"], "user_id": user_id,
        "kind": kind, "note": note, "changes": json.dumps(delta), "created_at": now,
    })


def apply(store: Store, now: str, job: Row, changes: dict[str, Any], *, user_id: int | None,
          kind: str = "update", note: str | None = None) -> Row:
    """Write `changes` to the job and record the commit; the one way job fields change."""
    record(store, now, job, changes, user_id=user_id, kind=kind, note=note)
    return store.update("jobs", job["ID"], {**changes, "updated_at": now})


def commits(store: Store, job_id: int) -> list[Row]:
    rows = [store.reveal("job_commits", r) for r in store.select("job_commits", lambda r: r["job_id"] == job_id)]
    for row in rows:
        row["changes"] = json.loads(row["changes"])
    return rows
