"""Agents over real HTTP: the list (search, branch filter, paging, scoping), SLA targets, performance KPIs
computed from real jobs, branch assignments and sharing — which changes what an agent sees at once."""

from __future__ import annotations

import pytest
from conftest import AGENT, CONTRACTOR, OTHER_ADMIN, STAFF, assert_envelope_headers, assert_error

AGENT_10 = "880e8400-e29b-41d4-a716-446655440001"
DOCUMENTED_ROW = {  # seed 004, list agents example
    "ID": 10, "uuid": AGENT_10, "first_name": "Agent_001", "last_name": "Surname_001",
    "email": "agent001@example.com", "branch_id": 1, "branch_name": "Branch_001", "is_active": True,
}
DOCUMENTED_SLA = [  # seed 004, agent SLA example
    {"priority_name": "Emergency", "target_hours": 4}, {"priority_name": "High", "target_hours": 24},
    {"priority_name": "Medium", "target_hours": 72}, {"priority_name": "Low", "target_hours": 168},
]
OK = {"success": True, "message": "Operation completed successfully"}
DAY = 86_400


def agents(client, **params):
    r = client.get("/api/agents/list", params={"action": "list", **params})
    assert r.status_code == 200, r.text
    assert_envelope_headers(r)
    body = r.json()
    assert body["success"] is True and body["count"] == len(body["data"])
    return body


def ids(body):
    return [r["ID"] for r in body["data"]]


def stored_agents(server, keep=lambda a: True):
    return [a for a in server.sandbox.store.select("agents") if keep(a)]


def branch_ids(server, agent_id):
    return server.sandbox.store.raw("agents", agent_id)["branch_ids"]


def link(client, action, branch_id, agent_uuid=AGENT_10, path="/api/agents/branches"):
    return client.post(path, json={"action": action, "agent_uuid": agent_uuid, "branch_id": branch_id})


def job_total(client):
    r = client.get("/api/jobs/manage", params={"action": "list", "limit": 1})
    assert r.status_code == 200, r.text
    return r.json()["total"]


# -- list -------------------------------------------------------------------------------------------

def test_documented_branch_filter_example(server, admin):
    body = agents(admin, branch_id=1)
    row = next(r for r in body["data"] if r["ID"] == 10)
    assert {k: row[k] for k in DOCUMENTED_ROW} == DOCUMENTED_ROW
    assert row["branch_ids"] == [1] and row["phone"]
    expected = [a["ID"] for a in stored_agents(server, lambda a: 1 in a["branch_ids"] and a["is_active"])]
    assert ids(body) == expected and body["total"] == len(expected)


def test_list_is_the_active_agents_of_the_callers_organisation(server, admin):
    expected = [a["ID"] for a in stored_agents(server, lambda a: a["org_id"] == 1 and a["is_active"])]
    inactive = [a["ID"] for a in stored_agents(server, lambda a: a["org_id"] == 1 and not a["is_active"])]
    assert inactive and ids(agents(admin, limit=200)) == expected
    with server.client(OTHER_ADMIN) as other:
        theirs = ids(agents(other, limit=200))
    assert theirs == [a["ID"] for a in stored_agents(server, lambda a: a["org_id"] == 2 and a["is_active"])]
    assert not set(theirs) & set(expected)


def test_search_looks_in_the_decrypted_name_and_email(server, admin):
    assert ids(agents(admin, search="agent_001 surname")) == [10]
    assert ids(agents(admin, search="AGENT001@EXAMPLE")) == [10]
    other = server.sandbox.store.get("agents", 22)
    assert 22 in ids(agents(admin, search=other["last_name"]))
    assert 22 in ids(agents(admin, search=other["email"]))
    assert agents(admin, search="no-such-agent-anywhere")["data"] == []
    assert other["email"] not in str(server.sandbox.store.raw("agents", 22))  # encrypted at rest


def test_paging_and_bad_input(admin):
    every = ids(agents(admin, limit=200))
    page = agents(admin, limit=2, offset=1)
    assert ids(page) == every[1:3] and page["total"] == len(every)
    for params, field in (({"limit": 201}, "limit"), ({"limit": 0}, "limit"), ({"offset": -1}, "offset"),
                          ({"branch_id": "one"}, "branch_id"), ({"action": "get"}, "action")):
        assert_error(admin.get("/api/agents/list", params={"action": "list", **params}), 400, field)


