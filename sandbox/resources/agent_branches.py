"""Branch reads and settings under ``/api/agents/``: the branch job board, the profile popover, SLA
targets, measured response/resolution times and their rules, the branch logo and the sharing rules
(agents guide, the SLA-response-time-rule and branch-logo references).

Branches follow the scoping of `agents`: Staff see every branch of their organisation, an agent only
their own and shared branches; any other branch answers 404 "Branch not found". Jobs are further
limited to the ones the caller may see. Response time is the first update after a job was raised (its
first commit, else ``updated_at``); resolution time runs from creation to completion.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from .. import media
from ..clock import iso, parse_instant
from ..endpoints import Call, Endpoint, Param, paging
from ..envelope import FORBIDDEN, ApiError, bad_param, listing, not_found, ok
from ..store import Row
from ._generic import page
from .agents import (
    BRANCH_KEYS,
    COMPLETED,
    agent_name,
    branch_ids_of,
    branch_name,
    branch_param,
    branch_scope,
    commits_by_job,
    completed_time,
    first_response,
    load_agent,
    load_branch,
    rate,
    recall_counter,
    sees_agent,
    sla_targets,
)
from .jobs import list_row

PERIODS = {"7days": 7, "30days": 30, "90days": 90}
DATE_FIELDS = ("created_at", "updated_at", "completed_at", "date_works_start_date", "date_works_end_date")
SORTS = ("created_on", "priority", "status", "title", "job_ref")
ORDERS = ("asc", "desc")
LOGO_TYPES = "PNG, SVG or JPEG"
MAX_LOGO = 2 * 1024 * 1024
_SVG_ACTIVE = re.compile(rb"<script|<foreignobject|\son[a-z]+\s*=|javascript:", re.IGNORECASE)


def _natural(ref: str) -> tuple:
    return tuple(int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", ref or ""))


SORT_KEYS = {
    "created_on": lambda j: j["created_at"], "priority": lambda j: j["priority_id"],
    "status": lambda j: j["status_id"], "title": lambda j: (j["job_title"] or "").casefold(),
    "job_ref": lambda j: _natural(j["job_ref"]),
}


def _branch_jobs(call: Call, branch: Row) -> list[Row]:
    me = call.principal
    return call.sandbox.store.select("jobs", lambda j: j["branch_id"] == branch["ID"] and me.sees_job(j))


def _overdue(job: Row, targets: dict[int, int], now: dt.datetime) -> bool:
    if job["status_id"] in COMPLETED:
        return False
    hours = targets.get(job["priority_id"], 72)
    return parse_instant(job["created_at"]) + dt.timedelta(hours=hours) < now


# -- the branch job board ---------------------------------------------------------------------------

async def branch_jobs(call: Call) -> dict[str, Any]:
    """The branch's jobs (filtered, sorted, paged) with statistics and a per-agent breakdown over every
    job that matches the filters."""
    p = call.params
    branch = branch_param(call, "branch_uuid")
    start, end = p.get("date_from"), p.get("date_to")
    if start and end and end < start:
        raise bad_param("date_to", "must not be before date_from")
    needle = (p.get("search") or "").strip().lower()
    equal = [(f, p[f]) for f in ("status_id", "priority_id", "job_type_id", "agent_id") if p.get(f) is not None]

    def keep(job: Row) -> bool:
        if any(job.get(f) != v for f, v in equal):
            return False
        day = job["created_at"][:10]
        if (start and day < start) or (end and day > end):
            return False
        return not needle or any(needle in str(job.get(f) or "").lower()
                                 for f in ("job_title", "job_ref", "job_description"))

    rows = [j for j in _branch_jobs(call, branch) if keep(j)]
    sort = p.get("sort_by") or p.get("sort") or "created_on"
    order = p.get("sort_order") or p.get("order") or "desc"
    rows.sort(key=SORT_KEYS[sort], reverse=order == "desc")
    return listing([list_row(call, j) for j in page(call, rows)], len(rows),
                   branch={"branch_id": branch["ID"], "branch_uuid": branch["uuid"],
                           "branch_name": branch["branch_name"]},
                   statistics=_statistics(call, branch, rows), agent_breakdown=_per_agent(call, branch, rows),
                   sort_by=sort, sort_order=order)


def _statistics(call: Call, branch: Row, jobs: list[Row]) -> Row:
    store, now = call.sandbox.store, call.sandbox.clock.now()
    targets = {r["priority_id"]: r["target_hours"] for r in sla_targets(call, branch["ID"])}
    done = sum(j["status_id"] in COMPLETED for j in jobs)
    by_status = [{"status_id": s["ID"], "status_name": s["name"],
                  "count": sum(j["status_id"] == s["ID"] for j in jobs)} for s in store.select("statuses")]
    by_priority = [{"priority_id": r["ID"], "priority_name": r["name"],
                    "count": sum(j["priority_id"] == r["ID"] for j in jobs)} for r in store.select("priorities")]
    return {
        "total_jobs": len(jobs), "open_jobs": len(jobs) - done, "completed_jobs": done,
        "completion_rate": rate(done, len(jobs)), "recalled_jobs": sum(map(recall_counter(call, jobs), jobs)),
        "sla_breached_jobs": sum(_overdue(j, targets, now) for j in jobs),
        "unassigned_jobs": sum(j.get("agent_id") is None for j in jobs),
        "by_status": by_status, "by_priority": by_priority,
    }


def _per_agent(call: Call, branch: Row, jobs: list[Row]) -> list[Row]:
    """The branch's active agents (own and shared) with their counts, then any other agent on these
    jobs, then unassigned jobs (agent_id null) when there are any."""
    store = call.sandbox.store
    members = store.select("agents", lambda a: a.get("is_active", True) and branch["ID"] in branch_ids_of(a))
    order = [a["ID"] for a in members] + sorted({j["agent_id"] for j in jobs if j.get("agent_id") is not None}
                                                 - {a["ID"] for a in members})
    counts: dict[int | None, list[int]] = {}
    for job in jobs:
        entry = counts.setdefault(job.get("agent_id"), [0, 0])
        entry[0] += 1
        entry[1] += job["status_id"] in COMPLETED
    out = []
    for id_ in order + ([None] if None in counts else []):
        agent = store.raw("agents", id_)
        total, done = counts.get(id_, (0, 0))
        out.append({"agent_id": id_, "agent_uuid": agent["uuid"] if agent else None,
                    "agent_name": agent_name(call, agent), "is_branch_member": id_ is not None and agent is not None
                    and branch["ID"] in branch_ids_of(agent),
                    "total_jobs": total, "open_jobs": total - done, "completed_jobs": done})
    return out


# -- branch summary and SLA ---------------------------------------------------------------------------

async def profile_popover(call: Call) -> dict[str, Any]:
    store = call.sandbox.store
    branch = branch_param(call)
    members = store.select("agents", lambda a: a.get("is_active", True) and branch["ID"] in branch_ids_of(a)
                           and sees_agent(call, a))
    jobs = _branch_jobs(call, branch)
    done = sum(j["status_id"] in COMPLETED for j in jobs)
    parts = [branch.get("address_line_1"), branch.get("city"), branch.get("postcode")]
    return ok({
        "branch_id": branch["ID"], "uuid": branch["uuid"], "branch_name": branch["branch_name"],
        "address_line_1": branch.get("address_line_1"), "city": branch.get("city"), "postcode": branch.get("postcode"),
        "full_address": ", ".join(x for x in parts if x), "contact_number": branch.get("contact_number"),
        "shared_email": branch.get("shared_email"), "is_active": bool(branch.get("is_active", True)),
        "logo_url": branch.get("logo_url"), "created_at": branch.get("created_at"), "agent_count": len(members),
        "agents": [{"agent_uuid": a["uuid"], "agent_name": agent_name(call, a),
                    "is_primary": a["branch_id"] == branch["ID"]} for a in members],
        "total_jobs": len(jobs), "open_jobs": len(jobs) - done, "completed_jobs": done,
    })


def _rules(call: Call, branch: Row) -> list[Row]:
    store = call.sandbox.store
    out = []
    for rule in store.select("branch_sla_rules", lambda r: r["branch_id"] == branch["ID"]):
        out.append({k: rule.get(k) for k in (
            "ID", "uuid", "branch_id", "job_status_from_id", "job_status_to_id", "job_type_id", "job_priority",
            "date_field_to_track", "date_field_to_compare", "minimum_response_days", "description", "created_at",
            "updated_at")} | {"branch_uuid": branch["uuid"]})
    return out


async def branch_sla(call: Call) -> dict[str, Any]:
    branch = branch_param(call)
    return ok({"branch_id": branch["ID"], "branch_uuid": branch["uuid"], "branch_name": branch["branch_name"],
               "sla_rules": sla_targets(call, branch["ID"]), "response_time_rules": _rules(call, branch)})


def _avg_hours(spans: list[float]) -> float | None:
    return round(sum(spans) / len(spans) / 3600, 1) if spans else None


async def response_times(call: Call) -> dict[str, Any]:
    """Average response and resolution hours by priority for the branch's jobs raised in the period."""
    branch = branch_param(call)
    period = call.params["period"]
    now = call.sandbox.clock.now()
    since = now - dt.timedelta(days=PERIODS[period])
    jobs = [j for j in _branch_jobs(call, branch) if since <= parse_instant(j["created_at"]) <= now]
    commits = commits_by_job(call, {j["ID"] for j in jobs})
    groups: dict[int, dict[str, list[float]]] = {}
    for job in jobs:
        group = groups.setdefault(job["priority_id"], {"response": [], "resolution": [], "jobs": []})
        group["jobs"].append(1)
        created, history = parse_instant(job["created_at"]), commits.get(job["ID"], [])
        answered = first_response(job, history)
        if answered is not None:
            group["response"].append((answered - created).total_seconds())
        finished = completed_time(job, history)
        if finished is not None:
            group["resolution"].append((finished - created).total_seconds())
    rows, every = [], {"response": [], "resolution": []}
    for target in sla_targets(call, branch["ID"]):
        group = groups.get(target["priority_id"], {"response": [], "resolution": [], "jobs": []})
        within = sum(s <= target["target_hours"] * 3600 for s in group["resolution"])
        rows.append({
            "priority_id": target["priority_id"], "priority_name": target["priority_name"],
            "target_hours": target["target_hours"], "job_count": len(group["jobs"]),
            "responded_count": len(group["response"]), "avg_response_hours": _avg_hours(group["response"]),
            "resolved_count": len(group["resolution"]), "avg_resolution_hours": _avg_hours(group["resolution"]),
            "resolved_within_target": within, "within_target_rate": rate(within, len(group["resolution"])),
        })
        every["response"] += group["response"]
        every["resolution"] += group["resolution"]
    return ok({
        "branch_id": branch["ID"], "branch_uuid": branch["uuid"], "branch_name": branch["branch_name"],
        "period": period, "from": iso(since), "to": iso(now), "by_priority": rows,
        "overall": {"job_count": len(jobs), "avg_response_hours": _avg_hours(every["response"]),
                    "avg_resolution_hours": _avg_hours(every["resolution"])},
        "rules": _rules(call, branch),
    })


