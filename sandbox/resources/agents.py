"""Agents: ``/api/agents/list``, ``/sla``, ``/performance``, ``/branches`` and ``/sharing`` (seed 004).

An agent belongs to one branch of its own (``branch_id``, first in ``branch_ids``) and may be given other
branches of the organisation (branch sharing: the rest of ``branch_ids``). The caller's scope follows the
agent row on every request (`auth.principal`), so assigning or removing a branch changes at once what
that agent sees. Scoping: Staff see every agent and branch of their organisation; an agent sees only
their own and shared branches and the agents of those branches; anything else answers 404 as missing.

SLA targets come from the branch's own per-priority overrides (table ``branch_sla``, written by the
admin branch update) and fall back to the priorities' ``sla_hours``. Performance KPIs are computed
from the agent's jobs; a completion time is ``completed_at``, or else the commit that moved the job into
a completed status.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from ..auth import AGENT, STAFF
from ..clock import parse_instant
from ..endpoints import Call, Endpoint, Param, paging
from ..envelope import ApiError, bad_param, listing, not_found, ok
from ..store import Row
from ._generic import page

COMPLETED = frozenset({5, 7, 8, 9})  # Complete, Closed, Archived, Invoiced
RECALLED = 6


# -- scoping (shared with agent_branches) -----------------------------------------------------------

def branch_scope(call: Call) -> frozenset[int] | None:
    """Branch ids the caller may see within the organisation; None means all of them (Staff)."""
    me = call.principal
    if me.account_type_id == STAFF:
        return None
    if me.account_type_id == AGENT:
        return frozenset(me.branch_ids)
    return frozenset()


def sees_branch(call: Call, branch: Row | None) -> bool:
    if branch is None or branch["org_id"] != call.principal.org_id:
        return False
    scope = branch_scope(call)
    return scope is None or branch["ID"] in scope


def branch_ids_of(agent: Row) -> list[int]:
    return list(agent.get("branch_ids") or [agent["branch_id"]])


def sees_agent(call: Call, agent: Row | None) -> bool:
    if agent is None or agent["org_id"] != call.principal.org_id:
        return False
    scope = branch_scope(call)
    return scope is None or not scope.isdisjoint(branch_ids_of(agent))


def load_branch(call: Call, *, id_: int | None = None, uuid: str | None = None) -> Row:
    store = call.sandbox.store
    branch = store.raw_by_uuid("branches", uuid) if uuid is not None else store.raw("branches", id_)
    if not sees_branch(call, branch):
        raise not_found("Branch")
    return branch


def branch_param(call: Call, name: str = "branch_id") -> Row:
    """The branch named by ``branch_id`` or ``branch_uuid`` (either may be sent); 400 naming `name`
    when neither is given, 404 when the caller may not see it."""
    p = call.params
    if p.get("branch_uuid") is not None:
        return load_branch(call, uuid=p["branch_uuid"])
    if p.get("branch_id") is not None:
        return load_branch(call, id_=p["branch_id"])
    other = "branch_uuid" if name == "branch_id" else "branch_id"
    raise bad_param(name, f"required: the branch (or {other})")


BRANCH_KEYS = (Param("branch_id", "integer", min=1), Param("branch_uuid", "uuid"))


def load_agent(call: Call, uuid: str) -> Row:
    agent = call.sandbox.store.raw_by_uuid("agents", uuid)
    if not sees_agent(call, agent):
        raise not_found("Agent")
    return agent


def agent_param(call: Call) -> Row:
    """``agent_uuid``; an agent calling without one means themselves."""
    uuid = call.params.get("agent_uuid")
    if uuid is not None:
        return load_agent(call, uuid)
    me = call.principal
    if me.account_type_id == AGENT and me.agent_id is not None:
        agent = call.sandbox.store.raw("agents", me.agent_id)
        if agent is not None:
            return agent
    raise bad_param("agent_uuid", "required: the agent's UUID")


def agent_name(call: Call, agent: Row | None) -> str | None:
    if agent is None:
        return None
    plain = call.sandbox.store.reveal("agents", agent)  # decrypts through the cipher's cache
    return f"{plain['first_name']} {plain['last_name']}"


def branch_name(call: Call, branch_id: int | None) -> str | None:
    row = call.sandbox.store.raw("branches", branch_id)
    return row["branch_name"] if row else None


# -- SLA targets and job timings (shared with agent_branches) ----------------------------------------

def sla_targets(call: Call, branch_id: int) -> list[Row]:
    """Per-priority resolution targets of a branch, most urgent first: the branch's override when it
    has one (``branch_sla``), else the priority's default ``sla_hours``."""
    store = call.sandbox.store
    overrides = {r["priority_id"]: r["target_hours"] for r in store.select("branch_sla", lambda r: r.get(
        "branch_id") == branch_id and r.get("target_hours") is not None)}
    rules = []
    for priority in sorted(store.select("priorities"), key=lambda r: -r["ID"]):
        override = overrides.get(priority["ID"])
        rules.append({"priority_id": priority["ID"], "priority_name": priority["name"],
                      "target_hours": priority["sla_hours"] if override is None else override,
                      "is_default": override is None})
    return rules


