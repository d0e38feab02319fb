"""``POST /api/auth/login``: e-mail and password for a 90-day bearer token (authentication reference)."""

from __future__ import annotations

from typing import Any

from ..endpoints import Call, Endpoint, Param
from ..envelope import ok


async def login(call: Call) -> dict[str, Any]:
    sandbox = call.sandbox
    token, session, user = sandbox.auth.login(call.params["email"], call.params["password"])
    types = sandbox.store.raw("account_types", user["account_type_id"])
    return {
        "success": True,
        "token": token,
        "token_type": "Bearer",
        "expires_at": session["expires_at"],
        "user": {
            "name": f"{user['first_name']} {user['last_name']}",
            "email": user["email"],
            "account_type": types["name"] if types else None,
        },
        "usage": "Send the token as 'Authorization: Bearer <token>' on every request.",
        "message": ok()["message"],
    }


ENDPOINTS = [
    Endpoint("POST", "/api/auth/login", login, None, auth="none",
             params=(Param("email", required=True, max_length=254), Param("password", required=True)),
             summary="Exchange e-mail and password for a bearer token"),
]
