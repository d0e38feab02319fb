"""Administration (admin reference, ``/api/admin/*``): roles and their permissions, the management policy,
the activity log, password breach status and e-mail resends; document types, legal documents and job tags
are in `_admin_config.py`. Every row needs the Staff account type as well as its key (admin guide).

- Roles: the built-in roles (fixtures/roles.toml through auth.py; ids 1… in file order, shared by every
  organisation) and the organisation's custom roles (`_roles.py`). Anti-escalation (account-types page):
  nobody creates a role, grants keys to a role, or sets a management level at or above their own level
  (numerically <=), nor grants a key they do not hold themselves → 403.
- ``POST /api/admin/staff-permissions`` has no key: Staff whose role is SysOps or Director only.
- The activity log merges this module's audit rows (``activity_log``) with the job change history
  (``job_commits``, as ``job.updated``, ``job.recalled``…), newest first.
- Breach status checks each user's password hash against the offline breached list (fixtures/admin.toml)
  and caches the answer per hash (``password_checks``), so ``last_checked`` is when that hash was checked.
"""

from __future__ import annotations

import dataclasses
import tomllib
from typing import Any

import nacl.exceptions
import nacl.pwhash

from .._paths import FIXTURES
from ..auth import STAFF
from ..endpoints import Call, Endpoint, Param, paging
from ..envelope import ApiError, bad_param, listing, not_found, ok
from ..events import record_email
from . import _roles
from ._activity import log
from ._admin_config import ROWS as CONFIG_ROWS
from ._generic import page
from .jobs import _person

with open(FIXTURES / "admin.toml", "rb") as _fh:
    DEFAULTS = tomllib.load(_fh)
BREACHED: dict[str, int] = DEFAULTS["breached_passwords"]
PERMISSION_ROLES = ("SysOps", "Director")  # staff-permissions: "Staff role (SysOps or Director)"
VERBS = {"update": "updated", "create": "created", "recall": "recalled", "restore": "restored",
         "approval": "approved", "amendment": "amended"}


def _escalation(call: Call, level: int, what: str) -> None:
    mine = _roles.my_level(call)
    if level <= mine:
        raise ApiError(403, f"You cannot {what} at or above your own level ({mine}): choose a level above {mine}")


# -- roles ---------------------------------------------------------------------------------------------

def role_row(call: Call, role: dict, changes: dict[str, bool], counts: dict[str, int], full: bool) -> dict:
    row = role["row"] or {}
    keys = _roles.keys_of(role, changes)
    out = {
        "ID": role["ID"], "role_name": role["name"], "description": row.get("description"),
        "level": role["level"],
        "management_level": _roles.policy_level(call, "role", role["ID"]) or role["level"],
        "account_types": role["account_types"], "is_builtin": role["builtin"],
        "is_active": row.get("is_active", 1), "display_order": row.get("display_order", role["ID"]),
        "parent_role_id": row.get("parent_role_id"), "user_count": counts.get(role["name"], 0),
        "permission_count": len(keys),
    }
    if full:
        out["permissions"] = sorted(keys)
    return out


def _counts(call: Call) -> dict[str, int]:
    counts: dict[str, int] = {}
    for user in call.sandbox.store.select("users", lambda r: r["org_id"] == call.principal.org_id):
        counts[user["role"]] = counts.get(user["role"], 0) + 1
    return counts


async def list_roles(call: Call) -> dict[str, Any]:
    full, changes, counts = bool(call.params.get("include_permissions")), _roles.overrides(call), _counts(call)
    if call.params.get("id") is not None:
        role = _roles.require(call, call.params["id"])
        return ok(role_row(call, role, changes.get(role["ID"], {}), counts, full))
    rows = [role_row(call, r, changes.get(r["ID"], {}), counts, full) for r in _roles.all_roles(call)]
    rows.sort(key=lambda r: (r["display_order"], r["ID"]))
    return listing(rows, len(rows))


async def create_role(call: Call) -> dict[str, Any]:
    p, store, me = call.params, call.sandbox.store, call.principal
    name = (p["role_name"] or "").strip()
    if not name:
        raise bad_param("role_name", "required")
    if any(r["name"].lower() == name.lower() for r in _roles.all_roles(call)):
        raise bad_param("role_name", f"a role named {name!r} already exists")
    level = p.get("level") or 100
    _escalation(call, level, "create a role")
    keys: frozenset[str] = frozenset()
    parent_id = p.get("parent_role_id")
    if parent_id is not None:
        parent = _roles.find(call, parent_id)
        if parent is None:
            raise bad_param("parent_role_id", f"no role with ID {parent_id}")
        keys = _roles.keys_of(parent, _roles.overrides(call).get(parent_id, {})) & me.keys
    elif p.get("copy_permissions"):
        raise bad_param("parent_role_id", "required with copy_permissions=1: the role to copy")
    row = store.insert("admin_roles", {
        "ID": None, "uuid": None, "org_id": me.org_id, "role_name": name,
        "description": (p.get("description") or "").strip() or None, "level": level,
        "display_order": p.get("display_order") if p.get("display_order") is not None else 100,
        "is_active": 1 if p.get("is_active") is None else p["is_active"], "parent_role_id": parent_id,
        "permissions": sorted(keys), "created_by": me.user_id, "created_at": call.sandbox.clock.iso(),
    })
    role_id = _roles.CUSTOM_BASE + row["ID"]
    log(call, "role.created", "role", role_id, details=name)
    role = _roles.require(call, role_id)
    return ok(role_row(call, role, {}, {}, True), message="Role created", role_id=role_id)


