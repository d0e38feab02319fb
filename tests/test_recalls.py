"""Recalls over real HTTP: mark (the documented example), complete, cancel, mark-recall-completed with its
documented bodies, the audit trail and e-mails, roles and organisations, archived jobs, bad input, CSRF."""

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

RECALL = "/api/jobs/recall"
DONE = "/api/jobs/mark-recall-completed"
REASON = "Repair was unsuccessful"


def set_status(client, status_id, uuid=JOB_1001):
    r = client.post("/api/jobs/manage", json={"action": "update", "uuid": uuid, "status_id": status_id})
    assert r.status_code == 200, r.text




def audit(server, job_id=1001):
    return [(r["action"], r["reason"], r["previous_status_id"])
            for r in server.sandbox.store.select("job_recalls", lambda r: r["job_id"] == job_id)]


def mails(server):
    store = server.sandbox.store
    return [(m["template"], m["to"]) for m in (store.reveal("emails", e) for e in store.select("emails"))]



def recall(client, **fields):
    return client.post(RECALL, data={"job_uuid": JOB_1001, "recall_reason": REASON, **fields})


def test_documented_example_marks_a_completed_job_recalled(server, admin):
    set_status(admin, 5)
    now = frozen(server)
    r = recall(admin)  # form-encoded, as the curl example
    assert r.status_code == 200, r.text
    assert_envelope_headers(r)
    assert r.json() == {"success": True, "message": "Job marked as recalled successfully", "job_id": 1001,
                        "job_ref": "JOB-001", "is_recall": 1, "action": "marked as recalled"}
    row = job(admin)
    assert (row["status_id"], row["status_name"], row["is_recall"], row["recall_reason"]) == \
        (6, "Recalled", 1, REASON)
    assert row["updated_at"] == now
    assert audit(server) == [("marked", REASON, 5)]
    assert mails(server) == [("job_recalled", "contractor001@example.com")]
    [note] = server.sandbox.store.select("notifications", lambda n: n["job_id"] == 1001)
    assert note["type"] == "job_recalled" and note["contractor_id"] == 20 and note["user_id"] == 4


@pytest.mark.parametrize("status_id", [7, 9])
def test_closed_and_invoiced_jobs_can_be_recalled_and_cancel_restores_them(server, admin, status_id):
    set_status(admin, status_id)
    assert recall(admin).status_code == 200
    now = frozen(server)
    r = recall(admin, is_recall=0, action_type="cancel")
    assert r.status_code == 200, r.text
    assert r.json()["message"] == "Recall cancelled successfully" and r.json()["is_recall"] == 0
    row = job(admin)
    assert (row["status_id"], row["is_recall"], row["recall_reason"], row["updated_at"]) == (status_id, 0, None, now)
    assert audit(server) == [("marked", REASON, status_id), ("cancelled", REASON, 6)]
    assert [t for t, _ in mails(server)] == ["job_recalled", "recall_cancelled"]


def test_completing_a_recall_returns_the_job_to_complete(server, admin):
    set_status(admin, 9)
    recall(admin)
    now = frozen(server)
    r = admin.post(RECALL, json={"job_uuid": JOB_1001, "is_recall": 0})  # action_type defaults to standard
    assert r.status_code == 200, r.text
    assert r.json()["action"] == "recall completed"
    row = job(admin)
    assert (row["status_id"], row["is_recall"], row["completed_at"], row["updated_at"]) == (5, 0, now, now)
    assert [a for a, _, _ in audit(server)] == ["marked", "completed"]
    assert mails(server)[-1] == ("recall_completed", "contractor001@example.com")


def test_a_job_that_is_not_complete_cannot_be_recalled(server, admin):
    before = job(admin)
    assert_error(recall(admin), 400, "completed", "JOB-001", "Open")
    set_status(admin, 5)
    recall(admin)
    assert_error(recall(admin), 400, "already")
    assert audit(server) == [("marked", REASON, 5)]
    assert before["status_id"] == 1


def test_ending_a_recall_needs_a_recalled_job(server, admin):
    set_status(admin, 5)
    for action_type in ("standard", "cancel"):
        assert_error(recall(admin, is_recall=0, action_type=action_type), 400, "not marked as a recall")
    assert job(admin)["status_id"] == 5 and audit(server) == [] and mails(server) == []


