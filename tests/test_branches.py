"""Branch administration over real HTTP: list (documented row, disabled branches, search, paging), the CSV
template, create, bulk import (BOM, blank lines, wrong header, mixed rows, duplicates), update with SLA
targets, delete rules, enable/disable (and job create refusing a disabled branch), the Staff-account-type
rule, other organisations, CSRF."""

from __future__ import annotations

import csv
import io
import json

import pytest
from conftest import AGENT, API, CONTRACTOR, OTHER_ADMIN, STAFF, assert_envelope_headers, assert_error

PATH = "/api/admin/branches"
ENABLE, DISABLE = "/api/admin/enable-branch", "/api/admin/disable-branch"
KEYS = {"api.admin.branches.manage", "api.admin.enable_branch.manage", "api.admin.disable_branch.manage"}
FORBIDDEN = "You do not have permission to perform this action"
TEMPLATE = ["branch_name", "address_line_1", "city", "postcode", "contact_number", "shared_email"]
BRANCH_1 = {"ID": 1, "branch_name": "Branch_001", "address_line_1": "10 Office Road", "city": "Sample City",
            "postcode": "SC1 1AA", "contact_number": "01200000001", "shared_email": "branch001@example.com",
            "is_active": True}
DEFAULT_SLA = {4: 4, 3: 24, 2: 72, 1: 168}


def branches(client, **params) -> dict:
    r = client.get(PATH, params={"action": "list", **params})
    assert r.status_code == 200, r.text
    assert_envelope_headers(r)
    body = r.json()
    assert body["success"] is True and body["count"] == len(body["data"])
    return body


def branch(client, id_: int) -> dict | None:
    return next((b for b in branches(client, limit=200)["data"] if b["ID"] == id_), None)


def sla(row: dict) -> dict[int, int]:
    return {s["priority_id"]: s["target_hours"] for s in row["sla"]}


def sla_rows(server, branch_id: int) -> dict[int, int]:
    rows = server.sandbox.store.select("branch_sla", lambda r: r["branch_id"] == branch_id)
    return {r["priority_id"]: r["target_hours"] for r in rows}


def upload(client, content: bytes | str, name="branches.csv", **extra):
    data = content.encode() if isinstance(content, str) else content
    return client.post(PATH, data={"action": "bulk_import", **extra}, files={"csv_file": (name, data, "text/csv")})


def org_branches(server, org=1) -> list[dict]:
    return server.sandbox.store.select("branches", lambda r: r["org_id"] == org)


# -- list and template ---------------------------------------------------------------------------------

def test_list_shows_the_documented_branch_disabled_ones_and_stats(server, admin):
    body = branches(admin)
    rows = {b["ID"]: b for b in body["data"]}
    assert set(rows) == {1, 2, 3, 4, 5} and body["total"] == 5  # org 1 only; branches 6 and 7 are org 2's
    first = rows[1]
    assert {k: first[k] for k in BRANCH_1} == BRANCH_1
    assert first["uuid"] == server.sandbox.store.raw("branches", 1)["uuid"]
    assert rows[5]["is_active"] is False  # the seeded disabled branch is listed
    assert sla(first) == DEFAULT_SLA and all(s["is_default"] for s in first["sla"])
    store = server.sandbox.store
    open_jobs = store.select("jobs", lambda r: r["branch_id"] == 1 and r["status_id"] in (1, 2, 3, 4, 6))
    assert first["open_jobs"] == len(open_jobs) > 0
    agents = store.select("agents", lambda r: r["is_active"] and 1 in r["branch_ids"])
    assert first["agent_count"] == len(agents) > 0


def test_list_search_and_paging(admin):
    assert [b["ID"] for b in branches(admin, search="branch_001")["data"]] == [1]
    assert branches(admin, search="no such branch")["data"] == []
    page = branches(admin, limit=2, offset=1)
    assert [b["ID"] for b in page["data"]] == [2, 3] and page["total"] == 5 and page["count"] == 2
    assert_error(admin.get(PATH, params={"action": "list", "limit": 0}), 400, "limit")
    assert_error(admin.get(PATH, params={"action": "nope"}), 400, "action")


