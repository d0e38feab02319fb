"""User administration, ``/api/users/users``: list, get, search, lookups, sessions, audit log, breach status;
create, update, delete, enable/disable, roles, sessions, blacklist, bulk update, onboarding, password scan.

- Users of another organisation, and deleted users, answer 404 like missing ones.
- Role hierarchy (users guide): nobody assigns a role more powerful (lower level) than their own, nor acts
  on a more powerful user; one's own account cannot be deleted, disabled, blacklisted or re-roled.
- New users are stored as seeded ones are (`Auth.prepare_user`: blind e-mail index, Argon2id hash), so they
  can sign in at once. Disabling, blacklisting or deleting a user ends their sessions. Every write is
  recorded in ``user_audit`` (read back by ``get_audit_log``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..auth import STAFF
from ..endpoints import Call, Endpoint, Param, paging
from ..envelope import FORBIDDEN, ApiError, bad_param, listing, not_found, ok
from ..store import Row
from . import _roles
from ._generic import Predicate, Resource, find_visible, get_handler, list_handler, page
from .admin import BREACHED, breach_count

STATUSES = {1: "Active", 2: "Inactive", 3: "Blacklisted"}
NAME = 100


# -- shared helpers (user_settings.py uses them too) -----------------------------------------------------

def role_ids(call: Call) -> dict[str, int]:
    """Role name -> role_id: the roles' order in fixtures/roles.toml, from 1."""
    return {name: n for n, name in enumerate(call.sandbox.auth.roles, 1)}


def visible(call: Call) -> Predicate:
    """The caller's organisation's users, deleted ones left out (they answer 404 like missing ones)."""
    org = call.principal.org_id
    return lambda r: r["org_id"] == org and not r.get("deleted_at")


def load_user(call: Call, uuid: str | None) -> Row:
    """The raw user row with this uuid in the caller's organisation (not deleted), else 404."""
    return find_visible(call, USER, uuid)


def may_manage(call: Call, target: Row) -> None:
    """Acting on someone else: the users key, a Staff account and a role no more powerful than one's own."""
    me = call.principal
    if target["ID"] == me.user_id:
        return
    if not me.can("api.users.users.manage") or me.account_type_id != STAFF:
        raise ApiError(403, FORBIDDEN)
    if _roles.level_of(call, target["role"]) < _roles.my_level(call):
        raise ApiError(403, "You cannot manage a user whose role is above your own")


def managed(call: Call, uuid: str | None = None, *, other: bool = False) -> Row:
    """`load_user` (of the ``uuid`` parameter by default) and `may_manage`; `other`: never one's own account."""
    user = load_user(call, call.params["uuid"] if uuid is None else uuid)
    if other and user["ID"] == call.principal.user_id:
        raise ApiError(403, "You cannot do this to your own account")
    may_manage(call, user)
    return user


def status_id(row: Row) -> int:
    return 3 if row.get("blacklisted") else 1 if row.get("is_active", True) else 2


def serialize(call: Call, raw: Row) -> dict[str, Any]:
    store = call.sandbox.store
    user = store.reveal("users", raw)
    kind = store.raw("account_types", user["account_type_id"])
    agent = store.raw("agents", user["agent_id"]) if user.get("agent_id") else None
    sid = status_id(user)
    return {
        "ID": user["ID"], "uuid": user["uuid"], "first_name": user["first_name"], "last_name": user["last_name"],
        "email": user["email"], "phone": user.get("phone"), "account_type_id": user["account_type_id"],
        "account_type_name": kind["name"] if kind else None, "account_status_id": sid,
        "account_status_name": STATUSES[sid], "branch_id": agent["branch_id"] if agent else None,
        "role_id": role_ids(call).get(user["role"]), "role": user["role"], "is_active": user.get("is_active", True),
        "onboarding_completed_at": user.get("onboarding_completed_at"), "last_activity": user.get("last_activity"),
        "created_at": user.get("created_at"), "updated_at": user.get("updated_at"),
    }


