"""Pins (per user), remedial links, SLA status, breached jobs and the calendar."""

from __future__ import annotations

import datetime as dt

import pytest
from conftest import AGENT, CONTRACTOR, JOB_1001, OTHER_ADMIN, STAFF, assert_error

JOB_1055 = "550e8400-e29b-41d4-a716-446655441055"


def pinned(client):
    rows = client.get("/api/jobs/manage", params={"action": "list", "limit": 200}).json()["data"]
    return {r["ID"] for r in rows if r["is_pinned"]}


# -- pins ------------------------------------------------------------------------------------------

def test_toggle_pin_is_the_documented_flip_and_needs_no_csrf(server):
    with server.client(STAFF, csrf=False) as staff:
        r = staff.post("/api/jobs/toggle-pin", json={"job_uuid": JOB_1001})
        assert r.json() == {"success": True, "is_pinned": True, "message": "Job pinned to your dashboard"}
        assert pinned(staff) == {1001}
        r = staff.post("/api/jobs/toggle-pin", json={"job_uuid": JOB_1001})
        assert r.json() == {"success": True, "is_pinned": False, "message": "Job unpinned from your dashboard"}
        assert pinned(staff) == set()


def test_each_user_has_an_independent_pin_list(server, admin):
    before = pinned(admin)
    with server.client(STAFF) as staff:
        staff.post("/api/jobs/toggle-pin", json={"job_uuid": JOB_1001})
        assert pinned(staff) == {1001}
    assert pinned(admin) == before and 1001 not in before


def test_toggle_pin_scoping_and_input(server):
    with server.client(OTHER_ADMIN) as other:
        assert_error(other.post("/api/jobs/toggle-pin", json={"job_uuid": JOB_1001}), 404)
    with server.client(CONTRACTOR) as contractor:
        assert contractor.post("/api/jobs/toggle-pin", json={"job_uuid": JOB_1001}).json()["is_pinned"] is True
        assert_error(contractor.post("/api/jobs/toggle-pin", json={}), 400, "job_uuid")
        assert_error(contractor.post("/api/jobs/toggle-pin", json={"job_uuid": "nope"}), 400, "job_uuid")


# -- remedials -------------------------------------------------------------------------------------

def remedials(client, uuid=JOB_1001):
    return client.get("/api/jobs/remedials", params={"action": "list", "job_uuid": uuid})


def test_the_documented_remedial_exists(admin):
    body = remedials(admin).json()
    assert body["count"] == 1
    row = body["data"][0]
    assert {k: row[k] for k in ("ID", "uuid", "job_ref", "job_title", "status_name", "created_on")} == {
        "ID": 1055, "uuid": JOB_1055, "job_ref": "JOB-1055", "job_title": "Boiler follow-up — parts replacement",
        "status_name": "Open", "created_on": "2024-06-15T09:00:00Z"}


def _free_jobs(server, n):
    linked = {r["remedial_job_id"] for r in server.sandbox.store.select("remedials")} | {1001, 1055}
    rows = [r for r in server.sandbox.store.select("jobs")
            if r["org_id"] == 1 and r["status_id"] != 8 and r["ID"] not in linked]
    return rows[:n]


def test_link_and_unlink_with_the_seed_shape(server, admin):
    (child,) = _free_jobs(server, 1)
    r = admin.post("/api/jobs/remedials", json={"action": "link", "job_uuid": JOB_1001,
                                                "remedials_job_uuid": child["uuid"]})
    assert r.json() == {"success": True, "message": "Remedial job linked"}
    assert {row["ID"] for row in remedials(admin).json()["data"]} == {1055, child["ID"]}
    assert_error(admin.post("/api/jobs/remedials", json={"action": "link", "job_uuid": JOB_1001,
                                                         "remedials_job_uuid": child["uuid"]}), 400, "already")
    r = admin.post("/api/jobs/remedials", json={"action": "unlink", "job_uuid": child["uuid"]})
    assert r.status_code == 200
    assert {row["ID"] for row in remedials(admin).json()["data"]} == {1055}
    assert admin.get("/api/jobs/manage", params={"action": "get", "uuid": child["uuid"]}).status_code == 200
    assert_error(admin.post("/api/jobs/remedials", json={"action": "unlink", "job_uuid": child["uuid"]}), 404)


def test_create_and_delete_with_the_reference_shape(server, admin):
    parent, child = _free_jobs(server, 2)
    r = admin.post("/api/jobs/remedials", json={"action": "create", "parent_job_uuid": parent["uuid"],
                                                "remedial_job_uuid": child["uuid"], "reason": "Leak found"})
    assert r.status_code == 200
    assert remedials(admin, parent["uuid"]).json()["data"][0]["reason"] == "Leak found"
    r = admin.post("/api/jobs/remedials", json={"action": "delete", "parent_job_uuid": parent["uuid"],
                                                "remedial_job_uuid": child["uuid"]})
    assert r.status_code == 200 and remedials(admin, parent["uuid"]).json()["count"] == 0


