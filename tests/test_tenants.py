"""Tenants over real HTTP: list/get on both documented paths (documented rows, filters, paging), create
(top-level ids, encryption at rest), update, delete (refused while jobs list the tenant), assign-address
(and the address_id / unassigned filters after it), the GDPR report and its audit rows, each role,
other organisations, bad input, CSRF."""

from __future__ import annotations

import pytest
from conftest import AGENT, API, CONTRACTOR, OTHER_ADMIN, STAFF, assert_envelope_headers, assert_error

LIST, MANAGE = "/api/tenants/list", "/api/tenants/manage"
ASSIGN, GDPR = "/api/tenants/assign-address", "/api/tenants/gdpr-report"
T100, T101 = "990e8400-e29b-41d4-a716-446655440001", "990e8400-e29b-41d4-a716-446655440002"
FORBIDDEN = "You do not have permission to perform this action"
DOCUMENTED = {"ID": 100, "uuid": T100, "tenant_name": "Tenant_001", "tenant_email": "tenant001@example.com",
              "tenant_number_primary": "07700000003", "tenant_number_work": "01200000002", "address_id": 5,
              "full_address": "1 Example Street, Sample Town, EX1 1AA", "created_at": "2024-01-10T08:00:00Z"}
CONTACT = ("tenant_name", "tenant_email", "tenant_number_primary", "tenant_number_work")


def tenants(client, path=LIST, **params) -> dict:
    r = client.get(path, params={"action": "list", "limit": 200, **params})
    assert r.status_code == 200, r.text
    assert_envelope_headers(r)
    body = r.json()
    assert body["success"] is True and body["count"] == len(body["data"])
    return body


def ids(client, **params) -> set[int]:
    return {t["ID"] for t in tenants(client, **params)["data"]}


def get(client, uuid, path=LIST):
    return client.get(path, params={"action": "get", "uuid": uuid})


def stored(server, keep=lambda r: True) -> list[dict]:
    return server.sandbox.store.select("tenants", keep)


def branch_of(server, tenant: dict) -> int | None:
    address = server.sandbox.store.raw("addresses", tenant["address_id"])
    return address["branch_id"] if address else None


def outside_branch_1(server) -> dict:
    return next(t for t in stored(server) if t["org_id"] == 1 and branch_of(server, t) not in (None, 1))


def create(client, path=LIST, **fields):
    return client.post(path, json={"tenant_name": "Jo Bloggs", **fields})


# -- list and get --------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", [LIST, MANAGE])
def test_list_and_get_on_both_paths_show_the_documented_tenant(server, admin, path):
    body = tenants(admin, path)
    org_1 = stored(server, lambda r: r["org_id"] == 1)
    assert body["total"] == len(org_1) == 80 and [t["ID"] for t in body["data"]] == [t["ID"] for t in org_1]
    first = body["data"][0]
    assert {k: first[k] for k in DOCUMENTED} == DOCUMENTED
    jobs = server.sandbox.store.select("jobs", lambda r: 100 in r["tenants_ids"])
    assert first["is_active"] is True and first["job_count"] == len(jobs) > 0
    r = get(admin, T100, path)
    assert r.status_code == 200, r.text
    assert r.json()["data"] == first


def test_filters_search_and_paging(server, admin):
    assert ids(admin, search="tenant_00") == {100, 101}
    assert ids(admin, search="TENANT_002") == {101}
    assert ids(admin, address_id=5) == {100, 101}
    org_1 = stored(server, lambda r: r["org_id"] == 1)
    unassigned = {t["ID"] for t in org_1 if t["address_id"] is None}
    inactive = {t["ID"] for t in org_1 if not t["is_active"]}
    assert unassigned and inactive
    assert ids(admin, unassigned="true") == unassigned
    assert ids(admin, unassigned="false") == {t["ID"] for t in org_1} - unassigned
    assert ids(admin, active="false") == inactive
    assert ids(admin, active=1, address_id=5) == {100, 101}
    page = tenants(admin, limit=10, offset=5)
    assert [t["ID"] for t in page["data"]] == [t["ID"] for t in org_1[5:15]] and page["total"] == 80
    assert_error(admin.get(LIST, params={"action": "list", "limit": 201}), 400, "limit")
    assert_error(admin.get(LIST, params={"action": "list", "unassigned": "maybe"}), 400, "unassigned")


