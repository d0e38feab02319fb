"""The active scenario at run time: what a request meets before its handler runs.

`Trouble` holds the active (composed) scenario, the seeded generator its fault rules draw from, the
limiters its limits ask for, the storm timing and the per-session request counts that expire tokens.
Switching scenario (at start, through the control plane) resets the generator, so a replayed request
sequence meets the same faults. `X-Sandbox-Scenario` applies a scenario to one request on top of the
active one; its data changes (archived jobs) apply only when a scenario is switched on, never per request.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from .auth import Principal
from .clock import parse_instant
from .limiter import Limiter
from .scenarios import Catalogue, Fault, Scenario, compose
from .store import Store

DOCUMENTED_JOBS = frozenset({1001, 1055})  # the docs' examples stay as documented in every scenario
ARCHIVED = 8


@dataclass(slots=True)
class Decision:
    latency_ms: float = 0.0
    fault: Fault | None = None


class Trouble:
    def __init__(self, catalogue: Catalogue, store: Store, default_limiter: Limiter, seed: int, names: str,
                 now: Callable[[], float] = time.time):
        self.now = now  # sandbox-clock seconds: storms follow the clock
        self.catalogue = catalogue
        self.store = store
        self.default_limiter = default_limiter
        self.seed = seed
        self.activate(names, files=True)  # the command line may name files

    # -- switching ---------------------------------------------------------------------------------

    def activate(self, names: str | list[str], *, files: bool = False) -> Scenario:
        scenario = self.catalogue.resolve(names, files=files)  # raises ScenarioError before anything changes
        self.active = scenario
        self.spec = (names, files)  # how to switch it on again (reset, snapshots)
        self.started = self.now()
        self.rng = random.Random(f"{self.seed}:faults:{scenario.name}")
        self._limiters: dict[tuple[int, float], Limiter] = {}
        self._uses: dict[int, int] = {}
        self._per_request: dict[str, Scenario] = {}
        if scenario.archived_share:
            self._archive(scenario.archived_share, scenario.archived_by or scenario.name)
        return scenario

    def _archive(self, share: float, name: str) -> None:
        """Archive `share` of each organisation's live jobs, chosen by a generator seeded per scenario."""
        applied = self.store.meta().get("scenario_data", [])
        if name in applied:  # a data dir keeps what the scenario did the first time
            return
        self.store.set_meta(scenario_data=[*applied, name])
        rng = random.Random(f"{self.seed}:archive:{name}")
        live = [j["ID"] for j in self.store.select("jobs") if j["status_id"] != ARCHIVED
                and j["ID"] not in DOCUMENTED_JOBS]
        for id_ in rng.sample(live, round(len(live) * share)):
            self.store.update("jobs", id_, {"status_id": ARCHIVED})

    def for_request(self, header: str | None) -> Scenario:
        if not header:
            return self.active
        scenario = self._per_request.get(header)
        if scenario is None:  # the header's scenario on top of the active one
            scenario = compose([self.active, self.catalogue.resolve(header, files=False)])
            self._per_request[header] = scenario
        return scenario

    # -- what a request meets ----------------------------------------------------------------------

    def limiter(self, scenario: Scenario) -> Limiter:
        if scenario.rate_limit is None and scenario.rate_window is None:
            return self.default_limiter
        key = (scenario.rate_limit or self.default_limiter.limit, scenario.rate_window or self.default_limiter.window)
        if key not in self._limiters:
            self._limiters[key] = Limiter(*key, now=self.now)
        return self._limiters[key]

    def storm(self, scenario: Scenario) -> float | None:
        """Seconds left in the current storm (every request is 429 during one), or None."""
        if scenario.storm_every is None or scenario.storm_seconds is None:
            return None
        # Storms close each period, so switching the scenario on does not start with one.
        into = (self.now() - self.started) % scenario.storm_every
        left = scenario.storm_every - into
        return left if left <= scenario.storm_seconds else None

    def token_expired(self, scenario: Scenario, principal: Principal, now) -> bool:
        """The expired-tokens scenario: a token lives `token_ttl_seconds` of sandbox time or
        `token_max_requests` requests, whichever ends first."""
        if scenario.token_max_requests is not None:
            used = self._uses.get(principal.session_id, 0) + 1
            self._uses[principal.session_id] = used
            if used > scenario.token_max_requests:
                return True
        if scenario.token_ttl_seconds is not None:
            session = self.store.raw("sessions", principal.session_id)
            created = parse_instant(session["created_at"]) if session else now
            return (now - created).total_seconds() > scenario.token_ttl_seconds
        return False

    def maintenance(self, scenario: Scenario) -> tuple[bool, str]:
        """Maintenance mode: switched on by POST /api/system/maintenance-mode or by the scenario."""
        stored = self.store.meta().get("maintenance") or {}
        if stored.get("enabled"):
            return True, stored.get("reason") or ""
        return bool(scenario.maintenance), scenario.maintenance_reason or ""

    def decide(self, scenario: Scenario, method: str, path: str, action: str | None, role: str) -> Decision:
        """Walk the fault rules in order: latency adds up, the first matching failure ends the walk. Every
        rule that matches the request draws from the generator, so the sequence replays exactly."""
        decision = Decision()
        for fault in scenario.faults:
            if not fault.applies(method, path, action, role):
                continue
            if fault.probability < 1 and self.rng.random() >= fault.probability:
                continue
            if fault.effect == "latency":
                decision.latency_ms += fault.latency.draw(self.rng) if fault.latency else 0.0
                continue
            decision.fault = fault
            break
        return decision

