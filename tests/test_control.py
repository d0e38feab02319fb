"""The control plane over real HTTP: reset, snapshots, the journal, the clock, accounts, the guard."""

from __future__ import annotations

import datetime as dt
import json

import httpx
import pytest
from conftest import CLOCK_START, JOB_1001, job

from sandbox import Settings
from sandbox.testing import LiveServer


def control(server, method, path, **kwargs):
    r = httpx.request(method, server.url + "/_sandbox/" + path, **kwargs)
    return r


def test_reset_returns_to_the_seeded_baseline(server, admin):
    store = server.sandbox.store
    tables = ("jobs", "case_notes", "pins")
    before = json.dumps({t: store.select(t) for t in tables})  # rows are live dicts: serialise them
    admin.post("/api/jobs/manage", json={"action": "update", "uuid": JOB_1001, "job_title": "Changed"})
    admin.post("/api/jobs/case-notes", json={"job_uuid": JOB_1001, "message": "hello"})
    admin.post("/api/jobs/toggle-pin", json={"job_uuid": JOB_1001})
    server.sandbox.clock.advance(86400)
    control(server, "PUT", "scenario", json={"scenario": "slow"})
    r = control(server, "POST", "reset")
    assert r.status_code == 200 and r.json()["data"]["reset"] is True
    assert json.dumps({t: store.select(t) for t in tables}) == before
    assert server.sandbox.clock.iso() < "2026-11-01T09:05:00Z"  # back at the clock start
    assert control(server, "GET", "scenario").json()["data"]["scenario"] == ["default"]
    assert control(server, "GET", "requests").json()["count"] == 0
    # Tokens issued before the reset are gone; a fresh login works.
    assert admin.get("/api/users/permissions").status_code == 401
    with server.client() as fresh:
        assert job(fresh)["job_title"] == "Boiler Service - Unit 001"


def test_snapshots_save_restore_list_delete(server, admin):
    admin.post("/api/jobs/manage", json={"action": "update", "uuid": JOB_1001, "job_title": "Saved"})
    assert control(server, "POST", "snapshots", json={"name": "saved"}).status_code == 200
    admin.post("/api/jobs/manage", json={"action": "update", "uuid": JOB_1001, "job_title": "Later"})
    assert [s["name"] for s in control(server, "GET", "snapshots").json()["data"]] == ["saved"]
    assert control(server, "POST", "snapshots/saved/restore").status_code == 200
    assert job(admin)["job_title"] == "Saved"  # the session of the snapshot is live again
    assert control(server, "DELETE", "snapshots/saved").status_code == 200
    assert control(server, "POST", "snapshots/saved/restore").status_code == 404
    assert control(server, "POST", "snapshots", json={"name": ""}).status_code == 400
    assert control(server, "POST", "snapshots", content=b"{nope").status_code == 400


def test_the_journal_records_masks_and_filters(server, admin):
    control(server, "DELETE", "requests")
    admin.post("/api/jobs/manage", json={"action": "update", "uuid": JOB_1001, "access_details": "Code 9999"})
    admin.get("/api/jobs/manage", params={"action": "nope"})
    with httpx.Client(base_url=server.url) as anon:
        anon.post("/api/auth/login", json={"email": "staff@sandbox.propops.test", "password": "sandbox"})
    rows = control(server, "GET", "requests").json()["data"]
    assert [(r["method"], r["status"]) for r in rows] == [("POST", 200), ("GET", 400), ("POST", 200)]
    update, _, login = rows
    assert update["body"]["access_details"] == "***" and update["body"]["uuid"] == JOB_1001
    assert login["body"] == {"email": "***", "password": "***"}  # e-mail is personal data (encrypted at rest)
    assert all("Code 9999" not in str(r) and "sandbox\"" not in str(r["body"]) for r in rows)
    assert control(server, "GET", "requests", params={"status": 400}).json()["count"] == 1
    assert control(server, "GET", "requests", params={"method": "post", "path": "/api/auth/*"}).json()["count"] == 1
    assert control(server, "GET", "requests", params={"since": rows[0]["id"]}).json()["count"] == 2
    assert control(server, "GET", "requests", params={"status": "x"}).status_code == 400


def test_the_journal_names_the_scenario_effects(server, admin):
    control(server, "PUT", "scenario", json={"scenario": "maintenance"})
    with server.client("agent@sandbox.propops.test", csrf=False) as agent:
        assert agent.get("/api/jobs/manage", params={"action": "list"}).status_code == 503
    last = control(server, "GET", "requests", params={"status": 503}).json()["data"][-1]
    assert last["scenario"] == "maintenance" and last["effects"] == ["maintenance"]


