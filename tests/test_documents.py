"""Job documents over real HTTP: list, download (bytes, type, filename), upload (content sniffing, file
types, 20 MB), delete/archive/restore, counts, thumbnails (sizes, SVG placeholder), roles, other org, CSRF."""

from __future__ import annotations

import io
import zipfile

import pytest
from conftest import AGENT, CONTRACTOR, JOB_1001, OTHER_ADMIN, STAFF, assert_envelope_headers, assert_error, job_where
from PIL import Image

PATH = "/api/jobs/documents"
THUMB = "/api/jobs/document-thumbnail"
MB = 1024 * 1024
DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


# -- files built here -----------------------------------------------------------------------------------

def pdf(text: str = "Gas Safety Certificate") -> bytes:
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>"]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 4\n0000000000 65535 f \n" + b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size 4 /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n%% %s\n" % (xref, text.encode())
    return bytes(out)


def docx(text: str = "Quote for works") -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        archive.writestr("word/document.xml", f'<?xml version="1.0"?><w:document><w:t>{text}</w:t></w:document>')
    return out.getvalue()


def image(kind: str = "PNG", size=(1200, 900)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (10, 160, 90)).save(out, kind)
    return out.getvalue()


def upload(client, data: bytes, name="certificate.pdf", ctype="application/pdf", **fields):
    form = {"action": "upload", "job_id": "1001", "file_type_id": "3", **{k: str(v) for k, v in fields.items()}}
    form = {k: v for k, v in form.items() if v != "None"}
    return client.post(PATH, data=form, files={"file": (name, data, ctype)})


def documents(client, **params) -> dict:
    r = client.get(PATH, params={"action": "list", "job_id": 1001, **params})
    assert r.status_code == 200, r.text
    assert_envelope_headers(r)
    body = r.json()
    assert body["success"] is True and body["count"] == len(body["data"])
    return body


def count(client, uuid=JOB_1001) -> int:
    r = client.get("/api/jobs/manage", params={"action": "get", "uuid": uuid})
    assert r.status_code == 200, r.text
    return r.json()["data"]["documents_count"]


def download(client, uuid: str):
    return client.get(PATH, params={"action": "download", "uuid": uuid})


def thumb(client, uuid: str, **params):
    return client.get(THUMB, params={"uuid": uuid, **params})



# -- seeded ------------------------------------------------------------------------------------------------

def test_seeded_document_is_listed_downloadable_and_counted(server, admin):
    body = documents(admin)
    assert body["count"] == 1 == count(admin)
    doc = body["data"][0]
    assert doc["url"] == f"/attachment/{doc['uuid']}" and "blob" not in doc and "org_id" not in doc
    assert doc["file_type_name"] == server.sandbox.store.raw("file_types", doc["file_type_id"])["name"]
    assert documents(admin, job_id=None, job_uuid=JOB_1001)["data"] == body["data"]
    r = download(admin, doc["uuid"])
    assert r.status_code == 200 and r.headers["content-type"].startswith(doc["mime_type"])
    assert r.headers["content-disposition"] == f'attachment; filename="{doc["file_name"]}"'
    assert r.content.startswith(b"%PDF-") and r.content.rstrip().endswith(b"%%EOF")  # a placeholder PDF
    assert download(admin, doc["uuid"]).content == r.content  # deterministic
    store = server.sandbox.store
    live: dict[int, int] = {}
    for row in store.select("documents"):
        live[row["job_id"]] = live.get(row["job_id"], 0) + (not row.get("archived"))
    assert all(job["documents_count"] == live.get(job["ID"], 0) for job in store.select("jobs"))


def test_seeded_docx_and_image_documents_download_as_valid_files(server, admin):
    store = server.sandbox.store
    for mime in (DOCX_MIME, "image/jpeg"):
        row = store.select("documents", lambda r, m=mime: r["mime_type"] == m and r["org_id"] == 1)[0]
        r = download(admin, row["uuid"])
        assert r.status_code == 200, r.text
        if mime == DOCX_MIME:
            assert "word/document.xml" in zipfile.ZipFile(io.BytesIO(r.content)).namelist()
        else:
            assert Image.open(io.BytesIO(r.content)).size == (row["width"], row["height"])


# -- upload and download -----------------------------------------------------------------------------------

