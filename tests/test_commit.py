"""The acknowledgement rule, driven directly: a caller's `commit()` returns only once a snapshot holding
its writes is on disk — also when another caller's snapshot took them and is still being written — and
a removed file goes only after the removal of its row is on disk.

These drive `Store` and `Blobs` without HTTP because the orderings they pin down (a commit arriving
while another is in the middle of its fsync) cannot be timed from outside; the HTTP-level guarantees
are in test_crash.py and test_concurrency.py.
"""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import pytest

from sandbox.blobs import Blobs
from sandbox.crypto import Cipher
from sandbox.store import Store


def _store(tmp_path: Path) -> Store:
    return Store(Cipher(b"k" * 32), tmp_path, seed=1)


def _row(n: int) -> dict:
    return {"ID": n, "uuid": None, "name": f"row {n}"}


def test_a_commit_waits_for_the_snapshot_that_already_holds_its_writes(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    store = _store(tmp_path)
    storage = store.db.storage
    real = storage.persist
    entered, release = threading.Event(), threading.Event()

    def slow_persist(blob: bytes) -> None:
        entered.set()
        release.wait(10)  # the first snapshot's fsync takes a while
        real(blob)

    monkeypatch.setattr(storage, "persist", slow_persist)

    async def scenario() -> list[str]:
        order: list[str] = []
        store.insert("things", _row(1))  # request A writes...
        first = asyncio.create_task(store.commit())  # ...and A's commit snapshots it, then waits on disk
        while not entered.is_set():
            await asyncio.sleep(0.001)
        # Request B wrote before A's snapshot was taken (its write is *in* that snapshot), and only now
        # asks to commit: it must not be told "saved" while that snapshot is still being written.
        second = asyncio.create_task(store.commit())
        second.add_done_callback(lambda _: order.append("B acknowledged"))
        await asyncio.sleep(0.05)
        order.append("disk done")
        release.set()
        await asyncio.gather(first, second)
        return order

    assert asyncio.run(scenario()) == ["disk done", "B acknowledged"]
    assert json.loads((tmp_path / "propops.json").read_bytes())["things"]["1"]["name"] == "row 1"


def test_a_write_after_a_snapshot_gets_its_own(tmp_path: Path) -> None:
    store = _store(tmp_path)

    async def scenario() -> None:
        store.insert("things", _row(1))
        await store.commit()
        store.insert("things", _row(2))
        await store.commit()

    asyncio.run(scenario())
    assert sorted(json.loads((tmp_path / "propops.json").read_bytes())["things"]) == ["1", "2"]
    assert not store.db.storage.dirty


def test_nothing_to_save_returns_at_once_and_writes_no_file(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.flush()
    before = (tmp_path / "propops.json").stat().st_mtime_ns if (tmp_path / "propops.json").exists() else None
    asyncio.run(store.commit())
    after = (tmp_path / "propops.json").stat().st_mtime_ns if (tmp_path / "propops.json").exists() else None
    assert before == after


def test_a_removed_file_stays_until_reaped_and_an_upload_of_the_same_bytes_keeps_it(tmp_path: Path) -> None:
    blobs = Blobs(tmp_path)
    key = blobs.put(b"a photo")
    other = blobs.put(b"another photo")
    blobs.delete(key)
    blobs.delete(other)
    assert (tmp_path / "blobs" / key).exists()  # the row's removal is not on disk yet
    taken = blobs.doomed()
    assert set(taken) == {key, other}
    assert blobs.put(b"another photo") == other  # a new row points at the same bytes before the reap
    blobs.reap(taken)
    assert not (tmp_path / "blobs" / key).exists()
    assert blobs.get(other) == b"another photo"
    assert blobs.doomed() == ()


def test_in_memory_blobs_go_at_once(tmp_path: Path) -> None:
    blobs = Blobs(None)
    key = blobs.put(b"bytes")
    blobs.delete(key)
    assert blobs.get(key) is None and blobs.doomed() == ()
