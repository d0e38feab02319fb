"""Financial: ``/api/financial/invoices`` (list, update_payment), ``/api/services/pricing`` (list, get) and
``/api/reports/financial`` (report).

- Invoices are not records of their own (financial guide): they are the money fields of jobs —
  ``job_total_budget``, ``contractor_budget``, ``vat_percentage``, ``total_amount``, ``invoice_no``,
  ``payment_status_id`` — plus four payment tracking amounts kept on the job (``payment_received_client``,
  ``payment_sent_contractor``, ``agent_commission_paid``, ``inhouse_commission_paid``; 0 until recorded).
- The list shows the jobs the caller may see (job scoping as everywhere) that have financial activity: an
  invoice number or a tracked payment. Filters: ``payment_status_id``, ``job_status_id``.
- ``update_payment`` sets exactly one tracking field per call, through `history.apply` (so it shows in the
  job's history); archived jobs are read-only (403).
- The service catalogue is `fixtures/financial.toml`; items carry the reference shape (ID, service_name,
  service_category, unit_price, vat_rate) and the guide's (uuid, name, category, price, currency…).
- The financial report is the reference shape (``data`` = job rows, ``count``/``total``) with the guide's
  summary (total_revenue, total_jobs, average_job_value, outstanding_payments…) and the product docs'
  per-branch grouping as top-level ``summary`` and ``by_branch``. Dates filter on the job's creation date.
  Revenue is ``job_total_budget``; a job counts as paid when its payment status is Payment Received or
  Payment Complete; outstanding is what the client has not yet paid of an unpaid job.
"""

from __future__ import annotations

import tomllib
from typing import Any

from .. import history
from .._paths import FIXTURES
from ..endpoints import Call, Endpoint, Param, paging
from ..envelope import bad_param, listing, not_found, ok
from ..store import Row
from ._generic import page
from .jobs import _name, _person, load_job

INVOICES = "/api/financial/invoices"
PRICING = "/api/services/pricing"
KEY = "api.financial.invoices.manage"
PAYMENT_FIELDS = ("payment_received_client", "payment_sent_contractor", "agent_commission_paid",
                  "inhouse_commission_paid")
MAX_AMOUNT = 100_000_000
FILTERS = (("payment_status_id", "payment_status_id"), ("job_status_id", "status_id"))  # invoices: param → field

with (FIXTURES / "financial.toml").open("rb") as _fh:
    SERVICES: list[dict[str, Any]] = tomllib.load(_fh)["services"]


def paid(job: Row, field: str) -> float:
    return float(job.get(field) or 0.0)


def has_activity(job: Row) -> bool:
    return bool(job.get("invoice_no")) or any(paid(job, f) for f in PAYMENT_FIELDS)


def invoice_row(call: Call, job: Row) -> Row:
    store = call.sandbox.store
    return {
        "id": job["ID"], "uuid": job["uuid"], "job_ref": job["job_ref"], "invoice_no": job.get("invoice_no"),
        "job_title": job["job_title"], "contractor_id": job.get("contractor_id"),
        "contractor_name": _person(store, "contractors", job.get("contractor_id")),
        "job_total_budget": job.get("job_total_budget"), "contractor_budget": job.get("contractor_budget"),
        "vat_percentage": job.get("vat_percentage"), "total_amount": job.get("total_amount"),
        **{f: paid(job, f) for f in PAYMENT_FIELDS},
        "payment_status_id": job.get("payment_status_id"),
        "payment_status_name": _name(store, "payment_statuses", job.get("payment_status_id")),
        "status_id": job["status_id"], "status_name": _name(store, "statuses", job["status_id"]),
        "branch_id": job.get("branch_id"), "completed_at": job.get("completed_at"),
        "updated_at": job.get("updated_at"),
    }


