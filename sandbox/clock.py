"""The sandbox clock: all "now" in sandbox data comes from here, never from the wall clock directly.

It starts at `--clock-start` (default: the real time at start-up) and then runs with real time, so a
sandbox started twice at the same clock start produces the same data. It can be frozen and moved, so
tests can age tokens and SLAs without waiting.
"""

from __future__ import annotations

import datetime as dt
import time

UTC = dt.UTC


def parse_instant(text: str) -> dt.datetime:
    """ISO 8601 → aware UTC datetime. A bare date means midnight UTC; a naive time is taken as UTC."""
    value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def iso(value: dt.datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Clock:
    def __init__(self, start: dt.datetime | None = None):
        self.start = (start or dt.datetime.now(UTC)).replace(microsecond=0)
        self._t0 = time.monotonic()
        self._offset = 0.0
        self._frozen: dt.datetime | None = None

    def now(self) -> dt.datetime:
        if self._frozen is not None:
            return self._frozen
        return self.start + dt.timedelta(seconds=time.monotonic() - self._t0 + self._offset)

    def iso(self) -> str:
        return iso(self.now())

    @property
    def frozen(self) -> bool:
        return self._frozen is not None

    def set(self, at: dt.datetime, *, frozen: bool | None = None) -> None:
        """Jump to `at` (keeping frozen or running, unless `frozen` says otherwise)."""
        keep = self.frozen if frozen is None else frozen
        self._frozen = None
        self._offset = (at - self.start).total_seconds() - (time.monotonic() - self._t0)
        if keep:
            self.freeze()

    def reset(self) -> None:
        self._t0, self._offset, self._frozen = time.monotonic(), 0.0, None

    def freeze(self, at: dt.datetime | None = None) -> None:
        self._frozen = at or self.now()

    def unfreeze(self) -> None:
        if self._frozen is not None:
            self._offset = (self._frozen - self.start).total_seconds() - (time.monotonic() - self._t0)
            self._frozen = None

    def advance(self, seconds: float) -> None:
        if self._frozen is not None:
            self._frozen += dt.timedelta(seconds=seconds)
        else:
            self._offset += seconds
