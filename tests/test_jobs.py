"""Jobs core over real HTTP: list (filters, search, paging, scoping), get, create, update, delete."""

from __future__ import annotations

import pytest
from conftest import ADMIN, AGENT, API, CONTRACTOR, JOB_1001, STAFF, assert_envelope_headers, assert_error

DOCUMENTED_ROW = {  # the list example of the jobs guide (seed 002), field for field
    "ID": 1001, "uuid": JOB_1001, "job_ref": "JOB-001", "job_title": "Boiler Service - Unit 001",
    "job_description": "Annual boiler service required for property unit 001.", "status_id": 1,
    "status_name": "Open", "priority_id": 2, "priority_name": "Medium", "job_type_id": 3,
    "job_type_name": "Gas & Heating", "agent_id": 10, "contractor_id": 20,
    "full_address": "1 Example Street, Sample Town, EX1 1AA", "job_total_budget": 250.0,
    "contractor_budget": 180.0, "vat_percentage": 20.0, "total_amount": 216.0,
    "date_works_start_date": "2024-06-01", "date_works_end_date": "2024-06-02", "photos_count": 3,
    "documents_count": 1, "is_pinned": False, "created_at": "2024-01-15T09:30:00Z",
    "updated_at": "2024-06-01T14:00:00Z",
}
NEW = {
    "job_title": "Boiler Service - Unit 001", "job_description": "Annual boiler service required.",
    "priority_id": 2, "status_id": 1, "job_type_id": 3, "address_id": 5, "agent_id": 10, "contractor_id": 20,
    "tenants_ids": [100, 101], "job_total_budget": 250, "contractor_budget": 180,
    "date_works_start_date": "2024-06-01", "date_works_end_date": "2024-06-02", "time_range_id": 2,
    "access_details": "Key safe code 1234.", "works_order_ref": "WO-001", "invoice_no": "INV-001",
    "quote_no": "QT-001", "private_contact_name": "Contact_001", "private_contact_email": "contact001@example.com",
}


def jobs(client, **params):
    r = client.get("/api/jobs/manage", params={"action": "list", "limit": 200, **params})
    assert r.status_code == 200, r.text
    assert_envelope_headers(r)
    body = r.json()
    assert body["success"] is True and body["count"] == len(body["data"])
    return body


def all_jobs(client, **params):
    rows, offset = [], 0
    while True:
        page = jobs(client, offset=offset, **params)["data"]
        rows += page
        if len(page) < 200:
            return rows
        offset += 200


def get(client, uuid):
    return client.get("/api/jobs/manage", params={"action": "get", "uuid": uuid})


def create(client, **fields):
    return client.post("/api/jobs/manage", json={"action": "create", **NEW, **fields})


# -- list ------------------------------------------------------------------------------------------

def test_list_rows_carry_every_documented_field(admin):
    row = next(r for r in jobs(admin, status_id=1)["data"] if r["ID"] == 1001)
    assert {k: row[k] for k in DOCUMENTED_ROW} == DOCUMENTED_ROW
    assert row["agent_name"].startswith("Agent_001") and row["contractor_name"].startswith("Contractor_001")


def test_documented_curl_example_status_filter_and_limit(admin):
    body = jobs(admin, status_id=1, limit=10)
    assert 0 < body["count"] <= 10 and body["total"] >= body["count"]
    assert all(r["status_id"] == 1 and r["status_name"] == "Open" for r in body["data"])


@pytest.mark.parametrize(("param", "field", "value"), [
    ("priority_id", "priority_id", 4), ("agent_id", "agent_id", 10), ("contractor_id", "contractor_id", 20),
    ("status_id", "status_id", 8),
])
def test_equality_filters(admin, param, field, value):
    everything = all_jobs(admin)
    expected = [r["ID"] for r in everything if r[field] == value]
    assert expected, "the seeded data should exercise this filter"
    assert [r["ID"] for r in all_jobs(admin, **{param: value})] == expected


def test_created_by_filter(server, admin):
    created = create(admin).json()["job_id"]
    mine = all_jobs(admin, created_by=1)
    assert [r["ID"] for r in mine] == [created]


@pytest.mark.parametrize(("param", "field"), [("has_photos", "photos_count"), ("has_documents", "documents_count")])
def test_has_photos_and_documents(admin, param, field):
    everything = all_jobs(admin)
    with_ = [r["ID"] for r in all_jobs(admin, **{param: "true"})]
    without = [r["ID"] for r in all_jobs(admin, **{param: "false"})]
    assert with_ == [r["ID"] for r in everything if r[field] > 0] and with_
    assert without == [r["ID"] for r in everything if r[field] == 0] and without