async def list_invoices(call: Call) -> dict[str, Any]:
    p, me = call.params, call.principal
    where = (("org_id", me.org_id), *((field, p[name]) for name, field in FILTERS if p.get(name) is not None))
    rows = call.sandbox.store.select("jobs", lambda r: me.sees_job(r) and has_activity(r), where=where)
    invoices = [invoice_row(call, r) for r in page(call, rows)]
    return ok(invoices=invoices, count=len(invoices), total=len(rows))


async def update_payment(call: Call) -> dict[str, Any]:
    p = call.params
    job = load_job(call, p["job_id"], write=True)
    field, value = p["field"], round(p["value"], 2)
    history.apply(call.sandbox.store, call.sandbox.clock.iso(), job, {field: value},
                  user_id=call.principal.user_id, kind="payment")
    return ok(data={"job_id": job["ID"], "field": field, "value": value})


# -- financial report -----------------------------------------------------------------------------------

PAID_STATUSES = frozenset({4, 5})  # Payment Received, Payment Complete


def _money(value: float) -> float:
    return round(value, 2)


def report_row(call: Call, job: Row) -> Row:
    store = call.sandbox.store
    branch = store.raw("branches", job.get("branch_id"))
    return {
        "job_id": job["ID"], "uuid": job["uuid"], "job_ref": job["job_ref"], "job_title": job["job_title"],
        "branch_id": job.get("branch_id"), "branch_name": branch["branch_name"] if branch else None,
        "contractor_name": _person(store, "contractors", job.get("contractor_id")), "invoice_no": job.get("invoice_no"),
        "job_total_budget": job.get("job_total_budget"), "contractor_budget": job.get("contractor_budget"),
        "vat_percentage": job.get("vat_percentage"), "total_amount": job.get("total_amount"),
        **{f: paid(job, f) for f in PAYMENT_FIELDS},
        "payment_status_id": job.get("payment_status_id"),
        "payment_status_name": _name(store, "payment_statuses", job.get("payment_status_id")),
        "payment_received": job.get("payment_status_id") in PAID_STATUSES,
        "completed_date": (job.get("completed_at") or "")[:10] or None, "created_at": job["created_at"],
    }


def _outstanding(job: Row) -> float:
    if job.get("payment_status_id") in PAID_STATUSES:
        return 0.0
    return max(float(job.get("job_total_budget") or 0) - paid(job, "payment_received_client"), 0.0)


def _totals(jobs: list[Row]) -> dict[str, Any]:
    revenue = sum(float(j.get("job_total_budget") or 0) for j in jobs)
    cost = sum(float(j.get("contractor_budget") or 0) for j in jobs)
    return {
        "total_jobs": len(jobs), "total_revenue": _money(revenue), "total_contractor_cost": _money(cost),
        "gross_margin": _money(revenue - cost), "average_job_value": _money(revenue / len(jobs)) if jobs else 0.0,
        "outstanding_payments": _money(sum(_outstanding(j) for j in jobs)),
        "paid_jobs": sum(j.get("payment_status_id") in PAID_STATUSES for j in jobs),
        **{f: _money(sum(paid(j, f) for j in jobs)) for f in PAYMENT_FIELDS},
    }


