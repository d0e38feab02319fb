"""Case notes over real HTTP: list, create (JSON, note_text, multipart attachments, send_email), update,
delete, the attachment list, scoping by role and organisation, archived jobs, bad input and CSRF."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from conftest import (
    ADMIN,
    AGENT,
    API,
    CONTRACTOR,
    JOB_1001,
    OTHER_ADMIN,
    STAFF,
    assert_envelope_headers,
    assert_error,
    frozen,
    job_where,
)

from sandbox import seed, seed_notes

PATH = "/api/jobs/case-notes"
ATTACHMENTS = "/api/jobs/case-note-attachments"
DOC_NOTE = "550e8400-e29b-41d4-a716-446655440050"
DOCUMENTED = {  # seed 002's list example, field for field
    "ID": 501, "uuid": DOC_NOTE, "job_id": 1001, "message": "Contractor attended site and completed boiler service.",
    "send_email": False, "attachments_count": 2, "created_at": "2024-06-01T14:00:00Z",
}


def notes(client, job_uuid=JOB_1001):
    r = client.get(PATH, params={"action": "list", "job_uuid": job_uuid})
    assert r.status_code == 200, r.text
    assert_envelope_headers(r)
    body = r.json()
    assert body["success"] is True and body["count"] == len(body["data"])
    return body["data"]


def create(client, **fields):
    return client.post(PATH, json={"job_uuid": JOB_1001, "message": "Tenant called about access.", **fields})


def created(client, **fields) -> str:
    r = create(client, **fields)
    assert r.status_code == 200, r.text
    return r.json()["note_uuid"]




def updated_at(server, job_id=1001):
    return server.sandbox.store.raw("jobs", job_id)["updated_at"]


# -- list ------------------------------------------------------------------------------------------

def test_documented_note_is_listed_with_its_author_and_attachments(admin):
    rows = notes(admin)
    assert len(rows) == 1
    row = rows[0]
    assert {k: row[k] for k in DOCUMENTED} == DOCUMENTED
    assert row["created_by_name"] == "Staff_001 Surname_001" and row["created_by"] == 7
    assert row["is_pinned"] is False and row["updated_at"] == "2024-06-01T14:00:00Z"


def test_note_text_is_encrypted_at_rest(server, admin):
    uuid = created(admin, message="Secret gate code is 4321.")
    raw = server.sandbox.store.raw_by_uuid("case_notes", uuid)
    assert "4321" not in raw["message"]
    assert server.sandbox.store.reveal("case_notes", raw)["message"] == "Secret gate code is 4321."


# -- create ----------------------------------------------------------------------------------------

def test_create_returns_note_id_at_top_level_and_moves_the_job(server, admin):
    now = frozen(server)
    r = create(admin, message="<p>Boiler <b>fixed</b></p>")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] is True and isinstance(body["note_id"], int) and body["note_id"] != 501
    assert body["message"] == "Case note created successfully"
    row = next(n for n in notes(admin) if n["ID"] == body["note_id"])
    assert row == {"ID": body["note_id"], "uuid": body["note_uuid"], "job_id": 1001, "created_by": 1,
                   "message": "<p>Boiler <b>fixed</b></p>", "created_by_name": "Sandbox Admin",
                   "send_email": False, "attachments_count": 0, "is_pinned": False, "created_at": now,
                   "updated_at": now}
    assert updated_at(server) == now
    assert server.sandbox.store.select("emails") == []  # send_email defaults to false


def test_create_accepts_the_reference_pages_note_text_and_action_create(admin):
    r = admin.post(PATH, json={"action": "create", "job_uuid": JOB_1001, "note_text": "Named note_text."})
    assert r.status_code == 200, r.text
    assert [n["message"] for n in notes(admin)][-1] == "Named note_text."


def test_send_email_mails_contractor_and_agent_with_a_threading_reply_to(server, admin):
    r = create(admin, message="Please confirm attendance.", send_email=True)
    assert r.status_code == 200, r.text
    store = server.sandbox.store
    [mail] = [store.reveal("emails", e) for e in store.select("emails")]
    assert mail["template"] == "case_note" and mail["job_id"] == 1001
    assert mail["to"] == "contractor001@example.com, agent001@example.com"
    assert "JOB-001" in mail["subject"] and mail["body"] == "Please confirm attendance."
    assert r.json()["note_uuid"] in mail["reply_to"] and mail["thread_id"] == r.json()["note_uuid"]
    assert "contractor001" not in store.select("emails")[0]["to"]  # recipients are encrypted at rest
    assert next(n for n in notes(admin) if n["ID"] == r.json()["note_id"])["send_email"] is True


def test_multipart_attachments_are_stored_and_listed(server, admin):
    files = [("attachments[]", ("report.pdf", b"%PDF-1.4 report", "application/pdf")),
             ("attachments[]", ("after.png", b"\x89PNG fake", "image/png"))]
    r = admin.post(PATH, data={"job_uuid": JOB_1001, "message": "Report attached."}, files=files)
    assert r.status_code == 200, r.text
    note_uuid = r.json()["note_uuid"]
    assert r.json()["attachments_count"] == 2
    assert next(n for n in notes(admin) if n["uuid"] == note_uuid)["attachments_count"] == 2

    listed = admin.get(ATTACHMENTS, params={"case_note_uuid": note_uuid})
    assert listed.status_code == 200, listed.text
    assert_envelope_headers(listed)
    rows = listed.json()["data"]
    assert [(a["file_name"], a["mime_type"], a["size"]) for a in rows] == \
        [("report.pdf", "application/pdf", 15), ("after.png", "image/png", 9)]
    assert all(a["url"] == f"/attachment/{a['uuid']}" and a["case_note_uuid"] == note_uuid for a in rows)
    stored = server.sandbox.store.raw_by_uuid("case_note_attachments", rows[0]["uuid"])
    assert server.sandbox.blobs.get(stored["blob"]) == b"%PDF-1.4 report"

    every = admin.get(ATTACHMENTS, params={"job_uuid": JOB_1001}).json()["data"]
    assert len(every) == 4 and sum(a["note_id"] == 501 for a in every) == 2  # the documented two, metadata only


def test_too_many_or_empty_files_are_refused_without_a_note(server, admin):
    store = server.sandbox.store
    before = store.count("case_notes"), store.count("case_note_attachments")
    files = [("attachments[]", (f"f{i}.txt", b"x", "text/plain")) for i in range(6)]
    r = admin.post(PATH, data={"job_uuid": JOB_1001, "message": "Too many."}, files=files)
    assert_error(r, 400, "attachments", "at most 5")
    empty = [("file", ("e.txt", b"", "text/plain"))]
    r = admin.post(PATH, data={"job_uuid": JOB_1001, "message": "Empty."}, files=empty)
    assert_error(r, 400, "attachments", "empty")
    assert (store.count("case_notes"), store.count("case_note_attachments")) == before


# -- update / delete ---------------------------------------------------------------------------------

def test_update_edits_text_and_pins_note_first(server, admin):
    uuid = created(admin, message="First draft.")
    now = frozen(server)
    r = admin.post(PATH, json={"action": "update", "uuid": uuid, "message": "Final text.", "is_pinned": True})
    assert r.status_code == 200, r.text
    rows = notes(admin)
    assert rows[0]["uuid"] == uuid and rows[0]["is_pinned"] is True  # pinned notes come first
    assert rows[0]["message"] == "Final text." and rows[0]["updated_at"] == now
    assert updated_at(server) == now
    r = admin.post(PATH, json={"action": "update", "uuid": uuid, "is_pinned": False})
    assert r.status_code == 200 and notes(admin)[0]["uuid"] == DOC_NOTE


def test_delete_removes_the_note_and_its_attachments(server, admin):
    r = admin.post(PATH, data={"job_uuid": JOB_1001, "message": "With file."},
                   files=[("file", ("a.txt", b"unique-bytes-for-delete", "text/plain"))])
    uuid = r.json()["note_uuid"]
    blob = server.sandbox.store.select("case_note_attachments", lambda a: a["note_id"] == r.json()["note_id"])[0]
    now = frozen(server)
    r = admin.post(PATH, json={"action": "delete", "uuid": uuid})
    assert r.status_code == 200, r.text
    assert [n["uuid"] for n in notes(admin)] == [DOC_NOTE]
    assert server.sandbox.store.raw_by_uuid("case_note_attachments", blob["uuid"]) is None
    assert server.sandbox.blobs.get(blob["blob"]) is None
    assert updated_at(server) == now
    assert_error(admin.get(ATTACHMENTS, params={"case_note_uuid": uuid}), 404, "Case note not found")
    assert_error(admin.post(PATH, json={"action": "delete", "uuid": uuid}), 404, "Case note not found")


def test_only_the_author_or_staff_may_change_a_note(server):
    with server.client(CONTRACTOR) as contractor, server.client(AGENT) as agent, server.client(STAFF) as staff:
        mine = created(contractor, message="Contractor's note.")
        assert_error(agent.post(PATH, json={"action": "update", "uuid": mine, "message": "x"}), 403, "author")
        assert_error(agent.post(PATH, json={"action": "delete", "uuid": mine}), 403, "author")
        assert_error(contractor.post(PATH, json={"action": "update", "uuid": DOC_NOTE, "message": "x"}), 403)
        r = contractor.post(PATH, json={"action": "update", "uuid": mine, "message": "Edited by me."})
        assert r.status_code == 200, r.text
        r = staff.post(PATH, json={"action": "update", "uuid": DOC_NOTE, "is_pinned": True})
        assert r.status_code == 200, r.text
        texts = {n["uuid"]: n["message"] for n in notes(agent)}
        assert texts[mine] == "Edited by me."
        assert next(n for n in notes(agent) if n["uuid"] == DOC_NOTE)["is_pinned"] is True
        assert staff.post(PATH, json={"action": "delete", "uuid": mine}).status_code == 200
        assert mine not in {n["uuid"] for n in notes(contractor)}


@pytest.mark.parametrize("email", [STAFF, API, AGENT, CONTRACTOR])
def test_each_role_can_read_and_write_notes_on_job_1001(server, email):
    with server.client(email) as client:
        uuid = created(client, message=f"Note by {email}")
        assert uuid in {n["uuid"] for n in notes(client)}


def test_jobs_outside_the_callers_scope_answer_404(server):
    outside_branch = job_where(server, lambda j: j["org_id"] == 1 and j["branch_id"] != 1 and j["status_id"] != 8)
    not_assigned = job_where(server, lambda j: j["org_id"] == 1 and j["contractor_id"] not in (20, None)
                             and j["status_id"] != 8)
    for email, job in ((AGENT, outside_branch), (CONTRACTOR, not_assigned), (OTHER_ADMIN, None)):
        uuid = job["uuid"] if job else JOB_1001
        with server.client(email) as client:
            assert_error(client.get(PATH, params={"action": "list", "job_uuid": uuid}), 404, "Job not found")
            assert_error(create(client, job_uuid=uuid), 404, "Job not found")
            assert_error(client.get(ATTACHMENTS, params={"job_uuid": uuid}), 404, "Job not found")
    with server.client(OTHER_ADMIN) as other:
        assert_error(other.post(PATH, json={"action": "update", "uuid": DOC_NOTE, "message": "x"}), 404,
                     "Case note not found")
        assert_error(other.get(ATTACHMENTS, params={"case_note_uuid": DOC_NOTE}), 404, "Case note not found")
    with server.client(ADMIN) as admin:
        assert notes(admin)[0]["message"] == DOCUMENTED["message"]


def test_archived_jobs_are_read_only(server, admin):
    job = job_where(server, lambda j: j["org_id"] == 1 and j["status_id"] == 8)
    note = server.sandbox.store.insert("case_notes", {
        "ID": None, "uuid": None, "org_id": 1, "job_id": job["ID"], "message": "Old note.", "created_by": 1,
        "send_email": False, "is_pinned": False, "created_at": job["created_at"], "updated_at": job["created_at"]})
    assert_error(create(admin, job_uuid=job["uuid"]), 403, "archived")
    assert_error(admin.post(PATH, json={"action": "update", "uuid": note["uuid"], "message": "x"}), 403, "archived")
    assert_error(admin.post(PATH, json={"action": "delete", "uuid": note["uuid"]}), 403, "archived")
    assert [n["message"] for n in notes(admin, job["uuid"]) if n["uuid"] == note["uuid"]] == ["Old note."]
    assert updated_at(server, job["ID"]) == job["updated_at"]


@pytest.mark.parametrize(("body", "field"), [
    ({"job_uuid": JOB_1001}, "message"),
    ({"job_uuid": JOB_1001, "message": "   "}, "message"),
    ({"message": "No job."}, "job_uuid"),
    ({"job_uuid": "not-a-uuid", "message": "x"}, "job_uuid"),
    ({"job_uuid": JOB_1001, "message": "x", "send_email": "maybe"}, "send_email"),
    ({"action": "update", "message": "x"}, "uuid"),
    ({"action": "update", "uuid": DOC_NOTE}, "message"),
    ({"action": "delete"}, "uuid"),
    ({"action": "archive", "uuid": DOC_NOTE}, "action"),
])
def test_bad_input_is_400_naming_the_field_and_changes_nothing(server, admin, body, field):
    before = server.sandbox.store.count("case_notes")
    assert_error(admin.post(PATH, json=body), 400, field)
    assert server.sandbox.store.count("case_notes") == before
    assert notes(admin)[0]["message"] == DOCUMENTED["message"]


def test_list_needs_job_uuid_and_attachments_need_a_key(admin, anon):
    assert_error(admin.get(PATH, params={"action": "list"}), 400, "job_uuid")
    assert_error(admin.get(ATTACHMENTS), 400, "case_note_uuid")
    assert_error(anon.get(ATTACHMENTS, params={"case_note_uuid": DOC_NOTE}), 401)
    rows = admin.get(ATTACHMENTS, params={"case_note_uuid": DOC_NOTE, "job_uuid": JOB_1001}).json()["data"]
    assert [a["file_name"] for a in rows] == ["boiler_service_report.pdf", "boiler_after_service.jpg"]


def test_writes_need_a_csrf_token(server):
    with server.client(ADMIN, csrf=False) as client:
        assert_error(create(client), 403, "CSRF")
        assert_error(client.post(PATH, json={"action": "update", "uuid": DOC_NOTE, "message": "x"}), 403, "CSRF")
        assert_error(client.post(PATH, json={"action": "delete", "uuid": DOC_NOTE}), 403, "CSRF")
        assert [n["uuid"] for n in notes(client)] == [DOC_NOTE]


def test_files_sent_with_update_are_ignored_and_closed(admin):
    r = admin.post(PATH, data={"action": "update", "uuid": DOC_NOTE, "is_pinned": "true"},
                   files=[("file", ("a.txt", b"ignored", "text/plain"))])
    assert r.status_code == 200, r.text
    assert notes(admin)[0]["is_pinned"] is True and notes(admin)[0]["attachments_count"] == 2


def test_seeded_notes_are_deterministic_capped_and_within_each_jobs_life():
    clock = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    tables = seed.build(7, clock, jobs=2000)
    again = seed_notes.build(tables, 7, clock)
    assert json.dumps(again) == json.dumps({k: tables[k] for k in ("case_notes", "case_note_attachments")})
    assert json.dumps(seed_notes.build(tables, 8, clock)) != json.dumps(again)
    notes_, files = again["case_notes"], again["case_note_attachments"]
    ids = [n["ID"] for n in notes_]
    assert ids == sorted(set(ids)) and ids.count(501) == 1
    assert len({n["uuid"] for n in notes_}) == len(notes_)
    jobs = {j["ID"]: j for j in tables["jobs"]}
    users = {u["ID"]: u for u in tables["users"]}
    per_job: dict[int, int] = {}
    for n in notes_:
        per_job[n["job_id"]] = per_job.get(n["job_id"], 0) + 1
        job = jobs[n["job_id"]]
        assert n["org_id"] == job["org_id"] == users[n["created_by"]]["org_id"]
        assert job["created_at"] <= n["created_at"] <= job["updated_at"]
    assert max(per_job.values()) <= 3 and 0.2 < len(per_job) / len(jobs) < 0.4
    assert per_job[1001] == 1
    note_ids = set(ids)
    assert all(f["note_id"] in note_ids and f["blob"] is None for f in files)
    assert [(f["note_id"], f["file_name"]) for f in files if f["job_id"] == 1001] == \
        [(501, "boiler_service_report.pdf"), (501, "boiler_after_service.jpg")]
