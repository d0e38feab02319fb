"""The history actions of ``/api/jobs/manage``: `list_commits`, `restore_commit`, `restore_archived_file`.

Updates record commits (`sandbox/history.py`); restoring one puts back the values it replaced, on the
fields it changed, and is itself recorded. Deleted photos and documents are archived, not dropped, and
`restore_archived_file` brings one back (and the job's count with it).
"""

from __future__ import annotations

from typing import Any

from .. import history
from ..endpoints import Call, Endpoint, Param
from ..envelope import ApiError, bad_param, ok
from .jobs import LIST, MANAGE, PATH, UUID, load_job

FILE_TABLES = {"photos": "photos_count", "documents": "documents_count"}



async def list_commits(call: Call) -> dict[str, Any]:
    store = call.sandbox.store
    job = load_job(call, call.params["uuid"])
    rows = []
    for commit in reversed(history.commits(store, job["ID"])):  # newest first
        user = store.get("users", commit["user_id"])
        rows.append({
            "ID": commit["ID"], "uuid": commit["uuid"], "job_id": job["ID"], "kind": commit["kind"],
            "changes": {k: {"old": old, "new": new} for k, (old, new) in commit["changes"].items()},
            "fields": sorted(commit["changes"]), "note": commit["note"],
            "committed_by": f"{user['first_name']} {user['last_name']}" if user else None,
            "created_at": commit["created_at"],
        })
    return {"success": True, "data": rows, "count": len(rows), "message": ok()["message"]}


async def restore_commit(call: Call) -> dict[str, Any]:
    store, p = call.sandbox.store, call.params
    job = store.reveal("jobs", load_job(call, p["uuid"], write=True))
    wanted = p.get("commit_uuid") or p.get("commit_id")
    if wanted is None:
        raise bad_param("commit_id", "give commit_id or commit_uuid")
    commit = next((c for c in history.commits(store, job["ID"]) if wanted in (c["ID"], c["uuid"])), None)
    if commit is None:
        raise ApiError(404, "Commit not found for this job")
    restored = {field: old for field, (old, _new) in commit["changes"].items()}
    history.apply(store, call.sandbox.clock.iso(), job, restored, user_id=call.principal.user_id,
                  kind="restore", note=f"restored commit {commit['uuid']}")
    return ok(message="Job restored to the selected commit", restored_fields=sorted(restored))


async def restore_archived_file(call: Call) -> dict[str, Any]:
    store, p = call.sandbox.store, call.params
    job = load_job(call, p["uuid"], write=True)
    found = [(t, r) for t in FILE_TABLES if (r := store.raw_by_uuid(t, p["file_uuid"])) and r["job_id"] == job["ID"]]
    if not found:
        raise ApiError(404, "Archived file not found for this job")
    (table, row), counter = found[0], FILE_TABLES[found[0][0]]
    if not row.get("archived"):
        raise ApiError(400, "This file is not archived")
    store.update(table, row["ID"], {"archived": False, "archived_at": None})
    store.update("jobs", job["ID"], {counter: job[counter] + 1, "updated_at": call.sandbox.clock.iso()})
    return ok(message="File restored", file_uuid=row["uuid"])


ENDPOINTS = [
    Endpoint("GET", PATH, list_commits, LIST, ("list_commits",), params=(UUID,),
             summary="The job's change history, newest first"),
    Endpoint("POST", PATH, restore_commit, MANAGE, ("restore_commit",), csrf=True,
             params=(UUID, Param("commit_id", "integer"), Param("commit_uuid", "uuid")),
             summary="Put back the values a commit replaced"),
    Endpoint("POST", PATH, restore_archived_file, MANAGE, ("restore_archived_file",), csrf=True,
             params=(UUID, Param("file_uuid", "uuid", required=True)),
             summary="Bring back a deleted (archived) photo or document"),
]
