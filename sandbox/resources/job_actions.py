"""The remaining actions of ``/api/jobs/manage``: the assignment notification, the dropdown lookups a
job form needs (creators, file types, agents, contractors, clients) and `preview_delete`.

The reference lists these actions by name only; each does what its name and the neighbouring
documented endpoints say (README, fidelity notes).
"""

from __future__ import annotations

from typing import Any

from .. import events
from ..auth import AGENT, CONTRACTOR
from ..endpoints import Call, Endpoint, Param, paging
from ..envelope import ApiError, listing, ok
from ._generic import page
from .jobs import ATTACHED, LIST, MANAGE, PATH, UUID, load_job


def _name(row: dict) -> str:
    return f"{row['first_name']} {row['last_name']}"


async def send_assignment_notification(call: Call) -> dict[str, Any]:
    store, now = call.sandbox.store, call.sandbox.clock.iso()
    job = load_job(call, call.params["uuid"], write=True)
    contractor = store.get("contractors", job["contractor_id"])
    if contractor is None:
        raise ApiError(400, f"Job {job['job_ref']} has no contractor assigned to notify")
    events.notify(store, now, org_id=job["org_id"], type="job_assigned", job_id=job["ID"],
                  contractor_id=contractor["ID"], title=f"New job {job['job_ref']}",
                  message=f"You have been assigned {job['job_ref']}: {job['job_title']}")
    events.record_email(store, now, org_id=job["org_id"], template="job_assigned", to=[contractor["email"]],
                        subject=f"Job {job['job_ref']} assigned to you", body=job["job_title"], job_id=job["ID"],
                        contractor_id=contractor["ID"])
    return ok(message="Assignment notification sent to the contractor", notified_at=now)


async def get_assignment_notification_state(call: Call) -> dict[str, Any]:
    store = call.sandbox.store
    job = load_job(call, call.params["uuid"])
    sent = store.select("notifications", lambda r: r["job_id"] == job["ID"] and r["type"] == "job_assigned")
    current = [r for r in sent if r["contractor_id"] == job["contractor_id"]]
    return ok({
        "job_uuid": job["uuid"], "contractor_id": job["contractor_id"], "notified": bool(current),
        "notified_at": current[-1]["created_at"] if current else None, "notifications_sent": len(sent),
    })


async def get_file_types(call: Call) -> dict[str, Any]:
    # The shared types, and the caller's organisation's own (POST /api/admin/document-types).
    org = call.principal.org_id
    rows = [dict(r) for r in call.sandbox.store.select("file_types", lambda r: r.get("org_id") in (None, org))]
    return listing(rows, len(rows))


async def get_creators(call: Call) -> dict[str, Any]:
    store, me = call.sandbox.store, call.principal
    ids = sorted({j["created_by"] for j in store.select("jobs", me.sees_job) if j.get("created_by")})
    users = [u for u in (store.get("users", i) for i in ids) if u]
    rows = [{"ID": u["ID"], "uuid": u["uuid"], "name": _name(u)} for u in users]
    return listing(rows, len(rows))


def _people(call: Call, table: str, keep) -> dict[str, Any]:
    store, org = call.sandbox.store, call.principal.org_id
    rows = store.select(table, lambda r: r["org_id"] == org and r.get("is_active", True) and keep(r))
    out = []
    for row in page(call, rows):
        person = store.reveal(table, row)
        out.append({"ID": person["ID"], "uuid": person["uuid"], "name": _name(person), "email": person["email"],
                    **({"branch_id": person["branch_id"]} if "branch_id" in person else {}),
                    **({"trade_ids": person["trade_ids"]} if "trade_ids" in person else {})})
    return listing(out, len(rows))


async def get_job_agents(call: Call) -> dict[str, Any]:
    me, branch = call.principal, call.params.get("branch_id")
    mine = me.branch_ids if me.account_type_id == AGENT else None
    return _people(call, "agents", lambda r: (branch is None or branch in r["branch_ids"])
                   and (mine is None or set(mine) & set(r["branch_ids"])))


async def get_job_contractors(call: Call) -> dict[str, Any]:
    me, trade = call.principal, call.params.get("trade_id")
    return _people(call, "contractors", lambda r: (trade is None or trade in r["trade_ids"])
                   and (me.account_type_id != CONTRACTOR or r["ID"] == me.contractor_id))


async def get_job_clients(call: Call) -> dict[str, Any]:
    """The job's tenants (the people the works are for), or the organisation's tenants without a uuid."""
    store, uuid = call.sandbox.store, call.params.get("uuid")
    if uuid:
        job = load_job(call, uuid)
        rows = [r for r in (store.raw("tenants", i) for i in job["tenants_ids"]) if r]
    else:
        rows = store.select("tenants", lambda r: r["org_id"] == call.principal.org_id)
    out = [{"ID": t["ID"], "uuid": t["uuid"], "tenant_name": t["tenant_name"], "tenant_email": t["tenant_email"],
            "tenant_number_primary": t["tenant_number_primary"], "address_id": t["address_id"]}
           for t in (store.reveal("tenants", r) for r in page(call, rows))]
    return listing(out, len(rows))


async def preview_delete(call: Call) -> dict[str, Any]:
    store = call.sandbox.store
    job = load_job(call, call.params["uuid"])
    counts: dict[str, int] = {}
    for table, field in ATTACHED:
        counts[table] = counts.get(table, 0) + len(store.select(table, lambda r, f=field: r.get(f) == job["ID"]))
    return ok({"job_id": job["ID"], "job_uuid": job["uuid"], "job_ref": job["job_ref"], "will_delete": counts,
               "total_records": 1 + sum(counts.values())},
              message=f"Deleting {job['job_ref']} would remove the job and {sum(counts.values())} attached records")


OPTIONAL_UUID = Param("uuid", "uuid")
ENDPOINTS = [
    Endpoint("POST", PATH, send_assignment_notification, MANAGE, ("send_assignment_notification",), csrf=True,
             params=(UUID,), summary="Notify the assigned contractor"),
    Endpoint("GET", PATH, get_assignment_notification_state, LIST, ("get_assignment_notification_state",),
             params=(UUID,), summary="Whether the assigned contractor was notified"),
    Endpoint("GET", PATH, get_file_types, LIST, ("get_file_types",), summary="Document file types"),
    Endpoint("GET", PATH, get_creators, LIST, ("get_creators",), summary="Users who created visible jobs"),
    Endpoint("GET", PATH, get_job_agents, LIST, ("get_job_agents",),
             params=(Param("branch_id", "integer"), *paging()), summary="Agents a job can be assigned to"),
    Endpoint("GET", PATH, get_job_contractors, LIST, ("get_job_contractors",),
             params=(Param("trade_id", "integer"), *paging()), summary="Contractors a job can be assigned to"),
    Endpoint("GET", PATH, get_job_clients, LIST, ("get_job_clients",), params=(OPTIONAL_UUID, *paging()),
             summary="The job's tenants, or the organisation's"),
    Endpoint("GET", PATH, preview_delete, LIST, ("preview_delete",), params=(UUID,),
             summary="What deleting the job would remove"),
]
