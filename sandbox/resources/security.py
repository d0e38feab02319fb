"""Security: ``GET /api/security/csrf-token`` issues a CSRF token bound to the caller's session."""

from __future__ import annotations

from typing import Any

from ..endpoints import Call, Endpoint
from ..envelope import ok


async def csrf_token(call: Call) -> dict[str, Any]:
    return ok({"token": call.sandbox.auth.issue_csrf(call.principal)}, message="CSRF token issued")


ENDPOINTS = [
    Endpoint("GET", "/api/security/csrf-token", csrf_token, None, summary="Issue a CSRF token for this session"),
]
