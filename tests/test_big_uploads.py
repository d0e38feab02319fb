"""A 25 MB upload to every upload endpoint is refused quickly with the 413 envelope, without the server
reading it whole: its peak resident memory grows far less than 25 MB, and nothing is stored (no row, no
blob, not one byte of the data file changes).

The server is the real CLI in a subprocess, so its memory is its own: the peak (VmHWM in
/proc/<pid>/status) is reset through /proc/<pid>/clear_refs before the uploads and read after them (and
VmRSS is sampled meanwhile, which is all there is where clear_refs cannot be written). The
client streams each body from a generator (chunked, no Content-Length) so it never holds 25 MB either.
A declared Content-Length over the limit is refused on the headers alone: the answer comes before the
client has sent the body.
"""

from __future__ import annotations

import hashlib
import select
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from conftest import assert_envelope_headers
from test_cli import CLOCK, CliServer, login
from test_hostile_input import BOUNDARY, file_endpoints, upload_cases

from sandbox.testing import free_port

MB = 1024 * 1024
SIZE = 25 * MB
OFFER = 100 * MB
BLOCK = b"\0" * MB


def head(fields: dict[str, str], field: str, content: bytes) -> bytes:
    out = b"".join(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
                   for k, v in fields.items())
    return out + (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{field}"; filename="big.bin"\r\n'
                  "Content-Type: application/octet-stream\r\n\r\n").encode() + content


def body(start: bytes, sent: list[int]) -> Iterator[bytes]:
    """The multipart body, streamed: the form fields and the real file's first bytes, then zeros up to 25 MB
    in all, then the closing boundary. Counts what left."""
    yield start
    sent[0] = len(start)
    while sent[0] < SIZE:
        n = min(MB, SIZE - sent[0])
        yield BLOCK if n == MB else BLOCK[:n]
        sent[0] += n
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


def memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in bytes."""
    with open(f"/proc/{pid}/status") as fh:
        return {k: int(v.split()[0]) * 1024 for k, v in (line.split(":", 1) for line in fh) if k in ("VmRSS", "VmHWM")}


class Peak:
    """The peak resident memory of a process from now on: VmHWM after resetting it through clear_refs
    ("5"), and — where that cannot be written — the largest VmRSS seen by sampling every millisecond."""

    def __init__(self, pid: int):
        self.pid, self.top, self.stop = pid, 0, threading.Event()
        try:
            with open(f"/proc/{pid}/clear_refs", "w") as fh:
                fh.write("5")
            self.reset = True
        except OSError:
            self.reset = False
        self.baseline = memory(pid)["VmRSS"]
        self.sampler = threading.Thread(target=self._sample, daemon=True)
        self.sampler.start()

    def _sample(self) -> None:
        while not self.stop.wait(0.001):
            try:
                self.top = max(self.top, memory(self.pid)["VmRSS"])
            except (OSError, KeyError):  # the process is gone (a failed test stopped it)
                return

    def growth(self) -> int:
        self.stop.set()
        self.sampler.join()
        peak = memory(self.pid)["VmHWM"] if self.reset else self.top
        return max(peak, self.top) - self.baseline


def declared_upload(url: str, path: str, headers: dict[str, str], start: bytes) -> tuple[int, bytes]:
    """Declare a 25 MB multipart body, send only its first bytes, and read the answer (within 10 s)."""
    host, port = url.removeprefix("http://").split(":")
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", f"Content-Type: multipart/form-data; boundary={BOUNDARY}",
             f"Content-Length: {SIZE + 64}", "Connection: close",
             *(f"{k}: {v}" for k, v in headers.items() if k.lower() in ("authorization", "x-csrf-token"))]
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + start)
        ready, _, _ = select.select([sock], [], [], 10)
        assert ready, "no answer to a declared 25 MB upload before its body was sent"
        answer = read_answer(sock)
    return int(answer.split(b" ", 2)[1]), answer


def endless_upload(url: str, path: str, headers: dict[str, str], start: bytes) -> tuple[int, bytes]:
    """Stream a multipart body of up to OFFER bytes in chunks, stopping as soon as an answer can be read.
    Returns how many bytes had been sent by then, and the answer. (Socket buffers hold a few MB, so only a
    body well over the limit tells "cut off at the limit" from "read to the end".)"""
    host, port = url.removeprefix("http://").split(":")
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", f"Content-Type: multipart/form-data; boundary={BOUNDARY}",
             "Transfer-Encoding: chunked", "Connection: close",
             *(f"{k}: {v}" for k, v in headers.items() if k.lower() in ("authorization", "x-csrf-token"))]
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + b"%x\r\n%s\r\n" % (len(start), start))
        sent = len(start)
        while sent < OFFER and not select.select([sock], [], [], 0)[0]:
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (MB, BLOCK))
            except OSError:
                break
            sent += MB
        assert select.select([sock], [], [], 10)[0], "no answer"
        return sent, read_answer(sock)


def read_answer(sock: socket.socket) -> bytes:
    """What the server sent before closing (a close with unread body data may end in a reset)."""
    answer = b""
    try:
        while chunk := sock.recv(65536):
            answer += chunk
    except ConnectionResetError:
        pass
    return answer


def state(client: httpx.Client, data: Path, ids: dict[str, str]) -> dict:
    """Everything an upload could have changed, through the API and on disk."""
    job = "550e8400-e29b-41d4-a716-446655440001"
    return {
        "photos": client.get("/api/jobs/photos", params={"job_uuid": job}).json()["count"],
        "documents": client.get("/api/jobs/documents", params={"action": "list", "job_uuid": job}).json()["total"],
        "notes": client.get("/api/jobs/case-notes", params={"action": "list", "job_uuid": job}).json()["total"],
        "attachments": client.get("/api/jobs/case-note-attachments", params={"job_uuid": job}).json()["total"],
        "certificates": client.get("/api/contractors/certification",
                                   params={"contractor_uuid": ids["contractor"]}).json()["total"],
        "branches": client.get("/api/admin/branches", params={"action": "list"}).json()["data"],
        "blobs": sorted(p.name for p in (data / "blobs").iterdir()),
        "file": hashlib.sha256((data / "propops.json").read_bytes()).hexdigest(),
        "stray": sorted(p.name for p in data.rglob("*.tmp")),
    }


def test_a_25_mb_upload_is_refused_fast_with_bounded_memory_and_no_state_change(tmp_path: Path) -> None:
    data = tmp_path / "data"
    port = free_port()
    with CliServer(tmp_path, port, "--port", str(port), "--data-dir", str(data), "--clock-start", CLOCK,
                   "--log-level", "warning") as server:
        pid = server.proc.pid
        bearer = {"Authorization": f"Bearer {login(server.url)}"}
        with httpx.Client(base_url=server.url, timeout=60, headers=bearer) as c:
            c.headers["X-CSRF-Token"] = c.get("/api/security/csrf-token").json()["data"]["token"]
            contractors = c.get("/api/contractors/list", params={"action": "list", "limit": 200}).json()["data"]
            branches = c.get("/api/admin/branches", params={"action": "list"}).json()["data"]
            ids = {"contractor": next(x["uuid"] for x in contractors if x["ID"] == 20),
                   "branch": next(x["uuid"] for x in branches if x["ID"] == 1)}
            cases = upload_cases(ids)
            assert set(cases) == file_endpoints()[0]  # every upload endpoint of the table, no fewer
            ctype = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
            for key, (fields, content) in cases.items():  # warm up: each path once, small, parsed and refused
                whole = head(fields, key[3], content) + f"\r\n--{BOUNDARY}--\r\n".encode()
                r = c.post(key[1], content=whole, headers={**ctype, "X-CSRF-Token": "not-the-token"})
                assert r.status_code == 403, r.text
            before = state(c, data, ids)
            peak = Peak(pid)

            for key, (fields, content) in cases.items():
                began, sent = time.monotonic(), [0]
                r = c.post(key[1], content=body(head(fields, key[3], content), sent), headers=ctype)  # chunked
                took = time.monotonic() - began
                assert r.status_code == 413, (key, r.status_code, r.text[:300])
                answer = r.json()
                assert answer["success"] is False and "20 MB" in answer["error"], (key, answer)
                assert_envelope_headers(r)
                assert took < 10 and sent[0] >= 20 * MB, (key, took, sent)
                # Endless: the server stops reading soon after the limit and answers while the client still sends.
                sent, text = endless_upload(server.url, key[1], dict(c.headers), head(fields, key[3], content))
                assert text.startswith(b"HTTP/1.1 413") and sent < 40 * MB, (key, sent / MB, text[:300])
                # Declared: the answer comes on the headers alone, before the client sends the body.
                status, text = declared_upload(server.url, key[1], dict(c.headers), head(fields, key[3], content))
                assert status == 413 and b'"success":false' in text and b"20 MB" in text, (key, text[:300])
            growth = peak.growth()
            after = state(c, data, ids)
        assert server.proc.poll() is None  # still serving
        server.stop()
        assert "Traceback" not in server.stderr, server.stderr[-2000:]

    assert growth < 8 * MB, f"the server's peak memory grew {growth / MB:.1f} MB over the oversized uploads"
    assert after == before
