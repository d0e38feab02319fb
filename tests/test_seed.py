"""Tests for sandbox.seed: determinism, the documented records, referential integrity, recipe shares."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from sandbox import seed

ROOT = Path(__file__).resolve().parents[1]
CLOCK = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
DAY = re.compile(r"^\d{4}-\d\d-\d\d$")
TABLES = ["statuses", "priorities", "job_types", "trades", "payment_statuses", "time_ranges", "file_types",
          "account_types", "organisations", "branches", "agents", "contractors", "addresses", "tenants",
          "users", "jobs", "pins", "photos", "documents", "case_notes", "case_note_attachments",
          "certifications", "remedials"]
FINISHED = {"complete", "recalled", "closed", "archived", "invoiced"}


@functools.cache
def dataset(jobs: int | None = None, seed_: int = 42) -> dict[str, list[dict]]:
    # Cached: tests only read it, and building once keeps the module fast.
    return seed.build(seed_, CLOCK, jobs)


def digest(data: dict) -> str:
    return hashlib.sha256(json.dumps(data).encode()).hexdigest()


def by_id(data: dict, table: str) -> dict[int, dict]:
    return {row["ID"]: row for row in data[table]}


def main_jobs(data: dict) -> list[dict]:
    return [j for j in data["jobs"] if j["org_id"] == 1]


def run_python(code: str, **env: str) -> str:
    # A fresh interpreter with a different hash seed: set/dict-order or hash() leaks would show up here.
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(ROOT), **env}, check=True)
    return out.stdout.strip()


# --- determinism -----------------------------------------------------------------------------------

def test_same_inputs_give_identical_bytes():
    assert json.dumps(seed.build(42, CLOCK)) == json.dumps(seed.build(42, CLOCK))
    assert json.dumps(seed.build(7, CLOCK, jobs=300)) == json.dumps(seed.build(7, CLOCK, jobs=300))


def test_different_seed_or_clock_differs():
    assert digest(seed.build(43, CLOCK)) != digest(dataset())
    assert digest(seed.build(42, CLOCK + timedelta(days=1))) != digest(dataset())


def test_fresh_process_gives_identical_bytes():
    code = ("import hashlib, json; from datetime import datetime, UTC; from sandbox import seed; "
            "print(hashlib.sha256(json.dumps(seed.build(42, datetime(2025, 3, 1, 12, 0, tzinfo=UTC)))"
            ".encode()).hexdigest())")
    assert run_python(code, PYTHONHASHSEED="12345") == digest(dataset())


def test_clock_in_another_timezone_is_the_same_instant():
    other = CLOCK.astimezone(timezone(timedelta(hours=2)))
    assert digest(seed.build(42, other)) == digest(dataset())


def test_job_count_leaves_people_unchanged():
    # Per-table streams: changing jobs= reshapes only job-dependent tables.
    small, big = dataset(10), dataset(5000)
    for table in ("organisations", "branches", "agents", "contractors", "users"):
        assert small[table] == big[table] == dataset()[table]


# --- shape -----------------------------------------------------------------------------------------

def test_tables_in_order_with_plain_values():
    data = dataset()
    assert list(data) == TABLES

    def plain(value):
        if isinstance(value, list):
            return all(plain(v) for v in value)
        return value is None or type(value) in (str, int, float, bool)

    for rows in data.values():
        assert all(isinstance(row, dict) and all(plain(v) for v in row.values()) for row in rows)


def test_reference_tables_are_copies_of_reference_toml():
    ref = seed.load_reference()
    assert seed.load_reference() is ref
    data = seed.build(42, CLOCK)
    for table in TABLES[:8]:
        assert data[table] == ref[table]
    data["statuses"][0]["name"] = "mutated"
    assert seed.load_reference()["statuses"][0]["name"] == "Open"


def test_default_sizes():
    data = dataset()
    count = {t: {o: sum(r["org_id"] == o for r in data[t]) for o in (1, 2)}
             for t in ("branches", "agents", "contractors", "tenants", "jobs")}
    assert count == {"branches": {1: 5, 2: 2}, "agents": {1: 15, 2: 3}, "contractors": {1: 30, 2: 5},
                     "tenants": {1: 80, 2: 10}, "jobs": {1: 200, 2: 20}}
    assert [b["is_active"] for b in data["branches"] if b["org_id"] == 1].count(False) == 1
    assert [u["ID"] for u in data["users"]] == list(range(1, 13))
    assert [o["name"] for o in data["organisations"]] == ["Sandbox Lettings Ltd", "Other Property Co"]
    assert [a["ID"] for a in data["agents"]][:15] == list(range(10, 25))
    assert [c["ID"] for c in data["contractors"]][:30] == list(range(20, 50))
    assert [t["ID"] for t in data["tenants"]][:80] == list(range(100, 180))
    assert [j["ID"] for j in main_jobs(data)] == list(range(1001, 1201))
    assert [j["ID"] for j in data["jobs"] if j["org_id"] == 2] == list(range(1201, 1221))
    assert 1 <= len(data["pins"]) <= 5


# --- documented records ----------------------------------------------------------------------------

DOC_JOB_1001 = {
    "ID": 1001, "uuid": "550e8400-e29b-41d4-a716-446655440001", "org_id": 1, "branch_id": 1,
    "job_ref": "JOB-001", "job_title": "Boiler Service - Unit 001",
    "job_description": "Annual boiler service required for property unit 001.", "status_id": 1,
    "priority_id": 2, "job_type_id": 3, "address_id": 5, "agent_id": 10, "contractor_id": 20,
    "tenants_ids": [100, 101], "job_total_budget": 250.0, "contractor_budget": 180.0, "vat_percentage": 20.0,
    "total_amount": 216.0, "date_works_start_date": "2024-06-01", "date_works_end_date": "2024-06-02",
    "time_range_id": 2, "access_details": "Key safe code 1234.", "works_order_ref": "WO-001",
    "invoice_no": "INV-001", "quote_no": "QT-001", "private_contact_name": "Contact_001",
    "private_contact_email": "contact001@example.com", "payment_status_id": 1, "is_recall": 0,
    "recall_reason": None, "photos_count": 3, "documents_count": 1, "created_by": 7,
    "created_at": "2024-01-15T09:30:00Z", "updated_at": "2024-06-01T14:00:00Z", "completed_at": None,
}
DOCUMENTED = {
    "branches": {1: {"org_id": 1, "branch_name": "Branch_001", "address_line_1": "10 Office Road",
                     "city": "Sample City", "postcode": "SC1 1AA", "contact_number": "01200000001",
                     "shared_email": "branch001@example.com", "is_active": True}},
    "agents": {10: {"org_id": 1, "uuid": "880e8400-e29b-41d4-a716-446655440001", "first_name": "Agent_001",
                    "last_name": "Surname_001", "email": "agent001@example.com", "branch_id": 1,
                    "branch_ids": [1], "is_active": True}},
    "contractors": {20: {"org_id": 1, "uuid": "770e8400-e29b-41d4-a716-446655440001",
                         "first_name": "Contractor_001", "last_name": "Surname_001",
                         "email": "contractor001@example.com", "phone": "07700000002", "trade_ids": [1, 2],
                         "is_active": True}},
    "addresses": {5: {"org_id": 1, "branch_id": 1, "address_line_1": "1 Example Street", "address_line_2": "",
                      "city": "Sample Town", "postcode": "EX1 1AA",
                      "full_address": "1 Example Street, Sample Town, EX1 1AA"}},
    "tenants": {
        100: {"org_id": 1, "uuid": "990e8400-e29b-41d4-a716-446655440001", "tenant_name": "Tenant_001",
              "tenant_email": "tenant001@example.com", "tenant_number_primary": "07700000003",
              "tenant_number_work": "01200000002", "address_id": 5, "created_at": "2024-01-10T08:00:00Z"},
        101: {"org_id": 1, "uuid": "990e8400-e29b-41d4-a716-446655440002", "tenant_name": "Tenant_002",
              "tenant_email": "tenant002@example.com", "tenant_number_primary": "07700000004",
              "tenant_number_work": "01200000003", "address_id": 5}},
    "users": {
        1: {"org_id": 1, "account_type_id": 1, "role": "SysOps", "email": "admin@sandbox.propops.test",
            "first_name": "Sandbox", "last_name": "Admin", "password": "sandbox"},
        2: {"org_id": 1, "account_type_id": 1, "role": "Staff", "email": "staff@sandbox.propops.test"},
        3: {"org_id": 1, "account_type_id": 2, "role": "Agent", "email": "agent@sandbox.propops.test",
            "agent_id": 10, "contractor_id": None},
        4: {"org_id": 1, "account_type_id": 5, "role": "Contractor", "contractor_id": 20, "agent_id": None,
            "email": "contractor@sandbox.propops.test"},
        5: {"org_id": 1, "account_type_id": 1, "role": "API", "email": "api@sandbox.propops.test"},
        6: {"org_id": 2, "account_type_id": 1, "role": "SysOps", "email": "admin@other.propops.test"},
        7: {"org_id": 1, "account_type_id": 1, "role": "Staff", "first_name": "Staff_001",
            "last_name": "Surname_001", "email": "staff001@example.com", "password": "sandbox"}},
    "jobs": {
        1001: DOC_JOB_1001,
        1055: {"uuid": "550e8400-e29b-41d4-a716-446655441055", "job_ref": "JOB-1055",
               "job_title": "Boiler follow-up — parts replacement", "status_id": 1, "org_id": 1,
               "branch_id": 1, "address_id": 5, "created_at": "2024-06-15T09:00:00Z"}},
}


@pytest.mark.parametrize("jobs", [None, 1, 54, 5000])
def test_documented_records_exact(jobs):
    data = dataset(jobs)
    for table, rows in DOCUMENTED.items():
        have = by_id(data, table)
        for row_id, fields in rows.items():
            assert {k: have[row_id][k] for k in fields} == fields, (table, row_id)
    assert by_id(data, "jobs")[1001] == DOC_JOB_1001  # every field, none extra
    assert all(u["password"] == "sandbox" for u in data["users"])
    assert not any(p["job_id"] == 1001 for p in data["pins"])
    assert all(p["user_id"] == 1 for p in data["pins"])


# --- referential integrity -------------------------------------------------------------------------

@pytest.mark.parametrize("jobs", [None, 1, 5000])
def test_every_foreign_key_resolves_within_its_org(jobs):
    data = dataset(jobs)
    org = {t: {r["ID"]: r["org_id"] for r in data[t]}
           for t in ("branches", "agents", "contractors", "addresses", "tenants", "users", "jobs")}
    orgs = {o["ID"] for o in data["organisations"]}
    ref_ids = {t: {r["ID"] for r in data[t]} for t in ("statuses", "priorities", "job_types", "time_ranges",
                                                      "payment_statuses", "account_types")}
    trades = {t["trade_id"] for t in data["trades"]}
    for table, ids in org.items():
        assert len(ids) == len(data[table]), f"duplicate IDs in {table}"
        assert set(ids.values()) <= orgs
    uuids = [r["uuid"] for t in org for r in data[t]] + [o["uuid"] for o in data["organisations"]]
    assert len(set(uuids)) == len(uuids)

    for a in data["agents"]:
        assert a["branch_ids"][0] == a["branch_id"] and len(set(a["branch_ids"])) == len(a["branch_ids"])
        assert all(org["branches"][b] == a["org_id"] for b in a["branch_ids"])
    for c in data["contractors"]:
        assert c["trade_ids"] and set(c["trade_ids"]) <= trades
    for a in data["addresses"]:
        assert org["branches"][a["branch_id"]] == a["org_id"]
        parts = [a["address_line_1"], a["address_line_2"], a["city"], a["postcode"]]
        assert a["full_address"] == ", ".join(p for p in parts if p)
    for t in data["tenants"]:
        assert t["address_id"] is None or org["addresses"][t["address_id"]] == t["org_id"]
    for u in data["users"]:
        assert u["account_type_id"] in ref_ids["account_types"]
        for key, table in (("agent_id", "agents"), ("contractor_id", "contractors")):
            assert u[key] is None or org[table][u[key]] == u["org_id"]
    assert len({u["email"] for u in data["users"]}) == len(data["users"])

    addresses, agents, users = by_id(data, "addresses"), by_id(data, "agents"), by_id(data, "users")
    contractors = by_id(data, "contractors")
    trade_of = {t["ID"]: t["trade_id"] for t in data["job_types"]}
    tenants_at: dict[int, list[int]] = {}
    for t in data["tenants"]:
        tenants_at.setdefault(t["address_id"], []).append(t["ID"])
    for j in data["jobs"]:
        o = j["org_id"]
        assert org["addresses"][j["address_id"]] == o
        assert j["branch_id"] == addresses[j["address_id"]]["branch_id"]
        assert j["agent_id"] is None or (org["agents"][j["agent_id"]] == o
                                         and j["branch_id"] in agents[j["agent_id"]]["branch_ids"])
        if j["contractor_id"] is not None:
            assert org["contractors"][j["contractor_id"]] == o
            assert trade_of[j["job_type_id"]] in contractors[j["contractor_id"]]["trade_ids"]
        assert j["tenants_ids"] == tenants_at.get(j["address_id"], [])
        assert users[j["created_by"]]["org_id"] == o and users[j["created_by"]]["account_type_id"] == 1
        assert j["status_id"] in ref_ids["statuses"] and j["priority_id"] in ref_ids["priorities"]
        assert j["job_type_id"] in ref_ids["job_types"]
        assert j["payment_status_id"] in ref_ids["payment_statuses"]
        assert j["time_range_id"] is None or j["time_range_id"] in ref_ids["time_ranges"]
    assert len({j["job_ref"] for j in data["jobs"]}) == len(data["jobs"])
    for p in data["pins"]:
        assert org["users"][p["user_id"]] == org["jobs"][p["job_id"]]
    assert len({p["job_id"] for p in data["pins"]}) == len(data["pins"])


# --- shares, money and time ------------------------------------------------------------------------

def test_status_and_other_shares_follow_the_recipe():
    recipe = seed.load_recipe("default")["jobs"]
    jobs = main_jobs(dataset(5000))
    n = len(jobs)
    stage_of = {s["ID"]: s["stage"] for s in seed.load_reference()["statuses"]}
    weights = recipe["status_weights"]
    for stage, weight in weights.items():
        share = sum(stage_of[j["status_id"]] == stage for j in jobs) / n
        assert abs(share - weight / sum(weights.values())) < 0.025, stage
    for rate, weight in zip(recipe["vat_rates"], recipe["vat_weights"], strict=True):
        share = sum(j["vat_percentage"] == rate for j in jobs) / n
        assert abs(share - weight / sum(recipe["vat_weights"])) < 0.025, rate
    assert abs(sum(j["photos_count"] > 0 for j in jobs) / n - recipe["photos"]) < 0.03
    assert abs(sum(j["documents_count"] > 0 for j in jobs) / n - recipe["documents"]) < 0.03
    assert 0.10 <= sum(j["contractor_id"] == 20 for j in jobs) / n <= 0.15
    assert sum(j["branch_id"] == 1 for j in jobs) / n > 0.3
    assert 0.10 <= sum(j["contractor_id"] == 20 for j in main_jobs(dataset())) / 200 <= 0.17


@pytest.mark.parametrize("jobs", [None, 5000])
def test_job_states_money_and_dates_are_consistent(jobs):
    data = dataset(jobs)
    stage_of = {s["ID"]: s["stage"] for s in data["statuses"]}
    clock = CLOCK.strftime("%Y-%m-%dT%H:%M:%SZ")
    oldest = (CLOCK - timedelta(days=400)).strftime("%Y-%m-%dT%H:%M:%SZ")
    budget = {t["ID"]: seed.load_recipe("default")["jobs"]["contractor_budget"][t["name"]]
              for t in data["job_types"]}
    generated = [j for j in data["jobs"] if j["ID"] not in DOCUMENTED["jobs"]]
    for j in generated:
        stage = stage_of[j["status_id"]]
        assert (j["completed_at"] is not None) == (stage in FINISHED)
        recalled = stage == "recalled"
        assert (j["is_recall"], j["recall_reason"] is not None) == (int(recalled), recalled)
        assert stage == "new" or j["contractor_id"] is not None
        assert all(TS.match(j[k]) for k in ("created_at", "updated_at"))
        assert oldest <= j["created_at"] <= j["updated_at"] <= clock
        if j["completed_at"]:
            assert j["created_at"] <= j["completed_at"] <= j["updated_at"]
        for k in ("date_works_start_date", "date_works_end_date"):
            assert j[k] is None or DAY.match(j[k])
        lo, hi = budget[j["job_type_id"]]
        assert lo <= j["contractor_budget"] <= hi and isinstance(j["vat_percentage"], float)
        assert j["total_amount"] == round(j["contractor_budget"] * (1 + j["vat_percentage"] / 100), 2)
        assert 1.1 - 1e-3 <= j["job_total_budget"] / j["total_amount"] <= 1.4 + 1e-3
    # Active jobs: some created in the last few days (within SLA), many older (overdue).
    active = [j for j in generated if stage_of[j["status_id"]] in ("new", "assigned", "in_progress")]
    recent = (CLOCK - timedelta(days=4)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert 0.15 < sum(j["created_at"] >= recent for j in active) / len(active) < 0.7


# --- scaling and bad input -------------------------------------------------------------------------

def test_jobs_override_scales_the_main_org_only():
    small = dataset(1)
    assert [j["ID"] for j in main_jobs(small)] == [1001, 1055]  # documented 1055 always exists
    assert [j["ID"] for j in small["jobs"] if j["org_id"] == 2] == list(range(1056, 1076))
    big = dataset(5000)
    assert [j["ID"] for j in main_jobs(big)] == list(range(1001, 6001))
    refs = by_id(big, "jobs")
    assert (refs[1002]["job_ref"], refs[1055]["job_ref"], refs[2055]["job_ref"], refs[2056]["job_ref"]) == \
        ("JOB-002", "JOB-1055", "JOB-2055", "JOB-1056")
    assert sum(a["org_id"] == 1 for a in big["addresses"]) == 2000  # one address per 2.5 jobs
    assert sum(j["org_id"] == 2 for j in big["jobs"]) == 20


def test_hundred_thousand_jobs_build_with_unique_refs():
    # How fast is the benchmark's business (propops-sandbox bench: seeding 100,000 jobs <= 10 s).
    code = ("from datetime import datetime, UTC; from sandbox import seed; "
            "d = seed.build(42, datetime(2025, 3, 1, tzinfo=UTC), jobs=100_000); "
            "print(sum(j['org_id'] == 1 for j in d['jobs']), len({j['job_ref'] for j in d['jobs']}), len(d['jobs']))")
    main, refs, total = run_python(code).split()
    assert int(main) == 100_000 and int(refs) == int(total) == 100_020


@pytest.mark.parametrize("kwargs", [
    {"jobs": 0}, {"jobs": -5}, {"jobs": 100_001}, {"jobs": 2.5}, {"jobs": True}, {"jobs": "10"},
    {"clock_start": None}, {"clock_start": datetime(2025, 3, 1)}, {"clock_start": "2025-03-01T00:00:00Z"},
    {"seed": "42"}, {"recipe": "no-such-recipe"}, {"recipe": "../recipes/default"},
])
def test_bad_input_raises_value_error(kwargs):
    args = {"seed": 42, "clock_start": CLOCK, **kwargs}
    with pytest.raises(ValueError):
        seed.build(**args)


def test_load_recipe():
    assert seed.load_recipe("default")["organisations"][0]["name"] == "Sandbox Lettings Ltd"
    with pytest.raises(ValueError, match=r"unknown seed recipe 'nope'.*default"):
        seed.load_recipe("nope")
