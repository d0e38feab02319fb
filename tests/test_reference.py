"""Reference lookups: documented ids, authentication, addresses search and scoping."""

from __future__ import annotations

import pytest
from conftest import OTHER_ADMIN, assert_envelope_headers, assert_error


def lookup(client, path, **params):
    r = client.get(f"/api/jobs/{path}", params={"action": "list", **params})
    assert r.status_code == 200, r.text
    assert_envelope_headers(r)
    body = r.json()
    assert body["success"] is True and body["count"] == len(body["data"])
    return {row["ID"]: row for row in body["data"]}


@pytest.mark.parametrize(("path", "id_", "name"), [
    ("statuses", 1, "Open"), ("statuses", 9, "Invoiced"), ("priorities", 2, "Medium"),
    ("types", 3, "Gas & Heating"), ("payment-statuses", 1, "Awaiting Payment"), ("time-ranges", 2, "Afternoon"),
])
def test_documented_reference_ids(admin, path, id_, name):
    assert lookup(admin, path)[id_]["name"] == name


def test_priorities_carry_the_sla_targets(admin):
    hours = {row["name"]: row["sla_hours"] for row in lookup(admin, "priorities").values()}
    assert hours == {"Emergency": 4, "High": 24, "Medium": 72, "Low": 168}


def test_statuses_cover_the_lifecycle(admin):
    names = {row["name"] for row in lookup(admin, "statuses").values()}
    assert {"Open", "Assigned", "In Progress", "Complete", "Closed", "Archived", "Recalled", "Invoiced"} <= names


@pytest.mark.parametrize("path", ["statuses", "types", "priorities", "payment-statuses", "time-ranges", "addresses"])
def test_lookups_need_a_token_and_an_action(anon, admin, path):
    assert_error(anon.get(f"/api/jobs/{path}", params={"action": "list"}), 401)
    assert_error(admin.get(f"/api/jobs/{path}"), 400, "action")


def test_addresses_are_searchable_paged_and_scoped(server, admin):
    found = lookup(admin, "addresses", search="ex1 1aa")
    assert found[5]["full_address"] == "1 Example Street, Sample Town, EX1 1AA"
    assert all("ex1 1aa" in row["full_address"].lower() for row in found.values())
    first = admin.get("/api/jobs/addresses", params={"action": "list", "limit": 5}).json()
    second = admin.get("/api/jobs/addresses", params={"action": "list", "limit": 5, "offset": 5}).json()
    assert first["count"] == second["count"] == 5
    assert not {r["ID"] for r in first["data"]} & {r["ID"] for r in second["data"]}
    assert all(row["branch_id"] == 1 for row in lookup(admin, "addresses", branch_id=1, limit=200).values())
    with server.client(OTHER_ADMIN) as other:
        assert 5 not in lookup(other, "addresses", limit=200)