def test_get_errors(server, admin):
    assert_error(admin.get(LIST, params={"action": "get"}), 400, "uuid")
    assert_error(get(admin, "not-a-uuid"), 400, "uuid")
    assert_error(get(admin, "00000000-0000-4000-8000-000000000000"), 404, "Tenant not found")
    other = next(t for t in stored(server) if t["org_id"] == 2)
    assert_error(get(admin, other["uuid"], MANAGE), 404, "Tenant not found")


# -- roles ---------------------------------------------------------------------------------------------

def test_agent_sees_and_edits_only_tenants_of_their_branches(server):
    expected = {t["ID"] for t in stored(server) if t["org_id"] == 1 and branch_of(server, t) == 1}
    outside = outside_branch_1(server)
    with server.client(AGENT) as agent:
        assert ids(agent) == expected and 100 in expected
        assert {t["ID"] for t in tenants(agent, MANAGE)["data"]} == expected
        assert get(agent, T100).status_code == 200
        assert_error(get(agent, outside["uuid"]), 404, "Tenant not found")
        assert_error(agent.post(MANAGE, json={"action": "update", "uuid": outside["uuid"], "tenant_name": "X"}),
                     404, "Tenant not found")
        assert_error(agent.post(MANAGE, json={"action": "delete", "uuid": outside["uuid"]}), 404, "Tenant not found")
        r = agent.post(MANAGE, json={"action": "update", "uuid": T101, "tenant_number_work": None})
        assert r.status_code == 200, r.text
        assert get(agent, T101).json()["data"]["tenant_number_work"] is None
        made = create(agent, tenant_address_id=5)
        assert made.status_code == 200, made.text
        assert get(agent, made.json()["tenant_uuid"]).status_code == 200
        branch_2 = server.sandbox.store.select("addresses", lambda r: r["branch_id"] == 2)[0]["ID"]
        assert_error(create(agent), 400, "tenant_address_id", "agents")
        assert_error(create(agent, tenant_address_id=branch_2), 400, "tenant_address_id")
        assert_error(agent.post(ASSIGN, json={"tenant_uuid": T100, "address_id": 5}), 403, FORBIDDEN)
        assert_error(agent.get(GDPR, params={"tenant_uuid": T100}), 403, FORBIDDEN)
    assert server.sandbox.store.get("tenants", outside["ID"])["tenant_name"] != "X"


def test_contractor_has_no_tenant_access(server):
    before = len(stored(server))
    with server.client(CONTRACTOR) as contractor:
        assert_error(contractor.get(LIST, params={"action": "list"}), 403, FORBIDDEN)
        assert_error(get(contractor, T100, MANAGE), 403, FORBIDDEN)
        assert_error(create(contractor), 403, FORBIDDEN)
        assert_error(contractor.post(MANAGE, json={"action": "delete", "uuid": T101}), 403, FORBIDDEN)
        assert_error(contractor.post(ASSIGN, json={"tenant_uuid": T100, "address_id": 5}), 403, FORBIDDEN)
        assert_error(contractor.get(GDPR, params={"tenant_uuid": T100}), 403, FORBIDDEN)
    assert len(stored(server)) == before


@pytest.mark.parametrize("email", [STAFF, API])
def test_staff_and_api_accounts_manage_every_tenant_of_the_org(server, email):
    outside = outside_branch_1(server)
    with server.client(email) as client:
        assert len(ids(client)) == 80
        r = client.post(MANAGE, json={"action": "update", "uuid": outside["uuid"], "tenant_name": "Renamed"})
        assert r.status_code == 200, r.text
        assert get(client, outside["uuid"]).json()["data"]["tenant_name"] == "Renamed"
        assert client.post(ASSIGN, json={"tenant_uuid": outside["uuid"], "address_id": 5}).status_code == 200
        assert client.get(GDPR, params={"tenant_uuid": T100}).status_code == 200


def test_other_organisation_is_404(server):
    with server.client(OTHER_ADMIN) as other:
        assert ids(other) == {t["ID"] for t in stored(server) if t["org_id"] == 2}
        assert_error(get(other, T100), 404, "Tenant not found")
        assert_error(other.post(MANAGE, json={"action": "update", "uuid": T100, "tenant_name": "X"}), 404)
        assert_error(other.post(MANAGE, json={"action": "delete", "uuid": T100}), 404)
        assert_error(other.post(ASSIGN, json={"tenant_uuid": T100, "address_id": 5}), 404, "Tenant not found")
        assert_error(other.get(GDPR, params={"tenant_uuid": T100}), 404, "Tenant not found")
        mine = next(t for t in stored(server) if t["org_id"] == 2)
        assert_error(other.post(ASSIGN, json={"tenant_uuid": mine["uuid"], "address_id": 5}), 404, "Address not found")
        assert_error(create(other, tenant_address_id=5), 400, "tenant_address_id")
    assert server.sandbox.store.get("tenants", 100)["tenant_name"] == "Tenant_001"
    assert server.sandbox.store.select("gdpr_requests") == []


