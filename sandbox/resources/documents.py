"""Job documents: ``/api/jobs/documents`` list, download, upload and delete (seed 002 and the
upload-or-delete-a-job-document reference), and ``/api/jobs/document-thumbnail``.

Documents are PDF, DOCX, JPEG or PNG, recognised by content, and stored as sent (only photos are
compressed). Deleting archives the row like a photo; ``documents_count`` follows the live rows. A seeded
document has no blob: its bytes are placeholders of its recorded type (`sandbox.media.content`).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.responses import Response

from .. import media
from ..endpoints import Call, Endpoint, Param
from ..envelope import ApiError, bad_param, listing, ok
from ..store import Row
from ._uploads import in_thread, read_upload
from .photos import (
    JOB_KEYS,
    archive,
    bump,
    common,
    file_row,
    job_of,
    live_rows,
)

ALLOWED = ("pdf", "docx", "jpeg", "png")
YEAR = 31_536_000  # "Responses are cached aggressively (one year)" (thumbnail reference)


def serialize(call: Call, row: Row) -> Row:
    store = call.sandbox.store
    out = common(row)
    file_type = store.raw("file_types", row["file_type_id"])
    user = store.get("users", row.get("uploaded_by"))
    out.update(
        file_type_id=row["file_type_id"], file_type_name=file_type["name"] if file_type else None,
        extension=media.BY_MIME[row["mime_type"]].ext.lstrip(".") if row["mime_type"] in media.BY_MIME else None,
        uploaded_by_name=f"{user['first_name']} {user['last_name']}" if user else None,
        download_url=f"/api/jobs/documents?action=download&uuid={row['uuid']}",
    )
    return out


async def list_documents(call: Call) -> dict[str, Any]:
    job = job_of(call)
    rows = [serialize(call, r) for r in live_rows(call, "documents", job["ID"])]
    return listing(rows, len(rows))


def _disposition(name: str) -> str:
    ascii_name = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in name)
    header = f'attachment; filename="{ascii_name}"'
    return header if ascii_name == name else f"{header}; filename*=UTF-8''{quote(name, safe='')}"


async def download(call: Call) -> Response:
    row = file_row(call, "documents", "Document", None, call.params["uuid"])
    data = media.content(row, call.sandbox.blobs)
    if data is None:
        raise ApiError(404, "File not found on server")
    return Response(data, media_type=row["mime_type"],
                    headers={"Content-Disposition": _disposition(row["file_name"]), "Cache-Control": "private"})


def _store(data: bytes, kind: media.Kind, blobs: Any) -> tuple[str, int | None, int | None]:
    """Documents are stored as sent, but an image must be whole and readable: (blob key, width, height)."""
    width, height = media.inspect_image(data) if kind.name in media.IMAGES else (None, None)
    return blobs.put(data), width, height


async def upload(call: Call) -> dict[str, Any]:
    store = call.sandbox.store
    job = job_of(call, write=True)
    type_field = "file_type_id" if call.params.get("file_type_id") is not None else "document_type_id"
    type_id = call.params.get(type_field)
    if type_id is None:
        raise bad_param("file_type_id", "required: a file type ID from the file types list "
                                        "(or document_type_id)")
    file_type = store.raw("file_types", type_id)
    if file_type is None or file_type.get("org_id") not in (None, job["org_id"]):  # another org's custom type
        raise bad_param(type_field, f"no file type with ID {type_id}")
    data, kind, name = await read_upload(call, ("file",), ALLOWED)
    key, width, height = await in_thread("file", _store, data, kind, call.sandbox.blobs)
    job = job_of(call, write=True)  # again: the job may have changed while we worked
    row = store.insert("documents", {
        "ID": None, "uuid": None, "org_id": job["org_id"], "job_id": job["ID"], "file_type_id": type_id,
        "file_name": name, "mime_type": kind.mime, "size": len(data), "stored_size": len(data), "blob": key,
        "width": width, "height": height, "archived": False, "archived_at": None,
        "uploaded_by": call.principal.user_id, "created_at": call.sandbox.clock.iso(),
    })
    bump(call, job["ID"], "documents_count", +1)
    return ok(serialize(call, row))


async def delete(call: Call) -> dict[str, Any]:
    id_, uuid = call.params.get("document_id"), call.params.get("document_uuid")
    if id_ is None and uuid is None:
        first, other = ("document_uuid", "document_id") if call.action else ("document_id", "document_uuid")
        raise bad_param(first, f"required: the document to delete (or {other})")
    row = file_row(call, "documents", "Document", id_, uuid, write=True)
    archive(call, "documents", row, "documents_count")
    return ok()


async def thumbnail(call: Call) -> Response:
    """A JPEG whose longest side is `size` for image files (documents or photos); an SVG placeholder
    showing the file type when none can be made (PDF, DOCX, video, unreadable bytes)."""
    uuid, size = call.params["uuid"], call.params["size"]
    store = call.sandbox.store
    table, noun = ("documents", "Document") if store.raw_by_uuid("documents", uuid) else ("photos", "Document")
    row = file_row(call, table, noun, None, uuid)
    kind = media.BY_MIME.get(row["mime_type"])
    made = None
    if kind is not None and kind.name in media.IMAGES:
        made = media.cached_thumbnail(row.get("blob") or row["uuid"], size,
                                      lambda: media.content(row, call.sandbox.blobs))
    headers = {"Cache-Control": f"private, max-age={YEAR}, immutable"}
    if made is not None:
        return Response(made, media_type="image/jpeg", headers=headers)
    label = kind.ext.lstrip(".") if kind else row["file_name"].rpartition(".")[2]
    return Response(media.placeholder_svg(label, size), media_type="image/svg+xml", headers=headers)


PATH = "/api/jobs/documents"
MANAGE = "api.jobs.documents.manage"
DOC_KEYS = (Param("document_id", "integer", min=1), Param("document_uuid", "uuid"))

ENDPOINTS = [
    Endpoint("GET", PATH, list_documents, MANAGE, ("list",), params=JOB_KEYS, summary="A job's documents"),
    Endpoint("GET", PATH, download, MANAGE, ("download",), params=(Param("uuid", "uuid", required=True),),
             summary="Download a document's bytes (Content-Disposition: attachment)"),
    Endpoint("POST", PATH, upload, MANAGE, ("upload",), csrf=True,
             params=(*JOB_KEYS, Param("file_type_id", "integer", min=1), Param("document_type_id", "integer", min=1),
                     Param("file", "file")),
             summary="Upload a PDF, DOCX, JPEG or PNG document"),
    Endpoint("POST", PATH, delete, MANAGE, ("delete",), csrf=True, params=(*DOC_KEYS, *JOB_KEYS),
             summary="Delete (archive) a document by document_uuid or document_id"),
    Endpoint("DELETE", PATH, delete, MANAGE, csrf=True, params=DOC_KEYS,
             summary="Delete (archive) a document: JSON body {\"document_id\": <id>}"),
    Endpoint("GET", "/api/jobs/document-thumbnail", thumbnail, "api.jobs.document_thumbnail.view",
             params=(Param("uuid", "uuid", required=True),
                     Param("size", "integer", default=200, min=50, max=500, about="longest side in pixels")),
             summary="JPEG thumbnail of a document or photo; SVG placeholder when none can be made"),
]
