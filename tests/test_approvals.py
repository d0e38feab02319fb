"""The approval gate over real HTTP: the documented approve example on job 1001, the no-contractor rule,
reject, jobs not at the gate, roles and organisations, archived jobs, bad input, CSRF."""

from __future__ import annotations

import pytest
from conftest import (
    AGENT,
    CONTRACTOR,
    JOB_1001,
    OTHER_ADMIN,
    STAFF,
    assert_envelope_headers,
    assert_error,
    frozen,
    job,
    job_where,
)

PATH = "/api/jobs/approval-gate"
NOTES = "Checked on site — proceed."


def update(client, uuid=JOB_1001, **fields):
    r = client.post("/api/jobs/manage", json={"action": "update", "uuid": uuid, **fields})
    assert r.status_code == 200, r.text



def decide(client, decision="approve", uuid=JOB_1001, **fields):
    return client.post(PATH, json={"job_uuid": uuid, "decision": decision, "notes": NOTES, **fields})


def decisions(server, job_id=1001):
    return [(r["decision"], r["notes"], r["user_id"])
            for r in server.sandbox.store.select("job_approvals", lambda r: r["job_id"] == job_id)]




def test_documented_example_approves_and_progresses_the_job(server, admin):
    update(admin, status_id=4)
    now = frozen(server)
    r = decide(admin)
    assert r.status_code == 200, r.text
    assert_envelope_headers(r)
    body = r.json()
    assert body["success"] is True and body["message"] == "Job approved and progressed to next status"
    assert body["data"] == {"job_id": 1001, "job_ref": "JOB-001", "decision": "approve", "status_id": 3,
                            "status_name": "In Progress"}
    row = job(admin)
    assert (row["status_id"], row["status_name"], row["updated_at"]) == (3, "In Progress", now)
    assert decisions(server) == [("approve", NOTES, 1)]
    [commit] = server.sandbox.store.select("job_commits", lambda c: c["job_id"] == 1001 and c["kind"] == "approval")
    assert commit["user_id"] == 1


def test_a_job_without_a_contractor_goes_back_to_open(server, admin):
    update(admin, status_id=4, contractor_id=None)
    assert decide(admin).status_code == 200
    assert job(admin)["status_id"] == 1


def test_reject_keeps_the_job_at_the_gate_and_records_the_notes(server, admin):
    update(admin, status_id=4)
    now = frozen(server)
    r = decide(admin, "reject", notes="Quote too high.")
    assert r.status_code == 200, r.text
    assert r.json()["data"]["status_id"] == 4 and "rejected" in r.json()["message"]
    row = job(admin)
    assert (row["status_id"], row["updated_at"]) == (4, now)
    assert decisions(server) == [("reject", "Quote too high.", 1)]
    r = admin.post(PATH, json={"job_uuid": JOB_1001, "decision": "approve"})  # notes are optional
    assert r.status_code == 200 and job(admin)["status_id"] == 3
    assert decisions(server)[-1] == ("approve", None, 1)


def test_a_job_not_at_the_gate_is_400(server, admin):
    before = job(admin)
    assert_error(decide(admin), 400, "not at an approval gate", "Open")
    assert job(admin) == before and decisions(server) == []
    update(admin, status_id=4)
    assert decide(admin).status_code == 200
    assert_error(decide(admin), 400, "not at an approval gate", "In Progress")  # already past it
    assert len(decisions(server)) == 1


def test_seeded_jobs_at_the_gate_can_be_approved(server, admin):
    seeded = job_where(server, lambda j: j["org_id"] == 1 and j["status_id"] == 4)
    assert decide(admin, uuid=seeded["uuid"]).status_code == 200
    assert job(admin, seeded["uuid"])["status_id"] == (3 if seeded["contractor_id"] else 1)


def test_roles_and_organisations(server, admin):
    update(admin, status_id=4)
    outside = job_where(server, lambda j: j["org_id"] == 1 and j["branch_id"] != 1 and j["status_id"] == 4)
    with server.client(CONTRACTOR) as contractor:
        assert_error(decide(contractor), 403, "permission")
    with server.client(OTHER_ADMIN) as other:
        assert_error(decide(other), 404, "Job not found")
    with server.client(AGENT) as agent:
        assert_error(decide(agent, uuid=outside["uuid"]), 404, "Job not found")
        assert decide(agent, "reject").status_code == 200
    with server.client(STAFF) as staff:
        assert decide(staff).status_code == 200
    assert [(d, u) for d, _, u in decisions(server)] == [("reject", 3), ("approve", 2)]
    assert server.sandbox.store.raw("jobs", outside["ID"])["status_id"] == 4


def test_archived_jobs_are_read_only(server, admin):
    archived = job_where(server, lambda j: j["org_id"] == 1 and j["status_id"] == 8)
    assert_error(decide(admin, uuid=archived["uuid"]), 403, "archived")
    assert server.sandbox.store.raw("jobs", archived["ID"]) == archived
    assert server.sandbox.store.select("job_approvals") == []


@pytest.mark.parametrize(("body", "field"), [
    ({"job_uuid": JOB_1001, "decision": "maybe"}, "decision"),
    ({"job_uuid": JOB_1001}, "decision"),
    ({"decision": "approve"}, "job_uuid"),
    ({"job_uuid": "1001", "decision": "approve"}, "job_uuid"),
    ({"job_uuid": JOB_1001, "decision": "approve", "notes": "x" * 2001}, "notes"),
])
def test_bad_input_is_400_naming_the_field(server, admin, body, field):
    update(admin, status_id=4)
    assert_error(admin.post(PATH, json=body), 400, field)
    assert job(admin)["status_id"] == 4 and decisions(server) == []


def test_the_gate_needs_a_csrf_token(server, admin):
    update(admin, status_id=4)
    with server.client(STAFF, csrf=False) as client:
        assert_error(decide(client), 403, "CSRF")
    assert job(admin)["status_id"] == 4 and decisions(server) == []
