"""Deterministic seed data for the PropOps Sandbox.

`build()` turns (seed, clock_start, jobs, recipe) into plaintext rows per table: the reference tables of
`fixtures/reference.toml`, then two organisations with branches, agents, contractors, addresses, tenants,
users, jobs and pins, sized and shaped by `fixtures/recipes/<recipe>.toml`. The records the PropOps API
docs show (job 1001, agent 10, ...) come from the recipe's `[documented]` tables and are kept exactly.

Same inputs give byte-identical output in any process: every choice comes from seeded `random.Random`
and Faker streams, no set is iterated, and every generated time is an offset from `clock_start`.
Job text comes from `fixtures/words.toml` rather than Faker so that 100,000 jobs build in seconds.
"""

from __future__ import annotations

import functools
import itertools
import math
import random
import re
import time
import tomllib
from bisect import bisect
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from faker import Faker

from ._paths import FIXTURES
from .storage import row_maker

MAX_JOBS = 100_000
REFERENCE_TABLES = ("statuses", "priorities", "job_types", "trades", "payment_statuses", "time_ranges",
                    "file_types", "account_types")
_TS = "%Y-%m-%dT%H:%M:%SZ"
_DAY = 86_400
_UUID_CLEAR = ~((0xC000 << 48) | (0xF000 << 64))  # the variant and version bits...
_UUID_SET = (0x8000 << 48) | (4 << 76)  # ...set as uuid.UUID(version=4) sets them
_INWARD = "ABDEFGHJLNPQRSTUWXYZ"  # letters a UK postcode's inward code may use


@functools.cache
def load_reference() -> dict[str, list[dict]]:
    """The reference tables of fixtures/reference.toml, parsed once (callers must not mutate it)."""
    with (FIXTURES / "reference.toml").open("rb") as fh:
        return tomllib.load(fh)


def load_recipe(name: str) -> dict:
    """fixtures/recipes/<name>.toml, freshly parsed; ValueError if there is no such recipe."""
    recipes = FIXTURES / "recipes"
    # Names are file stems: refusing anything else keeps a name like "../x" from leaving recipes/.
    if not (isinstance(name, str) and re.fullmatch(r"[A-Za-z0-9_-]+", name)
            and (recipes / f"{name}.toml").is_file()):
        known = ", ".join(sorted(p.stem for p in recipes.glob("*.toml"))) or "none"
        raise ValueError(f"unknown seed recipe {name!r} (known recipes: {known})")
    with (recipes / f"{name}.toml").open("rb") as fh:
        return tomllib.load(fh)


@functools.cache
def _load_words() -> dict[str, Any]:
    with (FIXTURES / "words.toml").open("rb") as fh:
        return tomllib.load(fh)


@functools.lru_cache(maxsize=2048)
def _date(day: int) -> str:
    """ "2026-11-01" for a day number since the epoch; seeded times fall on a few hundred days."""
    return time.strftime("%Y-%m-%d", time.gmtime(day * _DAY))


def _ts(t: int) -> str:
    """ISO time, as every seeded timestamp is written: the cached day plus the time of day (several times
    cheaper than strftime per call, and far cheaper than datetime)."""
    day, s = divmod(t, _DAY)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    return f"{_date(day)}T{h:02d}:{m:02d}:{s:02d}Z"


def _local(first: str, last: str) -> str:
    return re.sub(r"[^a-z0-9.]", "", f"{first}.{last}".lower())  # "Ann O'Neil" -> "ann.oneil"


def _pick(rng: random.Random, seq: list | str) -> Any:
    # rng.choice() costs about three times this; 100k jobs make over a million choices.
    return seq[int(rng.random() * len(seq))]


def _int(rng: random.Random, lo: int, hi: int) -> int:
    return lo + int(rng.random() * (hi - lo + 1))  # rng.randint() without its overhead, as _pick


def _uuid(rng: random.Random) -> str:
    """The text of uuid.UUID(int=rng.getrandbits(128), version=4), without building the object."""
    n = rng.getrandbits(128) & _UUID_CLEAR | _UUID_SET
    h = f"{n:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _weighted(items: list, weights: list[float]) -> Callable[[random.Random], Any]:
    """Weighted choice by bisecting cumulative weights: much cheaper than rng.choices() per call."""
    cum = list(itertools.accumulate(weights))
    if not items or len(items) != len(cum) or cum[-1] <= 0:
        raise ValueError("seed recipe has an empty, mismatched or all-zero weight table")
    return lambda rng: items[bisect(cum, rng.random() * cum[-1])]