# -- create, update, delete ----------------------------------------------------------------------------

def test_create_returns_top_level_ids_and_encrypts_contact_fields(server, admin):
    fields = {"tenant_name": "Jo Bloggs", "tenant_email": "jo.bloggs@example.com",
              "tenant_number_primary": "07700 900123", "tenant_number_work": "+44 20 7946 0000",
              "tenant_address_id": 5}
    r = admin.post(LIST, json=fields)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"success", "message", "tenant_id", "tenant_uuid"} and body["success"] is True
    raw = server.sandbox.store.raw("tenants", body["tenant_id"])
    assert raw["uuid"] == body["tenant_uuid"] and raw["org_id"] == 1 and raw["address_id"] == 5
    for name in CONTACT:
        assert raw[name].startswith("enc:v1:") and fields[name] not in raw[name]
    row = get(admin, body["tenant_uuid"]).json()["data"]
    assert {k: row[k] for k in CONTACT} == {k: fields[k] for k in CONTACT}
    assert (row["address_id"], row["is_active"], row["job_count"]) == (5, True, 0)
    assert body["tenant_id"] in ids(admin, address_id=5) and body["tenant_id"] in ids(admin, search="jo blog")


def test_create_by_form_and_on_the_manage_path(server, admin):
    r = admin.post(LIST, data={"tenant_name": "Form Tenant", "tenant_number_primary": "01632 960001"})
    assert r.status_code == 200, r.text
    row = get(admin, r.json()["tenant_uuid"]).json()["data"]
    assert (row["tenant_name"], row["address_id"], row["tenant_email"]) == ("Form Tenant", None, None)
    assert row["ID"] in ids(admin, unassigned="true")
    guide = admin.post(MANAGE, json={"tenant_name": "Guide Tenant", "tenant_email": "guide@example.com"})
    assert guide.status_code == 200, guide.text
    assert get(admin, guide.json()["tenant_uuid"], MANAGE).json()["data"]["tenant_email"] == "guide@example.com"


@pytest.mark.parametrize("fields, word", [
    ({"tenant_name": None}, "tenant_name"),
    ({"tenant_name": "  "}, "tenant_name"),
    ({"tenant_name": "X" * 256}, "tenant_name"),
    ({"tenant_email": "nope"}, "tenant_email"),
    ({"tenant_number_primary": "12345"}, "tenant_number_primary"),
    ({"tenant_number_work": "call me"}, "tenant_number_work"),
    ({"tenant_address_id": 99999}, "tenant_address_id"),
    ({"tenant_address_id": "five"}, "tenant_address_id"),
])
def test_create_bad_input_is_400_and_creates_nothing(server, admin, fields, word):
    before = len(stored(server))
    assert_error(create(admin, **fields), 400, word)
    assert len(stored(server)) == before


def test_other_orgs_address_cannot_be_linked_on_create(server, admin):
    theirs = server.sandbox.store.select("addresses", lambda r: r["org_id"] == 2)[0]["ID"]
    before = len(stored(server))
    assert_error(create(admin, tenant_address_id=theirs), 400, "tenant_address_id")
    assert len(stored(server)) == before


def test_update_changes_fields_and_keeps_them_encrypted(server, admin):
    r = admin.post(MANAGE, json={"action": "update", "uuid": T100, "tenant_name": "Tenant One",
                                 "tenant_email": "one@example.com", "tenant_number_primary": "07700 900999",
                                 "tenant_number_work": None, "is_active": False})
    assert r.status_code == 200, r.text
    assert r.json() == {"success": True, "message": "Operation completed successfully"}
    row = get(admin, T100).json()["data"]
    assert (row["tenant_name"], row["tenant_email"], row["tenant_number_primary"], row["tenant_number_work"],
            row["is_active"]) == ("Tenant One", "one@example.com", "07700 900999", None, False)
    raw = server.sandbox.store.raw("tenants", 100)
    assert raw["tenant_name"].startswith("enc:v1:") and raw["tenant_number_work"] is None
    assert 100 in ids(admin, active="false") and ids(admin, search="tenant one") == {100}
    form = admin.post(MANAGE, data={"action": "update", "uuid": T100, "is_active": "true"})
    assert form.status_code == 200 and get(admin, T100).json()["data"]["is_active"] is True


