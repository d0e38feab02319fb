"""The control plane under /_sandbox/: what the sandbox itself offers, beside the PropOps API.

Reset to the seeded baseline, named snapshots, the request journal, the sandbox clock, the demo accounts
with their live tokens, scenarios and the endpoint list. With PROPOPS_SANDBOX_ADMIN_KEY set every call
needs it in ``X-Sandbox-Admin-Key``; with the control plane switched off none of these routes exist.
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from . import dashboard
from .clock import iso, parse_instant
from .endpoints import Routes
from .runtime import Sandbox
from .scenarios import ScenarioError

Handler = Callable[[Request], Awaitable[JSONResponse]]


class ControlError(Exception):
    def __init__(self, status: int, error: str):
        self.status, self.error = status, error


def _ok(data: Any, message: str | None = None, **extra: Any) -> JSONResponse:
    body = {"success": True, "data": data, **extra}
    if message:
        body["message"] = message
    return JSONResponse(body)


async def _json(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = json.loads(raw) if raw.strip() else {}
    except ValueError:
        raise ControlError(400, "Malformed JSON body") from None
    if not isinstance(body, dict):
        raise ControlError(400, "Malformed JSON body: expected an object")
    return body


def routes(sandbox: Sandbox, api_routes: Routes) -> list[Route]:
    settings = sandbox.settings
    if not settings.control_plane:
        return []
    listing = api_routes.describe()

    def guarded(handler: Handler) -> Handler:
        async def endpoint(request: Request) -> JSONResponse:
            key = settings.admin_key
            if key and not hmac.compare_digest(request.headers.get("x-sandbox-admin-key", ""), key):
                return JSONResponse({"success": False, "error": "X-Sandbox-Admin-Key is missing or wrong"}, 401)
            try:
                return await handler(request)
            except ControlError as exc:
                return JSONResponse({"success": False, "error": exc.error}, status_code=exc.status)

        return endpoint

    async def endpoints(request: Request) -> JSONResponse:
        return _ok(listing, count=len(listing))

    async def reset(request: Request) -> JSONResponse:
        started = time.perf_counter()
        sandbox.reset()
        await sandbox.store.commit()
        return _ok({"reset": True, "ms": round((time.perf_counter() - started) * 1000, 3)}, "Back to the baseline")

    async def snapshots(request: Request) -> JSONResponse:
        if request.method == "GET":
            rows = [{"name": name, "created_at": at} for name, (at, _) in sandbox.snapshots.items()]
            return _ok(rows, count=len(rows))
        name = (await _json(request)).get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 100:
            raise ControlError(400, "Invalid or missing required parameter: name (a snapshot name)")
        sandbox.save_snapshot(name.strip())
        return _ok({"name": name.strip()}, "Snapshot saved")

    async def snapshot(request: Request) -> JSONResponse:
        name = request.path_params["name"]
        if name not in sandbox.snapshots:
            raise ControlError(404, f"Snapshot {name!r} not found")
        if request.method == "DELETE":
            del sandbox.snapshots[name]
            return _ok({"name": name}, "Snapshot deleted")
        sandbox.restore_snapshot(name)
        await sandbox.store.commit()
        return _ok({"name": name}, "Snapshot restored")

    async def requests(request: Request) -> JSONResponse:
        if request.method == "DELETE":
            sandbox.journal.clear()
            return _ok({"cleared": True}, "Journal cleared")
        q = request.query_params
        since, status, limit = q.get("since"), q.get("status"), q.get("limit")
        try:
            rows = sandbox.journal.query(
                method=q.get("method"), path=q.get("path"), status=int(status) if status else None,
                since_id=int(since) if since and since.isdigit() else None,
                since_at=iso(parse_instant(since)) if since and not since.isdigit() else None,
                limit=int(limit) if limit else None,
            )
        except ValueError:
            raise ControlError(400, "status and limit are integers; since is an entry id or an ISO time") from None
        return _ok(rows, count=len(rows))

    def clock_state() -> dict[str, Any]:
        clock = sandbox.clock
        return {"now": clock.iso(), "frozen": clock.frozen, "start": iso(clock.start)}

    async def clock(request: Request) -> JSONResponse:
        if request.method == "GET":
            return _ok(clock_state())
        body, clock = await _json(request), sandbox.clock
        if not {"advance_seconds", "set", "freeze"} & body.keys():
            raise ControlError(400, "Give advance_seconds, set (an ISO time) and/or freeze (true/false)")
        if "set" in body:
            try:
                clock.set(parse_instant(str(body["set"])))
            except ValueError:
                raise ControlError(400, "Invalid parameter: set (an ISO 8601 time)") from None
        if "advance_seconds" in body:
            seconds = body["advance_seconds"]
            if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
                raise ControlError(400, "Invalid parameter: advance_seconds (a number of seconds)")
            clock.advance(seconds)
        if "freeze" in body:
            if not isinstance(body["freeze"], bool):
                raise ControlError(400, "Invalid parameter: freeze (true or false)")
            clock.freeze() if body["freeze"] else clock.unfreeze()
        return _ok(clock_state(), "Clock updated")

    async def accounts(request: Request) -> JSONResponse:
        rows = []
        now = sandbox.clock.now()
        for account in sandbox.demo_accounts():
            live = sandbox.store.select("sessions", lambda r, uid=account["user_id"]: r["user_id"] == uid
                                        and not r["revoked"] and parse_instant(r["expires_at"]) > now)
            rows.append({**account, "password": "sandbox", "tokens": [sandbox.auth.token_for(r["ID"]) for r in live]})
        return _ok(rows, count=len(rows))

    async def scenarios(request: Request) -> JSONResponse:
        rows = sandbox.catalogue.describe()
        return _ok(rows, count=len(rows))

    def active() -> dict:
        scenario = sandbox.trouble.active
        return {"scenario": scenario.name.split(","), "description": scenario.description}

    async def scenario(request: Request) -> JSONResponse:
        if request.method == "GET":
            return _ok(active())
        names = (await _json(request)).get("scenario")
        if not (isinstance(names, str) or (isinstance(names, list) and all(isinstance(n, str) for n in names))):
            raise ControlError(400, "Invalid or missing required parameter: scenario (a name or a list of names)")
        try:
            sandbox.trouble.activate(names)
        except ScenarioError as exc:
            raise ControlError(400, str(exc)) from None
        await sandbox.store.commit()
        return _ok(active(), "Scenario switched")

    table = [
        ("/_sandbox/endpoints", endpoints, ["GET"]),
        ("/_sandbox/reset", reset, ["POST"]),
        ("/_sandbox/snapshots", snapshots, ["GET", "POST"]),
        ("/_sandbox/snapshots/{name}", snapshot, ["DELETE"]),
        ("/_sandbox/snapshots/{name}/restore", snapshot, ["POST"]),
        ("/_sandbox/requests", requests, ["GET", "DELETE"]),
        ("/_sandbox/clock", clock, ["GET", "POST"]),
        ("/_sandbox/accounts", accounts, ["GET"]),
        ("/_sandbox/scenarios", scenarios, ["GET"]),
        ("/_sandbox/scenario", scenario, ["GET", "PUT"]),
        ("/_sandbox/stats", dashboard.stats(sandbox), ["GET"]),
    ]
    # The dashboard page holds no data (every call it makes is guarded), so a browser can open it and
    # then ask for the admin key.
    page = Route("/_sandbox/", dashboard.page, methods=["GET"])
    return [page, *(Route(path, guarded(handler), methods=methods) for path, handler, methods in table)]
