"""Scenario files you write yourself (issue #5): every fault effect and match over real HTTP, files that
must be refused (file, line and field named), and the command line (`--scenario`, `--scenario-dir`,
`propops-sandbox scenarios`) through real processes.
"""

from __future__ import annotations

import copy
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from conftest import ADMIN, AGENT, CLOCK_START, CONTRACTOR, JOB_1001, assert_error

from sandbox import Settings
from sandbox.faults import Trouble
from sandbox.limiter import Limiter
from sandbox.scenarios import Catalogue, ScenarioError, load_file
from sandbox.testing import LiveServer, free_port

REPO = Path(__file__).resolve().parents[1]
JOBS = "/api/jobs/manage"
LIST = {"action": "list", "limit": 3}
BEAT = "/api/system/heartbeat"
MAINT = "/api/system/maintenance-mode"  # tokenless, and (unlike the health probe) subject to scenarios
STATUS = "/api/system/status"
SERVER_ERROR = "An unexpected error occurred. Please retry after a short delay."
ERROR_PREFIX = "propops-sandbox: error: "

RULES = '''
name = "rules"
description = "Custom fault rules for the tests."

[[faults]]
effect = "error"
status = 418
message = "Short and stout."
methods = ["get"]
paths = ["/api/jobs/*"]
actions = ["list"]
headers = { "X-Fault" = "teapot", "Retry-After" = "7" }

[[faults]]
effect = "error"
status = 451
roles = ["Contractor"]
paths = ["/api/jobs/manage"]
actions = ["get"]

[[faults]]
effect = "error"
status = 429
methods = ["POST"]
paths = ["/api/system/heartbeat"]

[[faults]]
effect = "error"
status = 503
roles = ["anonymous"]
paths = ["/api/system/heartbeat"]
'''


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def fault(effect: str, paths: str = "/api/jobs/*", **fields: str) -> str:
    extra = "".join(f"{k} = {v}\n" for k, v in fields.items())
    return f'[[faults]]\neffect = "{effect}"\npaths = ["{paths}"]\n{extra}\n'


@contextmanager
def serve(folder: Path, scenario: str) -> Iterator[LiveServer]:
    with LiveServer(Settings(seed=42, clock_start=CLOCK_START, scenario=scenario, scenario_dir=folder)) as live:
        yield live


def state(server: LiveServer) -> dict:
    return {t: copy.deepcopy(server.sandbox.store.select(t)) for t in ("jobs", "job_commits", "users")}


def update(client: httpx.Client, title: str) -> httpx.Response:
    return client.post(JOBS, json={"action": "update", "uuid": JOB_1001, "job_title": title})


# -- fault effects and matching ------------------------------------------------------------------------

def test_error_rules_match_on_method_path_action_and_role(tmp_path: Path) -> None:
    write(tmp_path, "rules", RULES)
    with serve(tmp_path, "rules") as server, server.client(ADMIN) as admin, \
            server.client(CONTRACTOR, csrf=False) as contractor, server.client(AGENT, csrf=False) as agent:
        r = admin.get(JOBS, params=LIST)  # GET + /api/jobs/* + action=list
        assert assert_error(r, 418) == {"success": False, "error": "Short and stout."}
        assert r.headers["X-Fault"] == "teapot" and r.headers["Retry-After"] == "7"
        assert_error(contractor.get(JOBS, params=LIST), 418)
        job = {"action": "get", "uuid": JOB_1001}
        assert admin.get(JOBS, params=job).status_code == 200  # another action
        assert agent.get(JOBS, params=job).status_code == 200  # another role
        assert_error(contractor.get(JOBS, params=job), 451)  # only the Contractor role
        before = state(server)
        r = admin.post(BEAT)  # POST only; a 429 rule gets a Retry-After and the documented sentence
        assert_error(r, 429, "Rate limit exceeded")
        assert r.headers["Retry-After"] == "1"
        assert state(server) == before  # the keep-alive did not run
        assert admin.get(BEAT).status_code == 200  # GET is not matched
        assert_error(httpx.get(server.url + BEAT), 503, "temporarily unavailable")  # anonymous, not the probe
        assert admin.get(STATUS).status_code == 200  # no rule matches this path
        assert update(admin, "POST is not matched").status_code == 200


def test_probability_zero_never_fires_and_one_always_does(tmp_path: Path) -> None:
    write(tmp_path, "odds", 'name = "odds"\n' + fault("error", BEAT, probability="0", status="500")
          + fault("error", STATUS, probability="1", status="502"))
    with serve(tmp_path, "odds") as server, server.client(ADMIN, csrf=False) as admin:
        assert {admin.get(BEAT).status_code for _ in range(100)} == {200}
        answers = [admin.get(STATUS) for _ in range(100)]
        assert {r.status_code for r in answers} == {502}
        assert_error(answers[0], 502, "Bad gateway")


