"""Password reset over real HTTP: request (neutral answer, the recorded e-mail with a seed-derived one-time
link, three per 15 minutes), reset (new password works, old one and old sessions do not, tokens single-use
and one hour), and admin_reset (temporary password, must change it, roles, another organisation, CSRF)."""

from __future__ import annotations

import hashlib
import re

import httpx
from conftest import ADMIN, AGENT, API, CONTRACTOR, OTHER_ADMIN, STAFF, assert_envelope_headers, assert_error

PATH = "/api/password-reset"
NEUTRAL = "If an account exists for that address, a reset link has been sent."
INVALID = "Reset token is invalid or has expired."
NEW = "N3w-Passw0rd!"


def ok(r, message: str | None = None) -> dict:
    assert r.status_code == 200, r.text
    assert_envelope_headers(r)
    body = r.json()
    assert body["success"] is True
    if message:
        assert body["message"] == message
    return body


def emails(server, template: str = "password_reset") -> list[dict]:
    store = server.sandbox.store
    return [store.reveal("emails", r) for r in store.select("emails", lambda r: r["template"] == template)]


def token_in(email: dict) -> str:
    return re.search(r"token=([0-9a-f]{64})", email["body"]).group(1)


def login(server, email: str, password: str) -> int:
    return httpx.post(server.url + "/api/auth/login", json={"email": email, "password": password}).status_code


def test_request_answers_neutrally_and_emails_a_seeded_token(server, anon):
    ok(anon.post(PATH, json={"action": "request", "email": STAFF}), NEUTRAL)
    [sent] = emails(server)
    assert sent["to"] == STAFF and sent["org_id"] == 1 and sent["subject"] == "Reset your PropOps password"
    expected = hashlib.sha256(b"propops-sandbox:42:password-reset:1").hexdigest()
    assert token_in(sent) == expected  # derived from the seed, like session tokens
    stored = server.sandbox.store.select("password_resets")[0]
    assert expected not in str(stored) and stored["token_hash"] == hashlib.sha256(expected.encode()).hexdigest()
    assert "token=" not in str(server.sandbox.store.raw("emails", sent["ID"]))  # the body is encrypted at rest
    ok(anon.post(PATH, json={"action": "request", "email": "nobody@example.com"}), NEUTRAL)  # no enumeration
    assert len(emails(server)) == 1
    before = server.sandbox.store.count("password_resets")
    for fields, word in (({"action": "request"}, "email"), ({"action": "request", "email": "not-an-email"}, "email"),
                         ({"action": "forgot", "email": STAFF}, "action")):
        assert_error(anon.post(PATH, json=fields), 400, word)
    assert server.sandbox.store.count("password_resets") == before


def test_three_reset_emails_per_fifteen_minutes(server, anon):
    for _ in range(4):
        ok(anon.post(PATH, json={"action": "request", "email": AGENT}), NEUTRAL)
    assert len(emails(server)) == 3
    server.sandbox.clock.advance(15 * 60 + 1)
    ok(anon.post(PATH, json={"action": "request", "email": AGENT}), NEUTRAL)
    sent = emails(server)
    assert len(sent) == 4
    old, new = token_in(sent[0]), token_in(sent[-1])
    assert_error(anon.post(PATH, json={"action": "reset", "token": old, "password": NEW}), 400, INVALID)
    ok(anon.post(PATH, json={"action": "reset", "token": new, "password": NEW}))  # only the latest link works


def test_reset_sets_the_password_once_and_ends_sessions(server, anon):
    with server.client(CONTRACTOR) as contractor:
        ok(anon.post(PATH, json={"action": "request", "email": CONTRACTOR}))
        token = token_in(emails(server)[0])
        hashes = [u["password_hash"] for u in server.sandbox.store.select("users")]
        for fields, word in (({"token": token}, "password"), ({"password": NEW}, "token"),
                             ({"token": token, "password": "short1!"}, "password"),
                             ({"token": token, "password": "nouppercase1!"}, "password"),
                             ({"token": token, "password": "NoSpecial123"}, "password"),
                             ({"token": "0" * 64, "password": NEW}, INVALID)):
            assert_error(anon.post(PATH, json={"action": "reset", **fields}), 400, word)
        assert [u["password_hash"] for u in server.sandbox.store.select("users")] == hashes  # nothing changed
        assert contractor.get("/api/security/csrf-token").status_code == 200
        ok(anon.post(PATH, json={"action": "reset", "token": token, "password": NEW}),
           "Password reset successfully. You can now log in.")
        assert contractor.get("/api/security/csrf-token").status_code == 401  # signed out everywhere
    assert login(server, CONTRACTOR, "sandbox") == 401 and login(server, CONTRACTOR, NEW) == 200
    assert_error(anon.post(PATH, json={"action": "reset", "token": token, "password": "An0ther-one!"}), 400, INVALID)
    assert emails(server, "password_changed")[0]["to"] == CONTRACTOR
    with server.client(ADMIN) as admin:
        log = admin.get("/api/admin/activity-log", params={"user_id": 4}).json()["data"]
        assert [e["action"] for e in log] == ["password.reset", "password.reset_requested"]
        status = {s["user_id"]: s for s in admin.get("/api/admin/password-breach-status").json()["data"]}
        assert status[4]["status"] == "safe" and status[2]["status"] == "breached"


