"""The endpoint table: one declarative row per documented operation.

A row says everything the request path needs — method, path, the ``action`` values it serves, the
permission key, whether CSRF is required, the parameters and their types, the handler — and nothing is
said twice: the same rows drive routing, validation, ``propops-sandbox endpoints``, ``/_sandbox/endpoints``
and the coverage tests. `Routes` compiles the rows once at start-up into dicts, so finding the handler for
a request is a dict hit, not a scan.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.datastructures import UploadFile

from .envelope import ApiError, bad_param

if TYPE_CHECKING:
    from starlette.requests import Request

    from .auth import Principal
    from .runtime import Sandbox

Handler = Callable[["Call"], Awaitable[Any]]

_INT = re.compile(r"-?\d+")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True, slots=True)
class Param:
    """One request parameter. `type` is one of: string, integer, number, boolean, uuid, date, email,
    int_list, file, object (a JSON object or array, or JSON text of one from a form). Missing optional
    parameters are left out of `Call.params` (so an update can tell "not given" from "given"), unless
    they have a `default`."""

    name: str
    type: str = "string"
    required: bool = False
    default: Any = None
    min: float | None = None
    max: float | None = None
    enum: tuple[str, ...] | None = None
    max_length: int | None = None
    about: str = ""


def paging(max_limit: int = 200) -> tuple[Param, Param]:
    return (
        Param("limit", "integer", default=50, min=1, max=max_limit, about="page size"),
        Param("offset", "integer", default=0, min=0, about="records to skip"),
    )


@dataclass(frozen=True, slots=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    permission: str | None
    actions: tuple[str, ...] = ()
    csrf: bool = False
    auth: str = "required"  # "required" | "optional" (handler decides) | "none"
    params: tuple[Param, ...] = ()
    status: int = 200
    summary: str = ""
    default: bool = False  # serves requests that give no `action` (create without action, as documented)
    errors: str = "json"  # "text": plain-text error bodies, as the docs give for /attachment/ downloads
    account_types: tuple[int, ...] = ()  # () = any; (1,) = Staff only, as the admin guide requires

    def describe(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "actions": list(self.actions),
            "permission": self.permission,
            "csrf": self.csrf,
            "auth": self.auth,
            "default_action": self.actions[0] if self.default else None,
            "account_types": list(self.account_types),
            "summary": self.summary,
            "params": [
                {"name": p.name, "type": p.type, "required": p.required}
                | ({"default": p.default} if p.default is not None else {})
                | ({"enum": list(p.enum)} if p.enum else {})
                for p in self.params
            ],
        }


@dataclass(slots=True)
class Call:
    """What a handler gets: validated params, the caller, the sandbox, and the raw request."""

    request: Request
    endpoint: Endpoint
    sandbox: Sandbox
    params: dict[str, Any]
    principal: Principal | None
    action: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Routes:
    """(path → method → action → Endpoint), built once. `None` is the key of a row without actions."""

    def __init__(self, rows: Iterable[Endpoint]):
        self.rows: list[Endpoint] = list(rows)
        self.by_path: dict[str, dict[str, dict[str | None, Endpoint]]] = {}
        self.defaults: dict[tuple[str, str], Endpoint] = {}
        for row in self.rows:
            methods = self.by_path.setdefault(row.path, {})
            actions = methods.setdefault(row.method, {})
            for key in row.actions or (None,):
                if key in actions:
                    raise ValueError(f"two endpoint rows for {row.method} {row.path} action={key}")
                actions[key] = row
            if row.default:
                if not row.actions or (row.path, row.method) in self.defaults:
                    raise ValueError(f"{row.method} {row.path}: one default row, and it must have an action")
                self.defaults[(row.path, row.method)] = row
        # Paths with {placeholders} (only outside /api/) are matched by pattern after the dict misses.
        self.templates = [
            (re.compile("^" + re.sub(r"\\{(\w+)\\}", r"(?P<\1>[^/]+)", re.escape(path)) + "$"), path)
            for path in self.by_path if "{" in path
        ]
        # Error messages list the valid actions; compute them once.
        self.action_lists = {
            (path, method): ", ".join(sorted(k for k in actions if k is not None))
            for path, methods in self.by_path.items()
            for method, actions in methods.items()
        }

    def match(self, path: str) -> tuple[dict[str, dict[str | None, Endpoint]] | None, str, dict[str, str]]:
        """(methods, table path, path parameters): a dict hit, or a pattern match for templated paths."""
        methods = self.by_path.get(path)
        if methods is not None or not self.templates:
            return methods, path, {}
        for pattern, template in self.templates:
            found = pattern.match(path)
            if found:
                return self.by_path[template], template, found.groupdict()
        return None, path, {}

    def describe(self) -> list[dict[str, Any]]:
        return [row.describe() for row in sorted(self.rows, key=lambda r: (r.path, r.method, r.actions))]


def validate(params: tuple[Param, ...], raw: dict[str, Any]) -> dict[str, Any]:
    """Convert and check `raw` against `params`. Raises a 400 naming every bad or missing field."""
    out: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    for p in params:
        value = raw.get(p.name)
        if value is None or value == "" or value == []:
            if p.required:
                problems.append((p.name, "required"))
            elif p.default is not None:
                out[p.name] = p.default
            elif p.name in raw:
                out[p.name] = None  # given as null/empty: the caller is clearing the field
            continue
        try:
            out[p.name] = _convert(p, value)
        except ValueError as exc:
            problems.append((p.name, str(exc)))
    if problems:
        if len(problems) == 1:
            raise bad_param(*problems[0])
        names = ", ".join(name for name, _ in problems)
        detail = "; ".join(f"{name}: {why}" for name, why in problems)
        raise ApiError(400, f"Invalid or missing required parameters: {names} ({detail})")
    return out


def _convert(p: Param, value: Any) -> Any:
    kind = p.type
    if kind == "file":
        if not isinstance(value, UploadFile):
            raise ValueError("must be a file sent as multipart/form-data")
        return value
    if isinstance(value, UploadFile):
        raise ValueError(f"must be {_A[kind]}, not a file")
    if kind == "object":
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise ValueError("must be a JSON object or array") from None
        if not isinstance(value, (dict, list)):
            raise ValueError("must be a JSON object or array")
        return value
    if kind == "int_list":
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list):
            raise ValueError("must be an array of integers")
        return [_integer(p, item) for item in items]
    if isinstance(value, (list, dict)):
        raise ValueError(f"must be {_A[kind]}, not an {'array' if isinstance(value, list) else 'object'}")
    if kind == "integer":
        return _integer(p, value)
    if kind == "number":
        return _number(p, value)
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError("must be true or false")
    if isinstance(value, bool):
        raise ValueError(f"must be {_A[kind]}, not a boolean")
    text = str(value) if isinstance(value, (int, float)) else value
    if not isinstance(text, str):
        raise ValueError(f"must be {_A[kind]}")
    if kind == "uuid":
        if not _UUID.fullmatch(text):
            raise ValueError("must be a UUID like 550e8400-e29b-41d4-a716-446655440001")
        return text.lower()
    if kind == "date":
        try:
            if not _DATE.fullmatch(text):
                raise ValueError
            return dt.date.fromisoformat(text).isoformat()
        except ValueError:
            raise ValueError("must be a date as YYYY-MM-DD") from None
    if kind == "email":
        if not _EMAIL.fullmatch(text.strip()) or len(text) > 254:
            raise ValueError("must be an e-mail address")
        return text.strip()
    if p.enum and text not in p.enum:
        raise ValueError("must be one of " + ", ".join(p.enum))
    if p.max_length and len(text) > p.max_length:
        raise ValueError(f"must be at most {p.max_length} characters")
    return text


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _integer(p: Param, value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("must be an integer")
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and _INT.fullmatch(value.strip()):
        number = int(value.strip())
    else:
        raise ValueError("must be an integer")
    if not _INT64_MIN <= number <= _INT64_MAX:  # ids, counts and amounts are 64-bit in PropOps (and JSON tools)
        raise ValueError("must be a 64-bit integer")
    _check_range(p, number, "an integer")
    return number


def _number(p: Param, value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("must be a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError("must be a number") from None
    if not math.isfinite(number):
        raise ValueError("must be a finite number")
    _check_range(p, number, "a number")
    return number


def _check_range(p: Param, number: float, kind: str) -> None:
    low, high = p.min, p.max
    if (low is not None and number < low) or (high is not None and number > high):
        if low is not None and high is not None:
            raise ValueError(f"must be {kind} from {_fmt(low)} to {_fmt(high)}")
        if low is not None:
            raise ValueError(f"must be {kind} of at least {_fmt(low)}")
        raise ValueError(f"must be {kind} of at most {_fmt(high)}")


def _fmt(n: float) -> str:
    return str(int(n)) if float(n).is_integer() else str(n)


_A = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "uuid": "a UUID",
    "date": "a date as YYYY-MM-DD",
    "email": "an e-mail address",
    "int_list": "an array of integers",
    "object": "a JSON object or array",
}
