"""Branch endpoints under /api/agents/ over real HTTP: the branch job board (filters, sorting, statistics,
per-agent breakdown, scoping), the profile popover, SLA targets, measured response/resolution times over
sandbox-clock windows, SLA response-time rules, the branch logo and the sharing rules."""

from __future__ import annotations

import io

import pytest
from conftest import AGENT, CONTRACTOR, OTHER_ADMIN, STAFF, assert_envelope_headers, assert_error
from PIL import Image

AGENT_10 = "880e8400-e29b-41d4-a716-446655440001"
OK = {"success": True, "message": "Operation completed successfully"}
HOUR, DAY = 3600, 86_400
RULES = "/api/agents/branch-sla-response-times"


def branch(server, id_):
    return server.sandbox.store.raw("branches", id_)


def branch_jobs(client, branch_uuid, **params):
    r = client.get("/api/agents/branch-jobs", params={"branch_uuid": branch_uuid, "limit": 1000, **params})
    assert r.status_code == 200, r.text
    assert_envelope_headers(r)
    body = r.json()
    assert body["success"] is True and body["count"] == len(body["data"])
    return body


def stored_jobs(server, keep):
    return [j for j in server.sandbox.store.select("jobs") if keep(j)]


def share(admin, branch_id):
    r = admin.post("/api/agents/branches", json={"action": "assign", "agent_uuid": AGENT_10, "branch_id": branch_id})
    assert r.json() == OK


# -- branch jobs ----------------------------------------------------------------------------------------

def test_branch_jobs_statistics_and_agent_breakdown(server, admin):
    b1 = branch(server, 1)
    expected = stored_jobs(server, lambda j: j["branch_id"] == 1)
    body = branch_jobs(admin, b1["uuid"])
    assert {r["ID"] for r in body["data"]} == {j["ID"] for j in expected} and body["total"] == len(expected)
    assert body["branch"] == {"branch_id": 1, "branch_uuid": b1["uuid"], "branch_name": "Branch_001"}
    created = [r["created_at"] for r in body["data"]]
    assert created == sorted(created, reverse=True)  # default: newest first
    stats = body["statistics"]
    done = [j for j in expected if j["status_id"] in (5, 7, 8, 9)]
    assert (stats["total_jobs"], stats["completed_jobs"], stats["open_jobs"]) == (
        len(expected), len(done), len(expected) - len(done))
    assert {s["status_id"]: s["count"] for s in stats["by_status"]} == {
        s: sum(j["status_id"] == s for j in expected) for s in range(1, 10)}
    assert sum(p["count"] for p in stats["by_priority"]) == len(expected)
    assert stats["unassigned_jobs"] == sum(j["agent_id"] is None for j in expected)
    breakdown = {a["agent_id"]: a for a in body["agent_breakdown"]}
    for agent_id in {j["agent_id"] for j in expected}:
        mine = [j for j in expected if j["agent_id"] == agent_id]
        assert breakdown[agent_id]["total_jobs"] == len(mine)
        assert breakdown[agent_id]["completed_jobs"] == sum(j["status_id"] in (5, 7, 8, 9) for j in mine)
    assert breakdown[10]["agent_name"] == "Agent_001 Surname_001" and breakdown[10]["is_branch_member"] is True