def checked_role(call: Call, role_id: int, account_type_id: int) -> str:
    """The role name for role_id, if the caller may assign it to this account type."""
    roles = call.sandbox.auth.roles
    name = next((n for n, i in role_ids(call).items() if i == role_id), None)
    if name is None:
        raise bad_param("role_id", "no such role")
    if account_type_id not in roles[name]["account_types"]:
        raise bad_param("role_id", f"the {name} role is not for this account type")
    if roles[name]["level"] < _roles.my_level(call):
        raise ApiError(403, "You cannot assign a role above your own")
    return name


def role_change(call: Call, user: Row) -> dict[str, Any]:
    """{"role": …} when the request sets role_id (never on one's own account), else {}."""
    if call.params.get("role_id") is None:
        return {}
    if user["ID"] == call.principal.user_id:
        raise ApiError(403, "You cannot change your own role")
    return {"role": checked_role(call, call.params["role_id"], user["account_type_id"])}


def name_field(call: Call, field: str) -> str:
    value = (call.params.get(field) or "").strip()
    if not value:
        raise bad_param(field, "must not be blank")
    return value


def person_changes(call: Call) -> dict[str, Any]:
    """The names (never blank) and phone number a profile or user update sends."""
    changes = {field: name_field(call, field) for field in ("first_name", "last_name") if field in call.params}
    return changes | ({"phone": call.params["phone"]} if "phone" in call.params else {})


def end_sessions(call: Call, user_id: int) -> int:
    """Revoke every unrevoked session of the user (the sessions table grows with every login: indexed)."""
    live = call.sandbox.store.select("sessions", where=(("user_id", user_id), ("revoked", False)))
    for session in live:
        call.sandbox.auth.revoke(session["ID"])
    return len(live)


def is_live(call: Call, session: Row) -> bool:
    return not session["revoked"] and session["expires_at"] > call.sandbox.clock.iso()


def live_sessions(call: Call, *where: tuple[str, Any]) -> list[Row]:
    """Sessions neither revoked nor expired, matching `where` (field, value) pairs."""
    now = call.sandbox.clock.iso()
    return call.sandbox.store.select("sessions", lambda r: r["expires_at"] > now, where=(("revoked", False), *where))


def set_active(call: Call, user: Row, active: bool, *, blacklisted: bool = False) -> None:
    """Enable/disable (or blacklist) as toggle_status does: sets the blacklisting; disabling ends the sessions."""
    call.sandbox.store.update("users", user["ID"], {"is_active": active, "blacklisted": blacklisted,
                                                    "updated_at": call.sandbox.clock.iso()})
    if not active:
        end_sessions(call, user["ID"])


def remove_user(call: Call, user: Row) -> None:
    """Delete as delete_user does: a soft delete (404 afterwards) that ends the user's sessions."""
    now = call.sandbox.clock.iso()
    call.sandbox.store.update("users", user["ID"], {"is_active": False, "deleted_at": now, "updated_at": now})
    end_sessions(call, user["ID"])


def audit(call: Call, action: str, target: Row | None, detail: str = "") -> None:
    call.sandbox.store.insert("user_audit", {
        "ID": None, "uuid": None, "org_id": call.principal.org_id, "actor_id": call.principal.user_id,
        "target_id": target["ID"] if target else None, "action": action, "detail": detail,
        "created_at": call.sandbox.clock.iso()})


def org_users(call: Call) -> list[Row]:
    return call.sandbox.store.select("users", visible(call))


USER = Resource("users", "User", serialize, visible=visible, filters=("account_type_id",))


# -- reads -----------------------------------------------------------------------------------------

