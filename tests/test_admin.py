"""Administration over real HTTP: roles (list, create with anti-escalation and inheritance), staff role
permissions with the dependency cascade, the management policy, the activity log, password breach status,
e-mail resends, document types (used by a real document upload), job tags and legal documents — each for
every role, another organisation, bad input (no state change) and a missing CSRF token."""

from __future__ import annotations

import httpx
from conftest import AGENT, API, CONTRACTOR, JOB_1001, OTHER_ADMIN, STAFF, assert_envelope_headers, assert_error

from sandbox.app import routes

PDF = b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n"
FORBIDDEN = "You do not have permission"


def ok(r, status: int = 200) -> dict:
    assert r.status_code == status, r.text
    assert_envelope_headers(r)
    body = r.json()
    assert body["success"] is True
    return body


def without_csrf(server, client) -> httpx.Client:
    """The same session as `client`, without its X-CSRF-Token header (a second login would revoke it)."""
    return httpx.Client(base_url=server.url, timeout=30, headers={"Authorization": client.headers["Authorization"]})


def roles(client, **params) -> dict[str, dict]:
    return {r["role_name"]: r for r in ok(client.get("/api/admin/roles", params=params))["data"]}


def rows(server, table: str, keep=lambda r: True) -> list[dict]:
    store = server.sandbox.store
    return [store.reveal(table, r) for r in store.select(table, keep)]


def test_every_admin_row_is_staff_only():
    admin_rows = [r for r in routes().rows if r.path.startswith("/api/admin/")]
    assert len(admin_rows) > 15 and all(r.account_types == (1,) for r in admin_rows)


def test_roles_list_builtins_with_levels_and_permissions(server, admin):
    listed = roles(admin)
    assert list(listed)[:3] == ["SysOps", "API", "Staff"]
    auth_roles = server.sandbox.auth.roles
    for name, role in listed.items():
        assert role["level"] == auth_roles[name]["level"] and role["is_builtin"] is True
        assert role["permission_count"] == len(auth_roles[name]["keys"]) and "permissions" not in role
    assert listed["Staff"]["user_count"] == 7 and listed["SysOps"]["user_count"] == 1  # this organisation's
    full = roles(admin, include_permissions="true")
    assert set(full["Agent"]["permissions"]) == auth_roles["Agent"]["keys"]
    one = ok(admin.get("/api/admin/roles", params={"id": listed["Contractor"]["ID"]}))["data"]
    assert one["role_name"] == "Contractor"
    assert_error(admin.get("/api/admin/roles", params={"id": 987654}), 404, "Role not found")
    assert_error(admin.get("/api/admin/roles", params={"id": "x"}), 400, "id")
    for email in (STAFF, AGENT, CONTRACTOR, API):
        with server.client(email) as c:
            assert_error(c.get("/api/admin/roles"), 403, FORBIDDEN)


def test_create_role_inherits_and_refuses_escalation(server, admin):
    staff_id = roles(admin)["Staff"]["ID"]
    r = admin.post("/api/admin/roles", json={"role_name": "Director", "level": 3, "parent_role_id": staff_id,
                                             "copy_permissions": 1, "description": "Runs the office"})
    body = ok(r)
    assert body["role_id"] > 100 and body["data"]["level"] == 3 and body["data"]["is_builtin"] is False
    assert set(body["data"]["permissions"]) == server.sandbox.auth.roles["Staff"]["keys"]
    assert roles(admin)["Director"]["description"] == "Runs the office"
    before = len(rows(server, "admin_roles"))
    assert_error(admin.post("/api/admin/roles", json={"role_name": "Boss", "level": 1}), 403, "own level")
    assert_error(admin.post("/api/admin/roles", json={"role_name": "director"}), 400, "role_name", "already exists")
    assert_error(admin.post("/api/admin/roles", json={"role_name": "X", "level": 0}), 400, "level")
    assert_error(admin.post("/api/admin/roles", json={"level": 5}), 400, "role_name")
    assert_error(admin.post("/api/admin/roles", json={"role_name": "Y", "parent_role_id": 987654}), 400,
                 "parent_role_id")
    with server.client(None) as anon, without_csrf(server, admin) as no_csrf:
        assert_error(no_csrf.post("/api/admin/roles", json={"role_name": "Z"}), 403, "CSRF")
        assert anon.post("/api/admin/roles", json={"role_name": "Z"}).status_code == 401
    assert len(rows(server, "admin_roles")) == before
    with server.client(OTHER_ADMIN) as other:  # another organisation's custom role is invisible
        assert "Director" not in roles(other)
        assert_error(other.get("/api/admin/roles", params={"id": body["role_id"]}), 404, "Role not found")
        assert_error(other.post("/api/admin/roles", json={"role_name": "Copy", "parent_role_id": body["role_id"]}),
                     400, "parent_role_id")
    with server.client(STAFF) as staff:
        assert_error(staff.post("/api/admin/roles", json={"role_name": "Mine"}), 403, FORBIDDEN)


