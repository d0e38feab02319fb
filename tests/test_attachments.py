"""GET /attachment/{uuid} and /thumbnail: the bytes behind the list URLs, with plain-text errors."""

from __future__ import annotations

import io

import pytest
from conftest import AGENT, CLOCK_START, CONTRACTOR, JOB_1001, OTHER_ADMIN
from PIL import Image
from test_photos import jpeg, upload

from sandbox import Settings
from sandbox.testing import LiveServer


def photo_rows(client, job_id=1001):
    body = client.get("/api/jobs/photos", params={"job_id": job_id}).json()
    return [row for rows in body["data"].values() for row in rows]


def plain_error(r, status, text):
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("text/plain") and r.text == text
    assert "X-RateLimit-Remaining" in r.headers and "X-Response-Time-ms" in r.headers


def test_an_uploaded_photo_downloads_at_its_url_and_has_a_thumbnail(admin):
    uuid = upload(admin, jpeg(1200, 900), name="boiler.jpg").json()["data"]["uuid"]
    row = next(r for r in photo_rows(admin) if r["uuid"] == uuid)
    assert row["url"] == f"/attachment/{uuid}"
    r = admin.get(row["url"])
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert 'filename="boiler.jpg"' in r.headers["content-disposition"]
    assert Image.open(io.BytesIO(r.content)).size == (1200, 900)
    thumb = admin.get(row["url"] + "/thumbnail")
    assert thumb.headers["content-type"] == "image/jpeg"
    assert max(Image.open(io.BytesIO(thumb.content)).size) == 200


def test_seeded_documents_and_note_attachments_download(admin):
    docs = admin.get("/api/jobs/documents", params={"action": "list", "job_id": 1001}).json()["data"]
    r = admin.get(f"/attachment/{docs[0]['uuid']}")
    assert r.status_code == 200 and r.headers["content-type"] == docs[0]["mime_type"] and r.content
    notes = admin.get("/api/jobs/case-note-attachments", params={"job_uuid": JOB_1001}).json()["data"]
    assert notes
    for attachment in notes:
        assert admin.get(attachment["url"]).status_code == 200
    pdf = next(a for a in notes if a["file_name"].endswith(".pdf"))
    whole = admin.get(pdf["url"]).content
    assert whole.startswith(b"%PDF") and admin.get(pdf["url"] + "/thumbnail").content == whole  # not an image


def test_errors_are_plain_text_as_documented(server, admin, anon):
    uuid = photo_rows(admin)[0]["uuid"]
    plain_error(admin.get("/attachment/not-a-uuid"), 400, "Invalid or missing required parameter: uuid "
                "(must be a UUID like 550e8400-e29b-41d4-a716-446655440001)")
    plain_error(admin.get("/attachment/00000000-0000-4000-8000-000000000000"), 404, "Attachment not found")
    plain_error(anon.get(f"/attachment/{uuid}"), 401, "Authentication required. Please log in.")
    with server.client(OTHER_ADMIN) as other:
        plain_error(other.get(f"/attachment/{uuid}"), 404, "Attachment not found")
    assert admin.get("/attachment/").status_code == 404


def test_scoping_inside_the_organisation_is_403(server, admin):
    store = server.sandbox.store
    elsewhere = next(p for p in store.select("photos") if store.raw("jobs", p["job_id"])["branch_id"] != 1
                     and store.raw("jobs", p["job_id"])["contractor_id"] != 20
                     and store.raw("jobs", p["job_id"])["org_id"] == 1)
    for email in (AGENT, CONTRACTOR):
        with server.client(email) as client:
            plain_error(client.get(f"/attachment/{elsewhere['uuid']}"), 403,
                        "You do not have permission to download this attachment")
            assert client.get(f"/attachment/{photo_rows(client)[0]['uuid']}").status_code == 200


def test_a_deleted_photo_is_gone_until_restored(admin):
    uuid = upload(admin, jpeg()).json()["data"]["uuid"]
    assert admin.post("/api/jobs/photos", data={"action": "delete", "photo_uuid": uuid}).status_code == 200
    plain_error(admin.get(f"/attachment/{uuid}"), 404, "Attachment not found")
    r = admin.post("/api/jobs/manage", json={"action": "restore_archived_file", "uuid": JOB_1001, "file_uuid": uuid})
    assert r.status_code == 200 and admin.get(f"/attachment/{uuid}").status_code == 200


@pytest.mark.parametrize("path", ["/attachment/{uuid}", "/attachment/{uuid}/thumbnail"])
def test_listed_as_documented_endpoints(server, path):
    assert any(r.path == path and r.permission == "api.system.attachment.view" for r in server.app.routes.rows)


def test_the_per_ip_limit_and_unknown_paths_answer_attachments_in_plain_text_too():
    """The per-IP 429 is decided before the route is known; under /attachment/ it is still plain text."""
    with LiveServer(Settings(seed=42, clock_start=CLOCK_START, rate_limit=10)) as live, live.client() as admin:
        uuid = photo_rows(admin)[0]["uuid"]
        answers = [admin.get(f"/attachment/{uuid}") for _ in range(12)]
    assert answers[0].status_code == 200
    limited = answers[-1]
    assert limited.status_code == 429 and limited.headers["content-type"].startswith("text/plain")
    assert "Rate limit exceeded" in limited.text and int(limited.headers["Retry-After"]) > 0
    assert not limited.text.lstrip().startswith("{")
