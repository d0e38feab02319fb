"""Users: ``GET /api/users/permissions`` (the caller's own permission map, role and account type),
``PUT /api/users/permissions`` (per-user grants and revocations over the role's keys, kept in
``user_permissions``), ``POST /api/users/logout-user`` (ends every session of a user) and
``GET /api/users/user-status`` (who is online: last activity within the heartbeat window)."""

from __future__ import annotations

from typing import Any

from ..endpoints import Call, Endpoint, Param
from ..envelope import ApiError, bad_param, ok
from ..store import Row
from . import _roles
from .system import _online
from .user_admin import UUID, audit, end_sessions, live_sessions, load_user, may_manage, org_users


async def permissions(call: Call) -> dict[str, Any]:
    me = call.principal
    account_type = call.sandbox.store.raw("account_types", me.account_type_id)
    return ok({
        "user_uuid": me.uuid,
        "role": me.role,
        "account_type": account_type["name"] if account_type else None,
        "account_type_id": me.account_type_id,
        "permissions": {key: True for key in sorted(me.keys)},  # auth.py has applied the user's overrides
    })


async def logout_user(call: Call) -> dict[str, Any]:
    user = load_user(call, call.params["uuid"])
    if user["ID"] == call.principal.user_id:
        raise ApiError(400, "You cannot force-logout your own account; use POST /api/auth/logout")
    may_manage(call, user)
    ended = end_sessions(call, user["ID"])
    audit(call, "logout_user", user, f"{ended} sessions")
    return ok(sessions_ended=ended)


# -- permissions -----------------------------------------------------------------------------------

def overrides(store: Any, user_id: int) -> Row | None:
    rows = store.select("user_permissions", where=(("user_id", user_id),))
    return rows[0] if rows else None


async def set_permissions(call: Call) -> dict[str, Any]:
    p, store = call.params, call.sandbox.store
    user = load_user(call, p["user_uuid"])
    if user["ID"] == call.principal.user_id:
        raise ApiError(403, "You cannot change your own permissions")
    may_manage(call, user)
    keys = p["permissions"]
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise bad_param("permissions", "must be an array of permission keys")
    unknown = sorted(k for k in keys if not _roles.known(k))
    if unknown:
        raise bad_param("permissions", f"unknown permission key {unknown[0][:100]}")
    mine = call.principal.keys  # the caller's own overrides included
    if not set(keys) <= mine:
        raise ApiError(403, "You cannot grant or revoke permissions you do not hold")
    # The role's keys as auth.py computes them (built-in or custom, with the organisation's grants and
    # revocations), so the overrides stored below are relative to what the user really starts from.
    role = _roles.role_keys(call, user["role"])
    old = overrides(store, user["ID"])
    now_keys = set(role) if old is None else (role | set(old["granted"])) - set(old["revoked"])
    if call.action == "grant":
        now_keys |= set(keys)
    elif call.action == "revoke":
        now_keys -= set(keys)
    else:
        now_keys = (now_keys - mine) | set(keys)  # keys beyond the caller's reach stay as they are
    row = {"granted": sorted(now_keys - role), "revoked": sorted(role - now_keys),
           "updated_at": call.sandbox.clock.iso()}
    if old is None:
        store.insert("user_permissions", {"ID": None, "uuid": None, "user_id": user["ID"],
                                          "org_id": user["org_id"], **row})
    else:
        store.update("user_permissions", old["ID"], row)
    audit(call, f"permissions_{call.action}", user, ", ".join(keys)[:500])
    return ok({"user_uuid": user["uuid"], "role": user["role"], "granted": row["granted"], "revoked": row["revoked"],
               "permissions": {k: True for k in sorted(now_keys)}})


# -- presence --------------------------------------------------------------------------------------

async def user_status(call: Call) -> dict[str, Any]:
    store, now = call.sandbox.store, call.sandbox.clock.now()
    signed_in = {r["user_id"] for r in live_sessions(call, ("org_id", call.principal.org_id))}
    rows = []
    for raw in org_users(call):
        if raw["ID"] in signed_in and raw.get("is_active", True) and _online(raw.get("last_activity"), now):
            user = store.plain("users", raw["ID"])
            rows.append({"uuid": user["uuid"], "first_name": user["first_name"], "last_name": user["last_name"],
                         "last_activity": user["last_activity"]})
    return ok(rows)


ENDPOINTS = [
    Endpoint("GET", "/api/users/permissions", permissions, None, summary="The caller's permission keys"),
    Endpoint("POST", "/api/users/logout-user", logout_user, "api.users.logout_user.manage", csrf=True,
             params=(UUID,), summary="End every session of a user"),
    *(Endpoint("PUT", "/api/users/permissions", set_permissions, "api.users.permissions.manage", (action,),
               csrf=True, params=(Param("user_uuid", "uuid", required=True), Param("permissions", "object",
                                                                                   required=True)),
               summary=f"{action.capitalize()} a user's permission keys") for action in ("grant", "revoke", "sync")),
    Endpoint("GET", "/api/users/user-status", user_status, None, summary="Users online now"),
]