# -- SLA response-time rules ----------------------------------------------------------------------------

RULE_FIELDS = ("job_status_from_id", "job_status_to_id", "job_type_id", "job_priority", "date_field_to_track",
               "date_field_to_compare", "minimum_response_days", "description")
NULLABLE = ("job_type_id", "job_priority", "description")
LOOKUPS = {"job_status_from_id": ("statuses", "status"), "job_status_to_id": ("statuses", "status"),
           "job_type_id": ("job_types", "job type"), "job_priority": ("priorities", "priority")}


async def save_rule(call: Call) -> dict[str, Any]:
    """Create a rule (no ``uuid``) or update the given fields of one (``uuid``)."""
    store, p, now = call.sandbox.store, call.params, call.sandbox.clock.iso()
    branch = load_branch(call, uuid=p["branch_uuid"])
    rule = None
    if p.get("uuid") is not None:
        rule = store.raw_by_uuid("branch_sla_rules", p["uuid"])
        if rule is None or rule["org_id"] != branch["org_id"] or rule["branch_id"] != branch["ID"]:
            raise not_found("SLA rule")
    changes = {k: p[k] for k in RULE_FIELDS if k in p}
    for field, value in changes.items():
        if value is None and field not in NULLABLE:
            raise bad_param(field, "required; it cannot be cleared")
        if value is not None and field in LOOKUPS:
            table, noun = LOOKUPS[field]
            if store.raw(table, value) is None:
                raise bad_param(field, f"no {noun} with ID {value}")
    if rule is None:
        for field in ("job_status_from_id", "job_status_to_id", "minimum_response_days"):
            if field not in changes:
                raise bad_param(field, "required to create a rule")
        changes.setdefault("date_field_to_track", "created_at")
        changes.setdefault("date_field_to_compare", "updated_at")
    merged = {**(rule or {}), **changes}
    if merged["job_status_from_id"] == merged["job_status_to_id"]:
        raise bad_param("job_status_to_id", "must differ from job_status_from_id")
    if merged["date_field_to_track"] == merged["date_field_to_compare"]:
        raise bad_param("date_field_to_compare", "must differ from date_field_to_track")
    if rule is None:
        rule = store.insert("branch_sla_rules", {
            "ID": None, "uuid": None, "org_id": branch["org_id"], "branch_id": branch["ID"],
            **{k: changes.get(k) for k in RULE_FIELDS}, "created_by": call.principal.user_id,
            "created_at": now, "updated_at": now,
        })
    else:
        rule = store.update("branch_sla_rules", rule["ID"], {**changes, "updated_at": now})
    return ok(rule_id=rule["ID"], rule_uuid=rule["uuid"])


