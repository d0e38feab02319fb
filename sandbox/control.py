"""The control plane under /_sandbox/: what the sandbox itself offers, beside the PropOps API."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .endpoints import Routes
from .runtime import Sandbox
from .scenarios import ScenarioError


def _error(status: int, text: str) -> JSONResponse:
    return JSONResponse({"success": False, "error": text}, status_code=status)


def routes(sandbox: Sandbox, api_routes: Routes) -> list[Route]:
    listing = api_routes.describe()

    async def endpoints(request: Request) -> JSONResponse:
        return JSONResponse({"success": True, "data": listing, "count": len(listing)})

    async def scenarios(request: Request) -> JSONResponse:
        rows = sandbox.catalogue.describe()
        return JSONResponse({"success": True, "data": rows, "count": len(rows)})

    def active() -> dict:
        scenario = sandbox.trouble.active
        return {"scenario": scenario.name.split(","), "description": scenario.description}

    async def scenario(request: Request) -> JSONResponse:
        if request.method == "GET":
            return JSONResponse({"success": True, "data": active()})
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            return _error(400, "Malformed JSON body: send {\"scenario\": \"name\"} or {\"scenario\": [\"a\", \"b\"]}")
        names = body.get("scenario") if isinstance(body, dict) else None
        if not (isinstance(names, str) or (isinstance(names, list) and all(isinstance(n, str) for n in names))):
            return _error(400, "Invalid or missing required parameter: scenario (a name or a list of names)")
        try:
            sandbox.trouble.activate(names)
        except ScenarioError as exc:
            return _error(400, str(exc))
        await sandbox.store.commit()
        return JSONResponse({"success": True, "data": active(), "message": "Scenario switched"})

    return [
        Route("/_sandbox/endpoints", endpoints),
        Route("/_sandbox/scenarios", scenarios),
        Route("/_sandbox/scenario", scenario, methods=["GET", "PUT"]),
    ]
