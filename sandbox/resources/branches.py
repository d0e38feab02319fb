"""Branches (administration): ``/api/admin/branches`` list, CSV template, create, CSV bulk import,
update (with SLA targets) and delete; ``/api/admin/enable-branch`` and ``/api/admin/disable-branch``
(seed 004, admin guide, branches configuration guide).

- Every ``/api/admin/*`` endpoint needs the Staff account type as well as the key (admin guide): any other
  account type gets the documented 403, even if a role gave it the key.
- Branch names are unique within an organisation (case-insensitive); postcodes must have a UK shape and
  are stored upper-case with one space; contact numbers must be UK numbers (0…, +44…, 0044…).
- SLA targets are per branch and per priority (configuration guide): ``branch_sla`` rows {ID, org_id,
  branch_id, priority_id, target_hours}. A priority without a row uses its default
  (``priorities.sla_hours``). They are set with ``sla`` (JSON text: ``{"4": 2, "Low": 120}`` or
  ``[{"priority_id": 4, "target_hours": 2}]``) or ``sla_<priority>_hours`` fields; null clears one.
- A disabled branch keeps its jobs but takes no new ones (job create checks ``is_active``). A branch that
  still has jobs, addresses or agents whose primary branch it is cannot be deleted (400 naming counts).
- The CSV template and bulk import are in `branch_import.py`.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from typing import Any

from ..auth import STAFF
from ..endpoints import Call, Endpoint, Param, paging
from ..envelope import ApiError, bad_param, listing, not_found, ok
from ..seed import load_reference
from ..store import Row

PATH = "/api/admin/branches"
KEY = "api.admin.branches.manage"  # seed 004 (the reference pages print .view)
MAX_HOURS = 8760  # an SLA target of at most a year
OPEN_STATUSES = frozenset({1, 2, 3, 4, 6})  # Open, Assigned, In Progress, Awaiting Approval, Recalled
_POSTCODE = re.compile(r"(GIR ?0AA|[A-Z]{1,2}[0-9][A-Z0-9]? ?[0-9][A-Z]{2})")
_PHONE_JUNK = re.compile(r"[\s\-().]")

FIELDS = (
    Param("branch_name", max_length=100),
    Param("address_line_1", max_length=255),
    Param("city", max_length=100),
    Param("postcode", max_length=10),
    Param("contact_number", max_length=30),
    Param("shared_email", "email"),
)
PRIORITIES = {p["ID"]: p["name"] for p in load_reference()["priorities"]}
SLA_FIELDS = {f"sla_{name.lower()}_hours": pid for pid, name in PRIORITIES.items()}
SLA_PARAMS = (
    Param("sla", "object", about='{"<priority id or name>": hours|null} or [{"priority_id", "target_hours"}]'),
    *(Param(name, "integer", min=1, max=MAX_HOURS, about=f"SLA target for {PRIORITIES[pid]} (null: default)")
      for name, pid in SLA_FIELDS.items()),
)
TARGET = (Param("branch_id", "integer", min=1), Param("branch_uuid", "uuid"), Param("uuid", "uuid"))


class FieldError(Exception):
    def __init__(self, name: str, why: str, *, duplicate: bool = False):
        super().__init__(f"{name}: {why}")
        self.name, self.why, self.duplicate = name, why, duplicate


# -- validation shared with tenants ----------------------------------------------------------------------

def uk_postcode(value: str) -> str:
    text = " ".join(value.split()).upper()
    if not _POSTCODE.fullmatch(text):
        raise ValueError("must be a UK postcode such as SC1 1AA")
    return text if " " in text else f"{text[:-3]} {text[-3:]}"


def uk_phone(value: str) -> str:
    """A UK phone number as given (trimmed): 10 or 11 digits from 0, or +44 / 0044 then 9 or 10 digits."""
    digits = _PHONE_JUNK.sub("", value)
    for prefix in ("+44", "0044"):
        if digits.startswith(prefix):
            rest = digits[len(prefix):]
            digits = rest[1:] if rest.startswith("0") else rest
            break
    else:
        digits = digits[1:] if digits.startswith("0") else "x"
    if not (digits.isdigit() and 9 <= len(digits) <= 10):
        raise ValueError("must be a UK phone number such as 01200 000001, 07700 900123 or +44 20 7946 0000")
    return value.strip()


# -- rows ----------------------------------------------------------------------------------------------

def _stats(call: Call) -> dict[str, Any]:
    """Agent counts, open job counts and SLA overrides of the caller's organisation, once per request."""
    cached = call.extra.get("branch_stats")
    if cached is not None:
        return cached
    store, org = call.sandbox.store, call.principal.org_id
    agents: Counter[int] = Counter()
    for agent in store.select("agents", lambda r: r["org_id"] == org and r.get("is_active", True)):
        for branch_id in set(agent.get("branch_ids") or [agent["branch_id"]]):
            agents[branch_id] += 1
    jobs = Counter(j["branch_id"] for j in store.select(
        "jobs", lambda r: r["org_id"] == org and r["status_id"] in OPEN_STATUSES))
    sla = {(r["branch_id"], r["priority_id"]): r["target_hours"]
           for r in store.select("branch_sla", lambda r: r["org_id"] == org)}
    defaults = sorted(((p["ID"], p["name"], p["sla_hours"]) for p in store.select("priorities")), reverse=True)
    call.extra["branch_stats"] = cached = {"agents": agents, "jobs": jobs, "sla": sla, "defaults": defaults}
    return cached


