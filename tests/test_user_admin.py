"""User administration over real HTTP: /api/users/users (every read and write action), logout-user (the
token stops working), PUT /api/users/permissions (seen through GET /api/users/permissions) and user-status —
each role, another organisation (404 as missing), bad input (400 naming the field, nothing stored), CSRF."""

from __future__ import annotations

import httpx
import pytest
from conftest import AGENT, API, CONTRACTOR, OTHER_ADMIN, STAFF, assert_envelope_headers, assert_error

USERS = "/api/users/users"
NEW = {"action": "create_user", "first_name": "Grace", "last_name": "Hopper", "email": "grace@sandbox.propops.test",
       "password": "Compiler#1952", "phone": "07700900001"}


def uuid_of(server, user_id: int) -> str:
    return server.sandbox.store.raw("users", user_id)["uuid"]


def no_csrf(server, client) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=30, headers={"Authorization": client.headers["Authorization"]})


def login(server, email: str, password: str) -> httpx.Response:
    return httpx.post(server.url + "/api/auth/login", json={"email": email, "password": password})


def as_token(server, token: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=30, headers={"Authorization": f"Bearer {token}"})


def org_users(server, org: int) -> list:
    return [u for u in server.sandbox.store.select("users") if u["org_id"] == org and not u.get("deleted_at")]


def create(admin, **fields) -> dict:
    r = admin.post(USERS, json={**NEW, **fields})
    assert r.status_code == 200 and r.json()["success"] is True, r.text
    return r.json()["data"]


# -- reads -----------------------------------------------------------------------------------------

def test_list_get_search_and_lookups(server, admin):
    r = admin.get(USERS, params={"action": "get_all_users", "limit": 200})
    assert r.status_code == 200, r.text
    assert_envelope_headers(r)
    body = r.json()
    mine = org_users(server, 1)
    assert [u["ID"] for u in body["data"]] == [u["ID"] for u in mine] and body["total"] == len(mine)
    assert body["count"] == len(body["data"])
    first = body["data"][0]
    assert {"ID", "uuid", "first_name", "last_name", "email", "phone", "account_type_id", "account_type_name",
            "account_status_id", "account_status_name", "branch_id", "role_id", "created_at"} <= first.keys()
    agents = admin.get(USERS, params={"action": "get_all_users", "account_type_id": 2}).json()
    assert [(u["email"], u["branch_id"]) for u in agents["data"]] == [(AGENT, 1)]
    page = admin.get(USERS, params={"action": "get_all_users", "limit": 2, "offset": 1}).json()
    assert [u["ID"] for u in page["data"]] == [u["ID"] for u in mine[1:3]] and page["total"] == len(mine)
    one = admin.get(USERS, params={"action": "get_user", "uuid": uuid_of(server, 4)}).json()["data"]
    assert (one["email"], one["account_type_name"], one["role"]) == (CONTRACTOR, "Contractor", "Contractor")
    found = admin.get(USERS, params={"action": "search", "q": "contractor@"}).json()
    assert [u["ID"] for u in found["data"]] == [4]
    types = admin.get(USERS, params={"action": "get_account_types"}).json()["data"]
    assert [t["name"] for t in types] == ["Staff", "Agent", "Landlord", "Tenant", "Contractor"]
    statuses = admin.get(USERS, params={"action": "get_account_statuses"}).json()["data"]
    assert [s["name"] for s in statuses] == ["Active", "Inactive", "Blacklisted"]
    health = admin.get(USERS, params={"action": "health_check"}).json()["data"]
    assert (health["status"], health["total_users"]) == ("healthy", len(mine))
    assert_error(admin.get(USERS, params={"action": "get_user", "uuid": "nope"}), 400, "uuid")
    assert_error(admin.get(USERS, params={"action": "get_all_users", "limit": 0}), 400, "limit")


def test_another_organisation_sees_none_of_these_users(server):
    with server.client(OTHER_ADMIN) as other:
        listed = other.get(USERS, params={"action": "get_all_users", "limit": 200}).json()["data"]
        assert {u["ID"] for u in listed} == {u["ID"] for u in org_users(server, 2)}
        assert_error(other.get(USERS, params={"action": "get_user", "uuid": uuid_of(server, 2)}), 404, "User not found")
        assert other.get(USERS, params={"action": "search", "q": "sandbox.propops"}).json()["data"] == []
        assert_error(other.post(USERS, json={"action": "toggle_status", "uuid": uuid_of(server, 2)}), 404, "User")
    assert server.sandbox.store.raw("users", 2)["is_active"] is True


