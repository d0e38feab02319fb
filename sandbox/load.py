"""HTTP load for the bench: `generate()`, a built-in asyncio generator with raw HTTP/1.1 keep-alive
connections, and `run_wrk()`, which drives ``wrk`` when it is installed. Both report a `Load`."""

from __future__ import annotations

import asyncio
import os
import re
import statistics
import subprocess
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

HOST = "127.0.0.1"


@dataclass
class Load:
    """What one load run saw: answers with an expected status (`ok`), everything else (`errors`:
    other statuses and broken connections), and the latency of every answer in seconds."""

    ok: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    median_ms: float | None = None  # wrk's 50th percentile (wrk gives no single latencies)

    @property
    def requests(self) -> int:
        return self.ok + self.errors

    @property
    def rps(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    @property
    def p50_ms(self) -> float:
        if self.median_ms is not None:
            return self.median_ms
        return statistics.median(self.latencies) * 1000 if self.latencies else 0.0


def request_bytes(method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b"") -> bytes:
    """One HTTP/1.1 keep-alive request, ready to write."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}", "Connection: keep-alive"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """(status, body, server closes) for one answer: Content-Length, chunked, or read-to-close."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head[:-4].split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length, chunked, close = None, False, False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value:
            chunked = True
        elif name == b"connection" and value == b"close":
            close = True
    if chunked:
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers, then the blank line
                    pass
                break
            parts.append((await reader.readexactly(size + 2))[:-2])
        return status, b"".join(parts), close
    if length is not None:
        return status, await reader.readexactly(length), close
    return status, await reader.read(), True


async def generate(port: int, request: bytes, *, connections: int = 16, duration: float | None = None,
                   total: int | None = None, expect: tuple[int, ...] = (200,), host: str = HOST,
                   timeout: float = 30.0) -> Load:
    """Send `request` over `connections` keep-alive connections for `duration` seconds or until `total`
    requests were sent, whichever comes first; a broken connection counts an error and is reopened."""
    if duration is None and total is None:
        raise ValueError("give a duration or a total")
    load = Load()
    left = [total if total is not None else -1]
    go = asyncio.Event()
    deadline = [0.0]

    async def connect() -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        try:
            return await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        except (TimeoutError, OSError):
            return None

    def more() -> bool:
        if duration is not None and time.perf_counter() >= deadline[0]:
            return False
        if left[0] == 0:
            return False
        left[0] -= 1
        return True

    async def worker() -> None:
        conn = await connect()
        await go.wait()
        while more():
            if conn is None:
                conn = await connect()
                if conn is None:
                    load.errors += 1
                    await asyncio.sleep(0.01)
                    continue
            reader, writer = conn
            sent = time.perf_counter()
            try:
                writer.write(request)
                status, _, close = await asyncio.wait_for(read_response(reader), timeout)
            except (TimeoutError, OSError, EOFError, ValueError, IndexError, asyncio.IncompleteReadError):
                load.errors += 1
                writer.close()
                conn = None
                continue
            load.latencies.append(time.perf_counter() - sent)
            load.statuses[status] += 1
            if status in expect:
                load.ok += 1
            else:
                load.errors += 1
            if close:
                writer.close()
                conn = None
        if conn is not None:
            conn[1].close()

    tasks = [asyncio.ensure_future(worker()) for _ in range(connections)]
    await asyncio.sleep(0)
    started = time.perf_counter()
    deadline[0] = started + (duration or 0)
    go.set()
    await asyncio.gather(*tasks)
    load.seconds = time.perf_counter() - started
    return load


def run_generate(port: int, request: bytes, **kwargs: Any) -> Load:
    """`generate()` on its own event loop (uvloop when installed)."""
    try:
        import uvloop

        factory = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(generate(port, request, **kwargs))


def _lua(text: str) -> str:
    return "[==[" + text + "]==]"


def run_wrk(port: int, method: str, path: str, *, headers: dict[str, str] | None = None, body: bytes = b"",
            connections: int = 16, duration: float = 5.0) -> Load:
    """Throughput from wrk (one thread: on a small machine the other core is the server's)."""
    script = [f"wrk.method = {_lua(method)}"]
    script += [f"wrk.headers[ {_lua(k)} ] = {_lua(v)}" for k, v in (headers or {}).items()]
    if body:
        script.append(f"wrk.body = {_lua(body.decode())}")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write("\n".join(script) + "\n")
    try:
        out = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", "--latency", f"-d{max(1, round(duration))}s", "--timeout", "30s",
             "-s", handle.name, f"http://{HOST}:{port}{path}"],
            capture_output=True, text=True, timeout=duration + 60, check=True,
        ).stdout
    finally:
        os.unlink(handle.name)
    done = re.search(r"(\d+) requests in ([\d.]+)(m?s|m)\b", out)
    if done is None:
        raise RuntimeError(f"could not read wrk's output:\n{out}")
    seconds = float(done[2]) * {"ms": 0.001, "s": 1.0, "m": 60.0}[done[3]]
    bad = int(m[1]) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
    sockets = re.search(r"Socket errors:(.*)", out)
    bad += sum(int(n) for n in re.findall(r"\d+", sockets[1])) if sockets else 0
    median = re.search(r"^\s+50%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    p50 = float(median[1]) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[median[2]] if median else None
    return Load(ok=max(0, int(done[1]) - bad), errors=bad, seconds=seconds, median_ms=p50)
