"""System settings, user administration from the settings screen, system logs and the licence check."""

from __future__ import annotations

from conftest import AGENT, CONTRACTOR, JOB_1001, OTHER_ADMIN, STAFF, assert_envelope_headers, assert_error, frozen

PATH = "/api/system/settings"
USERS = "/api/users/users"  # the same user administration, by uuid (user_admin.py)


def _users(client, **params) -> dict:
    r = client.get(PATH, params={"action": "get_users", **params})
    assert r.status_code == 200, r.text
    return r.json()


def _user(client, user_id: int) -> dict:
    return next(u for u in _users(client, limit=200)["data"] if u["id"] == user_id)


def _audit(client, uuid: str) -> list[str]:
    """The user's entries in the user-administration audit log, oldest first."""
    r = client.get(USERS, params={"action": "get_audit_log", "uuid": uuid})
    assert r.status_code == 200, r.text
    return [e["action"] for e in r.json()["data"]][::-1]


def test_settings_give_the_configuration_to_the_key_holder_only(server, admin, anon):
    r = admin.get(PATH)
    assert r.status_code == 200, r.text
    assert_envelope_headers(r)
    data = r.json()["data"]
    assert {"branding", "defaults", "features", "security", "integrations"} <= data.keys()
    assert data["defaults"]["currency"] == "GBP" and data["security"]["api_token_days"] == 90
    assert data["integrations"]["licence_key"].startswith("PROPOPS-")
    for email in (STAFF, AGENT, CONTRACTOR):
        with server.client(email) as client:
            assert_error(client.get(PATH), 403, "permission")
            assert_error(client.get(PATH, params={"action": "get_users"}), 403, "permission")
            assert_error(client.post(PATH, json={"action": "logout_user", "user_id": 1}), 403, "permission")
    assert_error(anon.get(PATH), 401)


def test_get_users_lists_the_organisation_with_decrypted_names(server, admin):
    body = _users(admin)
    assert body["total"] == 11 and body["count"] == 11
    assert {u["id"] for u in body["data"]} == {1, 2, 3, 4, 5, *range(7, 13)}
    agent = next(u for u in body["data"] if u["id"] == 3)
    assert agent["email"] == AGENT and agent["account_type"] == "Agent" and agent["role"] == "Agent"
    assert [u["id"] for u in _users(admin, limit=2, offset=1)["data"]] == [2, 3]
    assert_error(admin.get(PATH, params={"action": "get_users", "limit": 0}), 400, "limit")
    with server.client(OTHER_ADMIN) as other:
        assert [u["id"] for u in _users(other)["data"]] == [6]


def test_toggle_status_disables_and_signs_out_then_enables(server, admin):
    store = server.sandbox.store
    with server.client(STAFF) as staff:
        r = admin.post(PATH, json={"action": "toggle_status", "user_id": 2})
        assert r.status_code == 200 and r.json()["is_active"] is False, r.text
        assert_error(staff.get(PATH, params={"action": "get_users"}), 401)  # the session has ended
    assert store.raw("users", 2)["is_active"] is False and _user(admin, 2)["is_active"] is False
    assert admin.post(PATH, json={"action": "toggle_status", "user_id": 2}).json()["is_active"] is True
    with server.client(STAFF) as staff:  # can sign in again
        assert staff.get("/api/system/notifications", params={"action": "list"}).status_code == 200
    assert _audit(admin, store.raw("users", 2)["uuid"]) == ["toggle_status", "toggle_status"]


def test_toggle_status_lifts_a_blacklisting_as_the_users_api_does(server, admin):
    uuid = server.sandbox.store.raw("users", 7)["uuid"]
    assert admin.post(USERS, json={"action": "add_to_blacklist", "uuid": uuid}).status_code == 200
    r = admin.post(PATH, json={"action": "toggle_status", "user_id": 7})
    assert r.status_code == 200 and r.json()["is_active"] is True, r.text
    got = admin.get(USERS, params={"action": "get_user", "uuid": uuid}).json()["data"]
    assert (got["is_active"], got["account_status_id"]) == (True, 1)  # active, no longer blacklisted


