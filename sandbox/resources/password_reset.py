"""Password reset (password-reset guide): ``POST /api/password-reset`` with ``request`` and ``reset`` (no
authentication) and ``admin_reset`` (Staff, bearer token and CSRF).

- ``request`` answers the same neutral sentence whether or not the address has an account (anti-
  enumeration). For an active account it records a ``password_reset`` e-mail holding a one-time link valid
  an hour; at most three per account in 15 minutes (quickstart), further requests send nothing. A new
  request supersedes the account's earlier unused tokens.
- Tokens derive from the seed and the reset number, like session tokens, so a replayed run hands out the
  same ones; only their SHA-256 is stored (``password_resets`` rows).
- ``reset`` consumes the token and sets the password (at least 8 characters with an upper-case letter, a
  digit and a special character); the account's sessions are revoked and a ``password_changed`` e-mail
  recorded. An unknown, used or expired token → 400 "Reset token is invalid or has expired."
- ``admin_reset`` (key ``api.users.users.manage``; the guide's ``api.users.edit`` is not in the
  catalogue) sets a temporary password for another user of the organisation below the caller's level;
  that user must change it at next login (``must_change_password``) and their sessions end.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from typing import Any

from ..auth import STAFF, hash_password
from ..auth import _digest as digest  # tokens are kept as auth.py keeps session tokens: their SHA-256
from ..clock import iso, parse_instant
from ..endpoints import Call, Endpoint, Param
from ..envelope import FORBIDDEN, ApiError, bad_param, ok
from ..events import record_email
from ..store import Row
from . import _roles
from ._activity import log
from .admin import DEFAULTS
from .user_admin import end_sessions, load_user

PATH = "/api/password-reset"
SETTINGS = DEFAULTS["password_reset"]
NEUTRAL = "If an account exists for that address, a reset link has been sent."
INVALID = "Reset token is invalid or has expired."
RESET_URL = "https://app.propops.test/reset-password?token="


def strength(name: str, password: str) -> str:
    if len(password) < 8 or not re.search(r"[A-Z]", password) or not re.search(r"\d", password) \
            or not re.search(r"[^A-Za-z0-9]", password):
        raise bad_param(name, "must be at least 8 characters with an upper-case letter, a digit and a special "
                              "character")
    return password


async def request_reset(call: Call) -> dict[str, Any]:
    store, auth, clock = call.sandbox.store, call.sandbox.auth, call.sandbox.clock
    user = auth.find_user(call.params["email"])
    if user is None or not user.get("is_active", True):
        return ok(message=NEUTRAL)
    now = clock.now()
    since = iso(now - dt.timedelta(minutes=SETTINGS["window_minutes"]))
    mine = store.select("password_resets", where=(("user_id", user["ID"]),))
    if sum(r["created_at"] > since for r in mine) >= SETTINGS["per_window"]:
        return ok(message=NEUTRAL)  # rate-limited: the same answer, nothing sent
    for old in mine:
        if not old["used"]:
            store.update("password_resets", old["ID"], {"used": True, "superseded": True})
    number = store.next_id("password_resets")
    token = hashlib.sha256(f"propops-sandbox:{auth.seed}:password-reset:{number}".encode()).hexdigest()
    expires = iso(now + dt.timedelta(minutes=SETTINGS["token_minutes"]))
    store.insert("password_resets", {"ID": number, "org_id": user["org_id"], "user_id": user["ID"],
                                     "token_hash": digest(token), "created_at": iso(now), "expires_at": expires,
                                     "used": False, "superseded": False})
    record_email(store, iso(now), org_id=user["org_id"], template="password_reset", to=[user["email"]],
                 subject="Reset your PropOps password",
                 body=(f"Hello {user['first_name']},\n\nUse this link to choose a new password: {RESET_URL}{token}\n"
                       f"It works once and expires at {expires}. If you did not ask for it, ignore this e-mail."),
                 user_id=user["ID"])
    log(call, "password.reset_requested", "user", user["ID"], org_id=user["org_id"], user_id=user["ID"])
    return ok(message=NEUTRAL)


async def reset(call: Call) -> dict[str, Any]:
    store, now = call.sandbox.store, call.sandbox.clock
    token, password = call.params["token"], call.params["password"]
    rows = store.select("password_resets", where=(("token_hash", digest(token.strip())),))
    row: Row | None = rows[0] if rows else None
    user = store.get("users", row["user_id"]) if row else None
    if row is None or row["used"] or parse_instant(row["expires_at"]) <= now.now() or user is None \
            or not user.get("is_active", True):
        raise ApiError(400, INVALID)
    strength("password", password)
    store.update("password_resets", row["ID"], {"used": True, "used_at": now.iso()})
    store.update("users", user["ID"], {"password_hash": hash_password(password), "must_change_password": False,
                                       "password_changed_at": now.iso()})
    end_sessions(call, user["ID"])
    record_email(store, now.iso(), org_id=user["org_id"], template="password_changed", to=[user["email"]],
                 subject="Your PropOps password was changed",
                 body=f"Hello {user['first_name']},\n\nYour password was reset at {now.iso()}.", user_id=user["ID"])
    log(call, "password.reset", "user", user["ID"], org_id=user["org_id"], user_id=user["ID"])
    return ok(message="Password reset successfully. You can now log in.")


async def admin_reset(call: Call) -> dict[str, Any]:
    store, me, now = call.sandbox.store, call.principal, call.sandbox.clock.iso()
    if not me.can("api.users.users.manage"):  # the row is Staff-only; the key is checked here (see the docstring)
        raise ApiError(403, FORBIDDEN)
    raw = load_user(call, call.params["user_uuid"])
    if raw["ID"] == me.user_id:
        raise ApiError(400, "Use action=request to reset your own password")
    if _roles.level_of(call, raw["role"]) <= _roles.my_level(call):
        raise ApiError(403, "You cannot reset the password of a user whose role is at or above your own level")
    password = strength("new_password", call.params["new_password"])
    target = store.plain("users", raw["ID"])
    store.update("users", target["ID"], {"password_hash": hash_password(password), "must_change_password": True,
                                         "password_changed_at": now})
    end_sessions(call, target["ID"])
    record_email(store, now, org_id=me.org_id, template="password_changed", to=[target["email"]],
                 subject="Your PropOps password was reset by an administrator",
                 body=f"Hello {target['first_name']},\n\nAn administrator set a temporary password for you. "
                      "You will be asked to choose a new one when you next sign in.", user_id=target["ID"])
    log(call, "password.admin_reset", "user", target["ID"])
    return ok(message="Temporary password set. The user must change it at next login.")


ENDPOINTS = [
    Endpoint("POST", PATH, request_reset, None, ("request",), auth="none",
             params=(Param("email", "email", required=True, about="the account's e-mail"),),
             summary="E-mail a one-time reset link (same answer whether or not the account exists)"),
    Endpoint("POST", PATH, reset, None, ("reset",), auth="none",
             params=(Param("token", required=True, max_length=200, about="the token from the reset e-mail"),
                     Param("password", required=True, max_length=200)),
             summary="Set a new password with the e-mailed token"),
    Endpoint("POST", PATH, admin_reset, None, ("admin_reset",), csrf=True, account_types=(STAFF,),
             params=(Param("user_uuid", "uuid", required=True, about="the user (assumed)"),
                     Param("new_password", required=True, max_length=200, about="temporary password (name assumed)")),
             summary="Set a temporary password for another user (Staff with api.users.users.manage)"),
]
