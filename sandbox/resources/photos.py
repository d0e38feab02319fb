"""Job photos: ``/api/jobs/photos`` list, upload and delete, and ``/api/jobs/video-variants`` (seed 002 and
the upload-or-delete-a-job-photo reference).

Uploads are JPEG, PNG or MP4, recognised by content; images are compressed on ingest (`sandbox.media`).
The bytes go to the blob store before the row that points at them. Deleting archives the row (it can be
brought back with ``POST /api/jobs/manage action=restore_archived_file``) and the job's ``photos_count``
is always its number of live rows. The helpers at the top are shared with `documents`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from .. import media
from ..clock import parse_instant
from ..endpoints import Call, Endpoint, Param
from ..envelope import bad_param, not_found, ok
from ..store import Row
from ._uploads import in_thread, read_upload
from .jobs import load_job

PHOTO_TYPES = ("before", "during", "after", "other")
PROCESSING_SECONDS = 30  # sandbox time an uploaded MP4 spends "processing" before its variants exist
# (label, short side, bitrate): the ladder of video variants, none larger than the source
LADDER = (("2160p", 2160, 16_000_000), ("1440p", 1440, 9_000_000), ("1080p", 1080, 4_000_000),
          ("720p", 720, 2_500_000), ("480p", 480, 1_000_000), ("360p", 360, 600_000))
JOB_KEYS = (Param("job_id", "integer", min=1), Param("job_uuid", "uuid"))


# -- shared with documents -----------------------------------------------------------------------------

def job_of(call: Call, *, write: bool = False) -> Row:
    """The job named by ``job_id`` (seed) or ``job_uuid`` (reference); 400 naming job_id when neither."""
    key = call.params.get("job_id") or call.params.get("job_uuid")
    if key is None:
        raise bad_param("job_id", "required: the job's ID (or job_uuid)")
    return load_job(call, key, write=write)


def file_row(call: Call, table: str, noun: str, id_: int | None, uuid: str | None, *, write: bool = False) -> Row:
    """A live (not archived) photo/document row the caller may see, by ID or uuid, else 404. With
    `write`, 403 when its job is archived. A job given alongside must be the row's job."""
    store = call.sandbox.store
    row = store.raw_by_uuid(table, uuid) if uuid else store.raw(table, id_)
    job = None if row is None else store.raw("jobs", row["job_id"])
    if row is None or row.get("archived") or job is None or not call.principal.sees_job(job):
        raise not_found(noun)
    given = call.params.get("job_id") or call.params.get("job_uuid")
    if given is not None and given not in (job["ID"], job["uuid"]):
        raise not_found(noun)
    if write:
        load_job(call, job["ID"], write=True)
    return row


def bump(call: Call, job_id: int, counter: str, delta: int) -> None:
    """Keep the job's photos_count/documents_count equal to its live rows (restore does +1 alike)."""
    store = call.sandbox.store
    job = store.raw("jobs", job_id)
    store.update("jobs", job_id, {counter: max(0, (job.get(counter) or 0) + delta),
                                  "updated_at": call.sandbox.clock.iso()})


def archive(call: Call, table: str, row: Row, counter: str) -> None:
    store = call.sandbox.store
    store.update(table, row["ID"], {"archived": True, "archived_at": call.sandbox.clock.iso()})
    bump(call, row["job_id"], counter, -1)


def live_rows(call: Call, table: str, job_id: int) -> list[Row]:
    return call.sandbox.store.select(table, lambda r: r["job_id"] == job_id and not r.get("archived"))


def common(row: Row) -> Row:
    """The fields photos and documents share (never the blob key or org_id)."""
    uuid = row["uuid"]
    return {
        "ID": row["ID"], "uuid": uuid, "job_id": row["job_id"], "file_name": row["file_name"],
        "mime_type": row["mime_type"], "size": row.get("stored_size") or row["size"],
        "original_size": row["size"], "width": row.get("width"), "height": row.get("height"),
        "url": f"/attachment/{uuid}", "thumbnail_url": f"/api/jobs/document-thumbnail?uuid={uuid}&size=200",
        "uploaded_by": row.get("uploaded_by"), "created_at": row["created_at"],
    }


# -- photos --------------------------------------------------------------------------------------------

def serialize(row: Row) -> Row:
    out = common(row)
    out["photo_type"] = row["photo_type"]
    out["media_type"] = "video" if row["mime_type"] == "video/mp4" else "image"
    if row.get("duration") is not None:
        out["duration"] = row["duration"]
    return out


async def list_photos(call: Call) -> dict[str, Any]:
    job = job_of(call)
    groups: dict[str, list[Row]] = {kind: [] for kind in PHOTO_TYPES}
    rows = live_rows(call, "photos", job["ID"])
    for row in rows:
        groups.get(row["photo_type"], groups["other"]).append(serialize(row))
    return ok(groups, count=len(rows))


def _ingest(data: bytes, kind: media.Kind, blobs: Any) -> tuple[str, int, int | None, int | None, float | None]:
    """(blob key, stored size, width, height, duration): images compressed, videos stored as sent."""
    duration = None
    if kind.name == "mp4":
        stored, info = data, media.mp4_info(data)
        width, height, duration = info if info else (None, None, None)
    else:
        stored, width, height = media.compress(data, kind)
    return blobs.put(stored), len(stored), width, height, duration


