"""State on disk: `<data dir>/propops.json`, written atomically before a write is acknowledged, surviving
restarts and signals, with personal fields encrypted under `<data dir>/sandbox.key` (or PROPOPS_SANDBOX_KEY).

Everything goes through real HTTP against real uvicorn (in-process `LiveServer`, or the CLI in a
subprocess), and the file is read straight off the disk.
"""

from __future__ import annotations

import asyncio
import base64
import json
import signal
import stat
import threading
import time
from pathlib import Path

import httpx
import nacl.secret
import nacl.utils
import pytest
from conftest import ADMIN, CLOCK_START, JOB_1001
from test_cli import (
    CLOCK,
    JOBS,
    LIST_ALL,
    CliServer,
    cli_env,
    create_job,
    csrf,
    get_job,
    login,
    one_error_line,
    run_cli,
    signed_in,
)

from sandbox import Settings
from sandbox.app import create_app
from sandbox.runtime import StartupError
from sandbox.testing import LiveServer, free_port

DATA_FILE = "propops.json"
KEY_FILE = "sandbox.key"
PREFIX = "enc:v1:"
SEALED = {
    "jobs": ("private_contact_name", "private_contact_email", "access_details"),
    "users": ("first_name", "last_name", "email"),
    "tenants": ("tenant_name", "tenant_email", "tenant_number_primary", "tenant_number_work"),
}


def settings(data: Path | None, **extra: object) -> Settings:
    return Settings(**{"seed": 42, "clock_start": CLOCK_START, "data_dir": data, **extra})


def on_disk(data: Path) -> dict:
    return json.loads((data / DATA_FILE).read_bytes())


def leftovers(data: Path) -> list[Path]:
    return [p for p in data.rglob("*") if p.name.endswith(".tmp")]


def new_key() -> str:
    return base64.b64encode(nacl.utils.random(nacl.secret.SecretBox.KEY_SIZE)).decode()


def opener(key_b64: str):
    box = nacl.secret.SecretBox(base64.b64decode(key_b64))

    def open_(value: str) -> str:
        assert isinstance(value, str) and value.startswith(PREFIX), value
        return box.decrypt(base64.b64decode(value[len(PREFIX):])).decode()

    return open_


def rows_with_uuid(db: dict, uuid: str) -> list[dict]:
    return [row for row in db["jobs"].values() if row.get("uuid") == uuid]


# -- durability --------------------------------------------------------------------------------------------


def test_a_created_job_is_on_disk_when_the_201_arrives_and_survives_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with LiveServer(settings(data)) as live:
        token = live.login()
        with signed_in(live.url, token) as client:
            before = client.get(JOBS, params=LIST_ALL).json()
            created = create_job(client, csrf(client), "Durable job", works_order_ref="WO-DURABLE")
            db = on_disk(data)  # read while the server still runs: no flush at shutdown involved
            rows = rows_with_uuid(db, created["job_uuid"])
            assert len(rows) == 1
            assert rows[0]["ID"] == created["job_id"] and rows[0]["job_title"] == "Durable job"
            assert rows[0]["works_order_ref"] == "WO-DURABLE"
    stored_jobs = len(db["jobs"])
    assert leftovers(data) == []

    # Restart on the same dir with another seed: the data dir wins and nothing is seeded again.
    with LiveServer(settings(data, seed=7)) as live, signed_in(live.url, token) as client:  # the old token
        got = get_job(client, created["job_uuid"])
        assert got.status_code == 200, got.text
        assert got.json()["data"]["job_title"] == "Durable job"
        assert got.json()["data"]["job_ref"] == created["job_ref"]
        after = client.get(JOBS, params=LIST_ALL).json()
        assert after["total"] == before["total"] + 1
        assert after["data"] == before["data"]  # the first 200 jobs are the seed-42 ones, unchanged
        again = create_job(client, csrf(client), "After restart")
        assert again["job_id"] == created["job_id"] + 1  # ids carry on from the file
        assert again["job_uuid"] != created["job_uuid"]
    db = on_disk(data)
    assert len(db["jobs"]) == stored_jobs + 1
    assert db["_meta"]["1"]["seed"] == 42