def test_other_org_admin_sees_only_its_branches(server):
    with server.client(OTHER_ADMIN) as other:
        assert {b["ID"] for b in branches(other)["data"]} == {6, 7}
        assert_error(other.put(PATH, json={"branch_id": 1, "city": "X"}), 404, "Branch not found")
        assert_error(other.request("DELETE", PATH, json={"branch_id": 5}), 404, "Branch not found")
        assert_error(other.post(DISABLE, json={"branch_id": 1}), 404, "Branch not found")
    assert server.sandbox.store.raw("branches", 1)["city"] == "Sample City"
    assert server.sandbox.store.raw("branches", 1)["is_active"] is True


def test_download_template_is_a_csv_attachment_that_imports(admin):
    r = admin.get(PATH, params={"action": "download_template"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"] == 'attachment; filename="branches-template.csv"'
    assert list(csv.reader(io.StringIO(r.text))) == [TEMPLATE]
    filled = r.text + "Template Branch,1 High St,Leeds,LS1 4AP,0113 496 0000,leeds@example.com\r\n"
    answer = upload(admin, filled)
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"] == {"imported": 1, "skipped": 0, "errors": []}
    row = branches(admin, search="Template Branch")["data"][0]
    assert (row["city"], row["postcode"], row["shared_email"]) == ("Leeds", "LS1 4AP", "leeds@example.com")


# -- who may -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("email", [STAFF, API, AGENT, CONTRACTOR])
def test_accounts_without_the_admin_key_get_403(server, email):
    before = len(org_branches(server))
    with server.client(email) as client:
        assert_error(client.get(PATH, params={"action": "list"}), 403, FORBIDDEN)
        assert_error(client.get(PATH, params={"action": "download_template"}), 403, FORBIDDEN)
        assert_error(client.post(PATH, json={"branch_name": "Nope"}), 403, FORBIDDEN)
        assert_error(client.put(PATH, json={"branch_id": 1, "city": "Nope"}), 403, FORBIDDEN)
        assert_error(client.request("DELETE", PATH, json={"branch_id": 5}), 403, FORBIDDEN)
        assert_error(client.post(DISABLE, json={"branch_id": 1}), 403, FORBIDDEN)
        assert_error(client.post(ENABLE, json={"branch_id": 5}), 403, FORBIDDEN)
    assert len(org_branches(server)) == before
    assert server.sandbox.store.raw("branches", 1)["is_active"] is True


def test_non_staff_account_types_get_403_even_with_the_keys(server):
    roles = server.sandbox.auth.roles
    roles["Agent"]["keys"] = roles["Agent"]["keys"] | KEYS  # a role edited to hold the admin keys
    with server.client(AGENT) as agent:
        assert_error(agent.get(PATH, params={"action": "list"}), 403, FORBIDDEN)
        assert_error(agent.post(PATH, json={"branch_name": "Agent Branch"}), 403, FORBIDDEN)
        assert_error(agent.post(DISABLE, json={"branch_id": 1}), 403, FORBIDDEN)
    assert not [b for b in org_branches(server) if b["branch_name"] == "Agent Branch"]
    assert server.sandbox.store.raw("branches", 1)["is_active"] is True


# -- create --------------------------------------------------------------------------------------------

def test_create_json_and_form(server, admin):
    r = admin.post(PATH, json={"branch_name": "  Leeds Central ", "address_line_1": "1 Park Row", "city": "Leeds",
                               "postcode": "ls1 5ab", "contact_number": "0113 496 0000",
                               "shared_email": "leeds@example.com", "sla": json.dumps({"Emergency": 2})})
    assert r.status_code == 200, r.text
    assert_envelope_headers(r)
    body = r.json()
    new = server.sandbox.store.raw("branches", body["branch_id"])
    assert new["uuid"] == body["branch_uuid"] == body["data"]["uuid"] and new["org_id"] == 1
    row = branch(admin, body["branch_id"])
    assert (row["branch_name"], row["postcode"], row["is_active"]) == ("Leeds Central", "LS1 5AB", True)
    assert sla(row) == {**DEFAULT_SLA, 4: 2} and sla_rows(server, new["ID"]) == {4: 2}
    form = admin.post(PATH, data={"branch_name": "York", "postcode": "YO1 7HH", "contact_number": "+44 1904 000000"})
    assert form.status_code == 200, form.text
    assert branch(admin, form.json()["branch_id"])["contact_number"] == "+44 1904 000000"
    with server.client(OTHER_ADMIN) as other:  # names are unique per organisation only
        assert other.post(PATH, json={"branch_name": "York"}).status_code == 200


@pytest.mark.parametrize("body, field", [
    ({"city": "Leeds"}, "branch_name"),
    ({"branch_name": "   "}, "branch_name"),
    ({"branch_name": "BRANCH_001"}, "already exists"),
    ({"branch_name": "X" * 101}, "branch_name"),
    ({"branch_name": "Bad Postcode", "postcode": "12345"}, "postcode"),
    ({"branch_name": "Bad Phone", "contact_number": "12345"}, "contact_number"),
    ({"branch_name": "Bad Phone 2", "contact_number": "+33 1 23 45 67 89"}, "contact_number"),
    ({"branch_name": "Bad Email", "shared_email": "not-an-email"}, "shared_email"),
    ({"branch_name": "Bad SLA", "sla": "{broken"}, "sla"),
    ({"branch_name": "Bad SLA 2", "sla_high_hours": 0}, "sla_high_hours"),
])
def test_create_bad_input_is_400_and_creates_nothing(server, admin, body, field):
    before = len(server.sandbox.store.select("branches"))
    assert_error(admin.post(PATH, json=body), 400, field)
    assert len(server.sandbox.store.select("branches")) == before
    assert server.sandbox.store.select("branch_sla") == []


def test_writes_need_csrf(server):
    with server.client(csrf=False) as admin:
        assert_error(admin.post(PATH, json={"branch_name": "No Token"}), 403, "CSRF")
        assert_error(upload(admin, "branch_name\nNo Token\n"), 403, "CSRF")
        assert_error(admin.put(PATH, json={"branch_id": 1, "city": "No Token"}), 403, "CSRF")
        assert_error(admin.request("DELETE", PATH, json={"branch_id": 5}), 403, "CSRF")
        assert_error(admin.post(DISABLE, json={"branch_id": 1}), 403, "CSRF")
        assert_error(admin.post(ENABLE, json={"branch_id": 5}), 403, "CSRF")
    store = server.sandbox.store
    assert not store.select("branches", lambda r: r["branch_name"] == "No Token")
    assert store.raw("branches", 1)["city"] == "Sample City" and store.raw("branches", 1)["is_active"] is True
    assert store.raw("branches", 5) is not None and store.raw("branches", 5)["is_active"] is False


# -- bulk import ---------------------------------------------------------------------------------------

def test_bulk_import_mixed_rows_bom_blank_lines_and_duplicates(server, admin):
    content = ("\ufeffBranch Name,City,Postcode,Contact Number,Shared Email\r\n"
               "Hull,Hull,HU1 1AA,01482 000000,hull@example.com\r\n"
               "\r\n"
               ",,,,\r\n"
               '"Bristol, Harbourside",Bristol,BS1 5TR,,\r\n'
               "Bad Postcode,Derby,NOPE,,\r\n"
               "branch_001,Dup City,,,\r\n"
               "HULL,Again,,,\r\n"
               "Bad Email,Bath,BA1 1AA,,bath-at-example\r\n"
               ",No Name,,,\r\n"
               "Too Many,Ely,CB7 4AA,,,extra\r\n"
               "Exeter,Exeter,EX1 1AA,,\r\n")
    r = upload(admin, content.encode("utf-8"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["message"] == "3 branch(es) imported"
    data = body["data"]
    assert (data["imported"], data["skipped"]) == (3, 2)
    assert [e["row"] for e in data["errors"]] == [6, 9, 10, 11]
    for error, word in zip(data["errors"], ("postcode", "shared_email", "branch_name", "cells"), strict=True):
        assert word in error["error"]
    names = {b["branch_name"] for b in branches(admin, limit=200)["data"]}
    assert {"Hull", "Bristol, Harbourside", "Exeter"} <= names
    assert not names & {"Bad Postcode", "Bad Email", "Too Many", "HULL"}
    hull = next(b for b in org_branches(server) if b["branch_name"] == "Hull")
    assert (hull["city"], hull["postcode"], hull["is_active"]) == ("Hull", "HU1 1AA", True)
    assert hull["address_line_1"] is None


def test_bulk_import_windows_1252_and_header_only(server, admin):
    r = upload(admin, "branch_name,city\nCafé Branch,Cæster\n".encode("cp1252"))
    assert r.status_code == 200, r.text
    assert r.json()["data"]["imported"] == 1
    assert branches(admin, search="Café Branch")["data"][0]["city"] == "Cæster"
    empty = upload(admin, "branch_name,city\r\n\r\n")
    assert empty.status_code == 200 and empty.json()["data"] == {"imported": 0, "skipped": 0, "errors": []}
    assert empty.json()["message"] == "0 branch(es) imported"


@pytest.mark.parametrize("content, words", [
    ("name,town\nHull,Hull\n", ("csv_file", "unknown column", "name")),
    ("city,postcode\nHull,HU1 1AA\n", ("csv_file", "branch_name")),
    ("branch_name,city,city\nHull,Hull,Hull\n", ("csv_file", "more than once")),
    ("", ("csv_file", "empty")),
    ("\n\n  \n", ("csv_file", "empty")),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", ("csv_file", "binary")),
])
def test_bulk_import_unusable_files_are_400_and_import_nothing(server, admin, content, words):
    before = len(server.sandbox.store.select("branches"))
    assert_error(upload(admin, content), 400, *words)
    assert len(server.sandbox.store.select("branches")) == before


def test_bulk_import_needs_a_file(server, admin):
    before = len(server.sandbox.store.select("branches"))
    assert_error(admin.post(PATH, data={"action": "bulk_import"}), 400, "csv_file")
    assert_error(admin.post(PATH, data={"action": "bulk_import", "csv_file": "branch_name\nHull\n"}), 400, "csv_file")
    assert_error(admin.post(PATH, data={"action": "import_csv"}, files={"csv_file": ("b.csv", b"x", "text/csv")}),
                 400, "action")
    assert len(server.sandbox.store.select("branches")) == before


# -- update --------------------------------------------------------------------------------------------

def test_update_fields_by_id_and_uuid(server, admin):
    uuid = server.sandbox.store.raw("branches", 2)["uuid"]
    r = admin.put(PATH, json={"branch_id": 2, "city": "Leeds", "postcode": "ls2 9jt", "shared_email": None})
    assert r.status_code == 200, r.text
    assert r.json()["data"]["city"] == "Leeds"
    row = branch(admin, 2)
    assert (row["city"], row["postcode"], row["shared_email"]) == ("Leeds", "LS2 9JT", None)
    r = admin.put(PATH, data={"uuid": uuid, "branch_name": "Leeds Office"})  # form body, by uuid
    assert r.status_code == 200, r.text
    assert branch(admin, 2)["branch_name"] == "Leeds Office"
    assert admin.put(PATH, json={"branch_uuid": uuid, "branch_name": "leeds office"}).status_code == 200  # itself


def test_update_sla_targets(server, admin):
    r = admin.put(PATH, json={"branch_id": 1, "sla": json.dumps({"4": 2, "Low": 120})})
    assert r.status_code == 200, r.text
    assert sla(r.json()["data"]) == {4: 2, 3: 24, 2: 72, 1: 120}
    assert sla_rows(server, 1) == {4: 2, 1: 120}
    r = admin.put(PATH, json={"branch_id": 1, "sla": json.dumps([{"priority_id": 3, "target_hours": 12},
                                                                 {"priority_id": 1, "target_hours": None}])})
    assert r.status_code == 200, r.text
    assert sla_rows(server, 1) == {4: 2, 3: 12}
    r = admin.put(PATH, data={"branch_id": "1", "sla_medium_hours": "48", "sla_emergency_hours": ""})  # "" clears
    assert r.status_code == 200, r.text
    assert sla_rows(server, 1) == {3: 12, 2: 48}
    row = branch(admin, 1)
    assert sla(row) == {4: 4, 3: 12, 2: 48, 1: 168}
    assert [s["is_default"] for s in row["sla"]] == [True, False, False, True]
    assert sla(branch(admin, 2)) == DEFAULT_SLA  # per branch
    assert {r["org_id"] for r in server.sandbox.store.select("branch_sla")} == {1}


@pytest.mark.parametrize("body, status, words", [
    ({"city": "X"}, 400, ("branch_id",)),
    ({"branch_id": 999, "city": "X"}, 404, ("Branch not found",)),
    ({"branch_id": 6, "city": "X"}, 404, ("Branch not found",)),
    ({"branch_id": 1, "uuid": "00000000-0000-4000-8000-000000000000", "city": "X"}, 404, ("Branch not found",)),
    ({"branch_id": 1, "branch_name": "Branch_001 ", "city": "X"}, 200, ()),
    ({"branch_id": 2, "branch_name": "branch_001", "city": "X"}, 400, ("branch_name", "already exists")),
    ({"branch_id": 1, "branch_name": None, "city": "X"}, 400, ("branch_name", "cleared")),
    ({"branch_id": 1, "postcode": "SC1", "city": "X"}, 400, ("postcode",)),
    ({"branch_id": 1, "contact_number": "999", "city": "X"}, 400, ("contact_number",)),
    ({"branch_id": 1, "sla": json.dumps({"9": 5}), "city": "X"}, 400, ("sla", "unknown priority")),
    ({"branch_id": 1, "sla": json.dumps({"4": 0}), "city": "X"}, 400, ("sla", "target_hours")),
    ({"branch_id": 1, "sla": json.dumps({"4": "soon"}), "city": "X"}, 400, ("sla",)),
    ({"branch_id": 1, "sla": json.dumps(5), "city": "X"}, 400, ("sla",)),
    ({"branch_id": 1, "sla_low_hours": 9000, "city": "X"}, 400, ("sla_low_hours",)),
])
def test_update_errors_change_nothing(server, admin, body, status, words):
    r = admin.put(PATH, json=body)
    if status == 200:
        assert r.status_code == 200, r.text
        return
    assert_error(r, status, *words)
    assert server.sandbox.store.select("branches", lambda r: r["city"] == "X") == []
    assert server.sandbox.store.select("branch_sla") == []


def test_update_ids_must_agree(server, admin):
    uuid_2 = server.sandbox.store.raw("branches", 2)["uuid"]
    assert_error(admin.put(PATH, json={"branch_id": 1, "branch_uuid": uuid_2, "city": "X"}), 400, "branch_uuid")
    other_uuid = server.sandbox.store.raw("branches", 6)["uuid"]
    assert_error(admin.put(PATH, json={"uuid": other_uuid, "city": "X"}), 404, "Branch not found")
    assert server.sandbox.store.raw("branches", 6)["city"] != "X"


# -- delete --------------------------------------------------------------------------------------------

def test_delete_refuses_a_branch_in_use(server, admin):
    jobs = len(server.sandbox.store.select("jobs", lambda r: r["branch_id"] == 1))
    body = assert_error(admin.request("DELETE", PATH, json={"branch_id": 1}), 400, f"{jobs} job(s)", "address")
    assert "disable" in body["error"].lower()
    assert branch(admin, 1) is not None
    server.sandbox.store.update("agents", 11, {"branch_id": 5, "branch_ids": [5, 2]})  # primary branch 5
    assert_error(admin.request("DELETE", PATH, json={"branch_id": 5}), 400, "1 agent(s)")
    assert branch(admin, 5) is not None


def test_delete_removes_the_branch_its_sla_and_secondary_links(server, admin):
    assert admin.put(PATH, json={"branch_id": 5, "sla_low_hours": 100}).status_code == 200
    server.sandbox.store.update("agents", 12, {"branch_ids": [3, 5]})  # branch 5 as a shared branch
    r = admin.request("DELETE", PATH, params={"branch_id": 5})
    assert r.status_code == 200, r.text
    assert r.json() == {"success": True, "message": "Operation completed successfully"}
    assert branch(admin, 5) is None and server.sandbox.store.raw("branches", 5) is None
    assert sla_rows(server, 5) == {}
    assert server.sandbox.store.raw("agents", 12)["branch_ids"] == [3]
    assert_error(admin.request("DELETE", PATH, json={"branch_id": 5}), 404, "Branch not found")
    new = admin.post(PATH, json={"branch_name": "Short Lived"}).json()
    assert admin.request("DELETE", PATH, json={"uuid": new["branch_uuid"]}).status_code == 200
    assert branches(admin, search="Short Lived")["data"] == []


# -- enable / disable ----------------------------------------------------------------------------------

def _new_job(client, address_id: int):
    return client.post("/api/jobs/manage", json={
        "action": "create", "job_title": "Leak", "job_description": "Kitchen tap leaking", "priority_id": 2,
        "status_id": 1, "job_type_id": 1, "address_id": address_id})


def test_disable_keeps_jobs_but_refuses_new_ones_and_enable_reverses(server, admin):
    store = server.sandbox.store
    address = store.select("addresses", lambda r: r["branch_id"] == 2)[0]["ID"]
    old_job = store.select("jobs", lambda r: r["branch_id"] == 2)[0]
    r = admin.post(DISABLE, json={"branch_id": 2})
    assert r.status_code == 200, r.text
    assert r.json()["data"] == {"branch_id": 2, "branch_uuid": store.raw("branches", 2)["uuid"], "is_active": False}
    assert store.raw("branches", 2)["is_active"] is False and branch(admin, 2)["is_active"] is False
    assert admin.post(DISABLE, json={"branch_id": 2}).status_code == 200  # idempotent
    assert_error(_new_job(admin, address), 400, "address_id", "disabled")
    got = admin.get("/api/jobs/manage", params={"action": "get", "uuid": old_job["uuid"]})
    assert got.status_code == 200 and got.json()["data"]["ID"] == old_job["ID"]
    r = admin.post(ENABLE, data={"branch_uuid": store.raw("branches", 2)["uuid"]})  # form body, by uuid
    assert r.status_code == 200, r.text
    assert store.raw("branches", 2)["is_active"] is True and branch(admin, 2)["is_active"] is True
    assert _new_job(admin, address).status_code == 201


def test_enable_disable_errors(server, admin):
    assert_error(admin.post(ENABLE, json={}), 400, "branch_id")
    assert_error(admin.post(ENABLE, json={"branch_id": "five"}), 400, "branch_id")
    assert_error(admin.post(ENABLE, json={"branch_id": 999}), 404, "Branch not found")
    assert_error(admin.post(ENABLE, json={"branch_id": 6}), 404, "Branch not found")
    assert server.sandbox.store.raw("branches", 5)["is_active"] is False
    assert admin.post(ENABLE, json={"branch_id": 5}).status_code == 200
    assert branch(admin, 5)["is_active"] is True
