"""System settings, user management from the settings screen, system logs and the licence check.

- ``GET /api/system/settings``: the application configuration (branding, defaults, feature flags…) from
  ``fixtures/system_settings.toml``; secrets are null for callers without the Staff account type (settings
  guide). ``action=get_users``: the organisation's users for the user-management screen.
- ``POST /api/system/settings`` ``toggle_status|update_user|delete_user|logout_user|bulk_action``: user
  administration, by user id, with the operations of ``/api/users/users`` (user_admin.py): the same toggle
  (a blacklisted user becomes active), soft delete (404 afterwards, gone from every list) and audit log.
  Nobody acts on their own account here, nor on an account whose role outranks theirs (lower level = more
  powerful, admin guide); deactivating, deleting or logging out ends the user's sessions.
- ``GET /api/system/logs``: application log entries built from the organisation's records (sign-ins, job
  changes, e-mails sent), newest first; Staff see the organisation's, anyone else only their own.
- ``POST /api/system/status`` ``force_license_check``: records a licence check and reports it (Staff).
"""

from __future__ import annotations

import copy
import tomllib
from typing import Any

from .._paths import FIXTURES
from ..auth import STAFF
from ..endpoints import Call, Endpoint, Param, paging, validate
from ..envelope import FORBIDDEN, ApiError, bad_param, listing, not_found, ok
from ..store import Row
from . import _roles
from ._generic import page
from .user_admin import audit, end_sessions, org_users, remove_user, set_active, status_id, visible

PATH = "/api/system/settings"
KEY = "api.system.settings.manage"
ACCOUNT_TYPE_NAMES = {1: "Staff", 2: "Agent", 3: "Landlord", 4: "Tenant", 5: "Contractor"}
EDITABLE = {"first_name": 100, "last_name": 100, "email": 254, "role": 50, "is_active": None}
OPERATIONS = ("activate", "deactivate", "delete", "logout")
EMAIL = Param("data.email", "email")  # checks update_user's data.email as every email parameter is checked

with (FIXTURES / "system_settings.toml").open("rb") as _fh:
    _SPEC = tomllib.load(_fh)
SETTINGS: dict[str, dict[str, Any]] = _SPEC["settings"]
REDACTED: list[str] = _SPEC["redacted"]["keys"]
PAGES: list[dict[str, str]] = _SPEC["pages"]  # the settings screens (search.py searches them)


async def get_settings(call: Call) -> dict[str, Any]:
    data = copy.deepcopy(SETTINGS)
    if call.principal.account_type_id != STAFF:
        for key in REDACTED:
            section, _, name = key.partition(".")
            if name:
                data[section][name] = None
            else:
                data[section] = dict.fromkeys(data[section])
    return ok(data)


def _user_row(call: Call, raw: Row) -> Row:
    u = call.sandbox.store.reveal("users", raw)
    return {"id": u["ID"], "uuid": u["uuid"], "first_name": u["first_name"], "last_name": u["last_name"],
            "name": f"{u['first_name']} {u['last_name']}", "email": u["email"],
            "account_type_id": u["account_type_id"], "account_type": ACCOUNT_TYPE_NAMES.get(u["account_type_id"]),
            "role": u["role"], "is_active": u.get("is_active", True), "last_activity": u.get("last_activity"),
            "created_at": u.get("created_at")}


async def get_users(call: Call) -> dict[str, Any]:
    rows = org_users(call)  # deleted users are gone here as in /api/users/users
    return listing([_user_row(call, r) for r in page(call, rows)], len(rows))


# -- user administration: the operations of /api/users/users (user_admin.py), addressed by user id ---------

def _target(call: Call, user_id: int, name: str = "user_id") -> Row:
    me = call.principal
    user = call.sandbox.store.raw("users", user_id)
    if user is None or not visible(call)(user):  # another organisation's or deleted: as missing
        raise not_found("User")
    if user["ID"] == me.user_id:
        raise bad_param(name, "you cannot do this to your own account here")
    if _roles.level_of(call, user["role"]) < _roles.my_level(call):
        raise ApiError(403, FORBIDDEN)
    return user


