"""In-app notifications (own only), system notices, organisation notices and web push subscriptions."""

from __future__ import annotations

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
)

PATH = "/api/system/notifications"


def _assign(admin) -> None:
    r = admin.post("/api/jobs/manage", json={"action": "send_assignment_notification", "uuid": JOB_1001})
    assert r.status_code == 200, r.text


def _mine(client, **params) -> dict:
    r = client.get(PATH, params={"action": "list", **params})
    assert r.status_code == 200, r.text
    assert_envelope_headers(r)
    return r.json()


def test_the_contractor_lists_reads_and_marks_their_notifications(server, admin):
    frozen(server)
    _assign(admin)
    server.sandbox.clock.advance(60)
    _assign(admin)
    with server.client(CONTRACTOR) as contractor:
        body = _mine(contractor)
        assert body["success"] is True and body["total"] == 2 and body["unread_count"] == 2 and body["count"] == 2
        newest, older = body["data"]
        assert newest["created_at"] > older["created_at"] and newest["id"] > older["id"]
        assert newest["type"] == "job_assigned" and newest["resource_type"] == "job"
        assert newest["resource_id"] == JOB_1001 and newest["is_read"] is False and "JOB-001" in newest["message"]
        assert [n["id"] for n in _mine(contractor, limit=1, offset=1)["data"]] == [older["id"]]

        r = contractor.get(PATH, params={"action": "get", "notification_id": older["id"]})
        assert r.status_code == 200 and r.json()["data"]["job_ref"] == "JOB-001" and r.json()["data"]["read_at"] is None

        r = contractor.post(PATH, json={"notification_id": older["id"]})
        assert r.status_code == 200 and r.json()["is_read"] is True, r.text
        assert server.sandbox.store.raw("notifications", older["id"])["is_read"] is True
        body = _mine(contractor, unread_only=True)
        assert body["unread_count"] == 1 and body["total"] == 1 and [n["id"] for n in body["data"]] == [newest["id"]]
        got = contractor.get(PATH, params={"action": "get", "notification_id": older["id"]}).json()["data"]
        assert got["is_read"] is True and got["read_at"] == server.sandbox.clock.iso()


def test_nobody_else_sees_or_marks_a_users_notification(server, admin):
    _assign(admin)
    note = server.sandbox.store.select("notifications", lambda r: True)[0]
    for email in (ADMIN, STAFF, AGENT, OTHER_ADMIN):
        with server.client(email) as client:
            assert _mine(client)["data"] == [], email
            assert_error(client.get(PATH, params={"action": "get", "notification_id": note["ID"]}), 404,
                         "Notification not found")
            assert_error(client.post(PATH, json={"notification_id": note["ID"]}), 404, "Notification not found")
    assert server.sandbox.store.raw("notifications", note["ID"])["is_read"] is False


def test_bad_notification_requests_are_refused_without_changes(server, admin):
    _assign(admin)
    note = server.sandbox.store.select("notifications", lambda r: True)[0]
    with server.client(CONTRACTOR) as contractor:
        assert_error(contractor.get(PATH, params={"action": "list", "limit": 101}), 400, "limit")
        assert_error(contractor.get(PATH, params={"action": "get"}), 400, "notification_id")
        assert_error(contractor.get(PATH, params={"action": "nope"}), 400, "action")
        assert_error(contractor.post(PATH, json={"notification_id": "abc"}), 400, "notification_id")
        assert_error(contractor.post(PATH, json={}), 400, "notification_id")
    with server.client(CONTRACTOR, csrf=False) as no_csrf:  # signing in again ends the earlier session
        assert_error(no_csrf.post(PATH, json={"notification_id": note["ID"]}), 403, "CSRF")
    assert server.sandbox.store.raw("notifications", note["ID"])["is_read"] is False


def _notices(client, **params) -> list[dict]:
    r = client.get(PATH, params=params)
    assert r.status_code == 200, r.text
    return r.json()["data"]