async def staff_permissions(call: Call) -> dict[str, Any]:
    me, store = call.principal, call.sandbox.store
    if me.role not in PERMISSION_ROLES:
        raise ApiError(403, "Only Staff with the SysOps or Director role may change role permissions")
    items = call.params["permissions"]
    if not isinstance(items, list) or not items:
        raise bad_param("permissions", "must be a non-empty array of {role_id, permission_key, permission_value}")
    wanted: list[tuple[dict, str, bool]] = []
    for n, item in enumerate(items, start=1):
        where = f"item {n}"
        if not isinstance(item, dict):
            raise bad_param("permissions", f"{where} must be an object")
        role_id, key, value = item.get("role_id"), item.get("permission_key"), item.get("permission_value")
        if isinstance(role_id, bool) or not isinstance(role_id, int) or _roles.find(call, role_id) is None:
            raise bad_param("permissions", f"{where}: role_id {role_id!r} is not a role")
        if not _roles.known(key):
            raise bad_param("permissions", f"{where}: unknown permission_key {key!r}")
        if not isinstance(value, bool):
            raise bad_param("permissions", f"{where}: permission_value must be true or false")
        wanted.append((_roles.find(call, role_id), key, value))
    for role, key, value in wanted:  # every check before any change
        _escalation(call, role["level"], f"change the permissions of role {role['name']!r}")
        if value and key not in me.keys:
            raise ApiError(403, f"You cannot grant {key}: you do not hold it yourself")
    current = _roles.overrides(call)
    updated = 0
    for role, key, value in wanted:
        for k in (key, *_roles.related(key, value)):
            changes = current.setdefault(role["ID"], {})
            if (k in _roles.keys_of(role, changes)) == value:
                continue
            if value and k not in me.keys:
                continue  # a cascade never grants more than the caller holds
            changes[k] = value
            old = store.select("role_permissions", where=(("org_id", me.org_id), ("role_id", role["ID"]),
                                                          ("permission_key", k)))
            store.delete("role_permissions", [r["ID"] for r in old])
            store.insert("role_permissions", {"ID": None, "org_id": me.org_id, "role_id": role["ID"],
                                              "permission_key": k, "value": value})
            updated += 1
    if updated:
        log(call, "role.permissions_updated", "role", wanted[0][0]["ID"], details=f"{updated} change(s)")
    return ok(updated_count=updated)


async def management_policy(call: Call) -> dict[str, Any]:
    p, me, store = call.params, call.principal, call.sandbox.store
    entity, entity_id, level = p["entity"], p["id"], p["level"]
    _escalation(call, level, "set a management level")
    if entity == "role":
        role = _roles.require(call, entity_id)
        if role["name"] == me.role:
            raise ApiError(403, "You cannot change the management level of your own role")
    else:
        if store.raw("account_types", entity_id) is None:
            raise ApiError(404, "Account type not found")
        if entity_id == me.account_type_id:
            raise ApiError(403, "You cannot change the management level of your own account type")
    old = store.select("management_policy", lambda r: r["org_id"] == me.org_id and r["entity"] == entity
                       and r["entity_id"] == entity_id)
    store.delete("management_policy", [r["ID"] for r in old])
    store.insert("management_policy", {"ID": None, "org_id": me.org_id, "entity": entity, "entity_id": entity_id,
                                       "level": level, "updated_by": me.user_id,
                                       "updated_at": call.sandbox.clock.iso()})
    log(call, "policy.updated", entity, entity_id, details=f"level {level}")
    return ok()


# -- activity log, breach status, e-mails -------------------------------------------------------------

async def activity_log(call: Call) -> dict[str, Any]:
    p, store, org = call.params, call.sandbox.store, call.principal.org_id
    start, end = p.get("date_from"), p.get("date_to")
    if start and end and start > end:
        raise bad_param("date_to", "must not be before date_from")
    by_org = (("org_id", org),)
    # Filter and sort the stored rows (the fields filtered on are plaintext); decrypt only the page shown.
    entries = store.select("activity_log", where=by_org)
    entries += [{"ID": c["ID"], "uuid": c["uuid"], "user_id": c["user_id"],
                 "action": f"job.{VERBS.get(c['kind'], c['kind'])}", "resource_type": "job",
                 "resource_id": c["job_id"], "details": c.get("note"), "ip_address": None,
                 "created_at": c["created_at"], "commit": True}
                for c in store.select("job_commits", where=by_org)]
    keep = [e for e in entries
            if (p.get("user_id") is None or e["user_id"] == p["user_id"])
            and (not p.get("action") or e["action"] == p["action"])
            and (not start or e["created_at"][:10] >= start) and (not end or e["created_at"][:10] <= end)]
    keep.sort(key=lambda e: (e["created_at"], e["resource_type"] != "job", e["ID"]), reverse=True)  # newest first
    shown = [e if e.get("commit") else store.reveal("activity_log", e) for e in page(call, keep)]
    rows = [{"ID": e["ID"], "uuid": e["uuid"], "user_id": e["user_id"],
             "user_name": _person(store, "users", e["user_id"]), "action": e["action"],
             "resource_type": e["resource_type"], "resource_id": e["resource_id"], "details": e["details"],
             "ip_address": e["ip_address"], "created_at": e["created_at"]}
            for e in shown]
    return listing(rows, len(keep))


