"""Accounts, bearer tokens, CSRF tokens, roles and who may see what.

- Login exchanges e-mail and password for a 64-hex-character token valid 90 days; a new login revokes
  the account's earlier tokens (authentication reference). Tokens are stored only as their SHA-256, and
  looked up through an in-memory index, so authenticating a request is two dict hits.
- Tokens are derived from the seed and the session number, so a replayed run hands out the same tokens.
- CSRF tokens are bound to the session. The docs disagree on single use (behaviour notes §4): by
  default a token stays valid until the session ends; `csrf_single_use` makes each token good once.
- Roles map to permission keys (fixtures/roles.toml), expanded once at start-up.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import hashlib
import tomllib
from dataclasses import dataclass
from typing import Any

import nacl.exceptions
import nacl.pwhash

from ._paths import FIXTURES
from .clock import Clock, iso, parse_instant
from .envelope import UNAUTHENTICATED, ApiError
from .store import Row, Store

TOKEN_DAYS = 90
CUSTOM_ROLE_BASE = 100  # custom roles (admin_roles rows) are numbered from here, clear of the built-in ids
_CSRF_KEEP = 50
_HASH = nacl.pwhash.argon2id
STAFF, AGENT, LANDLORD, TENANT, CONTRACTOR = 1, 2, 3, 4, 5


def load_catalogue() -> tuple[str, ...]:
    with open(FIXTURES / "permissions.toml", "rb") as fh:
        return tuple(tomllib.load(fh)["keys"])


def load_roles(catalogue: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """Role name → {level, account_types, keys (frozenset)} with globs expanded."""
    with open(FIXTURES / "roles.toml", "rb") as fh:
        spec = tomllib.load(fh)
    roles = {}
    for name, role in spec.items():
        keys = {k for pattern in role["keys"] for k in fnmatch.filter(catalogue, pattern)}
        keys -= {k for pattern in role.get("except", ()) for k in fnmatch.filter(catalogue, pattern)}
        roles[name] = {"level": role["level"], "account_types": role["account_types"], "keys": frozenset(keys)}
    return roles


def hash_password(password: str) -> str:
    # The sandbox's passwords are public ("sandbox"), so the cheapest Argon2id settings will do.
    return _HASH.str(password.encode(), opslimit=_HASH.OPSLIMIT_MIN, memlimit=_HASH.MEMLIMIT_MIN).decode()


@dataclass(slots=True)
class Principal:
    """The authenticated caller of one request."""

    user_id: int
    uuid: str
    org_id: int
    account_type_id: int
    role: str
    keys: frozenset[str]
    session_id: int
    agent_id: int | None = None
    contractor_id: int | None = None
    branch_ids: tuple[int, ...] = ()

    def can(self, key: str | None) -> bool:
        return key is None or key in self.keys

    def sees_job(self, job: Row) -> bool:
        """Organisation, branch and assignment scoping (multi-tenancy and users guides)."""
        if job["org_id"] != self.org_id:
            return False
        if self.account_type_id == AGENT:
            return job.get("branch_id") in self.branch_ids
        if self.account_type_id == CONTRACTOR:
            return job.get("contractor_id") == self.contractor_id
        return self.account_type_id not in (LANDLORD, TENANT)


class Auth:
    def __init__(self, store: Store, clock: Clock, seed: int, *, csrf_single_use: bool = False):
        self.store = store
        self.clock = clock
        self.seed = seed
        self.csrf_single_use = csrf_single_use
        self.roles = load_roles(load_catalogue())
        self._role_ids = {name: i for i, name in enumerate(self.roles, start=1)}  # as /api/admin/roles numbers them
        self.reindex()

    def reindex(self) -> None:
        """sha256(token) -> session id for live sessions (after start-up and after a restore)."""
        self._sessions: dict[str, int] = {
            row["token_hash"]: row["ID"] for row in self.store.select("sessions", lambda r: not r["revoked"])
        }

    # -- accounts ----------------------------------------------------------------------------------

    def prepare_user(self, row: Row) -> Row:
        """Seed row → stored row: a blind index for e-mail lookup and a password hash, no plaintext."""
        row = dict(row)
        row["email_index"] = self.store.cipher.blind_index(row["email"])
        row["password_hash"] = hash_password(row.pop("password", None) or "")
        return row

    def find_user(self, email: str) -> Row | None:
        index = self.store.cipher.blind_index(email)
        rows = self.store.select("users", lambda r: r["email_index"] == index)
        return self.store.reveal("users", rows[0]) if rows else None

    def login(self, email: str, password: str) -> tuple[str, Row, Row]:
        user = self.find_user(email)
        if user is None or not user.get("is_active", True) or not _verify(user["password_hash"], password):
            raise ApiError(401, "Invalid email or password")
        for old in self.store.select("sessions", lambda r: r["user_id"] == user["ID"] and not r["revoked"]):
            self.revoke(old["ID"])
        now = self.clock.now()
        session_id = self.store.next_id("sessions")
        token = self.token_for(session_id)
        session = self.store.insert(
            "sessions",
            {
                "ID": session_id,
                "token_hash": _digest(token),
                "user_id": user["ID"],
                "org_id": user["org_id"],
                "created_at": iso(now),
                "expires_at": iso(now + dt.timedelta(days=TOKEN_DAYS)),
                "revoked": False,
                "csrf": [],
                "csrf_issued": 0,
            },
        )
        self._sessions[session["token_hash"]] = session_id
        self.store.update("users", user["ID"], {"last_activity": iso(now)})
        return token, session, user

    def token_for(self, session_id: int) -> str:
        """Tokens derive from the seed and the session number, so the control plane can show them."""
        return hashlib.sha256(f"propops-sandbox:{self.seed}:session:{session_id}".encode()).hexdigest()

    def revoke(self, session_id: int) -> None:
        row = self.store.raw("sessions", session_id)
        if row is not None and not row["revoked"]:
            self.store.update("sessions", session_id, {"revoked": True})
            self._sessions.pop(row["token_hash"], None)

    # -- requests ----------------------------------------------------------------------------------

    def authenticate(self, authorization: str | None) -> Principal:
        """The caller behind an ``Authorization: Bearer …`` header, or a 401."""
        if not authorization or not authorization[:7].lower() == "bearer ":
            raise ApiError(401, UNAUTHENTICATED)
        session_id = self._sessions.get(_digest(authorization[7:].strip()))
        session = self.store.raw("sessions", session_id)
        if session is None or session["revoked"]:
            raise ApiError(401, UNAUTHENTICATED)
        if parse_instant(session["expires_at"]) <= self.clock.now():
            raise ApiError(401, UNAUTHENTICATED)
        user = self.store.raw("users", session["user_id"])
        if user is None or not user.get("is_active", True):
            raise ApiError(401, UNAUTHENTICATED)
        return self.principal(user, session_id)

    def principal(self, user: Row, session_id: int = 0) -> Principal:
        branch_ids: tuple[int, ...] = ()
        if user.get("agent_id") is not None:
            agent = self.store.raw("agents", user["agent_id"])
            branch_ids = tuple(agent.get("branch_ids") or (agent["branch_id"],)) if agent else ()
        keys, role_id = self._role_keys(user)
        # The organisation's grants and revocations for the role (POST /api/admin/staff-permissions, roles)...
        changes = self.store.select("role_permissions", where=(("role_id", role_id), ("org_id", user["org_id"])))
        if changes:
            keys = frozenset((keys | {c["permission_key"] for c in changes if c["value"]})
                             - {c["permission_key"] for c in changes if not c["value"]})
        # ...then the user's own (PUT /api/users/permissions).
        override = self.store.select("user_permissions", where=(("user_id", user["ID"]),))
        if override:
            keys = frozenset((keys | set(override[0]["granted"])) - set(override[0]["revoked"]))
        return Principal(
            user_id=user["ID"],
            uuid=user["uuid"],
            org_id=user["org_id"],
            account_type_id=user["account_type_id"],
            role=user["role"],
            keys=keys,
            session_id=session_id,
            agent_id=user.get("agent_id"),
            contractor_id=user.get("contractor_id"),
            branch_ids=branch_ids,
        )

    def _role_keys(self, user: Row) -> tuple[frozenset[str], int | None]:
        """The keys of the user's role and its id: a built-in role (roles.toml, ids 1…) or one of the
        organisation's custom roles (``admin_roles``, ids 100 + row ID)."""
        role = self.roles.get(user["role"])
        if role is not None:
            return role["keys"], self._role_ids[user["role"]]
        for row in self.store.select("admin_roles", where=(("org_id", user["org_id"]),)):
            if row["role_name"] == user["role"]:
                return frozenset(row["permissions"]), CUSTOM_ROLE_BASE + row["ID"]
        return frozenset(), None

    # -- CSRF --------------------------------------------------------------------------------------

    def issue_csrf(self, principal: Principal) -> str:
        session = self.store.raw("sessions", principal.session_id)
        assert session is not None
        number = session["csrf_issued"] + 1
        token = hashlib.sha256(
            f"propops-sandbox:{self.seed}:csrf:{principal.session_id}:{number}".encode()
        ).hexdigest()
        kept = [*session["csrf"], _digest(token)][-_CSRF_KEEP:]
        self.store.update("sessions", principal.session_id, {"csrf": kept, "csrf_issued": number})
        return token

    def check_csrf(self, principal: Principal, token: Any, single_use: bool | None = None) -> bool:
        if not isinstance(token, str) or not token:
            return False
        session = self.store.raw("sessions", principal.session_id)
        digest = _digest(token.strip())
        if session is None or digest not in session["csrf"]:
            return False
        if self.csrf_single_use if single_use is None else single_use:
            self.store.update("sessions", principal.session_id, {"csrf": [d for d in session["csrf"] if d != digest]})
        return True


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _verify(stored: str, password: str) -> bool:
    try:
        return nacl.pwhash.verify(stored.encode(), password.encode())
    except (nacl.exceptions.InvalidkeyError, nacl.exceptions.CryptoError, ValueError):
        return False
