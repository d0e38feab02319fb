"""``GET /attachment/{uuid}`` and ``/attachment/{uuid}/thumbnail``: the bytes behind every `url` the
photo, document and case-note attachment lists hand out (attachment guide).

Outside /api/, so errors are plain text, as documented: 400 "Attachment UUID is required", 403 "You do
not have permission to download this attachment", 404 "Attachment not found" / "File not found on
server". Another organisation's file is 404 like a missing one; a file of this organisation on a job
the caller may not see (an agent outside the branch, a contractor not assigned) is the documented 403.
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.responses import Response

from .. import media
from ..endpoints import Call, Endpoint, Param
from ..envelope import ApiError
from ..store import Row

TABLES = ("photos", "documents", "case_note_attachments", "branch_logos")
THUMBNAIL_SIZE = 200
PERMISSION = "api.system.attachment.view"


def _file(call: Call) -> Row:
    store, me = call.sandbox.store, call.principal
    uuid = call.params["uuid"]
    for table in TABLES:
        row = store.raw_by_uuid(table, uuid)
        if row is not None:
            break
    else:
        raise ApiError(404, "Attachment not found")
    if row.get("org_id") != me.org_id or row.get("archived"):
        raise ApiError(404, "Attachment not found")
    if table == "branch_logos":  # branding: anyone in the organisation may see it
        return row
    job = store.raw("jobs", row["job_id"])
    if job is None or not me.sees_job(job):
        raise ApiError(403, "You do not have permission to download this attachment")
    return row


def _disposition(name: str) -> str:
    # Printable ASCII only: a stored name with a control character (CR, LF, NUL) must not break the header.
    ascii_name = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in name)
    return f"inline; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}"


async def download(call: Call) -> Response:
    row = _file(call)
    data = media.content(row, call.sandbox.blobs)
    if data is None:
        raise ApiError(404, "File not found on server")
    return Response(data, media_type=row.get("mime_type") or "application/octet-stream", headers=_headers(row))


def _headers(row: Row) -> dict[str, str]:
    headers = {"Content-Disposition": _disposition(row.get("file_name") or "file")}
    if row.get("mime_type") == "image/svg+xml":  # an uploaded SVG must never run as a page
        headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; sandbox"
    return headers


async def thumbnail(call: Call) -> Response:
    """A JPEG thumbnail for images; anything else gets its original bytes back (attachment guide)."""
    row = _file(call)
    data = media.content(row, call.sandbox.blobs)
    if data is None:
        raise ApiError(404, "File not found on server")
    kind = media.BY_MIME.get(row.get("mime_type"))
    if kind is not None and kind.name in media.IMAGES:
        made = media.cached_thumbnail(row.get("blob") or row["uuid"], THUMBNAIL_SIZE, lambda: data)
        if made is not None:
            return Response(made, media_type="image/jpeg")
    return Response(data, media_type=row.get("mime_type") or "application/octet-stream", headers=_headers(row))


UUID = (Param("uuid", "uuid", required=True, about="path segment"),)
ENDPOINTS = [
    Endpoint("GET", "/attachment/{uuid}", download, PERMISSION, params=UUID, errors="text",
             summary="The bytes of a photo, document or case-note attachment"),
    Endpoint("GET", "/attachment/{uuid}/thumbnail", thumbnail, PERMISSION, params=UUID, errors="text",
             summary="A JPEG thumbnail of an image attachment (other files: the original)"),
]
