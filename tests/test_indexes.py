"""Field indexes answer exactly what a scan of the table would, whatever writes came before.

Filtered lists, job references and deleting what hangs off a job read the store's field indexes; here
a seeded random mix of inserts, updates, deletes, bulk loads and restores is checked against a plain
scan after every step, and the filtered jobs list is checked over HTTP as jobs move between statuses.
"""

from __future__ import annotations

import random

from conftest import JOB_1001

from sandbox.crypto import Cipher
from sandbox.store import Store


def _scan(store: Store, table: str, field: str, value: object) -> list[int]:
    return [r["ID"] for r in store.select(table) if r.get(field) == value]


def test_indexes_match_a_scan_through_every_kind_of_write() -> None:
    store = Store(Cipher(b"k" * 32))
    rng = random.Random(7)
    store.insert_many("things", [{"ID": i, "uuid": f"u{i}", "colour": rng.choice("rgb"), "size": i % 4}
                                 for i in range(1, 41)])
    saved = store.snapshot()
    for step in range(400):
        store.index("things", "colour")  # built now, then kept current by the writes below
        store.index("things", "size")
        ids = [r["ID"] for r in store.select("things")]
        move = rng.random()
        if move < 0.35:
            store.insert("things", {"ID": None, "uuid": None, "colour": rng.choice("rgbx"), "size": rng.randint(0, 4)})
        elif move < 0.7 and ids:
            store.update("things", rng.choice(ids), {"colour": rng.choice("rgbx")} if rng.random() < 0.5
                         else {"size": rng.randint(0, 4), "colour": rng.choice("rg")})
        elif move < 0.85 and ids:
            store.delete("things", rng.sample(ids, min(len(ids), rng.randint(1, 3))))
        elif move < 0.95:
            store.delete_where("things", "colour", [rng.choice("rgbx")])
        else:
            store.restore(saved)
        for colour in "rgbx":
            assert [r["ID"] for r in store.select("things", where=[("colour", colour)])] == \
                _scan(store, "things", "colour", colour), step
            assert (colour in store.index("things", "colour")) == bool(_scan(store, "things", "colour", colour))
        for size in range(5):
            both = store.select("things", lambda r, s=size: r["size"] == s, where=[("colour", "r"), ("size", size)])
            assert [r["ID"] for r in both] == [i for i in _scan(store, "things", "size", size)
                                               if store.raw("things", i)["colour"] == "r"], step


def test_the_filtered_jobs_list_follows_status_changes_creates_and_deletes(admin) -> None:
    def listed(status: int) -> tuple[int, set[str]]:
        page = admin.get("/api/jobs/manage", params={"action": "list", "status_id": status, "limit": 200}).json()
        return page["total"], {j["uuid"] for j in page["data"]}

    current = admin.get("/api/jobs/manage", params={"action": "get", "uuid": JOB_1001}).json()["data"]["status_id"]
    target = 3 if current != 3 else 2
    (before_old, old), (before_new, new) = listed(current), listed(target)
    assert JOB_1001 in old and JOB_1001 not in new
    assert admin.post("/api/jobs/manage", json={"action": "update", "uuid": JOB_1001,
                                                "status_id": target}).status_code == 200
    (after_old, old), (after_new, new) = listed(current), listed(target)
    assert (after_old, after_new) == (before_old - 1, before_new + 1)
    assert JOB_1001 in new and JOB_1001 not in old
    made = admin.post("/api/jobs/manage", json={"action": "create", "job_title": "Indexed", "job_description": "x",
                                                "priority_id": 1, "status_id": target, "job_type_id": 1,
                                                "address_id": 5}).json()
    assert made["job_uuid"] in listed(target)[1]
    assert admin.post("/api/jobs/manage", json={"action": "delete", "uuid": made["job_uuid"]}).status_code == 200
    assert listed(target) == (after_new, new)
