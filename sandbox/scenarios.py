"""Scenarios: trouble on purpose, from TOML files (one scenario a file, read with tomllib).

A scenario may set limits (a tighter rate limit, periodic storms of 429s), auth behaviour (tokens that
expire after a time or a number of requests, single-use CSRF), maintenance mode, data changes (a share
of jobs archived) and fault rules. A rule matches on method, path pattern, `action`, account role and
a probability, and has an effect: an error answer, added latency, a dropped connection, a truncated body
or the maintenance answer. Rules are decided before the handler runs, from a generator seeded from the
sandbox seed, so the same seed and request sequence give the same faults.

Several scenarios compose (`--scenario a,b`): later ones win where they set the same thing; their fault
rules all apply, in order. A file that does not parse or names an unknown field stops start-up with an
error naming the file, the line and the field.
"""

from __future__ import annotations

import fnmatch
import math
import random
import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ._paths import SCENARIOS

EFFECTS = ("error", "latency", "drop", "truncate", "maintenance")
LATENCY_KINDS = ("fixed", "uniform", "long-tail")
ROLES = ("SysOps", "API", "Staff", "Agent", "Contractor", "Landlord", "Tenant", "anonymous")
_MAX_LATENCY_MS = 120_000


class ScenarioError(ValueError):
    """A scenario file or name that cannot be used; the message names file, line and field."""


@dataclass(frozen=True)
class Latency:
    kind: str = "fixed"
    ms: float = 0.0  # fixed
    min_ms: float = 0.0  # uniform
    max_ms: float = 0.0  # uniform; a cap for long-tail
    median_ms: float = 0.0  # long-tail: log-normal with this median ...
    p99_ms: float = 0.0  # ... and this 99th percentile

    def draw(self, rng: random.Random) -> float:
        if self.kind == "fixed":
            return self.ms
        if self.kind == "uniform":
            return rng.uniform(self.min_ms, self.max_ms)
        sigma = math.log(self.p99_ms / self.median_ms) / 2.326  # z of the 99th percentile
        value = rng.lognormvariate(math.log(self.median_ms), sigma)
        return min(value, self.max_ms or _MAX_LATENCY_MS)


@dataclass(frozen=True)
class Fault:
    effect: str
    probability: float = 1.0
    methods: frozenset[str] | None = None
    paths: tuple[str, ...] | None = None  # fnmatch patterns over the URL path
    actions: frozenset[str] | None = None
    roles: frozenset[str] | None = None
    status: int = 500
    message: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    latency: Latency | None = None

    def applies(self, method: str, path: str, action: str | None, role: str) -> bool:
        return ((self.methods is None or method in self.methods)
                and (self.paths is None or any(fnmatch.fnmatchcase(path, p) for p in self.paths))
                and (self.actions is None or action in self.actions)
                and (self.roles is None or role in self.roles))


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str = ""
    source: str = ""
    rate_limit: int | None = None
    rate_window: float | None = None
    storm_every: float | None = None  # seconds between the starts of two storms
    storm_seconds: float | None = None  # how long a storm lasts (every request is 429)
    archived_share: float | None = None
    archived_by: str | None = None  # the scenario that set archived_share: its change applies once
    token_ttl_seconds: float | None = None
    token_max_requests: int | None = None
    csrf_single_use: bool | None = None
    maintenance: bool | None = None
    maintenance_reason: str | None = None
    faults: tuple[Fault, ...] = field(default_factory=tuple)


_SETTINGS = [f.name for f in fields(Scenario) if f.name not in ("name", "description", "source", "faults")]


def compose(parts: list[Scenario]) -> Scenario:
    """Later scenarios win on the settings they give; all fault rules apply, in order."""
    if len(parts) == 1:
        return parts[0]
    values: dict[str, Any] = {}
    for part in parts:
        values.update({k: getattr(part, k) for k in _SETTINGS if getattr(part, k) is not None})
    return Scenario(name=",".join(p.name for p in parts), description="; ".join(p.description for p in parts),
                    faults=tuple(f for p in parts for f in p.faults), **values)


# -- files -------------------------------------------------------------------------------------------

# table -> {key: (Scenario field, type)}
_SCHEMA: dict[str, dict[str, tuple[str, type | tuple[type, ...]]]] = {
    "limits": {"requests": ("rate_limit", int), "window_seconds": ("rate_window", (int, float)),
               "storm_every_seconds": ("storm_every", (int, float)), "storm_seconds": ("storm_seconds", (int, float))},
    "data": {"archived_share": ("archived_share", (int, float))},
    "auth": {"token_ttl_seconds": ("token_ttl_seconds", (int, float)),
             "token_max_requests": ("token_max_requests", int), "csrf_single_use": ("csrf_single_use", bool)},
    "maintenance": {"enabled": ("maintenance", bool), "reason": ("maintenance_reason", str)},
}
_FAULT_KEYS = {"effect", "probability", "methods", "paths", "actions", "roles", "status", "message", "headers",
               "latency"}
