"""Tenants: ``/api/tenants/list`` and ``/api/tenants/manage`` (list, get, create, update, delete),
``/api/tenants/assign-address`` and the GDPR subject-access export ``/api/tenants/gdpr-report``.

- Both documented paths serve list/get, each with its own key (reference: ``/list``; tenants guide:
  ``/manage``); create is ``POST /api/tenants/list`` (reference) or ``POST /api/tenants/manage`` without an
  action (guide). Create answers ``tenant_id`` and ``tenant_uuid`` at the top level (reference example).
- Name, e-mail and both phone numbers are encrypted at rest (tenants guide) and returned decrypted; name
  search decrypts through the cipher's cache. Phone numbers must be UK numbers; names are required.
- Scoping: Staff see the organisation's tenants; agents see (and create and edit) tenants whose address is
  in one of their branches, so an agent must give such an address; other account types see none. Another
  organisation's tenant or address answers 404 like a missing one.
- A tenant linked to jobs cannot be deleted (400 naming the jobs): the jobs keep their tenant list; set
  ``is_active`` false instead.
- The GDPR report (Staff account type only) gathers the records linked to the tenant by id: the tenant and
  address, the jobs listing the tenant, those jobs' case notes, consent records given with the tenant's
  e-mail, and earlier reports. Every call adds a ``gdpr_requests`` row; the report expires after 24 h
  (``GDPR_REPORT_FILE_RETENTION_HOURS``, cron guide).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

from ..auth import AGENT, STAFF
from ..clock import iso
from ..endpoints import Call, Endpoint, Param, paging
from ..envelope import ApiError, bad_param, listing, not_found, ok
from ..store import Row
from .branches import uk_phone

REPORT_HOURS = 24
CONTACT = ("tenant_name", "tenant_email", "tenant_number_primary", "tenant_number_work")

FIELDS = (
    Param("tenant_name", max_length=255, about="full name (encrypted at rest)"),
    Param("tenant_email", "email"),
    Param("tenant_number_primary", max_length=30),
    Param("tenant_number_work", max_length=30),
    Param("tenant_address_id", "integer", min=1, about="property address to link (null: none)"),
)
UPDATE_FIELDS = (*FIELDS, Param("is_active", "boolean"))
FILTERS = (
    Param("search", about="tenant name contains"), Param("address_id", "integer"),
    Param("active", "boolean"), Param("unassigned", "boolean"), *paging(),
)


def _visible(call: Call):
    me, store = call.principal, call.sandbox.store
    if me.account_type_id == STAFF:
        return lambda r: r["org_id"] == me.org_id
    if me.account_type_id == AGENT:
        branches = set(me.branch_ids)

        def keep(r: Row) -> bool:
            address = store.raw("addresses", r.get("address_id"))
            return r["org_id"] == me.org_id and address is not None and address["branch_id"] in branches

        return keep
    return lambda r: False


def find_tenant(call: Call, uuid: str) -> Row:
    row = call.sandbox.store.raw_by_uuid("tenants", uuid)
    if row is None or not _visible(call)(row):
        raise not_found("Tenant")
    return row


def _job_counts(call: Call) -> Counter[int]:
    counts = call.extra.get("tenant_jobs")
    if counts is None:
        sees = call.principal.sees_job
        counts = Counter(t for j in call.sandbox.store.select("jobs", sees) for t in j.get("tenants_ids") or ())
        call.extra["tenant_jobs"] = counts
    return counts


def tenant_row(call: Call, raw: Row) -> Row:
    store = call.sandbox.store
    t = store.reveal("tenants", raw)
    address = store.raw("addresses", t.get("address_id"))
    return {
        "ID": t["ID"], "uuid": t["uuid"], **{name: t.get(name) for name in CONTACT},
        "address_id": t.get("address_id"), "full_address": address["full_address"] if address else None,
        "created_at": t.get("created_at"), "is_active": bool(t.get("is_active", True)),
        "job_count": _job_counts(call)[t["ID"]],
    }


async def list_tenants(call: Call) -> dict[str, Any]:
    p, store = call.params, call.sandbox.store
    checks = [_visible(call)]
    if p.get("address_id") is not None:
        checks.append(lambda r: r.get("address_id") == p["address_id"])
    if p.get("active") is not None:
        checks.append(lambda r: bool(r.get("is_active", True)) == p["active"])
    if p.get("unassigned") is not None:
        checks.append(lambda r: (r.get("address_id") is None) == p["unassigned"])
    needle = (p.get("search") or "").strip().lower()
    if needle:
        decrypt = store.cipher.decrypt
        checks.append(lambda r: needle in decrypt(r["tenant_name"]).lower())
    rows = store.select("tenants", lambda r: all(check(r) for check in checks))
    offset, limit = p["offset"], p["limit"]
    return listing([tenant_row(call, r) for r in rows[offset:offset + limit]], len(rows))


async def get_tenant(call: Call) -> dict[str, Any]:
    return ok(tenant_row(call, find_tenant(call, call.params["uuid"])))


def _address(call: Call, id_: int | None = None, uuid: str | None = None) -> Row | None:
    """The address if it is in the caller's organisation (and, for an agent, one of their branches)."""
    store, me = call.sandbox.store, call.principal
    row = store.raw("addresses", id_) if id_ is not None else store.raw_by_uuid("addresses", uuid or "")
    if row is None or row["org_id"] != me.org_id:
        return None
    if me.account_type_id == AGENT and row["branch_id"] not in me.branch_ids:
        return None
    return row