# -- logo and sharing -------------------------------------------------------------------------------------

def _logo_kind(data: bytes) -> tuple[str, str] | None:
    """(mime, extension) by content: PNG, JPEG, or SVG (text starting ``<svg`` or ``<?xml`` with an
    ``<svg`` element)."""
    kind = media.sniff(data)
    if kind is not None and kind.name in media.IMAGES:
        return kind.mime, kind.ext
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:4096].lower()
    if head.startswith(b"<svg") or (head.startswith(b"<?xml") and b"<svg" in data.lower()):
        return "image/svg+xml", ".svg"
    return None


async def upload_logo(call: Call) -> dict[str, Any]:
    """Store or replace a branch's logo (PNG, SVG or JPEG, by content)."""
    me, store = call.principal, call.sandbox.store
    if not (me.can("api.agents.branches.manage") or me.can("api.admin.branches.manage")):
        raise ApiError(403, FORBIDDEN)
    branch = load_branch(call, uuid=call.params["uuid"])
    upload = call.params.get("logo")
    if upload is None:
        raise bad_param("logo", f"required: a {LOGO_TYPES} image sent as multipart/form-data")
    data = await upload.read(MAX_LOGO + 1)
    if not data:
        raise bad_param("logo", "the file is empty")
    if len(data) > MAX_LOGO:
        raise bad_param("logo", f"a logo may be at most {MAX_LOGO // (1024 * 1024)} MB")
    found = _logo_kind(data)
    if found is None:
        raise bad_param("logo", f"must be a {LOGO_TYPES} image (recognised by content, not by file name)")
    mime, ext = found
    if mime == "image/svg+xml":
        if _SVG_ACTIVE.search(data):
            raise bad_param("logo", "the SVG holds scripts or event handlers")
        width = height = None
    else:
        try:
            width, height = media.inspect_image(data)
        except media.MediaError as exc:
            raise bad_param("logo", str(exc)) from None
    now = call.sandbox.clock.iso()
    previous = store.select("branch_logos", lambda r: r["branch_id"] == branch["ID"])
    row = store.insert("branch_logos", {
        "ID": None, "uuid": None, "org_id": branch["org_id"], "branch_id": branch["ID"], "job_id": None,
        "blob": call.sandbox.blobs.put(data), "mime_type": mime, "size": len(data), "width": width, "height": height,
        "file_name": f"branch-{branch['ID']}-logo{ext}", "uploaded_by": me.user_id, "created_at": now,
    })
    store.delete("branch_logos", [r["ID"] for r in previous])
    for old in previous:
        if old["blob"] != row["blob"] and not _blob_in_use(store, old["blob"]):
            call.sandbox.blobs.delete(old["blob"])
    url = f"/attachment/{row['uuid']}"
    store.update("branches", branch["ID"], {"logo_uuid": row["uuid"], "logo_url": url, "logo_updated_at": now})
    return ok(logo_url=url)


