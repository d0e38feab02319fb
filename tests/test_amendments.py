"""Amendment requests and amendable fields over real HTTP: the documented submit / list / approve flow on
job 1001, rejection, the reference variant (POST action), role-aware fields, who may action, scoping,
archived jobs, bad values, CSRF."""

from __future__ import annotations

import pytest
from conftest import (
    ADMIN,
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

PATH = "/api/jobs/amend-request"
FIELDS = "/api/jobs/amendable-fields"
DOC = {"job_uuid": JOB_1001, "field_name": "contractor_budget", "requested_value": "220.00",
       "reason": "Additional materials required."}
CONTRACTOR_FIELDS = ["job_description", "contractor_budget", "date_works_start_date", "date_works_end_date",
                     "time_range_id"]


def submit(client, **fields):
    return client.post(PATH, json={**DOC, **fields})


def submitted(client, **fields) -> dict:
    r = submit(client, **fields)
    assert r.status_code == 200, r.text
    return r.json()


def requests(client, **params):
    r = client.get(PATH, params=params)
    assert r.status_code == 200, r.text
    assert_envelope_headers(r)
    body = r.json()
    assert body["success"] is True and body["count"] == len(body["data"])
    return body["data"]


def one(client, uuid) -> dict:
    r = client.get(PATH, params={"uuid": uuid})
    assert r.status_code == 200, r.text
    return r.json()["data"]





def test_documented_flow_contractor_submits_and_staff_approves(server, admin):
    now = frozen(server)
    with server.client(CONTRACTOR) as contractor:
        body = submitted(contractor)
        assert body["success"] is True and body["message"] == "Amendment request submitted"
        [row] = requests(contractor, job_uuid=JOB_1001, status="pending")
    assert row | {"uuid": "-"} == {
        "ID": body["amend_request_id"], "uuid": "-", "job_uuid": JOB_1001, "job_ref": "JOB-001",
        "field_name": "contractor_budget", "current_value": "180.00", "requested_value": "220.00",
        "reason": "Additional materials required.", "status": "pending", "requested_by": "Contractor_001 Surname_001",
        "requested_by_id": 4, "requested_at": now, "actioned_by": None, "actioned_at": None, "notes": None}
    assert row["uuid"] == body["uuid"]
    stored = server.sandbox.store.raw_by_uuid("amend_requests", row["uuid"])  # values encrypted at rest
    assert stored["requested_value"].startswith("enc:v1:") and stored["current_value"].startswith("enc:v1:")
    assert job(admin)["updated_at"] == "2024-06-01T14:00:00Z"  # a proposal does not change the job

    server.sandbox.clock.advance(60)
    later = server.sandbox.clock.iso()
    r = admin.patch(PATH, json={"uuid": row["uuid"], "status": "approved"})
    assert r.status_code == 200, r.text
    assert r.json() == {"success": True, "message": "Amendment request approved"}
    after = job(admin)
    assert (after["contractor_budget"], after["total_amount"], after["updated_at"]) == (220.0, 264.0, later)
    done = one(admin, row["uuid"])
    assert (done["status"], done["actioned_by"], done["actioned_at"]) == ("approved", "Sandbox Admin", later)
    assert requests(admin, job_uuid=JOB_1001, status="pending") == []
    commits = server.sandbox.store.select("job_commits", lambda c: c["job_id"] == 1001)
    assert commits and commits[-1]["kind"] == "amendment"


def test_rejecting_leaves_the_job_unchanged(server, admin):
    uuid = submitted(admin)["uuid"]
    before = job(admin)
    r = admin.patch(PATH, json={"uuid": uuid, "status": "rejected", "notes": "Within the agreed budget."})
    assert r.status_code == 200 and r.json()["message"] == "Amendment request rejected"
    assert job(admin) == before
    [row] = requests(admin, status="rejected")
    assert (row["uuid"], row["notes"]) == (uuid, "Within the agreed budget.")


def test_reference_variant_post_actions(server, admin):
    r = admin.post(PATH, json={"action": "create", **DOC, "field_name": "priority_id", "requested_value": "3"})
    assert r.status_code == 200, r.text
    first = r.json()["amend_request_id"]
    second = submitted(admin, field_name="job_title", requested_value="Boiler Service - Unit 001 (revised)")
    r = admin.post(PATH, json={"action": "approve", "job_uuid": JOB_1001, "amend_request_id": first})
    assert r.status_code == 200 and r.json()["message"] == "Amendment request approved"
    r = admin.post(PATH, json={"action": "reject", "uuid": second["uuid"]})
    assert r.status_code == 200 and r.json()["message"] == "Amendment request rejected"
    row = job(admin)
    assert (row["priority_id"], row["priority_name"], row["job_title"]) == (3, "High", "Boiler Service - Unit 001")
    statuses = {r["ID"]: r["status"] for r in requests(admin, job_uuid=JOB_1001)}
    assert statuses == {first: "approved", second["amend_request_id"]: "rejected"}
    assert_error(admin.post(PATH, json={"action": "approve"}), 400, "amend_request_id")


def test_actioning_twice_or_a_missing_request(server, admin):
    uuid = submitted(admin)["uuid"]
    assert admin.patch(PATH, json={"uuid": uuid, "status": "rejected"}).status_code == 200
    assert_error(admin.patch(PATH, json={"uuid": uuid, "status": "approved"}), 400, "already rejected")
    assert job(admin)["contractor_budget"] == 180.0
    missing = "aa11bb22-cc33-4444-dd55-ee6677889900"
    assert_error(admin.patch(PATH, json={"uuid": missing, "status": "approved"}), 404, "Amendment request not found")
    assert_error(admin.get(PATH, params={"uuid": missing}), 404, "Amendment request not found")
    assert_error(admin.post(PATH, json={"action": "approve", "amend_request_id": 999}), 404, "not found")


def test_contractors_cannot_action_requests_but_agents_in_branch_can(server, admin):
    uuid = submitted(admin)["uuid"]
    with server.client(CONTRACTOR) as contractor:
        assert_error(contractor.patch(PATH, json={"uuid": uuid, "status": "approved"}), 403, "staff and agents")
        assert_error(contractor.post(PATH, json={"action": "approve", "uuid": uuid}), 403, "staff and agents")
    assert one(admin, uuid)["status"] == "pending"
    with server.client(AGENT) as agent:
        assert agent.patch(PATH, json={"uuid": uuid, "status": "approved"}).status_code == 200
    assert job(admin)["contractor_budget"] == 220.0


def test_scoping_by_branch_assignment_and_organisation(server, admin):
    outside = job_where(server, lambda j: j["org_id"] == 1 and j["branch_id"] != 1 and j["contractor_id"] != 20
                        and j["status_id"] != 8)
    foreign = submitted(admin, job_uuid=outside["uuid"])["uuid"]
    mine = submitted(admin)["uuid"]
    for email in (AGENT, CONTRACTOR):
        with server.client(email) as client:
            assert [r["uuid"] for r in requests(client)] == [mine]
            assert_error(client.get(PATH, params={"uuid": foreign}), 404)
            assert_error(client.get(PATH, params={"job_uuid": outside["uuid"]}), 404, "Job not found")
            assert_error(submit(client, job_uuid=outside["uuid"]), 404, "Job not found")
            assert_error(client.get(FIELDS, params={"job_uuid": outside["uuid"]}), 404, "Job not found")
    with server.client(AGENT) as agent:
        assert_error(agent.patch(PATH, json={"uuid": foreign, "status": "approved"}), 404)
    with server.client(OTHER_ADMIN) as other:
        assert requests(other) == []
        assert_error(submit(other), 404, "Job not found")
        assert_error(other.patch(PATH, json={"uuid": mine, "status": "approved"}), 404)
        assert_error(other.get(FIELDS, params={"job_uuid": JOB_1001}), 404)
    assert [r["status"] for r in requests(admin)] == ["pending", "pending"]


def test_amendable_fields_are_role_aware(server, admin):
    r = admin.get(FIELDS, params={"job_uuid": JOB_1001})
    assert r.status_code == 200, r.text
    assert_envelope_headers(r)
    data = r.json()["data"]
    assert (data["job_uuid"], data["job_ref"], data["user_type"]) == (JOB_1001, "JOB-001", "staff")
    fields = {f["key"]: f for f in data["fields"]}
    assert fields["job_title"] == {"key": "job_title", "label": "Job Title", "type": "text",
                                   "current_value": "Boiler Service - Unit 001", "required": True,
                                   "description": "The title/name of the job"}
    assert fields["job_description"]["type"] == "textarea" and fields["job_description"]["required"] is False
    assert fields["contractor_budget"]["current_value"] == 180.0
    assert {o["value"] for o in fields["priority_id"]["options"]} == {1, 2, 3, 4}
    assert {"job_total_budget", "vat_percentage", "works_order_ref", "quote_no", "access_details"} <= fields.keys()
    with server.client(CONTRACTOR) as contractor:
        data = contractor.get(FIELDS, params={"job_uuid": JOB_1001}).json()["data"]
        assert data["user_type"] == "contractor" and [f["key"] for f in data["fields"]] == CONTRACTOR_FIELDS
        assert_error(submit(contractor, field_name="job_title", requested_value="New"), 400, "field_name")
    with server.client(AGENT) as agent:
        data = agent.get(FIELDS, params={"job_uuid": JOB_1001}).json()["data"]
        assert data["user_type"] == "agent" and len(data["fields"]) == len(fields)
    assert requests(admin) == []


@pytest.mark.parametrize(("fields", "name"), [
    ({"field_name": "status_id", "requested_value": "5"}, "field_name"),
    ({"field_name": "no_such_field"}, "field_name"),
    ({"requested_value": "lots"}, "requested_value"),
    ({"requested_value": "-5"}, "requested_value"),
    ({"field_name": "date_works_end_date", "requested_value": "next week"}, "requested_value"),
    ({"field_name": "time_range_id", "requested_value": "99"}, "requested_value"),
    ({"requested_value": ""}, "requested_value"),
    ({"reason": None}, "reason"),
    ({"job_uuid": None}, "job_uuid"),
    ({"action": "escalate"}, "action"),
])
def test_bad_submissions_are_400_naming_the_field(server, admin, fields, name):
    body = {k: v for k, v in {**DOC, **fields}.items() if v is not None}
    assert_error(admin.post(PATH, json=body), 400, name)
    assert requests(admin) == []


def test_approval_validates_like_a_job_update(server, admin):
    uuid = submitted(admin, field_name="date_works_end_date", requested_value="2024-05-01")["uuid"]
    assert_error(admin.patch(PATH, json={"uuid": uuid, "status": "approved"}), 400, "date_works_end_date")
    assert job(admin)["date_works_end_date"] == "2024-06-02"
    assert one(admin, uuid)["status"] == "pending"
    assert_error(admin.patch(PATH, json={"uuid": uuid, "status": "done"}), 400, "status")
    vat = submitted(admin, field_name="vat_percentage", requested_value="5")["uuid"]
    assert admin.patch(PATH, json={"uuid": vat, "status": "approved"}).status_code == 200
    assert (job(admin)["vat_percentage"], job(admin)["total_amount"]) == (5.0, 189.0)


def test_archived_jobs_are_read_only(server, admin):
    archived = job_where(server, lambda j: j["org_id"] == 1 and j["status_id"] == 8)
    assert_error(submit(admin, job_uuid=archived["uuid"]), 403, "archived")
    row = server.sandbox.store.insert("amend_requests", {
        "ID": None, "uuid": None, "org_id": 1, "job_id": archived["ID"], "field_name": "contractor_budget",
        "current_value": "1.00", "requested_value": "2.00", "reason": "r", "status": "pending", "requested_by": 1,
        "requested_at": archived["created_at"], "actioned_by": None, "actioned_at": None, "notes": None})
    assert_error(admin.patch(PATH, json={"uuid": row["uuid"], "status": "approved"}), 403, "archived")
    assert server.sandbox.store.raw("jobs", archived["ID"]) == archived
    assert admin.get(FIELDS, params={"job_uuid": archived["uuid"]}).json()["data"]["fields"] == []


def test_writes_need_a_csrf_token(server, admin):
    uuid = submitted(admin)["uuid"]
    with server.client(STAFF, csrf=False) as client:
        assert_error(submit(client), 403, "CSRF")
        assert_error(client.patch(PATH, json={"uuid": uuid, "status": "approved"}), 403, "CSRF")
        assert_error(client.post(PATH, json={"action": "approve", "uuid": uuid}), 403, "CSRF")
        assert [r["status"] for r in requests(client)] == ["pending"]
    assert job(admin)["contractor_budget"] == 180.0


def test_each_manager_role_can_submit(server):
    for email in (ADMIN, STAFF, AGENT, CONTRACTOR):
        with server.client(email) as client:
            submitted(client, requested_value="200.00", reason=f"by {email}")
    with server.client(ADMIN) as admin:
        assert [r["requested_by_id"] for r in requests(admin)] == [1, 2, 3, 4]
