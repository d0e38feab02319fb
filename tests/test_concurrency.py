"""Many requests at once, over real sockets: 200 concurrent job creates (asyncio + httpx against uvicorn),
then concurrent writes that all touch one job. Nothing may be lost, duplicated or miscounted, and with a
data dir the file on disk holds every acknowledged write once the server has stopped.
"""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import httpx
from conftest import ADMIN, CLOCK_START, JOB_1001
from PIL import Image

from sandbox import Settings
from sandbox.testing import LiveServer

JOBS = "/api/jobs/manage"
COUNT = 200
LIMITS = httpx.Limits(max_connections=COUNT, max_keepalive_connections=COUNT)


def settings(data: Path | None) -> Settings:
    return Settings(seed=42, clock_start=CLOCK_START, data_dir=data)


def headers(live: LiveServer, email: str = ADMIN) -> dict[str, str]:
    with live.client(email) as client:
        return dict(client.headers)


def job_body(i: int) -> dict:
    return {"action": "create", "job_title": f"Swarm job {i:03d}", "job_description": f"concurrent create {i}",
            "priority_id": 2, "status_id": 1, "job_type_id": 3, "address_id": 5, "works_order_ref": f"SW-{i:03d}"}


def list_total(client: httpx.Client, **filters: object) -> int:
    r = client.get(JOBS, params={"action": "list", "limit": 1, **filters})
    assert r.status_code == 200, r.text
    return r.json()["total"]


async def gather(url: str, head: dict[str, str], requests: list[tuple[str, str, dict]]) -> list[httpx.Response]:
    """Send every request at once, each on its own connection (the pool holds them all)."""
    async with httpx.AsyncClient(base_url=url, headers=head, timeout=60, limits=LIMITS) as client:
        return await asyncio.gather(*(client.request(method, path, **kw) for method, path, kw in requests))