_LATENCY_KEYS = {"kind", "ms", "min_ms", "max_ms", "median_ms", "p99_ms"}


def load_file(path: Path) -> Scenario:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: cannot read the scenario file ({exc})") from None
    try:
        spec = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"at line (\d+)", str(exc))
        line = int(found.group(1)) if found else 0
        key = re.match(r"\s*([\w.\-]+)\s*=", text.splitlines()[line - 1]) if 0 < line <= text.count("\n") + 1 else None
        where = f"{path}:{line}" if line else str(path)
        field_ = f" field {key.group(1)!r}:" if key else ""
        raise ScenarioError(f"{where}:{field_} {exc}") from None
    return _parse(spec, text, path)


def _where(text: str, path: Path, key: str, nth: int = 0, near: str | None = None) -> str:
    """`file:line` of the line that sets `key` (tomllib keeps no positions, so they are found here): in
    the nth `[[faults]]` block when the key belongs to a rule, also inside inline tables; else the line
    of `near`, or the rule's `[[faults]]` line when the key is missing."""
    lines = text.splitlines()
    start, end = 0, len(lines)
    rules = [i for i, line in enumerate(lines) if re.match(r"\s*\[\[\s*faults\s*\]\]", line)]
    in_rule = key in _FAULT_KEYS or key in _LATENCY_KEYS or nth > 0
    if in_rule and nth < len(rules):
        start = rules[nth]
        end = next((i for i in range(start + 1, len(lines)) if re.match(r"\s*\[\[", lines[i])), len(lines))
    for name in (key, near):
        if name is None:
            continue
        pattern = re.compile(rf"(^\s*|[{{,]\s*|^\s*\[+\s*){re.escape(name)}\s*(=|\]|\.)")
        for i in range(start, end):
            if pattern.search(lines[i].split("#")[0]):
                return f"{path}:{i + 1}"
    return f"{path}:{start + 1}" if in_rule and nth < len(rules) else str(path)


def _bad(text: str, path: Path, key: str, why: str, nth: int = 0, near: str | None = None) -> ScenarioError:
    return ScenarioError(f"{_where(text, path, key, nth, near)}: field {key!r} {why}")


def _check(value: Any, kind: type | tuple[type, ...], key: str, text: str, path: Path, nth: int = 0) -> Any:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
        names = " or ".join(k.__name__ for k in kinds)
        raise _bad(text, path, key, f"must be {names}, not {type(value).__name__}", nth)
    return value


def _parse(spec: dict[str, Any], text: str, path: Path) -> Scenario:
    values: dict[str, Any] = {"name": spec.get("name", path.stem), "source": str(path)}
    for key, value in spec.items():
        if key in ("name", "description"):
            values[key] = _check(value, str, key, text, path)
        elif key in _SCHEMA:
            _check(value, dict, key, text, path)
            for sub, sub_value in value.items():
                if sub not in _SCHEMA[key]:
                    known = ", ".join(_SCHEMA[key])
                    raise _bad(text, path, f"{sub}", f"is not a [{key}] setting (known: {known})")
                target, kind = _SCHEMA[key][sub]
                values[target] = _check(sub_value, kind, sub, text, path)
        elif key == "faults":
            _check(value, list, key, text, path)
            values["faults"] = tuple(_fault(rule, i, text, path) for i, rule in enumerate(value))
        else:
            raise _bad(text, path, key, "is not a scenario field (known: name, description, limits, data, auth, "
                                        "maintenance, faults)")
    if values.get("archived_share") is not None:
        values["archived_by"] = values["name"]
    scenario = Scenario(**values)
    _sanity(scenario, text, path)
    return scenario


def _fault(rule: dict[str, Any], nth: int, text: str, path: Path) -> Fault:
    for key in rule:
        if key not in _FAULT_KEYS:
            raise _bad(text, path, key, f"is not a fault field (known: {', '.join(sorted(_FAULT_KEYS))})", nth)
    effect = rule.get("effect")
    if effect not in EFFECTS:
        raise _bad(text, path, "effect", f"must be one of {', '.join(EFFECTS)}", nth)
    probability = _check(rule.get("probability", 1.0), (int, float), "probability", text, path, nth)
    if not 0 <= probability <= 1:
        raise _bad(text, path, "probability", "must be from 0 to 1", nth)

    def strings(key: str) -> tuple[str, ...] | None:
        if key not in rule:
            return None
        items = _check(rule[key], list, key, text, path, nth)
        return tuple(_check(item, str, key, text, path, nth) for item in items)

    roles = strings("roles")
    if roles and not set(roles) <= set(ROLES):
        raise _bad(text, path, "roles", f"names an unknown role (known: {', '.join(ROLES)})", nth)
    status = _check(rule.get("status", 503 if effect == "maintenance" else 500), int, "status", text, path, nth)
    if not 400 <= status <= 599:
        raise _bad(text, path, "status", "must be an error status from 400 to 599", nth)
    headers = _check(rule.get("headers", {}), dict, "headers", text, path, nth)
    latency = None
    if effect == "latency":
        latency = _latency(_check(rule.get("latency", {}), dict, "latency", text, path, nth), nth, text, path)
    methods = strings("methods")
    return Fault(
        effect=effect, probability=float(probability), paths=strings("paths"),
        methods=frozenset(m.upper() for m in methods) if methods else None,
        actions=frozenset(strings("actions") or ()) or None, roles=frozenset(roles) if roles else None,
        status=status, message=_check(rule.get("message", ""), str, "message", text, path, nth),
        headers=tuple((str(k), str(v)) for k, v in headers.items()), latency=latency,
    )


