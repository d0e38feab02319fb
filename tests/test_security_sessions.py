"""Security over real HTTP: the sessions list, terminate (the token stops working at once), the access
blacklist (no sign-in while on it, the old state back after), mobile-app authentication (a working 365-day
token and CSRF token) and the offline password breach check — for each role, another organisation, bad
input with no state change, and a missing CSRF token."""

from __future__ import annotations

import datetime as dt

import httpx
from conftest import ADMIN, AGENT, API, CONTRACTOR, OTHER_ADMIN, STAFF, assert_envelope_headers, assert_error

from sandbox.clock import parse_instant

SESSIONS = "/api/security/sessions"
MOBILE = "/api/security/mobile-auth"
FORBIDDEN = "You do not have permission"
ALIVE = "/api/security/csrf-token"  # any signed-in caller


def ok(r) -> dict:
    assert r.status_code == 200, r.text
    assert_envelope_headers(r)
    assert r.json()["success"] is True
    return r.json()


def token_of(client: httpx.Client) -> str:
    return client.headers["Authorization"][7:]


def listed(client) -> dict[int, dict]:
    body = ok(client.get(SESSIONS, params={"action": "list"}))
    assert body["count"] == len(body["data"])
    return {s["user_id"]: s for s in body["data"]}


def live_sessions(server) -> list[dict]:
    return server.sandbox.store.select("sessions", lambda r: not r["revoked"])


def test_list_shows_the_organisations_live_sessions(server, admin):
    with server.client(STAFF) as staff, server.client(OTHER_ADMIN) as other:
        sessions = listed(admin)
        assert set(sessions) == {1, 2}  # not the other organisation's admin
        mine, theirs = sessions[1], sessions[2]
        assert mine["is_current"] is True and theirs["is_current"] is False
        assert mine["session_id"].startswith("sess_") and mine["user_name"] == "Sandbox Admin"
        assert mine["ip_address"] == "127.0.0.1" and mine["user_agent"].startswith("python-httpx")
        assert set(listed(other)) == {6}
        server.sandbox.clock.advance(91 * 86400)  # tokens live 90 days: expired sessions are not active
        with server.client(ADMIN) as fresh:
            assert set(listed(fresh)) == {1}
        assert staff.get(ALIVE).status_code == 401
    for email in (STAFF, AGENT, CONTRACTOR, API):
        with server.client(email) as c:
            assert_error(c.get(SESSIONS, params={"action": "list"}), 403, FORBIDDEN)


def test_terminate_revokes_the_token_at_once(server, admin):
    with server.client(STAFF) as staff, server.client(OTHER_ADMIN) as other:
        assert staff.get(ALIVE).status_code == 200
        target = listed(admin)[2]["session_id"]
        before = live_sessions(server)
        cases = [({}, 400, "session_id"), ({"session_id": "sess_987654"}, 404, "Session not found"),
                 ({"session_id": "garbage"}, 404, "Session not found"),
                 ({"session_id": listed(admin)[1]["session_id"]}, 400, "own current session"),
                 ({"session_id": target, "user_id": 3}, 404, "Session not found"),
                 ({"session_id": target, "user_id": 6}, 404, "User not found")]
        for fields, status, word in cases:
            assert_error(admin.post(SESSIONS, json={"action": "terminate", **fields}), status, word)
        assert_error(other.post(SESSIONS, json={"action": "terminate", "session_id": target}), 404, "Session not found")
        with httpx.Client(base_url=server.url, headers={"Authorization": admin.headers["Authorization"]}) as bare:
            assert_error(bare.post(SESSIONS, json={"action": "terminate", "session_id": target}), 403, "CSRF")
        assert live_sessions(server) == before
        ok(admin.post(SESSIONS, json={"action": "terminate", "session_id": target, "user_id": 2,
                                      "reason": "Suspicious activity detected."}))
        assert staff.get(ALIVE).status_code == 401
        assert 2 not in listed(admin)
        log = ok(admin.get("/api/admin/activity-log", params={"action": "session.terminated"}))["data"]
        assert log[0]["resource_id"] == target and log[0]["details"] == "Suspicious activity detected."
    with server.client(STAFF) as staff:
        assert_error(staff.post(SESSIONS, json={"action": "terminate", "session_id": "sess_1"}), 403, FORBIDDEN)


