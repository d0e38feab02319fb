"""The request path for everything under /api/, in the order the design notes give:

timing → rate limit (per IP) → route (dict hits: path, method, action) → auth → rate limit (per
account) → permission → body parsing → CSRF → parameter validation → handler → commit → envelope.

Every answer, success or error, leaves through `_finish`, which adds X-Response-Time-ms,
X-DB-Query-Time-ms and the X-RateLimit-* headers. Anything unexpected becomes a 500 envelope and one
log line; the client never sees a stack trace.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from typing import Any

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

from . import store as store_mod
from .endpoints import Call, Endpoint, Routes, validate
from .envelope import CSRF_INVALID, FORBIDDEN, SERVER_ERROR, ApiError, JSONEnvelope, bad_param
from .limiter import tighter
from .runtime import Sandbox

log = logging.getLogger("sandbox")

MAX_BODY = 2 * 1024 * 1024  # JSON and urlencoded bodies
MAX_UPLOAD = 20 * 1024 * 1024  # "Maximum 20 MB per file" (jobs guide)
_MULTIPART_SLACK = 256 * 1024  # room for the other form fields and part headers
TOO_LARGE_UPLOAD = f"Upload too large: files may be at most {MAX_UPLOAD // (1024 * 1024)} MB"
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class ApiApp:
    def __init__(self, sandbox: Sandbox, routes: Routes):
        self.sandbox = sandbox
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        db = store_mod.start_timer()
        request = Request(scope, _capped(receive, MAX_UPLOAD + _MULTIPART_SLACK))
        limiter = self.sandbox.limiter
        verdict = limiter.hit("ip:" + (request.client.host if request.client else "-"))
        try:
            if not verdict.allowed:
                raise _rate_limited()
            response, verdict = await self._handle(request, verdict)
        except ApiError as exc:
            endpoint = scope.get("sandbox.endpoint")
            if endpoint is not None and endpoint.errors == "text":
                response = PlainTextResponse(exc.error, status_code=exc.status, headers=exc.headers)
            else:
                response = JSONEnvelope(exc.body(), status_code=exc.status, headers=exc.headers)
        except ClientDisconnect:
            return
        except Exception as exc:  # the one place unexpected errors are caught
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            log.error(
                "500 on %s %s: %s: %s (%s:%s)",
                request.method, request.url.path, type(exc).__name__, exc, frame.filename, frame.lineno,
            )
            response = JSONEnvelope({"success": False, "error": SERVER_ERROR}, status_code=500)
        finally:
            await request.close()  # closes spooled upload files, whatever happened
        headers = response.headers
        for name, value in verdict.headers().items():
            headers[name] = value
        headers["X-DB-Query-Time-ms"] = f"{db[0] * 1000:.3f}"
        headers["X-Response-Time-ms"] = f"{(time.perf_counter() - started) * 1000:.3f}"
        await response(scope, receive, send)

    async def _handle(self, request: Request, verdict: Any) -> tuple[Response, Any]:
        method, url_path = request.method, request.url.path
        methods, path, path_params = self.routes.match(url_path)
        if methods is None:
            raise ApiError(404, f"Endpoint not found: {method} {url_path}")
        actions = methods.get(method)
        if actions is None:
            allowed = ", ".join(sorted(methods))
            raise ApiError(405, f"Method {method} is not allowed on {path} (allowed: {allowed})",
                           headers={"Allow": allowed})

        body = await _read_body(request) if method in _WRITES else {}
        query = _query(request)
        raw = {**query, **body} if method in _WRITES else query
        raw.update(path_params)
        endpoint, action = self._pick(actions, raw, method, path)
        request.scope["sandbox.endpoint"] = endpoint

        principal = None
        if endpoint.auth != "none":
            header = request.headers.get("authorization")
            if endpoint.auth == "required" or header:
                principal = self.sandbox.auth.authenticate(header)
                verdict = tighter(verdict, self.sandbox.limiter.hit(f"user:{principal.user_id}"))
                if not verdict.allowed:
                    raise _rate_limited()
                if not principal.can(endpoint.permission):
                    raise ApiError(403, FORBIDDEN)
                if endpoint.account_types and principal.account_type_id not in endpoint.account_types:
                    raise ApiError(403, FORBIDDEN)
        if endpoint.csrf:
            token = request.headers.get("x-csrf-token") or raw.get("csrf_token")
            if principal is None or not self.sandbox.auth.check_csrf(principal, token):
                raise ApiError(403, CSRF_INVALID)

        call = Call(request, endpoint, self.sandbox, validate(endpoint.params, raw), principal, action)
        result = await endpoint.handler(call)
        if method in _WRITES or endpoint.path == "/api/security/csrf-token":
            await self.sandbox.store.commit()
        if isinstance(result, Response):
            return result, verdict
        return JSONEnvelope(result, status_code=endpoint.status), verdict

    def _pick(self, actions: dict[str | None, Endpoint], raw: dict, method: str, path: str):
        action = raw.get("action")
        if isinstance(action, str) and action in actions:
            return actions[action], action
        named = len(actions) > (None in actions)
        if None in actions and (not named or action is None or action == ""):
            # The row without an action: alone, it ignores `action`; beside named actions, it serves
            # requests that give none (a documented create).
            return actions[None], None
        if action is None or action == "":
            default = self.routes.defaults.get((path, method))
            if default is not None:
                return default, default.actions[0]
        if not isinstance(action, str) or not action:
            raise bad_param("action", "one of " + self.routes.action_lists[(path, method)])
        endpoint = actions.get(action)
        if endpoint is None:
            raise bad_param("action", f"unknown action {action!r}; one of {self.routes.action_lists[(path, method)]}")
        return endpoint, action


def _rate_limited() -> ApiError:
    return ApiError(429, "Rate limit exceeded. Wait for the number of seconds in Retry-After, then retry.")


def _query(request: Request) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in request.query_params.multi_items():
        _put(out, key, value)
    return out


def _put(out: dict[str, Any], key: str, value: Any) -> None:
    """PHP-style form arrays: ``tenants_ids[]=1&tenants_ids[]=2`` and repeated keys become lists."""
    if key.endswith("[]"):
        out.setdefault(key[:-2], []).append(value)
    elif key in out:
        prev = out[key]
        out[key] = [*prev, value] if isinstance(prev, list) else [prev, value]
    else:
        out[key] = value


async def _read_body(request: Request) -> dict[str, Any]:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype in _FORM_TYPES:
        return await _read_form(request, ctype)
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY:
        raise ApiError(413, f"Request body too large (limit {MAX_BODY // 1024} KB)")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise ApiError(413, f"Request body too large (limit {MAX_BODY // 1024} KB)")
        chunks.append(chunk)
    data = b"".join(chunks)
    if not data.strip():
        return {}
    if ctype and ctype != "application/json" and not ctype.endswith("+json"):
        raise ApiError(400, f"Unsupported Content-Type {ctype!r}: send application/json, "
                            "application/x-www-form-urlencoded or multipart/form-data")
    try:
        parsed = json.loads(data)
    except UnicodeDecodeError:
        raise ApiError(400, "Malformed JSON body: not valid UTF-8") from None
    except json.JSONDecodeError as exc:
        raise ApiError(400, f"Malformed JSON body: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if not isinstance(parsed, dict):
        raise ApiError(400, "Malformed JSON body: expected an object of named fields")
    return parsed


def _capped(receive: Receive, cap: int) -> Receive:
    """Count body bytes as they arrive and stop at `cap`, so an oversized upload is refused without
    reading it all (a declared Content-Length over the cap is refused before reading anything)."""
    seen = 0

    async def capped() -> Any:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > cap:
                raise ApiError(413, TOO_LARGE_UPLOAD)
        return message

    return capped


async def _read_form(request: Request, ctype: str) -> dict[str, Any]:
    declared = request.headers.get("content-length")
    limit = MAX_UPLOAD + _MULTIPART_SLACK if ctype.startswith("multipart") else MAX_BODY
    if declared and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, TOO_LARGE_UPLOAD if ctype.startswith("multipart") else "Request body too large")
    try:
        form = await request.form(max_files=10, max_fields=1000)
    except (MultiPartException, ValueError) as exc:  # python-multipart's errors are ValueErrors
        kind = "multipart" if ctype.startswith("multipart") else "form"
        raise ApiError(400, f"Malformed {kind} body: {exc}") from None
    out: dict[str, Any] = {}
    for key, value in form.multi_items():
        _put(out, key, value if isinstance(value, UploadFile) else str(value))
    return out
