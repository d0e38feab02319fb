"""Reference lookups for job forms (jobs guide, "Reference Endpoints"): statuses, types, priorities,
payment statuses, time ranges — shared by every organisation — and the organisation's addresses,
searchable and paged."""

from __future__ import annotations

from ..endpoints import Endpoint, Param, paging
from ..store import Row
from ._generic import Resource, everyone, list_handler


def as_stored(call, row: Row) -> Row:
    return dict(row)


def address(call, row: Row) -> Row:
    return {k: row[k] for k in ("ID", "uuid", "branch_id", "address_line_1", "address_line_2", "city",
                                "postcode", "full_address")}


LOOKUPS = {
    "statuses": "statuses",
    "types": "job_types",
    "priorities": "priorities",
    "payment-statuses": "payment_statuses",
    "time-ranges": "time_ranges",
}

ENDPOINTS = [
    Endpoint("GET", f"/api/jobs/{path}", list_handler(Resource(table, table, as_stored, everyone)), None,
             ("list",), params=paging(), summary=f"List {path.replace('-', ' ')}")
    for path, table in LOOKUPS.items()
]
ENDPOINTS.append(
    Endpoint("GET", "/api/jobs/addresses",
             list_handler(Resource("addresses", "Address", address, search=("full_address",),
                                   filters=("branch_id",))),
             None, ("list",), params=(Param("search"), Param("branch_id", "integer"), *paging()),
             summary="Search the organisation's property addresses")
)