def test_pdf_upload_round_trips_byte_for_byte(server, admin):
    data = pdf()
    r = upload(admin, data, "../../etc/Gas Safety.pdf", file_type_id=3)
    assert r.status_code == 200, r.text
    doc = r.json()["data"]
    assert doc["file_name"] == "Gas Safety.pdf" and doc["mime_type"] == "application/pdf"
    assert doc["size"] == doc["original_size"] == len(data) and doc["file_type_name"] == "Certificate"
    assert doc["extension"] == "pdf" and doc["uploaded_by"] == 1 and "blob" not in doc
    listed = documents(admin)
    assert doc["uuid"] in {d["uuid"] for d in listed["data"]} and listed["count"] == 2 == count(admin)
    assert server.sandbox.store.raw("jobs", 1001)["documents_count"] == 2
    r = download(admin, doc["uuid"])
    assert r.status_code == 200 and r.content == data
    assert r.headers["content-type"] == "application/pdf"
    assert r.headers["content-disposition"] == 'attachment; filename="Gas Safety.pdf"'


def test_docx_by_reference_field_names_with_a_non_ascii_name(admin):
    data = docx()
    r = admin.post(PATH, data={"action": "upload", "job_uuid": JOB_1001, "document_type_id": "2"},
                   files={"file": ("Devis façade.docx", data, "application/octet-stream")})
    assert r.status_code == 200, r.text
    doc = r.json()["data"]
    assert doc["mime_type"] == DOCX_MIME and doc["file_type_id"] == 2 and doc["file_name"] == "Devis façade.docx"
    r = download(admin, doc["uuid"])
    assert r.content == data and r.headers["content-type"] == DOCX_MIME
    assert r.headers["content-disposition"] == (
        "attachment; filename=\"Devis fa_ade.docx\"; filename*=UTF-8''Devis%20fa%C3%A7ade.docx")
    svg = thumb(admin, doc["uuid"])
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    assert b"DOCX" in svg.content and b'width="200"' in svg.content


def test_a_png_named_pdf_is_stored_as_sent_and_called_a_png(server, admin):
    data = image("PNG")
    doc = upload(admin, data, "scan.pdf", "application/pdf").json()["data"]
    assert doc["mime_type"] == "image/png" and doc["file_name"] == "scan.png"
    assert (doc["width"], doc["height"]) == (1200, 900)
    r = download(admin, doc["uuid"])
    assert r.content == data and r.headers["content-type"] == "image/png"  # documents are not recompressed


@pytest.mark.parametrize(("data", "name", "words"), [
    (b"Dear landlord, please find attached", "letter.pdf", ["file", "PDF, DOCX, JPEG, PNG"]),
    (b"\0\0\0\x18ftypisom\0\0\x02\0isomiso2" + b"\0" * 64, "video.pdf", ["file", "MP4"]),
    (b"PK\x03\x04" + b"\0" * 60, "broken.docx", ["file"]),
    (b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "broken.png", ["file", "image"]),
    (b"", "empty.pdf", ["file", "empty"]),
])
def test_files_that_are_not_allowed_by_content_are_refused(server, admin, data, name, words):
    assert_error(upload(admin, data, name), 400, *words)
    assert documents(admin)["count"] == 1 == count(admin)


def test_a_zip_that_is_not_a_word_document_is_refused(admin):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("notes.txt", "hello")
    assert_error(upload(admin, out.getvalue(), "notes.docx"), 400, "file")


def test_file_type_must_be_given_and_exist(server, admin):
    assert_error(upload(admin, pdf(), file_type_id=None), 400, "file_type_id")
    assert_error(upload(admin, pdf(), file_type_id=99), 400, "file_type_id", "99")
    assert_error(upload(admin, pdf(), file_type_id=None, document_type_id=77), 400, "document_type_id")
    assert_error(upload(admin, pdf(), file_type_id="abc"), 400, "file_type_id")
    assert documents(admin)["count"] == 1 == count(admin)


def test_twenty_megabytes_per_file(server, admin):
    blobs = len(server.sandbox.blobs._memory)
    assert_error(upload(admin, b"%PDF-1.4\n" + b"\0" * (20 * MB - 8)), 413, "20 MB", "file")
    assert_error(upload(admin, b"%PDF-1.4\n" + b"\0" * (21 * MB)), 413, "20 MB")
    assert documents(admin)["count"] == 1 == count(admin) and len(server.sandbox.blobs._memory) == blobs


# -- thumbnails ---------------------------------------------------------------------------------------------