def test_free_text_search_covers_title_reference_and_description(admin):
    everything = all_jobs(admin)

    def matching(needle):
        return [r["ID"] for r in everything
                if any(needle.lower() in r[f].lower() for f in ("job_title", "job_ref", "job_description"))]

    for needle in ("JOB-001", "boiler service - UNIT 001", "required for property unit 001", "leak"):
        expected = matching(needle)
        assert expected and [r["ID"] for r in all_jobs(admin, search=needle)] == expected, needle
    assert 1001 in matching("JOB-001")
    assert jobs(admin, search="zzz-no-such-words-zzz")["data"] == []


def test_pagination_pages_through_everything_once(admin):
    total = jobs(admin)["total"]
    seen = []
    for offset in range(0, total, 25):
        body = jobs(admin, limit=25, offset=offset)
        assert body["total"] == total
        seen += [r["ID"] for r in body["data"]]
    assert len(seen) == len(set(seen)) == total
    assert jobs(admin, offset=total)["data"] == []
    default = admin.get("/api/jobs/manage", params={"action": "list"}).json()
    assert default["count"] == 50


@pytest.mark.parametrize(("params", "name"), [
    ({"limit": 0}, "limit"), ({"limit": 201}, "limit"), ({"limit": "ten"}, "limit"), ({"limit": "1.5"}, "limit"),
    ({"offset": -1}, "offset"), ({"offset": "x"}, "offset"), ({"status_id": "open"}, "status_id"),
    ({"has_photos": "maybe"}, "has_photos"), ({"agent_id": "1e3"}, "agent_id"),
])
def test_bad_list_parameters_are_400_naming_the_parameter(admin, params, name):
    assert_error(admin.get("/api/jobs/manage", params={"action": "list", **params}), 400, name)


def test_agents_see_their_branch_and_contractors_their_assignments(server, admin):
    everything = all_jobs(admin)
    branch_of = {r["ID"]: server.sandbox.store.raw("jobs", r["ID"])["branch_id"] for r in everything}
    with server.client(AGENT) as agent:
        seen = all_jobs(agent)
        assert seen and {branch_of[r["ID"]] for r in seen} == {1}
        assert len(seen) == sum(1 for b in branch_of.values() if b == 1)
        outside = next(r for r in everything if branch_of[r["ID"]] != 1)
        assert_error(get(agent, outside["uuid"]), 404, "Job not found")
        assert get(agent, JOB_1001).status_code == 200
    with server.client(CONTRACTOR) as contractor:
        seen = all_jobs(contractor)
        assert seen and all(r["contractor_id"] == 20 for r in seen)
        assert len(seen) == sum(1 for r in everything if r["contractor_id"] == 20)
        other = next(r for r in everything if r["contractor_id"] != 20)
        assert_error(get(contractor, other["uuid"]), 404)


def test_is_pinned_follows_the_caller(server, admin):
    store = server.sandbox.store
    pinned = {r["job_id"] for r in store.select("pins", lambda r: r["user_id"] == 1)}
    assert pinned and 1001 not in pinned
    rows = all_jobs(admin)
    assert {r["ID"] for r in rows if r["is_pinned"]} == pinned
    with server.client(STAFF) as staff:
        assert not any(r["is_pinned"] for r in all_jobs(staff))


# -- get -----------------------------------------------------------------------------------------

def test_get_by_uuid_returns_the_decrypted_private_fields(admin):
    r = get(admin, JOB_1001)
    assert r.status_code == 200
    job = r.json()["data"]
    assert {k: job[k] for k in DOCUMENTED_ROW} == DOCUMENTED_ROW
    assert job["access_details"] == "Key safe code 1234."
    assert job["private_contact_name"] == "Contact_001" and job["private_contact_email"] == "contact001@example.com"
    assert job["tenants_ids"] == [100, 101] and job["address_id"] == 5
    assert job["invoice_no"] == "INV-001" and job["quote_no"] == "QT-001" and job["works_order_ref"] == "WO-001"


def test_get_needs_a_valid_uuid(admin):
    assert_error(admin.get("/api/jobs/manage", params={"action": "get"}), 400, "uuid")
    assert_error(get(admin, "1001"), 400, "uuid")
    assert_error(get(admin, "550e8400-e29b-41d4-a716-000000000000"), 404, "Job not found")


# -- create --------------------------------------------------------------------------------------

