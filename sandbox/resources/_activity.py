"""The administration audit trail (``activity_log`` rows), written by the admin, security and password-reset
handlers and read by ``GET /api/admin/activity-log`` together with the job change history (``job_commits``).

The caller's IP address is personal data (audit-log guide: stored encrypted, returned decrypted).
"""

from __future__ import annotations

from typing import Any

from ..endpoints import Call
from ..store import Row


def client_ip(call: Call) -> str | None:
    client = call.request.client
    return client.host if client else None


def log(call: Call, action: str, resource_type: str | None = None, resource_id: Any = None, *,
        org_id: int | None = None, user_id: int | None = None, details: str | None = None) -> Row:
    """Append one entry; the actor is the caller unless `user_id`/`org_id` say otherwise (anonymous flows)."""
    me = call.principal
    return call.sandbox.store.insert("activity_log", {
        "ID": None, "uuid": None,
        "org_id": org_id if org_id is not None else me.org_id if me else None,
        "user_id": user_id if user_id is not None else me.user_id if me else None,
        "action": action, "resource_type": resource_type, "resource_id": resource_id, "details": details,
        "ip_address": client_ip(call), "created_at": call.sandbox.clock.iso(),
    })