async def toggle_status(call: Call) -> dict[str, Any]:
    user = _target(call, call.params["user_id"])
    active = status_id(user) != 1  # inactive or blacklisted → active
    set_active(call, user, active)
    audit(call, "toggle_status", user)
    return ok(message=f"User {'enabled' if active else 'disabled'}", user_id=user["ID"], is_active=active)


def _changes(call: Call, user: Row, data: Any) -> dict[str, Any]:
    """`data` checked field by field: 400 naming data.<field> for anything wrong, before any change."""
    if not isinstance(data, dict) or not data:
        raise bad_param("data", "a JSON object of the fields to change: " + ", ".join(EDITABLE))
    unknown = sorted(set(data) - set(EDITABLE))
    if unknown:
        raise bad_param("data", f"unknown field {unknown[0]!r}; one of " + ", ".join(EDITABLE))
    store, changes = call.sandbox.store, {}
    for name, value in data.items():
        if name == "is_active":
            if not isinstance(value, bool):
                raise bad_param("data.is_active", "must be true or false")
            changes[name] = value
            continue
        if not isinstance(value, str) or not value.strip() or len(value) > EDITABLE[name]:
            raise bad_param(f"data.{name}", f"must be a non-empty string of at most {EDITABLE[name]} characters")
        value = value.strip()
        if name == "email":
            value = validate((EMAIL,), {EMAIL.name: value})[EMAIL.name]
            index = store.cipher.blind_index(value)
            if store.index("users", "email_index").get(index) - {user["ID"]}:
                raise bad_param("data.email", "already used by another account")
            changes["email_index"] = index
        if name == "role":
            spec = call.sandbox.auth.roles.get(value)
            if spec is None or user["account_type_id"] not in spec["account_types"]:
                raise bad_param("data.role", "not a role for this account type")
            if spec["level"] < _roles.my_level(call):
                raise ApiError(403, FORBIDDEN)
        changes[name] = value
    return changes


async def update_user(call: Call) -> dict[str, Any]:
    user = _target(call, call.params["user_id"])
    changes = _changes(call, user, call.params["data"])
    active = changes.pop("is_active", None)
    call.sandbox.store.update("users", user["ID"], {**changes, "updated_at": call.sandbox.clock.iso()})
    if active is not None:
        set_active(call, user, active)
    audit(call, "update_user", user, ", ".join(sorted(call.params["data"])))
    return ok(_user_row(call, call.sandbox.store.raw("users", user["ID"])), message="User updated")


async def delete_user(call: Call) -> dict[str, Any]:
    user = _target(call, call.params["user_id"])
    remove_user(call, user)
    audit(call, "delete_user", user)
    return ok(message="User deleted", user_id=user["ID"])


async def logout_user(call: Call) -> dict[str, Any]:
    user = _target(call, call.params["user_id"])
    ended = end_sessions(call, user["ID"])
    audit(call, "logout_user", user, f"{ended} sessions")
    return ok(message="User logged out of every session", user_id=user["ID"], sessions_ended=ended)


async def bulk_action(call: Call) -> dict[str, Any]:
    users = [_target(call, uid, "user_ids") for uid in dict.fromkeys(call.params["user_ids"])]
    data = call.params["data"]
    operation = data.get("operation") if isinstance(data, dict) else None
    if operation not in OPERATIONS:
        raise bad_param("data.operation", "one of " + ", ".join(OPERATIONS))
    for user in users:  # every target checked before the first change
        if operation == "delete":
            remove_user(call, user)
        elif operation == "logout":
            end_sessions(call, user["ID"])
        else:
            set_active(call, user, operation == "activate")
        audit(call, "bulk_action", user, operation)
    return ok(message=f"Bulk {operation} applied", updated_count=len(users), user_ids=[u["ID"] for u in users])


# -- logs and licence ------------------------------------------------------------------------------

CATEGORIES = ("auth", "jobs", "email", "system")