def test_an_agent_sees_the_agents_of_their_own_and_shared_branches(server, admin):
    in_1 = [a["ID"] for a in stored_agents(server, lambda a: 1 in a["branch_ids"] and a["is_active"])]
    in_2 = [a["ID"] for a in stored_agents(server, lambda a: 2 in a["branch_ids"] and a["is_active"])]
    with server.client(AGENT) as agent:
        assert ids(agents(agent, limit=200)) == in_1
        assert agents(agent, branch_id=2)["data"] == []
        assert link(admin, "assign", 2).json() == OK
        assert ids(agents(agent, limit=200)) == sorted(set(in_1) | set(in_2))
        assert ids(agents(agent, branch_id=2)) == sorted(set(in_2) | {10})


def test_contractors_may_not_list_agents(server):
    with server.client(CONTRACTOR) as contractor:
        assert_error(contractor.get("/api/agents/list", params={"action": "list"}), 403, "permission")


# -- SLA --------------------------------------------------------------------------------------------

def test_documented_sla_example_and_branch_overrides(server, admin):
    r = admin.get("/api/agents/sla", params={"agent_uuid": AGENT_10})
    assert r.status_code == 200
    data = r.json()["data"]
    assert (data["agent_uuid"], data["branch_name"]) == (AGENT_10, "Branch_001")
    assert [{k: x[k] for k in ("priority_name", "target_hours")} for x in data["sla_rules"]] == DOCUMENTED_SLA
    # The admin branch update writes per-priority overrides to branch_sla; they win over the defaults.
    server.sandbox.store.insert("branch_sla", {"ID": None, "branch_id": 1, "priority_id": 4, "target_hours": 2})
    rules = admin.get("/api/agents/sla", params={"agent_uuid": AGENT_10}).json()["data"]["sla_rules"]
    assert (rules[0]["priority_name"], rules[0]["target_hours"], rules[0]["is_default"]) == ("Emergency", 2, False)
    assert [x["target_hours"] for x in rules[1:]] == [24, 72, 168]


def test_sla_covers_shared_branches_and_an_agent_defaults_to_themselves(server, admin):
    assert link(admin, "assign", 2).status_code == 200
    with server.client(AGENT) as agent:
        data = agent.get("/api/agents/sla").json()["data"]
    assert data["agent_uuid"] == AGENT_10
    assert [(b["branch_id"], b["is_primary"]) for b in data["branches"]] == [(1, True), (2, False)]
    assert_error(admin.get("/api/agents/sla"), 400, "agent_uuid")
    assert_error(admin.get("/api/agents/sla", params={"agent_uuid": "nope"}), 400, "agent_uuid")


def test_sla_scoping(server):
    outside = stored_agents(server, lambda a: a["org_id"] == 1 and 1 not in a["branch_ids"])[0]
    with server.client(AGENT) as agent:
        assert_error(agent.get("/api/agents/sla", params={"agent_uuid": outside["uuid"]}), 404, "Agent not found")
    with server.client(OTHER_ADMIN) as other:
        assert_error(other.get("/api/agents/sla", params={"agent_uuid": AGENT_10}), 404, "Agent not found")
        assert_error(other.get("/api/agents/performance", params={"agent_uuid": AGENT_10}), 404, "Agent not found")


# -- performance --------------------------------------------------------------------------------------

def performance(client, uuid):
    r = client.get("/api/agents/performance", params={"agent_uuid": uuid})
    assert r.status_code == 200, r.text
    return r.json()["data"]