def test_create_the_documented_example_and_read_it_back(server, admin):
    r = create(admin)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["success"] is True and body["message"] == "Job created successfully"
    assert isinstance(body["job_id"], int) and body["job_ref"].startswith("JOB-")
    job = get(admin, body["job_uuid"]).json()["data"]
    assert job["ID"] == body["job_id"] and job["job_ref"] == body["job_ref"]
    for key, value in NEW.items():
        assert job[key] == value, key
    assert job["vat_percentage"] == 20.0 and job["total_amount"] == 216.0  # 180 + 20 % VAT
    assert job["created_at"] == job["updated_at"] == server.sandbox.clock.iso()[:17] + job["created_at"][17:]
    assert body["job_id"] in [r["ID"] for r in all_jobs(admin)]
    # Stored encrypted, returned decrypted.
    stored = server.sandbox.store.raw("jobs", body["job_id"])
    assert stored["access_details"].startswith("enc:v1:") and "1234" not in stored["access_details"]


def test_create_with_the_documented_form_body(admin):
    form = {"action": "create", "job_title": "Boiler Service - Unit 001", "job_description": "Annual boiler service",
            "priority_id": "2", "status_id": "1", "job_type_id": "3", "address_id": "5", "contractor_id": "20",
            "vat_percentage": "20.0", "job_total_budget": "250.00", "tenants_ids[]": ["100", "101"]}
    r = admin.post("/api/jobs/manage", data=form)
    assert r.status_code == 201, r.text
    job = get(admin, r.json()["job_uuid"]).json()["data"]
    assert job["tenants_ids"] == [100, 101] and job["job_total_budget"] == 250.0 and job["total_amount"] is None


@pytest.mark.parametrize(("fields", "expected_total", "expected_vat"), [
    ({"contractor_budget": 100, "vat_percentage": 5}, 105.0, 5.0),
    ({"contractor_budget": 100, "vat_percentage": 0}, 100.0, 0.0),
    ({"contractor_budget": 99.99}, 119.99, 20.0),
    ({"contractor_budget": 100, "total_amount": 500}, 500.0, 20.0),
])
def test_vat_defaults_to_20_and_total_is_derived_unless_given(admin, fields, expected_total, expected_vat):
    r = create(admin, **fields)
    job = get(admin, r.json()["job_uuid"]).json()["data"]
    assert job["total_amount"] == expected_total and job["vat_percentage"] == expected_vat


@pytest.mark.parametrize(("fields", "name"), [
    ({"status_id": 99}, "status_id"), ({"priority_id": 99}, "priority_id"), ({"job_type_id": 99}, "job_type_id"),
    ({"address_id": 999999}, "address_id"), ({"agent_id": 999}, "agent_id"), ({"contractor_id": 999}, "contractor_id"),
    ({"tenants_ids": [100, 999999]}, "tenants_ids"), ({"time_range_id": 42}, "time_range_id"),
    ({"priority_id": "high"}, "priority_id"), ({"contractor_budget": "lots"}, "contractor_budget"),
    ({"contractor_budget": -1}, "contractor_budget"), ({"vat_percentage": 101}, "vat_percentage"),
    ({"date_works_start_date": "01/06/2024"}, "date_works_start_date"),
    ({"date_works_start_date": "2024-02-30"}, "date_works_start_date"),
    ({"date_works_end_date": "2024-05-01"}, "date_works_end_date"),
    ({"private_contact_email": "not-an-email"}, "private_contact_email"),
    ({"job_title": ""}, "job_title"), ({"job_title": None}, "job_title"), ({"job_title": ["a"]}, "job_title"),
    ({"job_title": "x" * 256}, "job_title"), ({"tenants_ids": "abc"}, "tenants_ids"),
    ({"status_id": True}, "status_id"),
])
def test_create_rejects_bad_fields_by_name_and_writes_nothing(server, admin, fields, name):
    before = server.sandbox.store.count("jobs")
    assert_error(create(admin, **fields), 400, name)
    assert server.sandbox.store.count("jobs") == before


def test_create_refuses_another_organisations_records(server, admin):
    store = server.sandbox.store
    foreign = {
        "address_id": next(r["ID"] for r in store.select("addresses") if r["org_id"] == 2),
        "agent_id": next(r["ID"] for r in store.select("agents") if r["org_id"] == 2),
        "contractor_id": next(r["ID"] for r in store.select("contractors") if r["org_id"] == 2),
    }
    for name, id_ in foreign.items():
        assert_error(create(admin, **{name: id_}), 400, name)


def test_agents_create_in_their_branches_only(server):
    store = server.sandbox.store
    elsewhere = next(r["ID"] for r in store.select("addresses") if r["org_id"] == 1 and r["branch_id"] != 1)
    with server.client(AGENT) as agent:
        assert create(agent).status_code == 201
        assert_error(create(agent, address_id=elsewhere), 400, "address_id")