def test_image_thumbnails_are_jpegs_of_the_requested_size(admin):
    doc = upload(admin, image("JPEG", (1200, 900)), "photo.jpg", "image/jpeg", file_type_id=5).json()["data"]
    for size, expected in ((50, (50, 38)), (500, (500, 375)), (None, (200, 150))):
        r = thumb(admin, doc["uuid"], **({"size": size} if size else {}))
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
        assert "max-age=31536000" in r.headers["cache-control"]
        shot = Image.open(io.BytesIO(r.content))
        assert shot.format == "JPEG" and shot.size == expected
    small = upload(admin, image("PNG", (40, 80)), "tiny.png", "image/png").json()["data"]
    assert Image.open(io.BytesIO(thumb(admin, small["uuid"], size=100).content)).size == (50, 100)


@pytest.mark.parametrize("size", [49, 501, 0, "big"])
def test_thumbnail_size_out_of_range_is_400(admin, size):
    doc = documents(admin)["data"][0]
    assert_error(thumb(admin, doc["uuid"], size=size), 400, "size")


def test_pdf_and_unreadable_files_get_the_svg_placeholder(server, admin):
    doc = upload(admin, pdf()).json()["data"]
    r = thumb(admin, doc["uuid"], size=64)
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg+xml")
    assert b"PDF" in r.content and b'width="64"' in r.content and r.content.startswith(b"<svg")
    png_doc = upload(admin, image("PNG"), "x.png", "image/png").json()["data"]
    server.sandbox.blobs._memory[server.sandbox.store.raw_by_uuid("documents", png_doc["uuid"])["blob"]] = b"junk"
    r = thumb(admin, png_doc["uuid"], size=77)
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg+xml") and b"PNG" in r.content


def test_thumbnail_of_a_missing_or_hidden_document_is_404(server, admin):
    assert_error(thumb(admin, "a1b2c3d4-e5f6-7890-abcd-ef0123456789"), 404, "not found")
    assert_error(admin.get(THUMB), 400, "uuid")
    doc = documents(admin)["data"][0]
    with server.client(OTHER_ADMIN) as other:
        assert_error(thumb(other, doc["uuid"]), 404, "not found")


# -- delete, archive, restore ----------------------------------------------------------------------------------

def test_delete_archives_by_all_three_forms_and_restore_brings_it_back(server, admin):
    server.sandbox.clock.freeze()
    seeded = documents(admin)["data"][0]
    one, two = (upload(admin, pdf(f"doc {n}")).json()["data"] for n in (1, 2))
    assert count(admin) == 3
    r = admin.post(PATH, data={"action": "delete", "job_uuid": JOB_1001, "document_uuid": one["uuid"]})
    assert r.status_code == 200 and r.json()["success"] is True
    assert admin.post(PATH, json={"action": "delete", "document_id": two["ID"]}).status_code == 200
    assert admin.request("DELETE", PATH, json={"document_id": seeded["ID"]}).status_code == 200
    assert documents(admin)["count"] == 0 == count(admin)
    row = server.sandbox.store.raw_by_uuid("documents", seeded["uuid"])
    assert row["archived"] is True and row["archived_at"] == server.sandbox.clock.iso()
    assert_error(download(admin, one["uuid"]), 404, "Document not found")
    assert_error(admin.request("DELETE", PATH, json={"document_id": seeded["ID"]}), 404, "Document not found")
    r = admin.post("/api/jobs/manage", json={"action": "restore_archived_file", "uuid": JOB_1001,
                                             "file_uuid": one["uuid"]})
    assert r.status_code == 200, r.text
    assert [d["uuid"] for d in documents(admin)["data"]] == [one["uuid"]] and count(admin) == 1
    assert download(admin, one["uuid"]).content == pdf("doc 1")


def test_archived_jobs_refuse_uploads_and_deletes(server, admin):
    job = job_where(server, lambda j: j["org_id"] == 1 and j["status_id"] == 8 and j["documents_count"] > 0)
    doc = documents(admin, job_id=job["ID"])["data"][0]
    assert_error(upload(admin, pdf(), job_id=job["ID"]), 403, "archived")
    assert_error(admin.post(PATH, data={"action": "delete", "document_uuid": doc["uuid"]}), 403, "archived")
    assert_error(admin.request("DELETE", PATH, json={"document_id": doc["ID"]}), 403, "archived")
    assert documents(admin, job_id=job["ID"])["count"] == job["documents_count"]
    assert download(admin, doc["uuid"]).status_code == 200  # reading is still fine


