"""System: the heartbeat (health check and keep-alive) and the online-users status."""

from __future__ import annotations

import datetime as dt
from typing import Any

from ..auth import STAFF
from ..clock import parse_instant
from ..endpoints import Call, Endpoint, Param
from ..envelope import UNAUTHENTICATED, ApiError, bad_param, not_found, ok

VERSION = "2.0.0"
ONLINE_MINUTES = 5  # a user counts as online this long after their last activity


async def heartbeat(call: Call) -> dict[str, Any]:
    # ?health_check=1 works without a token and changes nothing (system guide); otherwise sign in.
    if call.principal is None and not call.params.get("health_check"):
        raise ApiError(401, UNAUTHENTICATED)
    sandbox = call.sandbox
    return {
        "success": True,
        "status": "operational",
        "service": "PropOps Platform",
        "version": VERSION,
        "timestamp": sandbox.clock.iso(),
        "uptime_seconds": sandbox.uptime(),
        "environment": "sandbox",
    }


async def keep_alive(call: Call) -> dict[str, Any]:
    call.sandbox.store.update("users", call.principal.user_id, {"last_activity": call.sandbox.clock.iso()})
    return {"success": True, "valid": True, "message": "Activity updated"}


def _online(last: str | None, now: dt.datetime) -> bool:
    return bool(last) and now - parse_instant(last) <= dt.timedelta(minutes=ONLINE_MINUTES)


async def status(call: Call) -> dict[str, Any]:
    store, now, org = call.sandbox.store, call.sandbox.clock.now(), call.principal.org_id
    user_id = call.params.get("user_id")
    if user_id is None:
        online = store.select("users", lambda r: r["org_id"] == org and _online(r.get("last_activity"), now))
        return {"success": True, "online_users_count": len(online)}
    user = store.raw("users", user_id)
    if user is None or user["org_id"] != org:
        raise not_found("User")
    last = user.get("last_activity")
    online = _online(last, now)
    return {
        "success": True,
        "status": "online" if online else "offline",
        "last_activity": last,
        "status_color": "#22c55e" if online else "#9ca3af",
        "status_text": "Online" if online else "Offline",
    }


async def maintenance_status(call: Call) -> dict[str, Any]:
    """Public, so a login page can detect a maintenance window (system guide)."""
    trouble = call.sandbox.trouble
    enabled, reason = trouble.maintenance(call.request.scope.get("sandbox.scenario") or trouble.active)
    return ok({"enabled": enabled, "maintenance_mode": enabled, "reason": reason or None})


async def set_maintenance(call: Call) -> dict[str, Any]:
    p = call.params
    enabled = call.action == "enable" if call.action else p.get("enabled")
    if enabled is None:
        raise bad_param("enabled", "give action=enable|disable or enabled=true|false")
    call.sandbox.store.set_meta(maintenance={"enabled": enabled, "reason": p.get("reason"),
                                             "changed_at": call.sandbox.clock.iso()})
    return ok()


ENDPOINTS = [
    Endpoint("GET", "/api/system/heartbeat", heartbeat, None, auth="optional",
             params=(Param("health_check", "boolean"),), summary="Health check (no token with health_check=1)"),
    Endpoint("POST", "/api/system/heartbeat", keep_alive, None, summary="Refresh the caller's last activity"),
    Endpoint("GET", "/api/system/maintenance-mode", maintenance_status, None, auth="none",
             summary="Whether maintenance mode is on, and why"),
    *(Endpoint("POST", "/api/system/maintenance-mode", set_maintenance, "api.system.maintenance_mode.manage",
               actions, csrf=True, account_types=(STAFF,),
               params=(Param("enabled", "boolean"), Param("reason", max_length=500)),
               summary="Switch maintenance mode on or off (Staff only)")
      for actions in (("enable",), ("disable",), ())),
    Endpoint("GET", "/api/system/status", status, "api.system.status.manage",
             params=(Param("user_id", "integer", min=1),), summary="Online users, or one user's presence"),
]