def test_staff_permissions_grant_cascade_and_revoke(server, admin):
    staff_id = roles(admin)["Staff"]["ID"]
    grant = [{"role_id": staff_id, "permission_key": "api.admin.branches.manage", "permission_value": True}]
    body = ok(admin.post("/api/admin/staff-permissions", json={"permissions": grant}))
    assert body["updated_count"] == 1  # Staff already holds api.admin.branches.view: nothing to cascade
    assert "api.admin.branches.manage" in roles(admin, include_permissions=1)["Staff"]["permissions"]
    grant = [{"role_id": staff_id, "permission_key": "api.admin.branches.view", "permission_value": False}]
    assert ok(admin.post("/api/admin/staff-permissions", json={"permissions": grant}))["updated_count"] == 2
    keys = roles(admin, include_permissions=1)["Staff"]["permissions"]
    assert not {"api.admin.branches.view", "api.admin.branches.manage"} & set(keys)
    assert ok(admin.post("/api/admin/staff-permissions", json={"permissions": grant}))["updated_count"] == 0
    stored = rows(server, "role_permissions")
    bad = [
        ([{"role_id": 1, "permission_key": "api.jobs.manage.manage", "permission_value": False}], 403, "own level"),
        ([{"role_id": staff_id, "permission_key": "api.nope", "permission_value": True}], 400, "permission_key"),
        ([{"role_id": 987654, "permission_key": "api.jobs.manage.manage", "permission_value": True}], 400, "role_id"),
        ([{"role_id": staff_id, "permission_key": "api.jobs.manage.manage", "permission_value": "yes"}], 400,
         "permission_value"),
        ([], 400, "permissions"), ("nope", 400, "permissions"),
    ]
    for items, status, word in bad:
        assert_error(admin.post("/api/admin/staff-permissions", json={"permissions": items}), status, word)
    assert rows(server, "role_permissions") == stored
    with server.client(STAFF) as staff, server.client(API) as api:
        for c in (staff, api):  # Staff account type, but neither SysOps nor Director
            assert_error(c.post("/api/admin/staff-permissions", json={"permissions": grant}), 403, "SysOps")
    with server.client(OTHER_ADMIN) as other:
        assert roles(other, include_permissions=1)["Staff"]["permission_count"] == \
            len(server.sandbox.auth.roles["Staff"]["keys"])  # org 1's grants are org 1's