@pytest.mark.parametrize("body, status, word", [
    ({"tenant_name": "X"}, 400, "uuid"),
    ({"uuid": "00000000-0000-4000-8000-000000000000", "tenant_name": "X"}, 404, "Tenant not found"),
    ({"uuid": T100, "tenant_name": None}, 400, "tenant_name"),
    ({"uuid": T100, "tenant_name": "X", "tenant_email": "bad"}, 400, "tenant_email"),
    ({"uuid": T100, "tenant_name": "X", "tenant_number_primary": "0"}, 400, "tenant_number_primary"),
    ({"uuid": T100, "tenant_name": "X", "tenant_address_id": 99999}, 400, "tenant_address_id"),
    ({"uuid": T100, "tenant_name": "X", "is_active": "sometimes"}, 400, "is_active"),
])
def test_update_errors_change_nothing(server, admin, body, status, word):
    assert_error(admin.post(MANAGE, json={"action": "update", **body}), status, word)
    assert server.sandbox.store.get("tenants", 100)["tenant_name"] == "Tenant_001"


def test_delete_refuses_a_tenant_on_jobs_and_deletes_others(server, admin):
    jobs = server.sandbox.store.select("jobs", lambda r: 100 in r["tenants_ids"])
    body = assert_error(admin.post(MANAGE, json={"action": "delete", "uuid": T100}), 400, f"{len(jobs)} job(s)")
    assert "JOB-001" in body["error"] and "is_active" in body["error"]
    assert get(admin, T100).status_code == 200
    made = create(admin).json()
    r = admin.post(MANAGE, json={"action": "delete", "uuid": made["tenant_uuid"]})
    assert r.status_code == 200, r.text
    assert_error(get(admin, made["tenant_uuid"]), 404, "Tenant not found")
    assert server.sandbox.store.raw("tenants", made["tenant_id"]) is None
    assert_error(admin.post(MANAGE, json={"action": "delete", "uuid": made["tenant_uuid"]}), 404)
    assert_error(admin.post(MANAGE, json={"action": "delete"}), 400, "uuid")


def test_writes_need_csrf(server):
    before = len(stored(server))
    with server.client(csrf=False) as admin:
        assert_error(create(admin), 403, "CSRF")
        assert_error(create(admin, MANAGE), 403, "CSRF")
        assert_error(admin.post(MANAGE, json={"action": "update", "uuid": T100, "tenant_name": "X"}), 403, "CSRF")
        assert_error(admin.post(MANAGE, json={"action": "delete", "uuid": T101}), 403, "CSRF")
        assert_error(admin.post(ASSIGN, json={"tenant_uuid": T100, "address_id": 6}), 403, "CSRF")
    assert len(stored(server)) == before
    t = server.sandbox.store.get("tenants", 100)
    assert (t["tenant_name"], t["address_id"]) == ("Tenant_001", 5)


# -- assign-address ------------------------------------------------------------------------------------

def test_assign_address_moves_the_tenant_between_filters(server, admin):
    uuid = create(admin).json()["tenant_uuid"]
    row = get(admin, uuid).json()["data"]
    assert row["ID"] in ids(admin, unassigned="true") and row["ID"] not in ids(admin, address_id=5)
    r = admin.post(ASSIGN, json={"tenant_uuid": uuid, "address_id": 5})
    assert r.status_code == 200, r.text
    assert r.json() == {"success": True, "message": "Operation completed successfully"}
    assert ids(admin, address_id=5) == {100, 101, row["ID"]}
    assert row["ID"] not in ids(admin, unassigned="true")
    assert get(admin, uuid).json()["data"]["full_address"] == DOCUMENTED["full_address"]
    target = server.sandbox.store.raw("addresses", 6)
    r = admin.post(ASSIGN, data={"tenant_uuid": uuid, "address_uuid": target["uuid"]})  # form, by address uuid
    assert r.status_code == 200, r.text
    assert row["ID"] in ids(admin, address_id=6) and row["ID"] not in ids(admin, address_id=5)
    assert server.sandbox.store.raw("tenants", row["ID"])["address_id"] == 6


