"""Remedials: follow-on jobs linked to a parent job (seed 002: list, link, unlink; reference page:
create, delete with `parent_job_uuid`, `remedial_job_uuid`, `reason`). A remedial job has one parent;
a job cannot be its own remedial; another organisation's job answers 404 like a missing one."""

from __future__ import annotations

from typing import Any

from ..endpoints import Call, Endpoint, Param
from ..envelope import ApiError, bad_param, listing, ok
from .jobs import load_job

PERMISSION = "api.jobs.remedials.manage"
PATH = "/api/jobs/remedials"


async def list_remedials(call: Call) -> dict[str, Any]:
    store = call.sandbox.store
    parent = load_job(call, call.params["job_uuid"])
    rows = []
    for link in store.select("remedials", lambda r: r["job_id"] == parent["ID"]):
        job = store.raw("jobs", link["remedial_job_id"])
        if job is None or not call.principal.sees_job(job):
            continue
        status = store.raw("statuses", job["status_id"])
        rows.append({"ID": job["ID"], "uuid": job["uuid"], "job_ref": job["job_ref"], "job_title": job["job_title"],
                     "status_name": status["name"] if status else None, "created_on": job["created_at"],
                     "reason": link.get("reason"), "linked_at": link["created_at"]})
    return listing(rows, len(rows))


def _pair(call: Call, parent_uuid: str, child_uuid: str, child_field: str) -> tuple[dict, dict]:
    parent = load_job(call, parent_uuid, write=True)
    child = load_job(call, child_uuid, write=True)
    if parent["ID"] == child["ID"]:
        raise bad_param(child_field, "a job cannot be its own remedial")
    return parent, child


async def link(call: Call) -> dict[str, Any]:
    p, store = call.params, call.sandbox.store
    child_field = "remedials_job_uuid" if call.action == "link" else "remedial_job_uuid"
    parent_uuid = p.get("job_uuid") if call.action == "link" else p.get("parent_job_uuid")
    if not parent_uuid or not p.get(child_field):
        raise bad_param("job_uuid" if call.action == "link" else "parent_job_uuid", "required")
    parent, child = _pair(call, parent_uuid, p[child_field], child_field)
    existing = store.select("remedials", lambda r: r["remedial_job_id"] == child["ID"])
    if existing:
        raise ApiError(400, f"Job {child['job_ref']} is already linked as a remedial")
    if store.select("remedials", lambda r: r["job_id"] == child["ID"] and r["remedial_job_id"] == parent["ID"]):
        raise ApiError(400, f"Job {parent['job_ref']} is already a remedial of {child['job_ref']}")
    store.insert("remedials", {"ID": None, "uuid": None, "org_id": parent["org_id"], "job_id": parent["ID"],
                               "remedial_job_id": child["ID"], "reason": p.get("reason"),
                               "created_by": call.principal.user_id, "created_at": call.sandbox.clock.iso()})
    return ok(message="Remedial job linked")


async def unlink(call: Call) -> dict[str, Any]:
    p, store = call.params, call.sandbox.store
    if call.action == "unlink":  # seed: the uuid is the remedial job; it leaves its parent
        if not p.get("job_uuid"):
            raise bad_param("job_uuid", "required")
        child = load_job(call, p["job_uuid"], write=True)
        links = store.select("remedials", lambda r: r["remedial_job_id"] == child["ID"])
    else:
        if not p.get("parent_job_uuid") or not p.get("remedial_job_uuid"):
            raise bad_param("parent_job_uuid" if not p.get("parent_job_uuid") else "remedial_job_uuid", "required")
        parent, child = _pair(call, p["parent_job_uuid"], p["remedial_job_uuid"], "remedial_job_uuid")
        links = store.select("remedials", lambda r: r["job_id"] == parent["ID"] and r["remedial_job_id"] == child["ID"])
    if not links:
        raise ApiError(404, "Remedial link not found")
    store.delete("remedials", [r["ID"] for r in links])
    return ok(message="Remedial job unlinked")


WRITE_PARAMS = (
    Param("job_uuid", "uuid"), Param("remedials_job_uuid", "uuid"), Param("parent_job_uuid", "uuid"),
    Param("remedial_job_uuid", "uuid"), Param("reason", max_length=2000),
)
ENDPOINTS = [
    Endpoint("GET", PATH, list_remedials, PERMISSION, ("list",), params=(Param("job_uuid", "uuid", required=True),),
             summary="Jobs linked as remedials of a job"),
    Endpoint("POST", PATH, link, PERMISSION, ("link", "create"), csrf=True, params=WRITE_PARAMS,
             summary="Link a job as a remedial of another"),
    Endpoint("POST", PATH, unlink, PERMISSION, ("unlink", "delete"), csrf=True, params=WRITE_PARAMS,
             summary="Remove a remedial link (the jobs stay)"),
]
