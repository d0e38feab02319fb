"""The request path for everything under /api/, in the order the design notes give:

timing → rate limit (per IP) → route (dict hits: path, method, action) → auth → rate limit (per
account) → permission → body parsing → CSRF → parameter validation → handler → commit → envelope.

Every answer, success or error, leaves through `_finish`, which adds X-Response-Time-ms,
X-DB-Query-Time-ms and the X-RateLimit-* headers. Anything unexpected becomes a 500 envelope and one
log line; the client never sees a stack trace.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
import traceback
from typing import Any

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

from . import store as store_mod
from .auth import STAFF, Principal
from .endpoints import Call, Endpoint, Routes, validate
from .envelope import CSRF_INVALID, FORBIDDEN, SERVER_ERROR, UNAUTHENTICATED, ApiError, JSONEnvelope, bad_param
from .limiter import Limiter, Verdict, tighter
from .runtime import Sandbox
from .scenarios import Scenario, ScenarioError

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
        trouble = self.sandbox.trouble
        outcome = None
        # The unauthenticated health probe (Docker's HEALTHCHECK, uptime monitors) stays out of scenarios and
        # the journal: it must not flap a container, nor shift the seeded fault sequence a test replays.
        probe = scope["path"] == HEALTH_PATH and scope["method"] == "GET" and _is_probe(scope)
        try:
            try:
                scenario = HEALTHY if probe else trouble.for_request(request.headers.get("x-sandbox-scenario"))
            except ScenarioError as exc:
                scenario = trouble.active
                raise ApiError(400, f"X-Sandbox-Scenario: {exc}") from None
            finally:
                limiter = trouble.limiter(scenario)
                verdict = limiter.hit("ip:" + (request.client.host if request.client else "-"))
            storm = trouble.storm(scenario)
            if storm is not None:  # a storm refuses everything, and says truthfully for how long
                verdict = Verdict(False, verdict.limit, 0, math.ceil(time.time() + storm), math.ceil(storm))
                scope["sandbox.effects"] = ["storm"]
            if not verdict.allowed:
                raise _rate_limited()
            scope["sandbox.scenario"] = scenario
            response, verdict, outcome = await self._handle(request, verdict, scenario, limiter)
        except ApiError as exc:
            if _text_errors(scope):
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
            if _text_errors(scope):
                response = PlainTextResponse(SERVER_ERROR, status_code=500)
            else:
                response = JSONEnvelope({"success": False, "error": SERVER_ERROR}, status_code=500)
        finally:
            await request.close()  # closes spooled upload files, whatever happened
        headers = response.headers
        for name, value in verdict.headers().items():
            headers[name] = value
        headers["X-DB-Query-Time-ms"] = f"{db[0] * 1000:.3f}"
        headers["X-Response-Time-ms"] = f"{(time.perf_counter() - started) * 1000:.3f}"
        effects = scope.get("sandbox.effects", [])
        if outcome is not None:
            effects.append(outcome)
        if not probe:
            self.sandbox.journal.record(
                at=self.sandbox.clock.iso(), method=request.method, path=request.url.path,
                query=dict(request.query_params), body=scope.get("sandbox.raw"), status=response.status_code,
                duration_ms=round((time.perf_counter() - started) * 1000, 3), scenario=scenario.name, effects=effects,
            )
        if outcome is None:
            await response(scope, receive, send)
        else:
            await _broken(response, outcome, send)

    async def _handle(self, request: Request, verdict: Verdict, scenario: Scenario,
                      limiter: Limiter) -> tuple[Response, Verdict, str | None]:
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
        request.scope["sandbox.raw"] = body  # for the journal (masked there)
        endpoint, action = self._pick(actions, raw, method, path)
        request.scope["sandbox.endpoint"] = endpoint

        sandbox = self.sandbox
        principal = None
        if endpoint.auth != "none":
            header = request.headers.get("authorization")
            if endpoint.auth == "required" or header:
                principal = sandbox.auth.authenticate(header)
                if sandbox.trouble.token_expired(scenario, principal, sandbox.clock.now()):
                    request.scope["sandbox.effects"] = ["token_expired"]
                    raise ApiError(401, UNAUTHENTICATED)
                verdict = tighter(verdict, limiter.hit(f"user:{principal.user_id}"))
                if not verdict.allowed:
                    raise _rate_limited()
        # Scenario trouble is decided here: after we know who is calling, before anything changes state.
        outcome = await self._trouble(scenario, principal, method, url_path, action, request.scope)
        if principal is not None:
            if not principal.can(endpoint.permission):
                raise ApiError(403, FORBIDDEN)
            if endpoint.account_types and principal.account_type_id not in endpoint.account_types:
                raise ApiError(403, FORBIDDEN)
        if endpoint.csrf:
            token = request.headers.get("x-csrf-token") or raw.get("csrf_token")
            if principal is None or not sandbox.auth.check_csrf(principal, token, scenario.csrf_single_use):
                raise ApiError(403, CSRF_INVALID)
        if outcome == "truncate" and method not in _SAFE:
            raise ApiError(500, SERVER_ERROR)  # a write is never run to be cut short: no state changes

        if outcome == "drop":
            return JSONEnvelope({}), verdict, outcome
        call = Call(request, endpoint, sandbox, validate(endpoint.params, raw), principal, action)
        result = await endpoint.handler(call)
        doomed = sandbox.blobs.doomed()  # files whose rows are gone: removed once that is on disk
        await sandbox.store.commit()  # a no-op unless the handler changed something (CSRF issue, audit rows…)
        if doomed:
            sandbox.blobs.reap(doomed)
        if isinstance(result, Response):
            return result, verdict, outcome
        return JSONEnvelope(result, status_code=endpoint.status), verdict, outcome

    async def _trouble(self, scenario: Scenario, principal: Principal | None, method: str, path: str,
                       action: str | None, scope: Scope) -> str | None:
        """Maintenance, then the fault rules: sleep the latency, raise an error, or return "drop" /
        "truncate" for __call__ to break the answer."""
        if principal is not None and principal.account_type_id != STAFF:
            enabled, reason = self.sandbox.trouble.maintenance(scenario)
            if enabled:
                scope["sandbox.effects"] = ["maintenance"]
                raise _maintenance(reason)
        if not scenario.faults:
            return None
        role = principal.role if principal is not None else "anonymous"
        decision = self.sandbox.trouble.decide(scenario, method, path, action, role)
        effects = scope.setdefault("sandbox.effects", [])
        if decision.latency_ms:
            effects.append(f"latency {decision.latency_ms:.0f} ms")
            await asyncio.sleep(decision.latency_ms / 1000)
        fault = decision.fault
        if fault is None:
            return None
        if fault.effect in ("error", "maintenance"):
            effects.append(f"{fault.effect} {fault.status}")
        if fault.effect == "maintenance":
            raise _maintenance(fault.message or self.sandbox.trouble.maintenance(scenario)[1], fault.status)
        if fault.effect == "error":
            headers = dict(fault.headers)
            if fault.status == 429:
                headers.setdefault("Retry-After", "1")
            raise ApiError(fault.status, fault.message or _REASONS.get(fault.status, SERVER_ERROR), headers=headers)
        return fault.effect

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


_SAFE = frozenset({"GET", "HEAD"})
HEALTH_PATH = "/api/system/heartbeat"
HEALTHY = Scenario(name="default")  # no faults, no storms, the default limiter


def _is_probe(scope: Scope) -> bool:
    query = scope.get("query_string", b"")
    has_token = any(name == b"authorization" for name, _ in scope["headers"])
    return not has_token and (b"health_check=1" in query or b"health_check=true" in query)


_REASONS = {
    429: "Rate limit exceeded. Wait for the number of seconds in Retry-After, then retry.",
    502: "Bad gateway: the upstream PropOps service did not answer.",
    503: "Service temporarily unavailable. Please retry shortly.",
    504: "Gateway timeout: the upstream PropOps service took too long.",
}


def _maintenance(reason: str, status: int = 503) -> ApiError:
    detail = f": {reason.rstrip('.')}" if reason else ""
    text = f"PropOps is in maintenance mode{detail}. Please try again later."
    return ApiError(status, text, headers={"Retry-After": "60"}, maintenance=True)


async def _broken(response: Response, outcome: str, send: Send) -> None:
    """A dropped connection (headers, then nothing) or a truncated body (half of it): the server closes
    the connection without finishing the answer, which clients see as a protocol error."""
    await send({"type": "http.response.start", "status": response.status_code, "headers": response.raw_headers})
    if outcome == "truncate":
        await send({"type": "http.response.body", "body": response.body[: len(response.body) // 2],
                    "more_body": True})


def _text_errors(scope: Scope) -> bool:
    """Errors of this request are plain text: its endpoint says so, or, before routing (the per-IP 429),
    it is under /attachment/, whose documented errors are all plain text."""
    endpoint = scope.get("sandbox.endpoint")
    return endpoint.errors == "text" if endpoint is not None else scope["path"].startswith("/attachment/")


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