async def upload(call: Call) -> dict[str, Any]:
    job = job_of(call, write=True)
    data, kind, name = await read_upload(call, ("file", "photo"), ("jpeg", "png", "mp4"))
    field = "file" if call.params.get("file") is not None else "photo"
    key, stored, width, height, duration = await in_thread(field, _ingest, data, kind, call.sandbox.blobs)
    job = load_job(call, job["ID"], write=True)  # again: the job may have changed while we worked
    row = {
        "ID": None, "uuid": None, "org_id": job["org_id"], "job_id": job["ID"],
        "photo_type": call.params.get("photo_type") or "other", "file_name": name, "mime_type": kind.mime,
        "size": len(data), "stored_size": stored, "blob": key, "width": width, "height": height,
        "archived": False, "archived_at": None, "uploaded_by": call.principal.user_id,
        "created_at": call.sandbox.clock.iso(),
    }
    if duration is not None:
        row["duration"] = duration
    row = call.sandbox.store.insert("photos", row)
    bump(call, job["ID"], "photos_count", +1)
    return ok(serialize(row))


def delete_handler(id_field: str, uuid_field: str) -> Callable:
    async def delete(call: Call) -> dict[str, Any]:
        id_, uuid = call.params.get(id_field), call.params.get(uuid_field)
        if id_ is None and uuid is None:
            first, other = (uuid_field, id_field) if call.action else (id_field, uuid_field)
            raise bad_param(first, f"required: the photo to delete (or {other})")
        row = file_row(call, "photos", "Photo", id_, uuid, write=True)
        archive(call, "photos", row, "photos_count")
        return ok()

    return delete


# -- video variants --------------------------------------------------------------------------------------

def _even(n: float) -> int:
    return max(2, round(n / 2) * 2)


def variants_of(row: Row, now: dt.datetime) -> dict[str, Any]:
    """The documented video-variants answer for a photo row, with processing modelled on the sandbox
    clock: an MP4 is "processing" for PROCESSING_SECONDS after upload, then "completed"."""
    uuid, short = row["uuid"], row["uuid"][:8]
    answer: dict[str, Any] = {
        "uuid": uuid,
        "original": {"url": f"/attachment/{uuid}", "size": row.get("stored_size") or row["size"],
                     "path": f"uploads/jobs/{'videos' if row['mime_type'] == 'video/mp4' else 'photos'}/"
                             f"{short}{media.BY_MIME[row['mime_type']].ext}"},
        "variants": [], "thumbnail": None, "processing_status": "not_applicable", "processed": False,
        "processed_at": None,
    }
    if row["mime_type"] != "video/mp4":
        return answer
    done_at = parse_instant(row["created_at"]) + dt.timedelta(seconds=PROCESSING_SECONDS)
    if now < done_at:
        answer["processing_status"] = "processing"
        return answer
    width, height = row.get("width") or media.ASSUMED_VIDEO[0], row.get("height") or media.ASSUMED_VIDEO[1]
    source_short = min(width, height)
    duration = row.get("duration")
    variants = {}
    for label, target, bitrate in LADDER:
        if target > source_short:
            continue
        scale = target / source_short
        size = int(bitrate * duration / 8) if duration else int(row["size"] * scale * scale)
        variants[label] = {"url": f"/uploads/jobs/videos/variants/{short}_{label}.mp4",
                           "width": _even(width * scale), "height": _even(height * scale),
                           "bitrate": bitrate, "size": min(size, row["size"])}
    answer.update(variants=variants or [], thumbnail=f"/uploads/jobs/videos/thumbnails/{short}_thumb.jpg",
                  processing_status="completed", processed=True,
                  processed_at=done_at.strftime("%Y-%m-%dT%H:%M:%SZ"))
    return answer


async def video_variants(call: Call) -> dict[str, Any]:
    row = file_row(call, "photos", "Photo", None, call.params["uuid"])
    return ok(**variants_of(row, call.sandbox.clock.now()))


PATH = "/api/jobs/photos"
MANAGE = "api.jobs.photos.manage"
UPLOAD_PARAMS = (*JOB_KEYS, Param("file", "file"), Param("photo", "file"),
                 Param("photo_type", enum=PHOTO_TYPES, about="before, during, after or other (default other)"))

ENDPOINTS = [
    # Seed 002 documents the list without an action; an `action=list` (endpoints.json) is simply ignored.
    Endpoint("GET", PATH, list_photos, MANAGE, params=JOB_KEYS,
             summary="A job's photos grouped by type (before, during, after, other)"),
    Endpoint("POST", PATH, upload, MANAGE, ("upload",), csrf=True, params=UPLOAD_PARAMS,
             summary="Upload a JPEG, PNG or MP4 (images are compressed on ingest)"),
    Endpoint("POST", PATH, delete_handler("id", "photo_uuid"), MANAGE, ("delete",), csrf=True,
             params=(Param("photo_uuid", "uuid"), Param("id", "integer", min=1), *JOB_KEYS),
             summary="Delete (archive) a photo by photo_uuid or id"),
    Endpoint("DELETE", PATH, delete_handler("id", "photo_uuid"), MANAGE, csrf=True,
             params=(Param("id", "integer", min=1), Param("photo_uuid", "uuid")),
             summary="Delete (archive) a photo: JSON body {\"id\": <id>}"),
    Endpoint("GET", "/api/jobs/video-variants", video_variants, "api.jobs.photos.view",
             params=(Param("uuid", "uuid", required=True),),
             summary="Resolution variants of a video photo (processing modelled on the sandbox clock)"),
]
