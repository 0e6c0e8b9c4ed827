"""Miro's rate limits: REST credits per token per window, SCIM request counts per operation per window."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

LEVEL_COSTS = {1: 50, 2: 100, 3: 500, 4: 2000}
SCIM_LIMITS = {"GET": 200, "PATCH": 100, "DELETE": 20, "POST": 100, "PUT": 100}


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    reset_epoch_s: int

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_epoch_s),
        }


class WindowBudget:
    """Fixed windows, each key gets `limit` units per window.

    Windows start on a whole epoch second (the one the limiter started in), so with a whole-second
    window the `X-RateLimit-Reset` header (epoch seconds, as Miro sends it) is the exact moment the
    next window opens rather than up to a second after it.
    """

    def __init__(
        self,
        limit: int,
        window_s: float,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self._monotonic = monotonic
        started_mono, started_wall = monotonic(), wall()
        self._origin_wall = math.floor(started_wall)
        self._origin_mono = started_mono - (started_wall - self._origin_wall)
        self._spent: dict[str, tuple[int, int]] = {}
        self._lock = threading.Lock()

    def charge(self, key: str, cost: int) -> Verdict:
        with self._lock:
            window = int((self._monotonic() - self._origin_mono) // self.window_s)
            start_window, spent = self._spent.get(key, (window, 0))
            if start_window != window:
                spent = 0
            reset = math.ceil(self._origin_wall + (window + 1) * self.window_s)
            if spent + cost > self.limit:
                self._spent[key] = (window, spent)
                return Verdict(False, self.limit, max(0, self.limit - spent), reset)
            spent += cost
            self._spent[key] = (window, spent)
            return Verdict(True, self.limit, self.limit - spent, reset)

    def peek(self, key: str) -> Verdict:
        return self.charge(key, 0)

    def describe(self, key: str) -> dict[str, float | int]:
        """The budget's shape (windows start at `phaseS + k * windowS`, epoch seconds) and what `key` has
        spent in the window open now: what a benchmark needs to compute an ideal client's floor."""
        with self._lock:
            window = int((self._monotonic() - self._origin_mono) // self.window_s)
            start_window, spent = self._spent.get(key, (window, 0))
        return {
            "limit": self.limit,
            "windowS": self.window_s,
            "phaseS": self._origin_wall,
            "windowStartS": self._origin_wall + window * self.window_s,
            "spent": spent if start_window == window else 0,
        }