def branch_row(call: Call, branch: Row) -> Row:
    stats, id_ = _stats(call), branch["ID"]
    return {
        "ID": id_, "uuid": branch["uuid"], "branch_name": branch["branch_name"],
        "address_line_1": branch.get("address_line_1"), "city": branch.get("city"),
        "postcode": branch.get("postcode"), "contact_number": branch.get("contact_number"),
        "shared_email": branch.get("shared_email"), "is_active": bool(branch.get("is_active", True)),
        "created_at": branch.get("created_at"),
        "agent_count": stats["agents"][id_], "open_jobs": stats["jobs"][id_],
        "sla": [{"priority_id": pid, "priority_name": name,
                 "target_hours": stats["sla"].get((id_, pid), hours), "is_default": (id_, pid) not in stats["sla"]}
                for pid, name, hours in stats["defaults"]],
    }


def find_branch(call: Call) -> Row:
    """The branch named by branch_id, branch_uuid or uuid, in the caller's organisation; else 404."""
    store, p = call.sandbox.store, call.params
    given = [(name, p[name]) for name in ("branch_id", "branch_uuid", "uuid") if p.get(name) is not None]
    if not given:
        raise bad_param("branch_id", "required: give branch_id or branch_uuid")
    found: list[Row] = []
    for name, value in given:
        row = store.raw("branches", value) if name == "branch_id" else store.raw_by_uuid("branches", value)
        if row is None or row["org_id"] != call.principal.org_id:
            raise not_found("Branch")
        found.append(row)
    if any(row["ID"] != found[0]["ID"] for row in found):
        raise bad_param(given[1][0], f"names a different branch from {given[0][0]}")
    return found[0]


def clean_fields(store: Any, org_id: int, values: dict[str, Any], current: Row | None = None) -> Row:
    """Trimmed, normalised branch fields; FieldError on a rule the parameter types cannot express."""
    out: Row = {}
    for param in FIELDS:
        if param.name not in values:
            continue
        value = values[param.name]
        value = (value.strip() or None) if isinstance(value, str) else value
        check = {"postcode": uk_postcode, "contact_number": uk_phone}.get(param.name)
        if value is not None and check is not None:
            try:
                value = check(value)
            except ValueError as exc:
                raise FieldError(param.name, str(exc)) from None
        out[param.name] = value
    if current is None and not out.get("branch_name"):
        raise FieldError("branch_name", "required")
    if "branch_name" in out:
        name = out["branch_name"]
        if name is None:
            raise FieldError("branch_name", "required; it cannot be cleared")
        own = current["ID"] if current else None
        taken = store.select("branches", lambda r: r["org_id"] == org_id and r["ID"] != own
                             and r["branch_name"].strip().lower() == name.lower())
        if taken:
            raise FieldError("branch_name", f"a branch named {taken[0]['branch_name']!r} already exists",
                             duplicate=True)
    return out


def _sla_changes(call: Call) -> dict[int, int | None]:
    """{priority_id: hours or None (back to the default)} from `sla` and the sla_<priority>_hours fields."""
    p, changes = call.params, {}
    parsed = p.get("sla")  # an object or a list (JSON, or JSON text in a form: Param type "object")
    if parsed is not None:
        if isinstance(parsed, dict):
            items = list(parsed.items())
        elif isinstance(parsed, list) and all(isinstance(i, dict) for i in parsed):
            items = [(i.get("priority_id", i.get("priority_name")), i.get("target_hours")) for i in parsed]
        else:
            raise bad_param("sla", "must be an object of priority → hours or a list of "
                                   "{priority_id, target_hours}")
        for key, hours in items:
            changes[_priority(key)] = _hours(hours)
    for name, pid in SLA_FIELDS.items():
        if name in p:
            changes[pid] = p[name]
    return changes


def _priority(key: Any) -> int:
    by_name = {name.lower(): pid for pid, name in PRIORITIES.items()}
    text = str(key).strip().lower() if isinstance(key, (str, int)) and not isinstance(key, bool) else ""
    pid = int(text) if text.isdigit() else by_name.get(text)
    if pid not in PRIORITIES:
        known = ", ".join(f"{i} {n}" for i, n in sorted(PRIORITIES.items()))
        raise bad_param("sla", f"unknown priority {key!r} (priorities: {known})")
    return pid


def _hours(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value) \
            or not 1 <= value <= MAX_HOURS:
        raise bad_param("sla", f"target_hours must be a whole number of hours from 1 to {MAX_HOURS} (or null)")
    return int(value)


