"""Another organisation's records are invisible: for every endpoint that takes an id or uuid, the other
organisation's admin (admin@other.propops.test, Staff, every permission) calling it with the id/uuid of a
record of the main organisation gets exactly the answer a nonexistent id gets — 404 for a lookup — never
the record, and no state changes.

Driven by the endpoint table (`sandbox.app.routes()`): every row with a param named id/uuid/*_id/*_uuid/
*_ids/created_by (the ``{uuid}`` path segments are params too), each param in turn; the other params are
filled with valid values of the caller's own organisation, so the foreign id is the only thing wrong. A
generic ``uuid`` is tried with a record of every kind. The explicit lists below say where the answer for a
missing id is not a 404 (list filters, references in a create/update) and which ids are not org records
(shared reference tables). Every GET, called as the other org with its own values, shows none of the
main organisation's records either.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import orjson
from conftest import ADMIN, CLOCK_START, JOB_1001, OTHER_ADMIN

from sandbox import Settings
from sandbox.app import routes
from sandbox.endpoints import Endpoint, Param
from sandbox.testing import LiveServer

IDISH = re.compile(r"^(id|uuid|created_by)$|_(id|uuid|ids)$")  # created_by: a user ID
MISSING = {"integer": 987654, "uuid": "00000000-0000-4000-8000-00000000dead", "int_list": [987654]}
# Reference tables every organisation shares (statuses, priorities, job and file types, time ranges,
# payment statuses, trades): their ids are the same for everyone, so they are not another org's records.
SHARED = {"status_id", "priority_id", "job_type_id", "time_range_id", "payment_status_id", "file_type_id",
          "document_type_id", "trade_id", "job_status_from_id", "job_status_to_id", "account_type_id", "role_id",
          "job_status_id", "template_id", "service_id", "workflow_id", "session_id"}  # + catalogues, a chat id
# param name -> the kinds of record it names (the first is used when the param only has to be valid)
KINDS = {
    "job_id": ["job"], "job_uuid": ["job"], "parent_job_uuid": ["job"], "remedial_job_uuid": ["job"],
    "remedials_job_uuid": ["job"], "contractor_id": ["contractor"], "contractor_uuid": ["contractor"],
    "agent_id": ["agent"], "agent_uuid": ["agent"], "branch_id": ["branch"], "branch_uuid": ["branch"],
    "address_id": ["address"], "address_uuid": ["address"], "tenant_address_id": ["address"],
    "tenant_uuid": ["tenant"], "tenants_ids": ["tenant"], "photo_uuid": ["photo"], "document_id": ["document"],
    "document_uuid": ["document"], "case_note_uuid": ["note"], "note_uuid": ["note"], "cert_uuid": ["cert"],
    "commit_id": ["commit"], "commit_uuid": ["commit"], "amend_request_id": ["amend"],
    "file_uuid": ["photo", "document"],
    "user_id": ["user"], "user_uuid": ["user"], "created_by": ["user"], "id": ["photo"],
    "notification_id": ["notification"], "user_ids": ["user"], "branch_ids": ["branch"],
}
# Where a missing id is not answered 404, the foreign id must get that same answer. Two kinds, by design:
FILTER = "a list filter: an id that is not yours matches nothing (200, empty)"
REFERENCE = "a reference inside a create/update: 400 naming the field, as for an id that does not exist"
NOT_404 = {
    **{("GET", "/api/jobs/manage", "list", p): FILTER for p in ("agent_id", "contractor_id", "created_by")},
    ("GET", "/api/jobs/manage", "get_job_agents", "branch_id"): FILTER,
    ("GET", "/api/jobs/addresses", "list", "branch_id"): FILTER,
    ("GET", "/api/jobs/sla-status", None, "branch_id"): FILTER,
    ("GET", "/api/sla-breached-jobs", None, "branch_id"): FILTER,
    ("GET", "/api/calendar-jobs", None, "branch_id"): FILTER,
    ("GET", "/api/calendar-jobs", None, "contractor_id"): FILTER,
    ("GET", "/api/agents/list", "list", "branch_id"): FILTER,
    ("GET", "/api/agents/branch-jobs", None, "agent_id"): FILTER,
    ("GET", "/api/tenants/list", "list", "address_id"): FILTER,
    ("GET", "/api/tenants/manage", "list", "address_id"): FILTER,
    **{("POST", "/api/jobs/manage", a, p): REFERENCE for a in ("create", "update")
       for p in ("address_id", "agent_id", "contractor_id", "tenants_ids")},
    ("POST", "/api/tenants/list", None, "tenant_address_id"): REFERENCE,
    ("POST", "/api/tenants/manage", None, "tenant_address_id"): REFERENCE,
}
# Params a handler needs although the table marks them optional (one of two names is required), filled
# with the caller's own records; names in one group are aliases, so only one of a group is sent.
COMPANIONS = {
    ("POST", "/api/jobs/photos", "delete"): {"photo_uuid": "photo"},
    ("POST", "/api/jobs/documents", "delete"): {"document_uuid": "document"},
    ("POST", "/api/jobs/amend-request", "approve"): {"uuid": "amend"},
    ("POST", "/api/jobs/amend-request", "reject"): {"uuid": "amend"},
    ("POST", "/api/jobs/remedials", "link"): {"job_uuid": "job", "remedials_job_uuid": "job2"},
    **{("POST", "/api/jobs/remedials", a): {"parent_job_uuid": "job", "remedial_job_uuid": "job2"}
       for a in ("create", "delete")},
    ("GET", "/api/agents/branch-jobs", None): {"branch_uuid": "branch"},
}
ALIASES = [{"job_uuid", "job_id"}, {"photo_uuid", "id"}, {"document_id", "document_uuid"},
           {"amend_request_id", "uuid"}, {"branch_id", "branch_uuid"}]
# The remedials rows share one param list between the seed's actions (link/unlink: job_uuid,
# remedials_job_uuid) and the reference page's (create/delete: parent_job_uuid, remedial_job_uuid); each
# action ignores the other pair, so those are not ids it takes.
IGNORED = {("POST", "/api/jobs/remedials", action, p) for action, params in (
    ("link", ("parent_job_uuid", "remedial_job_uuid")),
    ("unlink", ("remedials_job_uuid", "parent_job_uuid", "remedial_job_uuid")),
    ("create", ("job_uuid", "remedials_job_uuid")), ("delete", ("job_uuid", "remedials_job_uuid"))) for p in params}
# Admin ids covered by test_admin.py instead: role ids (the built-in roles are shared by every organisation),
# and job tags and logged e-mails, which the seed holds for neither organisation. The log's user filter is a filter.
IGNORED |= {("GET", "/api/admin/roles", None, "id"), ("PUT", "/api/admin/user-management-policy", None, "id"),
            ("POST", "/api/admin/roles", None, "parent_role_id"), ("POST", "/api/admin/resend-email", None, "email_id"),
            *(("POST", "/api/admin/job-tags", a, "job_tag_id") for a in ("create", "update", "delete"))}
NOT_404[("GET", "/api/admin/activity-log", None, "user_id")] = FILTER
FILLERS = {"field_name": "job_title", "requested_value": "Cross-org title", "reason": "test", "message": "hello",
           "job_title": "Cross-org", "job_description": "x", "decision": "approve", "recall_reason": "test",
           "tenant_name": "Cross Org Tenant", "branch_name": "Cross Org Branch", "from_date": "2026-01-01",
           "to_date": "2026-12-31", "status": "approved", "cert_type": "Gas Safe"}


TABLES = {"job": "jobs", "job2": "jobs", "contractor": "contractors", "agent": "agents", "branch": "branches",
          "tenant": "tenants", "address": "addresses", "user": "users", "photo": "photos", "document": "documents",
          "note": "case_notes", "cert": "certifications", "commit": "job_commits", "amend": "amend_requests",
          "attachment": "case_note_attachments", "logo": "branch_logos", "rule": "branch_sla_rules",
          "notification": "notifications"}
PEOPLE = {"contractor": 20, "agent": 10, "branch": 1, "tenant": 100}  # the main organisation's, as documented


def records(server: LiveServer, org: int) -> dict[str, dict]:
    """One record (raw row) of each kind in organisation `org`: job 1001's own where it has them."""
    store = server.sandbox.store
    job = store.raw_by_uuid("jobs", records_job(server, org))
    other = next(r for r in store.select("jobs", lambda r: r["org_id"] == org and r["ID"] != job["ID"]
                                         and r["status_id"] != 8))
    out = {"job": job, "job2": other, "address": store.raw("addresses", job["address_id"])}
    for kind, table in TABLES.items():
        if kind in out:
            continue
        if org == 1 and kind in PEOPLE:
            out[kind] = store.raw(table, PEOPLE[kind])
            continue
        rows = store.select(table, lambda r: r.get("org_id") == org and not r.get("archived")
                            and r.get("job_id", job["ID"]) in (job["ID"], None))
        if rows:
            out[kind] = rows[0]
    return out