def test_the_clock_moves_sla_from_within_to_breached(server, admin):
    control(server, "POST", "clock", json={"freeze": True})
    uuid = admin.post("/api/jobs/manage", json={
        "action": "create", "job_title": "Gas leak", "job_description": "Smell of gas", "priority_id": 4,
        "status_id": 1, "job_type_id": 3, "address_id": 5}).json()["job_uuid"]

    def state():
        details = admin.get("/api/jobs/sla-status", params={"limit": 200}).json()["data"]["breach_details"]
        return next((d["sla_state"] for d in details if d["job_uuid"] == uuid), "within")

    assert state() == "within"
    r = control(server, "POST", "clock", json={"advance_seconds": 29 * 3600})
    assert r.json()["data"]["frozen"] is True
    assert state() == "breached"


def test_clock_set_freeze_and_bad_input(server):
    r = control(server, "POST", "clock", json={"set": "2027-01-01T00:00:00Z", "freeze": True})
    assert r.json()["data"] == {"now": "2027-01-01T00:00:00Z", "frozen": True, "start": "2026-11-01T09:00:00Z"}
    assert control(server, "GET", "clock").json()["data"]["now"] == "2027-01-01T00:00:00Z"
    for body in ({}, {"set": "soon"}, {"advance_seconds": "1"}, {"freeze": "yes"}):
        assert control(server, "POST", "clock", json=body).status_code == 400


def test_moving_the_clock_expires_tokens_and_opens_rate_windows():
    with LiveServer(Settings(clock_start=CLOCK_START, rate_limit=3, rate_window=60)) as server, \
            httpx.Client(base_url=server.url) as anon:
        for _ in range(3):
            anon.get("/api/system/heartbeat", params={"health_check": 1})
        assert anon.get("/api/system/heartbeat", params={"health_check": 1}).status_code == 429
        control(server, "POST", "clock", json={"advance_seconds": 61})
        assert anon.get("/api/system/heartbeat", params={"health_check": 1}).status_code == 200
        token = server.login()
        control(server, "POST", "clock", json={"advance_seconds": 91 * 86400})
        assert anon.get("/api/users/permissions", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_accounts_lists_demo_accounts_with_live_tokens(server):
    token = server.login("agent@sandbox.propops.test")
    rows = control(server, "GET", "accounts").json()["data"]
    assert len(rows) == 6 and {r["password"] for r in rows} == {"sandbox"}
    agent = next(r for r in rows if r["email"] == "agent@sandbox.propops.test")
    assert agent["tokens"] == [token] and agent["role"] == "Agent" and agent["account_type"] == "Agent"


def test_the_admin_key_guards_the_control_plane():
    with LiveServer(Settings(clock_start=CLOCK_START, admin_key="s3cret")) as server:
        assert control(server, "POST", "reset").status_code == 401
        wrong = control(server, "GET", "clock", headers={"X-Sandbox-Admin-Key": "nope"})
        assert wrong.status_code == 401
        assert control(server, "GET", "clock", headers={"X-Sandbox-Admin-Key": "s3cret"}).status_code == 200
        # The API itself is not affected.
        assert httpx.get(server.url + "/api/system/heartbeat?health_check=1").status_code == 200


@pytest.mark.parametrize("path", ["reset", "clock", "requests", "endpoints"])
def test_the_control_plane_can_be_switched_off(path):
    with LiveServer(Settings(clock_start=CLOCK_START, control_plane=False)) as server:
        assert control(server, "GET", path).status_code == 404


def test_new_records_take_their_timestamps_from_the_clock(server, admin):
    control(server, "POST", "clock", json={"set": "2026-12-25T12:00:00Z", "freeze": True})
    uuid = admin.post("/api/jobs/manage", json={
        "action": "create", "job_title": "x", "job_description": "y", "priority_id": 2, "status_id": 1,
        "job_type_id": 3, "address_id": 5}).json()["job_uuid"]
    assert job(admin, uuid)["created_at"] == "2026-12-25T12:00:00Z"
    assert dt.datetime.fromisoformat(job(admin, uuid)["updated_at"].replace("Z", "+00:00")).month == 12


def test_the_health_probe_is_exempt_from_scenarios_and_the_journal(tmp_path):
    (tmp_path / "all-fail.toml").write_text('name = "all-fail"\n[[faults]]\neffect = "error"\nstatus = 500\n')
    with LiveServer(Settings(clock_start=CLOCK_START, scenario="all-fail", scenario_dir=tmp_path)) as server:
        control(server, "DELETE", "requests")
        for _ in range(5):
            r = httpx.get(server.url + "/api/system/heartbeat", params={"health_check": 1})
            assert r.status_code == 200 and "X-RateLimit-Remaining" in r.headers
        assert control(server, "GET", "requests").json()["count"] == 0
        assert httpx.get(server.url + "/api/system/heartbeat").status_code == 500  # not a probe: faults apply