def _blob_in_use(store, key: str) -> bool:
    return any(store.select(t, lambda r: r.get("blob") == key)
               for t in ("branch_logos", "photos", "documents", "case_note_attachments"))


async def sharing_rules(call: Call) -> dict[str, Any]:
    """Which agents see which branches beyond their own: one row per (agent, shared branch). Scoped like
    every branch read: an agent sees the rules inside their own branches, contractors none."""
    store, scope, p = call.sandbox.store, branch_scope(call), call.params
    agents = [load_agent(call, p["agent_uuid"])] if p.get("agent_uuid") else store.select(
        "agents", lambda a: sees_agent(call, a))
    if p.get("branch_id") is not None:
        load_branch(call, id_=p["branch_id"])
    rows = []
    for agent in agents:
        for id_ in branch_ids_of(agent):
            if id_ == agent["branch_id"] or (scope is not None and id_ not in scope):
                continue
            if p.get("branch_id") is not None and p["branch_id"] not in (id_, agent["branch_id"]):
                continue
            home = agent["branch_id"]
            rows.append({"agent_id": agent["ID"], "agent_uuid": agent["uuid"], "agent_name": agent_name(call, agent),
                         "home_branch_id": home, "home_branch_name": branch_name(call, home),
                         "branch_id": id_, "branch_name": branch_name(call, id_),
                         "is_active": bool(agent.get("is_active", True))})
    return listing(rows, len(rows))


