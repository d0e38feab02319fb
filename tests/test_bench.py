"""The benchmark: a quick end-to-end run in a subprocess (the shape of its JSON, not its timings) and the
built-in load generator against a tiny bare Starlette app (it counts requests and errors correctly)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from sandbox import bench

ROOT = Path(__file__).resolve().parent.parent
BUDGETS = {
    "jobs list throughput vs bare Starlette": "%",
    "cold start (to first 200)": "s",
    "reset to baseline (median, server ms)": "ms",
    "job create": "req/s",
    "5,000 jobs: seeding (to first 200)": "s",
    "5,000 jobs: filtered list p50": "ms",
    "5,000 jobs: resident memory": "MB",
    "slow (200 ms latency, 500 connections)": "req/s",
}


def test_quick_bench_reports_every_budget_as_json():
    done = subprocess.run([sys.executable, "-m", "sandbox", "bench", "--quick", "--json"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout)
    assert outcome["quick"] is True
    assert outcome["generator"] in ("wrk", "python")
    assert outcome["machine"]["cores"] >= 1 and outcome["machine"]["python"].startswith("3.")
    rows = {r["name"]: r for r in outcome["results"]}
    assert set(rows) == set(BUDGETS)
    for name, unit in BUDGETS.items():
        row = rows[name]
        assert row["unit"] == unit
        assert isinstance(row["value"], int | float) and row["value"] > 0, row
        assert isinstance(row["budget"], int | float) and row["op"] in ("<=", ">=")
        assert isinstance(row["passed"], bool)
        assert row["passed"] == (row["value"] >= row["budget"] if row["op"] == ">=" else row["value"] <= row["budget"])
    assert outcome["passed"] == all(r["passed"] for r in rows.values())


def test_check_makes_a_failed_budget_exit_1(capsys, monkeypatch):
    failing = [bench._result("x", 2, "s", "<=", 1), bench._result("y", 5, "req/s", ">=", 1)]
    monkeypatch.setattr(bench, "measure", lambda plan: failing)
    args = type("Args", (), {"json": False, "quick": True, "check": True, "generator": "python"})()
    assert bench.main(args) == 1
    table = capsys.readouterr().out
    assert "FAIL" in table and "1 passed, 1 failed" in table
    args.check = False
    assert bench.main(args) == 0  # without --check the bench only reports


# -- the load generator ---------------------------------------------------------------------------------

class Tiny:
    """A bare Starlette app that counts what it serves."""

    def __init__(self) -> None:
        self.hits = 0
        self.lock = threading.Lock()

    def _count(self) -> None:
        with self.lock:
            self.hits += 1

    def app(self) -> Starlette:
        async def hello(request):
            self._count()
            return PlainTextResponse("hello")

        async def fail(request):
            self._count()
            return Response(b'{"success":false}', status_code=500, media_type="application/json")

        async def chunks(request):
            self._count()

            async def parts():
                for part in (b"one,", b"two,", b"three"):
                    yield part

            return StreamingResponse(parts(), media_type="text/plain")

        async def echo(request):
            self._count()
            return Response(await request.body(), status_code=201)

        async def closing(request):
            self._count()
            return PlainTextResponse("bye", headers={"Connection": "close"})

        return Starlette(routes=[Route("/hello", hello), Route("/fail", fail), Route("/chunks", chunks),
                                 Route("/echo", echo, methods=["POST"]), Route("/close", closing)])


@pytest.fixture
def tiny() -> Iterator[tuple[Tiny, int]]:
    counter = Tiny()
    port = bench.free_port()
    server = uvicorn.Server(uvicorn.Config(counter.app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the tiny server did not start"
        time.sleep(0.01)
    yield counter, port
    server.should_exit = True
    thread.join(10)


def test_generator_counts_a_fixed_total(tiny):
    counter, port = tiny
    load = bench.run_generate(port, bench.request_bytes("GET", "/hello"), connections=7, total=137)
    assert (load.ok, load.errors, load.requests) == (137, 0, 137)
    assert load.statuses == {200: 137} and len(load.latencies) == 137
    assert counter.hits == 137
    assert load.seconds > 0 and load.rps == pytest.approx(137 / load.seconds)


def test_generator_counts_what_the_server_served_in_a_duration(tiny):
    counter, port = tiny
    load = bench.run_generate(port, bench.request_bytes("GET", "/hello"), connections=4, duration=0.3)
    assert load.ok > 0 and load.errors == 0
    assert counter.hits == load.requests  # every request sent was answered and counted once


def test_unexpected_statuses_are_errors(tiny):
    counter, port = tiny
    load = bench.run_generate(port, bench.request_bytes("GET", "/fail"), connections=3, total=20)
    assert (load.ok, load.errors) == (0, 20)
    assert load.statuses == {500: 20} and counter.hits == 20
    assert load.rps == 0


def test_expected_statuses_and_bodies_are_configurable(tiny):
    counter, port = tiny
    request = bench.request_bytes("POST", "/echo", {"Content-Type": "application/json"}, b'{"a": 1}')
    load = bench.run_generate(port, request, connections=2, total=10, expect=(201,))
    assert (load.ok, load.errors) == (10, 0) and counter.hits == 10


def test_chunked_answers_and_closed_connections_are_read_whole(tiny):
    counter, port = tiny
    chunked = bench.run_generate(port, bench.request_bytes("GET", "/chunks"), connections=2, total=12)
    closing = bench.run_generate(port, bench.request_bytes("GET", "/close"), connections=2, total=12)
    assert (chunked.ok, chunked.errors, closing.ok, closing.errors) == (12, 0, 12, 0)
    assert counter.hits == 24
    assert bench.call(port, "GET", "/chunks") == b"one,two,three"
    with pytest.raises(RuntimeError, match="expected 200, got 500"):
        bench.call(port, "GET", "/fail")


def test_refused_connections_are_errors():
    port = bench.free_port()  # nothing listens there
    load = bench.run_generate(port, bench.request_bytes("GET", "/hello"), connections=2, total=6, timeout=2)
    assert (load.ok, load.errors) == (0, 6)
    assert not load.latencies and load.p50_ms == 0
