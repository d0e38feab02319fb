"""The control plane under /_sandbox/: what the sandbox itself offers, beside the PropOps API."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .endpoints import Routes
from .runtime import Sandbox


def routes(sandbox: Sandbox, api_routes: Routes) -> list[Route]:
    listing = api_routes.describe()

    async def endpoints(request: Request) -> JSONResponse:
        return JSONResponse({"success": True, "data": listing, "count": len(listing)})

    return [Route("/_sandbox/endpoints", endpoints)]