def _apply_sla(store: Any, branch: Row, changes: dict[int, int | None]) -> None:
    existing = {r["priority_id"]: r for r in store.select("branch_sla", lambda r: r["branch_id"] == branch["ID"])}
    for pid, hours in changes.items():
        row = existing.get(pid)
        if hours is None:
            if row is not None:
                store.delete("branch_sla", [row["ID"]])
        elif row is not None:
            store.update("branch_sla", row["ID"], {"target_hours": hours})
        else:
            store.insert("branch_sla", {"ID": None, "org_id": branch["org_id"], "branch_id": branch["ID"],
                                        "priority_id": pid, "target_hours": hours})


# -- handlers ------------------------------------------------------------------------------------------

async def list_branches(call: Call) -> dict[str, Any]:
    org, needle = call.principal.org_id, (call.params.get("search") or "").strip().lower()
    rows = call.sandbox.store.select(
        "branches", lambda r: r["org_id"] == org and needle in r["branch_name"].lower())
    offset, limit = call.params["offset"], call.params["limit"]
    return listing([branch_row(call, r) for r in rows[offset:offset + limit]], len(rows))


async def create(call: Call) -> dict[str, Any]:
    """POST without an action creates one branch (seed 004)."""
    store, org = call.sandbox.store, call.principal.org_id
    try:
        fields = clean_fields(store, org, call.params)
    except FieldError as exc:
        raise bad_param(exc.name, exc.why) from None
    sla = _sla_changes(call)
    row = {name.name: None for name in FIELDS}
    row.update(fields, ID=None, uuid=None, org_id=org, is_active=True, created_at=call.sandbox.clock.iso())
    branch = store.insert("branches", row)
    _apply_sla(store, branch, sla)
    return ok(branch_row(call, branch), branch_id=branch["ID"], branch_uuid=branch["uuid"])


async def update(call: Call) -> dict[str, Any]:
    store = call.sandbox.store
    branch = find_branch(call)
    try:
        fields = clean_fields(store, branch["org_id"], call.params, branch)
    except FieldError as exc:
        raise bad_param(exc.name, exc.why) from None
    sla = _sla_changes(call)
    if fields:
        branch = store.update("branches", branch["ID"], fields)
    _apply_sla(store, branch, sla)
    return ok(branch_row(call, branch))


async def delete(call: Call) -> dict[str, Any]:
    store = call.sandbox.store
    branch = find_branch(call)
    id_ = branch["ID"]
    blockers = [
        (len(store.select("jobs", lambda r: r["branch_id"] == id_)), "job(s)"),
        (len(store.select("addresses", lambda r: r["branch_id"] == id_)), "address(es)"),
        (len(store.select("agents", lambda r: r["branch_id"] == id_)), "agent(s) whose primary branch it is"),
    ]
    held = [f"{n} {what}" for n, what in blockers if n]
    if held:
        raise ApiError(400, f"Branch {branch['branch_name']!r} cannot be deleted: it still has {', '.join(held)}. "
                            "Disable it with POST /api/admin/disable-branch instead, or move them first.")
    for agent in store.select("agents", lambda r: id_ in (r.get("branch_ids") or ())):
        store.update("agents", agent["ID"], {"branch_ids": [b for b in agent["branch_ids"] if b != id_]})
    store.delete_where("branch_sla", "branch_id", (id_,))
    store.delete("branches", [id_])
    return ok()


def _switch(active: bool):
    async def handler(call: Call) -> dict[str, Any]:
        branch = find_branch(call)
        if bool(branch.get("is_active", True)) != active:
            call.sandbox.store.update("branches", branch["ID"], {"is_active": active})
        state = "enabled" if active else "disabled"
        return ok({"branch_id": branch["ID"], "branch_uuid": branch["uuid"], "is_active": active},
                  message=f"Branch {branch['branch_name']} {state}")

    return handler


_ROWS = [
    Endpoint("GET", PATH, list_branches, KEY, ("list",), summary="List the organisation's branches (Staff only)",
             params=(Param("search", about="branch name contains (name assumed)"), *paging())),
    Endpoint("POST", PATH, create, KEY, csrf=True, params=(*FIELDS, *SLA_PARAMS),
             summary="Create a branch (no action)"),
    Endpoint("PUT", PATH, update, KEY, csrf=True, params=(*TARGET, *FIELDS, *SLA_PARAMS),
             summary="Update a branch's details and per-priority SLA targets"),
    Endpoint("DELETE", PATH, delete, KEY, csrf=True, params=TARGET,
             summary="Delete a branch without jobs, addresses or primary agents"),
    Endpoint("POST", "/api/admin/enable-branch", _switch(True), "api.admin.enable_branch.manage", csrf=True,
             params=TARGET, summary="Enable a disabled branch"),
    Endpoint("POST", "/api/admin/disable-branch", _switch(False), "api.admin.disable_branch.manage", csrf=True,
             params=TARGET, summary="Disable a branch: it keeps its jobs but takes no new ones"),
]

# "All /api/admin/* endpoints require the Staff account type" (admin guide), on top of the key.
ENDPOINTS = [dataclasses.replace(row, account_types=(STAFF,)) for row in _ROWS]
