"""Contractors over real HTTP: the list (documented row, search, trade, postcode coverage, inactive flag,
paging), list-with-coverage (centre, radius, isochrone polygon), trades (documented body), roles, other
organisation, bad input; and the offline postcode geography."""

from __future__ import annotations

import itertools
import math

import pytest
from conftest import AGENT, API, CONTRACTOR, OTHER_ADMIN, STAFF, assert_envelope_headers, assert_error

from sandbox.resources.contractors import areas, locate

LIST = "/api/contractors/list"
COVERAGE = "/api/contractors/list-with-coverage"
TRADES = "/api/contractors/trades"
C20 = "770e8400-e29b-41d4-a716-446655440001"
DOCUMENTED_ROW = {"ID": 20, "uuid": C20, "first_name": "Contractor_001", "last_name": "Surname_001",
                  "email": "contractor001@example.com", "phone": "07700000002",
                  "trades": ["Gas & Heating", "Plumbing"], "is_active": True}


def haversine(a, b) -> float:
    lat1, lng1, lat2, lng2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lng2 - lng1) / 2) ** 2
    return 2 * 3958.8 * math.asin(math.sqrt(h))


def inside(point, ring) -> bool:
    """Ray casting in (lng, lat)."""
    x, y = point[1], point[0]
    hit = False
    for (x1, y1), (x2, y2) in itertools.pairwise(ring):
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            hit = not hit
    return hit


def listed(client, path=LIST, **params) -> dict:
    query = {"action": "list", **params} if path == LIST else params
    r = client.get(path, params=query)
    assert r.status_code == 200, r.text
    assert_envelope_headers(r)
    body = r.json()
    assert body["success"] is True and body["count"] == len(body["data"])
    return body


def stored(server, keep=lambda r: True) -> list[dict]:
    store = server.sandbox.store
    return [store.reveal("contractors", r) for r in store.select("contractors", keep)]


# -- trades ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("email", [None, STAFF, AGENT, CONTRACTOR])
def test_trades_is_exactly_the_documented_body(server, admin, email):
    if email is None:
        r = admin.get(TRADES)
    else:
        with server.client(email) as client:
            r = client.get(TRADES)
    assert r.status_code == 200, r.text
    assert_envelope_headers(r)
    assert r.json() == {"success": True, "data": [
        {"trade_id": 1, "name": "Gas & Heating"}, {"trade_id": 2, "name": "Plumbing"},
        {"trade_id": 3, "name": "Electrical"}, {"trade_id": 4, "name": "Roofing"},
        {"trade_id": 5, "name": "General Maintenance"}], "message": "Operation completed successfully"}


# -- list -----------------------------------------------------------------------------------------------

def test_documented_example_call_and_row(server, admin):
    body = listed(admin, trade_id=1, limit=20)
    row = next(r for r in body["data"] if r["ID"] == 20)
    assert {k: row[k] for k in DOCUMENTED_ROW} == DOCUMENTED_ROW
    raw = server.sandbox.store.get("contractors", 20)
    assert row["trade_ids"] == [1, 2] and row["postcode"] == raw["postcode"]
    assert row["company_name"] == raw["company_name"]
    assert row["coverage_radius_miles"] == raw["coverage_radius_miles"]
    assert isinstance(row["certifications"], list)
    expected = [c["ID"] for c in stored(server, lambda r: r["org_id"] == 1 and r["is_active"] and 1 in r["trade_ids"])]
    assert body["total"] == len(expected) and [r["ID"] for r in body["data"]] == expected[:20]
    assert all("Gas & Heating" in r["trades"] and r["is_active"] for r in body["data"])


def test_inactive_contractors_are_left_out_unless_asked_for(server, admin):
    inactive = [c["ID"] for c in stored(server, lambda r: r["org_id"] == 1 and not r["is_active"])]
    assert inactive, "the seed has inactive contractors"
    active = listed(admin, limit=200)
    assert not {r["ID"] for r in active["data"]} & set(inactive)
    everyone = listed(admin, limit=200, include_inactive="true")
    assert set(inactive) <= {r["ID"] for r in everyone["data"]}
    assert everyone["total"] == len(stored(server, lambda r: r["org_id"] == 1)) == active["total"] + len(inactive)
    # deactivating one takes it off the list
    server.sandbox.store.update("contractors", 21, {"is_active": False})
    assert 21 not in {r["ID"] for r in listed(admin, limit=200)["data"]}


@pytest.mark.parametrize("needle", ["Contractor_001", "contractor_001", "SURNAME_001", "contractor_001  surname_001"])
def test_search_matches_names(admin, needle):
    assert [r["ID"] for r in listed(admin, search=needle)["data"]] == [20]


