"""Case notes: ``/api/jobs/case-notes`` list, create, update, delete, and their attachments (seed 002).

A note belongs to a job the caller can see; its text is encrypted at rest (`store.ENCRYPTED`). Create
takes ``message`` (seed 002) or ``note_text`` (reference page), an optional ``send_email`` and, as
multipart, up to `MAX_FILES` attachment files (any file fields); it answers with ``note_id`` at the top
level (reference page). With ``send_email`` the note is e-mailed to the job's contractor and agent with a
reply-to address that threads replies back to the note. A note may be edited or deleted by its author
or by Staff; anyone else gets 403. ``GET /api/jobs/case-note-attachments`` lists attachment metadata
(``case_note_uuid`` and/or ``job_uuid``) with the ``/attachment/<uuid>`` download URL.
"""

from __future__ import annotations

import mimetypes
from typing import Any

from starlette.datastructures import UploadFile

from .. import events, history, media
from ..auth import STAFF
from ..endpoints import Call, Endpoint, Param
from ..envelope import ApiError, bad_param, listing, not_found, ok
from ..store import Row
from .jobs import _person, load_job

PATH = "/api/jobs/case-notes"
PERMISSION = "api.jobs.case_notes.manage"
MAX_FILES = 5
MAX_TEXT = 20_000
REPLY_DOMAIN = "reply.sandbox.propops.test"  # where replies to an e-mailed note would come back
ATTACHMENT_TABLES = ("case_note_attachments", "photos", "documents")  # rows that may share a blob


def attachments_of(store, job_id: int) -> list[Row]:
    return store.select("case_note_attachments", lambda r: r["job_id"] == job_id)


def note_row(call: Call, note: Row, counts: dict[int, int]) -> Row:
    plain = call.sandbox.store.reveal("case_notes", note)
    return {
        "ID": note["ID"], "uuid": note["uuid"], "job_id": note["job_id"], "message": plain["message"],
        "created_by": note["created_by"],
        "created_by_name": _person(call.sandbox.store, "users", note["created_by"]),
        "send_email": bool(note["send_email"]), "attachments_count": counts.get(note["ID"], 0),
        "is_pinned": bool(note.get("is_pinned")), "created_at": note["created_at"],
        "updated_at": note.get("updated_at") or note["created_at"],
    }


def attachment_row(row: Row, note_uuid: str | None) -> Row:
    return {
        "ID": row["ID"], "uuid": row["uuid"], "note_id": row["note_id"], "case_note_uuid": note_uuid,
        "job_id": row["job_id"], "file_name": row["file_name"], "mime_type": row["mime_type"],
        "size": row["size"], "url": f"/attachment/{row['uuid']}", "created_at": row["created_at"],
    }


async def list_notes(call: Call) -> dict[str, Any]:
    """Every note of the job: pinned notes first, then oldest first (a timeline)."""
    store = call.sandbox.store
    job = load_job(call, call.params["job_uuid"])
    counts: dict[int, int] = {}
    for a in attachments_of(store, job["ID"]):
        counts[a["note_id"]] = counts.get(a["note_id"], 0) + 1
    notes = store.select("case_notes", lambda r: r["job_id"] == job["ID"])
    notes.sort(key=lambda r: (not r.get("is_pinned"), r["created_at"], r["ID"]))
    rows = [note_row(call, n, counts) for n in notes]
    return listing(rows, len(rows))


def _text(call: Call, *, required: bool) -> str | None:
    text = call.params.get("message")
    if text is None:
        text = call.params.get("note_text")
    if text is not None and not text.strip():
        raise bad_param("message", "must not be blank")
    if text is None and required:
        raise bad_param("message", "required (note_text is accepted too)")
    return text


async def _uploads(call: Call) -> list[UploadFile]:
    if call.request.headers.get("content-type", "").split(";")[0].strip().lower() != "multipart/form-data":
        return []
    form = await call.request.form()  # parsed (and cached) by the dispatcher
    return [v for _, v in form.multi_items() if isinstance(v, UploadFile)]