def test_branch_jobs_filters(server, admin):
    b1 = branch(server, 1)["uuid"]
    in_1 = stored_jobs(server, lambda j: j["branch_id"] == 1)
    for field, value in (("status_id", 1), ("priority_id", 4), ("job_type_id", 3), ("agent_id", 22)):
        body = branch_jobs(admin, b1, **{field: value})
        assert {r["ID"] for r in body["data"]} == {j["ID"] for j in in_1 if j[field] == value}
        assert body["statistics"]["total_jobs"] == body["total"]
    found = branch_jobs(admin, b1, search="BOILER SERVICE - unit 001")["data"]
    assert 1001 in {r["ID"] for r in found}
    assert all("boiler service - unit 001" in (r["job_title"] + r["job_ref"] + r["job_description"]).lower()
               for r in found)
    day = "2024-01-15"
    body = branch_jobs(admin, b1, date_from=day, date_to=day)
    assert {r["ID"] for r in body["data"]} == {j["ID"] for j in in_1 if j["created_at"][:10] == day} >= {1001}
    page = branch_jobs(admin, b1, limit=5, offset=5)
    assert [r["ID"] for r in page["data"]] == [r["ID"] for r in branch_jobs(admin, b1)["data"]][5:10]
    assert page["total"] == len(in_1)


@pytest.mark.parametrize(("sort", "key"), [
    ("priority", lambda r: r["priority_id"]), ("status", lambda r: r["status_id"]),
    ("title", lambda r: r["job_title"].casefold()), ("job_ref", lambda r: int(r["job_ref"].split("-")[1])),
    ("created_on", lambda r: r["created_at"]),
])
def test_branch_jobs_sorting(server, admin, sort, key):
    b1 = branch(server, 1)["uuid"]
    up = branch_jobs(admin, b1, sort_by=sort, sort_order="asc")["data"]
    assert [key(r) for r in up] == sorted(key(r) for r in up)
    down = branch_jobs(admin, b1, sort_by=sort, sort_order="desc")["data"]
    assert [key(r) for r in down] == sorted((key(r) for r in down), reverse=True)


@pytest.mark.parametrize(("params", "field"), [
    ({"limit": 1001}, "limit"), ({"sort_by": "budget"}, "sort_by"), ({"sort_order": "up"}, "sort_order"),
    ({"date_from": "2024-02-01", "date_to": "2024-01-01"}, "date_to"), ({"date_from": "01/02/2024"}, "date_from"),
    ({"branch_uuid": None}, "branch_uuid"), ({"branch_uuid": "nope"}, "branch_uuid"), ({"status_id": "x"}, "status_id"),
])
def test_branch_jobs_bad_input(server, admin, params, field):
    query = {"branch_uuid": branch(server, 1)["uuid"], **params}
    assert_error(admin.get("/api/agents/branch-jobs", params={k: v for k, v in query.items() if v is not None}),
                 400, field)


def test_branch_jobs_scoping(server, admin):
    b1, b2 = branch(server, 1)["uuid"], branch(server, 2)["uuid"]
    with server.client(AGENT) as agent:
        # The Agent role holds api.agents.branch_jobs.manage (fixtures/roles.toml).
        assert branch_jobs(agent, b1)["total"] == len(stored_jobs(server, lambda j: j["branch_id"] == 1))
        assert_error(agent.get("/api/agents/branch-jobs", params={"branch_uuid": b2}), 404, "Branch not found")
        share(admin, 2)
        assert branch_jobs(agent, b2)["total"] == len(stored_jobs(server, lambda j: j["branch_id"] == 2))
    with server.client(STAFF) as staff:
        assert branch_jobs(staff, b2)["total"] == len(stored_jobs(server, lambda j: j["branch_id"] == 2))
    with server.client(OTHER_ADMIN) as other:
        assert_error(other.get("/api/agents/branch-jobs", params={"branch_uuid": b1}), 404, "Branch not found")
    with server.client(CONTRACTOR) as contractor:
        assert_error(contractor.get("/api/agents/branch-jobs", params={"branch_uuid": b1}), 403)


# -- popover and SLA targets ------------------------------------------------------------------------------

