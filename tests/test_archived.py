"""Archived jobs are read-only everywhere: every write row under /api/jobs/ answers 403 for one, and the
job and everything attached to it stay as they were. The test walks the endpoint table, so a new write
endpoint without a case here fails it."""

from __future__ import annotations

import io
import json

import pytest
from conftest import assert_error
from PIL import Image

from sandbox.app import routes

# Pins belong to the user, not the job (README, fidelity notes); create makes a new job.
NOT_JOB_WRITES = {("POST", "/api/jobs/toggle-pin", None), ("POST", "/api/jobs/manage", "create")}


def _jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), "red").save(out, "JPEG")
    return out.getvalue()


def cases(job: dict, photo: dict, document: dict, other_uuid: str) -> dict:
    u, i = job["uuid"], job["ID"]
    upload = {"files": {"file": ("a.jpg", _jpeg(), "image/jpeg")}}
    return {
        ("POST", "/api/jobs/manage", "update"): {"json": {"uuid": u, "job_title": "x"}},
        ("POST", "/api/jobs/manage", "delete"): {"json": {"uuid": u}},
        ("POST", "/api/jobs/manage", "send_assignment_notification"): {"json": {"uuid": u}},
        ("POST", "/api/jobs/manage", "restore_commit"): {"json": {"uuid": u, "commit_id": 1}},
        ("POST", "/api/jobs/manage", "restore_archived_file"): {"json": {"uuid": u, "file_uuid": photo["uuid"]}},
        ("POST", "/api/jobs/case-notes", "create"): {"json": {"job_uuid": u, "message": "x"}},
        ("POST", "/api/jobs/photos", "upload"): {"data": {"job_id": str(i)}, **upload},
        ("POST", "/api/jobs/photos", "delete"): {"json": {"photo_uuid": photo["uuid"]}},
        ("DELETE", "/api/jobs/photos", None): {"json": {"id": photo["ID"]}},
        ("POST", "/api/jobs/documents", "upload"): {"data": {"job_id": str(i), "file_type_id": "1"}, **upload},
        ("POST", "/api/jobs/documents", "delete"): {"json": {"document_uuid": document["uuid"]}},
        ("DELETE", "/api/jobs/documents", None): {"json": {"document_id": document["ID"]}},
        ("POST", "/api/jobs/recall", None): {"json": {"job_uuid": u, "recall_reason": "x"}},
        ("POST", "/api/jobs/mark-recall-completed", None): {"json": {"job_uuid": u}},
        ("POST", "/api/jobs/amend-request", "create"): {"json": {"job_uuid": u, "field_name": "job_description",
                                                                 "requested_value": "x", "reason": "y"}},
        ("POST", "/api/jobs/approval-gate", None): {"json": {"job_uuid": u, "decision": "approve"}},
        ("POST", "/api/jobs/remedials", "link"): {"json": {"job_uuid": u, "remedials_job_uuid": other_uuid}},
        ("POST", "/api/jobs/remedials", "create"): {"json": {"parent_job_uuid": other_uuid,
                                                             "remedial_job_uuid": u}},
    }


# Writes that act on a record (a note, a request) which would have to exist on an archived job first:
# their archived checks are covered in the case-note and amendment tests.
ON_EXISTING_RECORDS = {
    ("POST", "/api/jobs/case-notes", "update"), ("POST", "/api/jobs/case-notes", "delete"),
    ("POST", "/api/jobs/amend-request", "approve"), ("POST", "/api/jobs/amend-request", "reject"),
    ("PATCH", "/api/jobs/amend-request", None), ("POST", "/api/jobs/remedials", "unlink"),
    ("POST", "/api/jobs/remedials", "delete"),
}


def _job_writes() -> set:
    return {(r.method, r.path, a) for r in routes().rows if r.method != "GET" and r.path.startswith("/api/jobs/")
            for a in (r.actions or (None,))}


def test_every_job_write_is_covered_here():
    known = set(cases({"uuid": "", "ID": 0}, {"uuid": "", "ID": 0}, {"uuid": "", "ID": 0}, "")) | ON_EXISTING_RECORDS
    assert _job_writes() - NOT_JOB_WRITES - known == set()


def test_every_write_to_an_archived_job_is_403_and_changes_nothing(server, admin):
    store = server.sandbox.store
    job = next(j for j in store.select("jobs") if j["status_id"] == 8 and j["org_id"] == 1
               and any(p["job_id"] == j["ID"] for p in store.select("photos"))
               and any(d["job_id"] == j["ID"] for d in store.select("documents")))
    photo = next(p for p in store.select("photos") if p["job_id"] == job["ID"])
    document = next(d for d in store.select("documents") if d["job_id"] == job["ID"])
    other = next(j for j in store.select("jobs") if j["org_id"] == 1 and j["status_id"] != 8 and j["ID"] != 1001)
    tables = ("jobs", "photos", "documents", "case_notes", "job_commits", "amend_requests", "remedials",
              "notifications", "emails", "job_recalls", "job_approvals")
    before = json.dumps({t: store.select(t) for t in tables}, sort_keys=True)
    for (method, path, action), request in cases(job, photo, document, other["uuid"]).items():
        if "json" in request and action:
            request = {"json": {"action": action, **request["json"]}}
        elif "data" in request:
            request = {**request, "data": {"action": action, **request["data"]}}
        r = admin.request(method, path, **request)
        assert_error(r, 403, "archived")
    assert json.dumps({t: store.select(t) for t in tables}, sort_keys=True) == before


@pytest.mark.parametrize("path", ["/api/jobs/manage", "/api/jobs/case-notes", "/api/jobs/photos"])
def test_reads_of_an_archived_job_still_work(server, admin, path):
    job = next(j for j in server.sandbox.store.select("jobs") if j["status_id"] == 8 and j["org_id"] == 1)
    params = {"/api/jobs/manage": {"action": "get", "uuid": job["uuid"]},
              "/api/jobs/case-notes": {"action": "list", "job_uuid": job["uuid"]},
              "/api/jobs/photos": {"job_id": job["ID"]}}[path]
    assert admin.get(path, params=params).status_code == 200