async def _read(files: list[UploadFile]) -> list[tuple[str, str, bytes]]:
    if len(files) > MAX_FILES:
        raise bad_param("attachments", f"at most {MAX_FILES} files per note, got {len(files)}")
    out = []
    for f in files:
        data = await f.read()
        name = media.clean_name(f.filename, "attachment")  # no path, control characters or leading dots
        if not data:
            raise bad_param("attachments", f"file {name!r} is empty")
        mime = (f.content_type or "").split(";")[0].strip()
        if not mime or mime == "application/octet-stream":
            mime = mimetypes.guess_type(name)[0] or "application/octet-stream"
        out.append((name, mime, data))
    return out


def _recipients(store, job: Row) -> list[str]:
    out = []
    for table, key in (("contractors", "contractor_id"), ("agents", "agent_id")):
        person = store.get(table, job.get(key))
        if person and person.get("email") and person["email"] not in out:
            out.append(person["email"])
    return out


async def create(call: Call) -> dict[str, Any]:
    p, sb = call.params, call.sandbox
    if p.get("job_uuid") is None:  # everything is checked before anything is written
        raise bad_param("job_uuid", "required")
    text = _text(call, required=True)
    job = sb.store.reveal("jobs", load_job(call, p["job_uuid"], write=True))
    files = await _read(await _uploads(call))
    now, store = sb.clock.iso(), sb.store
    note = store.insert("case_notes", {
        "ID": None, "uuid": None, "org_id": job["org_id"], "job_id": job["ID"], "message": text,
        "created_by": call.principal.user_id, "send_email": bool(p.get("send_email")), "is_pinned": False,
        "created_at": now, "updated_at": now,
    })
    for name, mime, data in files:
        store.insert("case_note_attachments", {
            "ID": None, "uuid": None, "org_id": job["org_id"], "job_id": job["ID"], "note_id": note["ID"],
            "file_name": name, "mime_type": mime, "size": len(data), "blob": sb.blobs.put(data), "created_at": now,
        })
    if note["send_email"]:
        to = _recipients(store, job)
        if to:
            events.record_email(
                store, now, org_id=job["org_id"], template="case_note", to=to,
                subject=f"New case note on {job['job_ref']}: {job['job_title']}", body=text, job_id=job["ID"],
                note_id=note["ID"], reply_to=f"case-note+{note['uuid']}@{REPLY_DOMAIN}", thread_id=note["uuid"],
            )
    history.apply(store, now, job, {}, user_id=call.principal.user_id)  # the job's timeline moved
    return ok(note_id=note["ID"], note_uuid=note["uuid"], attachments_count=len(files),
              message="Case note created successfully")


def _editable(call: Call) -> tuple[Row, Row]:
    """The note named by `uuid` and its job, if the caller may change it: 404 when the note or its job
    is not visible, 403 for an archived job or someone else's note (only the author or Staff)."""
    if call.params.get("uuid") is None:
        raise bad_param("uuid", "required: the case note's uuid")
    store = call.sandbox.store
    note = store.raw_by_uuid("case_notes", call.params["uuid"])
    if note is None or note["org_id"] != call.principal.org_id:
        raise not_found("Case note")
    try:
        job = load_job(call, note["job_id"], write=True)
    except ApiError as exc:
        if exc.status == 404:
            raise not_found("Case note") from None
        raise
    me = call.principal
    if note["created_by"] != me.user_id and me.account_type_id != STAFF:
        raise ApiError(403, "Only the author of a case note or a member of staff can change or delete it")
    return note, store.reveal("jobs", job)


