"""Amendment requests: ``/api/jobs/amend-request`` and ``/api/jobs/amendable-fields`` (seed 002).

Contractors, agents and staff propose a new value for one field of a job (`AMENDABLE` below, the one
table of amendable fields; contractors get the smaller set marked ``contractor``). The value travels
as a string and is checked against the field's type when submitted. Users with management authority —
staff, and agents on their branches' jobs; not contractors (403) — approve or reject a pending request:
approving converts the value, validates it as a job update would (references, dates, total_amount
recomputed from contractor_budget and VAT), writes it to the job as a commit and bumps updated_at;
rejecting leaves the job unchanged. Seed 002's shapes (GET filters, POST submit, PATCH action) and the
reference page's ``POST`` with ``action`` create|approve|reject (by ``amend_request_id`` or ``uuid``)
are both served; a POST without ``action`` is a submit.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from .. import history
from ..auth import AGENT, CONTRACTOR, STAFF
from ..endpoints import Call, Endpoint, Param, paging, validate
from ..envelope import ApiError, bad_param, listing, not_found, ok
from ..store import Row
from ._generic import page
from .jobs import ARCHIVED, FIELDS, _check_dates, _check_references, _money, _person, load_job


@dataclass(frozen=True)
class Amendable:
    key: str
    label: str
    type: str  # the form control: text, textarea, number, date, select
    description: str
    required: bool = False  # cannot be emptied (the amendable-fields example marks job_title so)
    contractor: bool = False  # contractors may propose it too
    options: str | None = None  # the reference table a select field chooses from


AMENDABLE = (
    Amendable("job_title", "Job Title", "text", "The title/name of the job", required=True),
    Amendable("job_description", "Job Description", "textarea", "Detailed description of the job", contractor=True),
    Amendable("priority_id", "Priority", "select", "Priority level; decides the SLA target", required=True,
              options="priorities"),
    Amendable("contractor_budget", "Contractor Budget", "number",
              "Amount payable to the contractor before VAT; the job total is recalculated", contractor=True),
    Amendable("job_total_budget", "Job Total Budget", "number", "Total client-facing budget (inclusive of VAT)"),
    Amendable("vat_percentage", "VAT %", "number", "VAT rate applied to the contractor budget"),
    Amendable("date_works_start_date", "Works Start Date", "date", "Scheduled start date (YYYY-MM-DD)",
              contractor=True),
    Amendable("date_works_end_date", "Works End Date", "date", "Scheduled completion date (YYYY-MM-DD)",
              contractor=True),
    Amendable("time_range_id", "Time Slot", "select", "The contractor's attendance time slot", contractor=True,
              options="time_ranges"),
    Amendable("works_order_ref", "Works Order Ref", "text", "Works order reference number"),
    Amendable("quote_no", "Quote No", "text", "Quote number"),
    Amendable("access_details", "Access Details", "textarea", "Site access instructions (encrypted at rest)"),
)
BY_KEY = {f.key: f for f in AMENDABLE}
PARAMS = {p.name: p for p in FIELDS}
USER_TYPES = {STAFF: "staff", AGENT: "agent", CONTRACTOR: "contractor"}
MANAGERS = (STAFF, AGENT)  # management authority: who may approve or reject
STATUSES = ("pending", "approved", "rejected")


def user_type(call: Call) -> str | None:
    return USER_TYPES.get(call.principal.account_type_id)


def fields_for(call: Call) -> tuple[Amendable, ...]:
    kind = user_type(call)
    if kind is None:
        return ()
    return tuple(f for f in AMENDABLE if f.contractor or kind != "contractor")


def as_text(value: Any, kind: str) -> str:
    """A job value as the string an amendment request carries ("180.00" for money, as documented)."""
    if value is None:
        return ""
    if kind == "number":
        return f"{float(value):.2f}"
    return str(value)


def convert(call: Call, field: Amendable, text: str, name: str) -> Any:
    """`text` as the field's value, or a 400 naming `name` (requested_value on submit, the field on approval)."""
    param = dataclasses.replace(PARAMS[field.key], name=name, required=True)
    value = validate((param,), {name: text})[name]
    if field.options is not None and call.sandbox.store.raw(field.options, value) is None:
        raise bad_param(name, f"no {field.label.lower()} with ID {value}")
    return value