def _entries(call: Call) -> list[Row]:
    store, me = call.sandbox.store, call.principal
    staff = me.account_type_id == STAFF
    org = (("org_id", me.org_id),)
    mine = org if staff else (*org, ("user_id", me.user_id))  # answered from the tables' field indexes
    out = [{"id": f"auth-{s['ID']}", "level": "info", "category": "auth", "user_id": s["user_id"],
            "message": f"User #{s['user_id']} signed in", "created_at": s["created_at"]}
           for s in store.select("sessions", where=mine)]
    for c in store.select("job_commits", where=mine):
        job = store.raw("jobs", c["job_id"])
        out.append({"id": f"jobs-{c['ID']}", "level": "info", "category": "jobs", "user_id": c.get("user_id"),
                    "message": f"{job['job_ref'] if job else 'Job #' + str(c['job_id'])}: {c['kind']}"
                               + (f" ({c['note']})" if c.get("note") else ""), "created_at": c["created_at"]})
    if staff:
        out += [{"id": f"email-{e['ID']}", "level": "info", "category": "email", "user_id": None,
                 "message": f"E-mail '{e['template']}' sent: {e['subject']}", "created_at": e["created_at"]}
                for e in store.select("emails", where=org)]
    out += [{"id": f"system-{c['ID']}", "level": "info", "category": "system", "user_id": c["user_id"],
             "message": "Licence check forced: licence valid", "created_at": c["checked_at"]}
            for c in store.select("licence_checks", where=mine)]
    return out


async def logs(call: Call) -> dict[str, Any]:
    rows = _entries(call)
    if call.params.get("category"):
        rows = [r for r in rows if r["category"] == call.params["category"]]
    rows.sort(key=lambda r: (r["created_at"], r["id"]), reverse=True)
    return listing(page(call, rows), len(rows))


async def force_license_check(call: Call) -> dict[str, Any]:
    now, licence = call.sandbox.clock.iso(), SETTINGS["integrations"]["licence_key"]
    call.sandbox.store.insert("licence_checks", {"ID": None, "uuid": None, "org_id": call.principal.org_id,
                                                 "user_id": call.principal.user_id, "checked_at": now,
                                                 "status": "valid"})
    return ok({"license_status": "valid", "licence_key": licence[:8] + "…", "checked_at": now},
              message="Licence check completed")


USER_ID = Param("user_id", "integer", required=True, min=1)
DATA = Param("data", "object", required=True, about="fields to apply")
ENDPOINTS = [
    Endpoint("GET", PATH, get_settings, KEY, summary="Application configuration (secrets hidden from non-Staff)"),
    Endpoint("GET", PATH, get_users, KEY, ("get_users",), params=paging(),
             summary="The organisation's users, for user management"),
    Endpoint("POST", PATH, toggle_status, KEY, ("toggle_status",), csrf=True, params=(USER_ID,),
             summary="Enable or disable a user (disabling ends their sessions)"),
    Endpoint("POST", PATH, update_user, KEY, ("update_user",), csrf=True, params=(USER_ID, DATA),
             summary="Change a user's name, e-mail, role or active flag"),
    Endpoint("POST", PATH, delete_user, KEY, ("delete_user",), csrf=True, params=(USER_ID,),
             summary="Delete a user and end their sessions"),
    Endpoint("POST", PATH, logout_user, KEY, ("logout_user",), csrf=True, params=(USER_ID,),
             summary="End every session of a user"),
    Endpoint("POST", PATH, bulk_action, KEY, ("bulk_action",), csrf=True,
             params=(Param("user_ids", "int_list", required=True), DATA),
             summary="activate, deactivate, delete or logout several users (data.operation)"),
    Endpoint("GET", "/api/system/logs", logs, None,
             params=(*paging(), Param("category", enum=CATEGORIES)),
             summary="Application log entries, newest first (Staff: the organisation's; others: their own)"),
    Endpoint("POST", "/api/system/status", force_license_check, "api.system.status.manage", ("force_license_check",),
             csrf=True, account_types=(STAFF,), summary="Force an immediate licence re-check (Staff)"),
]
