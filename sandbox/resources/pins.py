"""``POST /api/jobs/toggle-pin``: each user keeps their own pin list; job rows show `is_pinned` for the
caller. No CSRF token: the seed's example sends none (seeds win over the reference page)."""

from __future__ import annotations

from typing import Any

from ..endpoints import Call, Endpoint, Param
from .jobs import load_job


async def toggle_pin(call: Call) -> dict[str, Any]:
    store, me = call.sandbox.store, call.principal
    # Pins belong to the user, not the job, so archived jobs can be pinned and unpinned too.
    job = load_job(call, call.params["job_uuid"])
    mine = store.select("pins", lambda r: r["user_id"] == me.user_id and r["job_id"] == job["ID"])
    if mine:
        store.delete("pins", [r["ID"] for r in mine])
        return {"success": True, "is_pinned": False, "message": "Job unpinned from your dashboard"}
    store.insert("pins", {"ID": None, "user_id": me.user_id, "job_id": job["ID"],
                          "created_at": call.sandbox.clock.iso()})
    return {"success": True, "is_pinned": True, "message": "Job pinned to your dashboard"}


ENDPOINTS = [
    Endpoint("POST", "/api/jobs/toggle-pin", toggle_pin, "api.jobs.toggle_pin.manage",
             params=(Param("job_uuid", "uuid", required=True),), summary="Pin or unpin a job for yourself"),
]