def test_200_concurrent_creates_are_all_stored_once_with_unique_ids_uuids_and_refs(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with LiveServer(settings(data)) as live:
        head = headers(live)
        with httpx.Client(base_url=live.url, headers=head, timeout=30) as client:
            before = list_total(client)
            next_id = live.sandbox.store.next_id("jobs")
        creates = [("POST", JOBS, {"json": job_body(i)}) for i in range(COUNT)]
        responses = asyncio.run(gather(live.url, head, creates))
        assert [r.status_code for r in responses] == [201] * COUNT, [r.text for r in responses if r.is_error][:3]
        made = [r.json() for r in responses]
        for body in made:
            assert body["success"] is True and body["message"] == "Job created successfully"
        ids, uuids, refs = ([m[k] for m in made] for k in ("job_id", "job_uuid", "job_ref"))
        assert len(set(ids)) == len(set(uuids)) == len(set(refs)) == COUNT
        assert sorted(ids) == list(range(next_id, next_id + COUNT))  # no gaps, no reuse
        seeded_refs = {r["job_ref"] for r in live.sandbox.store.select("jobs", lambda r: r["ID"] < next_id)}
        assert not seeded_refs & set(refs)

        with httpx.Client(base_url=live.url, headers=head, timeout=30) as client:
            assert list_total(client) == before + COUNT
            assert list_total(client, search="Swarm job") == COUNT
        # Every created job reads back (concurrently too), with what its own request sent.
        reads = [("GET", JOBS, {"params": {"action": "get", "uuid": u}}) for u in uuids]
        got = asyncio.run(gather(live.url, head, reads))
        for i, (answer, mine) in enumerate(zip(got, made, strict=True)):
            assert answer.status_code == 200, answer.text
            row = answer.json()["data"]
            assert (row["ID"], row["uuid"], row["job_ref"]) == (mine["job_id"], mine["job_uuid"], mine["job_ref"])
            assert row["job_title"] == f"Swarm job {i:03d}" and row["works_order_ref"] == f"SW-{i:03d}"

    # The server has stopped: the file on disk holds all 200, each once, with its own fields.
    db = json.loads((data / "propops.json").read_bytes())
    stored = {row["uuid"]: row for row in db["jobs"].values() if row["job_title"].startswith("Swarm job")}
    assert len(stored) == COUNT
    for i, mine in enumerate(made):
        row = stored[mine["job_uuid"]]
        assert (row["ID"], row["job_ref"], row["job_title"]) == (mine["job_id"], mine["job_ref"], f"Swarm job {i:03d}")
        assert db["jobs"][str(mine["job_id"])] is not None
    assert len(db["jobs"]) == before + COUNT + len([r for r in db["jobs"].values() if r["org_id"] != 1])
    assert db["_meta"]["1"]["next_ids"]["jobs"] == next_id + COUNT
    assert [p for p in data.rglob("*.tmp")] == []


def tiny_png(shade: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (shade, 255 - shade, 90)).save(out, "PNG")
    return out.getvalue()


def test_concurrent_uploads_notes_and_updates_on_one_job_keep_every_count_right() -> None:
    """Writes that all read-modify-write the same job (photos_count, the timeline, commits): none is lost."""
    photos, notes, updates = 40, 60, 30
    with LiveServer(settings(None)) as live:
        store = live.sandbox.store
        job = store.find("jobs", JOB_1001)
        head = headers(live)
        with httpx.Client(base_url=live.url, headers=head, timeout=30) as client:
            photos_before = client.get("/api/jobs/photos", params={"job_uuid": JOB_1001}).json()["count"]
            notes_before = client.get("/api/jobs/case-notes", params={"action": "list", "job_uuid": JOB_1001}).json()
        commits_before = len(store.select("job_commits", lambda r: r["job_id"] == job["ID"]))
        batch: list[tuple[str, str, dict]] = []
        for i in range(photos):
            batch.append(("POST", "/api/jobs/photos", {
                "data": {"action": "upload", "job_uuid": JOB_1001, "photo_type": "during"},
                "files": {"file": (f"p{i}.png", tiny_png(i), "image/png")}}))
        for i in range(notes):
            batch.append(("POST", "/api/jobs/case-notes", {"json": {"job_uuid": JOB_1001, "message": f"Note {i:02d}"}}))
        for i in range(updates):  # each changes a different value: every one must become its own commit
            batch.append(("POST", JOBS, {"json": {"action": "update", "uuid": JOB_1001, "quote_no": f"Q-{i:02d}"}}))
        responses = asyncio.run(gather(live.url, head, batch))
        assert [r.status_code for r in responses] == [200] * len(batch), [r.text for r in responses if r.is_error][:3]
        assert all(r.json()["success"] for r in responses)
        photo_uuids = {r.json()["data"]["uuid"] for r in responses[:photos]}
        note_uuids = {r.json()["note_uuid"] for r in responses[photos:photos + notes]}
        assert len(photo_uuids) == photos and len(note_uuids) == notes

        with httpx.Client(base_url=live.url, headers=head, timeout=30) as client:
            listed = client.get("/api/jobs/photos", params={"job_uuid": JOB_1001}).json()
            after = client.get(JOBS, params={"action": "get", "uuid": JOB_1001}).json()["data"]
            timeline = client.get("/api/jobs/case-notes", params={"action": "list", "job_uuid": JOB_1001}).json()
        assert listed["count"] == photos_before + photos == after["photos_count"]
        assert photo_uuids <= {p["uuid"] for p in listed["data"]["during"]}
        assert timeline["total"] == notes_before["total"] + notes
        assert note_uuids <= {n["uuid"] for n in timeline["data"]}
        assert sorted(n["message"] for n in timeline["data"] if n["uuid"] in note_uuids) == [
            f"Note {i:02d}" for i in range(notes)]
        assert after["quote_no"] in {f"Q-{i:02d}" for i in range(updates)}
        commits = [store.reveal("job_commits", r)
                   for r in store.select("job_commits", lambda r: r["job_id"] == job["ID"])]
        quoted = [json.loads(c["changes"])["quote_no"][1] for c in commits if "quote_no" in json.loads(c["changes"])]
        assert len(commits) >= commits_before + updates and sorted(quoted) == [f"Q-{i:02d}" for i in range(updates)]
        # The last commit's new value is the job's value: the history and the row agree.
        assert quoted[-1] == after["quote_no"]
