"""Jobs: ``/api/jobs/manage`` list, get, create, update, delete (seeds 002 and 003).

The list and get rows carry every field of the documented examples, joined from the reference tables,
agents, contractors, addresses and the caller's own pins. Agents see their branches' jobs and
contractors the jobs assigned to them; anything else answers 404 like a missing job.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .. import history
from ..auth import AGENT
from ..endpoints import Call, Endpoint, Param, paging
from ..envelope import ApiError, bad_param, ok
from ..store import Row
from ._generic import Resource, find_visible, get_handler, list_handler

DEFAULT_VAT = 20.0  # "the platform VAT rate configured by your administrator (default 20%)"
ARCHIVED = 8  # status id; archived jobs are read-only (jobs guide: update answers 403)
FINISHED = frozenset({5, 7, 9})  # Complete, Closed, Invoiced: the job has a completion time

# Everything attached to a job, removed with it (delete "removes the job and all associated data").
ATTACHED = (
    ("pins", "job_id"), ("case_notes", "job_id"), ("photos", "job_id"), ("documents", "job_id"),
    ("amend_requests", "job_id"), ("job_commits", "job_id"), ("notifications", "job_id"),
    ("remedials", "job_id"), ("remedials", "remedial_job_id"), ("case_note_attachments", "job_id"),
    ("job_recalls", "job_id"), ("job_approvals", "job_id"), ("emails", "job_id"), ("whatsapp_messages", "job_id"),
)

# Job fields a client may set; create marks the first six required (create reference).
FIELDS = (
    Param("job_title", max_length=255),
    Param("job_description", max_length=20_000),
    Param("priority_id", "integer"),
    Param("status_id", "integer"),
    Param("job_type_id", "integer"),
    Param("address_id", "integer"),
    Param("agent_id", "integer"),
    Param("contractor_id", "integer"),
    Param("tenants_ids", "int_list"),
    Param("job_total_budget", "number", min=0),
    Param("contractor_budget", "number", min=0),
    Param("vat_percentage", "number", min=0, max=100),
    Param("total_amount", "number", min=0),
    Param("date_works_start_date", "date"),
    Param("date_works_end_date", "date"),
    Param("time_range_id", "integer"),
    Param("access_details", max_length=2000),
    Param("works_order_ref", max_length=100),
    Param("invoice_no", max_length=100),
    Param("quote_no", max_length=100),
    Param("private_contact_name", max_length=255),
    Param("private_contact_email", "email"),
    Param("payment_status_id", "integer"),
)
REQUIRED = FIELDS[:6]
CREATE_PARAMS = tuple(dataclasses.replace(p, required=True) for p in REQUIRED) + FIELDS[6:]
UUID = Param("uuid", "uuid", required=True)

# id field -> (table, belongs to an organisation)
REFERENCES = {
    "status_id": ("statuses", False),
    "priority_id": ("priorities", False),
    "job_type_id": ("job_types", False),
    "time_range_id": ("time_ranges", False),
    "payment_status_id": ("payment_statuses", False),
    "address_id": ("addresses", True),
    "agent_id": ("agents", True),
    "contractor_id": ("contractors", True),
}


def visible(call: Call):
    return call.principal.sees_job


def _name(store, table: str, id_: Any, field: str = "name") -> str | None:
    row = store.raw(table, id_)
    return None if row is None else row[field]


def _person(store, table: str, id_: Any) -> str | None:
    row = store.plain(table, id_)
    return None if row is None else f"{row['first_name']} {row['last_name']}"


def list_row(call: Call, job: Row) -> Row:
    store = call.sandbox.store
    address = store.raw("addresses", job["address_id"])
    return {
        "ID": job["ID"],
        "uuid": job["uuid"],
        "job_ref": job["job_ref"],
        "job_title": job["job_title"],
        "job_description": job["job_description"],
        "status_id": job["status_id"],
        "status_name": _name(store, "statuses", job["status_id"]),
        "priority_id": job["priority_id"],
        "priority_name": _name(store, "priorities", job["priority_id"]),
        "job_type_id": job["job_type_id"],
        "job_type_name": _name(store, "job_types", job["job_type_id"]),
        "agent_id": job["agent_id"],
        "agent_name": _person(store, "agents", job["agent_id"]),
        "contractor_id": job["contractor_id"],
        "contractor_name": _person(store, "contractors", job["contractor_id"]),
        "address_id": job["address_id"],
        "full_address": address["full_address"] if address else None,
        "job_total_budget": job["job_total_budget"],
        "contractor_budget": job["contractor_budget"],
        "vat_percentage": job["vat_percentage"],
        "total_amount": job["total_amount"],
        "date_works_start_date": job["date_works_start_date"],
        "date_works_end_date": job["date_works_end_date"],
        "photos_count": job["photos_count"],
        "documents_count": job["documents_count"],
        "is_pinned": job["ID"] in _pins(call),
        "created_at": job["created_at"],
        "updated_at": job["updated_at"],
    }


def full_row(call: Call, job: Row) -> Row:
    store = call.sandbox.store
    plain = store.reveal("jobs", job)
    row = list_row(call, job)
    for name in ("branch_id", "tenants_ids", "time_range_id", "payment_status_id", "invoice_no", "quote_no",
                 "works_order_ref", "access_details", "private_contact_name", "private_contact_email",
                 "is_recall", "recall_reason", "created_by", "completed_at"):
        row[name] = plain.get(name)
    row["payment_status_name"] = _name(store, "payment_statuses", job.get("payment_status_id"))
    return row


def _pins(call: Call) -> frozenset[int]:
    """The caller's pinned job ids, computed once per request."""
    pins = call.extra.get("pins")
    if pins is None:
        uid = call.principal.user_id
        pins = frozenset(r["job_id"] for r in call.sandbox.store.select("pins", lambda r: r["user_id"] == uid))
        call.extra["pins"] = pins
    return pins


