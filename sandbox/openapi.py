"""`GET /openapi.json` (OpenAPI 3.1) and `GET /docs`, both generated from the endpoint tables.

One operation per (method, path). Where several rows share it (one per `action`), the operation lists
the actions: a write's request body is a `oneOf` with one schema per action (`action` a constant, that
action's own required fields), a read's `action` parameter is an enum. Every operation carries its
permission keys (`x-permission`, and per action in `x-actions`) and whether CSRF is required. The
document is built once, at start-up.
"""

from __future__ import annotations

import html
import json
from collections import defaultdict
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from ._version import __version__
from .endpoints import Endpoint, Param, Routes
from .envelope import CSRF_INVALID, FORBIDDEN, OK_MESSAGE, SERVER_ERROR, UNAUTHENTICATED

_WRITES = {"POST", "PUT", "PATCH", "DELETE"}
_ERRORS = {
    "400": ("Invalid parameters", "Invalid or missing required parameter: job_id"),
    "401": ("Not authenticated", UNAUTHENTICATED),
    "403": ("Insufficient permissions (or a missing CSRF token on writes that need one)", FORBIDDEN),
    "404": ("Not found, deleted or another organisation's", "Job not found"),
    "413": ("Request body too large: 2 MB for JSON and form bodies, 20 MB per uploaded file",
            "Request body too large (limit 2048 KB)"),
    "429": ("Rate limit exceeded; see Retry-After", "Rate limit exceeded. Wait for the number of seconds in "
                                                     "Retry-After, then retry."),
    "500": ("Server error", SERVER_ERROR),
    "503": ("Maintenance mode (callers other than Staff); see Retry-After",
            "PropOps is in maintenance mode. Please try again later."),
}
# The attachment guide's own sentences, for the plain-text operations' examples.
_TEXT_EXAMPLES = {"400": "Attachment UUID is required", "403": "You do not have permission to download this attachment",
                  "404": "Attachment not found"}
_BODY_ONLY = {"413"}  # only operations that take a request body answer it
_ANY_FILE = "*/*"  # the stored file's own type
# Successes that are not (only) the JSON envelope: (method, path) -> (other media types, envelope too?).
_DOWNLOADS: dict[tuple[str, str], tuple[tuple[str, ...], bool]] = {
    ("GET", "/api/admin/branches"): (("text/csv",), True),  # action=download_template
    ("GET", "/api/contractors/certification"): ((_ANY_FILE,), True),  # with `file`: the certificate
    ("GET", "/api/jobs/documents"): ((_ANY_FILE,), True),  # action=download
    ("GET", "/api/jobs/document-thumbnail"): (("image/jpeg", "image/svg+xml"), False),
    ("GET", "/attachment/{uuid}"): ((_ANY_FILE,), False),
    ("GET", "/attachment/{uuid}/thumbnail"): ((_ANY_FILE,), False),
}
_RATE_HEADERS = {
    name: {"description": text, "schema": {"type": "integer" if name != "X-Response-Time-ms" else "number"}}
    for name, text in (
        ("X-RateLimit-Limit", "Requests allowed in the current window"),
        ("X-RateLimit-Remaining", "Requests left in the current window"),
        ("X-RateLimit-Reset", "Unix time when the window resets"),
        ("X-Response-Time-ms", "Server-side time for the request"),
    )
}


def schema_of(p: Param) -> dict[str, Any]:
    kind = p.type
    if kind == "integer":
        out: dict[str, Any] = {"type": "integer"}
    elif kind == "number":
        out = {"type": "number"}
    elif kind == "boolean":
        out = {"type": "boolean"}
    elif kind == "int_list":
        out = {"type": "array", "items": {"type": "integer"}}
    elif kind == "file":  # a multipart part with a filename (3.1 spelling, and 3.0's `format` for older tools)
        out = {"type": "string", "format": "binary", "contentMediaType": "application/octet-stream"}
    elif kind == "object":
        out = {"type": ["object", "array"]}
    else:
        out = {"type": "string"}
        if kind in ("uuid", "date", "email"):
            out["format"] = kind
    if p.min is not None:
        out["minimum"] = p.min
    if p.max is not None:
        out["maximum"] = p.max
    if p.enum:
        out["enum"] = list(p.enum)
    if p.max_length:
        out["maxLength"] = p.max_length
    if p.default is not None:
        out["default"] = p.default
    if p.about:
        out["description"] = p.about
    return out