def test_management_policy(server, admin):
    staff_id = roles(admin)["Staff"]["ID"]
    assert ok(admin.put("/api/admin/user-management-policy", json={"entity": "role", "id": staff_id, "level": 100}))
    assert roles(admin)["Staff"]["management_level"] == 100
    assert ok(admin.put("/api/admin/user-management-policy", json={"entity": "account_type", "id": 2, "level": 50}))
    cases = [({"entity": "role", "id": staff_id, "level": 1}, 403, "own level"),
             ({"entity": "role", "id": 1, "level": 5}, 403, "own role"),
             ({"entity": "account_type", "id": 1, "level": 5}, 403, "own account type"),
             ({"entity": "role", "id": 987654, "level": 5}, 404, "Role not found"),
             ({"entity": "account_type", "id": 99, "level": 5}, 404, "Account type not found"),
             ({"entity": "team", "id": staff_id, "level": 5}, 400, "entity"),
             ({"entity": "role", "id": staff_id}, 400, "level")]
    for fields, status, word in cases:
        assert_error(admin.put("/api/admin/user-management-policy", json=fields), status, word)
    assert roles(admin)["Staff"]["management_level"] == 100
    with server.client(OTHER_ADMIN) as other:
        assert roles(other)["Staff"]["management_level"] == roles(other)["Staff"]["level"]
    with server.client(AGENT) as agent:
        assert_error(agent.put("/api/admin/user-management-policy", json={"entity": "role", "id": 3, "level": 9}),
                     403, FORBIDDEN)


def test_activity_log_merges_job_history_and_admin_actions(server, admin):
    ok(admin.post("/api/jobs/manage", json={"action": "update", "uuid": JOB_1001, "quote_no": "Q-77"}))
    server.sandbox.clock.advance(86400)
    ok(admin.post("/api/admin/job-tags", json={"action": "create", "tag_name": "Urgent"}))
    body = ok(admin.get("/api/admin/activity-log"))
    assert body["count"] == len(body["data"]) == body["total"] >= 2
    top, job_entry = body["data"][0], next(e for e in body["data"] if e["action"] == "job.updated")
    assert top["action"] == "job_tag.created" and top["user_id"] == 1 and top["ip_address"] == "127.0.0.1"
    assert top["details"] == "Urgent" and top["user_name"] == "Sandbox Admin"  # decrypted for the page shown
    assert top["user_name"] and top["created_at"] > job_entry["created_at"]
    assert job_entry["resource_type"] == "job" and job_entry["resource_id"] == 1001
    only = ok(admin.get("/api/admin/activity-log", params={"action": "job.updated"}))["data"]
    assert only and {e["action"] for e in only} == {"job.updated"}
    day = top["created_at"][:10]
    assert [e["action"] for e in ok(admin.get("/api/admin/activity-log", params={"date_from": day}))["data"]] \
        == ["job_tag.created"]
    assert ok(admin.get("/api/admin/activity-log", params={"user_id": 2}))["data"] == []
    assert ok(admin.get("/api/admin/activity-log", params={"limit": 1, "offset": 1}))["data"][0]["uuid"] \
        == body["data"][1]["uuid"]
    assert_error(admin.get("/api/admin/activity-log", params={"date_from": "2026-12-01", "date_to": "2026-11-01"}),
                 400, "date_to")
    assert_error(admin.get("/api/admin/activity-log", params={"limit": 500}), 400, "limit")
    with server.client(OTHER_ADMIN) as other:
        assert all(e["uuid"] not in {x["uuid"] for x in body["data"]}
                   for e in ok(other.get("/api/admin/activity-log"))["data"])
    with server.client(STAFF) as staff:
        assert_error(staff.get("/api/admin/activity-log"), 403, FORBIDDEN)


def test_password_breach_status(server, admin):
    data = ok(admin.get("/api/admin/password-breach-status"))["data"]
    assert len(data) == 11 and all(d["status"] == "breached" and d["breach_count"] == 1290 for d in data)
    assert data[0]["user_name"] and data[0]["last_checked"] == server.sandbox.clock.iso()
    with server.client(OTHER_ADMIN) as other:
        assert [d["user_id"] for d in ok(other.get("/api/admin/password-breach-status"))["data"]] == [6]
    with server.client(CONTRACTOR) as c:
        assert_error(c.get("/api/admin/password-breach-status"), 403, FORBIDDEN)