READ = "api.agents.list.manage"
ENDPOINTS = [
    Endpoint("GET", "/api/agents/branch-jobs", branch_jobs, "api.agents.branch_jobs.manage", params=(
        *BRANCH_KEYS, Param("status_id", "integer"), Param("priority_id", "integer"), Param("job_type_id", "integer"),
        Param("agent_id", "integer"), Param("search", max_length=200), Param("date_from", "date"),
        Param("date_to", "date"), *paging(1000), Param("sort_by", enum=SORTS), Param("sort_order", enum=ORDERS),
        Param("sort", enum=SORTS), Param("order", enum=ORDERS),
    ), summary="A branch's jobs with statistics and a per-agent breakdown"),
    Endpoint("GET", "/api/agents/branch-profile-popover", profile_popover, READ, params=BRANCH_KEYS,
             summary="Summary card of one branch"),
    Endpoint("GET", "/api/agents/branch-sla", branch_sla, READ, params=BRANCH_KEYS,
             summary="A branch's SLA targets per priority and its response-time rules"),
    Endpoint("GET", "/api/agents/branch-sla-response-times", response_times, READ, params=(
        *BRANCH_KEYS, Param("period", enum=tuple(PERIODS), default="30days"),
    ), summary="Measured average response and resolution hours by priority over 7, 30 or 90 days"),
    Endpoint("POST", "/api/agents/branch-sla-response-times", save_rule, "api.agents.branch_sla_response_times.manage",
             csrf=True, params=(
                 Param("branch_uuid", "uuid", required=True), Param("uuid", "uuid"),
                 Param("job_status_from_id", "integer", min=1), Param("job_status_to_id", "integer", min=1),
                 Param("job_type_id", "integer", min=1), Param("job_priority", "integer", min=1),
                 Param("date_field_to_track", enum=DATE_FIELDS), Param("date_field_to_compare", enum=DATE_FIELDS),
                 Param("minimum_response_days", "integer", min=0, max=365), Param("description", max_length=1000),
             ), summary="Create (no uuid) or update (uuid) an SLA response-time rule"),
    Endpoint("POST", "/api/agents/branch-logo", upload_logo, None, csrf=True,
             params=(Param("uuid", "uuid", required=True), Param("logo", "file")),
             summary="Upload or replace a branch logo (PNG, SVG or JPEG)"),
    Endpoint("GET", "/api/agents/branch-sharing", sharing_rules, None,
             params=(Param("agent_uuid", "uuid"), Param("branch_id", "integer", min=1)),
             summary="Branch sharing: the branches each agent sees beyond their own"),
]