def _body(rows: list[Endpoint]) -> dict[str, Any]:
    """The request body schema per media type. Files travel only in multipart bodies, so the JSON and
    urlencoded schemas leave file fields out and multipart is documented for the upload actions only
    (the dispatcher reads any action from any of the three)."""

    def one(row: Endpoint, action: str | None, files: bool) -> dict[str, Any]:
        params = [p for p in row.params if files or p.type != "file"]
        props = {p.name: schema_of(p) for p in params}
        required = [p.name for p in params if p.required]
        if action is not None:
            props["action"] = {"const": action}
            if not row.default:
                required.insert(0, "action")
        if row.csrf:
            props["csrf_token"] = {"type": "string", "description": "or the X-CSRF-Token header"}
        schema: dict[str, Any] = {"type": "object", "properties": props}
        if required:
            schema["required"] = required
        return schema

    def schema(chosen: list[Endpoint], files: bool) -> dict[str, Any]:
        variants = [one(row, a, files) for row in chosen for a in (row.actions or (None,))]
        return variants[0] if len(variants) == 1 else {"oneOf": variants}

    plain = schema(rows, False)
    content = {t: {"schema": plain} for t in ("application/json", "application/x-www-form-urlencoded")}
    uploads = [row for row in rows if any(p.type == "file" for p in row.params)]
    if uploads:
        content["multipart/form-data"] = {"schema": schema(uploads, True)}
    return {"required": False, "content": content}


def _query(rows: list[Endpoint], path: str) -> list[dict[str, Any]]:
    params: dict[str, dict[str, Any]] = {}
    actions = [a for row in rows for a in row.actions]
    if actions:
        params["action"] = {"name": "action", "in": "query", "required": not any(r.default or not r.actions
                                                                                  for r in rows),
                            "schema": {"type": "string", "enum": actions}}
    for row in rows:
        for p in row.params:
            where = "path" if "{" + p.name + "}" in path else "query"
            required = where == "path" or (p.required and len(rows) == 1)
            params.setdefault(p.name, {"name": p.name, "in": where, "required": required, "schema": schema_of(p)})
    return list(params.values())


def _error_content(code: str, text: str, plain: bool) -> dict[str, Any]:
    content = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"},
                                    "example": {"success": False, "error": text}}}
    if not plain:
        return content
    # The documented plain-text errors of /attachment/ (every one, the per-IP 429 and a 500 included).
    return {"text/plain": {"schema": {"type": "string"}, "example": _TEXT_EXAMPLES.get(code, text)}}


def _operation(method: str, path: str, rows: list[Endpoint]) -> dict[str, Any]:
    first = rows[0]
    per_action = [{"action": a, "permission": r.permission, "csrf": r.csrf, "summary": r.summary,
                   **({"account_types": list(r.account_types)} if r.account_types else {})}
                  for r in rows for a in (r.actions or (None,))]
    summary = first.summary if len(rows) == 1 else "; ".join(
        f"{a or '(no action)'}: {r.summary}" for r in rows for a in (r.actions or (None,)))
    ok_statuses = sorted({str(r.status) for r in rows})  # e.g. create answers 201, the other actions 200
    ok_content: dict[str, Any] = {"application/json": {"schema": {"$ref": "#/components/schemas/Envelope"},
                                                       "example": {"success": True, "message": OK_MESSAGE}}}
    other_types, envelope_too = _DOWNLOADS.get((method, path), ((), True))
    if not envelope_too:
        ok_content = {}
    ok_content |= {t: {"schema": {"type": "string"}} if t.startswith("text/") else {} for t in other_types}
    text_errors = all(r.errors == "text" for r in rows)
    errors = {code: why_text for code, why_text in _ERRORS.items() if code not in _BODY_ONLY or method in _WRITES}
    op: dict[str, Any] = {
        "operationId": f"{method.lower()}{path.replace('/', '_').replace('-', '_').replace('{', '').replace('}', '')}",
        "summary": summary[:300],
        "tags": [path.strip("/").split("/")[1] if path.startswith("/api/") else "attachments"],
        "x-permission": sorted({r.permission for r in rows if r.permission}),
        "x-csrf": any(r.csrf for r in rows),
        "x-actions": per_action,
        "parameters": [] if method in _WRITES else _query(rows, path),
        "responses": {
            **{status: {"description": "Success" if status == "200" else "Created", "headers": _RATE_HEADERS,
                        "content": ok_content} for status in ok_statuses},
            **{code: {"description": why, "content": _error_content(
                code, CSRF_INVALID if code == "403" and first.csrf else text, text_errors)}
               for code, (why, text) in errors.items()},
        },
    }
    if method in _WRITES:
        op["requestBody"] = _body(rows)
        path_params = [p for p in _query(rows, path) if p["in"] == "path"]
        op["parameters"] = path_params
    auth = {r.auth for r in rows}
    op["security"] = [] if auth == {"none"} else ([{}, {"bearerAuth": []}] if "none" in auth or "optional" in auth
                                                  else [{"bearerAuth": []}])
    return op