async def search(call: Call) -> dict[str, Any]:
    store = call.sandbox.store
    term = (call.params.get("q") or "").strip().lower()
    found = []
    for raw in org_users(call):
        user = store.plain("users", raw["ID"])
        if term in f"{user['first_name']} {user['last_name']}".lower() or term in user["email"].lower():
            found.append(raw)
    return listing([serialize(call, r) for r in page(call, found)], len(found))


async def lookups(call: Call) -> dict[str, Any]:
    rows = ([{"ID": r["ID"], "name": r["name"]} for r in call.sandbox.store.select("account_types")]
            if call.action == "get_account_types" else [{"ID": i, "name": n} for i, n in STATUSES.items()])
    return listing(rows, len(rows))


def _sessions(call: Call, sessions: list[Row]) -> dict[str, Any]:
    store = call.sandbox.store
    rows = []
    for s in sessions:
        user = store.raw("users", s["user_id"])
        rows.append({"session_id": s["ID"], "user_uuid": user["uuid"] if user else None,
                     "created_at": s["created_at"], "expires_at": s["expires_at"],
                     "current": s["ID"] == call.principal.session_id})
    return listing(rows, len(rows))


async def active_sessions(call: Call) -> dict[str, Any]:
    ids = {r["ID"] for r in org_users(call)}
    return _sessions(call, [s for s in live_sessions(call, ("org_id", call.principal.org_id)) if s["user_id"] in ids])


async def user_sessions(call: Call) -> dict[str, Any]:
    return _sessions(call, live_sessions(call, ("user_id", load_user(call, call.params["uuid"])["ID"])))


async def audit_log(call: Call) -> dict[str, Any]:
    p, store, org = call.params, call.sandbox.store, call.principal.org_id
    where = (("org_id", org), *((("target_id", load_user(call, p["uuid"])["ID"]),) if p.get("uuid") else ()))
    rows = store.select("user_audit", where=where)[::-1]
    uuid_of = {r["ID"]: r["uuid"] for r in store.select("users", where=(("org_id", org),))}
    out = [{"ID": r["ID"], "action": r["action"], "detail": r["detail"], "created_at": r["created_at"],
            "actor_uuid": uuid_of.get(r["actor_id"]), "target_uuid": uuid_of.get(r["target_id"])}
           for r in page(call, rows)]
    return listing(out, len(rows))


async def breach_status(call: Call) -> dict[str, Any]:
    user = load_user(call, call.params["uuid"])
    return ok({"user_uuid": user["uuid"], "breached": bool(user.get("password_breached")),
               "last_scanned_at": user.get("password_scanned_at")})


async def health(call: Call) -> dict[str, Any]:
    rows = org_users(call)
    return ok({"status": "healthy", "total_users": len(rows),
               "active_users": sum(status_id(r) == 1 for r in rows), "timestamp": call.sandbox.clock.iso()})


# -- writes ----------------------------------------------------------------------------------------

def _email_free(call: Call, email: str, user_id: int | None = None) -> None:
    index = call.sandbox.store.cipher.blind_index(email)
    if call.sandbox.store.select("users", lambda r: r["email_index"] == index and r["ID"] != user_id):
        # No 409 is documented anywhere (behaviour notes): a rule violation is a 400 naming the field.
        raise bad_param("email", "a user with this email already exists")


async def create_user(call: Call) -> dict[str, Any]:
    p, store, auth = call.params, call.sandbox.store, call.sandbox.auth
    if call.principal.account_type_id != STAFF:
        raise ApiError(403, FORBIDDEN)
    first, last = name_field(call, "first_name"), name_field(call, "last_name")
    if len(p["password"]) < 8:
        raise bad_param("password", "must be at least 8 characters")
    kind = p["account_type_id"]
    if store.raw("account_types", kind) is None:
        raise bad_param("account_type_id", "no such account type")
    default = {1: "Staff", 2: "Agent", 3: "Landlord", 4: "Tenant", 5: "Contractor"}[kind]
    role = checked_role(call, p.get("role_id") or role_ids(call)[default], kind)
    _email_free(call, p["email"])
    now = call.sandbox.clock.iso()
    row = auth.prepare_user({
        "ID": None, "uuid": None, "org_id": call.principal.org_id, "account_type_id": kind, "role": role,
        "first_name": first, "last_name": last, "email": p["email"], "password": p["password"],
        "phone": p.get("phone"), "agent_id": None, "contractor_id": None, "is_active": True,
        "password_breached": p["password"] in BREACHED, "password_scanned_at": now, "created_at": now})
    user = store.insert("users", row)
    audit(call, "create_user", user)
    return ok(serialize(call, store.raw("users", user["ID"])), message="User created successfully")


