"""Contractors: ``GET /api/contractors/list?action=list``, ``GET /api/contractors/list-with-coverage`` and
``GET /api/contractors/trades`` (seed 004 and the list-active-contractors reference).

The list returns the organisation's active contractors (``include_inactive=true`` adds the others),
filtered by name (``search``: first name, last name, full name or company), ``trade_id`` and
``postcode``: a contractor matches a postcode when that postcode lies within its coverage radius of its
own postcode. Each row carries the documented fields plus company, trade IDs, postcode, radius and the
contractor's certificates with their status (the docs have no certificate list endpoint).

Postcode geography works offline: the area letters (``EX``, ``SW``, ``M``) give an approximate centroid
from ``fixtures/postcode_areas.toml``, and the district and sector digits a fixed offset of a few miles,
so postcodes of one district lie close together. Distances are great-circle (haversine) miles. The
coverage endpoint adds each contractor's centre, radius and an isochrone-style GeoJSON polygon: 24 to 32
points "wobbled" deterministically per contractor, always enclosing the radius circle (so every postcode
the filter matches lies inside it) and never beyond 1.3 times the radius.
"""

from __future__ import annotations

import functools
import math
import random
import re
import tomllib
from typing import Any

from .._paths import FIXTURES
from ..auth import CONTRACTOR
from ..endpoints import Call, Endpoint, Param, paging
from ..envelope import bad_param, listing, ok
from ..store import Row
from ._generic import page
from .certifications import for_contractors

EARTH_MILES = 3958.8
MILES_PER_DEGREE = 69.05
DRIVE_MPH = 30  # the average speed the coverage's drive-time figure assumes
_POSTCODE = re.compile(r"([A-Z]{1,2})(\d{1,2}|\d[A-Z])(?: ?(\d)([A-Z]{2}))?", re.ASCII)
_GOLDEN = math.radians(137.50776)  # districts spiral out from the area centroid at the golden angle


# -- postcode geography --------------------------------------------------------------------------------

@functools.cache
def areas() -> dict[str, tuple[float, float]]:
    """Postcode area letters → (lat, lng) of its approximate centroid."""
    with (FIXTURES / "postcode_areas.toml").open("rb") as fh:
        table = tomllib.load(fh)["areas"]
    return {code: (float(a["lat"]), float(a["lng"])) for code, a in table.items()}


def _move(lat: float, lng: float, miles: float, angle: float) -> tuple[float, float]:
    """A small step east/north (`angle` from east, counter-clockwise) on a flat local map."""
    lat2 = lat + miles * math.sin(angle) / MILES_PER_DEGREE
    return lat2, lng + miles * math.cos(angle) / (MILES_PER_DEGREE * math.cos(math.radians(lat)))


@functools.lru_cache(maxsize=4096)
def locate(postcode: str) -> tuple[float, float] | None:
    """(lat, lng) of a UK postcode (full, like ``EX1 1AA``, or an outward code, like ``EX1``); None when
    it is malformed or its area is not a UK postcode area."""
    text = re.sub(r"\s+", " ", postcode.strip().upper())
    found = _POSTCODE.fullmatch(text)
    if found is None or found[1] not in areas():
        return None
    area, district, sector, unit = found.groups()
    lat, lng = areas()[area]
    number = int(re.match(r"\d+", district)[0])
    lat, lng = _move(lat, lng, min(8.0, 0.8 * math.sqrt(number)), number * _GOLDEN)
    if not district[-1].isdigit():  # EC1A, SW1W, W1K: sub-districts sit half a mile apart
        lat, lng = _move(lat, lng, 0.5, (ord(district[-1]) - 65) * math.tau / 26)
    if sector is not None:
        lat, lng = _move(lat, lng, 0.3 + 0.12 * int(sector), int(sector) * math.tau / 10)
        letters = (ord(unit[0]) - 65) * 26 + ord(unit[1]) - 65
        lat, lng = _move(lat, lng, 0.15, letters * _GOLDEN)
    return round(lat, 6), round(lng, 6)