def commits_by_job(call: Call, job_ids: set[int]) -> dict[int, list[Row]]:
    """Each job's commits (``changes`` decoded), oldest first: one pass over ``job_commits``."""
    store, out = call.sandbox.store, {}
    for row in store.select("job_commits", lambda r: r["job_id"] in job_ids):
        plain = store.reveal("job_commits", row)
        plain["changes"] = json.loads(plain["changes"])
        out.setdefault(row["job_id"], []).append(plain)
    for rows in out.values():
        rows.sort(key=lambda r: (r["created_at"], r["ID"]))
    return out


def completed_time(job: Row, commits: list[Row]) -> dt.datetime | None:
    """When a completed job was completed: ``completed_at``, else the last commit that moved it into a
    completed status (a status update through the API), else its last update."""
    if job["status_id"] not in COMPLETED:
        return None
    if job.get("completed_at"):
        return parse_instant(job["completed_at"])
    for commit in reversed(commits):
        status = commit["changes"].get("status_id")
        if status and status[1] in COMPLETED and status[0] not in COMPLETED:
            return parse_instant(commit["created_at"])
    return parse_instant(job["updated_at"]) if job.get("updated_at") else None


def first_response(job: Row, commits: list[Row]) -> dt.datetime | None:
    """The first update after creation: the first commit, else ``updated_at`` when later than creation."""
    created = parse_instant(job["created_at"])
    for commit in commits:
        at = parse_instant(commit["created_at"])
        if at >= created:
            return at
    updated = parse_instant(job["updated_at"]) if job.get("updated_at") else None
    return updated if updated is not None and updated > created else None


def recall_counter(call: Call, jobs: list[Row]):
    """A predicate: was this job ever recalled (now Recalled, flagged, or marked in ``job_recalls``)."""
    ids = {j["ID"] for j in jobs}
    marked = {r["job_id"] for r in call.sandbox.store.select(
        "job_recalls", lambda r: r["job_id"] in ids and r["action"] == "marked")}
    return lambda job: bool(job.get("is_recall")) or job["status_id"] == RECALLED or job["ID"] in marked


def rate(part: int, whole: int) -> float:
    return round(part * 100 / whole, 1) if whole else 0.0


# -- handlers ---------------------------------------------------------------------------------------

def agent_row(call: Call, agent: Row) -> Row:
    plain = call.sandbox.store.reveal("agents", agent)
    return {
        "ID": agent["ID"], "uuid": agent["uuid"], "first_name": plain["first_name"], "last_name": plain["last_name"],
        "email": plain["email"], "branch_id": agent["branch_id"], "branch_name": branch_name(call, agent["branch_id"]),
        "is_active": bool(agent.get("is_active", True)), "branch_ids": branch_ids_of(agent),
        "phone": agent.get("phone"),
    }


async def list_agents(call: Call) -> dict[str, Any]:
    """Active agents the caller may see, by ID; ``search`` looks in the decrypted name and e-mail."""
    store, p = call.sandbox.store, call.params
    branch, needle = p.get("branch_id"), (p.get("search") or "").strip().lower()

    def keep(agent: Row) -> bool:
        if not agent.get("is_active", True) or not sees_agent(call, agent):
            return False
        if branch is not None and (branch not in branch_ids_of(agent) or not sees_branch(
                call, store.raw("branches", branch))):
            return False
        if needle:
            plain = store.reveal("agents", agent)
            text = f"{plain['first_name']} {plain['last_name']}\n{plain['email']}".lower()
            return needle in text
        return True

    rows = store.select("agents", keep)
    return listing([agent_row(call, r) for r in page(call, rows)], len(rows))


async def agent_sla(call: Call) -> dict[str, Any]:
    agent = agent_param(call)
    scope = branch_scope(call)
    branches = []
    for id_ in branch_ids_of(agent):
        if scope is None or id_ in scope:
            branches.append({"branch_id": id_, "branch_name": branch_name(call, id_),
                             "is_primary": id_ == agent["branch_id"], "sla_rules": sla_targets(call, id_)})
    return ok({
        "agent_uuid": agent["uuid"], "branch_id": agent["branch_id"],
        "branch_name": branch_name(call, agent["branch_id"]), "sla_rules": sla_targets(call, agent["branch_id"]),
        "branches": branches,
    })


