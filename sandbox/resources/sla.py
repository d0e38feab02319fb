"""SLA and calendar reads, computed from each job's priority target, its dates and the sandbox clock.

A job's SLA deadline is its creation time plus its priority's target (Emergency 4 h, High 24 h, Medium
72 h, Low 168 h), or its branch's own target for that priority where the branch sets one. Only active
jobs (not complete, closed, invoiced or archived) are on the clock. A job is
*within* SLA before its deadline, *overdue* up to 24 hours past it and *breached* after that — the jobs
guide's example breach is 26 hours over. `sla-breached-jobs` lists every active job past its deadline
(the SLA guide: "exceeded their SLA completion deadline"), grouped by branch, agent and contractor.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from ..clock import iso, parse_instant
from ..endpoints import Call, Endpoint, Param, paging
from ..envelope import bad_param, listing, ok
from ..store import Row
from .jobs import list_row

ACTIVE = frozenset({1, 2, 3, 4, 6})  # Open, Assigned, In Progress, Awaiting Approval, Recalled
GRACE_HOURS = 24
SUMMARY_KEYS = {4: "critical_priority", 3: "high_priority", 2: "medium_priority", 1: "low_priority"}


def _clocked(call: Call) -> Iterator[tuple[Row, dt.datetime, float]]:
    """(job, deadline, hours past it) for every active job the caller may see, oldest first."""
    store, me, now = call.sandbox.store, call.principal, call.sandbox.clock.now()
    branch, priority = call.params.get("branch_id"), call.params.get("priority_id")
    targets = {r["ID"]: r["sla_hours"] for r in store.select("priorities")}
    # A branch may override its per-priority targets (admin branch update, table branch_sla).
    overrides = {(r["branch_id"], r["priority_id"]): r["target_hours"]
                 for r in store.select("branch_sla", lambda r: r.get("org_id") == me.org_id)}
    for job in store.select("jobs", lambda r: r["status_id"] in ACTIVE and me.sees_job(r)):
        if branch is not None and job["branch_id"] != branch:
            continue
        if priority is not None and job["priority_id"] != priority:
            continue
        hours = overrides.get((job["branch_id"], job["priority_id"])) or targets.get(job["priority_id"], 72)
        deadline = parse_instant(job["created_at"]) + dt.timedelta(hours=hours)
        yield job, deadline, (now - deadline).total_seconds() / 3600


def _state(hours_over: float) -> str:
    return "within" if hours_over <= 0 else "overdue" if hours_over <= GRACE_HOURS else "breached"


async def sla_status(call: Call) -> dict[str, Any]:
    counts = {"within": 0, "overdue": 0, "breached": 0}
    details = []
    for job, deadline, over in _clocked(call):
        state = _state(over)
        counts[state] += 1
        if state != "within":
            details.append({"job_uuid": job["uuid"], "job_ref": job["job_ref"], "sla_deadline": iso(deadline),
                            "hours_overdue": int(over), "sla_state": state, "priority_id": job["priority_id"]})
    details.sort(key=lambda d: -d["hours_overdue"])
    limit = call.params["limit"]
    return ok({
        "jobs_within_sla": counts["within"], "jobs_overdue": counts["overdue"], "jobs_breached": counts["breached"],
        "breach_details": details[:limit], "evaluated_at": call.sandbox.clock.iso(),
    })


async def breached_jobs(call: Call) -> dict[str, Any]:
    store = call.sandbox.store
    by_branch: dict[int, dict[str, Any]] = {}
    by_agent: dict[int, dict[str, Any]] = {}
    by_contractor: dict[int, dict[str, Any]] = {}
    summary = {"total_breached": 0, **{key: 0 for key in SUMMARY_KEYS.values()}}
    for job, deadline, over in _clocked(call):
        if over <= 0:
            continue
        row = list_row(call, job)
        entry = {k: row[k] for k in ("ID", "uuid", "job_ref", "job_title", "priority_name", "agent_name",
                                      "contractor_name")}
        entry |= {"sla_deadline": iso(deadline), "hours_overdue": int(over)}
        branch = by_branch.get(job["branch_id"])
        if branch is None:
            name = store.raw("branches", job["branch_id"])
            branch = by_branch[job["branch_id"]] = {"branch_id": job["branch_id"], "breached_count": 0, "jobs": [],
                                                    "branch_name": name["branch_name"] if name else None}
        branch["breached_count"] += 1
        branch["jobs"].append(entry)
        for groups, key, name_field in ((by_agent, "agent_id", "agent_name"),
                                        (by_contractor, "contractor_id", "contractor_name")):
            if job[key] is not None:
                group = groups.setdefault(job[key], {key: job[key], name_field: row[name_field], "breached_count": 0})
                group["breached_count"] += 1
        summary["total_breached"] += 1
        summary[SUMMARY_KEYS.get(job["priority_id"], "medium_priority")] += 1
    return ok({
        "by_branch": [by_branch[k] for k in sorted(by_branch)],
        "by_agent": [by_agent[k] for k in sorted(by_agent)],
        "by_contractor": [by_contractor[k] for k in sorted(by_contractor)],
        "summary": summary,
    })


async def calendar_jobs(call: Call) -> dict[str, Any]:
    """Jobs whose works dates overlap [from_date, to_date] (calendar reference: both required)."""
    p, me, store = call.params, call.principal, call.sandbox.store
    start, end = p["from_date"], p["to_date"]
    if end < start:
        raise bad_param("to_date", "must not be before from_date")
    if (dt.date.fromisoformat(end) - dt.date.fromisoformat(start)).days > 366:
        raise bad_param("to_date", "the window may span at most 366 days")
    branch, contractor = p.get("branch_id"), p.get("contractor_id")

    def keep(job: Row) -> bool:
        first = job.get("date_works_start_date")
        last = job.get("date_works_end_date") or first
        return (bool(first) and first <= end and last >= start and me.sees_job(job)
                and (branch is None or job["branch_id"] == branch)
                and (contractor is None or job["contractor_id"] == contractor))

    rows = store.select("jobs", keep)
    rows.sort(key=lambda j: (j["date_works_start_date"], j["ID"]))
    out = []
    for job in rows[p["offset"]: p["offset"] + p["limit"]]:
        row = list_row(call, job)
        out.append({k: row[k] for k in ("ID", "uuid", "job_ref", "job_title", "status_id", "status_name",
                                        "priority_id", "priority_name", "agent_name", "contractor_id",
                                        "contractor_name", "full_address")}
                   | {"branch_id": job["branch_id"], "start": job["date_works_start_date"],
                      "end": job["date_works_end_date"] or job["date_works_start_date"]})
    return listing(out, len(rows))


FILTERS = (Param("branch_id", "integer"), Param("priority_id", "integer"))
ENDPOINTS = [
    Endpoint("GET", "/api/jobs/sla-status", sla_status, "api.jobs.manage.manage",
             params=(*FILTERS, Param("limit", "integer", default=50, min=1, max=200)),
             summary="SLA compliance: within, overdue, breached, with breach details"),
    Endpoint("GET", "/api/sla-breached-jobs", breached_jobs, "api.sla.breached_jobs.read", params=FILTERS,
             summary="Active jobs past their SLA deadline, grouped by branch, agent and contractor"),
    Endpoint("GET", "/api/calendar-jobs", calendar_jobs, None,
             params=(Param("from_date", "date", required=True), Param("to_date", "date", required=True),
                     Param("branch_id", "integer"), Param("contractor_id", "integer"), *paging(1000)),
             summary="Jobs scheduled in a date window"),
]
