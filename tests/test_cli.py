"""The command line, through real processes: `python -m sandbox [serve] …` and `python -m sandbox endpoints`.

Servers are started as subprocesses (cwd: an empty temp dir) and used over real HTTP; the determinism
checks run in-process with `LiveServer`, which is the same app on the same uvicorn.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from conftest import ACCOUNTS, ADMIN, CLOCK_START, JOB_1001

from sandbox import Settings
from sandbox.testing import LiveServer, free_port

REPO = Path(__file__).resolve().parents[1]
CLOCK = "2026-11-01T09:00:00Z"  # == CLOCK_START
HEALTH = "/api/system/heartbeat?health_check=1"
JOBS = "/api/jobs/manage"
LIST_ALL = {"action": "list", "limit": 200}
ERROR_PREFIX = "propops-sandbox: error: "
MODULE = [sys.executable, "-m", "sandbox"]
# The console script, where the package is installed (CI); else the module, which runs the same main().
SCRIPT = shutil.which("propops-sandbox", path=str(Path(sys.executable).parent))


def cli_env(**extra: str) -> dict[str, str]:
    """The test process's environment without PROPOPS_SANDBOX_*, with this checkout first on the path
    (when the package is pip-installed instead, the same `-m sandbox` still finds it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROPOPS_SANDBOX_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env.update(extra)
    return env


def run_cli(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command that should end by itself (a server that wrongly starts fails on the timeout)."""
    return subprocess.run(
        [sys.executable, "-m", "sandbox", *args], cwd=cwd, env=env or cli_env(), stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=20, check=False,
    )


class CliServer:
    """`python -m sandbox ARGS` in a subprocess; ready once the health check answers 200."""

    def __init__(self, cwd: Path, port: int, *args: str, env: dict[str, str] | None = None,
                 command: list[str] | None = None):
        self.url = f"http://127.0.0.1:{port}"
        self._argv = [*(command or MODULE), *args]
        self._cwd, self._env = cwd, env or cli_env()
        # Unnamed files rather than pipes: nobody has to drain them while the server runs.
        self._out = tempfile.TemporaryFile()  # noqa: SIM115 - closed in __exit__
        self._err = tempfile.TemporaryFile()  # noqa: SIM115 - closed in __exit__
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> CliServer:
        try:
            self._start()
        except BaseException:
            self.__exit__()  # __exit__ is not called when __enter__ fails: no stray process or open file
            raise
        return self

    def _start(self) -> None:
        self.proc = subprocess.Popen(self._argv, cwd=self._cwd, env=self._env, stdin=subprocess.DEVNULL,
                                     stdout=self._out, stderr=self._err)
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"the sandbox exited with {self.proc.returncode}: {self.stderr[-2000:]}")
            try:
                if httpx.get(self.url + HEALTH, timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"the sandbox did not answer on {self.url}: {self.stderr[-2000:]}")
            time.sleep(0.05)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"the sandbox ignored signal {sig}") from None
        return self.proc.returncode

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._out.close()
        self._err.close()

    @staticmethod
    def _read(fh) -> str:
        # pread: the child shares the file offset, so seeking here could make it overwrite its output.
        return os.pread(fh.fileno(), os.fstat(fh.fileno()).st_size, 0).decode()

    @property
    def stdout(self) -> str:
        return self._read(self._out)

    @property
    def stderr(self) -> str:
        return self._read(self._err)


def login(url: str, email: str = ADMIN) -> str:
    response = httpx.post(url + "/api/auth/login", json={"email": email, "password": "sandbox"})
    assert response.status_code == 200, response.text
    return response.json()["token"]


@contextmanager
def signed_in(url: str, token: str | None = None) -> Iterator[httpx.Client]:
    """A client carrying the admin's bearer token (a fresh login unless `token` is given)."""
    with httpx.Client(base_url=url, timeout=30, headers={"Authorization": f"Bearer {token or login(url)}"}) as c:
        yield c


def csrf(client: httpx.Client) -> str:
    response = client.get("/api/security/csrf-token")
    assert response.status_code == 200, response.text
    return response.json()["data"]["token"]


def create_job(client: httpx.Client, token: str, title: str, **fields: object) -> dict:
    body = {"action": "create", "job_title": title, "job_description": f"{title}: made by the test suite.",
            "priority_id": 2, "status_id": 1, "job_type_id": 3, "address_id": 5, "csrf_token": token, **fields}
    response = client.post(JOBS, json=body)
    assert response.status_code == 201, response.text
    return response.json()


def get_job(client: httpx.Client, uuid: str) -> httpx.Response:
    return client.get(JOBS, params={"action": "get", "uuid": uuid})


def one_error_line(result: subprocess.CompletedProcess[str], *, banner: bool = False) -> str:
    """A usage error: status 2, exactly one `propops-sandbox: error:` line on stderr, and nothing on stdout
    (unless `banner`: the URL and accounts are printed before uvicorn binds)."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(ERROR_PREFIX), lines[0]
    if not banner:
        assert result.stdout == ""
    return lines[0]


def in_process_list(settings: Settings) -> bytes:
    with LiveServer(settings) as live, signed_in(live.url) as client:
        return client.get(JOBS, params=LIST_ALL).content


# -- serve -------------------------------------------------------------------------------------------------


def test_bare_module_serves_with_every_option_and_prints_url_and_demo_accounts(tmp_path: Path) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    port = free_port()
    args = ("--host", "127.0.0.1", "--port", str(port), "--seed", "7", "--scenario", "default",
            "--clock-start", CLOCK, "--jobs", "60", "--log-level", "warning")
    with CliServer(cwd, port, *args) as server:
        out = server.stdout
        assert f"http://127.0.0.1:{port}/api/" in out
        assert "seed 7" in out and "scenario default" in out and "in memory" in out
        for email in ACCOUNTS:
            assert email in out, email
        beat = httpx.get(server.url + HEALTH).json()
        assert beat["status"] == "operational"
        assert beat["timestamp"].startswith("2026-11-01T09:0"), beat  # the clock starts at --clock-start
        with signed_in(server.url) as client:
            listing = client.get(JOBS, params=LIST_ALL)
            assert listing.status_code == 200
            assert listing.json()["total"] == 60  # --jobs
            # --seed 7 and --clock-start reached the dataset: the same list as an in-process seed-7 sandbox
            assert listing.content == in_process_list(Settings(seed=7, clock_start=CLOCK_START, jobs=60))
            served = httpx.get(server.url + "/_sandbox/endpoints")
        status = server.stop()
        stderr = server.stderr
    assert status in (0, -signal.SIGTERM)
    assert "Traceback" not in stderr
    assert "INFO" not in stderr, stderr  # --log-level warning silences uvicorn's start-up lines
    assert list(cwd.iterdir()) == []  # no --data-dir: nothing written anywhere near the cwd

    # GET /_sandbox/endpoints serves the same list as `endpoints --json`
    assert served.status_code == 200
    listed = json.loads(run_cli(cwd, "endpoints", "--json").stdout)
    assert served.json()["data"] == listed
    assert served.json()["count"] == len(listed)


def test_serve_takes_every_setting_from_the_environment(tmp_path: Path) -> None:
    """`propops-sandbox serve` with no options at all: everything comes from PROPOPS_SANDBOX_*."""
    port = free_port()
    env = cli_env(PROPOPS_SANDBOX_HOST="127.0.0.1", PROPOPS_SANDBOX_PORT=str(port), PROPOPS_SANDBOX_SEED="9",
                  PROPOPS_SANDBOX_DATA_DIR="state", PROPOPS_SANDBOX_SCENARIO="default",
                  PROPOPS_SANDBOX_CLOCK_START=CLOCK, PROPOPS_SANDBOX_JOBS="70", PROPOPS_SANDBOX_LOG_LEVEL="warning")
    with CliServer(tmp_path, port, "serve", env=env, command=[SCRIPT] if SCRIPT else None) as server:
        out = server.stdout
        assert f"http://127.0.0.1:{port}/api/" in out and "seed 9" in out and "data in state" in out
        for email in ACCOUNTS:
            assert email in out, email
        with signed_in(server.url) as client:
            body = client.get(JOBS, params=LIST_ALL)
        assert server.stop() in (0, -signal.SIGTERM)
        assert "INFO" not in server.stderr
    assert body.json()["total"] == 70
    assert body.content == in_process_list(Settings(seed=9, clock_start=CLOCK_START, jobs=70))
    stored = json.loads((tmp_path / "state" / "propops.json").read_bytes())  # the data dir, relative to cwd
    assert stored["_meta"]["1"]["seed"] == 9


def test_command_line_options_beat_environment_variables(tmp_path: Path) -> None:
    port, env_port = free_port(), free_port()
    env = cli_env(PROPOPS_SANDBOX_PORT=str(env_port), PROPOPS_SANDBOX_SEED="9", PROPOPS_SANDBOX_JOBS="70",
                  PROPOPS_SANDBOX_LOG_LEVEL="debug")
    args = ("--port", str(port), "--seed", "11", "--jobs", "65", "--clock-start", CLOCK, "--log-level", "warning")
    with CliServer(tmp_path, port, *args, env=env) as server:
        assert f":{port}/api/" in server.stdout and "seed 11" in server.stdout
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{env_port}{HEALTH}", timeout=2)
        with signed_in(server.url) as client:
            body = client.get(JOBS, params=LIST_ALL)
        server.stop()
        assert "INFO" not in server.stderr and "DEBUG" not in server.stderr
    assert body.json()["total"] == 65
    assert body.content == in_process_list(Settings(seed=11, clock_start=CLOCK_START, jobs=65))


# -- endpoints ---------------------------------------------------------------------------------------------


def test_endpoints_lists_every_endpoint_as_a_table_and_as_json(tmp_path: Path) -> None:
    as_json = run_cli(tmp_path, "endpoints", "--json")
    table = run_cli(tmp_path, "endpoints")
    assert as_json.returncode == 0 and table.returncode == 0, (as_json.stderr, table.stderr)
    assert as_json.stderr == "" and table.stderr == ""
    rows = json.loads(as_json.stdout)
    assert isinstance(rows, list) and rows
    for row in rows:
        assert {"method", "path", "actions", "permission", "csrf"} <= row.keys(), row
        assert isinstance(row["actions"], list) and isinstance(row["csrf"], bool)
        assert row["permission"] is None or isinstance(row["permission"], str)

    def find(method: str, path: str) -> list[dict]:
        return [r for r in rows if r["method"] == method and r["path"] == path]

    login_rows = find("POST", "/api/auth/login")
    assert len(login_rows) == 1 and login_rows[0]["csrf"] is False and login_rows[0]["permission"] is None
    assert {a for r in find("GET", JOBS) for a in r["actions"]} >= {"list", "get"}
    posts = {a: r for r in find("POST", JOBS) for a in r["actions"]}
    assert {"create", "update", "delete"} <= posts.keys()
    assert all(r["csrf"] and r["permission"] for r in posts.values())
    assert len(find("GET", "/api/security/csrf-token")) == 1

    # The table has one line per row, in the same order, with method, path, actions and the csrf mark.
    lines = table.stdout.splitlines()
    assert len(lines) == len(rows)
    for line, row in zip(lines, rows, strict=True):
        cells = line.split()
        assert cells[:3] == [row["method"], row["path"], ",".join(row["actions"]) or "-"], line
        assert (cells[-1] == "csrf") is row["csrf"], line
        assert (row["permission"] or "-") in cells, line


def test_the_console_script_entry_point_takes_an_argv(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from sandbox.cli import main  # what `propops-sandbox` runs (pyproject [project.scripts])

    main(["endpoints", "--json"])
    assert json.loads(capsys.readouterr().out) == json.loads(run_cli(tmp_path, "endpoints", "--json").stdout)
    with pytest.raises(SystemExit) as exit_:
        main(["serve", "--port", "abc"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.startswith(ERROR_PREFIX)


# -- usage errors ------------------------------------------------------------------------------------------

SHORT_KEY = base64.b64encode(b"k" * 16).decode()

BAD = [
    pytest.param(["--bogus"], {}, "--bogus", id="unknown-option"),
    pytest.param(["serve", "--bogus"], {}, "--bogus", id="unknown-serve-option"),
    pytest.param(["endpoints", "--bogus"], {}, "--bogus", id="unknown-endpoints-option"),
    pytest.param(["--port", "abc"], {}, "abc", id="port-not-a-number"),
    pytest.param(["--port", "70000"], {}, "70000", id="port-out-of-range"),
    pytest.param(["--clock-start", "yesterday"], {}, "yesterday", id="clock-start"),
    pytest.param(["--scenario", "nope"], {}, "nope", id="scenario"),
    pytest.param(["--log-level", "loud"], {}, "loud", id="log-level"),
    pytest.param(["--data-dir", "{file}"], {}, "plain.txt", id="data-dir-is-a-file"),
    pytest.param(["--data-dir", "{file}/sub"], {}, "plain.txt", id="data-dir-under-a-file"),
    pytest.param([], {"PROPOPS_SANDBOX_SEED": "abc"}, "PROPOPS_SANDBOX_SEED", id="env-seed"),
    pytest.param([], {"PROPOPS_SANDBOX_PORT": "abc"}, "PROPOPS_SANDBOX_PORT", id="env-port-not-a-number"),
    # Was a bug: only --port was range-checked; the sandbox announced :70000 and listened on 70000 % 65536.
    pytest.param([], {"PROPOPS_SANDBOX_PORT": "70000"}, "PROPOPS_SANDBOX_PORT", id="env-port-out-of-range"),
    # Was a bug: argparse checks --log-level, but the variable went to logging and ended in a traceback.
    pytest.param([], {"PROPOPS_SANDBOX_LOG_LEVEL": "loud"}, "PROPOPS_SANDBOX_LOG_LEVEL", id="env-log-level"),
    pytest.param([], {"PROPOPS_SANDBOX_CLOCK_START": "yesterday"}, "PROPOPS_SANDBOX_CLOCK_START", id="env-clock"),
    pytest.param([], {"PROPOPS_SANDBOX_SCENARIO": "nope"}, "nope", id="env-scenario"),
    pytest.param([], {"PROPOPS_SANDBOX_DATA_DIR": "{file}"}, "plain.txt", id="env-data-dir-is-a-file"),
    pytest.param([], {"PROPOPS_SANDBOX_KEY": "not base64!"}, "PROPOPS_SANDBOX_KEY", id="key-not-base64"),
    pytest.param([], {"PROPOPS_SANDBOX_KEY": SHORT_KEY}, "PROPOPS_SANDBOX_KEY", id="key-16-bytes"),
]


@pytest.mark.parametrize(("args", "env", "mentions"), BAD)
def test_a_bad_option_is_one_line_on_stderr_and_status_2(
    tmp_path: Path, args: list[str], env: dict[str, str], mentions: str
) -> None:
    plain = tmp_path / "plain.txt"
    plain.write_text("not a directory\n")
    # A port of our own, so a sandbox that wrongly starts cannot clash; not when the case is about the port.
    own_port = "PROPOPS_SANDBOX_PORT" not in env and not (args and args[0] in ("serve", "endpoints"))
    port = ["--port", str(free_port())] if own_port else []
    argv = [a.replace("{file}", str(plain)) for a in args]
    variables = {k: v.replace("{file}", str(plain)) for k, v in env.items()}
    result = run_cli(tmp_path, *port, *argv, env=cli_env(**variables))
    line = one_error_line(result)
    assert mentions in line, line
    assert plain.read_text() == "not a directory\n"


def test_an_unwritable_data_dir_is_one_line_and_status_2(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root writes through chmod 0o500, so the directory cannot be made unwritable")
    data = tmp_path / "locked"
    data.mkdir()
    data.chmod(0o500)
    try:
        line = one_error_line(run_cli(tmp_path, "--port", str(free_port()), "--data-dir", str(data)))
    finally:
        data.chmod(0o700)
    assert "locked" in line


def test_a_port_in_use_is_one_line_and_status_2(tmp_path: Path) -> None:
    # Was a bug: uvicorn exits 3 when it cannot bind, so the CLI's own "could not listen" line never came.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli(tmp_path, "--port", str(port), "--log-level", "critical")
    line = one_error_line(result, banner=True)
    assert f"could not listen on 127.0.0.1:{port}" in line


# -- determinism -------------------------------------------------------------------------------------------


def test_same_seed_and_clock_start_give_byte_identical_answers() -> None:
    def run(seed: int) -> tuple[str, str, bytes, bytes]:
        with LiveServer(Settings(seed=seed, clock_start=CLOCK_START)) as live:
            token = live.login()  # the first login of a fresh sandbox
            with signed_in(live.url, token) as client:
                listing = client.get(JOBS, params=LIST_ALL)
                job = get_job(client, JOB_1001)
                assert listing.status_code == 200 and job.status_code == 200
                return token, csrf(client), listing.content, job.content

    first, second, other = run(5), run(5), run(6)
    assert first == second  # token, CSRF token, list bytes and job bytes
    assert json.loads(first[2])["count"] == 200
    assert other[2] != first[2]  # another seed, another dataset
    assert other[0] != first[0]  # tokens are derived from the seed too