def test_users_of_another_organisation_and_yourself_are_refused(server, admin):
    before = [dict(u) for u in server.sandbox.store.select("users", lambda r: True)]
    for action in ("toggle_status", "delete_user", "logout_user"):
        assert_error(admin.post(PATH, json={"action": action, "user_id": 6}), 404, "User not found")
        assert_error(admin.post(PATH, json={"action": action, "user_id": 999}), 404, "User not found")
        assert_error(admin.post(PATH, json={"action": action, "user_id": 1}), 400, "user_id", "your own")
        assert_error(admin.post(PATH, json={"action": action}), 400, "user_id")
    assert_error(admin.post(PATH, json={"action": "update_user", "user_id": 6, "data": {"first_name": "X"}}), 404)
    assert_error(admin.post(PATH, json={"action": "bulk_action", "user_ids": [7, 6], "data": {"operation": "delete"}}),
                 404, "User not found")
    assert_error(admin.post(PATH, json={"action": "bulk_action", "user_ids": [7, 1],
                                        "data": {"operation": "deactivate"}}), 400, "user_ids")
    assert [dict(u) for u in server.sandbox.store.select("users", lambda r: True)] == before


def test_update_user_changes_names_email_and_role(server, admin):
    store = server.sandbox.store
    r = admin.post(PATH, json={"action": "update_user", "user_id": 7,
                               "data": {"first_name": " Priya ", "email": "priya@sandbox.propops.test", "role": "API"}})
    assert r.status_code == 200, r.text
    assert r.json()["data"]["name"].startswith("Priya ") and r.json()["data"]["role"] == "API"
    got = _user(admin, 7)
    assert (got["first_name"], got["email"], got["role"]) == ("Priya", "priya@sandbox.propops.test", "API")
    assert store.raw("users", 7)["first_name"] != "Priya"  # ciphertext at rest
    assert server.sandbox.auth.find_user("priya@sandbox.propops.test")["ID"] == 7
    assert store.raw("users", 7)["updated_at"] == server.sandbox.clock.iso()
    assert _audit(admin, store.raw("users", 7)["uuid"]) == ["update_user"]


def test_update_user_deactivating_ends_the_sessions(server, admin):
    with server.client(STAFF) as staff:
        r = admin.post(PATH, json={"action": "update_user", "user_id": 2, "data": {"is_active": False}})
        assert r.status_code == 200 and r.json()["data"]["is_active"] is False, r.text
        assert_error(staff.get("/api/system/notifications", params={"action": "list"}), 401)
    assert server.sandbox.store.raw("users", 2)["is_active"] is False


def test_bad_updates_are_refused_without_changes(server, admin):
    store = server.sandbox.store
    before = dict(store.raw("users", 7))
    for data, name in (({}, "data"), ({"password": "x"}, "data"), ("text", "data"),
                       ({"first_name": ""}, "data.first_name"), ({"last_name": "x" * 101}, "data.last_name"),
                       ({"email": "not-an-email"}, "data.email"), ({"email": AGENT}, "data.email"),
                       ({"role": "Agent"}, "data.role"), ({"role": "Overlord"}, "data.role"),
                       ({"is_active": "no"}, "data.is_active")):
        assert_error(admin.post(PATH, json={"action": "update_user", "user_id": 7, "data": data}), 400, name)
    assert_error(admin.post(PATH, json={"action": "update_user", "user_id": 7}), 400, "data")
    assert_error(admin.post(PATH, json={"action": "rename", "user_id": 7}), 400, "action")
    assert store.raw("users", 7) == before


def test_delete_and_logout_user(server, admin):
    store = server.sandbox.store
    with server.client(AGENT) as agent:
        r = admin.post(PATH, json={"action": "logout_user", "user_id": 3})
        assert r.status_code == 200 and r.json()["sessions_ended"] == 1, r.text
        assert_error(agent.get("/api/search", params={"q": "boiler"}), 401)
    assert store.raw("users", 3)["is_active"] is True
    before = _users(admin)["total"]
    uuid = store.raw("users", 12)["uuid"]
    assert admin.post(PATH, json={"action": "delete_user", "user_id": 12}).status_code == 200
    # A soft delete, as DELETE through /api/users/users: kept with deleted_at, gone from every listing.
    assert store.raw("users", 12)["deleted_at"] == server.sandbox.clock.iso()
    assert store.raw("users", 12)["is_active"] is False
    assert _users(admin)["total"] == before - 1 and 12 not in {u["id"] for u in _users(admin)["data"]}
    assert_error(admin.get(USERS, params={"action": "get_user", "uuid": uuid}), 404, "User not found")
    assert_error(admin.post(PATH, json={"action": "delete_user", "user_id": 12}), 404, "User not found")
    assert _audit(admin, store.raw("users", 3)["uuid"]) == ["logout_user"]


def test_a_user_deleted_through_the_users_api_is_gone_here_too(server, admin):
    uuid = server.sandbox.store.raw("users", 11)["uuid"]
    assert admin.post(USERS, json={"action": "delete_user", "uuid": uuid}).status_code == 200
    assert 11 not in {u["id"] for u in _users(admin)["data"]}
    for action in ("toggle_status", "delete_user", "logout_user"):
        assert_error(admin.post(PATH, json={"action": action, "user_id": 11}), 404, "User not found")
    assert server.sandbox.store.raw("users", 11)["is_active"] is False  # not re-enabled by a toggle


