"""Job photos over real HTTP: list grouped by type, upload (content sniffing, compression, EXIF, 20 MB),
delete/archive/restore, counts, video variants on the sandbox clock, roles, other org, CSRF, bad input."""

from __future__ import annotations

import io
import os
import select
import socket
import struct
import time

import pytest
from conftest import AGENT, CONTRACTOR, JOB_1001, OTHER_ADMIN, STAFF, assert_envelope_headers, assert_error, job_where
from PIL import Image

PATH = "/api/jobs/photos"
MB = 1024 * 1024
GROUPS = ["before", "during", "after", "other"]


# -- files built here -----------------------------------------------------------------------------------

def jpeg(width=800, height=600, *, noisy=False, exif=None, quality=90) -> bytes:
    image = Image.frombytes("RGB", (width, height), os.urandom(width * height * 3)) if noisy \
        else Image.new("RGB", (width, height), (30, 120, 200))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality, **({"exif": exif.tobytes()} if exif is not None else {}))
    return out.getvalue()


def png(width=640, height=480) -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", (width, height), (200, 30, 30, 128)).save(out, "PNG")
    return out.getvalue()


def box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def mp4(width: int | None = 1280, height: int | None = 720, seconds: float = 10.0) -> bytes:
    """ftyp + moov(mvhd, trak(tkhd)) + a little mdat: enough to be recognised and measured."""
    mvhd = box(b"mvhd", b"\0" * 4 + struct.pack(">IIII", 0, 0, 1000, int(seconds * 1000)) + b"\0" * 80)
    moov = mvhd
    if width:
        tkhd = box(b"tkhd", b"\0\0\0\x03" + b"\0" * 76 + struct.pack(">II", width << 16, height << 16))
        moov += box(b"trak", tkhd)
    return box(b"ftyp", b"isom\0\0\x02\0isomiso2avc1mp41") + box(b"moov", moov) + box(b"mdat", b"\0" * 2048)


def upload(client, data: bytes, name="photo.jpg", *, field="file", ctype="image/jpeg", **fields):
    form = {"action": "upload", "job_id": "1001", **{k: str(v) for k, v in fields.items()}}
    form = {k: v for k, v in form.items() if v != "None"}
    return client.post(PATH, data=form, files={field: (name, data, ctype)})


def photos(client, **params) -> dict:
    r = client.get(PATH, params=params or {"job_id": 1001})
    assert r.status_code == 200, r.text
    assert_envelope_headers(r)
    body = r.json()
    assert body["success"] is True and list(body["data"]) == GROUPS
    assert body["count"] == sum(len(rows) for rows in body["data"].values())
    return body


def uuids(body: dict) -> set[str]:
    return {p["uuid"] for rows in body["data"].values() for p in rows}


def job_counts(client, uuid=JOB_1001) -> int:
    r = client.get("/api/jobs/manage", params={"action": "get", "uuid": uuid})
    assert r.status_code == 200, r.text
    return r.json()["data"]["photos_count"]


def stored(server, uuid: str) -> dict:
    return server.sandbox.store.raw_by_uuid("photos", uuid)



# -- list and seed ----------------------------------------------------------------------------------------

def test_seeded_photos_are_listed_grouped_by_type_and_match_every_count(server, admin):
    body = photos(admin)
    assert body["count"] == 3 == job_counts(admin)
    for group, rows in body["data"].items():
        for photo in rows:
            assert photo["photo_type"] == group and photo["job_id"] == 1001
            assert photo["url"] == f"/attachment/{photo['uuid']}" and photo["mime_type"] in ("image/jpeg", "image/png")
            assert "blob" not in photo and "org_id" not in photo
    assert photos(admin, action="list", job_uuid=JOB_1001)["data"] == body["data"]  # the reference variant
    store = server.sandbox.store
    live: dict[int, int] = {}
    for row in store.select("photos"):
        live[row["job_id"]] = live.get(row["job_id"], 0) + (not row.get("archived"))
    assert all(job["photos_count"] == live.get(job["ID"], 0) for job in store.select("jobs"))
    every = [r["uuid"] for t in ("photos", "documents") for r in store.select(t)]
    assert len(set(every)) == len(every)


