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
    "429": ("Rate limit exceeded; see Retry-After", "Rate limit exceeded. Wait for the number of seconds in "
                                                     "Retry-After, then retry."),
    "500": ("Server error", SERVER_ERROR),
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
    elif kind == "file":
        out = {"type": "string", "contentMediaType": "application/octet-stream"}
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
    def one(row: Endpoint, action: str | None) -> dict[str, Any]:
        props = {p.name: schema_of(p) for p in row.params}
        required = [p.name for p in row.params if p.required]
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

    variants = [one(row, a) for row in rows for a in (row.actions or (None,))]
    schema = variants[0] if len(variants) == 1 else {"oneOf": variants}
    multipart = any(p.type == "file" for row in rows for p in row.params)
    types = ["application/json", "application/x-www-form-urlencoded"] + (["multipart/form-data"] if multipart else [])
    return {"required": False, "content": {t: {"schema": schema} for t in types}}


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


def _operation(method: str, path: str, rows: list[Endpoint]) -> dict[str, Any]:
    first = rows[0]
    per_action = [{"action": a, "permission": r.permission, "csrf": r.csrf, "summary": r.summary,
                   **({"account_types": list(r.account_types)} if r.account_types else {})}
                  for r in rows for a in (r.actions or (None,))]
    summary = first.summary if len(rows) == 1 else "; ".join(
        f"{a or '(no action)'}: {r.summary}" for r in rows for a in (r.actions or (None,)))
    ok_status = str(first.status) if len(rows) == 1 else "200"
    op: dict[str, Any] = {
        "operationId": f"{method.lower()}{path.replace('/', '_').replace('-', '_').replace('{', '').replace('}', '')}",
        "summary": summary[:300],
        "tags": [path.strip("/").split("/")[1] if path.startswith("/api/") else "attachments"],
        "x-permission": sorted({r.permission for r in rows if r.permission}),
        "x-csrf": any(r.csrf for r in rows),
        "x-actions": per_action,
        "parameters": [] if method in _WRITES else _query(rows, path),
        "responses": {
            ok_status: {"description": "Success", "headers": _RATE_HEADERS,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Envelope"},
                                                         "example": {"success": True, "message": OK_MESSAGE}}}},
            **{code: {"description": why, "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/Error"},
                "example": {"success": False, "error": CSRF_INVALID if code == "403" and first.csrf else text}}}}
               for code, (why, text) in _ERRORS.items()},
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
                    "success": {"type": "boolean"}, "data": {}, "count": {"type": "integer"},
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
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
            variants = body.get("oneOf", [body] if body else [])
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