def build(seed: int = 42, clock_start: datetime | None = None, jobs: int | None = None,
          recipe: str = "default") -> dict[str, list[dict]]:
    """All seed rows per table (plain Python values, plaintext), identical for identical arguments."""
    if type(seed) is not int:
        raise ValueError(f"seed must be an int, not {seed!r}")
    if clock_start is None:
        raise ValueError("clock_start is required: all seeded timestamps are derived from it")
    if not isinstance(clock_start, datetime) or clock_start.utcoffset() is None:
        raise ValueError(f"clock_start must be a timezone-aware datetime, not {clock_start!r}")
    if jobs is not None and (type(jobs) is not int or not 1 <= jobs <= MAX_JOBS):  # bool is no count
        raise ValueError(f"jobs must be an int from 1 to {MAX_JOBS:,}, not {jobs!r}")
    clock = int(clock_start.astimezone(UTC).timestamp())
    tables = _World(seed, clock, load_recipe(recipe), jobs).build()
    # Records that hang off jobs (files, notes) are seeded by their own modules, after the jobs.
    from . import seed_certificates, seed_media, seed_notes

    for extension in (seed_media, seed_notes, seed_certificates):
        tables.update(extension.build(tables, seed, clock_start.astimezone(UTC)))
    # The remedials example of the jobs guide: job 1055 is a follow-on of job 1001.
    tables["remedials"] = [{"ID": 1, "uuid": "550e8400-e29b-41d4-a716-446655449001", "org_id": 1, "job_id": 1001,
                            "remedial_job_id": 1055, "reason": "Parts replacement after the boiler service",
                            "created_by": 7, "created_at": "2024-06-15T09:00:00Z"}]
    return tables