def test_profile_popover(server, admin):
    b1 = branch(server, 1)
    by_id = admin.get("/api/agents/branch-profile-popover", params={"branch_id": 1})
    assert by_id.status_code == 200
    data = by_id.json()["data"]
    assert admin.get("/api/agents/branch-profile-popover", params={"branch_uuid": b1["uuid"]}).json()["data"] == data
    assert {k: data[k] for k in ("branch_id", "uuid", "branch_name", "postcode", "shared_email", "logo_url")} == {
        "branch_id": 1, "uuid": b1["uuid"], "branch_name": "Branch_001", "postcode": "SC1 1AA",
        "shared_email": "branch001@example.com", "logo_url": None}
    members = [a for a in server.sandbox.store.select("agents") if 1 in a["branch_ids"] and a["is_active"]]
    assert data["agent_count"] == len(members) and data["agents"][0]["agent_uuid"] == AGENT_10
    assert data["total_jobs"] == len(stored_jobs(server, lambda j: j["branch_id"] == 1))
    assert_error(admin.get("/api/agents/branch-profile-popover"), 400, "branch_id")
    with server.client(AGENT) as agent:
        assert agent.get("/api/agents/branch-profile-popover", params={"branch_id": 1}).status_code == 200
        assert_error(agent.get("/api/agents/branch-profile-popover", params={"branch_id": 2}), 404, "Branch")
    with server.client(OTHER_ADMIN) as other:
        assert_error(other.get("/api/agents/branch-profile-popover", params={"branch_id": 1}), 404, "Branch")


def test_branch_sla_targets_follow_the_branch_overrides(server, admin):
    r = admin.get("/api/agents/branch-sla", params={"branch_id": 2})
    data = r.json()["data"]
    assert [(x["priority_name"], x["target_hours"], x["is_default"]) for x in data["sla_rules"]] == [
        ("Emergency", 4, True), ("High", 24, True), ("Medium", 72, True), ("Low", 168, True)]
    server.sandbox.store.insert("branch_sla", {"ID": None, "branch_id": 2, "priority_id": 2, "target_hours": 48})
    rules = admin.get("/api/agents/branch-sla", params={"branch_id": 2}).json()["data"]["sla_rules"]
    assert (rules[2]["target_hours"], rules[2]["is_default"]) == (48, False)
    other = admin.get("/api/agents/branch-sla", params={"branch_id": 1}).json()["data"]["sla_rules"]
    assert other[2]["target_hours"] == 72
    with server.client(AGENT) as agent:
        assert_error(agent.get("/api/agents/branch-sla", params={"branch_id": 2}), 404, "Branch not found")
        share(admin, 2)
        assert agent.get("/api/agents/branch-sla", params={"branch_id": 2}).json()["data"]["sla_rules"] == rules


# -- measured response and resolution times -------------------------------------------------------------

def times(client, **params):
    r = client.get(RULES, params={"branch_id": 4, **params})
    assert r.status_code == 200, r.text
    return r.json()["data"]


def by_priority(data):
    return {p["priority_name"]: p for p in data["by_priority"]}


def test_response_and_resolution_times_over_clock_windows(server):
    clock = server.sandbox.clock
    clock.freeze()
    clock.advance(200 * DAY)  # past every seeded job: the windows hold only the jobs made here
    with server.client() as admin:  # signed in after the jump (tokens last 90 days)
        measure(server, admin)


