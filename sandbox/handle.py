"""`Sandbox`: a Python handle on a sandbox, for scripts, notebooks and the pytest plugin.

    from sandbox import Sandbox

    with Sandbox(seed=7, scenario="flaky") as sb:          # a real server on a free loopback port
        with sb.client("staff") as staff:                  # httpx.Client: bearer token + X-CSRF-Token
            staff.get("/api/jobs/manage", params={"action": "list"})
        sb.clock.advance(3600)
        sb.requests(path="/api/jobs/*")                    # the request journal
        sb.reset()

`Sandbox(url="http://localhost:8080")` drives a sandbox that already runs (the Docker one) instead of
starting one; `InProcessSandbox` serves the ASGI app with no socket, for the fastest tests. Every
control call goes through the HTTP control plane under /_sandbox/, so the three behave alike.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio.from_thread
import httpx
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .app import create_app
from .clock import iso, parse_instant
from .settings import Settings
from .testing import LiveServer

PASSWORD = "sandbox"
ROLES = {
    "admin": "admin@sandbox.propops.test",
    "staff": "staff@sandbox.propops.test",
    "agent": "agent@sandbox.propops.test",
    "contractor": "contractor@sandbox.propops.test",
    "api": "api@sandbox.propops.test",
    "other-admin": "admin@other.propops.test",
}
_RETRY = frozenset({500, 502, 503})  # injected faults a sign-in helper retries (it sets up, it does not test)
IN_PROCESS_URL = "http://testserver"


class SandboxError(RuntimeError):
    """A control-plane or sign-in call the sandbox refused: `status` and the envelope's `error`."""

    def __init__(self, status: int, message: str):
        super().__init__(f"{status}: {message}")
        self.status, self.message = status, message


def email_for(role_or_email: str) -> str:
    if "@" in role_or_email:
        return role_or_email
    try:
        return ROLES[role_or_email]
    except KeyError:
        raise ValueError(f"unknown role {role_or_email!r}: use an e-mail or one of {', '.join(ROLES)}") from None


def _instant(value: str | dt.datetime) -> str:
    return iso(value if isinstance(value, dt.datetime) else parse_instant(value))


class Clock:
    """The sandbox clock, through `/_sandbox/clock`. The changing calls return the new state
    ({"now", "frozen", "start"})."""

    def __init__(self, sandbox: Sandbox):
        self._sandbox = sandbox

    def state(self) -> dict[str, Any]:
        return self._sandbox.control("GET", "/clock")

    def now(self) -> dt.datetime:
        return parse_instant(self.state()["now"])

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._sandbox.control("POST", "/clock", json=body)

    def freeze(self) -> dict[str, Any]:
        return self._post({"freeze": True})

    def unfreeze(self) -> dict[str, Any]:
        return self._post({"freeze": False})

    def advance(self, seconds: float | dt.timedelta) -> dict[str, Any]:
        if isinstance(seconds, dt.timedelta):
            seconds = seconds.total_seconds()
        return self._post({"advance_seconds": seconds})

    def set(self, when: str | dt.datetime) -> dict[str, Any]:
        return self._post({"set": _instant(when)})


class _ScenarioSwitch:
    """Returned by `Sandbox.scenario()`: the switch has happened; leaving a `with` block switches back."""

    def __init__(self, sandbox: Sandbox, names: list[str]):
        self._sandbox = sandbox
        self.previous = sandbox.active_scenario()
        self.active = sandbox.set_scenario(names)

    def __enter__(self) -> list[str]:
        return self.active

    def __exit__(self, *exc: object) -> None:
        self._sandbox.set_scenario(self.previous)