def test_search_matches_company_and_other_names(server, admin):
    other = server.sandbox.store.get("contractors", 22)
    assert 22 in [r["ID"] for r in listed(admin, search=other["last_name"])["data"]]
    assert 22 in [r["ID"] for r in listed(admin, search=other["company_name"][:6].lower())["data"]]
    body = listed(admin, search="no such contractor zz")
    assert body["data"] == [] and body["total"] == 0


def test_paging_walks_the_whole_list(admin):
    full = [r["ID"] for r in listed(admin, limit=200)["data"]]
    pages = [r["ID"] for offset in range(0, len(full), 7) for r in listed(admin, limit=7, offset=offset)["data"]]
    assert pages == full and len(full) > 7
    assert listed(admin)["total"] == len(full)


@pytest.mark.parametrize("params, field", [({"limit": 201}, "limit"), ({"limit": 0}, "limit"),
                                           ({"offset": -1}, "offset"), ({"trade_id": "gas"}, "trade_id"),
                                           ({"include_inactive": "maybe"}, "include_inactive"),
                                           ({"search": "x" * 101}, "search")])
def test_bad_list_parameters_are_400(admin, params, field):
    assert_error(admin.get(LIST, params={"action": "list", **params}), 400, field)
    assert_error(admin.get(COVERAGE, params=params), 400, field)


def test_an_unknown_trade_lists_nothing(admin):
    body = listed(admin, trade_id=99)
    assert body["data"] == [] and body["total"] == 0


def test_postcode_filter_is_the_coverage_radius(server, admin):
    home = server.sandbox.store.get("contractors", 20)["postcode"]
    target = locate(home)
    body = listed(admin, postcode=home, limit=200)
    found = {r["ID"]: r for r in body["data"]}
    assert found[20]["distance_miles"] == 0
    for c in stored(server, lambda r: r["org_id"] == 1 and r["is_active"]):
        distance = haversine(locate(c["postcode"]), target)
        if c["ID"] in found:
            assert distance <= c["coverage_radius_miles"] and abs(found[c["ID"]]["distance_miles"] - distance) < 0.01
        else:
            assert distance > c["coverage_radius_miles"], c
    assert body["total"] == len(found)
    # Shetland is beyond everyone in the seed; lowercase and without a space works the same
    assert listed(admin, postcode="ze10aa")["data"] == []
    assert [r["ID"] for r in listed(admin, postcode=home.lower().replace(" ", ""), limit=200)["data"]] == list(found)


def test_postcode_filter_combines_with_trade_and_search(server, admin):
    home = server.sandbox.store.get("contractors", 20)["postcode"]
    both = listed(admin, postcode=home, trade_id=2, search="contractor_001")
    assert [r["ID"] for r in both["data"]] == [20]
    assert listed(admin, postcode=home, trade_id=4, search="contractor_001")["data"] == []


@pytest.mark.parametrize("postcode", ["QQ1 1AA", "12345", "EX1 1A", "EX 1AA", "../etc/passwd", "SW1A 1AAA"])
def test_unknown_or_malformed_postcodes_are_400(admin, postcode):
    assert_error(admin.get(LIST, params={"action": "list", "postcode": postcode}), 400, "postcode")
    assert_error(admin.get(COVERAGE, params={"postcode": postcode}), 400, "postcode")


def test_another_organisation_sees_only_its_own(server):
    with server.client(OTHER_ADMIN) as other:
        body = listed(other, limit=200, include_inactive=1)
        coverage = listed(other, COVERAGE, limit=200)
        assert listed(other, search="Contractor_001")["data"] == []
    mine = [c["ID"] for c in stored(server, lambda r: r["org_id"] == 2)]
    assert [r["ID"] for r in body["data"]] == mine and 20 not in mine
    assert {r["ID"] for r in coverage["data"]} <= set(mine)


@pytest.mark.parametrize("email, lists, coverage", [(STAFF, 200, 200), (API, 200, 200), (AGENT, 200, 403),
                                                    (CONTRACTOR, 403, 403)])
def test_roles(server, admin, email, lists, coverage):
    with server.client(email) as client:
        r = client.get(LIST, params={"action": "list"})
        c = client.get(COVERAGE)
    if lists == 200:
        assert r.status_code == 200 and r.json()["data"] == listed(admin)["data"]
    else:
        assert_error(r, 403, "permission")
    if coverage == 200:
        assert c.status_code == 200 and c.json()["total"] == listed(admin, COVERAGE)["total"]
    else:
        assert_error(c, 403, "permission")


