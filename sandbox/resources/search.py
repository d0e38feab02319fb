"""Global search: ``GET /api/search`` and the settings-only ``GET /api/system/search`` (search guide).

``q`` (at least 2 characters) is matched case-insensitively against names, references, addresses, e-mails
and descriptions. ``data`` always holds one array per type — the documented jobs, users, branches and
settings, plus the sandbox's contractors, agents, tenants and addresses — empty where nothing matches or
the caller may not look. Scoping follows the lists: jobs by `Principal.sees_job` (contractors their own
jobs, agents their branches'); agents also see only their branches' branches, agents, addresses and the
tenants living at them; users and settings pages are for the Staff account type. Job hits carry a
``highlight`` with the matched text in ``<mark>`` (the rest HTML-escaped). Encrypted names and e-mails are
decrypted to compare, never stored in the clear.
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable, Iterable
from typing import Any

from ..auth import AGENT, STAFF
from ..endpoints import Call, Endpoint, Param
from ..envelope import bad_param, listing, ok
from ..store import Row
from .system_settings import PAGES
from .user_admin import org_users

KEY = "api.search.global.manage"
TYPES = ("jobs", "users", "branches", "settings", "contractors", "agents", "tenants", "addresses")
ACCOUNT_TYPE_NAMES = {1: "staff", 2: "agent", 3: "landlord", 4: "tenant", 5: "contractor"}
SNIPPET = 40  # characters of context either side of a highlighted match


def _needle(call: Call) -> str:
    q = " ".join(call.params["q"].split())
    if len(q) < 2:
        raise bad_param("q", "at least 2 characters")
    return q


def _hit(needle: str, *values: Any) -> bool:
    return any(isinstance(v, str) and needle in v.lower() for v in values)


def highlight(text: str, needle: str) -> str:
    at = text.lower().find(needle)
    if at < 0:
        return html.escape(text[: 2 * SNIPPET])
    start, end = max(0, at - SNIPPET), min(len(text), at + len(needle) + SNIPPET)
    return ("..." if start else "") + html.escape(text[start:at]) + "<mark>" + \
        html.escape(text[at: at + len(needle)]) + "</mark>" + html.escape(text[at + len(needle): end]) + \
        ("..." if end < len(text) else "")


def _first(rows: Iterable[Row], keep: Callable[[Row], bool], limit: int) -> list[Row]:
    out = []
    for row in rows:
        if keep(row):
            out.append(row)
            if len(out) == limit:
                break
    return out


def _jobs(call: Call, needle: str, limit: int) -> list[Row]:
    store, me = call.sandbox.store, call.principal
    org = (("org_id", me.org_id),)
    addresses = {a["ID"]: a["full_address"] for a in store.select("addresses", where=org)}
    statuses = {s["ID"]: s["name"] for s in store.select("statuses")}
    fields = ("job_title", "job_ref", "job_description", "works_order_ref", "invoice_no", "quote_no")

    def keep(j: Row) -> bool:
        return me.sees_job(j) and _hit(needle, *(j.get(f) for f in fields), addresses.get(j["address_id"]))

    out = []
    for j in _first(store.select("jobs", where=org), keep, limit):
        matched = next((j[f] for f in fields if _hit(needle, j.get(f))), None) or addresses.get(j["address_id"]) or ""
        out.append({"ID": j["ID"], "uuid": j["uuid"], "job_ref": j["job_ref"], "job_title": j["job_title"],
                    "status_name": statuses.get(j["status_id"]), "full_address": addresses.get(j["address_id"]),
                    "highlight": highlight(matched, needle)})
    return out


def _people(call: Call, table: str, keep: Callable[[Row], bool], needle: str, fields: tuple[str, ...],
            limit: int) -> list[Row]:
    store, org = call.sandbox.store, call.principal.org_id
    plain = (store.reveal(table, r) for r in store.select(table, keep, where=(("org_id", org),)))
    return _first(plain, lambda r: _hit(needle, *(r.get(f) for f in fields)), limit)


def _name(row: Row) -> str:
    return f"{row['first_name']} {row['last_name']}"


def _users(call: Call, needle: str, limit: int) -> list[Row]:
    if call.principal.account_type_id != STAFF:
        return []
    store = call.sandbox.store
    plain = (store.reveal("users", r) for r in org_users(call))  # deleted users are not found
    hits = _first(plain, lambda u: _hit(needle, _name(u), u["email"]), limit)
    return [{"id": u["ID"], "uuid": u["uuid"], "name": _name(u), "email": u["email"],
             "account_type": ACCOUNT_TYPE_NAMES.get(u["account_type_id"])} for u in hits]


def _branch_scope(call: Call) -> Callable[[Row], bool]:
    """Agents: rows of their branches (a row's `branch_ids` or `branch_id`); Staff: the organisation."""
    me = call.principal
    if me.account_type_id != AGENT:
        return lambda r: me.account_type_id == STAFF
    mine = set(me.branch_ids)
    return lambda r: bool(mine & set(r.get("branch_ids") or [r.get("branch_id")]))


def _branches(call: Call, needle: str, limit: int) -> list[Row]:
    scope = _branch_scope(call)
    keep = lambda b: scope({"branch_id": b["ID"]})  # noqa: E731
    hits = _people(call, "branches", keep, needle, ("branch_name", "city", "postcode", "address_line_1",
                                                      "shared_email"), limit)
    return [{"ID": b["ID"], "uuid": b["uuid"], "branch_name": b["branch_name"], "city": b.get("city"),
             "postcode": b.get("postcode"), "is_active": b.get("is_active", True)} for b in hits]


def _settings(call: Call, needle: str, limit: int) -> list[Row]:
    if call.principal.account_type_id != STAFF:
        return []
    return [dict(p) for p in _first(PAGES, lambda p: _hit(needle, p["title"], p["section"], p["description"]),
                                     limit)]


def _contractors(call: Call, needle: str, limit: int) -> list[Row]:
    if call.principal.account_type_id not in (STAFF, AGENT):
        return []
    hits = _people(call, "contractors", lambda r: True, needle,
                   ("first_name", "last_name", "company_name", "email", "postcode"), limit)
    return [{"ID": c["ID"], "uuid": c["uuid"], "name": _name(c), "company_name": c.get("company_name"),
             "email": c["email"], "postcode": c.get("postcode")} for c in hits]


def _agents(call: Call, needle: str, limit: int) -> list[Row]:
    hits = _people(call, "agents", _branch_scope(call), needle, ("first_name", "last_name", "email"), limit)
    return [{"ID": a["ID"], "uuid": a["uuid"], "name": _name(a), "email": a["email"],
             "branch_id": a.get("branch_id")} for a in hits]


def _addresses(call: Call, needle: str, limit: int) -> list[Row]:
    hits = _people(call, "addresses", _branch_scope(call), needle, ("full_address",), limit)
    return [{"ID": a["ID"], "uuid": a["uuid"], "full_address": a["full_address"], "postcode": a.get("postcode"),
             "branch_id": a.get("branch_id")} for a in hits]


def _tenants(call: Call, needle: str, limit: int) -> list[Row]:
    store, scope = call.sandbox.store, _branch_scope(call)

    def keep(t: Row) -> bool:
        address = store.raw("addresses", t.get("address_id")) if t.get("address_id") else None
        return scope(address or {}) if call.principal.account_type_id == AGENT else scope(t)

    hits = _people(call, "tenants", keep, needle, ("tenant_name", "tenant_email"), limit)
    return [{"ID": t["ID"], "uuid": t["uuid"], "tenant_name": t["tenant_name"], "tenant_email": t["tenant_email"],
             "address_id": t.get("address_id")} for t in hits]


SEARCHERS = {"jobs": _jobs, "users": _users, "branches": _branches, "settings": _settings,
             "contractors": _contractors, "agents": _agents, "tenants": _tenants, "addresses": _addresses}


async def search(call: Call) -> dict[str, Any]:
    started = time.perf_counter()
    query = _needle(call)
    wanted = TYPES
    if call.params.get("types"):
        wanted = tuple(dict.fromkeys(t.strip().lower() for t in call.params["types"].split(",") if t.strip()))
        unknown = [t for t in wanted if t not in TYPES]
        if unknown or not wanted:
            raise bad_param("types", "a comma-separated list of " + ", ".join(TYPES))
    needle, limit = query.lower(), call.params["limit"]
    data = {t: SEARCHERS[t](call, needle, limit) if t in wanted else [] for t in TYPES}
    return ok(data, query=query, elapsed_ms=round((time.perf_counter() - started) * 1000))


async def settings_search(call: Call) -> dict[str, Any]:
    query = _needle(call)
    rows = _settings(call, query.lower(), call.params["limit"])
    return listing(rows, len(rows), query=query)


Q = Param("q", required=True, max_length=200, about="search term, at least 2 characters")
ENDPOINTS = [
    Endpoint("GET", "/api/search", search, KEY,
             params=(Q, Param("types", max_length=200, about="comma-separated: " + ",".join(TYPES)),
                     Param("limit", "integer", default=10, min=1, max=50, about="max results per type")),
             summary="Search jobs, users, branches, settings, contractors, agents, tenants and addresses"),
    Endpoint("GET", "/api/system/search", settings_search, KEY,
             params=(Q, Param("limit", "integer", default=10, min=1, max=50)),
             summary="Search settings pages and configuration items (Staff)"),
]
