"""Process death, through the real CLI (`python -m sandbox serve --data-dir …` in a subprocess) and real HTTP.

The guarantee under test (sandbox/store.py `commit`, sandbox/storage.py `persist`): a write request is
answered only after a snapshot holding its change has been written to a temporary file, fsynced and
renamed over ``propops.json`` (group commit: one snapshot may carry many requests' writes). So:

- SIGTERM (graceful): in-flight requests finish, the rest is flushed; a restart shows everything.
- SIGKILL in the middle of a write burst: the file still loads (it is the old or the new snapshot, never
  half of one), and every write that got its 2xx before the kill is there. Writes that were in flight
  may or may not be there — but each at most once. The kill is timed to land while a snapshot is being
  written, so writing the file in place (or answering before the fsync) fails this test.
- What a killed server leaves behind (temporary blob files) is cleaned at the next start, and a restored
  snapshot finds its uploaded files again.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from conftest import JOB_1001
from test_cli import CLOCK, JOBS, CliServer, create_job, csrf, get_job, login, signed_in

from sandbox.testing import free_port

THREADS = 8
ARGS = ("--clock-start", CLOCK, "--log-level", "warning")


def serve(tmp_path: Path, data: Path) -> CliServer:
    port = free_port()
    return CliServer(tmp_path, port, "--port", str(port), "--data-dir", str(data), *ARGS)


@dataclass
class Burst:
    """THREADS writers, each alternating "create a job" and "update my own job's works_order_ref to the next
    sequence number", recording exactly which writes were acknowledged (2xx) — until the server goes away."""

    url: str
    tag: str
    own: list[str]  # one job uuid per thread, updated by that thread alone
    created: list[dict] = field(default_factory=list)  # acknowledged creates: {"job_uuid", "job_id", "title"}
    last_update: dict[int, int] = field(default_factory=dict)  # thread -> last acknowledged update seq
    tried_update: dict[int, int] = field(default_factory=dict)  # thread -> last update seq sent
    updates: int = 0  # acknowledged updates
    refused: list[str] = field(default_factory=list)  # non-2xx answers (there must be none)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self, token: str) -> list[threading.Thread]:
        threads = [threading.Thread(target=self._run, args=(i, token), daemon=True) for i in range(THREADS)]
        for t in threads:
            t.start()
        return threads

    @property
    def acknowledged(self) -> int:
        with self.lock:
            return len(self.created) + self.updates

    def _run(self, i: int, token: str) -> None:
        with httpx.Client(base_url=self.url, timeout=10, headers={"Authorization": f"Bearer {token}"}) as client:
            try:
                head = {"X-CSRF-Token": csrf(client)}
                seq = 0
                while not self.stop.is_set():
                    seq += 1
                    if seq % 2:
                        title = f"{self.tag} t{i} #{seq:05d}"
                        r = client.post(JOBS, headers=head, json={
                            "action": "create", "job_title": title, "job_description": "burst", "priority_id": 2,
                            "status_id": 1, "job_type_id": 3, "address_id": 5})
                        if r.status_code == 201:
                            with self.lock:
                                self.created.append({**r.json(), "title": title})
                            continue
                    else:
                        with self.lock:
                            self.tried_update[i] = seq
                        r = client.post(JOBS, headers=head, json={
                            "action": "update", "uuid": self.own[i], "works_order_ref": f"{self.tag}-{i}-{seq:05d}"})
                        if r.status_code == 200:
                            with self.lock:
                                self.last_update[i] = seq
                                self.updates += 1
                            continue
                    with self.lock:
                        self.refused.append(r.text)
                    return
            except (httpx.TransportError, AssertionError):
                return  # the server is gone (killed or stopping)