def test_latency_fixed_and_uniform(tmp_path: Path) -> None:
    write(tmp_path, "lag", 'name = "lag"\n'
          + fault("latency", STATUS, latency='{ kind = "fixed", ms = 300 }')
          + fault("latency", BEAT, latency='{ kind = "uniform", min_ms = 100, max_ms = 200 }'))
    with serve(tmp_path, "lag") as server, server.client(ADMIN, csrf=False) as admin:
        started = time.perf_counter()
        r = admin.get(STATUS)
        assert r.status_code == 200 and time.perf_counter() - started >= 0.3
        assert 300 <= float(r.headers["X-Response-Time-ms"]) < 450
        spread = []
        for _ in range(5):
            r = admin.get(BEAT)
            assert r.status_code == 200
            spread.append(float(r.headers["X-Response-Time-ms"]))
        assert all(100 <= ms < 260 for ms in spread), spread
        assert max(spread) - min(spread) > 1  # drawn, not fixed
        r = admin.get(JOBS, params=LIST)
        assert r.status_code == 200 and float(r.headers["X-Response-Time-ms"]) < 90  # unmatched paths: no delay


def test_slow_draws_are_long_tailed() -> None:
    catalogue = Catalogue()
    latency = catalogue.resolve("slow").faults[0].latency
    rng = random.Random(2026)
    draws = sorted(latency.draw(rng) for _ in range(2000))
    median, p99 = statistics.median(draws), draws[1979]
    assert 120 <= median <= 185 and 1400 <= p99 <= 2800, (median, p99)
    assert p99 > 8 * median and statistics.fmean(draws) > median and max(draws) <= 10_000
    trouble = Trouble(catalogue, None, Limiter(6000), 42, "slow")  # store unused without archived_share
    decided = sorted(trouble.decide(trouble.active, "GET", JOBS, "list", "SysOps").latency_ms for _ in range(2000))
    assert 120 <= statistics.median(decided) <= 185 and decided[1979] > 8 * statistics.median(decided)


def test_drop_closes_the_connection_and_a_dropped_write_changes_nothing(tmp_path: Path) -> None:
    write(tmp_path, "drop", 'name = "drop"\n' + fault("drop"))
    with serve(tmp_path, "drop") as server, server.client(ADMIN) as admin:
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            admin.get(JOBS, params=LIST)
        before = state(server)
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            update(admin, "Dropped")
        assert state(server) == before
        assert admin.get(BEAT).status_code == 200  # the server carries on


def test_truncate_cuts_a_read_short_and_refuses_a_write(tmp_path: Path) -> None:
    write(tmp_path, "cut", 'name = "cut"\n' + fault("truncate"))
    with serve(tmp_path, "cut") as server, server.client(ADMIN) as admin:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(f"GET {JOBS}?action=list&limit=3 HTTP/1.1\r\nHost: sandbox\r\n"
                         f"Authorization: {admin.headers['Authorization']}\r\n\r\n".encode())
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        declared = int(next(h.split(":")[1] for h in lines if h.lower().startswith("content-length:")))
        assert lines[0].startswith("HTTP/1.1 200") and 0 < len(body) < declared
        with pytest.raises(httpx.RemoteProtocolError):
            admin.get(JOBS, params=LIST)
        before = state(server)
        assert assert_error(update(admin, "Cut short"), 500)["error"] == SERVER_ERROR
        assert state(server) == before


def test_maintenance_effect(tmp_path: Path) -> None:
    write(tmp_path, "closed", 'name = "closed"\n'
          + fault("maintenance", roles='["Contractor"]', message='"Contractor portal closed for upgrades"'))
    with serve(tmp_path, "closed") as server, server.client(CONTRACTOR, csrf=False) as contractor, \
            server.client(ADMIN, csrf=False) as admin:
        r = contractor.get(JOBS, params=LIST)
        assert_error(r, 503, "maintenance", "Contractor portal closed for upgrades")
        assert int(r.headers["Retry-After"]) >= 1
        assert contractor.get(BEAT).status_code == 200 and admin.get(JOBS, params=LIST).status_code == 200


def test_composed_files_later_wins_on_limits_and_both_faults_apply(tmp_path: Path) -> None:
    write(tmp_path, "a", 'name = "a"\n[limits]\nrequests = 50\nwindow_seconds = 30\n\n'
          + fault("error", STATUS, status="418"))
    write(tmp_path, "b", 'name = "b"\n[limits]\nrequests = 40\n\n' + fault("error", BEAT, status="409"))
    with serve(tmp_path, "a,b") as server, server.client(ADMIN, csrf=False) as admin:
        scenarios = httpx.get(server.url + "/_sandbox/scenarios").json()["data"]
        assert {"a", "b"} <= {s["name"] for s in scenarios} and len(scenarios) == 11
        assert httpx.get(server.url + "/_sandbox/scenario").json()["data"]["scenario"] == ["a", "b"]
        for path, status in ((STATUS, 418), (BEAT, 409)):
            r = admin.get(path)
            assert_error(r, status)
            assert r.headers["X-RateLimit-Limit"] == "40"
            assert int(r.headers["X-RateLimit-Reset"]) <= time.time() + 31  # a's window
        r = httpx.put(server.url + "/_sandbox/scenario", json={"scenario": ["b", "a"]})
        assert r.status_code == 200 and r.json()["data"]["scenario"] == ["b", "a"]
        assert admin.get(BEAT).headers["X-RateLimit-Limit"] == "50"