def test_resend_email(server, admin, anon):
    ok(anon.post("/api/password-reset", json={"action": "request", "email": STAFF}))
    original = rows(server, "emails")[-1]
    body = ok(admin.post("/api/admin/resend-email", json={"email_id": original["ID"]}))
    copy = server.sandbox.store.get("emails", body["new_email_id"])
    assert copy["to"] == original["to"] == STAFF and copy["body"] == original["body"]
    assert copy["resent_from"] == original["ID"] and copy["ID"] != original["ID"]
    count = server.sandbox.store.count("emails")
    assert_error(admin.post("/api/admin/resend-email", json={"email_id": 987654}), 404, "Email not found")
    assert_error(admin.post("/api/admin/resend-email", json={}), 400, "email_id")
    with server.client(OTHER_ADMIN) as other:
        assert_error(other.post("/api/admin/resend-email", json={"email_id": original["ID"]}), 404, "Email not found")
    with server.client(STAFF) as staff:
        assert_error(staff.post("/api/admin/resend-email", json={"email_id": original["ID"]}), 403, FORBIDDEN)
    assert server.sandbox.store.count("emails") == count


def test_document_types_feed_document_uploads(server, admin):
    body = ok(admin.post("/api/admin/document-types", json={"action": "create", "type_name": "Gas Safety Certificate"}))
    type_id = body["document_type_id"]
    upload = admin.post("/api/jobs/documents", data={"action": "upload", "job_uuid": JOB_1001,
                                                     "document_type_id": str(type_id)},
                        files={"file": ("gas.pdf", PDF, "application/pdf")})
    assert upload.status_code == 200, upload.text
    ok(admin.post("/api/admin/document-types", json={"action": "update", "document_type_id": type_id,
                                                     "type_name": "Gas Safe Record"}))
    assert server.sandbox.store.raw("file_types", type_id)["name"] == "Gas Safe Record"
    before = rows(server, "file_types")
    cases = [({"action": "create", "type_name": "invoice"}, 400, "type_name"),
             ({"action": "create"}, 400, "type_name"),
             ({"action": "update", "document_type_id": 1, "type_name": "Bills"}, 403, "built in"),
             ({"action": "delete", "document_type_id": type_id}, 400, "1 document"),
             ({"action": "delete", "document_type_id": 987654}, 404, "Document type not found"),
             ({"action": "update", "type_name": "x"}, 400, "document_type_id")]
    for fields, status, word in cases:
        assert_error(admin.post("/api/admin/document-types", json=fields), status, word)
    with server.client(OTHER_ADMIN) as other:
        assert_error(other.post("/api/admin/document-types", json={"action": "delete", "document_type_id": type_id}),
                     404, "Document type not found")
    with without_csrf(server, admin) as no_csrf:
        assert_error(no_csrf.post("/api/admin/document-types", json={"action": "create", "type_name": "N"}), 403,
                     "CSRF")
    assert rows(server, "file_types") == before
    spare = ok(admin.post("/api/admin/document-types", json={"action": "create", "type_name": "Spare"}))
    ok(admin.post("/api/admin/document-types", json={"action": "delete",
                                                     "document_type_id": spare["document_type_id"]}))
    assert server.sandbox.store.raw("file_types", spare["document_type_id"]) is None


def test_job_tags(server, admin):
    body = ok(admin.post("/api/admin/job-tags", json={"action": "create", "tag_name": "Urgent", "colour": "#e53935"}))
    tag = body["data"]
    assert tag["colour"] == "#E53935" and body["job_tag_id"] == tag["ID"]
    body = ok(admin.post("/api/admin/job-tags", json={"action": "update", "job_tag_id": tag["ID"], "tag_name": "Hot"}))
    assert body["data"]["tag_name"] == "Hot" and body["data"]["colour"] == "#E53935"
    before = rows(server, "job_tags")
    cases = [({"action": "create", "tag_name": "hot"}, 400, "tag_name"),
             ({"action": "create", "tag_name": "Blue", "colour": "blue"}, 400, "colour"),
             ({"action": "update", "job_tag_id": tag["ID"]}, 400, "tag_name"),
             ({"action": "delete", "job_tag_id": 987654}, 404, "Job tag not found"),
             ({"action": "delete"}, 400, "job_tag_id"), ({"action": "rename"}, 400, "action")]
    for fields, status, word in cases:
        assert_error(admin.post("/api/admin/job-tags", json=fields), status, word)
    with server.client(OTHER_ADMIN) as other:
        assert_error(other.post("/api/admin/job-tags", json={"action": "delete", "job_tag_id": tag["ID"]}), 404,
                     "Job tag not found")
        ok(other.post("/api/admin/job-tags", json={"action": "create", "tag_name": "Hot"}))  # names are per org
    for email in (STAFF, AGENT, CONTRACTOR):
        with server.client(email) as c:
            assert_error(c.post("/api/admin/job-tags", json={"action": "create", "tag_name": "Mine"}), 403, FORBIDDEN)
    assert rows(server, "job_tags", lambda r: r["org_id"] == 1) == before
    ok(admin.post("/api/admin/job-tags", json={"action": "delete", "job_tag_id": tag["ID"]}))
    assert server.sandbox.store.raw("job_tags", tag["ID"]) is None