def test_seeded_photo_has_a_placeholder_thumbnail(admin):
    photo = next(p for rows in photos(admin)["data"].values() for p in rows)
    r = admin.get("/api/jobs/document-thumbnail", params={"uuid": photo["uuid"], "size": 120})
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert max(Image.open(io.BytesIO(r.content)).size) == 120


# -- upload -------------------------------------------------------------------------------------------------

def test_big_noisy_jpeg_is_downscaled_recompressed_and_loses_its_exif(server, admin):
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "TestCam", "Model X"
    original = jpeg(3000, 2000, noisy=True, exif=exif, quality=95)
    assert Image.open(io.BytesIO(original)).getexif()[0x010F] == "TestCam"
    r = upload(admin, original, "site/visit.jpg", photo_type="after")
    assert r.status_code == 200, r.text
    photo = r.json()["data"]
    assert photo["original_size"] == len(original) and photo["size"] < len(original)
    assert (photo["width"], photo["height"]) == (2560, 1707) and photo["file_name"] == "visit.jpg"
    assert photo["photo_type"] == "after" and photo["media_type"] == "image" and "blob" not in photo
    row = stored(server, photo["uuid"])
    data = server.sandbox.blobs.get(row["blob"])
    assert len(data) == row["stored_size"] == photo["size"]
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG" and image.size == (2560, 1707)
    assert "exif" not in image.info and not dict(image.getexif())
    body = photos(admin)
    assert photo["uuid"] in {p["uuid"] for p in body["data"]["after"]}
    assert body["count"] == 4 == job_counts(admin) == server.sandbox.store.raw("jobs", 1001)["photos_count"]


def test_exif_orientation_is_applied_before_it_is_stripped(admin):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    photo = upload(admin, jpeg(200, 100, exif=exif)).json()["data"]
    assert (photo["width"], photo["height"]) == (100, 200)


def test_png_is_recognised_by_content_under_the_reference_field_and_job_uuid(server, admin):
    data = png()
    r = admin.post(PATH, data={"action": "upload", "job_uuid": JOB_1001},
                   files={"photo": ("scan.pdf", data, "application/pdf")})
    assert r.status_code == 200, r.text
    photo = r.json()["data"]
    assert photo["mime_type"] == "image/png" and photo["file_name"] == "scan.png"
    assert photo["photo_type"] == "other" and (photo["width"], photo["height"]) == (640, 480)
    image = Image.open(io.BytesIO(server.sandbox.blobs.get(stored(server, photo["uuid"])["blob"])))
    assert image.format == "PNG" and image.mode == "RGBA"
    assert photo["uuid"] in {p["uuid"] for p in photos(admin)["data"]["other"]}