def test_waiting_retry_after_gets_through(tmp_path: Path) -> None:
    write(tmp_path, "tight", 'name = "tight"\n[limits]\nrequests = 3\nwindow_seconds = 2\n')
    with serve(tmp_path, "tight") as server, httpx.Client(base_url=server.url) as anon:
        clock = server.sandbox.clock
        clock.advance(2 - clock.now().timestamp() % 2 + 0.05)  # start of a window
        answers = [anon.get(MAINT) for _ in range(4)]
        assert [r.status_code for r in answers] == [200, 200, 200, 429]
        assert [r.headers["X-RateLimit-Remaining"] for r in answers] == ["2", "1", "0", "0"]
        wait = int(answers[-1].headers["Retry-After"])
        assert 1 <= wait <= 3
        time.sleep(wait)
        r = anon.get(MAINT)
        assert r.status_code == 200 and r.headers["X-RateLimit-Remaining"] == "2"


def test_header_names_scenarios_not_files_on_the_server(server: LiveServer, admin: httpx.Client) -> None:
    r = admin.get(JOBS, params=LIST, headers={"X-Sandbox-Scenario": "/etc/passwd"})
    assert r.status_code == 400
    assert "unknown scenario" in r.json()["error"]


# -- files that must be refused ------------------------------------------------------------------------

ROLE_RULE = '[[faults]]\neffect = "drop"\nroles = ["Contractr"]\n'
BAD = {  # name: (text, line, field, known bug or "")
    "syntax": ('name = "x"\n[limits]\nrequests = 10 s\n', 3, "requests",
               "scenarios.py load_file: a TOML syntax error names the line but not the field on it"),
    "unknown-top-level": ('name = "x"\ncolour = "red"\n', 2, "colour", ""),
    "unknown-limits-key": ('name = "x"\n[limits]\nrequest = 5\n', 3, "request", ""),
    "wrong-type": ('name = "x"\n[limits]\nrequests = "ten"\n', 3, "requests", ""),
    "bool-for-int": ('name = "x"\n[auth]\ntoken_max_requests = true\n', 3, "token_max_requests", ""),
    "bad-effect": ('name = "x"\n[[faults]]\neffect = "explode"\n', 3, "effect", ""),
    "probability-1.5": ('name = "x"\n[[faults]]\neffect = "drop"\nprobability = 1.5\n', 4, "probability", ""),
    "uniform-max-below-min": ('name = "x"\n[[faults]]\neffect = "latency"\n[faults.latency]\nkind = "uniform"\n'
                              'min_ms = 100\nmax_ms = 10\n', 7, "max_ms", ""),
    "long-tail-p99-not-above-median": ('name = "x"\n[[faults]]\neffect = "latency"\n[faults.latency]\n'
                                       'kind = "long-tail"\nmedian_ms = 100\np99_ms = 100\n', 7, "p99_ms", ""),
    "storm-without-storm-every": ('name = "x"\n[limits]\nstorm_seconds = 6\n', 3, "storm_seconds", ""),
    "unknown-role": ('name = "x"\n' + ROLE_RULE, 4, "roles", ""),
    "inline-uniform": ('name = "x"\n[[faults]]\neffect = "latency"\n'
                       'latency = { kind = "uniform", min_ms = 50, max_ms = 10 }\n', 4, "max_ms",
                       "scenarios.py _where: keys inside an inline table (the built-ins' style) get no line"),
    "inline-long-tail": ('name = "x"\n[[faults]]\neffect = "latency"\n'
                         'latency = { kind = "long-tail", median_ms = 0, p99_ms = 10 }\n', 4, "p99_ms",
                         "scenarios.py _where: keys inside an inline table (the built-ins' style) get no line"),
    "second-rule-of-three": ('name = "x"\n[[faults]]\neffect = "drop"\n\n[[faults]]\neffect = "drop"\n'
                             'probability = 1.5\n\n[[faults]]\neffect = "drop"\nprobability = 0.5\n', 7, "probability",
                             "scenarios.py _where: the nth rule is matched to the nth line setting the key, so an "
                             "earlier rule without the key shifts the line (reports 11)"),
    "storm-every-without-storm": ('name = "x"\n[limits]\nstorm_every_seconds = 60\n', 3, "storm",
                                  "scenarios.py _sanity: the error names storm_seconds, which is not in the file, "
                                  "so no line is found"),
    "rule-without-effect": ('name = "x"\n[[faults]]\nprobability = 0.5\n', 2, "effect",
                            "scenarios.py _fault: a missing key has no line; fall back to the rule's [[faults]] line"),
}