@pytest.mark.parametrize("email", [STAFF, AGENT, CONTRACTOR, API])
def test_user_administration_needs_the_users_key(server, email):
    with server.client(email) as client:
        assert_error(client.get(USERS, params={"action": "get_all_users"}), 403, "permission")
        assert_error(client.post(USERS, json=NEW), 403, "permission")
        assert_error(client.post("/api/users/logout-user", json={"uuid": uuid_of(server, 1)}), 403)
        assert_error(client.put("/api/users/permissions", json={"action": "grant", "user_uuid": uuid_of(server, 1),
                                                                "permissions": ["api.jobs.manage.list"]}), 403)
    assert len(server.sandbox.store.select("users")) == len(org_users(server, 1)) + len(org_users(server, 2))


# -- create / update -------------------------------------------------------------------------------

def test_created_user_can_sign_in_and_is_encrypted_at_rest(server, admin):
    user = create(admin, role_id=3)
    assert (user["email"], user["role"], user["account_type_name"], user["account_status_name"]) == (
        NEW["email"], "Staff", "Staff", "Active")
    raw = server.sandbox.store.raw("users", user["ID"])
    assert NEW["email"] not in str(raw) and "Grace" not in str(raw) and NEW["password"] not in str(raw)
    r = login(server, NEW["email"], NEW["password"])
    assert r.status_code == 200, r.text
    with as_token(server, r.json()["token"]) as grace:
        assert grace.get("/api/users/permissions").json()["data"]["role"] == "Staff"
    assert admin.get(USERS, params={"action": "get_user", "uuid": user["uuid"]}).json()["data"]["phone"] == NEW["phone"]
    breach = admin.get(USERS, params={"action": "get_password_breach_status", "uuid": user["uuid"]}).json()["data"]
    assert breach["breached"] is False


def test_create_refusals_store_nothing(server, admin):
    before = len(server.sandbox.store.select("users"))
    for fields, status, word in (({"email": "not-an-email"}, 400, "email"), ({"password": "short"}, 400, "password"),
                                 ({"first_name": "   "}, 400, "first_name"), ({"last_name": None}, 400, "last_name"),
                                 ({"role_id": 4}, 400, "role_id"), ({"account_type_id": 9}, 400, "account_type_id"),
                                 ({"email": STAFF}, 400, "already exists"), ({"email": OTHER_ADMIN}, 400, "exists")):
        assert_error(admin.post(USERS, json={**NEW, **fields}), status, word)
    with no_csrf(server, admin) as bare:
        assert_error(bare.post(USERS, json=NEW), 403, "CSRF")
    assert len(server.sandbox.store.select("users")) == before


def test_update_role_and_onboarding(server, admin):
    user = create(admin)
    r = admin.post(USERS, json={"action": "update", "uuid": user["uuid"], "last_name": "Murray Hopper",
                                "email": "ghopper@sandbox.propops.test"})
    assert r.status_code == 200 and r.json()["data"]["last_name"] == "Murray Hopper", r.text
    assert login(server, "ghopper@sandbox.propops.test", NEW["password"]).status_code == 200
    assert login(server, NEW["email"], NEW["password"]).status_code == 401
    assert admin.post(USERS, json={"action": "update_role", "uuid": user["uuid"], "role_id": 2}).status_code == 200
    assert server.sandbox.store.raw("users", user["ID"])["role"] == "API"
    assert_error(admin.post(USERS, json={"action": "update_role", "uuid": user["uuid"], "role_id": 5}), 400, "role_id")
    assert_error(admin.post(USERS, json={"action": "update_role", "uuid": user["uuid"]}), 400, "role_id")
    assert_error(admin.post(USERS, json={"action": "update", "uuid": user["uuid"], "email": STAFF}), 400, "email")
    assert_error(admin.post(USERS, json={"action": "update", "uuid": user["uuid"]}), 400, "first_name")
    assert_error(admin.post(USERS, json={"action": "update_role", "uuid": uuid_of(server, 1), "role_id": 3}), 403,
                 "own account")
    assert server.sandbox.store.raw("users", 1)["role"] == "SysOps"
    done = admin.post(USERS, json={"action": "complete_onboarding", "uuid": user["uuid"]}).json()["data"]
    assert done["onboarding_completed_at"] == server.sandbox.clock.iso()
    log = admin.get(USERS, params={"action": "get_audit_log", "uuid": user["uuid"]}).json()["data"]
    assert [e["action"] for e in log] == ["complete_onboarding", "update_role", "update", "create_user"]