def test_sigterm_and_sigint_stop_the_cli_gracefully_and_lose_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    args = ("--data-dir", str(data), "--clock-start", CLOCK, "--log-level", "warning")

    port = free_port()
    with CliServer(tmp_path, port, "--port", str(port), *args) as server:
        token = login(server.url)
        with signed_in(server.url, token) as client:
            first = create_job(client, csrf(client), "Before SIGTERM")
        assert server.stop(signal.SIGTERM) in (0, -signal.SIGTERM)
        assert "Traceback" not in server.stderr, server.stderr

    port = free_port()
    with CliServer(tmp_path, port, "--port", str(port), *args) as server:
        with signed_in(server.url, token) as client:
            assert get_job(client, first["job_uuid"]).status_code == 200
            second = create_job(client, csrf(client), "Before SIGINT")
        # Was a bug: uvicorn re-raises Ctrl-C after shutting down, which ended in a KeyboardInterrupt traceback.
        assert server.stop(signal.SIGINT) in (0, 130, -signal.SIGINT)
        assert "Traceback" not in server.stderr and "KeyboardInterrupt" not in server.stderr, server.stderr

    port = free_port()
    with CliServer(tmp_path, port, "--port", str(port), *args) as server, signed_in(server.url, token) as client:
        for job in (first, second):
            got = get_job(client, job["job_uuid"])
            assert got.status_code == 200, got.text
            assert got.json()["data"]["ID"] == job["job_id"]
        server.stop()
    assert leftovers(data) == []


def test_concurrent_creates_never_lose_or_interleave_writes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    count = 30
    with LiveServer(settings(data)) as live:
        token = live.login()
        with signed_in(live.url, token) as client:
            csrf_token = csrf(client)

        # Meanwhile a reader keeps parsing the file: with atomic replaces it never sees half a write.
        stop, seen, broken = threading.Event(), [0], []

        def reader() -> None:
            while not stop.is_set():
                try:
                    json.loads((data / DATA_FILE).read_bytes())
                    seen[0] += 1
                except ValueError as exc:
                    broken.append(exc)
                time.sleep(0.002)

        async def hammer() -> list[httpx.Response]:
            headers = {"Authorization": f"Bearer {token}"}
            async with httpx.AsyncClient(base_url=live.url, headers=headers, timeout=60) as client:
                return await asyncio.gather(*(
                    client.post(JOBS, json={
                        "action": "create", "job_title": f"Concurrent job {i:02d}", "job_description": "hammer",
                        "priority_id": 2, "status_id": 1, "job_type_id": 3, "address_id": 5,
                        "csrf_token": csrf_token,
                    })
                    for i in range(count)
                ))

        watcher = threading.Thread(target=reader)
        watcher.start()
        try:
            responses = asyncio.run(hammer())
        finally:
            stop.set()
            watcher.join()
        assert [r.status_code for r in responses] == [201] * count, [r.text for r in responses if r.is_error]
        created = [r.json() for r in responses]
        db = on_disk(data)  # before shutdown: every acknowledged write is already in the file
        with signed_in(live.url, token) as client:
            listed = client.get(JOBS, params={**LIST_ALL, "search": "Concurrent job"}).json()

    assert seen[0] > 0 and broken == []
    assert leftovers(data) == []
    ids = [c["job_id"] for c in created]
    uuids = [c["job_uuid"] for c in created]
    refs = [c["job_ref"] for c in created]
    assert len(set(ids)) == len(set(uuids)) == len(set(refs)) == count
    for job in created:
        rows = rows_with_uuid(db, job["job_uuid"])
        assert len(rows) == 1, job
        assert rows[0]["ID"] == job["job_id"] and rows[0]["job_ref"] == job["job_ref"]
    all_refs = [row["job_ref"] for row in db["jobs"].values()]
    assert len(all_refs) == len(set(all_refs))
    titles = sorted(row["job_title"] for row in db["jobs"].values() if row["job_title"].startswith("Concurrent"))
    assert titles == [f"Concurrent job {i:02d}" for i in range(count)]
    assert db["_meta"]["1"]["next_ids"]["jobs"] == max(int(k) for k in db["jobs"]) + 1
    assert listed["total"] == count
    assert sorted(row["uuid"] for row in listed["data"]) == sorted(uuids)
    assert sorted(on_disk(data)["jobs"]) == sorted(db["jobs"])  # and shutdown changed nothing


# -- encryption at rest ------------------------------------------------------------------------------------


