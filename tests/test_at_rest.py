"""Encryption at rest, checked on the raw bytes: no plaintext of any field in `sandbox.store.ENCRYPTED` is
anywhere in the data dir — not in ``propops.json``, not in a blob, not in a stray temporary file.

Values reach every encrypted table/field two ways: written through the API with distinctive markers
(jobs, job commits, amendment requests, tenants, case notes and the e-mails they send), and seeded (users,
agents, contractors have no write endpoint). Each plaintext must read back decrypted through the API.
The table is driven by `ENCRYPTED` itself: a new encrypted field that nothing fills fails the test.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
from conftest import ACCOUNTS, ADMIN, CLOCK_START, JOB_1001

from sandbox import Settings
from sandbox.store import ENCRYPTED
from sandbox.testing import LiveServer

PREFIX = "enc:v1:"
JOBS = "/api/jobs/manage"


def m(what: str) -> str:
    return f"Qx7{what}Mark9"


MARKERS = {
    "pc_name": m("PcName") + " Featherstonehaugh", "pc_email": "qx7.pc.mark9@hidden.example",
    "access": m("Access") + ": gate code 4417#, the dog is friendly", "access2": m("AccessTwo") + ", key under mat",
    "pc_name2": m("PcNameTwo"), "amend": m("Amend") + " — ring the bell twice", "tenant": m("Tenant") + " Okonkwo",
    "tenant2": m("TenantTwo") + " O'Brien-Ålund", "tenant_email": "qx7.tenant.mark9@renter.example",
    "phone": "+44 (0)20 7946 0958", "work": "0044 113 496 0417", "note": m("Note") + ' "quoted" <b>bold</b>\nline 2',
    "note2": m("NoteTwo") + " edited", "user_phone": "07700 900 417", "push": "https://push.example/qx7-push-mark9",
    "wa_phone": "+447700900958", "consent": "qx7.consent.mark9@hidden.example",
}

# Where a seeded plaintext may legitimately occur in another, unencrypted field, by coincidence: the demo
# users are named after their role ("Sandbox Staff", "Other Admin", "Sandbox API") and the seed draws
# every phone number from the same Ofcom drama range (07700 900xxx), and contractors' and agents' phone
# numbers are not documented as encrypted.
COINCIDENCES = {
    ("users", "role"), ("account_types", "name"), ("file_types", "name"), ("organisations", "name"),
    ("contractors", "phone"), ("agents", "phone"), ("branches", "contact_number"),
    # An encrypted text may quote an unencrypted value: an assignment e-mail's body is the job title, an
    # audit entry's details name the tag created or the platform of a mobile sign-in.
    ("jobs", "job_title"), ("job_tags", "tag_name"), ("sessions", "platform"),
}


def ok(r: httpx.Response, status: int = 200) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["success"] is True, body
    return body


# Documented as encrypted at rest (jobs, tenants and users guides, seed 002 for case notes): ENCRYPTED must
# keep at least these, whatever else it adds.
DOCUMENTED = {
    "jobs": {"private_contact_name", "private_contact_email", "access_details"},
    "users": {"first_name", "last_name", "email"},
    "tenants": {"tenant_name", "tenant_email", "tenant_number_primary", "tenant_number_work"},
    "case_notes": {"message"},
}


def write_everything(client: httpx.Client) -> dict[str, str]:
    """Fill every encrypted field through the API; returns the uuids needed to read them back."""
    job = ok(client.post(JOBS, json={
        "action": "create", "job_title": "At-rest job", "job_description": "holds private contact details",
        "priority_id": 2, "status_id": 1, "job_type_id": 3, "address_id": 5, "private_contact_name": MARKERS["pc_name"],
        "private_contact_email": MARKERS["pc_email"], "access_details": MARKERS["access"]}), 201)
    # An update records a commit of {field: [old, new]}: the seeded old value and the marker.
    ok(client.post(JOBS, json={"action": "update", "uuid": JOB_1001, "access_details": MARKERS["access2"],
                               "private_contact_name": MARKERS["pc_name2"]}))
    amend = ok(client.post("/api/jobs/amend-request", json={
        "action": "create", "job_uuid": JOB_1001, "field_name": "access_details",
        "requested_value": MARKERS["amend"], "reason": "new key arrangement"}))
    ok(client.post("/api/jobs/amend-request", json={"action": "approve", "uuid": amend["uuid"]}))
    tenant = ok(client.post("/api/tenants/manage", json={
        "tenant_name": MARKERS["tenant"], "tenant_email": MARKERS["tenant_email"],
        "tenant_number_primary": MARKERS["phone"], "tenant_number_work": MARKERS["work"]}))
    ok(client.post("/api/tenants/manage", json={"action": "update", "uuid": tenant["tenant_uuid"],
                                                "tenant_name": MARKERS["tenant2"]}))
    ok(client.post(JOBS, json={"action": "update", "uuid": job["job_uuid"], "tenants_ids": [tenant["tenant_id"]]}))
    note = ok(client.post("/api/jobs/case-notes", json={"job_uuid": JOB_1001, "message": MARKERS["note"],
                                                        "send_email": True}))
    ok(client.post("/api/jobs/case-notes", json={"action": "update", "uuid": note["note_uuid"],
                                                 "message": MARKERS["note2"]}))
    ok(client.get("/api/tenants/gdpr-report", params={"tenant_uuid": tenant["tenant_uuid"]}))
    write_the_rest(client)
    return {"job": job["job_uuid"], "tenant": tenant["tenant_uuid"], "amend": amend["uuid"], "note": note["note_uuid"]}


def write_the_rest(client: httpx.Client) -> None:
    """The personal data of the users, notifications, messaging, GDPR, admin and security endpoints."""
    me = ok(client.get("/api/users/profile"))["data"]
    ok(client.put("/api/users/profile", json={"user_uuid": me["uuid"], "phone": MARKERS["user_phone"]}))
    ok(client.post(JOBS, json={"action": "send_assignment_notification", "uuid": JOB_1001}))  # a notification
    ok(client.post("/api/system/web-push-subscriptions", json={
        "endpoint": MARKERS["push"], "public_key": m("PushKey"), "auth_token": m("PushAuth"), "browser": "Chrome"}))
    ok(client.post("/api/whatsapp/send", json={"job_id": 1001, "phone_number": MARKERS["wa_phone"],
                                               "template_id": 1}))
    ok(client.post("/api/gdpr/consent", json={"consent_type": "terms", "accepted": True,
                                              "email": MARKERS["consent"], "fingerprint": m("Fingerprint")}))
    ok(client.post("/api/admin/job-tags", json={"action": "create", "tag_name": m("Tag")}))  # an activity-log row
    ok(client.post("/api/security/sessions", json={"action": "blacklist_add", "user_id": 2, "reason": m("Reason")}))
    token = client.headers["Authorization"].removeprefix("Bearer ")
    ok(client.post("/api/security/mobile-auth", json={"action": "validate_token", "token": token, "platform": "ios",
                                                      "device_type": "iPhone", "app_version": "2.1.0"}))


def read_back(client: httpx.Client, ids: dict[str, str], contractor: dict, agent: dict) -> None:
    """Everything written reads back decrypted through the API."""
    job = ok(client.get(JOBS, params={"action": "get", "uuid": ids["job"]}))["data"]
    assert (job["private_contact_name"], job["private_contact_email"], job["access_details"]) == (
        MARKERS["pc_name"], MARKERS["pc_email"], MARKERS["access"])
    seeded_job = ok(client.get(JOBS, params={"action": "get", "uuid": JOB_1001}))["data"]
    assert seeded_job["access_details"] == MARKERS["amend"]
    commits = ok(client.get(JOBS, params={"action": "list_commits", "uuid": JOB_1001}))["data"]
    changes = [c["changes"] for c in commits]
    assert {"old": "Key safe code 1234.", "new": MARKERS["access2"]} in [c.get("access_details") for c in changes]
    assert {"old": MARKERS["access2"], "new": MARKERS["amend"]} in [c.get("access_details") for c in changes]
    amend = ok(client.get("/api/jobs/amend-request", params={"uuid": ids["amend"]}))["data"]
    amend = amend[0] if isinstance(amend, list) else amend
    assert (amend["current_value"], amend["requested_value"]) == (MARKERS["access2"], MARKERS["amend"])
    tenant = ok(client.get("/api/tenants/manage", params={"action": "get", "uuid": ids["tenant"]}))["data"]
    assert (tenant["tenant_name"], tenant["tenant_email"], tenant["tenant_number_primary"],
            tenant["tenant_number_work"]) == (MARKERS["tenant2"], MARKERS["tenant_email"], MARKERS["phone"],
                                              MARKERS["work"])
    notes = ok(client.get("/api/jobs/case-notes", params={"action": "list", "job_uuid": JOB_1001}))["data"]
    assert [n["message"] for n in notes if n["uuid"] == ids["note"]] == [MARKERS["note2"]]
    # Seeded people (no write endpoint) read back decrypted too.
    contractors = ok(client.get("/api/contractors/list", params={"action": "list", "limit": 200}))["data"]
    assert [(c["first_name"], c["last_name"], c["email"]) for c in contractors if c["uuid"] == contractor["uuid"]] == [
        (contractor["first_name"], contractor["last_name"], contractor["email"])]
    agents = ok(client.get("/api/agents/list", params={"action": "list", "limit": 200}))["data"]
    assert contractor["email"] != agent["email"] and agent["email"] in json.dumps(agents)


def plaintexts(server: LiveServer) -> dict[tuple[str, str], set[str]]:
    """Every plaintext value of every encrypted field, decrypted from the live store (JSON texts opened)."""
    store = server.sandbox.store
    out: dict[tuple[str, str], set[str]] = {}
    for table, fields in ENCRYPTED.items():
        for row in store.select(table):
            plain = store.reveal(table, row)
            for name in fields:
                values = out.setdefault((table, name), set())
                value = plain.get(name)
                if not isinstance(value, str) or not value:
                    continue
                values.add(value)
                if value[:1] in "[{":  # a JSON text (job_commits.changes): its strings are plaintext too
                    values.update(s for s in _strings(json.loads(value)) if s)
    return out


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def needles(value: str) -> set[bytes]:
    """The byte forms a plaintext copy of `value` would take: as a whole JSON string always; as a
    substring too when it is distinctive (long, with digits, '@' or spaces — single first names like
    "Green" legitimately occur inside street names)."""
    out = {json.dumps(value, ensure_ascii=False).encode(), json.dumps(value).encode()}
    if len(value) >= 8 and any(c.isdigit() or c in "@ " for c in value):
        out |= {value.encode(), json.dumps(value, ensure_ascii=False)[1:-1].encode(), json.dumps(value)[1:-1].encode()}
    return out


def locations(db: dict, value: str) -> set[tuple[str, str]]:
    return {(table, name) for table, rows in db.items() for row in rows.values() for name, v in row.items()
            if v == value}


def test_no_plaintext_of_any_encrypted_field_is_on_disk(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with LiveServer(Settings(seed=42, clock_start=CLOCK_START, data_dir=data)) as live:
        for email in ACCOUNTS:  # every demo account signs in (sessions are written); users read back decrypted
            user = store_user = live.sandbox.store.get("users", live.sandbox.auth.authenticate(
                "Bearer " + live.login(email)).user_id)
            answer = httpx.post(live.url + "/api/auth/login", json={"email": email, "password": "sandbox"}).json()
            assert answer["user"]["email"] == email == store_user["email"]
            assert answer["user"]["name"] == f"{user['first_name']} {user['last_name']}"
        with live.client(ADMIN) as client:
            ids = write_everything(client)
            store = live.sandbox.store
            job = store.find("jobs", JOB_1001)  # the note is e-mailed to its contractor and agent
            contractor, agent = store.get("contractors", job["contractor_id"]), store.get("agents", job["agent_id"])
            read_back(client, ids, contractor, agent)
        values = plaintexts(live)
        emails = [live.sandbox.store.reveal("emails", r) for r in live.sandbox.store.select("emails")]
    # E-mails have no read endpoint: the store decrypts the one the note sent (to the contractor and agent).
    sent = [e for e in emails if e["body"] == MARKERS["note"]]
    assert len(sent) == 1 and sent[0]["to"] == f"{contractor['email']}, {agent['email']}", emails

    for table, fields in DOCUMENTED.items():
        assert fields <= set(ENCRYPTED.get(table, ())), table
    for key in ((t, f) for t, fields in ENCRYPTED.items() for f in fields):
        assert values.get(key), f"{key}: nothing wrote or seeded this encrypted field; add a writer above"
    for name, marker in MARKERS.items():  # each marker is held sealed (but the overwritten tenant name)
        assert (name == "tenant") != any(marker in v for vs in values.values() for v in vs), marker

    files = {p: p.read_bytes() for p in data.rglob("*") if p.is_file() and p.name != "sandbox.key"}
    assert data / "propops.json" in files
    raw = files[data / "propops.json"]
    db = json.loads(raw)
    for table, fields in ENCRYPTED.items():  # every stored value of an encrypted field is ciphertext
        for row in db.get(table, {}).values():
            for name in fields:
                value = row.get(name)
                assert value is None or (isinstance(value, str) and value.startswith(PREFIX)), (table, name, value)

    leaks = []
    # Written by this test: never anywhere, in any form, not even in part (each core is distinctive enough
    # not to turn up by chance in base64 ciphertext).
    cores = {c for marker in MARKERS.values() for c in re.findall(r"(?i)qx7\w*?mark9", marker)}
    for needle in cores | {MARKERS["phone"], MARKERS["work"]}:
        for path, content in files.items():
            if needle.encode() in content:
                leaks.append((needle, path.name))
    for key, vs in values.items():
        for value in vs:
            for path, content in files.items():
                if not any(n in content for n in needles(value)):
                    continue
                where = locations(db, value) if path == data / "propops.json" else {("file", path.name)}
                if not where or not where <= COINCIDENCES:
                    leaks.append((key, value, path.name, sorted(where)))
    assert leaks == [], leaks[:10]
