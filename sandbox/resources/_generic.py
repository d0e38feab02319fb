"""Generic handlers: list (filters, free-text search, paging, scoping) and get-by-uuid for any table.

A resource group describes its table once with `Resource`, then its endpoint rows point at
`list_handler(resource)` and `get_handler(resource)`. Custom handlers are for behaviour the docs define.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..endpoints import Call, Handler
from ..envelope import listing, not_found, ok
from ..store import Row

Predicate = Callable[[Row], bool]


def same_org(call: Call) -> Predicate:
    org = call.principal.org_id if call.principal else None
    return lambda row: row.get("org_id") == org


def everyone(call: Call) -> Predicate:
    return lambda row: True


@dataclass(frozen=True)
class Resource:
    table: str
    noun: str  # for messages: "Job not found"
    serialize: Callable[[Call, Row], Row]  # raw stored row -> response object
    visible: Callable[[Call], Predicate] = same_org
    search: tuple[str, ...] = ()  # plaintext fields the `search` parameter looks in
    filters: tuple[str, ...] = ()  # parameters that must equal the row field of the same name
    flags: tuple[tuple[str, str], ...] = ()  # (boolean parameter, numeric field): true → field > 0


def _equal(resource: Resource, call: Call) -> tuple[tuple[str, Any], ...]:
    p = call.params
    return tuple((name, p[name]) for name in resource.filters if p.get(name) is not None)


def matcher(resource: Resource, call: Call) -> Predicate:
    """One predicate for the caller's scope plus every filter given in this request.

    It runs once per stored row, so it is one plain function: equality filters first (cheap and usually
    the most selective), then the flags, the free-text search, and the caller's scope last."""
    p = call.params
    visible = resource.visible(call)
    equal = _equal(resource, call)
    flags = tuple((field, bool(p[name])) for name, field in resource.flags if p.get(name) is not None)
    needle = (p.get("search") or "").strip().lower() if resource.search else ""
    fields = resource.search
    if not (equal or flags or needle):
        return visible

    def keep(r: Row) -> bool:
        for field, value in equal:
            if r.get(field) != value:
                return False
        for field, want in flags:
            if bool(r.get(field)) != want:
                return False
        if needle and not any(needle in str(r.get(f) or "").lower() for f in fields):
            return False
        return visible(r)

    return keep


def page(call: Call, rows: list[Any]) -> list[Any]:
    offset, limit = call.params.get("offset", 0), call.params.get("limit", 50)
    return rows[offset : offset + limit]


def list_handler(resource: Resource) -> Handler:
    async def handler(call: Call) -> dict[str, Any]:
        # The equality filters pick candidate rows from the store's field indexes; the matcher checks the rest.
        rows = call.sandbox.store.select(resource.table, matcher(resource, call), where=_equal(resource, call))
        return listing([resource.serialize(call, r) for r in page(call, rows)], len(rows))

    return handler


def find_visible(call: Call, resource: Resource, uuid: str) -> Row:
    """The stored row with this uuid if the caller may see it; 404 otherwise — another organisation's
    record answers exactly like a missing one (errors guide)."""
    row = call.sandbox.store.raw_by_uuid(resource.table, uuid)
    if row is None or not resource.visible(call)(row):
        raise not_found(resource.noun)
    return row


def get_handler(resource: Resource, param: str = "uuid") -> Handler:
    async def handler(call: Call) -> dict[str, Any]:
        return ok(resource.serialize(call, find_visible(call, resource, call.params[param])))

    return handler
