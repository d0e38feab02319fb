"""Users: ``GET /api/users/permissions`` — the caller's own permission map, role and account type."""

from __future__ import annotations

from typing import Any

from ..endpoints import Call, Endpoint
from ..envelope import ok


async def permissions(call: Call) -> dict[str, Any]:
    me = call.principal
    account_type = call.sandbox.store.raw("account_types", me.account_type_id)
    return ok({
        "user_uuid": me.uuid,
        "role": me.role,
        "account_type": account_type["name"] if account_type else None,
        "account_type_id": me.account_type_id,
        "permissions": {key: True for key in sorted(me.keys)},
    })


ENDPOINTS = [
    Endpoint("GET", "/api/users/permissions", permissions, None, summary="The caller's permission keys"),
]