def request_row(call: Call, r: Row, job: Row) -> Row:
    store = call.sandbox.store
    r = store.reveal("amend_requests", r)  # the values are encrypted at rest
    return {
        "ID": r["ID"], "uuid": r["uuid"], "job_uuid": job["uuid"], "job_ref": job["job_ref"],
        "field_name": r["field_name"], "current_value": r["current_value"], "requested_value": r["requested_value"],
        "reason": r["reason"], "status": r["status"], "requested_by": _person(store, "users", r["requested_by"]),
        "requested_by_id": r["requested_by"], "requested_at": r["requested_at"],
        "actioned_by": _person(store, "users", r["actioned_by"]) if r.get("actioned_by") else None,
        "actioned_at": r.get("actioned_at"), "notes": r.get("notes"),
    }


async def list_requests(call: Call) -> dict[str, Any]:
    store, p, me = call.sandbox.store, call.params, call.principal
    if p.get("uuid") is not None:
        r, job = find(call, p["uuid"])
        return ok(request_row(call, r, job))
    job_id = load_job(call, p["job_uuid"])["ID"] if p.get("job_uuid") else None
    status = p.get("status")
    jobs: dict[int, Row | None] = {}

    def keep(r: Row) -> bool:
        if r["org_id"] != me.org_id or (job_id is not None and r["job_id"] != job_id):
            return False
        if status is not None and r["status"] != status:
            return False
        if r["job_id"] not in jobs:
            job = store.raw("jobs", r["job_id"])
            jobs[r["job_id"]] = job if job is not None and me.sees_job(job) else None
        return jobs[r["job_id"]] is not None

    rows = store.select("amend_requests", keep)
    return listing([request_row(call, r, jobs[r["job_id"]]) for r in page(call, rows)], len(rows))


def find(call: Call, key: str | int) -> tuple[Row, Row]:
    """The request (by uuid or ID) and its job, or 404 when either is missing or not the caller's to see."""
    store = call.sandbox.store
    r = store.raw("amend_requests", key) if isinstance(key, int) else store.raw_by_uuid("amend_requests", key)
    if r is None or r["org_id"] != call.principal.org_id:
        raise not_found("Amendment request")
    try:
        return r, load_job(call, r["job_id"])
    except ApiError:
        raise not_found("Amendment request") from None


async def submit(call: Call) -> dict[str, Any]:
    p, store = call.params, call.sandbox.store
    for name in ("job_uuid", "field_name", "requested_value", "reason"):
        if p.get(name) is None:
            raise bad_param(name, "required")
    job = store.reveal("jobs", load_job(call, p["job_uuid"], write=True))
    allowed = {f.key: f for f in fields_for(call)}
    field = allowed.get(p["field_name"])
    if field is None:
        raise bad_param("field_name", f"{p['field_name']!r} is not amendable by {user_type(call) or 'you'}; "
                                      f"one of {', '.join(allowed) or 'none'}")
    convert(call, field, p["requested_value"], "requested_value")
    now = call.sandbox.clock.iso()
    row = store.insert("amend_requests", {
        "ID": None, "uuid": None, "org_id": job["org_id"], "job_id": job["ID"], "field_name": field.key,
        "current_value": as_text(job.get(field.key), field.type), "requested_value": p["requested_value"],
        "reason": p["reason"], "status": "pending", "requested_by": call.principal.user_id, "requested_at": now,
        "actioned_by": None, "actioned_at": None, "notes": None,
    })
    return ok(message="Amendment request submitted", amend_request_id=row["ID"], uuid=row["uuid"])


