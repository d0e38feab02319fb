"""Roles as the administration endpoints see them: the built-in roles of fixtures/roles.toml (loaded by
``sandbox/auth.py``; ids 1… in file order, shared by every organisation) plus the organisation's custom
roles (``admin_roles`` rows, ids from ``CUSTOM_BASE``), each with its permission grants and revocations
(``role_permissions`` rows {org_id, role_id, permission_key, value}) and management level
(``management_policy`` rows).

auth.py applies them on every request: a role's keys are its roles.toml (or custom) keys with the
organisation's grants added and revocations removed, then the user's own overrides.
"""

from __future__ import annotations

from typing import Any

from ..auth import CUSTOM_ROLE_BASE, load_catalogue
from ..endpoints import Call
from ..envelope import ApiError
from ..store import Row

CUSTOM_BASE = CUSTOM_ROLE_BASE  # custom role ids are CUSTOM_BASE + their row ID, clear of the built-in ids
CATALOGUE = load_catalogue()
_KNOWN = frozenset(CATALOGUE)
_READS = (".view", ".list", ".read")


def builtin(call: Call) -> dict[int, tuple[str, dict[str, Any]]]:
    """Built-in role id -> (name, {level, account_types, keys}) from auth.py's loaded roles."""
    return {i: (name, spec) for i, (name, spec) in enumerate(call.sandbox.auth.roles.items(), start=1)}


def level_of(call: Call, name: str) -> int:
    """The level of the role called `name`: built-in, or one of the caller's organisation's custom roles; an
    unknown role ranks below every real one. The one level lookup of every "above your own" rule."""
    role = call.sandbox.auth.roles.get(name)
    if role is not None:
        return role["level"]
    custom = [r for r in call.sandbox.store.select("admin_roles", where=(("org_id", call.principal.org_id),))
              if r["role_name"] == name]
    return custom[0]["level"] if custom else 10**6


def my_level(call: Call) -> int:
    return level_of(call, call.principal.role)


def find(call: Call, role_id: int) -> Row | None:
    """{ID, name, level, account_types, base_keys, builtin, row} or None (missing or another org's)."""
    table = builtin(call)
    if role_id in table:
        name, spec = table[role_id]
        return {"ID": role_id, "name": name, "level": spec["level"], "account_types": list(spec["account_types"]),
                "base_keys": spec["keys"], "builtin": True, "row": None}
    row = call.sandbox.store.raw("admin_roles", role_id - CUSTOM_BASE) if role_id > CUSTOM_BASE else None
    if row is None or row["org_id"] != call.principal.org_id:
        return None
    return {"ID": role_id, "name": row["role_name"], "level": row["level"], "account_types": [1],
            "base_keys": frozenset(row["permissions"]), "builtin": False, "row": row}


def require(call: Call, role_id: int) -> Row:
    role = find(call, role_id)
    if role is None:
        raise ApiError(404, "Role not found")
    return role


def all_roles(call: Call) -> list[Row]:
    ids = list(builtin(call)) + [CUSTOM_BASE + r["ID"] for r in call.sandbox.store.select(
        "admin_roles", lambda r: r["org_id"] == call.principal.org_id)]
    return [require(call, i) for i in ids]


def overrides(call: Call) -> dict[int, dict[str, bool]]:
    out: dict[int, dict[str, bool]] = {}
    for r in call.sandbox.store.select("role_permissions", lambda r: r["org_id"] == call.principal.org_id):
        out.setdefault(r["role_id"], {})[r["permission_key"]] = r["value"]
    return out


def keys_of(role: Row, changes: dict[str, bool]) -> frozenset[str]:
    keys = set(role["base_keys"])
    keys |= {k for k, v in changes.items() if v}
    keys -= {k for k, v in changes.items() if not v}
    return frozenset(keys)


def role_keys(call: Call, name: str) -> frozenset[str]:
    """The keys of the role called `name` in the caller's organisation: its base keys with the organisation's
    grants and revocations (what auth.py gives its users before their own overrides)."""
    role = next((r for r in all_roles(call) if r["name"] == name), None)
    return frozenset() if role is None else keys_of(role, overrides(call).get(role["ID"], {}))


def policy_level(call: Call, entity: str, entity_id: int) -> int | None:
    rows = call.sandbox.store.select("management_policy", lambda r: r["org_id"] == call.principal.org_id
                                     and r["entity"] == entity and r["entity_id"] == entity_id)
    return rows[0]["level"] if rows else None


def related(key: str, value: bool) -> list[str]:
    """Dependency resolution: granting a key grants the read keys of its resource; revoking a read key
    revokes every key of its resource (staff-permissions reference: the cascade can exceed the items sent)."""
    stem = key.rsplit(".", 1)[0]
    siblings = [k for k in CATALOGUE if k != key and k.rsplit(".", 1)[0] == stem]
    if value:
        return [k for k in siblings if k.endswith(_READS)]
    return siblings if key.endswith(_READS) else []


def known(key: Any) -> bool:
    return isinstance(key, str) and key in _KNOWN
