"""The spine over real HTTP: envelope, errors, headers, login, tokens, CSRF, permissions, rate limits."""

from __future__ import annotations

import datetime as dt
import re

import httpx
import pytest
from conftest import (
    ACCOUNTS,
    ADMIN,
    AGENT,
    API,
    CLOCK_START,
    CONTRACTOR,
    JOB_1001,
    STAFF,
    assert_envelope_headers,
    assert_error,
)

from sandbox import Settings
from sandbox.testing import LiveServer

CREATE = {
    "action": "create", "job_title": "Leaking tap", "job_description": "Kitchen tap drips.",
    "priority_id": 2, "status_id": 1, "job_type_id": 1, "address_id": 5,
}


# -- envelope and routing ------------------------------------------------------------------------

def test_health_check_needs_no_token_and_bare_heartbeat_does(anon):
    r = anon.get("/api/system/heartbeat", params={"health_check": 1})
    assert r.status_code == 200
    body = r.json()
    assert body["success"] is True and body["status"] == "operational" and body["service"] == "PropOps Platform"
    assert_envelope_headers(r)
    assert_error(anon.get("/api/system/heartbeat"), 401, "Authentication required. Please log in.")


@pytest.mark.parametrize(("method", "path", "status", "words"), [
    ("GET", "/api/no/such/thing", 404, ("Endpoint not found", "/api/no/such/thing")),
    ("GET", "/api/", 404, ("Endpoint not found",)),
    ("PATCH", "/api/jobs/manage", 405, ("PATCH", "GET, POST")),
    ("DELETE", "/api/auth/login", 405, ("DELETE",)),
])
def test_unknown_paths_and_methods_answer_in_the_envelope(anon, method, path, status, words):
    r = anon.request(method, path)
    assert_error(r, status, *words)
    if status == 405:
        assert r.headers["Allow"] == ("GET, POST" if "jobs" in path else "POST")


def test_missing_and_unknown_action_are_400_naming_action(admin):
    assert_error(admin.get("/api/jobs/manage"), 400, "action", "get, get_assignment_notification_state", "list")
    assert_error(admin.get("/api/jobs/manage", params={"action": "explode"}), 400, "action", "'explode'")
    assert_error(admin.post("/api/jobs/manage", json={"action": 7}), 400, "action")


@pytest.mark.parametrize(("content", "ctype", "words"), [
    (b'{"action": "create",', "application/json", ("Malformed JSON body",)),
    (b"[1, 2]", "application/json", ("Malformed JSON body", "object")),
    (b"\xff\xfe", "application/json", ("Malformed JSON body",)),
    (b"action=create", "text/plain", ("Unsupported Content-Type",)),
    (b"--x\r\nContent-Disposition: form-data\r\n\r\nbroken", "multipart/form-data; boundary=x", ("multipart",)),
])
def test_malformed_bodies_are_400_and_change_nothing(server, admin, content, ctype, words):
    before = server.sandbox.store.count("jobs")
    assert_error(admin.post("/api/jobs/manage", content=content, headers={"Content-Type": ctype}), 400, *words)
    assert server.sandbox.store.count("jobs") == before


def test_oversized_json_body_is_refused(admin):
    r = admin.post("/api/jobs/manage", content=b'{"a":"' + b"x" * (3 * 1024 * 1024) + b'"}',
                   headers={"Content-Type": "application/json"})
    assert_error(r, 413, "too large")