def test_performance_is_computed_from_the_agents_jobs(server, admin):
    store, clock = server.sandbox.store, server.sandbox.clock
    with_jobs = {j["agent_id"] for j in store.select("jobs")}
    agent = stored_agents(server, lambda a: a["org_id"] == 1 and a["ID"] not in with_jobs)[0]
    name = store.get("agents", agent["ID"])
    empty = performance(admin, agent["uuid"])
    assert empty == {"agent_uuid": agent["uuid"], "agent_name": f"{name['first_name']} {name['last_name']}",
                     "total_jobs": 0, "completed_jobs": 0, "completion_rate": 0.0, "avg_completion_days": None,
                     "recall_count": 0, "recall_rate": 0.0, "open_jobs": 0}
    address = next(a for a in store.select("addresses") if a["branch_id"] == agent["branch_id"])
    clock.freeze()
    made = []
    for n in range(4):
        r = admin.post("/api/jobs/manage", json={
            "action": "create", "job_title": f"Perf {n}", "job_description": "d", "priority_id": 2, "status_id": 1,
            "job_type_id": 1, "address_id": address["ID"], "agent_id": agent["ID"]})
        assert r.status_code == 201, r.text
        made.append(r.json()["job_uuid"])

    def update(uuid, **fields):
        assert admin.post("/api/jobs/manage", json={"action": "update", "uuid": uuid, **fields}).status_code == 200

    clock.advance(2 * DAY)
    update(made[0], status_id=5)  # Complete after 2 days (no completed_at: the status commit counts)
    clock.advance(DAY)
    update(made[1], status_id=7)  # Closed after 3 days
    update(made[3], status_id=2)  # Assigned: still open
    mid = performance(admin, agent["uuid"])
    assert (mid["total_jobs"], mid["completed_jobs"], mid["completion_rate"], mid["avg_completion_days"],
            mid["open_jobs"]) == (4, 2, 50.0, 2.5, 2)
    clock.advance(DAY)
    r = admin.post("/api/jobs/recall", json={"job_uuid": made[0], "recall_reason": "Leak is back"})
    assert r.status_code == 200, r.text
    recalled = performance(admin, agent["uuid"])
    assert (recalled["completed_jobs"], recalled["recall_count"], recalled["recall_rate"],
            recalled["avg_completion_days"], recalled["open_jobs"]) == (1, 1, 25.0, 3.0, 3)
    clock.advance(DAY)
    assert admin.post("/api/jobs/mark-recall-completed", json={"job_uuid": made[0]}).status_code == 200
    final = performance(admin, agent["uuid"])
    assert final == {**empty, "total_jobs": 4, "completed_jobs": 2, "completion_rate": 50.0,
                     "avg_completion_days": 4.0, "recall_count": 1, "recall_rate": 25.0, "open_jobs": 2}


def test_documented_agent_performance_matches_the_store(server, admin):
    jobs = [j for j in server.sandbox.store.select("jobs") if j["agent_id"] == 10]
    done = [j for j in jobs if j["status_id"] in (5, 7, 8, 9)]
    data = performance(admin, AGENT_10)
    assert data["agent_name"] == "Agent_001 Surname_001"
    counts = (data["total_jobs"], data["completed_jobs"], data["open_jobs"])
    assert counts == (len(jobs), len(done), len(jobs) - len(done))
    assert data["completion_rate"] == round(len(done) * 100 / len(jobs), 1)
    with server.client(AGENT) as agent:
        assert agent.get("/api/agents/performance").json()["data"] == data


# -- branch assignments and sharing ---------------------------------------------------------------------

def assignments(client, **params):
    r = client.get("/api/agents/branches", params=params)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["count"] == len(body["data"])
    return body["data"]


def test_list_branch_assignments(server, admin):
    rows = assignments(admin)
    expected = [(a["uuid"], b, b == a["branch_id"]) for a in stored_agents(server, lambda a: a["org_id"] == 1)
                for b in a["branch_ids"]]
    assert [(r["agent_uuid"], r["branch_id"], r["is_primary"]) for r in rows] == expected
    shared = next(a for a in stored_agents(server) if len(a["branch_ids"]) > 1)
    one = assignments(admin, agent_uuid=shared["uuid"])
    assert [(r["branch_id"], r["is_primary"]) for r in one] == [(b, b == shared["branch_id"]) for b in
                                                                 shared["branch_ids"]]
    assert {k: one[0][k] for k in ("agent_uuid", "agent_name", "branch_name")} == {
        "agent_uuid": shared["uuid"], "agent_name": " ".join(
            server.sandbox.store.get("agents", shared["ID"])[k] for k in ("first_name", "last_name")),
        "branch_name": server.sandbox.store.raw("branches", shared["branch_id"])["branch_name"]}
    with server.client(OTHER_ADMIN) as other:
        assert_error(other.get("/api/agents/branches", params={"agent_uuid": AGENT_10}), 404, "Agent not found")
    for email in (STAFF, AGENT, CONTRACTOR):  # api.agents.branches.manage (seed 004): not in these roles
        with server.client(email) as client:
            assert_error(client.get("/api/agents/branches"), 403, "permission")