def test_system_notices_are_created_dismissed_and_deleted_by_managers(server, admin):
    now = frozen(server)
    r = admin.post(PATH, json={"action": "create", "title": "Scheduled Maintenance", "body": "Offline 02:00-04:00 UTC.",
                               "type": "warning"})
    assert r.status_code == 200 and r.json()["success"] is True, r.text
    first = r.json()["notification_id"]
    with server.client(STAFF) as staff:
        second = staff.post(PATH, json={"action": "create", "title": "Second", "body": "b"}).json()["notification_id"]
    for email in (STAFF, AGENT, CONTRACTOR):  # every signed-in user reads them
        with server.client(email) as client:
            assert [n["ID"] for n in _notices(client)] == [second, first], email
    listed = _notices(admin)
    assert listed[1] == {"ID": first, "title": "Scheduled Maintenance", "body": "Offline 02:00-04:00 UTC.",
                         "type": "warning", "is_active": True, "created_at": now}
    assert listed[0]["type"] == "info"
    with server.client(OTHER_ADMIN) as other:
        assert _notices(other, active_only=False) == []
        assert_error(other.post(PATH, json={"action": "dismiss", "notification_id": first}), 404, "not found")
        assert_error(other.post(PATH, json={"action": "delete", "notification_id": first}), 404, "not found")

    assert admin.post(PATH, json={"action": "dismiss", "notification_id": first}).status_code == 200
    assert [n["ID"] for n in _notices(admin)] == [second]
    assert [(n["ID"], n["is_active"]) for n in _notices(admin, active_only=False)] == [(second, True), (first, False)]
    assert admin.post(PATH, json={"action": "delete", "notification_id": first}).status_code == 200
    assert server.sandbox.store.raw("system_notices", first) is None
    assert_error(admin.post(PATH, json={"action": "delete", "notification_id": first}), 404, "Notification not found")


def test_system_notice_writes_need_the_key_valid_fields_and_csrf(server, admin):
    for email in (AGENT, CONTRACTOR):
        with server.client(email) as client:
            assert_error(client.post(PATH, json={"action": "create", "title": "t", "body": "b"}), 403, "permission")
    assert_error(admin.post(PATH, json={"action": "create", "body": "b"}), 400, "title")
    assert_error(admin.post(PATH, json={"action": "create", "title": "t", "body": "b", "type": "loud"}), 400, "type")
    assert_error(admin.post(PATH, json={"action": "dismiss"}), 400, "notification_id")
    with server.client(ADMIN, csrf=False) as no_csrf:
        assert_error(no_csrf.post(PATH, json={"action": "create", "title": "t", "body": "b"}), 403, "CSRF")
    assert server.sandbox.store.count("system_notices") == 0


def test_only_managers_dismiss_or_delete_system_notices(server, admin):
    made = admin.post(PATH, json={"action": "create", "title": "Kept", "body": "b"}).json()["notification_id"]
    for email in (AGENT, CONTRACTOR):  # they read notices but do not hold api.system.notifications.manage
        with server.client(email) as client:
            for action in ("dismiss", "delete"):
                assert_error(client.post(PATH, json={"action": action, "notification_id": made}), 403, "permission")
    assert server.sandbox.store.raw("system_notices", made)["is_active"] is True
    assert [n["ID"] for n in _notices(admin)] == [made]


