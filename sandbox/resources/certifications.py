"""Contractor certifications: ``GET /api/contractors/certification?file=cert_…`` serves a certificate's
bytes, ``POST /api/contractors/certification`` uploads (``action=upload``) or deletes (``action=delete``)
one (seed 004 and the upload-contractor-certification reference).

A certificate is a row of the ``certifications`` table (type, issue and expiry dates, stored file name)
whose bytes are a blob; a seeded row has no blob and is served as placeholder bytes of its type. The
stored name is ``cert_{contractor ID}_{certificate ID}_{unix upload time}.{ext}`` (the documented example
``cert_20_5_1704873600.pdf`` is certificate 5 of contractor 20, uploaded 2024-01-10T08:00:00Z). A file
name from a request is only ever looked up in the table, never joined to a path, and anything off the
documented pattern is refused first.

Who: staff see any certificate of their organisation; a contractor only their own (403 otherwise, as
the guide says); another organisation's contractor or certificate answers 404 like a missing one.
Without ``file``, ``GET`` with ``contractor_uuid`` lists that contractor's certificates as JSON (the docs
have no list endpoint; a contractor cannot call the contractor list). Status is ``valid``, ``expiring``
(expires within 30 days of the sandbox clock) or ``expired``.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from starlette.responses import Response

from .. import media
from ..auth import CONTRACTOR
from ..endpoints import Call, Endpoint, Param
from ..envelope import FORBIDDEN, ApiError, bad_param, listing, not_found, ok
from ..store import Row
from ._uploads import in_thread, read_upload

TABLE = "certifications"
EXPIRING_DAYS = 30
FILE_NAME = re.compile(r"cert_(\d{1,12})_(\d{1,12})_(\d{1,12})\.(pdf|jpe?g|png|docx?)", re.ASCII)
EXAMPLE = "cert_20_5_1704873600.pdf"
# Word 97-2003 (.doc) is an OLE2 compound file holding a "WordDocument" stream.
DOC = media.Kind("doc", "application/msword", ".doc", (".doc",))
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_WORD_STREAM = "WordDocument".encode("utf-16-le")
ALLOWED = ("pdf", "jpeg", "png", "doc", "docx")
_BLOB_TABLES = (TABLE, "photos", "documents", "case_note_attachments")  # rows that may share a blob


# -- the rules ----------------------------------------------------------------------------------------

def sniff(data: bytes) -> media.Kind | None:
    """PDF, JPEG, PNG, DOCX (`sandbox.media`) or DOC, by content alone."""
    if data.startswith(_OLE2):
        return DOC if _WORD_STREAM in data else None
    return media.sniff(data)


def status(expiry_date: str | None, today: dt.date) -> str:
    """valid | expiring (expires within 30 days) | expired (the expiry date is past). No expiry: valid."""
    if not expiry_date:
        return "valid"
    expiry = dt.date.fromisoformat(expiry_date)
    if expiry < today:
        return "expired"
    return "expiring" if expiry <= today + dt.timedelta(days=EXPIRING_DAYS) else "valid"


def today(call: Call) -> dt.date:
    return call.sandbox.clock.now().date()


def serialize(row: Row, contractor_uuid: str | None, day: dt.date) -> Row:
    expiry = row.get("expiry_date")
    return {
        "ID": row["ID"], "uuid": row["uuid"], "contractor_id": row["contractor_id"],
        "contractor_uuid": contractor_uuid, "cert_type": row.get("cert_type"),
        "issue_date": row.get("issue_date"), "expiry_date": expiry, "status": status(expiry, day),
        "days_until_expiry": (dt.date.fromisoformat(expiry) - day).days if expiry else None,
        "file_name": row["file_name"], "mime_type": row["mime_type"], "size": row.get("size"),
        "original_name": row.get("original_name"),
        "url": f"/api/contractors/certification?file={row['file_name']}",
        "uploaded_by": row.get("uploaded_by"), "created_at": row["created_at"],
    }


def for_contractors(call: Call, contractors: list[Row]) -> dict[int, list[Row]]:
    """Contractor ID → its certificates (serialised, by expiry date), for the contractor list rows."""
    uuids = {c["ID"]: c["uuid"] for c in contractors}
    day = today(call)
    out: dict[int, list[Row]] = {id_: [] for id_ in uuids}
    for row in call.sandbox.store.select(TABLE, lambda r: r["contractor_id"] in uuids):
        out[row["contractor_id"]].append(serialize(row, uuids[row["contractor_id"]], day))
    for rows in out.values():
        rows.sort(key=lambda r: (r["expiry_date"] or "9999-12-31", r["ID"]))
    return out


def contractor_of(call: Call, uuid: str) -> Row:
    """The contractor with this uuid, if the caller may act on its certificates: 404 when missing or in
    another organisation, 403 when the caller is a contractor and it is not them."""
    row = call.sandbox.store.raw_by_uuid("contractors", uuid)
    if row is None or row["org_id"] != call.principal.org_id:
        raise not_found("Contractor")
    _own(call, row["ID"])
    return row


def _own(call: Call, contractor_id: int) -> None:
    me = call.principal
    if me.account_type_id == CONTRACTOR and me.contractor_id != contractor_id:
        raise ApiError(403, f"{FORBIDDEN}: contractors may only access their own certifications")


def _by_name(call: Call, name: Any) -> Row:
    """The certificate row a request's ``file`` names. The name must fit the documented pattern (400
    naming ``file`` otherwise: no dots, slashes, backslashes or NULs get further); it is then only
    compared with stored names. Missing or another organisation's → 404; someone else's (contractor) → 403."""
    if not isinstance(name, str) or not FILE_NAME.fullmatch(name):
        raise bad_param("file", f"must be a certification file name like {EXAMPLE} "
                                "(cert_{id}_{id}_{id}.{ext}, ext pdf, jpg, jpeg, png, doc or docx)")
    found = call.sandbox.store.select(TABLE, lambda r: r["file_name"] == name)
    row = found[0] if found else None
    if row is None or row["org_id"] != call.principal.org_id:
        raise not_found("Certification")
    _own(call, row["contractor_id"])
    return row


def _content(row: Row, blobs: Any) -> bytes | None:
    if row.get("blob"):
        return blobs.get(row["blob"])
    return media.content(row, blobs)  # a seeded certificate: placeholder bytes of its recorded type


# -- handlers -----------------------------------------------------------------------------------------

async def view(call: Call) -> Response | dict[str, Any]:
    """The certificate's bytes as a download; without ``file``, a contractor's certificates (JSON)."""
    name, owner = call.params.get("file"), call.params.get("contractor_uuid")
    if name is None:
        if owner is None:
            raise bad_param("file", f"required: a certification file name like {EXAMPLE} "
                                    "(or contractor_uuid to list a contractor's certificates)")
        contractor = contractor_of(call, owner)
        rows = for_contractors(call, [contractor])[contractor["ID"]]
        return listing(rows, len(rows))
    row = _by_name(call, name)
    if owner is not None and contractor_of(call, owner)["ID"] != row["contractor_id"]:
        raise not_found("Certification")
    data = _content(row, call.sandbox.blobs)
    if data is None:
        raise ApiError(404, "File not found on server")
    return Response(data, media_type=row["mime_type"], headers={
        "Content-Disposition": f'attachment; filename="{row["file_name"]}"', "Cache-Control": "private",
        "X-Content-Type-Options": "nosniff"})


async def _read_file(call: Call) -> tuple[bytes, media.Kind]:
    data, kind, _name = await read_upload(call, ("file",), ALLOWED, sniff)
    if kind.name in media.IMAGES:
        await in_thread("file", media.inspect_image, data)  # a picture must be whole and readable
    return data, kind


def _dates(call: Call) -> tuple[str | None, str | None]:
    issue, expiry = call.params.get("issue_date"), call.params.get("expiry_date")
    if issue is not None and issue > today(call).isoformat():
        raise bad_param("issue_date", "must not be in the future")
    if issue is not None and expiry is not None and expiry <= issue:
        raise bad_param("expiry_date", f"must be after issue_date ({issue})")
    return issue, expiry


async def upload(call: Call) -> dict[str, Any]:
    contractor = contractor_of(call, call.params["contractor_uuid"])
    issue, expiry = _dates(call)
    upload_file = call.params.get("file")
    data, kind = await _read_file(call)
    original = media.safe_name(upload_file.filename, kind)
    store, clock = call.sandbox.store, call.sandbox.clock
    contractor = contractor_of(call, contractor["uuid"])  # again: it may have changed while we read
    key = call.sandbox.blobs.put(data)  # the bytes first, then the row that points at them
    id_, now = store.next_id(TABLE), clock.now()
    row = store.insert(TABLE, {
        "ID": id_, "uuid": None, "org_id": contractor["org_id"], "contractor_id": contractor["ID"],
        "cert_type": call.params.get("cert_type"), "issue_date": issue, "expiry_date": expiry,
        "file_name": f"cert_{contractor['ID']}_{id_}_{int(now.timestamp())}{kind.ext}",
        "original_name": original, "mime_type": kind.mime, "size": len(data), "blob": key,
        "uploaded_by": call.principal.user_id, "created_at": clock.iso(),
    })
    return ok(serialize(row, contractor["uuid"], today(call)))


async def delete(call: Call) -> dict[str, Any]:
    name, uuid = call.params.get("file"), call.params.get("cert_uuid")
    contractor = contractor_of(call, call.params["contractor_uuid"])
    if name is not None:
        row = _by_name(call, name)
    elif uuid is not None:
        row = call.sandbox.store.raw_by_uuid(TABLE, uuid)
        if row is None or row["org_id"] != call.principal.org_id:
            raise not_found("Certification")
        _own(call, row["contractor_id"])
    else:
        raise bad_param("file", f"required: the certificate's file name like {EXAMPLE} (or cert_uuid)")
    if row["contractor_id"] != contractor["ID"]:
        raise not_found("Certification")
    store = call.sandbox.store
    store.delete(TABLE, [row["ID"]])
    key = row.get("blob")
    if key and not any(store.select(t, lambda r: r.get("blob") == key) for t in _BLOB_TABLES):
        call.sandbox.blobs.delete(key)
    return ok()


PATH = "/api/contractors/certification"
MANAGE = "api.contractors.certification.manage"
OWNER = Param("contractor_uuid", "uuid", required=True, about="contractor the certificate belongs to")

ENDPOINTS = [
    Endpoint("GET", PATH, view, MANAGE,
             params=(Param("file", "string", max_length=100, about="cert_{id}_{id}_{id}.{ext}"),
                     Param("contractor_uuid", "uuid", about="without file: list this contractor's certificates")),
             summary="Download a certification file (PDF, JPEG, PNG, DOC, DOCX); without file, list a "
                     "contractor's certificates"),
    Endpoint("POST", PATH, upload, MANAGE, ("upload",), csrf=True,
             params=(OWNER, Param("cert_type", "string", max_length=100, about="e.g. Gas Safe Certificate"),
                     Param("issue_date", "date"), Param("expiry_date", "date"), Param("file", "file")),
             summary="Upload a contractor certificate (multipart)"),
    Endpoint("POST", PATH, delete, MANAGE, ("delete",), csrf=True,
             params=(OWNER, Param("file", "string", max_length=100, about="the certificate's file name"),
                     Param("cert_uuid", "uuid")),
             summary="Delete a contractor certificate by file name or cert_uuid"),
]