class _World:
    """One build: the recipe, the seeded streams, and the tables filled in dependency order."""

    def __init__(self, seed: int, clock: int, recipe: dict, jobs: int | None):
        self.seed, self.clock, self.r = seed, clock, recipe
        self.ref, self.words = load_reference(), _load_words()
        self.orgs = [dict(org) for org in recipe["organisations"]]
        if jobs is not None:  # the first organisation is the main (demo) one
            self.orgs[0]["jobs"] = jobs
        self.docs: dict[str, list[dict]] = recipe.get("documented", {})
        self.fake = Faker("en_GB")
        # Documented and demo emails are reserved up front so generated people never take them.
        self.emails = {row[k] for rows in self.docs.values() for row in rows
                       for k in ("email", "tenant_email", "shared_email") if k in row}
        self.emails.update(u["email"] for u in recipe["demo_users"])
        # Reference rows are copied so a caller mutating its dataset cannot reach load_reference()'s cache.
        self.t: dict[str, list[dict]] = {n: [dict(row) for row in self.ref[n]] for n in REFERENCE_TABLES}

    def stream(self, *key: Any) -> random.Random:
        # A named stream per table and organisation (Faker reseeded alike): a different job count then
        # changes only the job-dependent tables, and the second org's rows never shift with the first's.
        name = ":".join(str(k) for k in (self.seed, *key))
        self.fake.seed_instance(name)
        return random.Random(name)

    def email(self, first: str, last: str, domain: str) -> str:
        local = _local(first, last)
        email, n = f"{local}@{domain}", 1
        while email in self.emails:  # emails are logins and lookup keys elsewhere: keep them unique
            n += 1
            email = f"{local}{n}@{domain}"
        self.emails.add(email)
        return email

    def made(self, rng: random.Random) -> str:
        lo, hi = self.r["people"]["entity_age_days"]
        return _ts(self.clock - rng.randint(lo * _DAY, hi * _DAY))

    def of(self, table: str, org_id: int) -> list[dict]:
        return [row for row in self.t[table] if row["org_id"] == org_id]

    def active_branches(self, org_id: int) -> list[int]:
        return [b["ID"] for b in self.of("branches", org_id) if b["is_active"]]

    def build(self) -> dict[str, list[dict]]:
        rng = self.stream("organisations")
        self.t["organisations"] = [{"ID": o["ID"], "uuid": _uuid(rng), "name": o["name"]} for o in self.orgs]
        for table in ("branches", "agents", "contractors", "addresses", "tenants", "users", "jobs"):
            self.t[table] = []
            getattr(self, "_" + table)(itertools.count(self.r["id_start"].get(table, 1)))
            # Documented rows override the generated ones before the next table is built on them.
            by_id = {row["ID"]: row for row in self.t[table]}
            for doc in self.docs.get(table, []):
                if doc["ID"] not in by_id:
                    raise ValueError(f"recipe documents {table} ID {doc['ID']}, which the build lacks")
                by_id[doc["ID"]].update(doc)
        self._pins()
        return self.t

    def _branches(self, ids: itertools.count) -> None:
        fake = self.fake
        for org in self.orgs:
            rng, n = self.stream("branches", org["ID"]), org["branches"]
            for i in range(n):
                city = fake.city()
                self.t["branches"].append({
                    "ID": next(ids), "uuid": _uuid(rng), "org_id": org["ID"], "branch_name": f"{city} Office",
                    "address_line_1": f"{rng.randint(1, 200)} {fake.street_name()}", "city": city,
                    "postcode": fake.postcode(), "contact_number": fake.phone_number(),
                    "shared_email": self.email(city, "lettings", org["email_domain"]),
                    "is_active": i < n - org["inactive_branches"], "created_at": self.made(rng)})

    def _agents(self, ids: itertools.count) -> None:
        fake, p = self.fake, self.r["people"]
        for org in self.orgs:
            rng, active = self.stream("agents", org["ID"]), self.active_branches(org["ID"])
            for i in range(org["agents"]):
                first, last = fake.first_name(), fake.last_name()
                # The first agents go one per active branch (and stay active) so every branch has one.
                branch = active[i] if i < len(active) else rng.choice(active)
                others = [b for b in active if b != branch]
                shared = [rng.choice(others)] if others and rng.random() < p["agent_second_branch"] else []
                self.t["agents"].append({
                    "ID": next(ids), "uuid": _uuid(rng), "org_id": org["ID"], "first_name": first,
                    "last_name": last, "email": self.email(first, last, org["email_domain"]),
                    "phone": fake.cellphone_number(), "branch_id": branch, "branch_ids": [branch, *shared],
                    "is_active": i < len(active) or rng.random() >= p["inactive_agents"],
                    "created_at": self.made(rng)})

    def _contractors(self, ids: itertools.count) -> None:
        fake, p = self.fake, self.r["people"]
        trades = [t["trade_id"] for t in self.ref["trades"]]
        for org in self.orgs:
            rng = self.stream("contractors", org["ID"])
            for i in range(org["contractors"]):
                first, last = fake.first_name(), fake.last_name()
                # Main trades go round-robin (first ones always active) so each org covers every trade.
                main = trades[i % len(trades)]
                extra = rng.sample([t for t in trades if t != main], rng.choice(p["contractor_extra_trades"]))
                self.t["contractors"].append({
                    "ID": next(ids), "uuid": _uuid(rng), "org_id": org["ID"], "first_name": first,
                    "last_name": last, "company_name": fake.company(),
                    "email": self.email(first, last, org["email_domain"]), "phone": fake.cellphone_number(),
                    "trade_ids": sorted([main, *extra]), "postcode": fake.postcode(),
                    "coverage_radius_miles": rng.choice(p["coverage_radius_miles"]),
                    "is_active": i < len(trades) or rng.random() >= p["inactive_contractors"],
                    "created_at": self.made(rng)})

    def _addresses(self, ids: itertools.count) -> None:
        fake, a, address = self.fake, self.r["addresses"], row_maker("addresses")
        for org in self.orgs:
            rng, active = self.stream("addresses", org["ID"]), self.active_branches(org["ID"])
            count = max(a["min_per_org"], math.ceil(org["jobs"] / a["jobs_per_address"]))
            # Faker is the slow part, so a big build recombines a capped pool of Faker street names, towns
            # and postcode districts with rng house numbers and inward codes.
            size = min(count, a["name_pool"])
            streets, cities = [fake.street_name() for _ in range(size)], [fake.city() for _ in range(size)]
            districts = [fake.postcode().split()[0] for _ in range(size)]
            # The first branch gets more addresses (so jobs) because the demo agent/contractor see it.
            branch = _weighted(active, [a["first_branch_weight"]] + [1.0] * (len(active) - 1))
            for _ in range(count):
                line_1 = f"{_int(rng, 1, a['max_house_number'])} {_pick(rng, streets)}"
                line_2 = fake.secondary_address() if rng.random() < a["line_2"] else ""
                city = _pick(rng, cities)
                inward = f"{_int(rng, 0, 9)}{_pick(rng, _INWARD)}{_pick(rng, _INWARD)}"
                postcode = f"{_pick(rng, districts)} {inward}"
                self.t["addresses"].append(address({
                    "ID": next(ids), "uuid": _uuid(rng), "org_id": org["ID"], "branch_id": branch(rng),
                    "address_line_1": line_1, "address_line_2": line_2, "city": city, "postcode": postcode,
                    "full_address": ", ".join(part for part in (line_1, line_2, city, postcode) if part)}))

    def _tenants(self, ids: itertools.count) -> None:
        fake, p = self.fake, self.r["people"]
        # Addresses of documented tenants hold only those (job 1001's tenants_ids is exactly [100, 101]).
        reserved = {d["address_id"] for d in self.docs.get("tenants", []) if "address_id" in d}
        for org in self.orgs:
            rng = self.stream("tenants", org["ID"])
            pool = [a["ID"] for a in self.of("addresses", org["ID"])]
            pool = [a for a in pool if a not in reserved] or pool
            for _ in range(org["tenants"]):
                first, last = fake.first_name(), fake.last_name()
                work = fake.phone_number() if rng.random() < p["tenant_work_number"] else None
                self.t["tenants"].append({
                    "ID": next(ids), "uuid": _uuid(rng), "org_id": org["ID"],
                    "tenant_name": f"{first} {last}",
                    "tenant_email": self.email(first, last, org["email_domain"]),
                    "tenant_number_primary": fake.cellphone_number(), "tenant_number_work": work,
                    "address_id": None if rng.random() < p["unassigned_tenants"] else rng.choice(pool),
                    "is_active": rng.random() >= p["inactive_tenants"], "created_at": self.made(rng)})

    def _users(self, _ids: itertools.count) -> None:
        demo, users = self.r["demo"], list(self.r["demo_users"])
        staff = next(t["ID"] for t in self.ref["account_types"] if t["name"] == "Staff")
        ids = itertools.count(max(u["ID"] for u in users) + 1)  # extra staff follow the demo accounts
        for org in self.orgs:
            users += [{"ID": next(ids), "org_id": org["ID"], "account_type_id": staff,
                       "role": demo["staff_role"], "domain": org["email_domain"]}
                      for _ in range(org["extra_staff_users"])]
        rng = self.stream("users")
        for u in users:
            first = u.get("first_name") or self.fake.first_name()
            last = u.get("last_name") or self.fake.last_name()
            self.t["users"].append({
                "ID": u["ID"], "uuid": _uuid(rng), "org_id": u["org_id"],
                "account_type_id": u["account_type_id"], "role": u["role"],
                "first_name": first, "last_name": last,
                "email": u.get("email") or self.email(first, last, u["domain"]), "password": demo["password"],
                "agent_id": u.get("agent_id"), "contractor_id": u.get("contractor_id"), "is_active": True,
                "created_at": self.made(rng)})

    def _jobs(self, ids: itertools.count) -> None:
        from .seed_jobs import JobMaker  # here, not at the top: seed_jobs uses this module's helpers
        start = next_id = next(ids)
        docs = {d["ID"]: d for d in self.docs.get("jobs", [])}
        taken = {d["job_ref"] for d in docs.values() if "job_ref" in d}  # documented refs win
        for org in self.orgs:
            # Documented jobs past the generated range are added (job 1055 exists even for jobs < 55).
            end = next_id + org["jobs"]
            extra = sorted(i for i, d in docs.items() if d["org_id"] == org["ID"] and i >= end)
            make = JobMaker(self, org)
            for jid in [*range(next_id, end), *extra]:
                fixed = docs.get(jid, {})
                ref = fixed.get("job_ref") or f"JOB-{jid - start + 1:03d}"
                if ref in taken and jid not in docs:
                    ref = f"JOB-{jid}"
                taken.add(ref)
                self.t["jobs"].append(make(jid, ref, fixed))
            next_id = extra[-1] + 1 if extra else end

    def _pins(self) -> None:
        p, rng = self.r["pins"], self.stream("pins")
        user, exclude = p["user_id"], set(p["exclude_jobs"])
        org_id = next(u["org_id"] for u in self.t["users"] if u["ID"] == user)
        pool = [j["ID"] for j in self.t["jobs"] if j["org_id"] == org_id and j["ID"] not in exclude]
        chosen = sorted(rng.sample(pool, min(p["count"], len(pool))))
        self.t["pins"] = [{"ID": n, "user_id": user, "job_id": job} for n, job in enumerate(chosen, 1)]