def setup(server: LiveServer) -> None:
    """Records the seed does not hold: on each organisation's job a commit, an amendment request and a case
    note; in the main one also a case-note attachment, a branch logo and a branch SLA rule."""
    branch = server.sandbox.store.raw("branches", 1)["uuid"]
    for email, org in ((ADMIN, 1), (OTHER_ADMIN, 2)):
        job = records_job(server, org)
        with server.client(email) as c:
            answers = [c.post("/api/jobs/manage", json={"action": "update", "uuid": job, "quote_no": f"Q-{org}"}),
                       c.post("/api/jobs/amend-request", json={"action": "create", "job_uuid": job, "reason": "setup",
                                                               "field_name": "quote_no", "requested_value": "Q-9"}),
                       c.post("/api/jobs/case-notes", json={"job_uuid": job, "message": f"Setup note {org}"}),
                       c.post("/api/jobs/manage", json={"action": "send_assignment_notification", "uuid": job})]
            if org == 1:
                answers += [
                    c.post("/api/jobs/case-notes", data={"job_uuid": job, "message": "With a file"},
                           files={"attachment": ("site-plan.pdf", b"%PDF-1.4 plan", "application/pdf")}),
                    c.post("/api/agents/branch-logo", data={"uuid": branch},
                           files={"logo": ("logo.svg", b'<svg xmlns="http://www.w3.org/2000/svg"/>', "image/svg+xml")}),
                    c.post("/api/agents/branch-sla-response-times", json={
                        "branch_uuid": branch, "job_status_from_id": 1, "job_status_to_id": 2,
                        "minimum_response_days": 2}),
                ]
            for r in answers:
                assert r.status_code < 300, r.text