def test_sign_in_is_required(anon):
    for path in (LIST + "?action=list", COVERAGE, TRADES):
        assert_error(anon.get(path), 401)


# -- coverage -------------------------------------------------------------------------------------------

def test_coverage_rows_have_centre_radius_and_an_enclosing_isochrone(server, admin):
    body = listed(admin, COVERAGE, limit=200)
    assert [r["ID"] for r in body["data"]] == [r["ID"] for r in listed(admin, limit=200)["data"]]
    shapes = set()
    for row in body["data"]:
        cov = row["coverage"]
        centre, radius = (cov["centre"]["lat"], cov["centre"]["lng"]), cov["radius_miles"]
        assert radius == row["coverage_radius_miles"] and cov["postcode"] == row["postcode"]
        assert centre == pytest.approx(locate(row["postcode"]))
        assert cov["drive_time_minutes"] == round(radius * 2)
        poly = cov["isochrone"]
        assert poly["type"] == "Polygon" and len(poly["coordinates"]) == 1
        ring = poly["coordinates"][0]
        assert ring[0] == ring[-1] and 24 <= len(ring) - 1 <= 32
        for lng, lat in ring[:-1]:
            assert radius * 1.0 <= haversine(centre, (lat, lng)) <= radius * 1.3 + 0.01
        assert inside(centre, ring)
        for step in range(36):  # the whole radius circle is inside
            bearing = math.radians(step * 10)
            d = radius * 0.995 / 3958.8
            lat1, lng1 = map(math.radians, centre)
            lat2 = math.asin(math.sin(lat1) * math.cos(d) + math.cos(lat1) * math.sin(d) * math.cos(bearing))
            lng2 = lng1 + math.atan2(math.sin(bearing) * math.sin(d) * math.cos(lat1),
                                     math.cos(d) - math.sin(lat1) * math.sin(lat2))
            assert inside((math.degrees(lat2), math.degrees(lng2)), ring), (row["ID"], step)
        shapes.add(tuple(round(haversine(centre, (lat, lng)) / radius, 3) for lng, lat in ring[:4]))
    assert len(shapes) == len(body["data"])  # each contractor's wobble is its own
    assert listed(admin, COVERAGE, limit=200)["data"] == body["data"]  # and deterministic


def test_coverage_filter_agrees_with_the_polygons(server, admin):
    home = server.sandbox.store.get("contractors", 20)["postcode"]
    body = listed(admin, COVERAGE, postcode=home, limit=200)
    assert [r["ID"] for r in body["data"]] == [r["ID"] for r in listed(admin, postcode=home, limit=200)["data"]]
    me = next(r for r in body["data"] if r["ID"] == 20)["coverage"]["centre"]
    for row in body["data"]:
        assert inside((me["lat"], me["lng"]), row["coverage"]["isochrone"]["coordinates"][0]), row["ID"]
        assert row["distance_miles"] <= row["coverage"]["radius_miles"]


def test_paging_and_search_on_coverage(admin):
    assert [r["ID"] for r in listed(admin, COVERAGE, search="Surname_001")["data"]] == [20]
    assert listed(admin, COVERAGE, limit=3, offset=2)["data"] == listed(admin, COVERAGE, limit=200)["data"][2:5]


# -- postcode geography -----------------------------------------------------------------------------------

def test_all_uk_postcode_areas_are_known():
    from faker.providers.address.en_GB import Provider

    assert set(Provider.POSTAL_ZONES) <= set(areas()) and len(areas()) >= 120
    for lat, lng in areas().values():
        assert 49 < lat < 61 and -8.5 < lng < 2


def test_nearby_postcodes_are_near_and_far_ones_far():
    exeter, same_district, next_district = locate("EX1 1AA"), locate("EX1 2BB"), locate("EX4 3PQ")
    assert haversine(exeter, same_district) < 2.5
    assert haversine(exeter, next_district) < 10
    assert 150 < haversine(exeter, locate("M1 1AE")) < 230
    assert haversine(locate("SW1A 1AA"), locate("SE1 7PB")) < 8
    assert haversine(locate("EC1A 1BB"), locate("WC2N 5DU")) < 5
    assert locate("EX1") is not None and haversine(locate("EX1"), exeter) < 2.5
    assert locate("ex1 1aa") == exeter == locate(" EX11AA ")
    for bad in ("QQ1 1AA", "E", "1AA", "EX1 1A", "EX1 AAA", "EX123 1AA", ""):
        assert locate(bad) is None, bad