async def financial_report(call: Call) -> dict[str, Any]:
    p, me, store = call.params, call.principal, call.sandbox.store
    since, until, branch_id = p.get("date_from"), p.get("date_to"), p.get("branch_id")
    if since and until and since > until:
        raise bad_param("date_to", "must not be before date_from")
    if branch_id is not None:
        branch = store.raw("branches", branch_id)
        if branch is None or branch["org_id"] != me.org_id:
            raise not_found("Branch")
    search = (p.get("search") or "").lower()

    def keep(job: Row) -> bool:
        day = job["created_at"][:10]
        if (since and day < since) or (until and day > until) or not me.sees_job(job):
            return False
        if not search:
            return True
        text = " ".join(str(job.get(k) or "") for k in ("job_ref", "job_title", "invoice_no"))
        return search in f"{text} {_person(store, 'contractors', job.get('contractor_id')) or ''}".lower()

    where = [("org_id", me.org_id)] + ([("branch_id", branch_id)] if branch_id is not None else [])
    jobs = store.select("jobs", keep, where=where)
    branches: dict[Any, list[Row]] = {}
    for job in jobs:
        branches.setdefault(job.get("branch_id"), []).append(job)
    by_branch = []
    for bid in sorted(branches, key=lambda b: (b is None, b or 0)):
        branch = store.raw("branches", bid)
        by_branch.append({"branch_id": bid, "branch_name": branch["branch_name"] if branch else None,
                          **_totals(branches[bid])})
    rows = [report_row(call, j) for j in page(call, jobs)]
    return listing(rows, len(jobs), summary=_totals(jobs), by_branch=by_branch,
                   filters={"date_from": since, "date_to": until, "branch_id": branch_id, "search": search or None})


# -- services pricing ------------------------------------------------------------------------------------

def service_row(item: dict[str, Any], *, full: bool = False) -> Row:
    row = {
        "ID": item["ID"], "uuid": item["uuid"], "name": item["name"], "service_name": item["name"],
        "category": item["category"], "service_category": item["category"], "description": item["description"],
        "billing_period": item["billing_period"], "price": item["price"], "unit_price": item["price"],
        "vat_rate": item["vat_rate"], "currency": "GBP", "is_active": item["is_active"],
    }
    if full:
        row["features"] = list(item["features"])
    return row


async def list_services(call: Call) -> dict[str, Any]:
    category = (call.params.get("category") or "").lower()
    items = [s for s in SERVICES if s["is_active"] and (not category or s["category"].lower() == category)]
    return listing([service_row(s) for s in page(call, items)], len(items))


async def get_service(call: Call) -> dict[str, Any]:
    wanted = call.params["service_id"]
    item = next((s for s in SERVICES if s["uuid"] == wanted or str(s["ID"]) == wanted), None)
    if item is None:
        raise not_found("Service")
    return ok(service_row(item, full=True))


ENDPOINTS = [
    Endpoint("GET", INVOICES, list_invoices, KEY, actions=("get_invoices",), params=(
        Param("payment_status_id", "integer", min=1, about="filter: payment status id (1 = Awaiting Payment)"),
        Param("job_status_id", "integer", min=1, about="filter: the job's status id (9 = Invoiced)"),
        *paging(),
    ), summary="Invoices: jobs with an invoice number or tracked payments, with their money fields"),
    Endpoint("POST", INVOICES, update_payment, KEY, actions=("update_payment",), csrf=True, params=(
        Param("job_id", "integer", required=True, min=1),
        Param("field", required=True, enum=PAYMENT_FIELDS),
        Param("value", "number", required=True, min=0, max=MAX_AMOUNT, about="amount in GBP"),
    ), summary="Set one payment tracking field of a job's invoice"),
    Endpoint("GET", PRICING, list_services, "api.services.pricing.manage", actions=("list",), params=(
        Param("category", max_length=100, about="filter: core, add_on, support or a trade category"), *paging(),
    ), summary="The service catalogue: its active services"),
    Endpoint("GET", PRICING, get_service, "api.services.pricing.manage", actions=("get",), params=(
        Param("service_id", required=True, max_length=100, about="the service's uuid (srv_…) or ID"),
    ), summary="One service of the catalogue, with its features"),
    Endpoint("GET", "/api/reports/financial", financial_report, "api.reports.financial.manage", actions=("report",),
             default=True, params=(
        Param("date_from", "date", about="jobs created on or after (YYYY-MM-DD)"),
        Param("date_to", "date", about="jobs created on or before (YYYY-MM-DD)"),
        Param("branch_id", "integer", min=1),
        Param("search", max_length=100, about="job ref, title, invoice number or contractor name"),
        *paging(),
    ), summary="Financial report: job money rows, a summary and per-branch totals"),
]