# -- status, deletion, sessions --------------------------------------------------------------------

def test_disable_blacklist_and_delete_end_access(server, admin):
    user = create(admin)
    token = login(server, NEW["email"], NEW["password"]).json()["token"]
    off = admin.post(USERS, json={"action": "toggle_status", "uuid": user["uuid"]}).json()["data"]
    assert off["is_active"] is False
    with as_token(server, token) as old:
        assert old.get("/api/users/permissions").status_code == 401
    assert login(server, NEW["email"], NEW["password"]).status_code == 401
    assert admin.post(USERS, json={"action": "toggle_status", "uuid": user["uuid"]}).json()["data"]["is_active"] is True
    assert login(server, NEW["email"], NEW["password"]).status_code == 200
    listed = admin.post(USERS, json={"action": "add_to_blacklist", "uuid": user["uuid"]}).json()["data"]
    assert listed["account_status_name"] == "Blacklisted"
    assert login(server, NEW["email"], NEW["password"]).status_code == 401
    admin.post(USERS, json={"action": "remove_from_blacklist", "uuid": user["uuid"]})
    assert login(server, NEW["email"], NEW["password"]).status_code == 200
    assert admin.post(USERS, json={"action": "delete_user", "uuid": user["uuid"]}).status_code == 200
    assert_error(admin.get(USERS, params={"action": "get_user", "uuid": user["uuid"]}), 404, "User not found")
    assert login(server, NEW["email"], NEW["password"]).status_code == 401
    for action in ("delete_user", "toggle_status", "add_to_blacklist"):
        assert_error(admin.post(USERS, json={"action": action, "uuid": uuid_of(server, 1)}), 403, "own account")
    assert server.sandbox.store.raw("users", 1)["is_active"] is True


def test_bulk_update_scan_and_sessions(server, admin):
    a, b = create(admin), create(admin, email="b@sandbox.propops.test", password="password")
    token = login(server, NEW["email"], NEW["password"]).json()["token"]
    r = admin.post(USERS, json={"action": "bulk_update", "user_uuids": [a["uuid"], b["uuid"]], "is_active": False})
    assert r.json()["data"] == {"updated": 2}
    assert [server.sandbox.store.raw("users", u["ID"])["is_active"] for u in (a, b)] == [False, False]
    with as_token(server, token) as old:  # disabling ends the user's sessions
        assert old.get("/api/users/permissions").status_code == 401
    r = admin.post(USERS, json={"action": "bulk_update", "user_uuids": [a["uuid"]], "role_id": 2})
    assert r.status_code == 200, r.text
    assert (server.sandbox.store.raw("users", a["ID"])["role"], server.sandbox.store.raw("users", b["ID"])["role"]) == (
        "API", "Staff")
    assert server.sandbox.store.raw("users", a["ID"])["is_active"] is False  # only the fields given change
    for uuids, status, word in (([a["uuid"], uuid_of(server, 6)], 404, "User"), ("x", 400, "user_uuids"),
                                ([a["uuid"], uuid_of(server, 1)], 403, "own account")):
        assert_error(admin.post(USERS, json={"action": "bulk_update", "user_uuids": uuids, "is_active": True}),
                     status, word)
    assert server.sandbox.store.raw("users", a["ID"])["is_active"] is False  # a refusal changes no one
    scan = admin.post(USERS, json={"action": "scan_user_password", "uuid": b["uuid"]}).json()["data"]
    assert scan["breached"] is True
    safe = admin.post(USERS, json={"action": "scan_user_password", "uuid": a["uuid"]}).json()["data"]
    assert safe["breached"] is False
    status = admin.get(USERS, params={"action": "get_password_breach_status", "uuid": b["uuid"]}).json()["data"]
    assert (status["breached"], status["last_scanned_at"]) == (True, server.sandbox.clock.iso())
    with server.client(STAFF):
        pass
    sessions = admin.get(USERS, params={"action": "get_user_sessions", "uuid": uuid_of(server, 2)}).json()["data"]
    assert len(sessions) == 1
    active = admin.get(USERS, params={"action": "get_active_sessions"}).json()["data"]
    assert {s["user_uuid"] for s in active} == {uuid_of(server, 1), uuid_of(server, 2)}
    end = {"action": "terminate_session", "uuid": uuid_of(server, 2), "session": sessions[0]["session_id"]}
    assert admin.post(USERS, json=end).status_code == 200
    assert_error(admin.post(USERS, json=end), 404, "Session not found")
    assert admin.get(USERS, params={"action": "get_user_sessions", "uuid": uuid_of(server, 2)}).json()["data"] == []