def test_refused_links_change_nothing(server, admin):
    store = server.sandbox.store
    before = len(store.select("remedials"))
    foreign = next(r for r in store.select("jobs") if r["org_id"] == 2)
    archived = next(r for r in store.select("jobs") if r["org_id"] == 1 and r["status_id"] == 8)
    cases = [
        ({"job_uuid": JOB_1001, "remedials_job_uuid": JOB_1001}, 400, "own remedial"),
        ({"job_uuid": JOB_1001, "remedials_job_uuid": foreign["uuid"]}, 404, "Job not found"),
        ({"job_uuid": JOB_1001, "remedials_job_uuid": archived["uuid"]}, 403, "archived"),
        ({"job_uuid": JOB_1001}, 400, "job_uuid"),
        ({"job_uuid": JOB_1001, "remedials_job_uuid": "x"}, 400, "remedials_job_uuid"),
    ]
    for body, status, words in cases:
        assert_error(admin.post("/api/jobs/remedials", json={"action": "link", **body}), status, words)
    assert len(store.select("remedials")) == before
    with server.client(CONTRACTOR) as contractor:  # contractors lack api.jobs.remedials.manage
        assert_error(remedials(contractor), 403)


# -- SLA -------------------------------------------------------------------------------------------

def test_sla_status_follows_priority_targets_and_the_clock(server, admin):
    store, clock = server.sandbox.store, server.sandbox.clock
    clock.freeze()
    r = admin.post("/api/jobs/manage", json={"action": "create", "job_title": "Gas leak", "job_description": "Smell",
                                             "priority_id": 4, "status_id": 1, "job_type_id": 3, "address_id": 5})
    uuid = r.json()["job_uuid"]

    def state():
        body = admin.get("/api/jobs/sla-status", params={"limit": 200}).json()["data"]
        mine = [d for d in body["breach_details"] if d["job_uuid"] == uuid]
        return body, (mine[0] if mine else None)

    _, detail = state()
    assert detail is None  # Emergency: 4 hours to go
    clock.advance(5 * 3600)  # 1 hour past the 4-hour target: overdue
    _, detail = state()
    assert detail["sla_state"] == "overdue" and detail["hours_overdue"] == 1
    clock.advance(24 * 3600)  # 25 hours past: breached
    _, detail = state()
    assert detail["sla_state"] == "breached" and detail["hours_overdue"] == 25
    deadline = dt.datetime.fromisoformat(store.raw("jobs", r.json()["job_id"])["created_at"].replace("Z", "+00:00"))
    assert detail["sla_deadline"] == (deadline + dt.timedelta(hours=4)).strftime("%Y-%m-%dT%H:%M:%SZ")
    # Completing the job takes it off the clock.
    admin.post("/api/jobs/manage", json={"action": "update", "uuid": uuid, "status_id": 5})
    assert state()[1] is None


def test_sla_status_counts_partition_the_active_jobs(server, admin):
    body = admin.get("/api/jobs/sla-status").json()["data"]
    active = [r for r in server.sandbox.store.select("jobs") if r["org_id"] == 1 and r["status_id"] in (1, 2, 3, 4, 6)]
    assert body["jobs_within_sla"] + body["jobs_overdue"] + body["jobs_breached"] == len(active)
    assert body["jobs_within_sla"] > 0 and body["jobs_breached"] > 0
    assert any(d["job_ref"] == "JOB-001" for d in admin.get("/api/jobs/sla-status",
                                                              params={"limit": 200}).json()["data"]["breach_details"])


def test_sla_breached_jobs_groups_and_scopes(server, admin):
    data = admin.get("/api/sla-breached-jobs").json()["data"]
    total = data["summary"]["total_breached"]
    assert total == sum(b["breached_count"] for b in data["by_branch"])
    assert total == sum(len(b["jobs"]) for b in data["by_branch"])
    assert sum(v for k, v in data["summary"].items() if k != "total_breached") == total
    assert all(j["hours_overdue"] >= 0 for b in data["by_branch"] for j in b["jobs"])
    with server.client(AGENT) as agent:
        mine = agent.get("/api/sla-breached-jobs").json()["data"]
        assert {b["branch_id"] for b in mine["by_branch"]} == {1}
    with server.client(CONTRACTOR) as contractor:
        assert_error(contractor.get("/api/sla-breached-jobs"), 403)


# -- calendar --------------------------------------------------------------------------------------

def test_calendar_jobs_returns_the_jobs_in_the_window(admin):
    r = admin.get("/api/calendar-jobs", params={"from_date": "2024-06-01", "to_date": "2024-06-01"})
    assert r.status_code == 200
    assert 1001 in {row["ID"] for row in r.json()["data"]}
    row = next(row for row in r.json()["data"] if row["ID"] == 1001)
    assert row["start"] == "2024-06-01" and row["end"] == "2024-06-02"
    assert 1001 not in {x["ID"] for x in admin.get("/api/calendar-jobs", params={
        "from_date": "2024-06-03", "to_date": "2024-06-30"}).json()["data"]}
    filtered = admin.get("/api/calendar-jobs", params={"from_date": "2020-01-01", "to_date": "2020-12-31",
                                                       "contractor_id": 20})
    assert filtered.status_code == 200


@pytest.mark.parametrize(("params", "name"), [
    ({"to_date": "2024-06-01"}, "from_date"), ({"from_date": "2024-06-01"}, "to_date"),
    ({"from_date": "2024-06-02", "to_date": "2024-06-01"}, "to_date"),
    ({"from_date": "June", "to_date": "2024-06-01"}, "from_date"),
    ({"from_date": "2020-01-01", "to_date": "2024-06-01"}, "to_date"),
])
def test_calendar_jobs_bad_windows(admin, params, name):
    assert_error(admin.get("/api/calendar-jobs", params=params), 400, name)