def document(routes: Routes) -> dict[str, Any]:
    grouped: dict[tuple[str, str], list[Endpoint]] = defaultdict(list)
    for row in routes.rows:
        grouped[(row.path, row.method)].append(row)
    paths: dict[str, dict[str, Any]] = defaultdict(dict)
    for (path, method), rows in sorted(grouped.items()):
        paths[path][method.lower()] = _operation(method, path, rows)
    return {
        "openapi": "3.1.0",
        "info": {"title": "PropOps API (PropOps Sandbox)", "version": __version__,
                 "description": "The PropOps REST API as the sandbox serves it. Every answer is the envelope; "
                                "`x-permission` names the permission key, `x-csrf` whether a CSRF token is "
                                "needed (JSON or form field `csrf_token`, or header `X-CSRF-Token`)."},
        "servers": [{"url": "/"}],
        "paths": dict(paths),
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer",
                                               "description": "64-hex token from POST /api/auth/login"}},
            "schemas": {
                "Envelope": {"type": "object", "required": ["success"], "properties": {
                    "success": {"const": True}, "data": {}, "count": {"type": "integer"},
                    "total": {"type": "integer"}, "message": {"type": "string"}}},
                "Error": {"type": "object", "required": ["success", "error"], "properties": {
                    "success": {"const": False}, "error": {"type": "string"}}},
            },
        },
    }


def _docs_page(spec: dict[str, Any]) -> str:
    e = html.escape
    parts = [f"<h1>{e(spec['info']['title'])}</h1><p>{e(spec['info']['description'])}</p>",
             "<p>The machine-readable document: <a href='/openapi.json'>/openapi.json</a>.</p>"]
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            keys = ", ".join(op["x-permission"]) or "signed-in callers" if op["security"] else "no token"
            parts.append(f"<section id='{e(op['operationId'])}'><h2><span class='m {method}'>{method.upper()}</span>"
                         f" <code>{e(path)}</code></h2><p>{e(op['summary'])}</p><p class='meta'>Permission: "
                         f"{e(keys)}{' · CSRF required' if op['x-csrf'] else ''}</p>")
            rows = op["parameters"] or []
            bodies = [c["schema"] for c in op.get("requestBody", {}).get("content", {}).values()]
            variants = [v for body in bodies for v in body.get("oneOf", [body])]  # multipart adds the files
            fields = {n: (s, n in v.get("required", ())) for v in variants for n, s in v.get("properties", {}).items()}
            listed = [(p["name"], p["schema"], p["required"]) for p in rows]
            listed += [(n, s, r) for n, (s, r) in fields.items()]
            if listed:
                parts.append("<table><tr><th>parameter</th><th>type</th><th>required</th><th>notes</th></tr>")
                for name, schema, required in listed:
                    kind = schema.get("format") or schema.get("type") or ("one of" if "const" in schema else "")
                    notes = ", ".join(str(x) for x in schema.get("enum", [])) or str(schema.get("const", "")) \
                        or schema.get("description", "")
                    parts.append(f"<tr><td><code>{e(name)}</code></td><td>{e(str(kind))}</td>"
                                 f"<td>{'yes' if required else ''}</td><td>{e(str(notes))}</td></tr>")
                parts.append("</table>")
            parts.append("</section>")
    style = ("body{font:15px/1.5 system-ui,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;color:#1f2937}"
             "section{border-top:1px solid #e5e7eb;padding:.5em 0}h2{font-size:1.05em}table{border-collapse:collapse;"
             "width:100%}td,th{border:1px solid #e5e7eb;padding:.2em .5em;text-align:left;font-size:.9em}"
             ".m{font-size:.8em;padding:.1em .4em;border-radius:4px;color:#fff;background:#2563eb}"
             ".post{background:#16a34a}.put,.patch{background:#d97706}.delete{background:#dc2626}.meta{color:#6b7280}")
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>PropOps Sandbox API</title>"
            f"<style>{style}</style></head><body>{''.join(parts)}</body></html>")


def routes(api_routes: Routes) -> list[Route]:
    spec = document(api_routes)
    spec_bytes = json.dumps(spec, ensure_ascii=False).encode()
    page = _docs_page(spec)

    async def openapi(request: Request) -> Response:
        return Response(spec_bytes, media_type="application/json")

    async def docs(request: Request) -> HTMLResponse:
        return HTMLResponse(page)

    return [Route("/openapi.json", openapi), Route("/docs", docs)]
