"""``propops-sandbox bench [--json] [--quick] [--check]``: measure the sandbox against its budgets.

Every server runs in its own process (uvicorn on a free loopback port, as ``propops-sandbox serve``
runs it), so the load generator never shares the server's GIL. Throughput is judged as a ratio against
a bare Starlette app served the same way in the same run, because absolute numbers drift between
machines. Load comes from ``wrk`` when it is on PATH, else from the built-in generator (`sandbox.load`).
The bench reports; only ``--check`` makes a failed budget exit 1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .load import HOST, Load, read_response, request_bytes, run_generate, run_wrk

__all__ = ["Load", "main", "run_generate", "run_wrk"]

CLOCK_START = "2026-11-01T09:00:00Z"
ADMIN = {"email": "admin@sandbox.propops.test", "password": "sandbox"}
HEARTBEAT = "/api/system/heartbeat?health_check=1"
JOBS_LIST = "/api/jobs/manage?action=list&limit=50"
FILTERED = "/api/jobs/manage?action=list&status_id=1&limit=50"
ENCODED = "/encoded"  # the bare app's pre-encoded answer
# The health probe skips scenarios by design; this one is as cheap and meets them.
SLOW_PATH = "/api/system/maintenance-mode"
_ROOT = Path(__file__).resolve().parent.parent  # the folder that holds the sandbox package
SLOW_SCENARIO = """name = "bench-slow"
description = "The bench's slow scenario: a fixed 200 ms latency on every request."