def test_unexpected_exception_is_a_500_envelope_and_one_log_line(server, admin, caplog, monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(server.sandbox.store, "select", explode)
    with caplog.at_level("ERROR", logger="sandbox"):
        r = admin.get("/api/jobs/manage", params={"action": "list"})
    body = assert_error(r, 500)
    assert "disk on fire" not in r.text and "Traceback" not in r.text
    assert body == {"success": False, "error": body["error"]}
    lines = [rec for rec in caplog.records if rec.name == "sandbox"]
    assert len(lines) == 1 and "disk on fire" in lines[0].getMessage() and "\n" not in lines[0].getMessage()


# -- login and tokens ----------------------------------------------------------------------------

@pytest.mark.parametrize("email", ACCOUNTS)
def test_every_demo_account_logs_in(anon, email):
    r = anon.post("/api/auth/login", json={"email": email, "password": "sandbox"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert re.fullmatch(r"[0-9a-f]{64}", body["token"]) and body["token_type"] == "Bearer"
    expires = dt.datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
    assert dt.timedelta(days=89, hours=23) < expires - CLOCK_START < dt.timedelta(days=90, minutes=5)
    assert body["user"]["email"] == email and body["user"]["account_type"] in ("Staff", "Agent", "Contractor")
    assert_envelope_headers(r)


def test_login_accepts_a_form_body_too(anon):
    r = anon.post("/api/auth/login", data={"email": STAFF, "password": "sandbox"})
    assert r.status_code == 200 and r.json()["user"]["account_type"] == "Staff"


@pytest.mark.parametrize(("payload", "status"), [
    ({"email": ADMIN, "password": "wrong"}, 401),
    ({"email": "nobody@sandbox.propops.test", "password": "sandbox"}, 401),
    ({"email": ADMIN}, 400),
    ({"password": "sandbox"}, 400),
    ({"email": ["a"], "password": "sandbox"}, 400),
])
def test_bad_logins(anon, payload, status):
    assert_error(anon.post("/api/auth/login", json=payload), status)


def test_a_new_login_revokes_the_previous_token(server, anon):
    first = server.login(STAFF)
    second = server.login(STAFF)
    assert first != second
    ok = anon.get("/api/users/permissions", headers={"Authorization": f"Bearer {second}"})
    assert ok.status_code == 200
    assert_error(anon.get("/api/users/permissions", headers={"Authorization": f"Bearer {first}"}), 401,
                 "Authentication required. Please log in.")
    # Another account's login does not touch this one.
    server.login(ADMIN)
    assert anon.get("/api/users/permissions", headers={"Authorization": f"Bearer {second}"}).status_code == 200


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer " + "0" * 64, "Basic YWRtaW46c2FuZGJveA==", "Bearer a b"])
def test_missing_or_unknown_tokens_are_401(anon, header):
    headers = {"Authorization": header} if header else {}
    assert_error(anon.get("/api/jobs/manage", params={"action": "list"}, headers=headers), 401,
                 "Authentication required. Please log in.")


def test_an_expired_token_is_401(server, anon):
    token = server.login(ADMIN)
    headers = {"Authorization": f"Bearer {token}"}
    assert anon.get("/api/users/permissions", headers=headers).status_code == 200
    server.sandbox.clock.advance(dt.timedelta(days=90, seconds=1).total_seconds())
    assert_error(anon.get("/api/users/permissions", headers=headers), 401)


# -- permissions ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("email", "role", "account_type", "has", "lacks"), [
    (ADMIN, "SysOps", "Staff", ("api.admin.roles.manage", "api.jobs.manage.manage"), ()),
    (STAFF, "Staff", "Staff", ("api.jobs.manage.manage",), ("api.admin.roles.manage", "api.system.status.manage")),
    (API, "API", "Staff", ("api.jobs.manage.manage", "api.tenants.list.manage"), ("api.admin.roles.manage",)),
    (AGENT, "Agent", "Agent", ("api.jobs.manage.manage",), ("api.financial.invoices.manage",)),
    (CONTRACTOR, "Contractor", "Contractor", ("api.jobs.manage.list",), ("api.jobs.manage.manage",)),
])
def test_permissions_lists_the_callers_own_keys(server, email, role, account_type, has, lacks):
    with server.client(email, csrf=False) as client:
        r = client.get("/api/users/permissions")
    assert r.status_code == 200
    data = r.json()["data"]
    assert data["role"] == role and data["account_type"] == account_type
    assert all(data["permissions"].get(k) is True for k in has)
    assert not any(k in data["permissions"] for k in lacks)


def test_missing_permission_key_is_403_with_the_documented_message(server):
    with server.client(STAFF, csrf=False) as staff:
        assert_error(staff.get("/api/system/status"), 403, "You do not have permission to perform this action")
    with server.client(ADMIN, csrf=False) as admin:
        assert admin.get("/api/system/status").json()["online_users_count"] >= 1


# -- CSRF ------------------------------------------------------------------------------------------

def test_csrf_token_is_issued_per_session(server):
    with server.client(ADMIN, csrf=False) as client:
        r = client.get("/api/security/csrf-token")
        assert r.status_code == 200 and r.json()["message"] == "CSRF token issued"
        assert re.fullmatch(r"[0-9a-f]{64}", r.json()["data"]["token"])
    with httpx.Client(base_url=server.url) as anon:
        assert_error(anon.get("/api/security/csrf-token"), 401)


@pytest.mark.parametrize("how", ["header", "json", "form"])
def test_writes_with_a_valid_csrf_token_pass_in_every_documented_place(server, how):
    with server.client(ADMIN, csrf=False) as client:
        token = client.get("/api/security/csrf-token").json()["data"]["token"]
        if how == "header":
            r = client.post("/api/jobs/manage", json=CREATE, headers={"X-CSRF-Token": token})
        elif how == "json":
            r = client.post("/api/jobs/manage", json={**CREATE, "csrf_token": token})
        else:
            r = client.post("/api/jobs/manage", data={**CREATE, "csrf_token": token})
    assert r.status_code == 201, r.text


@pytest.mark.parametrize("token", [None, "", "f" * 64])
def test_writes_without_a_valid_csrf_token_are_403_and_change_nothing(server, token):
    before = server.sandbox.store.count("jobs")
    with server.client(ADMIN, csrf=False) as client:
        payload = CREATE if token is None else {**CREATE, "csrf_token": token}
        assert_error(client.post("/api/jobs/manage", json=payload), 403, "CSRF")
    assert server.sandbox.store.count("jobs") == before


def test_a_csrf_token_belongs_to_its_session(server):
    with server.client(STAFF, csrf=False) as staff:
        stolen = staff.get("/api/security/csrf-token").json()["data"]["token"]
    with server.client(ADMIN, csrf=False) as admin:
        assert_error(admin.post("/api/jobs/manage", json={**CREATE, "csrf_token": stolen}), 403, "CSRF")


def test_csrf_tokens_are_reusable_by_default_and_single_use_when_switched_on():
    for single_use, second_status in ((False, 201), (True, 403)):
        with LiveServer(Settings(clock_start=CLOCK_START, csrf_single_use=single_use)) as server, \
                server.client(ADMIN) as client:
            assert client.post("/api/jobs/manage", json=CREATE).status_code == 201
            assert client.post("/api/jobs/manage", json=CREATE).status_code == second_status


# -- rate limits ---------------------------------------------------------------------------------

def test_rate_limit_headers_count_down_and_429_carries_retry_after():
    with LiveServer(Settings(clock_start=CLOCK_START, rate_limit=5)) as server, \
            httpx.Client(base_url=server.url) as anon:
        seen = [anon.get("/api/system/heartbeat", params={"health_check": 1}) for _ in range(5)]
        assert [int(r.headers["X-RateLimit-Remaining"]) for r in seen] == [4, 3, 2, 1, 0]
        assert all(r.headers["X-RateLimit-Limit"] == "5" for r in seen)
        refused = anon.get("/api/system/heartbeat", params={"health_check": 1})
        assert_error(refused, 429, "Rate limit exceeded")
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert int(refused.headers["X-RateLimit-Reset"]) >= int(seen[0].headers["X-RateLimit-Reset"])


def test_rate_limit_is_kept_per_account_as_well_as_per_ip():
    with LiveServer(Settings(clock_start=CLOCK_START, rate_limit=6)) as server:
        token = server.login(STAFF)  # one request from 127.0.0.1
        other = server.login(AGENT)
        auth = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=server.url, headers=auth) as first:
            for _ in range(4):
                assert first.get("/api/users/permissions").status_code == 200
        # A second address: its own IP budget, but the same account has spent 4 of 6.
        transport = httpx.HTTPTransport(local_address="127.0.0.2")
        with httpx.Client(base_url=server.url, transport=transport) as elsewhere:
            assert elsewhere.get("/api/users/permissions", headers=auth).status_code == 200
            assert elsewhere.get("/api/users/permissions", headers=auth).status_code == 200
            assert_error(elsewhere.get("/api/users/permissions", headers=auth), 429)
            ok = elsewhere.get("/api/users/permissions", headers={"Authorization": f"Bearer {other}"})
            assert ok.status_code == 200