def _fields(call: Call, current: Row | None = None) -> Row:
    """The tenant fields given, checked and trimmed (400 naming the field)."""
    p, out = call.params, {}
    for name in (*CONTACT, "is_active"):
        if name in p:
            value = p[name]
            out[name] = (value.strip() or None) if isinstance(value, str) else value
    if current is None and not out.get("tenant_name"):
        raise bad_param("tenant_name", "required")
    if "tenant_name" in out and out["tenant_name"] is None:
        raise bad_param("tenant_name", "required; it cannot be cleared")
    if "is_active" in out and out["is_active"] is None:
        raise bad_param("is_active", "must be true or false")
    for name in ("tenant_number_primary", "tenant_number_work"):
        if out.get(name) is not None:
            try:
                out[name] = uk_phone(out[name])
            except ValueError as exc:
                raise bad_param(name, str(exc)) from None
    agent = call.principal.account_type_id == AGENT
    if "tenant_address_id" in p or (current is None and agent):
        id_ = p.get("tenant_address_id")
        if id_ is None and agent:
            raise bad_param("tenant_address_id", "required for agents: an address in one of your branches")
        if id_ is not None and _address(call, id_) is None:
            raise bad_param("tenant_address_id", f"no address with ID {id_}"
                            + (" in your branches" if agent else ""))
        out["address_id"] = id_
    return out


async def create(call: Call) -> dict[str, Any]:
    fields = _fields(call)
    row = {"ID": None, "uuid": None, "org_id": call.principal.org_id, **{name: None for name in CONTACT},
           "address_id": None, "is_active": True, **fields, "created_at": call.sandbox.clock.iso()}
    tenant = call.sandbox.store.insert("tenants", row)
    return ok(tenant_id=tenant["ID"], tenant_uuid=tenant["uuid"])


async def update(call: Call) -> dict[str, Any]:
    tenant = find_tenant(call, call.params["uuid"])
    changes = _fields(call, tenant)
    if changes:
        call.sandbox.store.update("tenants", tenant["ID"], changes)
    return ok()


async def delete(call: Call) -> dict[str, Any]:
    store = call.sandbox.store
    tenant = find_tenant(call, call.params["uuid"])
    id_ = tenant["ID"]
    jobs = store.select("jobs", lambda r: r["org_id"] == tenant["org_id"] and id_ in (r.get("tenants_ids") or ()))
    if jobs:
        refs = ", ".join(j["job_ref"] for j in jobs[:5]) + (", ..." if len(jobs) > 5 else "")
        raise ApiError(400, f"Tenant is linked to {len(jobs)} job(s) ({refs}) and cannot be deleted; remove them "
                            "from those jobs first, or set is_active to false")
    store.delete("tenants", [id_])
    return ok()


async def assign_address(call: Call) -> dict[str, Any]:
    p = call.params
    tenant = find_tenant(call, p["tenant_uuid"])
    if p.get("address_id") is None and p.get("address_uuid") is None:
        raise bad_param("address_id", "required: give address_id (or address_uuid)")
    address = _address(call, p.get("address_id"), p.get("address_uuid"))
    if address is None:
        raise not_found("Address")
    call.sandbox.store.update("tenants", tenant["ID"], {"address_id": address["ID"]})
    return ok()


