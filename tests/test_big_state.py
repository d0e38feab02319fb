"""How big datasets are kept for reset and snapshots: rebuilt from the seed, or JSON in a temporary file.

The thresholds are lowered here so the default dataset takes the big-dataset paths; each test checks the
state that comes back is exactly the state that was kept, over real HTTP.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import httpx
import pytest

from sandbox import Settings, runtime, store
from sandbox.testing import LiveServer

CLOCK_START = dt.datetime(2026, 11, 1, 9, 0, tzinfo=dt.UTC)
JOB_1001 = "550e8400-e29b-41d4-a716-446655440001"
LIST = {"action": "list", "limit": 100, "offset": 0}


def everything(client: httpx.Client) -> list[dict]:
    rows, offset = [], 0
    while True:
        page = client.get("/api/jobs/manage", params={**LIST, "offset": offset}).json()
        rows += page["data"]
        offset += 100
        if offset >= page["total"]:
            return rows


def create(client: httpx.Client) -> dict:
    r = client.post("/api/jobs/manage", json={"action": "create", "job_title": "Kept?", "job_description": "x",
                                              "priority_id": 1, "status_id": 1, "job_type_id": 1, "address_id": 5})
    assert r.status_code == 201, r.text
    return r.json()


@pytest.fixture
def rebuilt(monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveServer]:
    monkeypatch.setattr(runtime, "REBUILD_JOBS", 0)
    with LiveServer(Settings(seed=42, clock_start=CLOCK_START)) as live:
        yield live


@pytest.fixture
def spilled(monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveServer]:
    monkeypatch.setattr(store, "PICKLE_ROWS", 0)  # JSON snapshots...
    monkeypatch.setattr(runtime, "IN_MEMORY", 0)  # ...kept in a temporary file
    with LiveServer(Settings(seed=42, clock_start=CLOCK_START)) as live:
        yield live


def test_a_rebuilt_baseline_is_the_seeded_state_again(rebuilt: LiveServer) -> None:
    assert rebuilt.sandbox._baseline[0] is None  # nothing kept: reset builds the dataset again
    with rebuilt.client() as admin:
        fresh = everything(admin)
        made = create(admin)
        assert admin.post("/api/jobs/manage", json={"action": "delete", "uuid": JOB_1001}).status_code == 200
        assert len(everything(admin)) == len(fresh)  # one more, one less
    assert httpx.post(rebuilt.url + "/_sandbox/reset").status_code == 200
    with rebuilt.client() as admin:  # the reset dropped the old token
        assert everything(admin) == fresh
        r = admin.get("/api/jobs/manage", params={"action": "get", "uuid": made["job_uuid"]})
        assert r.status_code == 404
        again = create(admin)
    assert again["job_ref"] == made["job_ref"] and again["job_id"] == made["job_id"]  # ids start over too


def test_a_spilled_snapshot_and_baseline_come_back_exactly(spilled: LiveServer) -> None:
    assert isinstance(spilled.sandbox._baseline[0], runtime._Spilled)
    with spilled.client() as admin:
        fresh = everything(admin)
        made = create(admin)
        saved = everything(admin)
        assert httpx.post(spilled.url + "/_sandbox/snapshots", json={"name": "one"}).status_code == 200
        assert admin.post("/api/jobs/manage", json={"action": "delete", "uuid": made["job_uuid"]}).status_code == 200
        assert admin.post("/api/jobs/manage", json={"action": "update", "uuid": JOB_1001,
                                                    "job_title": "Changed"}).status_code == 200
    assert httpx.post(spilled.url + "/_sandbox/snapshots/one/restore").status_code == 200
    with spilled.client() as admin:
        assert everything(admin) == saved
        next_one = create(admin)  # the id counter came back with the rows: the deleted id is not reused
        assert next_one["job_id"] == made["job_id"] + 1
    assert httpx.post(spilled.url + "/_sandbox/reset").status_code == 200
    with spilled.client() as admin:
        assert everything(admin) == fresh
        assert admin.get("/api/jobs/manage", params={"action": "get", "uuid": JOB_1001}).json()["data"][
            "job_title"] != "Changed"