def measure(server, admin):
    store, clock = server.sandbox.store, server.sandbox.clock
    assert times(admin, period="90days")["overall"]["job_count"] == 0
    address = next(a for a in store.select("addresses") if a["branch_id"] == 4)

    def create(priority):
        r = admin.post("/api/jobs/manage", json={
            "action": "create", "job_title": "SLA", "job_description": "d", "priority_id": priority, "status_id": 1,
            "job_type_id": 1, "address_id": address["ID"]})
        assert r.status_code == 201, r.text
        return r.json()["job_uuid"]

    def update(uuid, **fields):
        assert admin.post("/api/jobs/manage", json={"action": "update", "uuid": uuid, **fields}).status_code == 200

    fast, slow, _quiet = create(4), create(4), create(1)
    clock.advance(2 * HOUR)
    update(fast, status_id=2)  # first response after 2 h
    clock.advance(2 * HOUR)
    update(slow, status_id=3)  # first response after 4 h
    clock.advance(2 * HOUR)
    update(fast, status_id=5)  # resolved after 6 h
    week = times(admin, period="7days")
    emergency, low = by_priority(week)["Emergency"], by_priority(week)["Low"]
    assert {k: emergency[k] for k in ("job_count", "responded_count", "avg_response_hours", "resolved_count",
                                      "avg_resolution_hours", "target_hours", "resolved_within_target")} == {
        "job_count": 2, "responded_count": 2, "avg_response_hours": 3.0, "resolved_count": 1,
        "avg_resolution_hours": 6.0, "target_hours": 4, "resolved_within_target": 0}
    assert (low["job_count"], low["avg_response_hours"], low["avg_resolution_hours"]) == (1, None, None)
    assert week["overall"] == {"job_count": 3, "avg_response_hours": 3.0, "avg_resolution_hours": 6.0}
    assert week["period"] == "7days" and week["to"] == clock.iso()
    assert times(admin)["period"] == "30days"  # the default window
    store.insert("branch_sla", {"ID": None, "branch_id": 4, "priority_id": 4, "target_hours": 8})
    emergency = by_priority(times(admin, period="7days"))["Emergency"]
    assert (emergency["target_hours"], emergency["resolved_within_target"], emergency["within_target_rate"]) == (
        8, 1, 100.0)
    clock.advance(10 * DAY)
    assert times(admin, period="7days")["overall"]["job_count"] == 0
    assert times(admin, period="30days")["overall"]["job_count"] == 3
    clock.advance(25 * DAY)
    assert times(admin, period="30days")["overall"]["job_count"] == 0
    assert times(admin, period="90days")["overall"]["job_count"] == 3
    assert_error(admin.get(RULES, params={"branch_id": 4, "period": "1year"}), 400, "period")
    with server.client(AGENT) as agent:
        assert_error(agent.get(RULES, params={"branch_id": 4}), 404, "Branch not found")


# -- SLA response-time rules ------------------------------------------------------------------------------

RULE = {"job_status_from_id": 1, "job_status_to_id": 3, "job_type_id": 3, "date_field_to_track": "created_at",
        "date_field_to_compare": "updated_at", "job_priority": 4, "minimum_response_days": 5,
        "description": "Emergency gas jobs must be actioned within 24 hours."}


def rules(client, branch_id=1):
    return client.get("/api/agents/branch-sla", params={"branch_id": branch_id}).json()["data"]["response_time_rules"]


def test_create_then_update_a_rule(server, admin):
    b1 = branch(server, 1)["uuid"]
    r = admin.post(RULES, json={"branch_uuid": b1, **RULE})
    assert r.status_code == 200
    body = r.json()
    assert body["success"] is True and body["message"] == OK["message"]
    (rule,) = rules(admin)
    assert {k: rule[k] for k in RULE} == RULE and rule["uuid"] == body["rule_uuid"] and rule["branch_uuid"] == b1
    assert times(admin, branch_id=1)["rules"] == [rule]
    r = admin.post(RULES, json={"branch_uuid": b1, "uuid": rule["uuid"], "minimum_response_days": 2,
                                "job_type_id": None})
    assert r.status_code == 200 and r.json()["rule_uuid"] == rule["uuid"]
    (updated,) = rules(admin)
    assert updated == {**rule, "minimum_response_days": 2, "job_type_id": None, "updated_at": updated["updated_at"]}
    stored = server.sandbox.store.raw_by_uuid("branch_sla_rules", rule["uuid"])
    assert (stored["org_id"], stored["branch_id"], stored["minimum_response_days"]) == (1, 1, 2)