def miles_between(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Haversine distance in miles."""
    lat1, lng1, lat2, lng2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lng2 - lng1) / 2) ** 2
    return 2 * EARTH_MILES * math.asin(min(1.0, math.sqrt(h)))


def destination(centre: tuple[float, float], miles: float, bearing: float) -> tuple[float, float]:
    """The point `miles` from `centre` along `bearing` (radians clockwise from north), on the sphere."""
    lat1, lng1, d = math.radians(centre[0]), math.radians(centre[1]), miles / EARTH_MILES
    lat2 = math.asin(math.sin(lat1) * math.cos(d) + math.cos(lat1) * math.sin(d) * math.cos(bearing))
    lng2 = lng1 + math.atan2(math.sin(bearing) * math.sin(d) * math.cos(lat1),
                             math.cos(d) - math.sin(lat1) * math.sin(lat2))
    return math.degrees(lat2), math.degrees(lng2)


def isochrone(centre: tuple[float, float], radius: float, key: str) -> dict[str, Any]:
    """A GeoJSON Polygon that looks like a drive-time isochrone: the radius circle scaled by 1.05 to 1.30
    along smooth, per-contractor waves. With at least 24 points and that gentle a wobble, every edge
    stays outside the circle, so the polygon contains the whole radius (and the centre)."""
    rng = random.Random(f"isochrone:{key}")
    points = rng.randint(24, 32)
    waves = [(k, amp, rng.uniform(0, math.tau)) for k, amp in ((2, 0.055), (3, 0.04), (5, 0.03))]
    ring = []
    for i in range(points):
        bearing = -math.tau * i / points  # counter-clockwise, as GeoJSON wants an outer ring
        scale = 1.175 + sum(amp * math.sin(k * bearing + phase) for k, amp, phase in waves)
        lat, lng = destination(centre, radius * scale, bearing)
        ring.append([round(lng, 6), round(lat, 6)])
    ring.append(ring[0])
    return {"type": "Polygon", "coordinates": [ring]}


def _target(call: Call) -> tuple[float, float] | None:
    given = call.params.get("postcode")
    if given is None:
        return None
    point = locate(given)
    if point is None:
        raise bad_param("postcode", "must be a UK postcode like EX1 1AA or an outward code like EX1")
    return point


# -- contractors ----------------------------------------------------------------------------------------

def _matching(call: Call) -> tuple[list[Row], dict[int, float]]:
    """The caller's visible contractors that pass every filter (decrypted, in ID order), and each one's
    distance in miles to ``postcode`` when it was given."""
    p, me, store = call.params, call.principal, call.sandbox.store
    target = _target(call)
    trade, everyone = p.get("trade_id"), p.get("include_inactive", False)
    needle = " ".join((p.get("search") or "").lower().split())

    def keep(r: Row) -> bool:
        if r["org_id"] != me.org_id or (me.account_type_id == CONTRACTOR and r["ID"] != me.contractor_id):
            return False
        return (everyone or bool(r.get("is_active"))) and (trade is None or trade in (r.get("trade_ids") or ()))

    rows, distances = [], {}
    for raw in store.select("contractors", keep):
        row = store.reveal("contractors", raw)
        if needle:
            names = (row.get("first_name"), row.get("last_name"), row.get("company_name"),
                     f"{row.get('first_name') or ''} {row.get('last_name') or ''}")
            if not any(needle in str(n or "").lower() for n in names):
                continue
        if target is not None:
            home = locate(row.get("postcode") or "")
            if home is None:
                continue
            distance = miles_between(home, target)
            if distance > (row.get("coverage_radius_miles") or 0):
                continue
            distances[row["ID"]] = round(distance, 2)
        rows.append(row)
    return rows, distances


def serialize(row: Row, trades: dict[int, str], certificates: list[Row], distance: float | None) -> Row:
    ids = list(row.get("trade_ids") or ())
    out = {
        "ID": row["ID"], "uuid": row["uuid"], "first_name": row.get("first_name"),
        "last_name": row.get("last_name"), "email": row.get("email"), "phone": row.get("phone"),
        "trades": [trades[t] for t in ids if t in trades], "is_active": bool(row.get("is_active")),
        "company_name": row.get("company_name"), "trade_ids": ids, "postcode": row.get("postcode"),
        "coverage_radius_miles": row.get("coverage_radius_miles"), "certifications": certificates,
    }
    if distance is not None:
        out["distance_miles"] = distance
    return out


def _trade_names(call: Call) -> dict[int, str]:
    return {t["trade_id"]: t["name"] for t in call.sandbox.store.select("trades")}


def _rows(call: Call) -> tuple[list[Row], int]:
    rows, distances = _matching(call)
    shown = page(call, rows)
    trades, certificates = _trade_names(call), for_contractors(call, shown)
    return [serialize(r, trades, certificates[r["ID"]], distances.get(r["ID"])) for r in shown], len(rows)


async def list_contractors(call: Call) -> dict[str, Any]:
    rows, total = _rows(call)
    return listing(rows, total)


def coverage(row: Row) -> Row | None:
    centre = locate(row.get("postcode") or "")
    radius = row.get("coverage_radius_miles") or 0
    if centre is None:
        return None
    return {"postcode": row.get("postcode"), "centre": {"lat": centre[0], "lng": centre[1]},
            "radius_miles": radius, "drive_time_minutes": round(radius / DRIVE_MPH * 60),
            "isochrone": isochrone(centre, radius, row["uuid"])}


async def list_with_coverage(call: Call) -> dict[str, Any]:
    rows, total = _rows(call)
    for row in rows:
        row["coverage"] = coverage(row)
    return listing(rows, total)


async def list_trades(call: Call) -> dict[str, Any]:
    trades = sorted(call.sandbox.store.select("trades"), key=lambda t: t["trade_id"])
    return ok([{"trade_id": t["trade_id"], "name": t["name"]} for t in trades])


FILTERS = (
    Param("search", "string", max_length=100, about="contractor name or company (the docs do not name it)"),
    Param("trade_id", "integer", min=1, about="trade category ID"),
    Param("postcode", "string", max_length=16, about="UK postcode the contractor must cover"),
    Param("include_inactive", "boolean", default=False, about="also list inactive contractors"),
    *paging(),
)

ENDPOINTS = [
    Endpoint("GET", "/api/contractors/list", list_contractors, "api.contractors.list.manage", ("list",),
             params=FILTERS, summary="Active contractors: search, trade_id, postcode coverage, paging"),
    Endpoint("GET", "/api/contractors/list-with-coverage", list_with_coverage,
             "api.contractors.list-with-coverage.view", params=FILTERS,
             summary="Contractors with coverage centre, radius and isochrone polygon (GeoJSON)"),
    Endpoint("GET", "/api/contractors/trades", list_trades, "api.contractors.trades.manage",
             summary="All trade categories"),
]