async def update(call: Call) -> dict[str, Any]:
    p, store = call.params, call.sandbox.store
    user = managed(call)
    changes = person_changes(call)
    if p.get("email"):
        _email_free(call, p["email"], user["ID"])
        changes["email"] = p["email"]
        changes["email_index"] = store.cipher.blind_index(p["email"])
    changes |= role_change(call, user)
    if not changes:
        raise bad_param("first_name", "give at least one field to change")
    store.update("users", user["ID"], {**changes, "updated_at": call.sandbox.clock.iso()})
    audit(call, "update", user, ", ".join(sorted(k for k in changes if k != "email_index")))
    return ok(serialize(call, store.raw("users", user["ID"])))


async def set_status(call: Call) -> dict[str, Any]:
    user = managed(call, other=True)
    if call.action == "toggle_status":
        set_active(call, user, status_id(user) != 1)
    else:
        listed = call.action == "add_to_blacklist"
        set_active(call, user, not listed, blacklisted=listed)
    audit(call, call.action, user)
    return ok(serialize(call, call.sandbox.store.raw("users", user["ID"])))


async def delete_user(call: Call) -> dict[str, Any]:
    user = managed(call, other=True)
    remove_user(call, user)
    audit(call, "delete_user", user)
    return ok(message="User deleted successfully")


async def update_role(call: Call) -> dict[str, Any]:
    user = managed(call, other=True)
    role = checked_role(call, call.params["role_id"], user["account_type_id"])
    call.sandbox.store.update("users", user["ID"], {"role": role, "updated_at": call.sandbox.clock.iso()})
    audit(call, "update_role", user, role)
    return ok(serialize(call, call.sandbox.store.raw("users", user["ID"])))


async def terminate_session(call: Call) -> dict[str, Any]:
    user = managed(call)
    number = call.params["session"]
    session = call.sandbox.store.raw("sessions", number)
    if session is None or session["user_id"] != user["ID"] or session["revoked"]:
        raise not_found("Session")
    call.sandbox.auth.revoke(number)
    audit(call, "terminate_session", user, str(number))
    return ok()


async def bulk_update(call: Call) -> dict[str, Any]:
    p, store = call.params, call.sandbox.store
    given = p["user_uuids"]
    if not isinstance(given, list) or not all(isinstance(u, str) for u in given) or len(given) > 500:
        raise bad_param("user_uuids", "must be an array of up to 500 user UUIDs")
    if "is_active" not in p and p.get("role_id") is None:
        raise bad_param("is_active", "give is_active and/or role_id")
    users = [managed(call, uuid, other=True) for uuid in dict.fromkeys(given)]
    roles = {u["ID"]: checked_role(call, p["role_id"], u["account_type_id"]) for u in users
             if p.get("role_id") is not None}  # every check before any change
    for user in users:
        if user["ID"] in roles:
            store.update("users", user["ID"], {"role": roles[user["ID"]], "updated_at": call.sandbox.clock.iso()})
        if p.get("is_active") is not None:
            set_active(call, user, p["is_active"])
        audit(call, "bulk_update", user)
    return ok({"updated": len(users)})