def test_a_rule_without_optional_fields_gets_the_documented_date_fields(server, admin):
    b2 = branch(server, 2)["uuid"]
    r = admin.post(RULES, data={"branch_uuid": b2, "job_status_from_id": 2, "job_status_to_id": 5,
                                "minimum_response_days": 0})
    assert r.status_code == 200, r.text
    (rule,) = rules(admin, 2)
    assert (rule["date_field_to_track"], rule["date_field_to_compare"], rule["job_type_id"]) == (
        "created_at", "updated_at", None)


@pytest.mark.parametrize(("fields", "field"), [
    ({"job_status_from_id": 99}, "job_status_from_id"), ({"job_status_to_id": 0}, "job_status_to_id"),
    ({"job_priority": 123}, "job_priority"), ({"job_type_id": 999}, "job_type_id"),
    ({"date_field_to_track": "deleted_at"}, "date_field_to_track"),
    ({"date_field_to_compare": "created_at"}, "date_field_to_compare"),
    ({"job_status_to_id": 1}, "job_status_to_id"), ({"minimum_response_days": -1}, "minimum_response_days"),
    ({"minimum_response_days": None}, "minimum_response_days"), ({"job_status_from_id": None}, "job_status_from_id"),
    ({"description": "x" * 1001}, "description"), ({"branch_uuid": None}, "branch_uuid"),
])
def test_rule_validation_changes_nothing(server, admin, fields, field):
    payload = {"branch_uuid": branch(server, 1)["uuid"], **RULE, **fields}
    assert_error(admin.post(RULES, json={k: v for k, v in payload.items() if v is not None}), 400, field)
    assert server.sandbox.store.count("branch_sla_rules") == 0


def test_rule_update_validation_and_scoping(server, admin):
    b1, b2 = branch(server, 1)["uuid"], branch(server, 2)["uuid"]
    uuid = admin.post(RULES, json={"branch_uuid": b1, **RULE}).json()["rule_uuid"]
    assert_error(admin.post(RULES, json={"branch_uuid": b1, "uuid": uuid, "job_status_to_id": 1}), 400,
                 "job_status_to_id")
    assert_error(admin.post(RULES, json={"branch_uuid": b1, "uuid": uuid, "job_status_from_id": None}), 400,
                 "job_status_from_id")
    assert_error(admin.post(RULES, json={"branch_uuid": b2, "uuid": uuid, "minimum_response_days": 1}), 404,
                 "SLA rule not found")
    assert_error(admin.post(RULES, json={"branch_uuid": b1, "uuid": AGENT_10, "minimum_response_days": 1}), 404,
                 "SLA rule not found")
    assert [r["minimum_response_days"] for r in rules(admin)] == [5]
    with server.client(OTHER_ADMIN) as other:
        assert_error(other.post(RULES, json={"branch_uuid": b1, **RULE}), 404, "Branch not found")
    with server.client(csrf=False) as no_csrf:
        assert_error(no_csrf.post(RULES, json={"branch_uuid": b1, **RULE}), 403, "CSRF")
    for email in (STAFF, AGENT):  # api.agents.branch_sla_response_times.manage: not in these roles
        with server.client(email) as client:
            assert_error(client.post(RULES, json={"branch_uuid": b1, **RULE}), 403, "permission")
    assert server.sandbox.store.count("branch_sla_rules") == 1


# -- logo -------------------------------------------------------------------------------------------------------

def image(fmt):
    out = io.BytesIO()
    Image.new("RGB", (24, 12), (200, 30, 30)).save(out, fmt)
    return out.getvalue()


SVG = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect/></svg>'


def upload(client, uuid, data, name="logo.bin"):
    return client.post("/api/agents/branch-logo", data={"uuid": uuid}, files={"logo": (name, data)})