def test_blacklist_bars_sign_in_until_removed(server, admin):
    with server.client(STAFF) as staff:
        ok(admin.post(SESSIONS, json={"action": "blacklist_add", "user_id": 2, "reason": "Left the company"}))
        assert staff.get(ALIVE).status_code == 401
        signin = httpx.post(server.url + "/api/auth/login", json={"email": STAFF, "password": "sandbox"})
        assert signin.status_code == 401
        assert ok(admin.post(SESSIONS, json={"action": "blacklist_add", "user_id": 2}))["message"] == \
            "User is already blacklisted"
    gone = ok(admin.post("/api/users/users", json={"action": "create_user", "first_name": "Gone", "last_name": "User",
                                                   "email": "gone@sandbox.propops.test", "password": "Whatever#1"}))
    ok(admin.post("/api/users/users", json={"action": "delete_user", "uuid": gone["data"]["uuid"]}))
    users = server.sandbox.store.select("users")
    cases = [("blacklist_add", {"user_id": 1}, 400, "yourself"), ("blacklist_add", {}, 400, "user_id"),
             ("blacklist_add", {"user_id": gone["data"]["ID"]}, 404, "User not found"),  # deleted users are gone
             ("blacklist_add", {"user_id": 6}, 404, "User not found"),
             ("blacklist_add", {"user_id": 987654}, 404, "User not found"),
             ("blacklist_remove", {"user_id": 3}, 400, "not on the blacklist"),
             ("blacklist_add", {"user_id": "two"}, 400, "user_id")]
    for action, fields, status, word in cases:
        assert_error(admin.post(SESSIONS, json={"action": action, **fields}), status, word)
    with server.client(OTHER_ADMIN) as other:
        assert_error(other.post(SESSIONS, json={"action": "blacklist_remove", "user_id": 2}), 404, "User not found")
    assert server.sandbox.store.select("users") == users
    ok(admin.post(SESSIONS, json={"action": "blacklist_remove", "user_id": 2}))
    with server.client(STAFF) as staff:
        assert staff.get(ALIVE).status_code == 200
    with server.client(API) as api:  # API holds no api.security.sessions.* key
        assert_error(api.post(SESSIONS, json={"action": "blacklist_add", "user_id": 3}), 403, FORBIDDEN)


def test_mobile_auth_opens_a_working_365_day_session(server, admin):
    body = ok(admin.post(MOBILE, json={"action": "validate_token", "token": token_of(admin), "platform": "ios",
                                       "device_type": "iPhone", "app_version": "2.1.0"}))
    assert len(body["session_token"]) == 64 and body["session_token"] != token_of(admin)
    user = body["user"]
    assert user["ID"] == 1 and user["email"] == ADMIN and user["account_type_name"] == "Staff" and user["role_id"] == 1
    # "the same user shape as /api/users/users"
    assert user == admin.get("/api/users/users", params={"action": "get_user", "uuid": user["uuid"]}).json()["data"]
    expires = parse_instant(body["expires_at"]) - server.sandbox.clock.now()
    assert dt.timedelta(days=364) < expires <= dt.timedelta(days=365)
    mobile_headers = {"Authorization": "Bearer " + body["session_token"], "X-CSRF-Token": body["csrf_token"]}
    with httpx.Client(base_url=server.url, headers=mobile_headers) as phone:
        ok(phone.post("/api/admin/job-tags", json={"action": "create", "tag_name": "From phone"}))  # CSRF works
        assert admin.get(ALIVE).status_code == 200  # the web session lives on
        phone_row = next(s for s in listed(admin).values() if s["user_id"] == 1 and not s["is_current"])
        assert phone_row["platform"] == "ios" and phone_row["device_type"] == "iPhone"
        assert_error(admin.post(MOBILE, json={"action": "logout"}), 400, "token")  # the web session is not mobile
        ok(phone.post(MOBILE, json={"action": "logout"}))
        assert phone.get(ALIVE).status_code == 401
    sessions = server.sandbox.store.count("sessions")
    for fields, word in (({"action": "validate_token"}, "token"), ({"action": "validate_token", "token": "f" * 64},
                                                                   "token"),
                         ({"action": "validate_token", "token": token_of(admin), "platform": "windows"}, "platform")):
        assert_error(admin.post(MOBILE, json=fields), 400, word)
    with server.client(OTHER_ADMIN) as other:  # somebody else's token opens nothing
        assert_error(other.post(MOBILE, json={"action": "validate_token", "token": token_of(admin)}), 400, "token")
    assert server.sandbox.store.count("sessions") == sessions + 1  # only OTHER_ADMIN's login
    for email in (STAFF, AGENT, CONTRACTOR):
        with server.client(email) as c:
            assert_error(c.post(MOBILE, json={"action": "validate_token", "token": token_of(c)}), 403, FORBIDDEN)


def test_password_breach_check_is_offline_and_never_logged(server, admin):
    body = ok(admin.post("/api/security/password-breach-check", json={"password": "P@ssw0rd123",
                                                                      "return_count": True}))
    assert body["breached"] is True and body["count"] == 3200
    assert body["message"] == "This password has appeared in 3,200 data breaches."
    body = ok(admin.post("/api/security/password-breach-check", json={"password": "P@ssw0rd123"}))
    assert body["breached"] is True and "count" not in body
    body = ok(admin.post("/api/security/password-breach-check", json={"password": "Tr0ub4dor&3-horse",
                                                                      "return_count": "true"}))
    assert body["breached"] is False and body["count"] == 0
    assert_error(admin.post("/api/security/password-breach-check", json={"password": "abc"}), 400, "password")
    assert_error(admin.post("/api/security/password-breach-check", json={}), 400, "password")
    with httpx.Client(base_url=server.url, headers={"Authorization": admin.headers["Authorization"]}) as bare:
        assert_error(bare.post("/api/security/password-breach-check", json={"password": "letmein"}), 403, "CSRF")
    journal = [e for e in server.sandbox.journal.entries if e["path"] == "/api/security/password-breach-check"]
    assert journal and all(e["body"].get("password") in (None, "***") for e in journal)
    assert "P@ssw0rd123" not in str(server.sandbox.store.snapshot())
    with server.client(API) as api:
        assert ok(api.post("/api/security/password-breach-check", json={"password": "letmein"}))["breached"] is True
    for email in (STAFF, AGENT, CONTRACTOR):
        with server.client(email) as c:
            assert_error(c.post("/api/security/password-breach-check", json={"password": "letmein"}), 403, FORBIDDEN)