# -- who may --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("email", [STAFF, AGENT, CONTRACTOR])
def test_roles_on_a_job_they_see(server, email):
    with server.client(email) as client:
        doc = upload(client, pdf()).json()["data"]
        assert documents(client)["count"] == 2
        assert download(client, doc["uuid"]).content == pdf()
        assert thumb(client, doc["uuid"]).status_code == 200
        assert client.request("DELETE", PATH, json={"document_id": doc["ID"]}).status_code == 200
        assert count(client) == 1


@pytest.mark.parametrize(("email", "hidden"), [
    (AGENT, lambda j: j["org_id"] == 1 and j["branch_id"] != 1 and j["documents_count"] > 0),
    (CONTRACTOR, lambda j: j["org_id"] == 1 and j["contractor_id"] != 20 and j["documents_count"] > 0),
    (OTHER_ADMIN, lambda j: j["ID"] == 1001),
])
def test_jobs_outside_the_callers_scope_answer_404(server, email, hidden):
    job = job_where(server, hidden)
    doc = server.sandbox.store.select("documents", lambda r: r["job_id"] == job["ID"])[0]
    with server.client(email) as client:
        assert_error(client.get(PATH, params={"action": "list", "job_id": job["ID"]}), 404, "Job not found")
        assert_error(upload(client, pdf(), job_id=job["ID"]), 404, "Job not found")
        assert_error(download(client, doc["uuid"]), 404, "Document not found")
        assert_error(client.request("DELETE", PATH, json={"document_id": doc["ID"]}), 404, "Document not found")
    assert server.sandbox.store.raw("jobs", job["ID"])["documents_count"] == job["documents_count"]


def test_writes_without_csrf_are_refused(server):
    with server.client(csrf=False) as client:
        doc = documents(client)["data"][0]
        assert_error(upload(client, pdf()), 403, "CSRF")
        assert_error(client.request("DELETE", PATH, json={"document_id": doc["ID"]}), 403, "CSRF")
        assert_error(client.post(PATH, json={"action": "delete", "document_uuid": doc["uuid"]}), 403, "CSRF")
        assert documents(client)["count"] == 1 == count(client)


# -- bad input ------------------------------------------------------------------------------------------------

def test_bad_inputs_name_the_field_and_change_nothing(server, admin):
    before = server.sandbox.store.count("documents")
    assert_error(admin.get(PATH, params={"job_id": 1001}), 400, "action")
    assert_error(admin.get(PATH, params={"action": "list"}), 400, "job_id")
    assert_error(admin.get(PATH, params={"action": "list", "job_uuid": "nope"}), 400, "job_uuid")
    assert_error(admin.get(PATH, params={"action": "download"}), 400, "uuid")
    assert_error(download(admin, "a1b2c3d4-e5f6-7890-abcd-ef0123456789"), 404, "Document not found")
    assert_error(admin.post(PATH, data={"action": "upload", "job_id": "1001", "file_type_id": "1"}), 400, "file")
    assert_error(admin.post(PATH, json={"action": "delete"}), 400, "document_uuid")
    assert_error(admin.request("DELETE", PATH, json={}), 400, "document_id")
    assert_error(admin.request("DELETE", PATH, json={"document_id": -3}), 400, "document_id")
    assert server.sandbox.store.count("documents") == before and count(admin) == 1



def test_another_organisations_custom_document_type_is_neither_listed_nor_accepted(server, admin):
    """Custom types (POST /api/admin/document-types) belong to their organisation."""
    with server.client(OTHER_ADMIN) as other:
        made = other.post("/api/admin/document-types", json={"action": "create", "type_name": "Other Org Only"})
        assert made.status_code == 200, made.text
        theirs = made.json()["document_type_id"]
        listed = other.get("/api/jobs/manage", params={"action": "get_file_types"}).json()["data"]
        assert theirs in [t["ID"] for t in listed]
    mine = admin.get("/api/jobs/manage", params={"action": "get_file_types"}).json()["data"]
    assert theirs not in [t["ID"] for t in mine] and "Other Org Only" not in str(mine)
    before = server.sandbox.store.count("documents")
    assert_error(upload(admin, pdf(), file_type_id=theirs), 400, "file_type_id")
    assert server.sandbox.store.count("documents") == before
