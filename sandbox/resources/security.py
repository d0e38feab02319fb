"""Security (security API guide and reference): ``GET /api/security/csrf-token``; the sessions list and
``terminate`` / ``blacklist_add`` / ``blacklist_remove``; mobile-app authentication; the password breach
check.

- Sessions are auth.py's bearer-token sessions (``sessions`` rows; the token itself is never stored). A
  session is named ``sess_<n>``. The list shows the caller's organisation's live sessions (not revoked,
  not expired); terminating one revokes its token at once (the next request with it is a 401). Your own
  current session cannot be terminated here (use logout). Sessions, like all security endpoints, are Staff
  only.
- The blacklist (``access_blacklist`` rows) bars a user from signing in: the user is made inactive (their
  previous ``is_active`` is kept and put back by ``blacklist_remove``) and their sessions are revoked.
  Nobody blacklists themselves or a user whose role is at or above their own level.
- Mobile auth: ``validate_token`` takes one of the caller's own live tokens and opens a mobile session
  (365 days) with its own bearer token and a CSRF token; ``logout`` ends a mobile session (the one named by
  ``token``, else the current one).
- The breach check is offline: fixtures/admin.toml lists the breached passwords and their counts. The
  password is never stored or logged.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from ..auth import STAFF
from ..auth import _digest as digest  # how auth.py stores a token: a session's token_hash must match it
from ..clock import iso
from ..endpoints import Call, Endpoint, Param
from ..envelope import ApiError, bad_param, listing, not_found, ok
from ..store import Row
from . import _roles
from ._activity import client_ip, log
from .admin import BREACHED, DEFAULTS
from .jobs import _person
from .user_admin import end_sessions, is_live, live_sessions, serialize, visible

MOBILE_DAYS = DEFAULTS["mobile"]["session_days"]
SESSIONS = "/api/security/sessions"


async def csrf_token(call: Call) -> dict[str, Any]:
    return ok({"token": call.sandbox.auth.issue_csrf(call.principal)}, message="CSRF token issued")


# -- sessions ------------------------------------------------------------------------------------------

def _user(call: Call, user_id: int) -> Row:
    """The raw user row with this ID if the caller may see it (as user_admin.load_user: same organisation,
    not deleted), else 404."""
    row = call.sandbox.store.raw("users", user_id)
    if row is None or not visible(call)(row):
        raise not_found("User")
    return row


def session_row(call: Call, row: Row) -> Row:
    current = row["ID"] == call.principal.session_id
    return {
        "session_id": f"sess_{row['ID']}", "user_id": row["user_id"],
        "user_name": _person(call.sandbox.store, "users", row["user_id"]),
        "ip_address": client_ip(call) if current else row.get("ip_address"),
        "user_agent": call.request.headers.get("user-agent") if current else row.get("user_agent"),
        "location": None, "platform": row.get("platform"), "device_type": row.get("device_type"),
        "created_at": row["created_at"], "expires_at": row["expires_at"],
        "last_active": call.sandbox.clock.iso() if current else row.get("last_active", row["created_at"]),
        "is_current": current,
    }


async def list_sessions(call: Call) -> dict[str, Any]:
    store = call.sandbox.store
    rows = [store.reveal("sessions", r) for r in live_sessions(call, ("org_id", call.principal.org_id))]
    return listing([session_row(call, r) for r in rows], len(rows))


def _session_id(text: str) -> int | None:
    text = text.strip()
    text = text[5:] if text.startswith("sess_") else text
    return int(text) if text.isdigit() and len(text) < 12 else None


async def terminate(call: Call) -> dict[str, Any]:
    p, store, me = call.params, call.sandbox.store, call.principal
    user = _user(call, p["user_id"]) if p.get("user_id") is not None else None
    number = _session_id(p["session_id"])
    row = store.raw("sessions", number) if number is not None else None
    if row is None or row["org_id"] != me.org_id or not is_live(call, row) \
            or (user is not None and row["user_id"] != user["ID"]):
        raise not_found("Session")
    if row["ID"] == me.session_id:
        raise ApiError(400, "You cannot terminate your own current session here: log out instead")
    call.sandbox.auth.revoke(row["ID"])
    log(call, "session.terminated", "session", f"sess_{row['ID']}", details=p.get("reason"))
    return ok(message="Session terminated")


async def blacklist(call: Call) -> dict[str, Any]:
    p, store, me = call.params, call.sandbox.store, call.principal
    user = _user(call, p["user_id"])
    entry = store.select("access_blacklist", lambda r: r["user_id"] == user["ID"])
    if call.action == "blacklist_add":
        if user["ID"] == me.user_id:
            raise ApiError(400, "You cannot blacklist yourself")
        if _roles.level_of(call, user["role"]) <= _roles.my_level(call):
            raise ApiError(403, "You cannot blacklist a user whose role is at or above your own level")
        if entry:
            return ok(message="User is already blacklisted")
        store.insert("access_blacklist", {"ID": None, "org_id": me.org_id, "user_id": user["ID"],
                                          "reason": (p.get("reason") or "").strip() or None,
                                          "was_active": bool(user.get("is_active", True)), "created_by": me.user_id,
                                          "created_at": call.sandbox.clock.iso()})
        store.update("users", user["ID"], {"is_active": False})
        end_sessions(call, user["ID"])
        log(call, "user.blacklisted", "user", user["ID"], details=p.get("reason"))
        return ok(message="User blacklisted")
    if not entry:
        raise ApiError(400, "That user is not on the blacklist")
    store.delete("access_blacklist", [entry[0]["ID"]])
    store.update("users", user["ID"], {"is_active": entry[0]["was_active"]})
    log(call, "user.unblacklisted", "user", user["ID"], details=p.get("reason"))
    return ok(message="User removed from the blacklist")


# -- mobile auth ---------------------------------------------------------------------------------------

def _own_session(call: Call, token: str) -> Row:
    rows = call.sandbox.store.select("sessions", where=(("token_hash", digest(token.strip())),))
    if not rows or rows[0]["user_id"] != call.principal.user_id or not is_live(call, rows[0]):
        raise bad_param("token", "is not a live token of this account")
    return rows[0]


async def mobile_auth(call: Call) -> dict[str, Any]:
    p, store, auth, me = call.params, call.sandbox.store, call.sandbox.auth, call.principal
    if call.action == "logout":
        row = _own_session(call, p["token"]) if p.get("token") else store.raw("sessions", me.session_id)
        if not row.get("mobile"):
            raise bad_param("token", "names no mobile session: give the mobile session_token to end")
        auth.revoke(row["ID"])
        log(call, "mobile.logout", "session", f"sess_{row['ID']}")
        return ok(message="Mobile session ended")
    _own_session(call, p["token"])
    now = call.sandbox.clock.now()
    session_id = store.next_id("sessions")
    token = auth.token_for(session_id)
    store.insert("sessions", {
        "ID": session_id, "token_hash": digest(token), "user_id": me.user_id,
        "org_id": me.org_id, "created_at": iso(now), "expires_at": iso(now + dt.timedelta(days=MOBILE_DAYS)),
        "revoked": False, "csrf": [], "csrf_issued": 0, "mobile": True, "platform": p.get("platform"),
        "device_type": p.get("device_type"), "app_version": p.get("app_version"), "ip_address": client_ip(call),
        "user_agent": call.request.headers.get("user-agent"),
    })
    auth.reindex()  # the new token authenticates from the next request on
    csrf = auth.issue_csrf(auth.principal(store.raw("users", me.user_id), session_id))
    log(call, "mobile.session_opened", "session", f"sess_{session_id}", details=p.get("platform"))
    return ok(session_token=token, csrf_token=csrf, expires_at=iso(now + dt.timedelta(days=MOBILE_DAYS)),
              user=serialize(call, store.raw("users", me.user_id)))  # "same user shape as /api/users/users"


# -- breach check --------------------------------------------------------------------------------------

async def breach_check(call: Call) -> dict[str, Any]:
    password = call.params["password"]
    if len(password) < 4:
        raise bad_param("password", "must be at least 4 characters")
    count = BREACHED.get(password, 0)
    message = (f"This password has appeared in {count:,} data breaches." if count
               else "This password has not appeared in any known data breach.")
    extra = {"count": count} if call.params.get("return_count") else {}
    return ok(message=message, breached=bool(count), **extra)


_REASON = Param("reason", max_length=500)
_MOBILE = (Param("platform", enum=("ios", "android")), Param("device_type", max_length=100),
           Param("app_version", max_length=40))
_ROWS = [
    Endpoint("GET", SESSIONS, list_sessions, "api.security.sessions.list", ("list",),
             summary="The organisation's active sessions"),
    Endpoint("POST", SESSIONS, terminate, "api.security.sessions.terminate", ("terminate",), csrf=True, params=(
        Param("session_id", required=True, max_length=40, about="the session to end, e.g. sess_12"),
        Param("user_id", "integer", min=1, about="if given, the session must be this user's"), _REASON),
             summary="Force-log-out one session"),
    *(Endpoint("POST", SESSIONS, blacklist, "api.security.sessions.terminate", (action,), csrf=True,
               params=(Param("user_id", "integer", required=True, min=1, about="the user"), _REASON),
               summary=f"{'Put a user on' if action.endswith('add') else 'Take a user off'} the access blacklist")
      for action in ("blacklist_add", "blacklist_remove")),
]
ENDPOINTS = [
    Endpoint("GET", "/api/security/csrf-token", csrf_token, None, summary="Issue a CSRF token for this session"),
    *(dataclasses.replace(row, account_types=(STAFF,)) for row in _ROWS),  # security endpoints: Staff only
    *(Endpoint("POST", "/api/security/mobile-auth", mobile_auth, "api.security.mobile_auth.use", (action,),
               params=(Param("token", required=action == "validate_token", max_length=200), *_MOBILE),
               summary=summary) for action, summary in (
        ("validate_token", "Validate a token and open a 365-day mobile session"),
        ("logout", "End a mobile session"))),
    Endpoint("POST", "/api/security/password-breach-check", breach_check, "api.security.password_breach_check.read",
             csrf=True, params=(Param("password", required=True, max_length=1000),
                                Param("return_count", "boolean", default=False)),
             summary="Check a password against the (offline) breach list"),
]