def test_reset_links_expire_after_an_hour(server, anon):
    ok(anon.post(PATH, json={"action": "request", "email": STAFF}))
    token = token_in(emails(server)[0])
    server.sandbox.clock.advance(3600)
    assert_error(anon.post(PATH, json={"action": "reset", "token": token, "password": NEW}), 400, INVALID)
    assert login(server, STAFF, "sandbox") == 200


def test_admin_reset_sets_a_temporary_password(server, admin):
    staff = server.sandbox.store.raw("users", 2)
    ok(admin.post(PATH, json={"action": "admin_reset", "user_uuid": staff["uuid"], "new_password": "Temp-Pass1!"}))
    assert server.sandbox.store.raw("users", 2)["must_change_password"] is True
    assert login(server, STAFF, "sandbox") == 401 and login(server, STAFF, "Temp-Pass1!") == 200
    journal = [e for e in server.sandbox.journal.entries if e["path"] == PATH]
    assert journal[-1]["body"]["new_password"] == "***"  # the temporary password is never kept
    hashes = [u["password_hash"] for u in server.sandbox.store.select("users")]
    other_user = server.sandbox.store.raw("users", 6)["uuid"]
    missing = "00000000-0000-4000-8000-00000000dead"
    cases = [({"user_uuid": staff["uuid"], "new_password": "weak"}, 400, "new_password"),
             ({"new_password": "Temp-Pass1!"}, 400, "user_uuid"),
             ({"user_uuid": other_user, "new_password": "Temp-Pass1!"}, 404, "User not found"),
             ({"user_uuid": missing, "new_password": "Temp-Pass1!"}, 404, "User not found"),
             ({"user_uuid": server.sandbox.store.raw("users", 1)["uuid"], "new_password": "Temp-Pass1!"}, 400, "own")]
    for fields, status, word in cases:
        assert_error(admin.post(PATH, json={"action": "admin_reset", **fields}), status, word)
    with httpx.Client(base_url=server.url, headers={"Authorization": admin.headers["Authorization"]}) as bare:
        assert_error(bare.post(PATH, json={"action": "admin_reset", "user_uuid": staff["uuid"],
                                           "new_password": "Temp-Pass1!"}), 403, "CSRF")
    with httpx.Client(base_url=server.url) as anon:
        assert anon.post(PATH, json={"action": "admin_reset", "user_uuid": staff["uuid"],
                                     "new_password": "Temp-Pass1!"}).status_code == 401
    for email in (AGENT, CONTRACTOR, API):  # no api.users.users.manage
        with server.client(email) as c:
            assert_error(c.post(PATH, json={"action": "admin_reset", "user_uuid": staff["uuid"],
                                            "new_password": "Temp-Pass1!"}), 403, "permission")
    with server.client(OTHER_ADMIN) as other:
        assert_error(other.post(PATH, json={"action": "admin_reset", "user_uuid": staff["uuid"],
                                            "new_password": "Temp-Pass1!"}), 404, "User not found")
    assert [u["password_hash"] for u in server.sandbox.store.select("users")] == hashes


def test_admin_reset_respects_levels_and_deleted_users(server, admin):
    """Only users below the caller's level (a peer at the same level is refused), never a deleted user."""
    store = server.sandbox.store
    staff_role = next(r["ID"] for r in admin.get("/api/admin/roles").json()["data"] if r["role_name"] == "Staff")
    ok(admin.post("/api/admin/staff-permissions", json={"permissions": [
        {"role_id": staff_role, "permission_key": "api.users.users.manage", "permission_value": True}]}))
    peer = next(u for u in store.select("users") if u["org_id"] == 1 and u["role"] == "Staff" and u["ID"] != 2)
    agent = next(u for u in store.select("users") if u["org_id"] == 1 and u["role"] == "Agent")
    created = ok(admin.post("/api/users/users", json={
        "action": "create_user", "first_name": "Gone", "last_name": "User", "email": "gone@sandbox.propops.test",
        "password": "Whatever#1"}))
    ok(admin.post("/api/users/users", json={"action": "delete_user", "uuid": created["data"]["uuid"]}))
    assert_error(admin.post(PATH, json={"action": "admin_reset", "user_uuid": created["data"]["uuid"],
                                        "new_password": "Temp-Pass1!"}), 404, "User not found")
    hashes = {u["ID"]: u["password_hash"] for u in store.select("users")}
    with server.client(STAFF) as staff:
        for target in (store.raw("users", 1), peer):
            assert_error(staff.post(PATH, json={"action": "admin_reset", "user_uuid": target["uuid"],
                                                "new_password": "Temp-Pass1!"}), 403, "at or above your own level")
        assert {u["ID"]: u["password_hash"] for u in store.select("users")} == hashes
        ok(staff.post(PATH, json={"action": "admin_reset", "user_uuid": agent["uuid"], "new_password": "Temp-Pass1!"}))
    assert login(server, AGENT, "Temp-Pass1!") == 200 and store.raw("users", agent["ID"])["must_change_password"]
