"""Seeded jobs: `JobMaker` resolves one organisation's recipe once, then makes each job with a few
cheap draws from the organisation's own stream (100,000 jobs in a few seconds)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from .seed import _DAY, _TS, _date, _int, _local, _pick, _ts, _uuid, _weighted

if TYPE_CHECKING:
    from .seed import _World

# Stages (reference statuses' `stage`) of jobs finished at least once, so with completed_at;
# a recalled job was completed before it was recalled.
_FINISHED = frozenset({"complete", "recalled", "closed", "archived", "invoiced"})
# Stages still being worked on: some are created in the last few days so SLA checks see a mix.
_ACTIVE = frozenset({"new", "assigned", "in_progress", "approval_gate"})
_BILLED = frozenset({"invoiced", "closed", "archived"})  # the ones with an invoice_no


class JobMaker:
    """Everything one organisation's jobs draw from, resolved once so each job is a few cheap rng calls."""

    def __init__(self, world: _World, org: dict):
        j, ref, org_id = world.r["jobs"], world.ref, org["ID"]
        self.j, self.words, self.org_id, self.clock = j, world.words, org_id, world.clock
        self.rng = world.stream("jobs", org_id)
        self.stage_of = {s["ID"]: s["stage"] for s in ref["statuses"]}
        ids = {name: {row["name"]: row["ID"] for row in ref[name]}
               for name in ("priorities", "job_types", "payment_statuses")}
        ids["statuses"] = {s["stage"]: s["ID"] for s in ref["statuses"]}
        sw, pw, tw = j["status_weights"], j["priority_weights"], j["job_type_weights"]
        self.status = _weighted([ids["statuses"][s] for s in sw], list(sw.values()))
        self.priority = _weighted([ids["priorities"][n] for n in pw], list(pw.values()))
        types = ids["job_types"]
        weights = {types[n]: w for n, w in tw.items()}
        self.job_type = _weighted(list(weights), list(weights.values()))
        self.trade_of = {t["ID"]: t["trade_id"] for t in ref["job_types"]}
        self.budget = {types[n]: r for n, r in j["contractor_budget"].items()}
        self.issues = {types[n]: v for n, v in world.words["issues"].items()}
        pay = ids["payment_statuses"]
        self.pay = {stage: [pay[n] for n in names] for stage, names in j["payment_status"].items()}
        self.vat = _weighted([float(v) for v in j["vat_rates"]], j["vat_weights"])
        self.time_ranges = [t["ID"] for t in ref["time_ranges"]]
        self.addresses = [(a["ID"], a["branch_id"]) for a in world.of("addresses", org_id)]
        self.branch_of = dict(self.addresses)
        self.tenants_at: dict[int, list[int]] = {}
        for t in world.of("tenants", org_id):
            if t["address_id"] is not None:
                self.tenants_at.setdefault(t["address_id"], []).append(t["ID"])
        self.agents_at: dict[int, list[int]] = {}
        for a in world.of("agents", org_id):
            for b in a["branch_ids"] if a["is_active"] else ():
                self.agents_at.setdefault(b, []).append(a["ID"])
        contractors = [c for c in world.of("contractors", org_id) if c["is_active"]]
        self.all_contractors = [c["ID"] for c in contractors]
        self.by_trade = {t: [c["ID"] for c in contractors if t in c["trade_ids"]]
                         for t in self.trade_of.values()}
        staff_type = next(t["ID"] for t in ref["account_types"] if t["name"] == "Staff")
        staff = [u for u in world.of("users", org_id) if u["account_type_id"] == staff_type]
        # Jobs are raised by staff or the API account; an org with only its admin has the admin raise them.
        self.creators = [u["ID"] for u in staff if u["role"] != "SysOps"] or [u["ID"] for u in staff]
        fake = world.fake  # reseeded by stream() above, so the contact pool is part of this org's stream
        names = [(fake.first_name(), fake.last_name()) for _ in range(j["contact_pool"])]
        self.contacts = [(f"{first} {last}", f"{_local(first, last)}@example.net") for first, last in names]
        # The demo contractor (main org only) should hold a fixed share of *all* jobs, but is drawn only
        # for jobs that have a contractor, so scale up; its jobs get a type one of its trades covers.
        demo = next((c for c in contractors if c["ID"] == j["demo_contractor_id"]), None)
        self.demo, self.demo_q = None, 0.0
        shared: dict[str, str] = {}
        self.same = lambda value: shared.setdefault(value, value)
        if demo is not None:
            demo_types = [t for t in weights if self.trade_of[t] in demo["trade_ids"]]
            self.demo, self.demo_type = demo["ID"], _weighted(demo_types, [weights[t] for t in demo_types])
            with_contractor = 1 - sw.get("new", 0) / sum(sw.values()) * (1 - j["open_with_contractor"])
            self.demo_q = min(1.0, j["demo_contractor_share"] / with_contractor)

    def __call__(self, jid: int, ref: str, fixed: dict) -> dict:
        rng, j, w, clock = self.rng, self.j, self.words, self.clock
        # Titles, descriptions and dates repeat across thousands of jobs: one string object per value
        # (100,000 jobs: ~35 MB less resident memory).
        same = self.same
        status = fixed.get("status_id") or self.status(rng)
        stage = self.stage_of[status]
        if "address_id" in fixed:
            address, branch = fixed["address_id"], self.branch_of[fixed["address_id"]]
        else:
            address, branch = _pick(rng, self.addresses)
        has_contractor = stage != "new" or rng.random() < j["open_with_contractor"]
        contractor = None
        if "job_type_id" in fixed:
            job_type = fixed["job_type_id"]
        elif has_contractor and self.demo is not None and rng.random() < self.demo_q:
            job_type, contractor = self.demo_type(rng), self.demo
        else:
            job_type = self.job_type(rng)
        if has_contractor and contractor is None:
            contractor = _pick(rng, self.by_trade.get(self.trade_of[job_type]) or self.all_contractors)
        agents = self.agents_at.get(branch)
        agent = _pick(rng, agents) if agents and rng.random() >= j["no_agent"] else None

        if "created_at" in fixed:
            created = int(datetime.strptime(fixed["created_at"], _TS).replace(tzinfo=UTC).timestamp())
        else:
            recent = stage in _ACTIVE and rng.random() < j["recent_share"]
            created = clock - int(rng.random() * (j["recent_days"] if recent else j["history_days"]) * _DAY)
        updated = created + int(rng.random() * max(0, clock - created))
        completed = created + int(rng.random() * (updated - created)) if stage in _FINISHED else None
        works_start = works_end = time_range = None
        if stage != "new" or rng.random() >= j["unscheduled_open"]:
            if completed is not None:  # the works happened between creation and completion
                first, last = created + int(rng.random() * (completed - created)), completed
            else:
                first = created + _int(rng, 1, 14) * _DAY
                last = first + _int(rng, 0, 3) * _DAY
            works_start, works_end = _date(first // _DAY), _date(last // _DAY)
            time_range = _pick(rng, self.time_ranges)

        lo, hi = self.budget[job_type]
        contractor_budget = round(rng.uniform(lo, hi), 2)
        vat = self.vat(rng)
        total = round(contractor_budget * (1 + vat / 100), 2)
        title, description = _pick(rng, self.issues[job_type])
        contact = _pick(rng, self.contacts) if rng.random() < j["private_contact"] else (None, None)
        suffix, recalled = ref.removeprefix("JOB-"), stage == "recalled"
        row = {
            "ID": jid, "uuid": _uuid(rng), "org_id": self.org_id, "branch_id": branch, "job_ref": ref,
            "job_title": same(f"{title} - {_pick(rng, w['places'])}"),
            "job_description": same(f"{description} {_pick(rng, w['details'])}"),
            "status_id": status, "priority_id": self.priority(rng), "job_type_id": job_type,
            "address_id": address, "agent_id": agent, "contractor_id": contractor,
            # One list per address, shared by its jobs (a job's list is replaced on update, never edited).
            "tenants_ids": self.tenants_at.setdefault(address, []),
            "job_total_budget": round(total * rng.uniform(*j["markup"]), 2),
            "contractor_budget": contractor_budget, "vat_percentage": vat, "total_amount": total,
            "date_works_start_date": works_start, "date_works_end_date": works_end,
            "time_range_id": time_range,
            "access_details": _pick(rng, w["access"]).format(code=f"{_int(rng, 0, 9999):04d}"),
            "works_order_ref": f"WO-{suffix}", "invoice_no": f"INV-{suffix}" if stage in _BILLED else None,
            "quote_no": f"QT-{suffix}",
            "private_contact_name": contact[0], "private_contact_email": contact[1],
            "payment_status_id": _pick(rng, self.pay[stage]), "is_recall": int(recalled),
            "recall_reason": _pick(rng, w["recall_reasons"]) if recalled else None,
            "photos_count": _int(rng, 1, j["photos_max"]) if rng.random() < j["photos"] else 0,
            "documents_count": _int(rng, 1, j["documents_max"]) if rng.random() < j["documents"] else 0,
            "created_by": _pick(rng, self.creators), "created_at": _ts(created), "updated_at": _ts(updated),
            "completed_at": None if completed is None else _ts(completed)}
        row.update(fixed)  # documented jobs: the docs' values win over the generated ones
        return row