def test_personal_fields_are_encrypted_at_rest_with_the_data_dir_key(tmp_path: Path) -> None:
    data = tmp_path / "data"
    secret = {"private_contact_name": "Wilhelmina Quillfeather", "private_contact_email": "wq@hidden.example",
              "access_details": "Gate code 9876#, dog in garden."}
    with LiveServer(settings(data)) as live:
        login = httpx.post(live.url + "/api/auth/login", json={"email": ADMIN, "password": "sandbox"}).json()
        with signed_in(live.url, login["token"]) as client:
            seeded = get_job(client, JOB_1001).json()["data"]
            created = create_job(client, csrf(client), "Sealed job", **secret)
            mine = get_job(client, created["job_uuid"]).json()["data"]
    assert seeded["access_details"] == "Key safe code 1234."
    assert seeded["private_contact_email"] == "contact001@example.com"
    assert {k: mine[k] for k in secret} == secret

    raw = (data / DATA_FILE).read_bytes()
    db = json.loads(raw)
    for table, fields in SEALED.items():
        values = [row[f] for row in db[table].values() for f in fields if row.get(f) is not None]
        assert values, table
        bad = [v for v in values if not (isinstance(v, str) and v.startswith(PREFIX))]
        assert bad == [], (table, bad[:3])
    for plain in ("Key safe code 1234.", "contact001@example.com", "Contact_001", "admin@sandbox.propops.test",
                  "staff@sandbox.propops.test", "admin@other.propops.test", "Tenant_001", "tenant001@example.com",
                  *secret.values()):
        assert plain.encode() not in raw, plain

    open_ = opener((data / KEY_FILE).read_text())
    job = db["jobs"]["1001"]
    for field in SEALED["jobs"]:
        assert open_(job[field]) == seeded[field], field
    row = rows_with_uuid(db, created["job_uuid"])[0]
    assert {f: open_(row[f]) for f in SEALED["jobs"]} == secret
    admin = next(u for u in db["users"].values() if u["ID"] == 1)
    assert open_(admin["email"]) == ADMIN == login["user"]["email"]
    assert f"{open_(admin['first_name'])} {open_(admin['last_name'])}" == login["user"]["name"]
    tenant = db["tenants"]["100"]
    assert open_(tenant["tenant_name"]) == "Tenant_001"
    assert open_(tenant["tenant_email"]) == "tenant001@example.com"
    assert all(open_(tenant[f]) for f in ("tenant_number_primary", "tenant_number_work"))


def test_the_key_file_is_private_and_another_key_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with LiveServer(settings(data)) as live, signed_in(live.url) as client:
        create_job(client, csrf(client), "Needs the right key")
    key_file = data / KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_text()
    assert len(base64.b64decode(key.strip(), validate=True)) == 32
    snapshot = (data / DATA_FILE).read_bytes()

    wrong = new_key()
    with pytest.raises(StartupError, match="key"):
        create_app(settings(data, key=wrong))
    line = one_error_line(run_cli(tmp_path, "--port", str(free_port()), "--data-dir", str(data),
                                  env=cli_env(PROPOPS_SANDBOX_KEY=wrong)))
    assert "key" in line and str(data) in line, line
    # The refused starts changed nothing, and the right key (given as the variable) still opens the data.
    assert key_file.read_text() == key and (data / DATA_FILE).read_bytes() == snapshot
    with LiveServer(settings(data, key=key.strip())) as live, signed_in(live.url) as client:
        listed = client.get(JOBS, params={**LIST_ALL, "search": "Needs the right key"}).json()
        assert listed["total"] == 1


def test_a_key_from_the_environment_is_used_and_never_written(tmp_path: Path) -> None:
    data = tmp_path / "data"
    key = new_key()
    with LiveServer(settings(data, key=key)) as live, signed_in(live.url) as client:
        assert get_job(client, JOB_1001).json()["data"]["access_details"] == "Key safe code 1234."
    assert not (data / KEY_FILE).exists()
    assert key.encode() not in b"".join(p.read_bytes() for p in data.rglob("*") if p.is_file())
    open_ = opener(key)
    assert open_(on_disk(data)["jobs"]["1001"]["access_details"]) == "Key safe code 1234."

    # Without the key the data cannot be opened; the refusal names the key and writes no key file
    # (that used to leave a wrong sandbox.key behind, which broke every later start).
    with pytest.raises(StartupError, match="PROPOPS_SANDBOX_KEY"):
        create_app(settings(data))
    assert not (data / KEY_FILE).exists()
    line = one_error_line(run_cli(tmp_path, "--port", str(free_port()), "--data-dir", str(data), env=cli_env()))
    assert "key" in line.lower(), line
    assert not (data / KEY_FILE).exists()
    with LiveServer(settings(data, key=key)) as live, signed_in(live.url) as client:  # the right key still works
        assert get_job(client, JOB_1001).status_code == 200


def test_a_new_data_dir_is_created_with_its_parents(tmp_path: Path) -> None:
    # Was a bug: the key file was written before the dir was made, so a fresh --data-dir failed to start.
    data = tmp_path / "not" / "yet" / "there"
    with LiveServer(settings(data)) as live, signed_in(live.url) as client:
        created = create_job(client, csrf(client), "In a brand-new dir")
    assert len(rows_with_uuid(on_disk(data), created["job_uuid"])) == 1
    assert (data / KEY_FILE).is_file()


def test_in_memory_mode_writes_no_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with LiveServer(settings(None)) as live, signed_in(live.url) as client:
        created = create_job(client, csrf(client), "Only in memory")
        assert get_job(client, created["job_uuid"]).status_code == 200
    assert list(tmp_path.iterdir()) == []


def test_a_damaged_key_file_is_named_in_the_refusal(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with LiveServer(settings(data)):
        pass
    (data / KEY_FILE).write_text("not a key\n")
    with pytest.raises(StartupError, match=KEY_FILE):  # the file, not PROPOPS_SANDBOX_KEY, is at fault
        create_app(settings(data))