def wait_for(burst: Burst, acknowledged: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while burst.acknowledged < acknowledged:
        assert not burst.refused, burst.refused[:3]
        assert time.monotonic() < deadline, f"only {burst.acknowledged} writes acknowledged"
        time.sleep(0.01)


def kill_mid_write(server: CliServer, data: Path, patience: float = 3) -> None:
    """SIGKILL the server (no handler, no flush), preferably while a snapshot is being written: a temporary
    file is there, or the data file is shorter than it was (someone writing it in place)."""
    largest, deadline = 0, time.monotonic() + patience
    while time.monotonic() < deadline:
        try:
            names = [entry.name for entry in os.scandir(data)]
            size = (data / "propops.json").stat().st_size
        except FileNotFoundError:
            break
        if size < largest or any(name.endswith(".tmp") for name in names):
            break
        largest = max(largest, size)
    server.proc.kill()


def all_jobs(client: httpx.Client, **filters: object) -> list[dict]:
    rows, offset = [], 0
    while True:
        r = client.get(JOBS, params={"action": "list", "limit": 200, "offset": offset, **filters})
        assert r.status_code == 200, r.text
        body = r.json()
        rows += body["data"]
        offset += 200
        if offset >= body["total"]:
            return rows


def own_jobs(url: str, tag: str) -> list[str]:
    with signed_in(url) as client:
        token = csrf(client)
        return [create_job(client, token, f"{tag} own {i}", works_order_ref=f"{tag}-{i}-00000")["job_uuid"]
                for i in range(THREADS)]


def assert_every_acknowledged_write_is_there(url: str, burst: Burst) -> None:
    with signed_in(url) as client:
        listed = all_jobs(client, search=burst.tag)
        titles = [row["job_title"] for row in listed]
        by_uuid = {row["uuid"]: row for row in listed}
        assert len(titles) == len(set(titles)), "a write was applied twice"
        for made in burst.created:
            row = by_uuid.get(made["job_uuid"])
            assert row is not None, f"acknowledged create lost: {made}"
            assert (row["ID"], row["job_ref"], row["job_title"]) == (made["job_id"], made["job_ref"], made["title"])
        for i, uuid in enumerate(burst.own):
            got = get_job(client, uuid)
            assert got.status_code == 200, got.text
            tag, thread, seq = got.json()["data"]["works_order_ref"].split("-")
            assert (tag, int(thread)) == (burst.tag, i)
            # At least the last acknowledged update, at most the last one sent.
            assert burst.last_update.get(i, 0) <= int(seq) <= burst.tried_update.get(i, 0), (i, seq, burst)
        # Ids carry on after the last acknowledged write: nothing acknowledged is ever handed out again.
        again = create_job(client, csrf(client), f"{burst.tag} after restart")
        assert again["job_id"] > max(m["job_id"] for m in burst.created)


def test_sigterm_then_restart_keeps_everything_even_mid_burst(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with serve(tmp_path, data) as server:
        own = own_jobs(server.url, "Calm")
        burst = Burst(server.url, "Calm", own)
        threads = burst.start(login(server.url))
        wait_for(burst, 120)
        burst.stop.set()
        for t in threads:
            t.join(timeout=30)
        assert not burst.refused, burst.refused[:3]
        with signed_in(server.url) as client:
            before = all_jobs(client)
            commits = client.get(JOBS, params={"action": "list_commits", "uuid": own[0]}).json()
        assert server.stop(signal.SIGTERM) in (0, -signal.SIGTERM)
        assert "Traceback" not in server.stderr, server.stderr

    with serve(tmp_path, data) as server:
        assert_every_acknowledged_write_is_there(server.url, burst)
        with signed_in(server.url) as client:
            assert all_jobs(client)[: len(before)] == before  # every job, field for field
            assert client.get(JOBS, params={"action": "list_commits", "uuid": own[0]}).json() == commits
        # Now SIGTERM while eight writers are busy: in-flight requests finish, then the state is flushed.
        storm = Burst(server.url, "Storm", own_jobs(server.url, "Storm"))
        threads = storm.start(login(server.url))
        wait_for(storm, 60)
        server.proc.send_signal(signal.SIGTERM)
        for t in threads:
            t.join(timeout=30)
        assert server.proc.wait(timeout=30) in (0, -signal.SIGTERM)  # one signal: a second one forces the exit
        assert "Traceback" not in server.stderr, server.stderr
        assert not storm.refused, storm.refused[:3]

    assert list(data.rglob("*.tmp")) == []  # a graceful stop leaves no temporary files
    with serve(tmp_path, data) as server:
        assert_every_acknowledged_write_is_there(server.url, storm)
        server.stop()


def test_sigkill_mid_burst_loses_no_acknowledged_write_and_the_file_still_loads(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with serve(tmp_path, data) as server:  # start it once so the two rounds below both start from a file
        server.stop()
    for round_ in ("Crash", "Again"):  # the second round kills a server that recovered from the first kill
        with serve(tmp_path, data) as server:
            burst = Burst(server.url, round_, own_jobs(server.url, round_))
            threads = burst.start(login(server.url))
            wait_for(burst, 150)
            kill_mid_write(server, data)
            server.proc.wait(timeout=10)
            for t in threads:
                t.join(timeout=30)
            assert server.proc.returncode == -signal.SIGKILL
        assert not burst.refused, burst.refused[:3]
        assert burst.acknowledged >= 150
        json.loads((data / "propops.json").read_bytes())  # a whole JSON document, not half of one
        with serve(tmp_path, data) as server:  # and the server starts on it
            assert_every_acknowledged_write_is_there(server.url, burst)
            server.stop()


def test_a_killed_servers_temporary_files_are_removed_at_the_next_start(tmp_path: Path) -> None:
    """Was a bug: a SIGKILL during a blob write or a snapshot left ``blobs/.<sha256>.<pid>.tmp`` or
    ``.propops.json.<pid>.tmp`` behind for ever."""
    data = tmp_path / "data"
    with serve(tmp_path, data) as server:
        server.stop()
    stale = data / "blobs" / f".{'ab' * 32}.99999.tmp"
    stale.write_bytes(b"half a photo")
    keep = data / "blobs" / ("cd" * 32)  # a real blob (content-addressed name) stays
    keep.write_bytes(b"a whole file")
    half = data / ".propops.json.99999.tmp"
    half.write_bytes(b'{"jobs": {"1": ')
    with serve(tmp_path, data) as server:
        server.stop()
    assert not stale.exists() and keep.read_bytes() == b"a whole file"
    assert not half.exists() and json.loads((data / "propops.json").read_bytes())


def test_a_restored_snapshot_finds_its_files_again_with_a_data_dir(tmp_path: Path) -> None:
    """Was a bug: with a data dir, deleting a case note removed its attachment's file, and restoring a
    snapshot taken before brought the row back pointing at nothing ("File not found on server")."""
    with serve(tmp_path, tmp_path / "data") as server, signed_in(server.url) as client:
        head = {"X-CSRF-Token": csrf(client)}
        before = client.post("/api/jobs/case-notes", headers=head, data={"job_uuid": JOB_1001, "message": "plan"},
                             files={"attachment": ("plan.pdf", b"%PDF-1.4 the plan", "application/pdf")})
        note = before.json()["note_uuid"]
        url = client.get("/api/jobs/case-note-attachments", params={"case_note_uuid": note}).json()["data"][0]["url"]
        assert httpx.post(server.url + "/_sandbox/snapshots", json={"name": "with-plan"}).status_code == 200
        gone = client.post("/api/jobs/case-notes", headers=head, json={"action": "delete", "uuid": note})
        assert gone.status_code == 200 and client.get(url).status_code == 404
        assert httpx.post(server.url + "/_sandbox/snapshots/with-plan/restore").status_code == 200
        back = client.get(url)
        assert back.status_code == 200 and back.content == b"%PDF-1.4 the plan", back.text
        # A file nobody's snapshot has seen is still removed with its row.
        other = client.post("/api/jobs/case-notes", headers=head, data={"job_uuid": JOB_1001, "message": "x"},
                            files={"attachment": ("x.pdf", b"%PDF-1.4 short-lived", "application/pdf")}).json()
        blobs = {p.name for p in (tmp_path / "data" / "blobs").iterdir()}
        client.post("/api/jobs/case-notes", headers=head, json={"action": "delete", "uuid": other["note_uuid"]})
        assert len(blobs - {p.name for p in (tmp_path / "data" / "blobs").iterdir()}) == 1
        server.stop()