@pytest.mark.parametrize(("data", "name", "ctype", "words"), [
    (b"just some text, honestly", "holiday.jpg", "image/jpeg", ["file", "JPEG, PNG, MP4"]),
    (b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\n", "photo.jpg", "image/jpeg", ["file", "PDF"]),
    (b"\xff\xd8\xff\xe0" + b"\x00\x10JFIF" + b"garbage" * 50, "broken.jpg", "image/jpeg", ["file", "image"]),
    (b"\x89PNG\r\n\x1a\n" + b"\0" * 40, "broken.png", "image/png", ["file"]),
    (box(b"ftyp", b"heic\0\0\0\0mif1heic") + b"\0" * 64, "photo.heic", "image/heic", ["file"]),
])
def test_files_that_are_not_jpeg_png_or_mp4_by_content_are_refused(server, admin, data, name, ctype, words):
    before = server.sandbox.store.count("photos")
    assert_error(upload(admin, data, name, ctype=ctype), 400, *words)
    assert server.sandbox.store.count("photos") == before and photos(admin)["count"] == 3 == job_counts(admin)


def test_twenty_megabytes_is_the_limit_per_file(server, admin):
    before = server.sandbox.store.count("photos")
    over = b"\xff\xd8\xff" + b"\0" * (20 * MB - 2)  # one byte over 20 MB, inside the multipart allowance
    assert_error(upload(admin, over, "big.jpg"), 413, "20 MB", "file")
    exactly = b"\0" * (20 * MB)  # at the limit: past the size check, refused for what it is
    assert_error(upload(admin, exactly, "big.jpg"), 400, "file")
    started = time.monotonic()
    assert_error(upload(admin, b"\0" * (21 * MB), "bigger.jpg"), 413, "20 MB")  # Content-Length says it all
    assert time.monotonic() - started < 10
    assert server.sandbox.store.count("photos") == before and job_counts(admin) == 3


def test_a_chunked_upload_without_content_length_is_cut_off_early(server, admin):
    token, csrf = admin.headers["authorization"], admin.headers["x-csrf-token"]
    head = (f"POST {PATH} HTTP/1.1\r\nHost: sandbox\r\nAuthorization: {token}\r\nX-CSRF-Token: {csrf}\r\n"
            "Content-Type: multipart/form-data; boundary=XyZ\r\nTransfer-Encoding: chunked\r\n\r\n").encode()
    first = (b'--XyZ\r\nContent-Disposition: form-data; name="action"\r\n\r\nupload\r\n'
             b'--XyZ\r\nContent-Disposition: form-data; name="job_id"\r\n\r\n1001\r\n'
             b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="endless.jpg"\r\n\r\n\xff\xd8\xff')
    block = b"%x\r\n%s\r\n" % (MB, b"\0" * MB)
    sent, started = 0, time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head + b"%x\r\n%s\r\n" % (len(first), first))
        for _ in range(200):  # offers 200 MB; the server must answer long before
            if select.select([sock], [], [], 0)[0]:
                break
            try:
                sock.sendall(block)
            except OSError:
                break
            sent += MB
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"20 MB" in answer and sent < 60 * MB and time.monotonic() - started < 10
    assert job_counts(admin) == 3


# -- video -------------------------------------------------------------------------------------------------

def test_mp4_is_processing_then_has_variants_no_larger_than_the_source(server, admin):
    server.sandbox.clock.freeze()
    r = upload(admin, mp4(1280, 720, 12.0), "walkthrough.mp4", ctype="video/mp4", photo_type="during")
    assert r.status_code == 200, r.text
    video = r.json()["data"]
    assert video["media_type"] == "video" and video["mime_type"] == "video/mp4"
    assert (video["width"], video["height"], video["duration"]) == (1280, 720, 12.0)
    assert video["size"] == video["original_size"] == len(mp4(1280, 720, 12.0))  # videos are stored as sent

    def variants():
        r = admin.get("/api/jobs/video-variants", params={"uuid": video["uuid"]})
        assert r.status_code == 200, r.text
        assert_envelope_headers(r)
        return r.json()

    early = variants()
    assert early["success"] is True and early["uuid"] == video["uuid"]
    assert early["original"] == {"url": f"/attachment/{video['uuid']}", "size": video["size"],
                                 "path": f"uploads/jobs/videos/{video['uuid'][:8]}.mp4"}
    assert (early["processing_status"], early["processed"], early["variants"]) == ("processing", False, [])
    assert early["processed_at"] is None and early["thumbnail"] is None
    server.sandbox.clock.advance(29)
    assert variants()["processing_status"] == "processing"
    server.sandbox.clock.advance(2)
    done = variants()
    assert (done["processing_status"], done["processed"]) == ("completed", True)
    assert done["processed_at"] == "2026-11-01T09:00:30Z" and done["thumbnail"].endswith("_thumb.jpg")
    assert list(done["variants"]) == ["720p", "480p", "360p"]
    assert done["variants"]["720p"] == {
        "url": f"/uploads/jobs/videos/variants/{video['uuid'][:8]}_720p.mp4", "width": 1280, "height": 720,
        "bitrate": 2_500_000, "size": min(2_500_000 * 12 // 8, video["original_size"])}
    assert (done["variants"]["480p"]["width"], done["variants"]["480p"]["height"]) == (854, 480)


def test_mp4_without_a_track_header_is_assumed_1080p(server, admin):
    video = upload(admin, mp4(None), "clip.mp4", ctype="video/mp4").json()["data"]
    assert video["width"] is None
    server.sandbox.clock.advance(60)
    done = admin.get("/api/jobs/video-variants", params={"uuid": video["uuid"]}).json()
    assert list(done["variants"]) == ["1080p", "720p", "480p", "360p"]
    assert (done["variants"]["1080p"]["width"], done["variants"]["1080p"]["height"]) == (1920, 1080)


def test_video_variants_of_an_image_unknown_or_hidden_photo(server, admin):
    image = next(p for rows in photos(admin)["data"].values() for p in rows)
    body = admin.get("/api/jobs/video-variants", params={"uuid": image["uuid"]}).json()
    assert body["variants"] == [] and body["processed"] is False and body["original"]["size"] == image["size"]
    assert_error(admin.get("/api/jobs/video-variants", params={"uuid": "a1b2c3d4-e5f6-7890-abcd-ef0123456789"}),
                 404, "Photo not found")
    assert_error(admin.get("/api/jobs/video-variants"), 400, "uuid")
    with server.client(OTHER_ADMIN) as other:
        assert_error(other.get("/api/jobs/video-variants", params={"uuid": image["uuid"]}), 404, "Photo not found")


# -- delete, archive, restore ----------------------------------------------------------------------------------

def test_delete_archives_both_ways_and_restore_brings_it_back(server, admin):
    server.sandbox.clock.freeze()
    seeded = uuids(photos(admin))
    first, second = sorted(seeded)[:2]
    r = admin.post(PATH, data={"action": "delete", "photo_uuid": first, "job_uuid": JOB_1001})
    assert r.status_code == 200 and r.json() == {"success": True, "message": "Operation completed successfully"}
    second_id = stored(server, second)["ID"]
    r = admin.request("DELETE", PATH, json={"id": second_id})
    assert r.status_code == 200, r.text
    body = photos(admin)
    assert uuids(body) == seeded - {first, second} and body["count"] == 1 == job_counts(admin)
    row = stored(server, first)
    assert row["archived"] is True and row["archived_at"] == server.sandbox.clock.iso()
    assert_error(admin.request("DELETE", PATH, json={"id": second_id}), 404, "Photo not found")
    assert_error(admin.post(PATH, data={"action": "delete", "photo_uuid": first}), 404, "Photo not found")
    r = admin.post("/api/jobs/manage", json={"action": "restore_archived_file", "uuid": JOB_1001, "file_uuid": first})
    assert r.status_code == 200, r.text
    assert uuids(photos(admin)) == seeded - {second} and job_counts(admin) == 2


def test_delete_checks_the_job_given_with_it(server, admin):
    photo = sorted(uuids(photos(admin)))[0]
    other_job = job_where(server, lambda j: j["org_id"] == 1 and j["ID"] != 1001 and j["status_id"] != 8)
    assert_error(admin.post(PATH, data={"action": "delete", "photo_uuid": photo, "job_uuid": other_job["uuid"]}),
                 404, "Photo not found")
    assert photos(admin)["count"] == 3


def test_archived_jobs_refuse_uploads_and_deletes(server, admin):
    job = job_where(server, lambda j: j["org_id"] == 1 and j["status_id"] == 8 and j["photos_count"] > 0)
    listed = photos(admin, job_id=job["ID"])
    assert listed["count"] == job["photos_count"]
    assert_error(upload(admin, jpeg(), job_id=job["ID"]), 403, "archived")
    target = next(iter(uuids(listed)))
    assert_error(admin.post(PATH, data={"action": "delete", "photo_uuid": target}), 403, "archived")
    assert_error(admin.request("DELETE", PATH, json={"id": stored(server, target)["ID"]}), 403, "archived")
    assert photos(admin, job_id=job["ID"])["count"] == job["photos_count"]


# -- who may -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("email", [STAFF, AGENT, CONTRACTOR])
def test_roles_on_a_job_they_see(server, email):
    with server.client(email) as client:
        assert photos(client)["count"] == 3
        photo = upload(client, jpeg()).json()["data"]
        assert photo["uploaded_by"] == server.sandbox.auth.find_user(email)["ID"]
        assert client.post(PATH, data={"action": "delete", "photo_uuid": photo["uuid"]}).status_code == 200
        assert photos(client)["count"] == 3


@pytest.mark.parametrize(("email", "hidden"), [
    (AGENT, lambda j: j["org_id"] == 1 and j["branch_id"] != 1 and j["photos_count"] > 0),
    (CONTRACTOR, lambda j: j["org_id"] == 1 and j["contractor_id"] != 20 and j["photos_count"] > 0),
    (OTHER_ADMIN, lambda j: j["ID"] == 1001),
])
def test_jobs_outside_the_callers_scope_answer_404(server, email, hidden):
    job = job_where(server, hidden)
    photo = server.sandbox.store.select("photos", lambda r: r["job_id"] == job["ID"])[0]
    with server.client(email) as client:
        assert_error(client.get(PATH, params={"job_id": job["ID"]}), 404, "Job not found")
        assert_error(upload(client, jpeg(), job_id=job["ID"]), 404, "Job not found")
        assert_error(client.post(PATH, data={"action": "delete", "photo_uuid": photo["uuid"]}), 404, "Photo not found")
        assert_error(client.request("DELETE", PATH, json={"id": photo["ID"]}), 404, "Photo not found")
    assert server.sandbox.store.raw("jobs", job["ID"])["photos_count"] == job["photos_count"]


def test_writes_without_csrf_are_refused(server):
    with server.client(csrf=False) as client:
        assert_error(upload(client, jpeg()), 403, "CSRF")
        assert_error(client.request("DELETE", PATH, json={"id": 1}), 403, "CSRF")
        assert_error(client.post(PATH, data={"action": "delete", "id": "1"}), 403, "CSRF")
        assert photos(client)["count"] == 3 == job_counts(client)


def test_no_token_is_401(anon):
    assert_error(anon.get(PATH, params={"job_id": 1001}), 401)


# -- bad input ------------------------------------------------------------------------------------------------

def test_bad_inputs_name_the_field_and_change_nothing(server, admin):
    before = server.sandbox.store.count("photos")
    assert_error(admin.get(PATH), 400, "job_id")
    assert_error(admin.get(PATH, params={"job_id": "abc"}), 400, "job_id")
    assert_error(admin.get(PATH, params={"job_id": 999999}), 404, "Job not found")
    assert_error(admin.post(PATH, data={"action": "upload"}, files={"file": ("a.jpg", jpeg(), "image/jpeg")}),
                 400, "job_id")
    assert_error(upload(admin, jpeg(), photo_type="sideways"), 400, "photo_type")
    assert_error(admin.post(PATH, data={"action": "upload", "job_id": "1001"}), 400, "file")
    assert_error(admin.post(PATH, data={"action": "upload", "job_id": "1001", "file": "not a file"}), 400, "file")
    assert_error(upload(admin, b"", "empty.jpg"), 400, "file", "empty")
    assert_error(admin.post(PATH, data={"action": "delete"}), 400, "photo_uuid")
    assert_error(admin.request("DELETE", PATH, json={}), 400, "id")
    assert_error(admin.request("DELETE", PATH, json={"id": "x"}), 400, "id")
    assert_error(admin.post(PATH, data={"action": "rotate", "job_id": "1001"}), 400, "action")
    assert server.sandbox.store.count("photos") == before and job_counts(admin) == 3