async def complete_onboarding(call: Call) -> dict[str, Any]:
    user = managed(call)
    now = call.sandbox.clock.iso()
    call.sandbox.store.update("users", user["ID"], {"onboarding_completed_at": now, "updated_at": now})
    audit(call, "complete_onboarding", user)
    return ok(serialize(call, call.sandbox.store.raw("users", user["ID"])))


async def scan_password(call: Call) -> dict[str, Any]:
    user = managed(call)
    breached = breach_count(user["password_hash"]) > 0  # the stored hash is all there is: try the breached list
    now = call.sandbox.clock.iso()
    call.sandbox.store.update("users", user["ID"], {"password_breached": breached, "password_scanned_at": now})
    audit(call, "scan_user_password", user)
    return ok({"user_uuid": user["uuid"], "breached": breached, "last_scanned_at": now})


USERS, KEY = "/api/users/users", "api.users.users.manage"
UUID = Param("uuid", "uuid", required=True, about="the user")
NAMES = (Param("first_name", max_length=NAME), Param("last_name", max_length=NAME), Param("email", "email"),
         Param("phone", max_length=30))
REQUIRED_NAMES = tuple(dataclasses.replace(p, required=p.name != "phone") for p in NAMES)
ROLE = Param("role_id", "integer", min=1, max=99)


def _get(action: str, handler: Any, *params: Param, summary: str) -> Endpoint:
    return Endpoint("GET", USERS, handler, KEY, (action,), params=params, summary=summary)


def _post(action: str, handler: Any, *params: Param, summary: str) -> Endpoint:
    return Endpoint("POST", USERS, handler, KEY, (action,), csrf=True, params=params, summary=summary)


ENDPOINTS = [
    _get("get_all_users", list_handler(USER), Param("account_type_id", "integer", min=1, max=5), *paging(),
         summary="List the organisation's users"),
    _get("get_user", get_handler(USER), UUID, summary="One user"),
    _get("search", search, Param("q", max_length=200), *paging(),
         summary="Users whose name or e-mail contains q"),
    _get("get_account_types", lookups, summary="Account types"),
    _get("get_account_statuses", lookups, summary="Account statuses"),
    _get("get_active_sessions", active_sessions, summary="Live sessions of the organisation's users"),
    _get("get_user_sessions", user_sessions, UUID, summary="Live sessions of one user"),
    _get("get_audit_log", audit_log, Param("uuid", "uuid"), *paging(), summary="User administration log"),
    _get("get_password_breach_status", breach_status, UUID, summary="Last password breach scan of a user"),
    _get("health_check", health, summary="User service health"),
    _post("create_user", create_user, *REQUIRED_NAMES, Param("password", required=True, max_length=200),
          Param("account_type_id", "integer", default=STAFF, min=1, max=5), ROLE,
          summary="Create a user who can sign in"),
    _post("update", update, UUID, *NAMES, ROLE, summary="Update a user's details"),
    _post("delete_user", delete_user, UUID, summary="Delete a user (ends their sessions)"),
    _post("toggle_status", set_status, UUID, summary="Disable or re-enable a user"),
    _post("add_to_blacklist", set_status, UUID, summary="Blacklist a user (cannot sign in)"),
    _post("remove_from_blacklist", set_status, UUID, summary="Lift a user's blacklisting"),
    _post("update_role", update_role, UUID, Param("role_id", "integer", required=True, min=1, max=99),
          summary="Change a user's role"),
    _post("terminate_session", terminate_session, UUID, Param("session", "integer", required=True, min=1),
          summary="End one session of a user"),
    _post("bulk_update", bulk_update, Param("user_uuids", "object", required=True), Param("is_active", "boolean"),
          ROLE, summary="Enable/disable and/or re-role many users"),
    _post("complete_onboarding", complete_onboarding, UUID, summary="Mark a user's onboarding complete"),
    _post("scan_user_password", scan_password, UUID, summary="Check a user's password against known breaches"),
]