def test_sharing_a_branch_changes_what_the_agent_sees_immediately(server, admin):
    store = server.sandbox.store
    in_2 = next(j for j in store.select("jobs", lambda j: j["branch_id"] == 2))
    count_1 = len(store.select("jobs", lambda j: j["branch_id"] == 1))
    count_2 = len(store.select("jobs", lambda j: j["branch_id"] == 2))
    with server.client(AGENT) as agent:
        get = {"action": "get", "uuid": in_2["uuid"]}
        assert job_total(agent) == count_1
        assert_error(agent.get("/api/jobs/manage", params=get), 404)
        r = link(admin, "assign", 2)
        assert r.json() == OK
        assert branch_ids(server, 10) == [1, 2]
        assert job_total(agent) == count_1 + count_2
        assert agent.get("/api/jobs/manage", params=get).status_code == 200
        assert [(r["branch_id"], r["is_primary"]) for r in assignments(admin, agent_uuid=AGENT_10)] == [
            (1, True), (2, False)]
        assert 10 in ids(agents(admin, branch_id=2))
        assert_error(link(admin, "assign", 2), 400, "already")  # twice: refused, nothing changes
        assert branch_ids(server, 10) == [1, 2]
        assert link(admin, "remove", 2).json() == OK
        assert branch_ids(server, 10) == [1]
        assert job_total(agent) == count_1
        assert_error(agent.get("/api/jobs/manage", params=get), 404)
        assert 10 not in ids(agents(admin, branch_id=2))
        assert_error(link(admin, "remove", 2), 400, "not assigned")


def test_the_sharing_route_assigns_too(server, admin):
    r = link(admin, "assign", 3, path="/api/agents/sharing")
    assert r.json() == OK and branch_ids(server, 10) == [1, 3]
    assert_error(link(admin, "remove", 3, path="/api/agents/sharing"), 400, "action")
    assert branch_ids(server, 10) == [1, 3]


def test_the_primary_branch_cannot_be_removed(server, admin):
    assert_error(link(admin, "remove", 1), 400, "primary")
    assert branch_ids(server, 10) == [1]


@pytest.mark.parametrize(("body", "status", "words"), [
    ({"branch_id": 6}, 404, ("Branch not found",)),  # another organisation's branch
    ({"branch_id": 999}, 404, ("Branch not found",)),
    ({"agent_uuid": "00000000-0000-4000-8000-000000000000"}, 404, ("Agent not found",)),
    ({"branch_id": 5}, 400, ("branch_id", "disabled")),
    ({"branch_id": "two"}, 400, ("branch_id",)),
    ({"branch_id": None}, 400, ("branch_id",)),
    ({"agent_uuid": None}, 400, ("agent_uuid",)),
    ({"action": "move"}, 400, ("action",)),
])
def test_assign_rejects_bad_input_without_changing_anything(server, admin, body, status, words):
    before = [a["branch_ids"] for a in stored_agents(server)]
    payload = {"action": "assign", "agent_uuid": AGENT_10, "branch_id": 2, **body}
    assert_error(admin.post("/api/agents/branches", json=payload), status, *words)
    assert [a["branch_ids"] for a in stored_agents(server)] == before


def test_another_organisations_agent_is_missing(server):
    theirs = stored_agents(server, lambda a: a["org_id"] == 2)[0]
    with server.client() as admin:
        assert_error(link(admin, "assign", 2, agent_uuid=theirs["uuid"]), 404, "Agent not found")
    with server.client(OTHER_ADMIN) as other:
        assert_error(link(other, "assign", 6), 404, "Agent not found")
    assert branch_ids(server, 10) == [1] and branch_ids(server, theirs["ID"]) == theirs["branch_ids"]


def test_assign_needs_csrf_and_the_permission(server):
    with server.client(csrf=False) as admin:
        assert_error(link(admin, "assign", 2), 403, "CSRF")
    for email in (STAFF, AGENT):
        with server.client(email) as client:
            assert_error(link(client, "assign", 2), 403, "permission")
    assert branch_ids(server, 10) == [1]