[[faults]]
effect = "latency"
latency = { kind = "fixed", ms = 200 }
"""


# -- servers ------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROPOPS_SANDBOX_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_ROOT), env.get("PYTHONPATH")) if p)
    env["PROPOPS_SANDBOX_RATE_LIMIT"] = str(10**9)  # measure the server, not the documented 429s
    return env


class Server:
    """A server process on a free loopback port; `start()` returns the seconds to the first 200."""

    def __init__(self, argv: list[str]):
        self.port = free_port()
        self.argv = [a.replace("{port}", str(self.port)) for a in argv]
        self.proc: subprocess.Popen | None = None
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop()

    @classmethod
    def sandbox(cls, *extra: str) -> Server:
        return cls([sys.executable, "-m", "sandbox", "serve", "--host", HOST, "--port", "{port}", "--seed", "42",
                    "--clock-start", CLOCK_START, "--log-level", "warning", *extra])

    @classmethod
    def bare(cls, payload: Path) -> Server:
        return cls([sys.executable, "-c", "import sys; from sandbox.bench import serve_bare; "
                    "serve_bare(int(sys.argv[1]), sys.argv[2])", "{port}", str(payload)])

    def start(self, timeout: float = 60.0) -> float:
        ping = request_bytes("GET", HEARTBEAT)
        started = time.perf_counter()
        self.proc = subprocess.Popen(self.argv, env=_env(), stdout=subprocess.DEVNULL, stderr=self._log)
        while time.perf_counter() - started < timeout:
            if self.proc.poll() is not None:
                self._log.seek(0)
                raise RuntimeError(f"server exited {self.proc.returncode}: {self._log.read().decode()[-2000:]}")
            with contextlib.suppress(OSError), socket.create_connection((HOST, self.port), timeout=5) as sock:
                sock.sendall(ping)
                if sock.recv(64).startswith(b"HTTP/1.1 200"):
                    return time.perf_counter() - started
            time.sleep(0.005)
        raise RuntimeError(f"server did not answer within {timeout:.0f} s")

    def rss_mb(self) -> float:
        text = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+) kB", text)[1]) / 1024

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def serve_bare(port: int, payload: str) -> None:
    """The baseline: a bare Starlette app on uvicorn, configured as `propops-sandbox serve` configures it,
    returning the same 50 job objects (the sandbox's own answer, loaded once) the way a Starlette
    endpoint returns objects: `JSONResponse`. `/encoded` sends the same answer as bytes encoded once,
    which is the floor of any framework's cost and is reported beside the budget."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    body = Path(payload).read_bytes()
    objects = json.loads(body)

    async def jobs(request: Any) -> Response:
        return JSONResponse(objects)

    async def encoded(request: Any) -> Response:
        return Response(body, media_type="application/json")

    async def heartbeat(request: Any) -> Response:
        return JSONResponse({"success": True, "status": "operational"})

    app = Starlette(routes=[Route("/api/jobs/manage", jobs), Route(ENCODED, encoded),
                            Route("/api/system/heartbeat", heartbeat)])
    uvicorn.Server(uvicorn.Config(app, host=HOST, port=port, log_level="warning", lifespan="on")).run()


def call(port: int, method: str, path: str, body: dict | None = None, headers: dict[str, str] | None = None,
         want: int = 200) -> bytes:
    """One request on a fresh connection (setup: login, CSRF token, reset); any status but `want` raises."""
    data = json.dumps(body).encode() if body is not None else b""
    head = {"Content-Type": "application/json", **(headers or {})} if body is not None else headers

    async def once() -> tuple[int, bytes]:
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            writer.write(request_bytes(method, path, head, data))
            return (await read_response(reader))[:2]
        finally:
            writer.close()

    status, answer = asyncio.run(once())
    if status != want:
        raise RuntimeError(f"{method} {path}: expected {want}, got {status}: {answer[:300]!r}")
    return answer


def sign_in(port: int) -> dict[str, str]:
    auth = {"Authorization": "Bearer " + json.loads(call(port, "POST", "/api/auth/login", ADMIN))["token"]}
    token = json.loads(call(port, "GET", "/api/security/csrf-token", headers=auth))["data"]["token"]
    return {**auth, "X-CSRF-Token": token}


# -- the measurements ---------------------------------------------------------------------------------

@dataclass
class Plan:
    quick: bool
    generator: str  # "wrk" or "python"

    @property
    def seconds(self) -> float:
        return 1.0 if self.quick else 5.0

    def throughput(self, port: int, method: str, path: str, *, headers: dict[str, str] | None = None,
                   body: bytes = b"", connections: int = 16, expect: tuple[int, ...] = (200,)) -> Load:
        warm = request_bytes(method, path, headers, body)
        run_generate(port, warm, connections=min(connections, 16), duration=0.3 if self.quick else 1.0,
                     expect=expect)
        if self.generator == "wrk":
            return run_wrk(port, method, path, headers=headers, body=body, connections=connections,
                           duration=self.seconds)
        return run_generate(port, warm, connections=connections, duration=self.seconds, expect=expect)


def _result(name: str, value: float, unit: str, op: str, budget: float, detail: str = "") -> dict[str, Any]:
    passed = value >= budget if op == ">=" else value <= budget
    return {"name": name, "value": round(value, 3), "unit": unit, "op": op, "budget": budget, "passed": passed,
            "detail": detail}


def measure(plan: Plan) -> list[dict[str, Any]]:
    results = []
    tmp = Path(tempfile.mkdtemp(prefix="propops-bench-"))
    try:
        starts = []
        with Server.sandbox() as server:
            starts.append(server.start())
            port = server.port
            auth = sign_in(port)
            page = call(port, "GET", JOBS_LIST, headers=auth)
            first = json.loads(page)["data"][0]
            (tmp / "jobs.json").write_bytes(page)
            with Server.bare(tmp / "jobs.json") as bare:
                bare.start()
                base = plan.throughput(bare.port, "GET", JOBS_LIST)
                floor = plan.throughput(bare.port, "GET", ENCODED)
            mine = plan.throughput(port, "GET", JOBS_LIST, headers=auth)
            results.append(_result(
                "jobs list throughput vs bare Starlette", 100 * mine.rps / base.rps, "%", ">=", 50,
                f"{mine.rps:,.0f} vs {base.rps:,.0f} req/s ({floor.rps:,.0f} sending pre-encoded bytes), "
                f"{mine.errors + base.errors} errors"))

            resets = []
            for _ in range(5 if plan.quick else 20):
                resets.append(json.loads(call(port, "POST", "/_sandbox/reset"))["data"]["ms"])
            results.append(_result("reset to baseline (median, server ms)", statistics.median(resets), "ms", "<=",
                                   10, f"{len(resets)} resets, max {max(resets):.1f} ms"))

            auth = sign_in(port)  # the reset dropped the old token
            fields = {k: first[k] for k in ("priority_id", "status_id", "job_type_id", "address_id")}
            body = json.dumps({"action": "create", "job_title": "Bench job", "job_description": "Made by the bench",
                               **fields}).encode()
            made = plan.throughput(port, "POST", "/api/jobs/manage", headers={**auth, "Content-Type":
                                   "application/json"}, body=body, expect=(201,))
            results.append(_result("job create", made.rps, "req/s", ">=", 1000,
                                   f"{made.ok:,} created, {made.errors} errors"))
        for _ in range(1 if plan.quick else 2):
            with Server.sandbox() as server:
                starts.append(server.start())
        results.insert(1, _result("cold start (to first 200)", statistics.median(starts), "s", "<=", 1.0,
                                  f"median of {len(starts)}: " + ", ".join(f"{s:.2f}" for s in starts)))

        size = 5_000 if plan.quick else 100_000
        with Server.sandbox("--jobs", str(size)) as server:
            seeded = server.start(timeout=300)
            results.append(_result(f"{size:,} jobs: seeding (to first 200)", seeded, "s", "<=", 10))
            auth = sign_in(server.port)
            lat = run_generate(server.port, request_bytes("GET", FILTERED, auth), connections=1,
                               total=10 if plan.quick else 30)
            results.append(_result(f"{size:,} jobs: filtered list p50", lat.p50_ms, "ms", "<=", 50,
                                   f"status_id=1&limit=50, {lat.requests} requests, {lat.errors} errors"))
            results.append(_result(f"{size:,} jobs: resident memory", server.rss_mb(), "MB", "<=", 500, "VmRSS"))

        (tmp / "slow.toml").write_text(SLOW_SCENARIO)
        with Server.sandbox("--scenario", str(tmp / "slow.toml")) as server:
            server.start()
            slow = plan.throughput(server.port, "GET", SLOW_PATH, connections=500)
            results.append(_result("slow (200 ms latency, 500 connections)", slow.rps, "req/s", ">=", 2000,
                                   f"GET {SLOW_PATH}, p50 {slow.p50_ms:.0f} ms, {slow.errors} errors"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return results


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        found = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text())
        model = found[1].strip() if found else ""
    return {"cores": os.cpu_count(), "cpu": model, "python": platform.python_version(),
            "implementation": platform.python_implementation(), "platform": platform.platform()}


def report(outcome: dict[str, Any]) -> str:
    m = outcome["machine"]
    lines = [f"Machine: {m['cores']} cores ({m['cpu'] or 'unknown CPU'}), {m['implementation']} {m['python']}, "
             f"{m['platform']}; load from {outcome['generator']}{' (quick)' if outcome['quick'] else ''}", ""]
    lines.append(f"{'measurement':<42} {'value':>12} {'budget':>14}  result  detail")
    for r in outcome["results"]:
        value = f"{r['value']:,.2f} {r['unit']}"
        budget = f"{r['op']} {r['budget']:,} {r['unit']}"
        lines.append(f"{r['name']:<42} {value:>12} {budget:>14}  {'pass' if r['passed'] else 'FAIL':<6}  "
                     f"{r['detail']}")
    failed = sum(not r["passed"] for r in outcome["results"])
    lines += ["", f"{len(outcome['results']) - failed} passed, {failed} failed, in {outcome['seconds']:.0f} s"]
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    """Run the bench for the CLI's parsed `args` (json, quick, check); returns the exit status."""
    choice = getattr(args, "generator", "auto") or "auto"
    generator = "wrk" if choice == "wrk" or (choice == "auto" and shutil.which("wrk")) else "python"
    started = time.perf_counter()
    results = measure(Plan(quick=args.quick, generator=generator))
    outcome = {"machine": machine(), "generator": generator, "quick": args.quick, "results": results,
               "passed": all(r["passed"] for r in results), "seconds": round(time.perf_counter() - started, 1)}
    print(json.dumps(outcome, indent=2) if args.json else report(outcome))
    return 1 if args.check and not outcome["passed"] else 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--quick", action="store_true", help="short runs and a 5,000-job dataset (for tests)")
    parser.add_argument("--check", action="store_true", help="exit status 1 when a budget fails")
    parser.add_argument("--generator", choices=["auto", "wrk", "python"], default="auto",
                        help="load generator (default: wrk when on PATH, else the built-in one)")


if __name__ == "__main__":
    _cli = argparse.ArgumentParser(prog="python -m sandbox.bench", description=__doc__.splitlines()[0])
    add_arguments(_cli)
    raise SystemExit(main(_cli.parse_args()))