async def gdpr_report(call: Call) -> dict[str, Any]:
    me, store = call.principal, call.sandbox.store
    tenant = store.reveal("tenants", find_tenant(call, call.params["tenant_uuid"]))
    id_, now = tenant["ID"], call.sandbox.clock.now()
    address = store.raw("addresses", tenant.get("address_id"))
    jobs = store.select("jobs", lambda r: r["org_id"] == me.org_id and id_ in (r.get("tenants_ids") or ()))
    refs = {j["ID"]: j["job_ref"] for j in jobs}
    notes = [store.reveal("case_notes", n) for n in store.select("case_notes", lambda r: r["job_id"] in refs)]
    email = (tenant.get("tenant_email") or "").lower()
    consents = [c for c in (store.reveal("gdpr_consents", r) for r in store.select("gdpr_consents"))
                if email and c.get("org_id") in (None, me.org_id) and str(c.get("email") or "").lower() == email]
    earlier = store.select("gdpr_requests", lambda r: r["tenant_id"] == id_)
    expires = iso(now + dt.timedelta(hours=REPORT_HOURS))
    request = store.insert("gdpr_requests", {"ID": None, "uuid": None, "org_id": me.org_id, "tenant_id": id_,
                                             "requested_by": me.user_id, "created_at": iso(now), "expires_at": expires})

    def name(table: str, key: Any) -> str | None:
        row = store.raw(table, key)
        return row["name"] if row else None

    return ok({
        "report_id": request["uuid"], "generated_at": request["created_at"], "expires_at": expires,
        "requested_by": me.user_id, "format": "json",
        "tenant": {"ID": id_, "uuid": tenant["uuid"], **{k: tenant.get(k) for k in CONTACT},
                   "is_active": bool(tenant.get("is_active", True)), "created_at": tenant.get("created_at"),
                   "address": None if address is None else {k: address.get(k) for k in (
                       "ID", "uuid", "address_line_1", "address_line_2", "city", "postcode", "full_address")}},
        "jobs": [{"ID": j["ID"], "uuid": j["uuid"], "job_ref": j["job_ref"], "job_title": j["job_title"],
                  "job_description": j["job_description"], "status_name": name("statuses", j["status_id"]),
                  "priority_name": name("priorities", j["priority_id"]), "address_id": j["address_id"],
                  "created_at": j["created_at"], "updated_at": j.get("updated_at"),
                  "completed_at": j.get("completed_at")} for j in jobs],
        "case_notes": [{"ID": n["ID"], "uuid": n.get("uuid"), "job_id": n["job_id"], "job_ref": refs[n["job_id"]],
                        "message": n["message"], "created_at": n.get("created_at")} for n in notes],
        "consent_records": [{k: c.get(k) for k in ("consent_type", "accepted", "consent_version", "created_at")}
                            for c in consents],
        "previous_reports": [{"report_id": r.get("uuid"), "requested_by": r["requested_by"],
                              "generated_at": r["created_at"]} for r in earlier],
    }, message=f"GDPR report generated; it expires at {expires}")


LIST_KEY, MANAGE_KEY = "api.tenants.list.manage", "api.tenants.manage.manage"
UUID = Param("uuid", "uuid", required=True)
ENDPOINTS = [
    *(row for path, key in (("/api/tenants/list", LIST_KEY), ("/api/tenants/manage", MANAGE_KEY)) for row in (
        Endpoint("GET", path, list_tenants, key, ("list",), params=FILTERS, summary="List tenants (filters, paging)"),
        Endpoint("GET", path, get_tenant, key, ("get",), params=(UUID,), summary="Get one tenant by uuid"),
    )),
    Endpoint("POST", "/api/tenants/list", create, LIST_KEY, csrf=True,
             params=FIELDS,
             summary="Create a tenant; tenant_id and tenant_uuid at the top level"),
    Endpoint("POST", "/api/tenants/manage", create, MANAGE_KEY, csrf=True, params=FIELDS,
             summary="Create a tenant (no action, as the tenants guide does)"),
    Endpoint("POST", "/api/tenants/manage", update, MANAGE_KEY, ("update",), csrf=True,
             params=(UUID, *UPDATE_FIELDS), summary="Change a tenant's fields"),
    Endpoint("POST", "/api/tenants/manage", delete, MANAGE_KEY, ("delete",), csrf=True, params=(UUID,),
             summary="Delete a tenant that no job lists"),
    Endpoint("POST", "/api/tenants/assign-address", assign_address, "api.tenants.assign-address.manage", csrf=True,
             params=(Param("tenant_uuid", "uuid", required=True), Param("address_id", "integer", min=1),
                     Param("address_uuid", "uuid")), summary="Link a tenant to a property address"),
    Endpoint("GET", "/api/tenants/gdpr-report", gdpr_report, "api.tenants.gdpr-report.manage",
             params=(Param("tenant_uuid", "uuid", required=True),), account_types=(STAFF,),
             summary="GDPR subject-access export of one tenant (Staff only; expires after 24 h)"),
]