class Sandbox:
    """A sandbox to drive: started here on a free loopback port (or `port`), or the one at `url`.

    Keyword options beyond the named ones go to `Settings` (jobs=, recipe=, rate_limit=, …).
    """

    def __init__(self, seed: int = 42, scenario: str | None = None, data_dir: str | Path | None = None,
                 port: int | None = None, *, url: str | None = None, admin_key: str | None = None,
                 clock_start: str | dt.datetime | None = None, **settings: Any):
        if url is not None and (scenario or data_dir or port or clock_start or settings):
            raise ValueError("url= drives a running sandbox: start it with the scenario/data dir/port you want")
        if isinstance(clock_start, str):
            clock_start = parse_instant(clock_start)
        if settings.get("scenario_dir") is not None:
            settings["scenario_dir"] = Path(settings["scenario_dir"])
        self.settings = None if url else Settings(
            seed=seed, scenario=scenario or "default", data_dir=Path(data_dir) if data_dir else None,
            clock_start=clock_start, **settings)
        self._port = port
        self._url = url.rstrip("/") if url else None
        self._headers = {"X-Sandbox-Admin-Key": admin_key} if admin_key else {}
        self.server: LiveServer | None = None
        self.clock = Clock(self)
        self._http: httpx.Client | None = None
        self._clients: list[httpx.Client] = []

    # -- lifetime ----------------------------------------------------------------------------------

    def start(self) -> Sandbox:
        if self._http is not None:
            return self
        if self._url is None:
            server = LiveServer(self.settings)
            if self._port:  # LiveServer picks a free port; uvicorn binds whatever its config says at start
                server.port, server.url = self._port, f"http://127.0.0.1:{self._port}"
                server.server.config.port = self._port
            self.server = server.start()
        self._http = self._new_client(self._headers)
        return self

    def close(self) -> None:
        """Close every client this handle made, then stop the server it started (if any)."""
        self.close_clients()
        if self._http is not None:
            self._http.close()
            self._http = None
        if self.server is not None:
            self.server.stop()
            self.server = None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._url or (self.server.url if self.server else 'not started')}>"

    @property
    def url(self) -> str:
        if self._url is not None:
            return self._url
        if self.server is None:
            raise RuntimeError("the sandbox is not started: use `with Sandbox(...)` or .start()")
        return self.server.url

    @property
    def app(self) -> Any:
        """The ASGI app (and its `.sandbox` state) when it runs in this process, else None."""
        return self.server.app if self.server is not None else None

    # -- transport (InProcessSandbox overrides these two) -------------------------------------------

    def _new_client(self, headers: Mapping[str, str]) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, headers=dict(headers))

    def _new_async_client(self, headers: Mapping[str, str]) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=30, headers=dict(headers))

    # -- the control plane -------------------------------------------------------------------------

    def _send(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """One call: the JSON envelope, or SandboxError with the status and the envelope's error."""
        if self._http is None:
            self.start()
        response = self._http.request(method, path, **kwargs)  # type: ignore[union-attr]
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code >= 400 or not isinstance(body, dict) or body.get("success") is False:
            error = body.get("error") if isinstance(body, dict) else None
            raise SandboxError(response.status_code, error or response.text.strip() or response.reason_phrase)
        return body

    def control(self, method: str, path: str, **kwargs: Any) -> Any:
        """One call to /_sandbox/<path>: the envelope's `data`, or SandboxError."""
        return self._send(method, "/_sandbox" + path, **kwargs).get("data")

    def reset(self) -> dict[str, Any]:
        """Back to the seeded baseline: data, sessions, limiter, journal, clock and start scenario."""
        return self.control("POST", "/reset")

    def active_scenario(self) -> list[str]:
        return self.control("GET", "/scenario")["scenario"]

    def set_scenario(self, names: str | list[str] | tuple[str, ...]) -> list[str]:
        """Switch the active scenario for good (names compose, later ones win); returns the active names."""
        value = names if isinstance(names, str) else list(names)
        return self.control("PUT", "/scenario", json={"scenario": value})["scenario"]

    def scenario(self, *names: str) -> _ScenarioSwitch:
        """Switch scenario now; as a context manager, switch back to the previous one on exit."""
        if not names:
            raise TypeError("scenario() needs at least one scenario name")
        return _ScenarioSwitch(self, list(names))

    def scenarios(self) -> list[dict[str, Any]]:
        return self.control("GET", "/scenarios")

    def requests(self, **filters: Any) -> list[dict[str, Any]]:
        """The request journal, oldest first: filters method, path (fnmatch), status, since (id or time), limit."""
        params = {k: _instant(v) if isinstance(v, dt.datetime) else v for k, v in filters.items() if v is not None}
        return self.control("GET", "/requests", params=params)

    def clear_requests(self) -> None:
        self.control("DELETE", "/requests")

    def snapshot(self, name: str) -> Any:
        return self.control("POST", "/snapshots", json={"name": name})

    def restore(self, name: str) -> Any:
        return self.control("POST", f"/snapshots/{quote(name, safe='')}/restore")

    def snapshots(self) -> list[dict[str, Any]]:
        return self.control("GET", "/snapshots")

    def delete_snapshot(self, name: str) -> None:
        self.control("DELETE", f"/snapshots/{quote(name, safe='')}")

    def accounts(self) -> list[dict[str, Any]]:
        return self.control("GET", "/accounts")

    # -- signing in --------------------------------------------------------------------------------

    def _api(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """An /api/ call that retries injected 500/502/503 and broken answers (it sets up, it does not test)."""
        for attempt in range(5):
            try:
                return self._send(method, path, **kwargs)
            except SandboxError as exc:
                if exc.status not in _RETRY or attempt == 4:
                    raise
            except httpx.TransportError:
                if attempt == 4:
                    raise
        raise AssertionError("unreachable")

    def login(self, role_or_email: str = "staff", password: str = PASSWORD) -> str:
        """A fresh bearer token (a new login revokes that account's previous token, as in PropOps)."""
        body = self._api("POST", "/api/auth/login", json={"email": email_for(role_or_email), "password": password})
        return body["token"]

    def csrf_token(self, token: str) -> str:
        body = self._api("GET", "/api/security/csrf-token", headers={"Authorization": "Bearer " + token})
        return body["data"]["token"]

    def headers(self, role_or_email: str | None = "staff", *, csrf: bool = True) -> dict[str, str]:
        """Authorization (and X-CSRF-Token) headers for a fresh sign-in; {} for None (anonymous)."""
        if role_or_email is None:
            return {}
        token = self.login(role_or_email)
        headers = {"Authorization": "Bearer " + token}
        if csrf:
            headers["X-CSRF-Token"] = self.csrf_token(token)
        return headers

    def client(self, role: str | None = "staff", *, csrf: bool = True) -> httpx.Client:
        """An httpx.Client on the sandbox, signed in as `role` (or an e-mail; None: anonymous).

        Use it in a `with` block; whatever is left open is closed by `close_clients()` / `close()`
        (the pytest fixtures call it after every test)."""
        client = self._new_client(self.headers(role, csrf=csrf))
        self._clients.append(client)
        return client

    def async_client(self, role: str | None = "staff", *, csrf: bool = True) -> httpx.AsyncClient:
        """The same as `client()`, as an httpx.AsyncClient; closing it is yours (`async with`)."""
        return self._new_async_client(self.headers(role, csrf=csrf))

    def close_clients(self) -> None:
        """Close the synchronous clients `client()` made that are still open."""
        clients, self._clients = self._clients, []
        for client in clients:
            client.close()


# -- in process: the ASGI app without a socket ----------------------------------------------------

class _WholeAnswers:
    """The app, with an answer it leaves unfinished (the drop and truncate faults) raised as the
    RemoteProtocolError a client meets on a real socket, instead of passing for a short 200."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        done = False

        async def watch(message: Message) -> None:
            nonlocal done
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                done = True
            await send(message)

        await self.app(scope, receive, watch)
        if not done:
            raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")


class _SyncASGITransport(httpx.BaseTransport):
    """httpx's ASGITransport for a synchronous client: each request runs on the handle's event-loop
    thread (an anyio blocking portal), as starlette's TestClient does, without its deprecated import."""

    def __init__(self, app: ASGIApp, portal: anyio.from_thread.BlockingPortal):
        self._transport = httpx.ASGITransport(app=app)
        self._portal = portal

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()  # a byte stream both sync and async clients can send

        async def call() -> tuple[httpx.Response, bytes]:
            response = await self._transport.handle_async_request(request)
            raw = b"".join([part async for part in response.aiter_raw()])
            return response, raw

        response, raw = self._portal.call(call)
        return httpx.Response(response.status_code, headers=response.headers, content=raw,
                              extensions=response.extensions)


class InProcessSandbox(Sandbox):
    """The sandbox's ASGI app in this process, no server and no socket: clients talk to it through an
    ASGI transport (base URL http://testserver). Same API as `Sandbox`; `.app.sandbox` is the state."""

    def __init__(self, seed: int = 42, scenario: str | None = None, data_dir: str | Path | None = None,
                 *, admin_key: str | None = None, clock_start: str | dt.datetime | None = None, **settings: Any):
        super().__init__(seed, scenario, data_dir, admin_key=admin_key, clock_start=clock_start, **settings)
        self._app: Any = None
        self._stack: ExitStack | None = None
        self._portal: anyio.from_thread.BlockingPortal | None = None

    def start(self) -> InProcessSandbox:
        if self._http is not None:
            return self
        self._app = create_app(self.settings)
        self._stack = ExitStack()
        self._portal = self._stack.enter_context(anyio.from_thread.start_blocking_portal())
        self._http = self._new_client(self._headers)
        return self

    def close(self) -> None:
        super().close()
        if self._stack is not None:
            self._stack.close()
            self._stack = self._portal = None
            self._app.sandbox.store.flush()  # what the server's shutdown does

    @property
    def url(self) -> str:
        return IN_PROCESS_URL

    @property
    def app(self) -> Any:
        return self._app

    def _new_client(self, headers: Mapping[str, str]) -> httpx.Client:
        if self._portal is None:
            raise RuntimeError("the in-process sandbox is not started: use `with InProcessSandbox(...)`")
        transport = _SyncASGITransport(_WholeAnswers(self._app), self._portal)
        return httpx.Client(base_url=IN_PROCESS_URL, transport=transport, headers=dict(headers))

    def _new_async_client(self, headers: Mapping[str, str]) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=_WholeAnswers(self._app))
        return httpx.AsyncClient(base_url=IN_PROCESS_URL, transport=transport, headers=dict(headers))