@pytest.mark.parametrize(("data", "mime"), [
    (image("PNG"), "image/png"), (image("JPEG"), "image/jpeg"), (SVG, "image/svg+xml"),
    (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image/svg+xml"),
])
def test_logo_upload_by_content(server, admin, data, mime):
    b3 = branch(server, 3)
    r = upload(admin, b3["uuid"], data)
    assert r.status_code == 200, r.text
    url = r.json()["logo_url"]
    (row,) = server.sandbox.store.select("branch_logos")
    assert (row["branch_id"], row["mime_type"], url) == (3, mime, f"/attachment/{row['uuid']}")
    assert server.sandbox.blobs.get(row["blob"]) == data
    assert branch(server, 3)["logo_url"] == url
    popover = admin.get("/api/agents/branch-profile-popover", params={"branch_id": 3}).json()["data"]
    assert popover["logo_url"] == url


def test_a_new_logo_replaces_the_old_one(server, admin):
    uuid = branch(server, 1)["uuid"]
    assert upload(admin, uuid, image("PNG")).status_code == 200
    (old,) = server.sandbox.store.select("branch_logos")
    assert upload(admin, uuid, SVG).status_code == 200
    (new,) = server.sandbox.store.select("branch_logos")
    assert new["mime_type"] == "image/svg+xml" and new["uuid"] != old["uuid"]
    assert server.sandbox.blobs.get(old["blob"]) is None
    assert branch(server, 1)["logo_url"] == f"/attachment/{new['uuid']}"


@pytest.mark.parametrize("data", [
    image("GIF"), b"hello", b"", b"\x89PNG\r\n\x1a\nbroken", b"<svg onload='alert(1)'></svg>",
    b"<svg><script>alert(1)</script></svg>", b"<?xml version='1.0'?><html/>",
])
def test_logo_upload_rejects_other_content(server, admin, data):
    assert_error(upload(admin, branch(server, 1)["uuid"], data, "logo.png"), 400, "logo")
    assert server.sandbox.store.select("branch_logos") == [] and branch(server, 1).get("logo_url") is None


def test_logo_upload_rules(server, admin):
    b1 = branch(server, 1)["uuid"]
    assert_error(admin.post("/api/agents/branch-logo", data={"uuid": b1}), 400, "logo")
    assert_error(upload(admin, "not-a-uuid", SVG), 400, "uuid")
    with server.client(OTHER_ADMIN) as other:
        assert_error(upload(other, b1, SVG), 404, "Branch not found")
    with server.client(csrf=False) as no_csrf:
        assert_error(upload(no_csrf, b1, SVG), 403, "CSRF")
    for email in (STAFF, AGENT, CONTRACTOR):
        with server.client(email) as client:
            assert_error(upload(client, b1, SVG), 403, "permission")
    assert server.sandbox.store.select("branch_logos") == []


# -- sharing rules ------------------------------------------------------------------------------------------

def sharing(client, **params):
    r = client.get("/api/agents/branch-sharing", params=params)
    assert r.status_code == 200, r.text
    return [(row["agent_id"], row["home_branch_id"], row["branch_id"]) for row in r.json()["data"]]


def test_sharing_rules_follow_the_assignments(server, admin):
    expected = [(a["ID"], a["branch_id"], b) for a in server.sandbox.store.select("agents") if a["org_id"] == 1
                for b in a["branch_ids"] if b != a["branch_id"]]
    assert expected and sharing(admin) == expected
    with server.client(AGENT) as agent:
        assert sharing(agent) == []
        share(admin, 3)
        assert sharing(admin) == sorted([*expected, (10, 1, 3)])
        assert sharing(admin, agent_uuid=AGENT_10) == [(10, 1, 3)]
        assert sharing(agent) == [row for row in sharing(admin) if row[2] == 3]
    assert all(row[2] == 3 or row[1] == 3 for row in sharing(admin, branch_id=3))
    with server.client(OTHER_ADMIN) as other:
        assert all(row[0] not in {r[0] for r in expected} for row in sharing(other))
        assert_error(other.get("/api/agents/branch-sharing", params={"agent_uuid": AGENT_10}), 404, "Agent")
    with server.client(CONTRACTOR) as contractor:  # no documented key; contractors see no branches
        assert sharing(contractor) == []