def records_job(server: LiveServer, org: int) -> str:
    """Job 1001, or the other organisation's first open job with a photo and a document."""
    if org == 1:
        return JOB_1001
    store = server.sandbox.store
    has = {t: {r["job_id"] for r in store.select(t, lambda r: not r.get("archived"))} for t in ("photos", "documents")}
    return next(r for r in store.select("jobs", lambda r: r["org_id"] == org and r["status_id"] != 8
                                        and r["ID"] in has["photos"] and r["ID"] in has["documents"]))["uuid"]


def value_of(row: dict, param: Param) -> Any:
    if param.type == "int_list":
        return [row["ID"]]
    return row["uuid"] if param.type == "uuid" else row["ID"]


def filler(param: Param) -> Any:
    if param.name in FILLERS:
        return FILLERS[param.name]
    if param.enum:
        return param.enum[0]
    return {"string": "x", "integer": int(param.min or 1), "number": 1, "boolean": False, "date": "2026-11-01",
            "email": "x@example.com", "int_list": [], "object": {}}.get(param.type)


def cases() -> list[tuple[Endpoint, str | None, Param]]:
    out = []
    for row in routes().rows:
        for action in row.actions or (None,):
            for p in row.params:
                ignored = (row.method, row.path, action, p.name) in IGNORED
                if IDISH.search(p.name) and p.name not in SHARED and not ignored:
                    out.append((row, action, p))
    return out


def request(client: httpx.Client, row: Endpoint, action: str | None, fields: dict) -> httpx.Response:
    fields = dict(fields)
    path = re.sub(r"\{(\w+)\}", lambda m: str(fields.pop(m.group(1))), row.path)
    if action is not None:
        fields["action"] = action
    if row.method == "GET":
        return client.get(path, params=fields)
    return client.request(row.method, path, json=fields)


def normalised(r: httpx.Response, sent: Any) -> tuple[int, str]:
    """Status and body with timestamps and the id that was sent (as a whole token) masked."""
    text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "<time>", r.text)
    for value in (sent if isinstance(sent, list) else [sent]):
        text = re.sub(rf"(?<![\w-]){re.escape(str(value))}(?![\w-])", "<id>", text)
    return r.status_code, text


def identifying(server: LiveServer, rows: dict[str, dict]) -> set[str]:
    """Values that would betray a main-organisation record in a response."""
    store, out = server.sandbox.store, set()
    for kind, row in rows.items():
        plain = store.reveal(TABLES[kind], row)
        out.add(row["uuid"])
        for name in ("job_ref", "job_title", "email", "tenant_email", "tenant_name", "branch_name", "full_address",
                     "message", "file_name", "company_name"):
            if isinstance(plain.get(name), str) and len(plain[name]) >= 6:
                out.add(plain[name])
        if plain.get("first_name"):
            out.add(f"{plain['first_name']} {plain['last_name']}")
    return out


def state(server: LiveServer) -> bytes:
    memory = server.sandbox.store.db.storage.memory
    tables = {k: v for k, v in memory.items() if k != "sessions"}  # signing in is not a change
    return orjson.dumps(tables, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)