def test_logout_user_revokes_the_token(server, admin):
    token = login(server, STAFF, "sandbox").json()["token"]
    assert_error(admin.post("/api/users/logout-user", json={"uuid": uuid_of(server, 1)}), 400, "own account")
    with server.client(OTHER_ADMIN) as other:
        assert_error(other.post("/api/users/logout-user", json={"uuid": uuid_of(server, 2)}), 404, "User")
    with no_csrf(server, admin) as bare:
        assert_error(bare.post("/api/users/logout-user", json={"uuid": uuid_of(server, 2)}), 403, "CSRF")
    with as_token(server, token) as staff:
        assert staff.get("/api/users/permissions").status_code == 200
        r = admin.post("/api/users/logout-user", json={"uuid": uuid_of(server, 2)})
        assert r.json() == {"success": True, "sessions_ended": 1, "message": "Operation completed successfully"}
        assert_error(staff.get("/api/users/permissions"), 401)
    assert login(server, STAFF, "sandbox").status_code == 200  # they may sign in again


# -- permissions and presence ----------------------------------------------------------------------

def test_permission_grants_revocations_and_sync(server, admin):
    staff = uuid_of(server, 2)

    def keys() -> dict:
        with server.client(STAFF, csrf=False) as client:
            return client.get("/api/users/permissions").json()["data"]["permissions"]

    base = keys()
    body = {"user_uuid": staff, "permissions": ["page.settings.configuration"]}
    r = admin.put("/api/users/permissions", json={"action": "grant", **body})
    assert r.status_code == 200 and r.json()["data"]["granted"] == ["page.settings.configuration"], r.text
    assert keys() == {**base, "page.settings.configuration": True}
    dropped = sorted(base)[0]
    assert admin.put("/api/users/permissions", json={"action": "revoke", "user_uuid": staff,
                                                     "permissions": [dropped]}).json()["data"]["revoked"] == [dropped]
    assert keys() == {k: True for k in base if k != dropped} | {"page.settings.configuration": True}
    admin.put("/api/users/permissions", json={"action": "sync", "user_uuid": staff,
                                              "permissions": ["api.jobs.manage.list"]})
    assert keys() == {"api.jobs.manage.list": True}
    before = keys()
    for payload, status, word in (({"permissions": ["api.nope"]}, 400, "permissions"),
                                  ({"permissions": "api.jobs.manage.list"}, 400, "permissions"),
                                  ({"user_uuid": uuid_of(server, 1)}, 403, "own permissions"),
                                  ({"user_uuid": uuid_of(server, 6)}, 404, "User not found")):
        assert_error(admin.put("/api/users/permissions", json={"action": "grant", **body, **payload}), status, word)
    with no_csrf(server, admin) as bare:
        assert_error(bare.put("/api/users/permissions", json={"action": "grant", **body}), 403, "CSRF")
    assert keys() == before