def located(message: str, path: Path, line: int) -> bool:
    return f"{path}:{line}:" in message or f"(at line {line}," in message


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_file_names_file_line_and_field(tmp_path: Path, case: str) -> None:
    text, line, field, _fixed_bug = BAD[case]  # the last item names the bug this case caught
    path = write(tmp_path, "bad", text)
    for load in (lambda: load_file(path), lambda: Catalogue(tmp_path)):
        with pytest.raises(ScenarioError) as info:
            load()
        message = str(info.value)
        assert str(path) in message and "\n" not in message, message
        assert located(message, path, line), message
        assert field in message, message


# -- the command line ----------------------------------------------------------------------------------

def cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROPOPS_SANDBOX_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env


def run_cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """A command that must end by itself (a server that wrongly starts fails on the timeout)."""
    return subprocess.run([sys.executable, "-m", "sandbox", *args], cwd=cwd, env=cli_env(), capture_output=True,
                          text=True, timeout=30, stdin=subprocess.DEVNULL, check=False)


def assert_refused(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(ERROR_PREFIX), result.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])


def test_cli_refuses_a_bad_scenario_file_and_does_not_start(tmp_path: Path) -> None:
    bad = write(tmp_path, "bad", 'name = "bad"\n[limits]\nrequests = "ten"\n')
    port = free_port()
    assert_refused(run_cli(tmp_path, "--scenario", str(bad), "--port", str(port)), f"{bad}:3", "requests")
    folder = tmp_path / "more"
    folder.mkdir()
    worse = write(folder, "worse", 'name = "worse"\n[[faults]]\neffect = "drop"\nprobability = 1.5\n')
    assert_refused(run_cli(tmp_path, "--scenario-dir", str(folder), "--port", str(port)), f"{worse}:4",
                   "probability")
    assert_refused(run_cli(tmp_path, "--scenario", "default,no-such-scenario", "--port", str(port)),
                   "no-such-scenario")
    assert_refused(run_cli(tmp_path, "--scenario", str(tmp_path / "missing.toml"), "--port", str(port)), "missing.toml")
    assert_refused(run_cli(tmp_path, "scenarios", "--scenario-dir", str(folder)), f"{worse}:4")
    with socket.socket() as sock:  # nothing listens
        assert sock.connect_ex(("127.0.0.1", port)) != 0


def test_cli_lists_the_scenarios(tmp_path: Path) -> None:
    table = run_cli(tmp_path, "scenarios")
    assert table.returncode == 0, table.stderr
    for row in Catalogue().describe():
        assert any(line.startswith(row["name"]) and row["description"] in line for line in table.stdout.splitlines())
    write(tmp_path, "mine", 'name = "mine"\ndescription = "My own trouble."\n')
    listed = run_cli(tmp_path, "scenarios", "--json", "--scenario-dir", str(tmp_path))
    assert listed.returncode == 0, listed.stderr
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert len(rows) == 10 and rows["mine"]["description"] == "My own trouble."
    assert rows["slow"]["description"].startswith("Long-tailed latency")


def test_cli_serves_a_composed_scenario_from_a_scenario_dir(tmp_path: Path) -> None:
    write(tmp_path, "a", 'name = "a"\n[limits]\nrequests = 50\n\n' + fault("error", STATUS, status="418"))
    write(tmp_path, "b", 'name = "b"\n[limits]\nrequests = 40\n')
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        args = ["--port", str(port), "--scenario-dir", str(tmp_path), "--scenario", "a,b", "--log-level", "warning"]
        proc = subprocess.Popen([sys.executable, "-m", "sandbox", *args], cwd=tmp_path, env=cli_env(), stdout=out,
                                stderr=err, stdin=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    if httpx.get(url + "/_sandbox/scenario", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert proc.poll() is None and time.monotonic() < deadline, "the server did not start"
                time.sleep(0.1)
            assert httpx.get(url + "/_sandbox/scenario").json()["data"]["scenario"] == ["a", "b"]
            login = httpx.post(url + "/api/auth/login", json={"email": ADMIN, "password": "sandbox"})
            assert login.status_code == 200 and login.headers["X-RateLimit-Limit"] == "40"  # b's limit
            token = login.json()["token"]
            assert_error(httpx.get(url + STATUS, headers={"Authorization": f"Bearer {token}"}), 418)
        finally:
            proc.terminate()
            proc.wait(timeout=15)