def test_legal_documents_upsert_with_versions(server, admin):
    md = "## Terms of Service\n\nThese terms govern **use** <script>x</script>.\n\n- one\n- two"
    body = ok(admin.post("/api/admin/documents", json={"action": "save", "document_type": "terms_and_conditions",
                                                       "document_title": "Terms & Conditions", "content": md}))
    doc = body["data"]
    assert doc["slug"] == "terms-conditions" and doc["version"] == 1 and doc["is_active"] is True
    assert "<h2>Terms of Service</h2>" in doc["content_html"] and "<strong>use</strong>" in doc["content_html"]
    assert "&lt;script&gt;" in doc["content_html"] and "<li>two</li>" in doc["content_html"]
    doc = ok(admin.post("/api/admin/documents", json={"action": "save", "id": doc["ID"], "content": "New terms",
                                                      "is_active": False}))["data"]
    assert doc["version"] == 2 and doc["content_html"] == "<p>New terms</p>" and doc["is_active"] is False
    other_doc = ok(admin.post("/api/admin/documents", json={"action": "save", "document_type": "privacy",
                                                            "document_title": "Privacy", "content": "P"}))["data"]
    before = rows(server, "legal_documents")
    cases = [({"id": other_doc["ID"], "slug": "terms-conditions"}, 400, "slug"),
             ({"id": other_doc["ID"], "slug": "Bad Slug"}, 400, "slug"),
             ({"document_title": "No content", "document_type": "x"}, 400, "content"),
             ({"id": 987654, "content": "x"}, 404, "Document not found"),
             ({"id": other_doc["ID"], "content": ""}, 400, "content")]
    for fields, status, word in cases:
        assert_error(admin.post("/api/admin/documents", json={"action": "save", **fields}), status, word)
    with server.client(OTHER_ADMIN) as other:
        assert_error(other.post("/api/admin/documents", json={"action": "save", "id": doc["ID"], "content": "x"}),
                     404, "Document not found")
    with server.client(STAFF) as staff:
        assert_error(staff.post("/api/admin/documents", json={"action": "save", "id": doc["ID"]}), 403, FORBIDDEN)
    assert rows(server, "legal_documents") == before


def test_a_roles_grants_and_revocations_decide_what_its_users_may_do(server, admin):
    """Enforced on the next request of every user of that role, in that organisation only."""
    staff_id = roles(admin)["Staff"]["ID"]

    def change(key: str, value: bool) -> None:
        ok(admin.post("/api/admin/staff-permissions", json={"permissions": [
            {"role_id": staff_id, "permission_key": key, "permission_value": value}]}))

    with server.client(STAFF) as staff:
        assert staff.get("/api/contractors/list", params={"action": "list"}).status_code == 200
        change("api.contractors.list.manage", False)
        assert_error(staff.get("/api/contractors/list", params={"action": "list"}), 403)
        assert staff.get("/api/jobs/manage", params={"action": "list"}).status_code == 200  # only that key
        change("api.contractors.list.manage", True)
        assert staff.get("/api/contractors/list", params={"action": "list"}).status_code == 200
        change("api.admin.branches.manage", True)  # a key the role did not hold
        assert staff.get("/api/admin/branches", params={"action": "list"}).status_code == 200