def test_user_status_lists_who_is_online(server, admin):
    r = admin.get("/api/users/user-status")
    assert r.status_code == 200, r.text
    assert [u["uuid"] for u in r.json()["data"]] == [uuid_of(server, 1)]
    assert set(r.json()["data"][0]) == {"uuid", "first_name", "last_name", "last_activity"}
    with server.client(CONTRACTOR) as contractor:
        assert {u["uuid"] for u in contractor.get("/api/users/user-status").json()["data"]} == {
            uuid_of(server, 1), uuid_of(server, 4)}
        server.sandbox.clock.advance(600)
        assert contractor.post("/api/system/heartbeat").status_code == 200
        assert [u["uuid"] for u in admin.get("/api/users/user-status").json()["data"]] == [uuid_of(server, 4)]
    with server.client(OTHER_ADMIN) as other:
        assert [u["uuid"] for u in other.get("/api/users/user-status").json()["data"]] == [uuid_of(server, 6)]


def staff_role_permission(admin, key: str, value: bool) -> None:
    staff_role = next(r["ID"] for r in admin.get("/api/admin/roles").json()["data"] if r["role_name"] == "Staff")
    r = admin.post("/api/admin/staff-permissions", json={"permissions": [
        {"role_id": staff_role, "permission_key": key, "permission_value": value}]})
    assert r.status_code == 200, r.text


def test_role_levels_bound_who_a_user_administrator_manages(server, admin):
    """Given the users key, Staff (level 10) manage other Staff but not the SysOps admin (level 1) above them,
    and cannot hand out a role above their own."""
    staff_role_permission(admin, "api.users.users.manage", True)
    peer = create(admin)  # a Staff user
    with server.client(STAFF) as staff:
        assert_error(staff.post(USERS, json={"action": "toggle_status", "uuid": uuid_of(server, 1)}), 403,
                     "above your own")
        assert_error(staff.post(USERS, json={"action": "update_role", "uuid": peer["uuid"], "role_id": 1}), 403,
                     "above your own")
        off = staff.post(USERS, json={"action": "toggle_status", "uuid": peer["uuid"]})
        assert off.status_code == 200 and off.json()["data"]["is_active"] is False, off.text
    assert server.sandbox.store.raw("users", 1)["is_active"] is True
    assert server.sandbox.store.raw("users", peer["ID"])["role"] == "Staff"


def test_user_grants_apply_over_the_organisations_role_changes(server, admin):
    """A key the organisation revoked from the user's role can be granted back to one user (the overrides are
    relative to the role as the organisation has it, not as roles.toml defines it)."""
    staff, key = uuid_of(server, 2), "api.contractors.list.manage"
    staff_role_permission(admin, key, False)
    with server.client(STAFF) as client:
        assert_error(client.get("/api/contractors/list", params={"action": "list"}), 403)
        r = admin.put("/api/users/permissions", json={"action": "grant", "user_uuid": staff, "permissions": [key]})
        assert r.status_code == 200 and r.json()["data"]["granted"] == [key], r.text
        assert client.get("/api/contractors/list", params={"action": "list"}).status_code == 200
        assert client.get("/api/users/permissions").json()["data"]["permissions"].get(key) is True
        r = admin.put("/api/users/permissions", json={"action": "revoke", "user_uuid": staff, "permissions": [key]})
        assert r.status_code == 200 and r.json()["data"]["granted"] == [] == r.json()["data"]["revoked"], r.text
        assert_error(client.get("/api/contractors/list", params={"action": "list"}), 403)


def test_a_revoked_key_is_refused_and_a_granted_one_allowed_on_the_next_request(server, admin):
    """Overrides decide access, not just what GET /api/users/permissions shows."""
    staff = uuid_of(server, 2)
    with server.client(STAFF) as client:
        assert client.get("/api/jobs/manage", params={"action": "list"}).status_code == 200
        r = admin.put("/api/users/permissions", json={"action": "revoke", "user_uuid": staff,
                                                      "permissions": ["api.jobs.manage.list"]})
        assert r.status_code == 200, r.text
        assert_error(client.get("/api/jobs/manage", params={"action": "list"}), 403)
        assert client.get("/api/contractors/list", params={"action": "list"}).status_code == 200  # only that key
        assert_error(client.get("/api/admin/roles"), 403)
        assert admin.put("/api/users/permissions", json={"action": "grant", "user_uuid": staff,
                                                         "permissions": ["api.jobs.manage.list"]}).status_code == 200
        assert client.get("/api/jobs/manage", params={"action": "list"}).status_code == 200
