"""Rate limiting per IP and per account, as PropOps documents it: fixed windows, counted for real.

Each key (``ip:127.0.0.1``, ``user:3``) has a counter for the current window. `hit()` counts one request
and says whether it is allowed, how many remain and when the window resets (a Unix timestamp, as the
``X-RateLimit-Reset`` header wants). Windows follow the sandbox clock (so a test can move time past
a window); the reset time and ``Retry-After`` are reported in real seconds.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    reset: int  # Unix time when the window ends
    retry_after: int = 1  # whole seconds until the window ends

    def headers(self) -> dict[str, str]:
        out = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset),
        }
        if not self.allowed:
            out["Retry-After"] = str(max(1, self.retry_after))
        return out


class Limiter:
    def __init__(self, limit: int, window: float = 60.0, now: Callable[[], float] = time.time):
        self.limit = limit
        self.window = window
        self.now = now  # the sandbox clock's seconds: moving the clock moves the windows
        self._counts: dict[str, tuple[int, int]] = {}  # key -> (window number, requests in it)

    def hit(self, key: str) -> Verdict:
        now = self.now()
        number = int(now // self.window)
        seen_in, count = self._counts.get(key, (number, 0))
        if seen_in != number:
            count = 0
            if len(self._counts) > 50_000:  # forget old windows so the map stays small
                self._counts = {k: v for k, v in self._counts.items() if v[0] == number}
        count += 1
        self._counts[key] = (number, count)
        # Reported in real Unix time, so a client can wait for it whatever the sandbox clock says.
        left = (number + 1) * self.window - now
        reset = math.ceil(time.time() + left)
        return Verdict(count <= self.limit, self.limit, max(0, self.limit - count), reset, math.ceil(left))

    def reset(self) -> None:
        self._counts.clear()


def tighter(a: Verdict, b: Verdict | None) -> Verdict:
    """The verdict the client should see: refused if either refuses, else the one with less left."""
    if b is None:
        return a
    if a.allowed != b.allowed:
        return a if not a.allowed else b
    return a if a.remaining <= b.remaining else b