def test_bulk_actions_apply_to_every_user(server, admin):
    store = server.sandbox.store
    bulk = lambda op, ids: admin.post(PATH, json={"action": "bulk_action", "user_ids": ids,  # noqa: E731
                                                  "data": {"operation": op}})
    r = bulk("deactivate", [7, 8, 8])
    assert r.status_code == 200 and r.json()["updated_count"] == 2 and r.json()["user_ids"] == [7, 8], r.text
    assert [store.raw("users", i)["is_active"] for i in (7, 8, 9)] == [False, False, True]
    assert bulk("activate", [7, 8]).status_code == 200
    assert [store.raw("users", i)["is_active"] for i in (7, 8)] == [True, True]
    assert bulk("delete", [9, 10]).status_code == 200
    assert store.raw("users", 9)["deleted_at"] and store.raw("users", 10)["deleted_at"]
    assert {9, 10}.isdisjoint(u["id"] for u in _users(admin)["data"])
    assert _audit(admin, store.raw("users", 7)["uuid"]) == ["bulk_action", "bulk_action"]
    with server.client(STAFF) as staff:
        assert bulk("logout", [2]).json()["updated_count"] == 1
        assert_error(staff.get("/api/system/notifications", params={"action": "list"}), 401)
    assert_error(bulk("explode", [7]), 400, "data.operation")
    assert_error(admin.post(PATH, json={"action": "bulk_action", "user_ids": [], "data": {"operation": "logout"}}),
                 400, "user_ids")
    with server.client("admin@sandbox.propops.test", csrf=False) as no_csrf:
        assert_error(no_csrf.post(PATH, json={"action": "bulk_action", "user_ids": [7],
                                              "data": {"operation": "deactivate"}}), 403, "CSRF")
    assert store.raw("users", 7)["is_active"] is True


def test_logs_show_the_organisations_activity_newest_first(server, admin):
    for body in ({"action": "update", "uuid": JOB_1001, "quote_no": "Q-77"},
                 {"action": "send_assignment_notification", "uuid": JOB_1001}):
        assert admin.post("/api/jobs/manage", json=body).status_code == 200
        server.sandbox.clock.advance(60)
    r = admin.get("/api/system/logs")
    assert r.status_code == 200, r.text
    entries = r.json()["data"]
    assert [e["created_at"] for e in entries] == sorted((e["created_at"] for e in entries), reverse=True)
    assert entries[0]["category"] == "email" and "job_assigned" in entries[0]["message"]
    assert any(e["category"] == "jobs" and e["message"].startswith("JOB-001: update") and e["user_id"] == 1
               for e in entries)
    assert any(e["category"] == "auth" and e["user_id"] == 1 for e in entries)
    jobs = admin.get("/api/system/logs", params={"category": "jobs"}).json()
    assert jobs["total"] == len(jobs["data"]) >= 1 and {e["category"] for e in jobs["data"]} == {"jobs"}
    assert len(admin.get("/api/system/logs", params={"limit": 1}).json()["data"]) == 1
    assert_error(admin.get("/api/system/logs", params={"limit": 201}), 400, "limit")
    assert_error(admin.get("/api/system/logs", params={"category": "kernel"}), 400, "category")
    with server.client(AGENT) as agent:  # not Staff: only their own entries
        own = agent.get("/api/system/logs").json()["data"]
        assert own and {e["user_id"] for e in own} == {3}
    with server.client(OTHER_ADMIN) as other:
        text = other.get("/api/system/logs").text
        assert "JOB-001" not in text and "job_assigned" not in text


def test_force_license_check_is_recorded(server, admin):
    now = frozen(server)
    r = admin.post("/api/system/status", json={"action": "force_license_check"})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["license_status"] == "valid" and data["checked_at"] == now
    assert server.sandbox.store.count("licence_checks") == 1
    assert admin.get("/api/system/logs", params={"category": "system"}).json()["total"] == 1
    assert_error(admin.post("/api/system/status", json={"action": "reboot"}), 400, "action")
    for email in (STAFF, AGENT):
        with server.client(email) as client:
            assert_error(client.post("/api/system/status", json={"action": "force_license_check"}), 403)
    with server.client("admin@sandbox.propops.test", csrf=False) as no_csrf:
        assert_error(no_csrf.post("/api/system/status", json={"action": "force_license_check"}), 403, "CSRF")
    assert server.sandbox.store.count("licence_checks") == 1