JOBS = Resource(
    "jobs", "Job", list_row, visible,
    search=("job_title", "job_ref", "job_description"),
    filters=("status_id", "priority_id", "agent_id", "contractor_id", "created_by"),
    flags=(("has_photos", "photos_count"), ("has_documents", "documents_count")),
)


def load_job(call: Call, key: str | int, *, write: bool = False) -> Row:
    """The stored job with this uuid (str) or ID (int) if the caller may see it, else 404 — the one
    lookup every job sub-resource uses. With `write`, an archived job is 403: archived jobs are
    read-only everywhere (jobs guide)."""
    if isinstance(key, int):
        job = call.sandbox.store.raw("jobs", key)
        if job is None or not call.principal.sees_job(job):
            raise ApiError(404, "Job not found")
    else:
        job = find_visible(call, JOBS, key)
    if write and job["status_id"] == ARCHIVED:
        raise ApiError(403, f"Job {job['job_ref']} is archived and read-only")
    return job


def writable(call: Call, uuid: str) -> Row:
    return load_job(call, uuid, write=True)


def _check_references(call: Call, values: dict[str, Any]) -> Row | None:
    """400 naming the field when an id points nowhere (or into another organisation). Returns the
    address row when `address_id` is among the values."""
    store, org = call.sandbox.store, call.principal.org_id
    address = None
    for field, (table, scoped) in REFERENCES.items():
        id_ = values.get(field)
        if id_ is None:
            continue
        row = store.raw(table, id_)
        if row is None or (scoped and row["org_id"] != org):
            raise bad_param(field, f"no {table.rstrip('s').replace('_', ' ')} with ID {id_}")
        if field == "address_id":
            address = row
    for tenant_id in values.get("tenants_ids") or ():
        row = store.raw("tenants", tenant_id)
        if row is None or row["org_id"] != org:
            raise bad_param("tenants_ids", f"no tenant with ID {tenant_id}")
    if address is not None and call.principal.account_type_id == AGENT and \
            address["branch_id"] not in call.principal.branch_ids:
        raise bad_param("address_id", f"address {address['ID']} is not in one of your branches")
    if address is not None:
        branch = store.raw("branches", address["branch_id"])
        if branch is not None and not branch.get("is_active", True):
            # "A disabled branch keeps its existing jobs but accepts no new ones" (admin guide).
            raise bad_param("address_id", f"branch {branch['branch_name']} is disabled and takes no new jobs")
    return address


def _money(values: dict[str, Any], current: Row | None = None) -> None:
    """total_amount = contractor_budget * (1 + VAT/100) unless given (financial guide: 180 → 216)."""
    current = current or {}
    if "total_amount" in values or not ({"contractor_budget", "vat_percentage"} & values.keys()):
        return
    budget = values.get("contractor_budget", current.get("contractor_budget"))
    vat = values.get("vat_percentage", current.get("vat_percentage"))
    if budget is not None:
        values["total_amount"] = round(budget * (1 + (vat if vat is not None else DEFAULT_VAT) / 100), 2)


