"""The pytest plugin (run in pytest subprocesses through pytester) and the Python handle `Sandbox`."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import textwrap
from pathlib import Path

import httpx
import pytest
from conftest import ADMIN, CLOCK_START

import sandbox
from sandbox import Settings
from sandbox.handle import ROLES, InProcessSandbox, Sandbox, SandboxError
from sandbox.testing import LiveServer, free_port

pytest_plugins = ["pytester"]

ROOT = Path(sandbox.__file__).resolve().parent.parent
PROBE = "Plugin isolation probe"

# Shared by the inner test files: create a job and find it again through the API.
HELPERS = f"""
import pytest

PROBE = {PROBE!r}
NEW = {{"action": "create", "job_title": PROBE, "job_description": "Made by a plugin test", "priority_id": 2,
        "status_id": 1, "job_type_id": 3, "address_id": 5}}


def probes(client):
    r = client.get("/api/jobs/manage", params={{"action": "list", "search": PROBE, "limit": 100}})
    assert r.status_code == 200, r.text
    return [row for row in r.json()["data"] if row["job_title"] == PROBE]


def create(client, **fields):
    r = client.post("/api/jobs/manage", json={{**NEW, **fields}})
    assert r.status_code == 201, r.text
    return r.json()
"""


def _plugin_args() -> list[str]:
    """Load the plugin by module unless its entry point is installed (loading both would clash)."""
    installed = any(ep.name == "propops_sandbox" for ep in importlib.metadata.entry_points(group="pytest11"))
    return [] if installed else ["-p", "sandbox.pytest_plugin"]


@pytest.fixture(scope="module")
def _warm() -> None:
    """Import what serving and calling a sandbox imports lazily (httpx imports httpcore on first use,
    uvicorn its protocols, the sandbox Faker) before pytester snapshots sys.modules: it drops what a
    test imported, and httpx would then no longer map the re-imported httpcore's errors to its own."""
    with Sandbox() as sb, sb.client("staff") as staff:
        staff.get("/api/jobs/manage", params={"action": "list"})


