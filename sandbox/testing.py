"""Run a real sandbox server in a background thread, for tests (yours and ours).

    with LiveServer(Settings(seed=7)) as server:
        httpx.get(server.url + "/api/system/heartbeat?health_check=1")

Real HTTP through uvicorn on a free loopback port, as httpx's own test-suite does it. `login()` and
`client()` save the two calls every test starts with.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import httpx
import uvicorn

from .app import SandboxApp, create_app
from .settings import Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    def __init__(self, settings: Settings | None = None, app: SandboxApp | None = None):
        settings = settings or Settings()
        self.app = app or create_app(settings)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, name=f"sandbox:{self.port}", daemon=True)

    @property
    def sandbox(self):
        return self.app.sandbox

    def start(self) -> LiveServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the sandbox server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def login(self, email: str = "admin@sandbox.propops.test", password: str = "sandbox") -> str:
        response = httpx.post(self.url + "/api/auth/login", json={"email": email, "password": password})
        response.raise_for_status()
        return response.json()["token"]

    def client(self, email: str | None = "admin@sandbox.propops.test", *, csrf: bool = True) -> httpx.Client:
        """An httpx client signed in as `email`, with a CSRF token in its X-CSRF-Token header."""
        headers = {}
        if email:
            headers["Authorization"] = "Bearer " + self.login(email)
            if csrf:
                answer = httpx.get(self.url + "/api/security/csrf-token", headers=headers)
                headers["X-CSRF-Token"] = answer.raise_for_status().json()["data"]["token"]
        # Not opened yet, so callers can use it in a `with` block.
        return httpx.Client(base_url=self.url, timeout=30, headers=headers)
