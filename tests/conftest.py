"""Shared fixtures: a fresh sandbox served by real uvicorn on a free loopback port, per test."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import httpx
import pytest

from sandbox import Settings
from sandbox.testing import LiveServer

CLOCK_START = dt.datetime(2026, 11, 1, 9, 0, tzinfo=dt.UTC)
JOB_1001 = "550e8400-e29b-41d4-a716-446655440001"

ADMIN = "admin@sandbox.propops.test"
STAFF = "staff@sandbox.propops.test"
AGENT = "agent@sandbox.propops.test"
CONTRACTOR = "contractor@sandbox.propops.test"
API = "api@sandbox.propops.test"
OTHER_ADMIN = "admin@other.propops.test"
ACCOUNTS = (ADMIN, STAFF, AGENT, CONTRACTOR, API, OTHER_ADMIN)


@pytest.fixture
def server() -> Iterator[LiveServer]:
    with LiveServer(Settings(seed=42, clock_start=CLOCK_START)) as live:
        yield live


@pytest.fixture
def admin(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client(ADMIN) as client:
        yield client


@pytest.fixture
def anon(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def assert_envelope_headers(response: httpx.Response) -> None:
    """The headers every /api/ answer carries (overview: rate limits and timings)."""
    for name in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset",
                 "X-Response-Time-ms", "X-DB-Query-Time-ms"):
        assert name in response.headers, name
    assert float(response.headers["X-Response-Time-ms"]) >= float(response.headers["X-DB-Query-Time-ms"]) >= 0
    assert response.headers["content-type"].startswith("application/json")


def assert_error(response: httpx.Response, status: int, *words: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False and isinstance(body["error"], str) and body["error"]
    for word in words:
        assert word in body["error"], (word, body["error"])
    assert_envelope_headers(response)
    return body


def job(client: httpx.Client, uuid: str = JOB_1001) -> dict:
    """A job as `action=get` returns it (asserting the 200)."""
    r = client.get("/api/jobs/manage", params={"action": "get", "uuid": uuid})
    assert r.status_code == 200, r.text
    return r.json()["data"]


def job_where(server: LiveServer, keep) -> dict:
    """The first stored job (raw row) that `keep` accepts."""
    return next(j for j in server.sandbox.store.select("jobs", keep))


def frozen(server: LiveServer) -> str:
    """Move the sandbox clock an hour on and stop it there; returns that instant (ISO)."""
    server.sandbox.clock.advance(3600)
    server.sandbox.clock.freeze()
    return server.sandbox.clock.iso()