async def update(call: Call) -> dict[str, Any]:
    note, job = _editable(call)
    text = _text(call, required=False)
    changes: dict[str, Any] = {}
    if text is not None:
        changes["message"] = text
    if call.params.get("is_pinned") is not None:
        changes["is_pinned"] = call.params["is_pinned"]
    if not changes:
        raise bad_param("message", "give message (or note_text) and/or is_pinned to change")
    now, store = call.sandbox.clock.iso(), call.sandbox.store
    store.update("case_notes", note["ID"], {**changes, "updated_at": now})
    history.apply(store, now, job, {}, user_id=call.principal.user_id)
    return ok(note_id=note["ID"], message="Case note updated successfully")


async def delete(call: Call) -> dict[str, Any]:
    note, job = _editable(call)
    store, blobs = call.sandbox.store, call.sandbox.blobs
    files = store.select("case_note_attachments", lambda r: r["note_id"] == note["ID"])
    store.delete("case_note_attachments", [f["ID"] for f in files])
    store.delete("case_notes", [note["ID"]])
    for key in {f["blob"] for f in files if f.get("blob")}:
        if not any(store.select(t, lambda r, k=key: r.get("blob") == k) for t in ATTACHMENT_TABLES):
            blobs.delete(key)
    history.apply(store, call.sandbox.clock.iso(), job, {}, user_id=call.principal.user_id)
    return ok(note_id=note["ID"], message="Case note deleted successfully")


async def list_attachments(call: Call) -> dict[str, Any]:
    store, p = call.sandbox.store, call.params
    note_uuid, job_uuid = p.get("case_note_uuid") or p.get("note_uuid"), p.get("job_uuid")
    if note_uuid is None and job_uuid is None:
        raise bad_param("case_note_uuid", "required (or give job_uuid for every attachment of a job)")
    note = None
    if note_uuid is not None:
        note = store.raw_by_uuid("case_notes", note_uuid)
        if note is None or note["org_id"] != call.principal.org_id:
            raise not_found("Case note")
        try:
            job = load_job(call, note["job_id"])
        except ApiError:
            raise not_found("Case note") from None
        if job_uuid is not None and job["uuid"] != job_uuid:
            raise not_found("Case note")
    else:
        job = load_job(call, job_uuid)
    uuids = {n["ID"]: n["uuid"] for n in store.select("case_notes", lambda r: r["job_id"] == job["ID"])}
    rows = [attachment_row(a, uuids.get(a["note_id"])) for a in attachments_of(store, job["ID"])
            if note is None or a["note_id"] == note["ID"]]
    return listing(rows, len(rows))


JOB_UUID = Param("job_uuid", "uuid", about="UUID of the parent job")
NOTE_UUID = Param("uuid", "uuid", required=True, about="the note's uuid")
TEXT = (
    Param("message", max_length=MAX_TEXT, about="note text, plain or HTML"),
    Param("note_text", max_length=MAX_TEXT, about="the reference page's name for message"),
)

ENDPOINTS = [
    Endpoint("GET", PATH, list_notes, PERMISSION, ("list",),
             params=(Param("job_uuid", "uuid", required=True),), summary="Every case note of a job"),
    # Seed 002 and the reference page create notes without an `action`: create is the default.
    Endpoint("POST", PATH, create, PERMISSION, ("create",), csrf=True, default=True,
             params=(JOB_UUID, *TEXT, Param("send_email", "boolean", default=False)),
             summary="Create a case note (job_uuid, message, send_email; multipart attachments)"),
    Endpoint("POST", PATH, update, PERMISSION, ("update",), csrf=True,
             params=(NOTE_UUID, *TEXT, Param("is_pinned", "boolean")), summary="Edit a note's text or pin it"),
    Endpoint("POST", PATH, delete, PERMISSION, ("delete",), csrf=True, params=(NOTE_UUID,),
             summary="Delete a case note and its attachments"),
    Endpoint("GET", "/api/jobs/case-note-attachments", list_attachments, None,
             params=(Param("case_note_uuid", "uuid"), Param("note_uuid", "uuid"), JOB_UUID),
             summary="Attachment metadata of a case note (or of every note of a job), with download URLs"),
]