def action(call: Call, key: str | int, decision: str, notes: str | None) -> dict[str, Any]:
    store, me = call.sandbox.store, call.principal
    r, job = find(call, key)
    if me.account_type_id not in MANAGERS:
        raise ApiError(403, "Only staff and agents can approve or reject amendment requests")
    if job["status_id"] == ARCHIVED:
        load_job(call, job["ID"], write=True)  # the archived job's 403
    if r["status"] != "pending":
        raise ApiError(400, f"Amendment request is already {r['status']}; only pending requests can be actioned")
    now, job = call.sandbox.clock.iso(), store.reveal("jobs", job)
    if decision == "approved":
        field = BY_KEY[r["field_name"]]
        requested = store.reveal("amend_requests", r)["requested_value"]
        changes = {field.key: convert(call, field, requested, field.key)}
        _check_references(call, changes)
        _check_dates(changes, job)
        _money(changes, job)
        history.apply(store, now, job, changes, user_id=me.user_id, kind="amendment",
                      note=f"amendment request {r['uuid']} approved")
    store.update("amend_requests", r["ID"], {"status": decision, "actioned_by": me.user_id, "actioned_at": now,
                                             "notes": notes})
    return ok(message=f"Amendment request {decision}")


async def patch(call: Call) -> dict[str, Any]:
    p = call.params
    return action(call, p["uuid"], p["status"], p.get("notes"))


def decide(decision: str):
    """The reference variant's approve / reject, by `amend_request_id` or `uuid`."""

    async def handler(call: Call) -> dict[str, Any]:
        p = call.params
        key = p.get("amend_request_id") if p.get("amend_request_id") is not None else p.get("uuid")
        if key is None:
            raise bad_param("amend_request_id", "required to approve or reject (or give the request's uuid)")
        if p.get("job_uuid") is not None and find(call, key)[1]["uuid"] != p["job_uuid"]:
            raise not_found("Amendment request")
        return action(call, key, decision, p.get("notes"))

    return handler


async def amendable_fields(call: Call) -> dict[str, Any]:
    store = call.sandbox.store
    job = store.reveal("jobs", load_job(call, call.params["job_uuid"]))
    fields = []
    for f in fields_for(call) if job["status_id"] != ARCHIVED else ():
        entry = {"key": f.key, "label": f.label, "type": f.type, "current_value": job.get(f.key),
                 "required": f.required, "description": f.description}
        if f.options:
            entry["options"] = [{"value": o["ID"], "label": o["name"]} for o in store.select(f.options)]
        fields.append(entry)
    return ok({"job_uuid": job["uuid"], "job_ref": job["job_ref"], "user_type": user_type(call), "fields": fields})


PATH = "/api/jobs/amend-request"
PERMISSION = "api.jobs.amend_request.manage"
SUBMIT = (
    Param("job_uuid", "uuid", about="the job (required to submit)"),
    Param("field_name", max_length=64, about="see GET /api/jobs/amendable-fields"),
    Param("requested_value", max_length=20_000, about="the proposed value, as a string"),
    Param("reason", max_length=2000, about="justification (required to submit)"),
)
NOTES = Param("notes", max_length=2000, about="the manager's notes on the decision")

ENDPOINTS = [
    Endpoint("GET", PATH, list_requests, PERMISSION, params=(
        Param("job_uuid", "uuid"), Param("status", enum=STATUSES), Param("uuid", "uuid"), *paging(),
    ), summary="Amendment requests of the jobs you can see (filters job_uuid, status; uuid for one)"),
    # The guide submits without an `action`; the reference page adds action create|approve|reject.
    Endpoint("POST", PATH, submit, PERMISSION, ("create",), csrf=True, default=True, params=SUBMIT,
             summary="Submit an amendment request"),
    *(Endpoint("POST", PATH, decide(decision), PERMISSION, (verb,), csrf=True,
               params=(Param("amend_request_id", "integer", min=1), Param("uuid", "uuid"),
                       Param("job_uuid", "uuid"), NOTES),
               summary=f"{verb.capitalize()} a pending request by amend_request_id or uuid")
      for verb, decision in (("approve", "approved"), ("reject", "rejected"))),
    Endpoint("PATCH", PATH, patch, PERMISSION, csrf=True, params=(
        Param("uuid", "uuid", required=True), Param("status", enum=("approved", "rejected"), required=True), NOTES,
    ), summary="Approve or reject a pending amendment request (staff, and agents in branch)"),
    Endpoint("GET", "/api/jobs/amendable-fields", amendable_fields, "api.jobs.amendable_fields.manage",
             params=(Param("job_uuid", "uuid", required=True),),
             summary="The fields the caller may propose changes to on a job, with current values"),
]