def test_another_organisations_ids_and_uuids_answer_as_missing_everywhere() -> None:
    with LiveServer(Settings(seed=42, clock_start=CLOCK_START)) as live:
        setup(live)
        foreign, own = records(live, 1), records(live, 2)
        assert set(foreign) == set(TABLES), set(TABLES) - set(foreign)
        secrets = identifying(live, foreign)
        problems, seen = [], set()
        with live.client(OTHER_ADMIN) as client:
            for row, action, param in cases():
                key = (row.method, row.path, action, param.name)
                kinds = KINDS.get(param.name) or (list(foreign) if param.name == "uuid" else None)
                assert kinds, f"{key}: which kind of record does {param.name} name? add it to KINDS"
                seen.add(key)
                base = {p.name: value_of(own[KINDS.get(p.name, ["job"])[0]], p) if IDISH.search(p.name) and
                        p.name not in SHARED else filler(p) for p in row.params
                        if (p.required or p.name in FILLERS) and p.name != param.name}
                aliases = next((g for g in ALIASES if param.name in g), {param.name})
                for name, kind in COMPANIONS.get(key[:3], {}).items():
                    if name not in aliases and not aliases & base.keys() - {name}:
                        base[name] = value_of(own[kind], next(p for p in row.params if p.name == name))
                for name in aliases - {param.name}:
                    base.pop(name, None)
                missing = request(client, row, action, {**base, param.name: MISSING[param.type]})
                for kind in kinds:
                    value = value_of(foreign[kind], param)
                    before = state(live)
                    r = request(client, row, action, {**base, param.name: value})
                    leaked = sorted(s for s in secrets if s in r.text and str(value) != s)
                    expected = {None: 404, FILTER: 200, REFERENCE: 400}[NOT_404.get(key)]
                    if NOT_404.get(key) == REFERENCE:  # refused for this very field, not for another reason
                        assert param.name in missing.json()["error"], (key, missing.text)
                    if (r.status_code != expected or normalised(r, value) != normalised(missing, MISSING[param.type])
                            or leaked or state(live) != before):
                        problems.append({"endpoint": key, "kind": kind, "status": r.status_code,
                                         "missing_status": missing.status_code, "leaked": leaked[:3],
                                         "state_changed": state(live) != before, "body": r.text[:200],
                                         "missing": missing.text[:200]})
        assert seen >= set(NOT_404), set(NOT_404) - seen  # no stale exemptions
        assert len(seen) > 100
        assert problems == [], json.dumps(problems, indent=1)[:6000]


def test_another_organisations_certificate_file_names_answer_as_missing() -> None:
    """Certificates are also named by file (``?file=cert_…``): another organisation's name is a missing one."""
    with LiveServer(Settings(seed=42, clock_start=CLOCK_START)) as live, live.client(OTHER_ADMIN) as client:
        store = live.sandbox.store
        theirs = store.select("certifications", lambda r: r["org_id"] == 1)[0]
        mine = store.select("contractors", lambda r: r["org_id"] == 2)[0]["uuid"]
        secrets = identifying(live, {"cert": theirs, "contractor": store.raw("contractors", theirs["contractor_id"])})
        absent = "cert_1_987654_1704873600.pdf"
        for method, path, fields in (("GET", "/api/contractors/certification", {}),
                                     ("POST", "/api/contractors/certification",
                                      {"action": "delete", "contractor_uuid": mine})):
            before = state(live)
            answers = [client.get(path, params={**fields, "file": name}) if method == "GET" else
                       client.post(path, json={**fields, "file": name}) for name in (theirs["file_name"], absent)]
            assert [a.status_code for a in answers] == [404, 404], [a.text for a in answers]
            assert normalised(answers[0], theirs["file_name"]) == normalised(answers[1], absent)
            assert not [s for s in secrets if s in answers[0].text and s != theirs["file_name"]]
            assert state(live) == before


def test_no_read_shows_the_other_organisations_records() -> None:
    """Every GET row, called by the other organisation's admin with its own valid values: none of the main
    organisation's identifying values (uuids, refs, names, e-mails, addresses, file names) appear."""
    with LiveServer(Settings(seed=42, clock_start=CLOCK_START)) as live:
        setup(live)
        foreign, own = records(live, 1), records(live, 2)
        secrets = identifying(live, foreign)
        leaks, answered = [], 0
        with live.client(OTHER_ADMIN) as client:
            for row in routes().rows:
                if row.method != "GET":
                    continue
                for action in row.actions or (None,):
                    fields = {p.name: value_of(own[KINDS.get(p.name, ["job"])[0]], p)
                              if IDISH.search(p.name) and p.name not in SHARED else filler(p)
                              for p in row.params if p.required}
                    if row.path == "/attachment/{uuid}" or row.path == "/attachment/{uuid}/thumbnail":
                        fields["uuid"] = own["photo"]["uuid"]
                    r = request(client, row, action, fields)
                    answered += r.status_code == 200
                    found = sorted(s for s in secrets if s in r.text)
                    if found:
                        leaks.append(((row.path, action), r.status_code, found[:3]))
        assert answered > 30 and leaks == [], leaks
