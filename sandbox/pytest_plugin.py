"""pytest plugin: a live PropOps sandbox for your tests, reset after every test that uses it.

An installed package loads it by itself (entry point `propops_sandbox`; `-p no:propops_sandbox` turns it
off). From a checkout that is not installed, load it with `-p sandbox.pytest_plugin` — never both: pytest
refuses to register one module under two names.

    def test_list_jobs(propops_client):                    # httpx.Client signed in as staff
        assert propops_client.get("/api/jobs/manage", params={"action": "list"}).status_code == 200

    @pytest.mark.propops_scenario("server-errors")
    def test_retries(propops_sandbox):                     # the handle: url, clock, scenario(), requests()…
        ...

Fixtures
- `propops_sandbox`: the session's `sandbox.handle.Sandbox` — a real server on a free loopback port in a
  background thread, started once per session (per xdist worker: each worker has its own), or the one
  at `--propops-url`. After the test: clients it made are closed and POST /_sandbox/reset runs.
- `propops_client`: an httpx.Client signed in as staff (Authorization and X-CSRF-Token set), closed after.
- `propops_asgi`: the same API in process, no socket (`InProcessSandbox`): `.client(role)` gives a sync
  httpx.Client over the ASGI app, `.async_client(role)` an AsyncClient; reset after every test too.
- `propops_session` / `propops_asgi_session`: the session-scoped handles underneath (not reset per test).

`@pytest.mark.propops_scenario("name", ...)` switches the scenario on after the fixtures are set up
(their sign-ins meet the start scenario), just before the test body; the reset puts it back.
Options: --propops-seed (42), --propops-url, --propops-clock-start, --propops-admin-key.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest

from .handle import InProcessSandbox, Sandbox, SandboxError

MARKER = "propops_scenario"
_USED = pytest.StashKey[list[Sandbox]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("propops", "PropOps sandbox")
    group.addoption("--propops-seed", type=int, default=42, metavar="N",
                    help="seed of the sandbox the plugin starts (default 42)")
    group.addoption("--propops-url", default=None, metavar="URL",
                    help="use the sandbox already running at URL (e.g. the Docker one): no server is started "
                         "and resets go there")
    group.addoption("--propops-clock-start", default=None, metavar="ISO",
                    help="sandbox clock start (default: now); with the seed it makes the data byte-identical")
    group.addoption("--propops-admin-key", default=os.environ.get("PROPOPS_SANDBOX_ADMIN_KEY") or None,
                    metavar="KEY", help="X-Sandbox-Admin-Key for the control plane of a --propops-url sandbox "
                                        "(default: $PROPOPS_SANDBOX_ADMIN_KEY)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}(name, ...): run the test body with this sandbox scenario active "
                   "(several names compose, later ones win)")
    workers = getattr(config.option, "numprocesses", None)
    if config.getoption("propops_url") and workers and not hasattr(config, "workerinput"):
        raise pytest.UsageError("--propops-url gives every xdist worker the same sandbox, whose resets would "
                                "clash: use it without -n")


def _options(config: pytest.Config) -> dict:
    return {"seed": config.getoption("propops_seed"), "clock_start": config.getoption("propops_clock_start")}


@pytest.fixture(scope="session")
def propops_session(pytestconfig: pytest.Config) -> Iterator[Sandbox]:
    url = pytestconfig.getoption("propops_url")
    if url:
        handle = Sandbox(url=url, admin_key=pytestconfig.getoption("propops_admin_key"))
    else:
        handle = Sandbox(**_options(pytestconfig))
    with handle:
        if url:
            handle.reset()  # the first test starts from the baseline too
        yield handle


@pytest.fixture(scope="session")
def propops_asgi_session(pytestconfig: pytest.Config) -> Iterator[InProcessSandbox]:
    with InProcessSandbox(**_options(pytestconfig)) as handle:
        yield handle


def _per_test(handle: Sandbox, request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    used = request.node.stash.setdefault(_USED, [])
    used.append(handle)
    yield handle
    used.remove(handle)
    handle.close_clients()
    handle.reset()


@pytest.fixture
def propops_sandbox(propops_session: Sandbox, request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    yield from _per_test(propops_session, request)


@pytest.fixture
def propops_asgi(propops_asgi_session: InProcessSandbox, request: pytest.FixtureRequest) -> Iterator[InProcessSandbox]:
    yield from _per_test(propops_asgi_session, request)  # type: ignore[misc]


@pytest.fixture
def propops_client(propops_sandbox: Sandbox) -> Iterator[httpx.Client]:
    with propops_sandbox.client("staff") as client:
        yield client


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    marker = item.get_closest_marker(MARKER)
    if marker is None:
        return
    names = list(marker.args)
    if not names or not all(isinstance(n, str) for n in names):
        pytest.fail(f"@pytest.mark.{MARKER} takes one or more scenario names, e.g. {MARKER}(\"flaky\")",
                    pytrace=False)
    handles = item.stash.get(_USED, [])
    if not handles:
        pytest.fail(f"@pytest.mark.{MARKER} needs the propops_sandbox, propops_client or propops_asgi fixture",
                    pytrace=False)
    for handle in handles:
        try:
            handle.set_scenario(names)
        except SandboxError as exc:
            pytest.fail(f"@pytest.mark.{MARKER}: {exc.message}", pytrace=False)