def test_mark_recall_completed_documented_success_without_csrf(server, admin):
    set_status(admin, 5)
    recall(admin)
    now = frozen(server)
    with server.client(STAFF, csrf=False) as staff:
        r = staff.post(DONE, json={"job_uuid": JOB_1001})
    assert r.status_code == 200, r.text
    assert r.json() == {"success": True, "message": "Recall marked as completed successfully",
                        "data": {"job_id": 1001, "job_title": "Boiler Service - Unit 001"}}
    row = job(admin)
    assert (row["status_id"], row["is_recall"], row["completed_at"], row["updated_at"]) == (5, 0, now, now)
    assert [a for a, _, _ in audit(server)] == ["marked", "completed"]


def test_mark_recall_completed_documented_error_body(server, admin):
    r = admin.post(DONE, json={"job_uuid": JOB_1001})
    body = assert_error(r, 400, "This job is not marked as a recall")
    assert body == {"success": False, "message": "This job is not marked as a recall",
                    "error": "This job is not marked as a recall"}
    assert job(admin)["status_id"] == 1 and audit(server) == []


def test_seeded_recalled_jobs_can_be_completed_and_cancelled(server, admin):
    seeded = [j for j in server.sandbox.store.select("jobs", lambda j: j["org_id"] == 1 and j["status_id"] == 6)]
    assert len(seeded) >= 2
    assert admin.post(DONE, json={"job_uuid": seeded[0]["uuid"]}).status_code == 200
    r = admin.post(RECALL, json={"job_uuid": seeded[1]["uuid"], "is_recall": 0, "action_type": "cancel"})
    assert r.status_code == 200, r.text
    assert job(admin, seeded[0]["uuid"])["status_id"] == 5
    assert job(admin, seeded[1]["uuid"])["status_id"] == 5  # no recorded previous status: back to Complete


def test_roles_and_organisations(server, admin):
    set_status(admin, 5)
    with server.client(CONTRACTOR) as contractor:
        assert_error(recall(contractor), 403, "permission")
        assert_error(contractor.post(DONE, json={"job_uuid": JOB_1001}), 403, "permission")
    with server.client(OTHER_ADMIN) as other:
        assert_error(recall(other), 404, "Job not found")
        assert_error(other.post(DONE, json={"job_uuid": JOB_1001}), 404, "Job not found")
    outside = job_where(server, lambda j: j["org_id"] == 1 and j["branch_id"] != 1 and j["status_id"] == 5)
    with server.client(AGENT) as agent:
        assert_error(agent.post(RECALL, json={"job_uuid": outside["uuid"], "recall_reason": REASON}), 404)
        assert recall(agent).status_code == 200
        assert agent.post(DONE, json={"job_uuid": JOB_1001}).status_code == 200
    assert [a for a, _, _ in audit(server)] == ["marked", "completed"]
    assert server.sandbox.store.raw("jobs", outside["ID"])["status_id"] == 5


def test_archived_jobs_are_read_only(server, admin):
    archived = job_where(server, lambda j: j["org_id"] == 1 and j["status_id"] == 8)
    assert_error(admin.post(RECALL, json={"job_uuid": archived["uuid"], "recall_reason": REASON}), 403, "archived")
    assert_error(admin.post(DONE, json={"job_uuid": archived["uuid"]}), 403, "archived")
    assert server.sandbox.store.raw("jobs", archived["ID"]) == archived


@pytest.mark.parametrize(("fields", "field"), [
    ({"recall_reason": None}, "recall_reason"),
    ({"recall_reason": "   "}, "recall_reason"),
    ({"is_recall": 2}, "is_recall"),
    ({"is_recall": "yes"}, "is_recall"),
    ({"is_recall": 0, "action_type": "undo"}, "action_type"),
    ({"job_uuid": "JOB-001"}, "job_uuid"),
])
def test_bad_input_is_400_naming_the_field(server, admin, fields, field):
    set_status(admin, 5)
    body = {"job_uuid": JOB_1001, "recall_reason": REASON, **fields}
    assert_error(admin.post(RECALL, json={k: v for k, v in body.items() if v is not None}), 400, field)
    assert job(admin)["status_id"] == 5 and audit(server) == []


def test_recall_needs_a_csrf_token(server, admin):
    set_status(admin, 5)
    with server.client(STAFF, csrf=False) as client:
        assert_error(recall(client), 403, "CSRF")
    assert job(admin)["status_id"] == 5 and audit(server) == []