@pytest.fixture
def inner(_warm: None, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    """Run pytest in a subprocess on files written into pytester's directory, with the plugin loaded and
    the project's strictness (unknown markers and any warning fail)."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    monkeypatch.delenv("PROPOPS_SANDBOX_ADMIN_KEY", raising=False)
    pytester.makefile(".ini", pytest="[pytest]\naddopts = --strict-markers -p no:cacheprovider\n"
                                     "filterwarnings = error\n")
    pytester.makepyfile(helpers=HELPERS)

    def run(source: str, *args: str) -> pytest.RunResult:
        pytester.makepyfile(test_inner=textwrap.dedent(source))
        return pytester.runpytest_subprocess(*_plugin_args(), "-p", "no:randomly", *args, timeout=60)

    return run


def _probes(store) -> list[dict]:
    return [j for j in store.select("jobs") if store.reveal("jobs", j)["job_title"] == PROBE]


# -- the plugin --------------------------------------------------------------------------------------

def test_each_test_starts_from_the_baseline_and_the_marker_scopes_a_scenario(inner):
    result = inner("""
        import pytest
        from helpers import create, probes


        def test_a_changes_everything(propops_sandbox, propops_client):
            assert propops_sandbox.url.startswith("http://127.0.0.1:") and propops_sandbox.server is not None
            assert propops_sandbox.app.sandbox.settings.seed == 42  # the --propops-seed default
            create(propops_client)
            assert len(probes(propops_client)) == 1
            propops_sandbox.set_scenario("maintenance")
            propops_sandbox.clock.freeze()
            propops_sandbox.clock.advance(86400)
            propops_sandbox.snapshot("kept")


        def test_b_sees_none_of_it(propops_sandbox, propops_client):
            assert probes(propops_client) == []
            assert propops_sandbox.active_scenario() == ["default"]
            clock = propops_sandbox.clock.state()
            assert clock["frozen"] is False and clock["now"][:13] == clock["start"][:13]
            assert [r["path"] for r in propops_sandbox.requests()] == [
                "/api/auth/login", "/api/security/csrf-token", "/api/jobs/manage"]


        @pytest.mark.propops_scenario("server-errors")
        def test_marked(propops_sandbox, propops_client):
            assert propops_sandbox.active_scenario() == ["server-errors"]
            codes = [propops_client.get("/api/jobs/manage", params={"action": "list"}).status_code
                     for _ in range(30)]
            assert 500 in codes and 200 in codes
            # The fixture signed in before the scenario went on, the body runs under it.
            scenarios = {r["path"]: r["scenario"] for r in propops_sandbox.requests()}
            assert scenarios == {"/api/auth/login": "default", "/api/security/csrf-token": "default",
                                 "/api/jobs/manage": "server-errors"}


        def test_after_marked(propops_sandbox):
            assert propops_sandbox.active_scenario() == ["default"]


        @pytest.mark.propops_scenario("maintenance", "slow")
        def test_marker_composes(propops_sandbox):
            assert propops_sandbox.active_scenario() == ["maintenance", "slow"]


        def test_scenario_context_manager(propops_sandbox):
            agent = propops_sandbox.client("agent")
            with propops_sandbox.scenario("maintenance") as active:
                assert active == ["maintenance"]
                assert agent.get("/api/jobs/manage", params={"action": "list"}).status_code == 503
            assert propops_sandbox.active_scenario() == ["default"]
            assert agent.get("/api/jobs/manage", params={"action": "list"}).status_code == 200
            # agent is left open on purpose: the fixture closes what client() made


        def test_clock_takes_an_emergency_job_from_within_to_breached(propops_sandbox, propops_client):
            propops_sandbox.clock.freeze()
            uuid = create(propops_client, priority_id=4, job_title="Gas leak")["job_uuid"]

            def detail():
                data = propops_client.get("/api/jobs/sla-status", params={"limit": 200}).json()["data"]
                return next((d for d in data["breach_details"] if d["job_uuid"] == uuid), None)

            assert detail() is None  # Emergency: 4 hours to go
            propops_sandbox.clock.advance(29 * 3600)
            assert detail()["sla_state"] == "breached" and detail()["hours_overdue"] == 25


        @pytest.mark.propops_scenario("server-errors")
        def test_marker_without_a_sandbox():
            pass


        @pytest.mark.propops_scenario("no-such-scenario")
        def test_marker_with_an_unknown_scenario(propops_sandbox):
            pass
        """, "-v")
    result.assert_outcomes(passed=7, failed=2)
    result.stdout.fnmatch_lines([
        "@pytest.mark.propops_scenario needs the propops_sandbox, propops_client or propops_asgi fixture",
        "@pytest.mark.propops_scenario: unknown scenario 'no-such-scenario'*",
    ])


def test_in_process_variant_has_the_same_api_without_a_socket(inner):
    result = inner("""
        import anyio
        import httpx
        import pytest
        from helpers import create, probes


        def test_a(propops_asgi):
            assert propops_asgi.server is None and propops_asgi.url == "http://testserver"
            assert propops_asgi.app.sandbox.settings.seed == 7
            with propops_asgi.client("staff") as staff:
                assert isinstance(staff, httpx.Client)
                create(staff)
                assert len(probes(staff)) == 1
            propops_asgi.clock.advance(3600)


        def test_b(propops_asgi):
            with propops_asgi.client("admin") as admin:
                assert probes(admin) == []
            assert propops_asgi.clock.state()["now"] < "2026-11-01T09:30:00Z"


        @pytest.mark.propops_scenario("maintenance")
        def test_marker(propops_asgi):
            staff = propops_asgi.client("staff")  # Staff keep access in maintenance
            assert propops_asgi.active_scenario() == ["maintenance"]
            assert staff.get("/api/system/maintenance-mode").json()["data"]["enabled"] is True


        def test_async_client(propops_asgi):
            async def main():
                async with propops_asgi.async_client("contractor") as contractor:
                    r = await contractor.get("/api/jobs/manage", params={"action": "list"})
                    assert r.status_code == 200 and r.json()["data"]
                    assert all(job["contractor_id"] == 20 for job in r.json()["data"])

            anyio.run(main)
        """, "--propops-clock-start", "2026-11-01T09:00:00Z", "--propops-seed", "7")
    result.assert_outcomes(passed=4)


def test_propops_url_uses_a_running_sandbox_and_resets_it(inner):
    settings = Settings(seed=42, clock_start=CLOCK_START, admin_key="s3cret")
    with LiveServer(settings) as outer:
        with outer.client(ADMIN) as admin:  # state left over before the run: the session starts with a reset
            admin.post("/api/jobs/manage", json={"action": "create", "job_title": PROBE, "job_description": "x",
                                                 "priority_id": 2, "status_id": 1, "job_type_id": 3, "address_id": 5})
        assert len(_probes(outer.sandbox.store)) == 1
        result = inner(f"""
            from helpers import create, probes


            def test_a(propops_sandbox, propops_client):
                assert propops_sandbox.url == {outer.url!r} and propops_sandbox.server is None
                assert probes(propops_client) == []
                create(propops_client)
                propops_sandbox.set_scenario("maintenance")


            def test_b(propops_sandbox, propops_client):
                assert probes(propops_client) == [] and propops_sandbox.active_scenario() == ["default"]
                create(propops_client)
            """, "--propops-url", outer.url, "--propops-admin-key", "s3cret")
        result.assert_outcomes(passed=2)
        assert _probes(outer.sandbox.store) == []  # reset after the last test too
        # Without the admin key the control plane refuses: the session cannot even reset.
        result = inner("def test_x(propops_sandbox):\n    pass\n", "--propops-url", outer.url)
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(["*SandboxError: 401*X-Sandbox-Admin-Key*"])


@pytest.mark.skipif(importlib.util.find_spec("xdist") is None, reason="pytest-xdist is not installed")
def test_each_xdist_worker_has_its_own_sandbox(inner, tmp_path):
    seen = tmp_path / "seen"
    seen.mkdir()
    tests = "\n".join(f"""
def test_{n}(propops_sandbox, propops_client):
    assert probes(propops_client) == []
    create(propops_client)
    assert len(probes(propops_client)) == 1
    (SEEN / "{n}").write_text(propops_sandbox.url + " " + str(os.getpid()))
""" for n in range(8))
    result = inner(f"import os\nfrom pathlib import Path\nfrom helpers import create, probes\n"
                   f"SEEN = Path({str(seen)!r})\n{tests}", "-n", "2", "--dist", "load")
    result.assert_outcomes(passed=8)
    urls, pids = zip(*(f.read_text().split() for f in seen.iterdir()), strict=True)
    assert len(set(urls)) == 2 and len(set(pids)) == 2
    # One running sandbox cannot serve two workers' resets.
    result = inner("def test_x():\n    pass\n", "-n", "2", "--propops-url", "http://127.0.0.1:9")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--propops-url gives every xdist worker the same sandbox*"])


# -- the handle --------------------------------------------------------------------------------------

def test_handle_starts_a_server_on_a_port_and_drives_it():
    port = free_port()
    with Sandbox(seed=42, scenario="maintenance", port=port, clock_start="2026-11-01T09:00:00Z") as sb:
        assert sb.url == f"http://127.0.0.1:{port}"
        assert sb.app.sandbox.settings.seed == 42
        assert httpx.get(sb.url + "/api/system/heartbeat?health_check=1").status_code == 200
        assert sb.active_scenario() == ["maintenance"]
        agent, staff = sb.client("agent", csrf=False), sb.client("staff")  # CSRF: 503 too
        assert agent.get("/api/jobs/manage", params={"action": "list"}).status_code == 503  # non-Staff
        with sb.scenario("default") as active:
            assert active == ["default"]
            assert agent.get("/api/jobs/manage", params={"action": "list"}).status_code == 200
        assert sb.active_scenario() == ["maintenance"]
        assert staff.get("/api/jobs/manage", params={"action": "list"}).status_code == 200

        assert sb.clock.freeze()["frozen"] is True
        assert sb.clock.set("2026-12-24T18:00:00Z")["now"] == "2026-12-24T18:00:00Z"
        sb.clock.advance(90)
        assert sb.clock.now().isoformat() == "2026-12-24T18:01:30+00:00"
        assert sb.clock.unfreeze()["frozen"] is False

        job = staff.post("/api/jobs/manage", json={"action": "create", "job_title": PROBE, "job_description": "x",
                                                   "priority_id": 2, "status_id": 1, "job_type_id": 3,
                                                   "address_id": 5}).json()
        posts = sb.requests(method="POST", path="/api/jobs/*")
        assert [(r["method"], r["path"], r["status"]) for r in posts] == [("POST", "/api/jobs/manage", 201)]
        assert [r["path"] for r in sb.requests(status=503)] == ["/api/jobs/manage"]
        sb.clear_requests()
        assert sb.requests() == []

        sb.snapshot("with-probe")
        assert [s["name"] for s in sb.snapshots()] == ["with-probe"]
        sb.reset()
        assert _probes(sb.app.sandbox.store) == [] and sb.active_scenario() == ["maintenance"]
        sb.restore("with-probe")
        assert [j["uuid"] for j in _probes(sb.app.sandbox.store)] == [job["job_uuid"]]
        sb.delete_snapshot("with-probe")
        with pytest.raises(SandboxError) as missing:
            sb.restore("with-probe")
        assert missing.value.status == 404
    assert staff.is_closed and agent.is_closed  # close() closes the clients the handle made
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/api/system/heartbeat?health_check=1")


def test_handle_signs_in_every_demo_role(server):
    with Sandbox(url=server.url) as sb:
        tokens = {role: sb.login(role) for role in ROLES}
        live = {a["email"]: a["tokens"] for a in sb.accounts()}
        for role, token in tokens.items():
            assert live[ROLES[role]] == [token], role
        assert sb.login(ROLES["agent"]) in {t for a in sb.accounts() for t in a["tokens"]}
        with sb.client(None) as anon:
            assert anon.get("/api/jobs/manage", params={"action": "list"}).status_code == 401
        with sb.client("admin", csrf=False) as admin:
            write = {"action": "create", "job_title": "No CSRF", "job_description": "x", "priority_id": 2,
                     "status_id": 1, "job_type_id": 3, "address_id": 5}
            assert admin.post("/api/jobs/manage", json=write).status_code == 403
    with pytest.raises(ValueError, match="unknown role 'landlord'"):
        Sandbox(url=server.url).login("landlord")
    with pytest.raises(ValueError, match="url= drives a running sandbox"):
        Sandbox(url=server.url, scenario="flaky")


@pytest.mark.parametrize("kind", [Sandbox, InProcessSandbox])
def test_a_dropped_answer_is_a_protocol_error_in_both_transports(kind, tmp_path):
    (tmp_path / "drop-jobs.toml").write_text(
        'name = "drop-jobs"\ndescription = "Every jobs answer is cut off."\n\n'
        '[[faults]]\neffect = "drop"\nprobability = 1.0\npaths = ["/api/jobs/*"]\n')
    with kind(scenario="drop-jobs", scenario_dir=tmp_path) as sb, sb.client("staff") as staff:
        with pytest.raises(httpx.RemoteProtocolError):
            staff.get("/api/jobs/manage", params={"action": "list"})
        assert staff.get("/api/security/csrf-token").status_code == 200
