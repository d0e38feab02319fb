"""Configuration endpoints of the admin reference, served through `admin.py` (which adds the Staff-only
account type): ``POST /api/admin/document-types`` and ``POST /api/admin/job-tags`` (create/update/delete)
and ``POST /api/admin/documents`` (save a legal document).

- Document types are the ``file_types`` that job document uploads take as ``document_type_id``. The
  seeded ones are shared by every organisation and read-only; an organisation's own (``org_id`` set) can
  be renamed, and deleted while no document uses them. Another organisation's type answers 404.
- Job tags (index-only in the docs: names inferred from document types): ``job_tags`` rows {tag_name,
  colour}, unique names per organisation.
- Legal documents: an upsert keyed by ``id``; the Markdown is stored with its rendered HTML, and
  ``version`` goes up each time the content changes (GDPR consent records quote it).
"""

from __future__ import annotations

import html
import re
from typing import Any

from ..endpoints import Call, Endpoint, Param
from ..envelope import ApiError, bad_param, not_found, ok
from ..store import Row
from ._activity import log

_COLOUR = re.compile(r"#[0-9A-Fa-f]{6}")
_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


def _text(call: Call, name: str, *, required: bool) -> str | None:
    value = call.params.get(name)
    value = value.strip() if isinstance(value, str) else None
    if required and not value:
        raise bad_param(name, "required")
    return value or None


def _target(call: Call, table: str, name: str, what: str, visible) -> Row:
    row = call.sandbox.store.raw(table, call.params[name])  # required by the update/delete rows
    if row is None or not visible(row):
        raise not_found(what)
    return row


# -- document types ------------------------------------------------------------------------------------

def _types_visible(call: Call):
    return lambda r: r.get("org_id") in (None, call.principal.org_id)


def _unique_type(call: Call, name: str, own: int | None = None) -> None:
    seen = call.sandbox.store.select("file_types", lambda r: _types_visible(call)(r) and r["ID"] != own
                                     and r["name"].strip().lower() == name.lower())
    if seen:
        raise bad_param("type_name", f"a document type named {seen[0]['name']!r} already exists")


async def document_types(call: Call) -> dict[str, Any]:
    store, action = call.sandbox.store, call.action
    if action == "create":
        name = _text(call, "type_name", required=True)
        _unique_type(call, name)
        row = store.insert("file_types", {"ID": None, "name": name, "org_id": call.principal.org_id,
                                          "created_at": call.sandbox.clock.iso()})
        log(call, "document_type.created", "document_type", row["ID"], details=name)
        return ok({"document_type_id": row["ID"], "type_name": name}, message="Document type created",
                  document_type_id=row["ID"])
    row = _target(call, "file_types", "document_type_id", "Document type", _types_visible(call))
    if row.get("org_id") is None:
        raise ApiError(403, f"Document type {row['name']!r} is built in and shared by every organisation: "
                            "it cannot be changed; create your own instead")
    if action == "update":
        name = _text(call, "type_name", required=True)
        _unique_type(call, name, row["ID"])
        store.update("file_types", row["ID"], {"name": name})
        log(call, "document_type.updated", "document_type", row["ID"], details=name)
        return ok({"document_type_id": row["ID"], "type_name": name}, message="Document type updated")
    used = len(store.select("documents", where=(("file_type_id", row["ID"]),)))  # documents is big: indexed
    if used:
        raise ApiError(400, f"Document type {row['name']!r} cannot be deleted: {used} document(s) use it")
    store.delete("file_types", [row["ID"]])
    log(call, "document_type.deleted", "document_type", row["ID"], details=row["name"])
    return ok(message="Document type deleted")


# -- job tags ------------------------------------------------------------------------------------------

def _tags_visible(call: Call):
    return lambda r: r["org_id"] == call.principal.org_id


def _tag_fields(call: Call, own: int | None) -> Row:
    out: Row = {}
    name = _text(call, "tag_name", required=own is None)
    if name is not None:
        taken = call.sandbox.store.select("job_tags", lambda r: _tags_visible(call)(r) and r["ID"] != own
                                          and r["tag_name"].lower() == name.lower())
        if taken:
            raise bad_param("tag_name", f"a job tag named {taken[0]['tag_name']!r} already exists")
        out["tag_name"] = name
    if "colour" in call.params:
        colour = _text(call, "colour", required=False)
        if colour is not None and not _COLOUR.fullmatch(colour):
            raise bad_param("colour", "must be a hex colour such as #1E88E5")
        out["colour"] = colour.upper() if colour else None
    return out


def tag_row(row: Row) -> Row:
    return {k: row.get(k) for k in ("ID", "uuid", "tag_name", "colour", "created_at", "updated_at")}


async def job_tags(call: Call) -> dict[str, Any]:
    store, action, now = call.sandbox.store, call.action, call.sandbox.clock.iso()
    if action == "create":
        fields = _tag_fields(call, None)
        row = store.insert("job_tags", {"ID": None, "uuid": None, "org_id": call.principal.org_id, "colour": None,
                                        **fields, "created_at": now, "updated_at": now})
        log(call, "job_tag.created", "job_tag", row["ID"], details=row["tag_name"])
        return ok(tag_row(row), message="Job tag created", job_tag_id=row["ID"])
    row = _target(call, "job_tags", "job_tag_id", "Job tag", _tags_visible(call))
    if action == "update":
        fields = _tag_fields(call, row["ID"])
        if not fields:
            raise bad_param("tag_name", "give tag_name or colour to change")
        row = store.update("job_tags", row["ID"], {**fields, "updated_at": now})
        log(call, "job_tag.updated", "job_tag", row["ID"], details=row["tag_name"])
        return ok(tag_row(row), message="Job tag updated")
    store.delete("job_tags", [row["ID"]])
    log(call, "job_tag.deleted", "job_tag", row["ID"], details=row["tag_name"])
    return ok(message="Job tag deleted")


