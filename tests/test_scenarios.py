"""Scenarios (issue #5) over real HTTP: the nine built-ins, replay, switching and X-Sandbox-Scenario.

Every server is real uvicorn (`LiveServer`). Tests that need a burst of traffic sign in first and then
switch the scenario with PUT /_sandbox/scenario, so the setup requests never meet the faults and the
fault generator starts afresh. Storms are reached by moving `trouble.started`, rate-limit windows by
moving the sandbox clock (windows follow it), never by sleeping for a minute.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
from conftest import ADMIN, AGENT, API, CLOCK_START, CONTRACTOR, JOB_1001, STAFF, assert_envelope_headers, assert_error

from sandbox import Settings
from sandbox.testing import LiveServer

BUILT_INS = {"archived-jobs", "default", "expired-tokens", "flaky", "maintenance", "rate-limit-storm",
             "server-errors", "slow", "strict-csrf"}
JOBS = "/api/jobs/manage"
LIST = {"action": "list", "limit": 3}
BEAT = "/api/system/heartbeat"
MAINT = "/api/system/maintenance-mode"  # tokenless, and (unlike the health probe) subject to scenarios
HEALTH = {"health_check": 1}
SERVER_ERROR = "An unexpected error occurred. Please retry after a short delay."
UNAUTHENTICATED = "Authentication required. Please log in."
TABLES = ("jobs", "job_commits", "case_notes", "notifications")
ARCHIVED = 8


@contextmanager
def serve(scenario: str = "default", seed: int = 42, scenario_dir: Path | None = None) -> Iterator[LiveServer]:
    with LiveServer(Settings(seed=seed, clock_start=CLOCK_START, scenario=scenario,
                             scenario_dir=scenario_dir)) as live:
        yield live


def switch(server: LiveServer, names: str | list[str]) -> dict:
    r = httpx.put(server.url + "/_sandbox/scenario", json={"scenario": names})
    assert r.status_code == 200, r.text
    return r.json()["data"]


def state(server: LiveServer) -> dict:
    return {t: copy.deepcopy(server.sandbox.store.select(t)) for t in TABLES}


def update(client: httpx.Client, title: str, uuid: str = JOB_1001, **extra) -> httpx.Response:
    return client.post(JOBS, json={"action": "update", "uuid": uuid, "job_title": title, **extra})


def from_ip(server: LiveServer, ip: str, token: str | None = None) -> httpx.Client:
    """A client whose requests come from another loopback address (a second 'IP' for the limiter)."""
    headers = {"Authorization": "Bearer " + token} if token else {}
    return httpx.Client(base_url=server.url, headers=headers, timeout=30,
                        transport=httpx.HTTPTransport(local_address=ip))


def new_window(server: LiveServer, window: float) -> None:
    """Move the sandbox clock to just after the start of a rate-limit window (windows follow it)."""
    server.sandbox.clock.advance(window - server.sandbox.clock.now().timestamp() % window + 0.05)


def archived(server: LiveServer) -> set[int]:
    return {j["ID"] for j in server.sandbox.store.select("jobs", lambda j: j["status_id"] == ARCHIVED)}


# -- the catalogue and the healthy default -------------------------------------------------------------

def test_catalogue_lists_the_nine_built_ins_and_default_is_active(server: LiveServer) -> None:
    body = httpx.get(server.url + "/_sandbox/scenarios").json()
    assert body["success"] is True and body["count"] == 9
    assert {row["name"] for row in body["data"]} == BUILT_INS
    for row in body["data"]:
        assert row["description"] and row["source"].endswith(f"{row['name']}.toml"), row
    active = httpx.get(server.url + "/_sandbox/scenario").json()
    assert active["success"] is True and active["data"]["scenario"] == ["default"]


def test_default_is_healthy(server: LiveServer, admin: httpx.Client) -> None:
    statuses = [admin.get(JOBS, params=LIST).status_code for _ in range(60)]
    statuses += [update(admin, f"Healthy {i}").status_code for i in range(10)]
    assert set(statuses) == {200}
    r = admin.get(BEAT)
    assert r.status_code == 200 and r.headers["X-RateLimit-Limit"] == "6000"
    assert server.sandbox.store.get("jobs", 1001)["job_title"] == "Healthy 9"
    mode = httpx.get(server.url + "/api/system/maintenance-mode").json()["data"]
    assert mode["enabled"] is False


# -- rate-limit-storm --------------------------------------------------------------------------------

def test_storm_limits_count_down_truthfully_per_ip() -> None:
    with serve("rate-limit-storm") as server, httpx.Client(base_url=server.url) as anon:
        trouble = server.sandbox.trouble
        new_window(server, 10)
        trouble.started = trouble.now() - 5  # well clear of the storm at the end of the minute
        sent, answers = [], []
        for _ in range(31):
            sent.append(time.time())
            answers.append(anon.get(MAINT))
        assert [r.status_code for r in answers] == [200] * 30 + [429]
        assert [int(r.headers["X-RateLimit-Remaining"]) for r in answers] == [*range(29, -1, -1), 0]
        assert {r.headers["X-RateLimit-Limit"] for r in answers} == {"30"}
        for at, r in zip(sent, answers, strict=True):
            assert at < int(r.headers["X-RateLimit-Reset"]) <= at + 11  # a real Unix time, in this window
        refused = answers[-1]
        assert_error(refused, 429, "Rate limit exceeded", "Retry-After")
        wait = int(refused.headers["Retry-After"])
        assert 1 <= wait <= 11 and abs(wait - (int(refused.headers["X-RateLimit-Reset"]) - sent[-1])) <= 1
        assert "Retry-After" not in answers[0].headers
        server.sandbox.clock.advance(wait)  # the windows follow the sandbox clock: as good as waiting
        r = anon.get(MAINT)
        assert r.status_code == 200 and r.headers["X-RateLimit-Remaining"] == "29"


def test_storm_limits_are_per_account_as_well() -> None:
    with serve("rate-limit-storm") as server:
        token = server.login(ADMIN)
        trouble = server.sandbox.trouble
        new_window(server, 10)
        trouble.started = trouble.now() - 5
        with from_ip(server, "127.0.0.2", token) as one, from_ip(server, "127.0.0.3", token) as two:
            answers = [(one if i % 2 else two).get(BEAT) for i in range(30)]
            assert [r.status_code for r in answers] == [200] * 30
            # 15 requests from each address, but the account has used 30: the tighter count is shown
            assert [int(r.headers["X-RateLimit-Remaining"]) for r in answers] == list(range(29, -1, -1))
            assert_error(two.get(BEAT), 429, "Rate limit exceeded")
            assert two.get(BEAT, params=HEALTH, headers={"Authorization": ""}).status_code == 200  # the IP has room


def test_a_storm_refuses_everything_and_says_for_how_long() -> None:
    with serve("rate-limit-storm") as server, server.client(ADMIN, csrf=False) as admin:
        trouble = server.sandbox.trouble
        trouble.started = trouble.now() - 57  # 3 s before the minute ends: inside the 6 s storm
        answers = [admin.get(JOBS, params=LIST), admin.get(BEAT, params=HEALTH, headers={"Authorization": ""}),
                   admin.post("/api/auth/login", json={"email": AGENT, "password": "sandbox"})]
        for r in answers:
            assert_error(r, 429, "Rate limit exceeded")
            wait = int(r.headers["Retry-After"])
            assert 2 <= wait <= 4, wait  # the storm has ~3 s left
            assert r.headers["X-RateLimit-Remaining"] == "0"
            assert time.time() + 1 <= int(r.headers["X-RateLimit-Reset"]) <= time.time() + 5
        trouble.started -= wait  # as if the client waited Retry-After
        assert admin.get(JOBS, params=LIST).status_code == 200
        trouble.started = trouble.now() - 118  # the next minute's storm
        assert_error(admin.get(JOBS, params=LIST), 429, "Rate limit exceeded")


# -- server-errors -----------------------------------------------------------------------------------

def test_server_errors_fail_a_share_with_the_documented_envelope(server: LiveServer, admin: httpx.Client) -> None:
    switch(server, "server-errors")
    answers = [admin.get(JOBS, params=LIST) for _ in range(200)]
    failed = [r for r in answers if r.status_code == 500]
    assert 20 <= len(failed) <= 60, len(failed)  # 10-30 % at the configured 20 %
    assert len(failed) + sum(r.status_code == 200 for r in answers) == 200
    for r in failed:
        assert assert_error(r, 500) == {"success": False, "error": SERVER_ERROR}


def test_a_write_failed_by_server_errors_changes_nothing(server: LiveServer, admin: httpx.Client) -> None:
    switch(server, "server-errors")
    outcomes = set()
    for i in range(40):
        before = state(server)
        r = update(admin, f"Attempt {i}")
        outcomes.add(r.status_code)
        if r.status_code == 500:
            assert_error(r, 500)
            assert state(server) == before, f"attempt {i} changed state"
        else:
            assert r.status_code == 200, r.text
            assert server.sandbox.store.get("jobs", 1001)["job_title"] == f"Attempt {i}"
            assert len(server.sandbox.store.select("job_commits")) > len(before["job_commits"])
    assert outcomes == {200, 500}


# -- archived-jobs -----------------------------------------------------------------------------------

def test_archived_jobs_archives_sixty_percent_at_start_and_blocks_writes() -> None:
    with serve() as plain, serve("archived-jobs") as server, server.client(ADMIN) as admin:
        live = {j["ID"] for j in plain.sandbox.store.select("jobs", lambda j: j["status_id"] != ARCHIVED)}
        newly = archived(server) - archived(plain)
        assert newly <= live and abs(len(newly) / len(live - {1001, 1055}) - 0.6) < 0.01
        main = {j["ID"] for j in plain.sandbox.store.select("jobs", lambda j: j["org_id"] == 1)} & live
        assert 0.5 <= len(newly & main) / len(main) <= 0.7
        for id_ in (1001, 1055):  # the documented examples keep their state
            assert server.sandbox.store.get("jobs", id_) == plain.sandbox.store.get("jobs", id_)
        target = server.sandbox.store.raw("jobs", min(newly & main))
        assert admin.get(JOBS, params={"action": "get", "uuid": target["uuid"]}).status_code == 200
        before = state(server)
        assert_error(update(admin, "Nope", target["uuid"]), 403, "archived")
        assert_error(admin.post(JOBS, json={"action": "delete", "uuid": target["uuid"]}), 403, "archived")
        assert state(server) == before
        assert update(admin, "Still writable").status_code == 200


def test_archived_jobs_switched_on_later_applies_once() -> None:
    with serve() as server:
        start = archived(server)
        switch(server, "archived-jobs")
        after = archived(server)
        live = len(server.sandbox.store.select("jobs")) - len(start) - 2
        assert start < after and abs((len(after) - len(start)) / live - 0.6) < 0.01
        switch(server, "default")
        assert archived(server) == after  # data changes stay when the scenario goes
        switch(server, "archived-jobs")
        assert archived(server) == after  # and are not applied twice


def test_archived_share_does_not_compound_when_composed() -> None:
    with serve() as server:
        switch(server, ["archived-jobs", "strict-csrf"])
        once = archived(server)
        switch(server, "archived-jobs")
        assert archived(server) == once


# -- slow --------------------------------------------------------------------------------------------

def test_slow_adds_latency(server: LiveServer, admin: httpx.Client) -> None:
    started = time.perf_counter()
    for _ in range(8):
        assert admin.get(JOBS, params=LIST).status_code == 200
    plain = time.perf_counter() - started
    switch(server, "slow")
    started = time.perf_counter()
    answers = [admin.get(JOBS, params=LIST) for _ in range(8)]
    slow = time.perf_counter() - started
    assert {r.status_code for r in answers} == {200}
    reported = sum(float(r.headers["X-Response-Time-ms"]) for r in answers) / 1000
    assert reported >= 0.5 and slow >= reported * 0.95
    assert slow > plain + 0.4, (plain, slow)


# -- maintenance -------------------------------------------------------------------------------------

def test_maintenance_scenario_blocks_non_staff_only() -> None:
    reason = "Scheduled database migration in progress."
    with serve("maintenance") as server, httpx.Client(base_url=server.url) as anon:
        mode = anon.get("/api/system/maintenance-mode")
        assert mode.status_code == 200 and mode.json()["data"]["enabled"] is True
        assert mode.json()["data"]["reason"] == reason
        assert anon.get(BEAT, params=HEALTH).status_code == 200
        for email in (AGENT, CONTRACTOR):
            login = anon.post("/api/auth/login", json={"email": email, "password": "sandbox"})
            assert login.status_code == 200 and login.json()["token"]  # login still works
            with server.client(email, csrf=False) as user:
                r = user.get(JOBS, params=LIST)
                assert_error(r, 503, "maintenance", reason)
                assert int(r.headers["Retry-After"]) >= 1
                before = state(server)
                assert_error(update(user, "During maintenance"), 503, reason)
                assert state(server) == before
        for email in (ADMIN, STAFF, API):  # Staff account types keep full access
            with server.client(email) as staff:
                assert staff.get(JOBS, params=LIST).status_code == 200
        with server.client(ADMIN) as admin:
            assert update(admin, "Staff at work").status_code == 200


def test_staff_switch_maintenance_mode_on_and_off(server: LiveServer, admin: httpx.Client) -> None:
    path, reason = "/api/system/maintenance-mode", "Upgrading the database."
    bearer = {"Authorization": admin.headers["Authorization"]}
    with server.client(AGENT) as agent, httpx.Client(base_url=server.url, headers=bearer) as no_csrf:
        assert_error(agent.post(path, json={"action": "enable"}), 403)
        assert_error(no_csrf.post(path, json={"action": "enable"}), 403, "CSRF")
        assert httpx.get(server.url + path).json()["data"]["enabled"] is False
        r = admin.post(path, json={"action": "enable", "reason": reason})
        assert r.status_code == 200 and r.json()["success"] is True
        mode = httpx.get(server.url + path).json()["data"]
        assert mode["enabled"] is True and mode["reason"] == reason
        assert_error(agent.get(JOBS, params=LIST), 503, reason)
        assert admin.get(JOBS, params=LIST).status_code == 200
        assert admin.post(path, json={"action": "disable"}).status_code == 200
        assert httpx.get(server.url + path).json()["data"]["enabled"] is False
        assert agent.get(JOBS, params=LIST).status_code == 200


# -- expired-tokens ----------------------------------------------------------------------------------

def test_tokens_expire_after_twenty_requests() -> None:
    with serve("expired-tokens") as server:
        with server.client(AGENT, csrf=False) as agent:
            assert [agent.get(JOBS, params=LIST).status_code for _ in range(20)] == [200] * 20
            assert assert_error(agent.get(JOBS, params=LIST), 401)["error"] == UNAUTHENTICATED
            assert_error(agent.get(BEAT), 401, UNAUTHENTICATED)
        with server.client(AGENT, csrf=False) as fresh:
            assert fresh.get(JOBS, params=LIST).status_code == 200


def test_tokens_expire_after_two_minutes_of_sandbox_time() -> None:
    with serve("expired-tokens") as server:
        with server.client(AGENT, csrf=False) as agent:
            assert agent.get(JOBS, params=LIST).status_code == 200
            server.sandbox.clock.advance(100)
            assert agent.get(JOBS, params=LIST).status_code == 200
            server.sandbox.clock.advance(21)
            assert assert_error(agent.get(JOBS, params=LIST), 401)["error"] == UNAUTHENTICATED
        with server.client(AGENT, csrf=False) as fresh:
            assert fresh.get(JOBS, params=LIST).status_code == 200


# -- flaky -------------------------------------------------------------------------------------------

def test_flaky_survives_300_requests_with_several_kinds_of_fault(server: LiveServer) -> None:
    with server.client(ADMIN, csrf=False) as admin:
        switch(server, "flaky")

        def one(_: int) -> httpx.Response | str:
            try:
                return admin.get(JOBS, params=LIST)
            except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
                return type(exc).__name__

        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(one, range(300)))
    answers = [r for r in results if not isinstance(r, str)]
    broken = [r for r in results if isinstance(r, str)]
    kinds = {r.status_code for r in answers} - {200} | ({"connection"} if broken else set())
    assert len(kinds) >= 3 and broken, kinds
    assert {r.status_code for r in answers} <= {200, 500, 502, 503}
    assert 250 <= sum(r.status_code == 200 for r in answers) < 300
    for r in answers:
        if r.status_code != 200:
            assert_error(r, r.status_code)
        if r.status_code == 503:
            assert r.headers["Retry-After"] == "5"
    assert max(float(r.headers["X-Response-Time-ms"]) for r in answers) >= 20  # the latency rule fired
    assert server._thread.is_alive()
    assert httpx.get(server.url + "/_sandbox/scenario").json()["data"]["scenario"] == ["flaky"]


# -- strict-csrf -------------------------------------------------------------------------------------

def test_strict_csrf_tokens_are_single_use() -> None:
    with serve("strict-csrf") as server, server.client(ADMIN) as admin:
        assert update(admin, "First").status_code == 200
        before = state(server)
        assert_error(update(admin, "Second"), 403, "CSRF")
        assert state(server) == before
        token = admin.get("/api/security/csrf-token").json()["data"]["token"]
        admin.headers.pop("X-CSRF-Token")
        assert update(admin, "Third", csrf_token=token).status_code == 200
        assert_error(update(admin, "Fourth", csrf_token=token), 403, "CSRF")
        assert server.sandbox.store.get("jobs", 1001)["job_title"] == "Third"


# -- replay ------------------------------------------------------------------------------------------

def _replay(seed: int) -> tuple[list[int], list[int], list[int]]:
    """Statuses from a fresh server-errors sandbox: sign-in attempts + 100 lists, then twice 100 lists
    after re-activating the scenario."""
    with serve("server-errors", seed=seed) as server, httpx.Client(base_url=server.url) as client:
        first = []
        for _ in range(20):
            r = client.post("/api/auth/login", json={"email": ADMIN, "password": "sandbox"})
            first.append(r.status_code)
            if r.status_code == 200:
                client.headers["Authorization"] = "Bearer " + r.json()["token"]
                break
        first += [client.get(JOBS, params=LIST).status_code for _ in range(100)]
        again = []
        for _ in range(2):
            switch(server, "server-errors")
            again.append([client.get(JOBS, params=LIST).status_code for _ in range(100)])
    return first, again[0], again[1]


def test_same_seed_and_scenario_replay_the_same_faults() -> None:
    first, again, third = _replay(42)
    assert set(first[-100:]) == {200, 500}
    assert _replay(42) == (first, again, third)
    assert again == third  # PUT /_sandbox/scenario restarts the sequence
    other = _replay(7)
    assert other[0] != first and other[1] != again


# -- switching ---------------------------------------------------------------------------------------

def test_put_scenario_switches_and_refuses_unknown_names(server: LiveServer, admin: httpx.Client) -> None:
    url = server.url + "/_sandbox/scenario"
    r = httpx.put(url, json={"scenario": "no-such-thing"})
    assert r.status_code == 400 and r.json()["success"] is False and "no-such-thing" in r.json()["error"]
    r = httpx.put(url, json={"scenario": ["strict-csrf", "nope-2"]})
    assert r.status_code == 400 and "nope-2" in r.json()["error"]
    for bad in ({}, {"scenario": 5}, {"scenario": [1]}):
        assert httpx.put(url, json=bad).status_code == 400
    assert httpx.put(url, content=b"{not json").status_code == 400
    assert httpx.get(url).json()["data"]["scenario"] == ["default"]  # nothing changed
    assert {admin.get(JOBS, params=LIST).status_code for _ in range(50)} == {200}
    data = switch(server, ["server-errors", "strict-csrf"])
    assert data["scenario"] == ["server-errors", "strict-csrf"]
    assert httpx.get(url).json()["data"]["scenario"] == ["server-errors", "strict-csrf"]
    assert 500 in {admin.get(JOBS, params=LIST).status_code for _ in range(50)}
    assert switch(server, "default")["scenario"] == ["default"]
    assert {admin.get(JOBS, params=LIST).status_code for _ in range(50)} == {200}


def test_header_applies_a_scenario_to_one_request(server: LiveServer, admin: httpx.Client) -> None:
    def one(i: int) -> tuple[bool, int]:
        marked = i % 2 == 0
        headers = {"X-Sandbox-Scenario": "server-errors"} if marked else {}
        return marked, admin.get(JOBS, params=LIST, headers=headers).status_code

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(300)))
    marked = [status for flag, status in results if flag]
    assert {status for flag, status in results if not flag} == {200}  # the others are untouched
    assert set(marked) == {200, 500} and 10 <= marked.count(500) <= 60
    assert httpx.get(server.url + "/_sandbox/scenario").json()["data"]["scenario"] == ["default"]
    r = admin.get(JOBS, params=LIST, headers={"X-Sandbox-Scenario": "bogus-scenario"})
    assert_error(r, 400, "X-Sandbox-Scenario", "bogus-scenario")
    assert_envelope_headers(r)