def breach_count(stored_hash: str) -> int:
    for password, count in BREACHED.items():
        try:
            nacl.pwhash.verify(stored_hash.encode(), password.encode())
        except nacl.exceptions.InvalidkeyError:
            continue  # not this one
        except (nacl.exceptions.CryptoError, ValueError):
            return 0  # not a hash we can check
        return count
    return 0


async def breach_status(call: Call) -> dict[str, Any]:
    store, org, now = call.sandbox.store, call.principal.org_id, call.sandbox.clock.iso()
    checks = {r["user_id"]: r for r in store.select("password_checks", lambda r: r["org_id"] == org)}
    rows = []
    for user in store.select("users", lambda r: r["org_id"] == org):
        check = checks.get(user["ID"])
        if check is None or check["password_hash"] != user["password_hash"]:
            if check is not None:
                store.delete("password_checks", [check["ID"]])
            count = breach_count(user["password_hash"])
            check = store.insert("password_checks", {
                "ID": None, "org_id": org, "user_id": user["ID"], "password_hash": user["password_hash"],
                "status": "breached" if count else "safe", "breach_count": count, "last_checked": now})
        rows.append({"user_id": user["ID"], "user_name": _person(store, "users", user["ID"]), "status": check["status"],
                     "breach_count": check["breach_count"], "last_checked": check["last_checked"]})
    return listing(rows, len(rows))


async def resend_email(call: Call) -> dict[str, Any]:
    store = call.sandbox.store
    original = store.get("emails", call.params["email_id"])
    if original is None or original["org_id"] != call.principal.org_id:
        raise not_found("Email")
    new = record_email(store, call.sandbox.clock.iso(), org_id=original["org_id"], template=original["template"],
                       to=[original["to"]], subject=original["subject"], body=original.get("body") or "",
                       job_id=original.get("job_id"), resent_from=original["ID"], resent_by=call.principal.user_id)
    log(call, "email.resent", "email", new["ID"], details=f"resend of email {original['ID']}")
    return ok(message="Email resent", new_email_id=new["ID"])


_ROWS = [
    Endpoint("GET", "/api/admin/roles", list_roles, "api.admin.roles.manage",
             params=(Param("id", "integer", min=1, about="return a single role"),
                     Param("include_permissions", "boolean", about="include each role's permission keys")),
             summary="List roles (built-in and custom) with levels and permission counts"),
    Endpoint("POST", "/api/admin/roles", create_role, "api.admin.roles.manage", csrf=True, params=(
        Param("role_name", required=True, max_length=100), Param("description", max_length=500),
        Param("level", "integer", min=1, max=1000, about="lower = more powerful; above your own (default 100)"),
        Param("display_order", "integer", min=0, max=100000), Param("is_active", "integer", min=0, max=1),
        Param("parent_role_id", "integer", min=1, about="start with this role's permissions"),
        Param("copy_permissions", "integer", min=0, max=1)), summary="Create a custom role"),
    Endpoint("POST", "/api/admin/staff-permissions", staff_permissions, None, csrf=True, params=(
        Param("permissions", "object", required=True,
              about="[{role_id, permission_key, permission_value}]"),),
             summary="Grant or revoke permission keys per role (SysOps or Director)"),
    Endpoint("PUT", "/api/admin/user-management-policy", management_policy, "api.admin.user_management_policy.manage",
             csrf=True, params=(Param("entity", required=True, enum=("role", "account_type")),
                                Param("id", "integer", required=True, min=1),
                                Param("level", "integer", required=True, min=1, max=1000)),
             summary="Set the management level of a role or account type"),
    Endpoint("GET", "/api/admin/activity-log", activity_log, "api.admin.activity-log.manage", params=(
        Param("user_id", "integer", min=1), Param("action", max_length=100), Param("date_from", "date"),
        Param("date_to", "date"), *paging()), summary="The organisation's audit trail, newest first"),
    Endpoint("GET", "/api/admin/password-breach-status", breach_status, "api.admin.password_breach_status.manage",
             summary="Each user's password breach check result"),
    Endpoint("POST", "/api/admin/resend-email", resend_email, "api.admin.resend_email.manage", csrf=True,
             params=(Param("email_id", "integer", required=True, min=1),), summary="Re-send a logged e-mail"),
    *CONFIG_ROWS,
]

# "All /api/admin/* endpoints require the Staff account type" (admin guide), on top of the key.
ENDPOINTS = [dataclasses.replace(row, account_types=(STAFF,)) for row in _ROWS]