def _latency(spec: dict[str, Any], nth: int, text: str, path: Path) -> Latency:
    for key in spec:
        if key not in _LATENCY_KEYS:
            raise _bad(text, path, key, f"is not a latency field (known: {', '.join(sorted(_LATENCY_KEYS))})", nth)
    kind = spec.get("kind", "fixed")
    if kind not in LATENCY_KINDS:
        raise _bad(text, path, "kind", f"must be one of {', '.join(LATENCY_KINDS)}", nth)
    numbers = {k: float(_check(v, (int, float), k, text, path, nth)) for k, v in spec.items() if k != "kind"}
    for key, value in numbers.items():
        if not 0 <= value <= _MAX_LATENCY_MS:
            raise _bad(text, path, key, f"must be from 0 to {_MAX_LATENCY_MS} ms", nth)
    latency = Latency(kind=kind, **numbers)
    if kind == "uniform" and latency.max_ms < latency.min_ms:
        raise _bad(text, path, "max_ms", "must not be below min_ms", nth)
    if kind == "long-tail" and not 0 < latency.median_ms < latency.p99_ms:
        raise _bad(text, path, "p99_ms", "must be above median_ms, which must be above 0", nth)
    return latency


def _sanity(s: Scenario, text: str, path: Path) -> None:
    checks = [
        ("requests", s.rate_limit is not None and s.rate_limit < 1, "must be at least 1"),
        ("window_seconds", s.rate_window is not None and s.rate_window <= 0, "must be above 0"),
        ("storm_seconds", (s.storm_every is None) != (s.storm_seconds is None),
         "and storm_every_seconds go together (give both)"),
        ("storm_seconds", s.storm_every is not None and s.storm_seconds is not None
         and not 0 < s.storm_seconds < s.storm_every, "must be above 0 and below storm_every_seconds"),
        ("archived_share", s.archived_share is not None and not 0 <= s.archived_share <= 1, "must be from 0 to 1"),
        ("token_ttl_seconds", s.token_ttl_seconds is not None and s.token_ttl_seconds <= 0, "must be above 0"),
        ("token_max_requests", s.token_max_requests is not None and s.token_max_requests < 1, "must be at least 1"),
    ]
    for key, failed, why in checks:
        if failed:
            raise _bad(text, path, key, why, near="storm_every_seconds" if key == "storm_seconds" else None)


# -- the catalogue -----------------------------------------------------------------------------------

class Catalogue:
    """Every scenario that can be named: the built-ins, then `--scenario-dir`'s files, then file paths."""

    def __init__(self, extra_dir: Path | None = None):
        self.scenarios: dict[str, Scenario] = {}
        dirs = [SCENARIOS] + ([extra_dir] if extra_dir is not None else [])
        for folder in dirs:
            if not folder.is_dir():
                raise ScenarioError(f"scenario dir {folder} is not a directory")
            for file in sorted(folder.glob("*.toml")):
                scenario = load_file(file)
                self.scenarios[scenario.name] = scenario
        self._composed: dict[tuple[str, ...], Scenario] = {}

    def resolve(self, names: str | list[str], *, files: bool = True) -> Scenario:
        """`"a,b"` or `["a", "b"]` → one composed scenario. Paths to .toml files only with `files` (the
        command line): a request header or the control plane may name catalogued scenarios only, so no
        client can make the server open a file of its choosing."""
        parts = [n.strip() for n in (names.split(",") if isinstance(names, str) else names) if n and n.strip()]
        if not parts:
            raise ScenarioError("no scenario named")
        key = (*parts, files)
        if key not in self._composed:
            found = []
            for part in parts:
                if files and (part.endswith(".toml") or "/" in part):
                    found.append(load_file(Path(part)))
                elif part in self.scenarios:
                    found.append(self.scenarios[part])
                else:
                    raise ScenarioError(f"unknown scenario {part!r} (known: {', '.join(sorted(self.scenarios))})")
            self._composed[key] = compose(found)
        return self._composed[key]

    def describe(self) -> list[dict[str, str]]:
        return [{"name": s.name, "description": s.description, "source": s.source}
                for s in sorted(self.scenarios.values(), key=lambda s: s.name)]