# -- legal documents -----------------------------------------------------------------------------------

def render(markdown: str) -> str:
    """A small Markdown subset (headings, bullet lists, paragraphs, **bold**, *italic*), HTML-escaped."""
    def inline(text: str) -> str:
        text = html.escape(text)
        text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)
        return re.sub(r"\*(.+?)\*", r"<em>\1</em>", text)

    out: list[str] = []
    for block in re.split(r"\n\s*\n", markdown.strip()):
        lines = [line.strip() for line in block.splitlines() if line.strip()]
        heading = re.match(r"(#{1,6})\s+(.*)", lines[0]) if lines else None
        if heading and len(lines) == 1:
            level = len(heading.group(1))
            out.append(f"<h{level}>{inline(heading.group(2))}</h{level}>")
        elif lines and all(line.startswith(("- ", "* ")) for line in lines):
            out.append("<ul>" + "".join(f"<li>{inline(line[2:])}</li>" for line in lines) + "</ul>")
        elif lines:
            out.append(f"<p>{inline(' '.join(lines))}</p>")
    return "\n".join(out)


def legal_row(row: Row) -> Row:
    return {k: row.get(k) for k in ("ID", "uuid", "document_type", "document_title", "slug", "content",
                                    "content_html", "is_active", "version", "created_at", "updated_at")}


async def save_document(call: Call) -> dict[str, Any]:
    store, p, now, org = call.sandbox.store, call.params, call.sandbox.clock.iso(), call.principal.org_id
    current = None
    if p.get("id") is not None:
        current = _target(call, "legal_documents", "id", "Document", lambda r: r["org_id"] == org)
    fields: Row = {}
    for name in ("document_type", "document_title", "content"):
        if name in p:
            value = _text(call, name, required=current is None)
            if value is None:
                raise bad_param(name, "required; it cannot be cleared")
            fields[name] = value
    if current is None:
        for name in ("document_type", "document_title", "content"):
            if name not in fields:
                raise bad_param(name, "required to create a document")
    slug = _text(call, "slug", required=False) if "slug" in p else None
    if slug is None and current is None:
        slug = re.sub(r"[^a-z0-9]+", "-", fields["document_title"].lower()).strip("-") or "document"
    if slug is not None:
        if not _SLUG.fullmatch(slug):
            raise bad_param("slug", "must be lower-case letters, digits and single hyphens, e.g. terms-and-conditions")
        own = current["ID"] if current else None
        if store.select("legal_documents", lambda r: r["org_id"] == org and r["slug"] == slug and r["ID"] != own):
            raise bad_param("slug", f"another document already uses the slug {slug!r}")
        fields["slug"] = slug
    if "is_active" in p and p["is_active"] is not None:
        fields["is_active"] = p["is_active"]
    if "content" in fields:
        fields["content_html"] = render(fields["content"])
    if current is None:
        row = store.insert("legal_documents", {"ID": None, "uuid": None, "org_id": org, "is_active": True,
                                               "version": 1, **fields, "created_by": call.principal.user_id,
                                               "created_at": now, "updated_at": now})
        log(call, "legal_document.created", "legal_document", row["ID"], details=row["slug"])
        return ok(legal_row(row), message="Document saved", document_id=row["ID"])
    if "content" in fields and fields["content"] != current["content"]:
        fields["version"] = current["version"] + 1
    row = store.update("legal_documents", current["ID"], {**fields, "updated_at": now})
    log(call, "legal_document.updated", "legal_document", row["ID"], details=row["slug"])
    return ok(legal_row(row), message="Document saved", document_id=row["ID"])


def _type_params(action: str) -> tuple[Param, ...]:
    return (Param("type_name", max_length=100, about="create/update"),
            Param("document_type_id", "integer", required=action != "create", min=1, about="update/delete"))


def _tag_params(action: str) -> tuple[Param, ...]:
    return (Param("tag_name", max_length=50, about="create/update (name assumed)"),
            Param("colour", max_length=7, about="#RRGGBB (name assumed)"),
            Param("job_tag_id", "integer", required=action != "create", min=1, about="update/delete (name assumed)"))


ROWS = [
    *(Endpoint("POST", "/api/admin/document-types", document_types, "api.admin.document-types.manage", (action,),
               csrf=True, params=_type_params(action), summary=f"{action.capitalize()} a document type")
      for action in ("create", "update", "delete")),
    *(Endpoint("POST", "/api/admin/job-tags", job_tags, "api.admin.job-tags.manage", (action,), csrf=True,
               params=_tag_params(action), summary=f"{action.capitalize()} a job tag")
      for action in ("create", "update", "delete")),
    Endpoint("POST", "/api/admin/documents", save_document, "api.admin.documents.manage", ("save",), csrf=True,
             params=(Param("id", "integer", min=1, about="existing document to update; absent = create"),
                     Param("document_type", max_length=100), Param("document_title", max_length=255),
                     Param("slug", max_length=255), Param("content", max_length=200_000),
                     Param("is_active", "boolean")),
             summary="Create or update a legal document (Markdown, rendered to HTML)"),
]