# -- organisations -----------------------------------------------------------------------------------

def test_another_organisations_job_is_404_exactly_like_a_missing_one(server):
    with server.client("admin@other.propops.test", csrf=True) as other:
        theirs = other.get("/api/jobs/manage", params={"action": "get", "uuid": JOB_1001})
        missing = other.get("/api/jobs/manage", params={"action": "get", "uuid": JOB_1001[:-1] + "9"})
        assert theirs.status_code == missing.status_code == 404
        assert theirs.json() == missing.json()
        upd = other.post("/api/jobs/manage", json={"action": "update", "uuid": JOB_1001, "job_title": "x"})
        assert_error(upd, 404, "Job not found")
        rows = other.get("/api/jobs/manage", params={"action": "list", "limit": 200}).json()["data"]
        assert rows and all(row["ID"] != 1001 for row in rows)


def test_an_integer_beyond_64_bits_is_a_400_naming_the_field(admin):
    """Was a 500: the value reached the JSON encoder, which stops at 64 bits (found by schemathesis)."""
    r = admin.get("/api/jobs/manage", params={"action": "list", "offset": str(2**70)})
    assert_error(r, 400, "offset", "64-bit")
    r = admin.post("/api/jobs/manage", json={"action": "update", "uuid": "550e8400-e29b-41d4-a716-446655440001",
                                             "priority_id": -(2**64)})
    assert_error(r, 400, "priority_id")