def _check_dates(values: dict[str, Any], current: Row | None = None) -> None:
    current = current or {}
    start = values.get("date_works_start_date", current.get("date_works_start_date"))
    end = values.get("date_works_end_date", current.get("date_works_end_date"))
    if start and end and end < start:
        raise bad_param("date_works_end_date", "must not be before date_works_start_date")


def _next_ref(store, id_: int) -> str:
    ref = f"JOB-{id_ - 1000:03d}"
    return ref if id_ > 1000 and ref not in store.index("jobs", "job_ref") else f"JOB-{id_}"


async def create(call: Call) -> dict[str, Any]:
    store, p = call.sandbox.store, dict(call.params)
    address = _check_references(call, p)
    _check_dates(p)
    if p.get("vat_percentage") is None:
        p["vat_percentage"] = DEFAULT_VAT
    _money(p)
    now = call.sandbox.clock.iso()
    id_ = store.next_id("jobs")
    job = {name.name: p.get(name.name) for name in FIELDS}
    job.update(
        ID=id_, uuid=None, org_id=call.principal.org_id, branch_id=address["branch_id"],
        job_ref=_next_ref(store, id_), tenants_ids=p.get("tenants_ids") or [],
        payment_status_id=p.get("payment_status_id") or 1, is_recall=0, recall_reason=None,
        photos_count=0, documents_count=0, created_by=call.principal.user_id,
        created_at=now, updated_at=now, completed_at=None,
    )
    job = store.insert("jobs", job)
    return ok(job_id=job["ID"], job_uuid=job["uuid"], job_ref=job["job_ref"], message="Job created successfully")


async def update(call: Call) -> dict[str, Any]:
    store = call.sandbox.store
    job = store.reveal("jobs", writable(call, call.params["uuid"]))
    changes = {k: v for k, v in call.params.items() if k != "uuid"}
    for field in REQUIRED:
        if field.name in changes and changes[field.name] is None:
            raise bad_param(field.name, "required; it cannot be cleared")
    address = _check_references(call, changes)
    _check_dates(changes, job)
    _money(changes, job)
    if "tenants_ids" in changes and changes["tenants_ids"] is None:
        changes["tenants_ids"] = []
    if address is not None:
        changes["branch_id"] = address["branch_id"]
    status = changes.get("status_id")
    if status in FINISHED and not job.get("completed_at"):
        changes["completed_at"] = call.sandbox.clock.iso()
    elif status is not None and status not in FINISHED and status != ARCHIVED:
        changes["completed_at"] = None
    history.apply(store, call.sandbox.clock.iso(), job, changes, user_id=call.principal.user_id)
    return ok()


async def delete(call: Call) -> dict[str, Any]:
    store = call.sandbox.store
    job = writable(call, call.params["uuid"])
    for table, field in ATTACHED:
        store.delete_where(table, field, (job["ID"],))
    store.delete("jobs", [job["ID"]])
    return ok()


FILTERS = (
    Param("search", about="free text over title, reference and description (name inferred)"),
    Param("status_id", "integer"), Param("priority_id", "integer"), Param("agent_id", "integer"),
    Param("contractor_id", "integer"), Param("created_by", "integer"),
    Param("has_photos", "boolean"), Param("has_documents", "boolean"), *paging(),
)

PATH = "/api/jobs/manage"
LIST, MANAGE = "api.jobs.manage.list", "api.jobs.manage.manage"

ENDPOINTS = [
    Endpoint("GET", PATH, list_handler(JOBS), LIST, ("list",), params=FILTERS, summary="List jobs"),
    Endpoint("GET", PATH, get_handler(Resource("jobs", "Job", full_row, visible)), LIST, ("get",),
             params=(UUID,), summary="Get one job by uuid"),
    Endpoint("POST", PATH, create, MANAGE, ("create",), csrf=True, params=CREATE_PARAMS, status=201,
             summary="Create a job"),
    Endpoint("POST", PATH, update, MANAGE, ("update",), csrf=True, params=(UUID, *FIELDS),
             summary="Update the given fields of a job"),
    Endpoint("POST", PATH, delete, MANAGE, ("delete",), csrf=True, params=(UUID,),
             summary="Delete a job and everything attached to it"),
]