async def performance(call: Call) -> dict[str, Any]:
    """KPIs over the agent's jobs that the caller may see."""
    store, me = call.sandbox.store, call.principal
    agent = agent_param(call)
    jobs = store.select("jobs", lambda j: j.get("agent_id") == agent["ID"] and me.sees_job(j))
    commits = commits_by_job(call, {j["ID"] for j in jobs})
    done = [j for j in jobs if j["status_id"] in COMPLETED]
    days = []
    for job in done:
        finished = completed_time(job, commits.get(job["ID"], []))
        if finished is not None:
            days.append((finished - parse_instant(job["created_at"])).total_seconds() / 86400)
    recalls = sum(map(recall_counter(call, jobs), jobs))
    return ok({
        "agent_uuid": agent["uuid"], "agent_name": agent_name(call, agent), "total_jobs": len(jobs),
        "completed_jobs": len(done), "completion_rate": rate(len(done), len(jobs)),
        "avg_completion_days": round(sum(days) / len(days), 1) if days else None,
        "recall_count": recalls, "recall_rate": rate(recalls, len(jobs)), "open_jobs": len(jobs) - len(done),
    })


async def list_assignments(call: Call) -> dict[str, Any]:
    """Every (agent, branch) link the caller may see: the agent's own branch first, then shared ones."""
    store, scope = call.sandbox.store, branch_scope(call)
    if call.params.get("agent_uuid") is not None:
        agents = [load_agent(call, call.params["agent_uuid"])]
    else:
        agents = store.select("agents", lambda a: sees_agent(call, a))
    rows = []
    for agent in agents:
        name = agent_name(call, agent)
        for id_ in branch_ids_of(agent):
            if scope is None or id_ in scope:
                rows.append({"agent_id": agent["ID"], "agent_uuid": agent["uuid"], "agent_name": name,
                             "branch_id": id_, "branch_name": branch_name(call, id_),
                             "is_primary": id_ == agent["branch_id"], "is_active": bool(agent.get("is_active", True))})
    return listing(rows, len(rows))


async def assign(call: Call) -> dict[str, Any]:
    """Give an agent another branch. Assigning a branch the agent already has is a 400 (nothing
    changes); a disabled branch takes no new agents."""
    store = call.sandbox.store
    agent = load_agent(call, call.params["agent_uuid"])
    branch = load_branch(call, id_=call.params["branch_id"])
    current = branch_ids_of(agent)
    name = agent_name(call, agent)
    if branch["ID"] in current:
        raise ApiError(400, f"Agent {name} is already assigned to branch {branch['branch_name']}")
    if not branch.get("is_active", True):
        raise bad_param("branch_id", f"branch {branch['branch_name']} is disabled")
    store.update("agents", agent["ID"], {"branch_ids": [*current, branch["ID"]]})
    return ok()


async def remove(call: Call) -> dict[str, Any]:
    """Take a shared branch away; an agent's own (primary) branch cannot be removed."""
    store = call.sandbox.store
    agent = load_agent(call, call.params["agent_uuid"])
    branch = load_branch(call, id_=call.params["branch_id"])
    current, name = branch_ids_of(agent), agent_name(call, agent)
    if branch["ID"] == agent["branch_id"]:
        raise ApiError(400, f"Branch {branch['branch_name']} is the primary branch of agent {name} and cannot be "
                            "removed")
    if branch["ID"] not in current:
        raise ApiError(400, f"Agent {name} is not assigned to branch {branch['branch_name']}")
    store.update("agents", agent["ID"], {"branch_ids": [b for b in current if b != branch["ID"]]})
    return ok()


AGENT_UUID = Param("agent_uuid", "uuid", required=True)
LINK = (AGENT_UUID, Param("branch_id", "integer", required=True, min=1))
READ, BRANCHES = "api.agents.list.manage", "api.agents.branches.manage"

ENDPOINTS = [
    Endpoint("GET", "/api/agents/list", list_agents, READ, ("list",),
             params=(Param("search", max_length=200), Param("branch_id", "integer", min=1), *paging()),
             summary="Active agents, by name/e-mail search and branch"),
    Endpoint("GET", "/api/agents/sla", agent_sla, READ, params=(Param("agent_uuid", "uuid"),),
             summary="SLA targets by priority of the agent's branch (and of each shared branch)"),
    Endpoint("GET", "/api/agents/performance", performance, READ, params=(Param("agent_uuid", "uuid"),),
             summary="An agent's KPIs computed from their jobs"),
    Endpoint("GET", "/api/agents/branches", list_assignments, BRANCHES, params=(Param("agent_uuid", "uuid"),),
             summary="Branch assignments of one agent or of every agent"),
    Endpoint("POST", "/api/agents/branches", assign, BRANCHES, ("assign",), csrf=True, params=LINK,
             summary="Assign a branch to an agent (branch sharing)"),
    Endpoint("POST", "/api/agents/branches", remove, BRANCHES, ("remove",), csrf=True, params=LINK,
             summary="Remove a shared branch from an agent"),
    Endpoint("POST", "/api/agents/sharing", assign, BRANCHES, ("assign",), csrf=True, params=LINK,
             summary="Assign a branch to an agent (the seed's section title for the same operation)"),
]