@pytest.mark.parametrize("email", [CONTRACTOR])
def test_roles_without_the_manage_key_cannot_write(server, email):
    with server.client(email) as client:
        assert_error(create(client), 403, "You do not have permission to perform this action")
        r = client.post("/api/jobs/manage", json={"action": "update", "uuid": JOB_1001, "job_title": "x"})
        assert_error(r, 403)


@pytest.mark.parametrize("email", [ADMIN, STAFF, API, AGENT])
def test_roles_with_the_manage_key_can_create(server, email):
    with server.client(email) as client:
        assert create(client).status_code == 201


# -- update --------------------------------------------------------------------------------------

def update(client, uuid, **fields):
    return client.post("/api/jobs/manage", json={"action": "update", "uuid": uuid, **fields})


def test_update_changes_only_the_given_fields(server, admin):
    before = get(admin, JOB_1001).json()["data"]
    server.sandbox.clock.advance(3600)
    r = update(admin, JOB_1001, job_title="Boiler Service - Unit 001 (revisited)", access_details="Keys at office.")
    assert r.status_code == 200 and r.json() == {"success": True, "message": "Operation completed successfully"}
    after = get(admin, JOB_1001).json()["data"]
    changed = {k for k in after if after[k] != before[k]}
    assert changed == {"job_title", "access_details", "updated_at"}
    assert after["access_details"] == "Keys at office." and after["updated_at"] > before["updated_at"]


def test_update_recomputes_total_from_budget_and_vat(admin):
    update(admin, JOB_1001, contractor_budget=200)
    assert get(admin, JOB_1001).json()["data"]["total_amount"] == 240.0
    update(admin, JOB_1001, vat_percentage=0)
    assert get(admin, JOB_1001).json()["data"]["total_amount"] == 200.0


def test_update_validates_like_create(admin):
    assert_error(update(admin, JOB_1001, status_id=99), 400, "status_id")
    assert_error(update(admin, JOB_1001, job_title=None), 400, "job_title")
    assert_error(update(admin, JOB_1001, date_works_end_date="2024-05-01"), 400, "date_works_end_date")
    assert_error(admin.post("/api/jobs/manage", json={"action": "update", "job_title": "x"}), 400, "uuid")
    assert get(admin, JOB_1001).json()["data"]["status_id"] == 1


def test_archived_jobs_are_read_only(server, admin):
    archived = jobs(admin, status_id=8)["data"][0]
    before = get(admin, archived["uuid"]).json()["data"]
    assert_error(update(admin, archived["uuid"], job_title="x"), 403, "archived")
    r = admin.post("/api/jobs/manage", json={"action": "delete", "uuid": archived["uuid"]})
    assert_error(r, 403, "archived")
    assert get(admin, archived["uuid"]).json()["data"] == before
    # Archiving through an update makes a job read-only from then on.
    assert update(admin, JOB_1001, status_id=8).status_code == 200
    assert_error(update(admin, JOB_1001, status_id=1), 403)


# -- delete --------------------------------------------------------------------------------------

def test_delete_removes_the_job_and_what_is_attached(server, admin):
    store = server.sandbox.store
    pinned_job = next(r["job_id"] for r in store.select("pins"))
    uuid = store.raw("jobs", pinned_job)["uuid"]
    r = admin.post("/api/jobs/manage", json={"action": "delete", "uuid": uuid})
    assert r.status_code == 200 and r.json()["success"] is True
    assert_error(get(admin, uuid), 404)
    assert not store.select("pins", lambda p: p["job_id"] == pinned_job)
    assert pinned_job not in [row["ID"] for row in all_jobs(admin)]
    assert_error(admin.post("/api/jobs/manage", json={"action": "delete", "uuid": uuid}), 404)


def test_deleted_ids_are_never_reused(admin):
    first = create(admin).json()
    admin.post("/api/jobs/manage", json={"action": "delete", "uuid": first["job_uuid"]})
    second = create(admin).json()
    assert second["job_id"] > first["job_id"] and second["job_uuid"] != first["job_uuid"]


def test_a_disabled_branch_keeps_its_jobs_but_takes_no_new_ones(server, admin):
    store = server.sandbox.store
    store.update("branches", 1, {"is_active": False})
    assert_error(create(admin), 400, "address_id", "disabled")
    assert get(admin, JOB_1001).status_code == 200  # its jobs stay readable
    elsewhere = next(r["ID"] for r in store.select("addresses") if r["org_id"] == 1 and r["branch_id"] == 2)
    assert update(admin, JOB_1001, job_title="still editable").status_code == 200
    assert create(admin, address_id=elsewhere).status_code == 201
    store.update("branches", 1, {"is_active": True})
    assert create(admin).status_code == 201