@pytest.mark.parametrize("body, status, word", [
    ({"address_id": 5}, 400, "tenant_uuid"),
    ({"tenant_uuid": T100}, 400, "address_id"),
    ({"tenant_uuid": T100, "address_id": "x"}, 400, "address_id"),
    ({"tenant_uuid": "00000000-0000-4000-8000-000000000000", "address_id": 6}, 404, "Tenant not found"),
    ({"tenant_uuid": T100, "address_id": 99999}, 404, "Address not found"),
    ({"tenant_uuid": T100, "address_uuid": "00000000-0000-4000-8000-000000000000"}, 404, "Address not found"),
    ({"tenant_uuid": T100, "address_id": "other-org"}, 404, "Address not found"),
])
def test_assign_address_errors_change_nothing(server, admin, body, status, word):
    if body.get("address_id") == "other-org":
        body = {**body, "address_id": server.sandbox.store.select("addresses", lambda r: r["org_id"] == 2)[0]["ID"]}
    assert_error(admin.post(ASSIGN, json=body), status, word)
    assert server.sandbox.store.raw("tenants", 100)["address_id"] == 5


# -- GDPR report ---------------------------------------------------------------------------------------

def test_gdpr_report_exports_linked_records_and_is_audited(server, admin):
    server.sandbox.clock.freeze()
    now = server.sandbox.clock.iso()
    r = admin.get(GDPR, params={"tenant_uuid": T100})
    assert r.status_code == 200, r.text
    assert_envelope_headers(r)
    data = r.json()["data"]
    assert data["generated_at"] == now and data["expires_at"] > now and "expires" in r.json()["message"]
    tenant = data["tenant"]
    assert {k: tenant[k] for k in ("ID", "uuid", *CONTACT)} == {k: DOCUMENTED[k] for k in ("ID", "uuid", *CONTACT)}
    assert tenant["address"]["full_address"] == DOCUMENTED["full_address"]
    store = server.sandbox.store
    linked = store.select("jobs", lambda j: 100 in j["tenants_ids"])
    assert [j["ID"] for j in data["jobs"]] == [j["ID"] for j in linked] and 1001 in [j["ID"] for j in data["jobs"]]
    notes = store.select("case_notes", lambda n: n["job_id"] in {j["ID"] for j in linked})
    assert [n["ID"] for n in data["case_notes"]] == [n["ID"] for n in notes]
    documented = next(n for n in data["case_notes"] if n["job_id"] == 1001)
    assert documented["message"] == "Contractor attended site and completed boiler service."
    assert data["previous_reports"] == []
    rows = store.select("gdpr_requests")
    assert len(rows) == 1
    audit = rows[0]
    assert (audit["org_id"], audit["tenant_id"], audit["requested_by"], audit["created_at"]) == (1, 100, 1, now)
    assert audit["uuid"] == data["report_id"] and audit["expires_at"] == data["expires_at"]
    server.sandbox.clock.advance(24 * 3600)
    assert data["expires_at"] == server.sandbox.clock.iso()  # the report is kept 24 hours
    with server.client(STAFF) as staff:
        again = staff.get(GDPR, params={"tenant_uuid": T100})
        assert again.status_code == 200, again.text
        assert again.json()["data"]["previous_reports"] == [
            {"report_id": data["report_id"], "requested_by": 1, "generated_at": now}]
    assert [(r["tenant_id"], r["requested_by"]) for r in store.select("gdpr_requests")] == [(100, 1), (100, 2)]


def test_gdpr_report_for_a_tenant_without_jobs(server, admin):
    uuid = create(admin, tenant_email="solo@example.com").json()["tenant_uuid"]
    data = admin.get(GDPR, params={"tenant_uuid": uuid}).json()["data"]
    assert (data["jobs"], data["case_notes"], data["tenant"]["address"]) == ([], [], None)
    assert data["tenant"]["tenant_email"] == "solo@example.com"


def test_gdpr_report_is_staff_only_even_with_the_key(server):
    roles = server.sandbox.auth.roles
    roles["Agent"]["keys"] = roles["Agent"]["keys"] | {"api.tenants.gdpr-report.manage"}
    with server.client(AGENT) as agent:
        assert_error(agent.get(GDPR, params={"tenant_uuid": T100}), 403, FORBIDDEN)
    assert server.sandbox.store.select("gdpr_requests") == []


def test_gdpr_report_errors_record_nothing(server, admin):
    assert_error(admin.get(GDPR), 400, "tenant_uuid")
    assert_error(admin.get(GDPR, params={"tenant_uuid": "100"}), 400, "tenant_uuid")
    assert_error(admin.get(GDPR, params={"tenant_uuid": "00000000-0000-4000-8000-000000000000"}), 404)
    assert server.sandbox.store.select("gdpr_requests") == []