def test_notices_are_targeted_by_account_type_and_expire(server, admin):
    expires = "2026-11-01T10:00:00Z"  # an hour after the clock start
    for title, targets, extra in (("For staff", [1], {"expires_at": expires, "show_on_login": True}),
                                  ("For agents and contractors", [2, 5], {}), ("For all", None, {"type": "success"})):
        body = {"action": "create", "title": title, "body": f"{title} body", **extra}
        if targets:
            body["target_account_types"] = targets
        r = admin.post("/api/notices", json=body)
        assert r.status_code == 200 and r.json()["success"] is True, r.text
    r = admin.get("/api/notices")
    assert r.status_code == 200 and r.json()["count"] == 2, r.text
    everyone, staff = r.json()["data"]
    assert everyone["title"] == "For all" and everyone["target_account_types"] == [1, 2, 3, 4, 5]
    assert everyone["type"] == "success" and everyone["expires_at"] is None
    assert everyone["created_by"] == "Sandbox Admin"
    assert staff["title"] == "For staff" and staff["show_on_login"] is True and staff["expires_at"] == expires
    server.sandbox.clock.advance(2 * 3600)
    assert [n["title"] for n in admin.get("/api/notices").json()["data"]] == ["For all"]
    with server.client(OTHER_ADMIN) as other:
        assert other.get("/api/notices").json()["data"] == []
    with server.client(STAFF) as staff_client:  # notices are for the Staff account type (guide)
        assert [n["title"] for n in staff_client.get("/api/notices").json()["data"]] == ["For all"]
        made = staff_client.post("/api/notices", json={"action": "create", "title": "By staff", "body": "b"})
        assert made.status_code == 200, made.text
    with server.client(AGENT) as agent:  # the Agent role does not hold api.system.notices.manage
        assert_error(agent.get("/api/notices"), 403, "permission")


def test_bad_notices_are_refused_without_changes(server, admin):
    for fields, name in (({"title": "x" * 101}, "title"), ({"target_account_types": [9]}, "target_account_types"),
                         ({"target_account_types": [1, 0]}, "target_account_types"),
                         ({"expires_at": "soon"}, "expires_at"), ({"type": "critical"}, "type"),
                         ({"body": "   "}, "body"), ({"show_on_login": "maybe"}, "show_on_login")):
        body = {"action": "create", "title": "Title", "body": "Body", **fields}
        assert_error(admin.post("/api/notices", json=body), 400, name)
    assert_error(admin.post("/api/notices", json={"title": "t", "body": "b"}), 400, "action")
    with server.client(ADMIN, csrf=False) as no_csrf:
        assert_error(no_csrf.post("/api/notices", json={"action": "create", "title": "t", "body": "b"}), 403, "CSRF")
    assert server.sandbox.store.count("notices") == 0


PUSH = "/api/system/web-push-subscriptions"
SUB = {"endpoint": "https://fcm.googleapis.com/fcm/send/abc123", "public_key": "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4Y",
       "auth_token": "tBHItJI5svbpez7KI4CCXg", "browser": "Chrome"}


def test_each_user_registers_web_push_subscriptions(server, admin):
    store = server.sandbox.store
    first = admin.post(PUSH, json=SUB)
    assert first.status_code == 200 and first.json()["success"] is True, first.text
    again = admin.post(PUSH, json={**SUB, "browser": "Chrome 130", "auth_token": "new-secret"})
    assert again.json()["subscription_id"] == first.json()["subscription_id"]
    with server.client(CONTRACTOR) as contractor:
        assert contractor.post(PUSH, json={k: v for k, v in SUB.items() if k != "browser"}).status_code == 200
    rows = [store.reveal("push_subscriptions", r) for r in store.select("push_subscriptions", lambda r: True)]
    assert [(r["user_id"], r["browser"], r["auth_token"]) for r in rows] == [(1, "Chrome 130", "new-secret"),
                                                                             (4, None, SUB["auth_token"])]


def test_bad_web_push_subscriptions_are_refused(server, admin):
    assert_error(admin.post(PUSH, json={**SUB, "endpoint": "http://insecure.example/x"}), 400, "endpoint")
    assert_error(admin.post(PUSH, json={**SUB, "endpoint": "not a url"}), 400, "endpoint")
    assert_error(admin.post(PUSH, json={k: v for k, v in SUB.items() if k != "public_key"}), 400, "public_key")
    assert_error(admin.post(PUSH, json={**SUB, "auth_token": ["x"]}), 400, "auth_token")
    with server.client(ADMIN, csrf=False) as no_csrf:
        assert_error(no_csrf.post(PUSH, json=SUB), 403, "CSRF")
    assert server.sandbox.store.count("push_subscriptions") == 0
