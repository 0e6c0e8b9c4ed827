"""Client-side pacing for the Miro clients: how long to wait before a request may be sent.

* ``RateLimitPacer``: paces REST calls from ``X-RateLimit-*`` headers so a run spends its credit
  budget evenly up to the reset instead of bursting into 429s.
* ``WindowPacer``: client-side sliding windows for SCIM (fixed per-method limits per 30 s).

Both answer on an injected ``now`` (no clock of their own), so unit tests run instantly. ``MiroHttp``
(``http.py``) asks its pacer before each attempt and reports every answer to it.
"""

from __future__ import annotations

import email.utils
import math
import threading
from collections import deque
from collections.abc import Mapping
from typing import Protocol

# Epoch seconds are > 1e9; anything smaller in X-RateLimit-Reset must be "seconds from now".
_EPOCH_THRESHOLD = 1_000_000_000
# How often a caller held back only by requests in flight asks again.
_IN_FLIGHT_POLL_S = 0.01


def _header_float(headers: Mapping[str, str], name: str) -> float | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def reset_time(headers: Mapping[str, str], now: float) -> float | None:
    """``X-RateLimit-Reset`` as an epoch time (Miro sends epoch seconds; a small value is a delta)."""
    reset = _header_float(headers, "X-RateLimit-Reset")
    if reset is None:
        return None
    return reset if reset >= _EPOCH_THRESHOLD else now + reset


def retry_after_seconds(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds to wait after a 429: ``Retry-After`` (seconds or HTTP date) wins, else the reset time."""
    raw = headers.get("Retry-After")
    if raw is not None:
        raw = raw.strip()
        try:
            return max(0.0, float(raw))
        except ValueError:
            try:
                parsed = email.utils.parsedate_to_datetime(raw)
            except (TypeError, ValueError):
                parsed = None
            if parsed is not None:
                return max(0.0, parsed.timestamp() - now)
    reset = reset_time(headers, now)
    if reset is not None:
        return max(0.0, reset - now)
    return None


class Pacer(Protocol):
    def acquire(self, method: str, cost: int, now: float) -> float:
        """0: send now (the request counts as in flight until ``release``); > 0: wait that many
        seconds, then ask again. Checking and booking are one step so concurrent callers cannot all
        take the same credits."""
        ...

    def release(self, method: str, cost: int) -> None:
        """The request booked by ``acquire`` is answered (its response observed) or failed."""
        ...

    def observe(self, headers: Mapping[str, str], now: float) -> None: ...

    def wait_after_429(self, method: str, headers: Mapping[str, str], now: float) -> float | None:
        """Seconds to wait after a 429, or None to fall back to exponential backoff."""
        ...


class RateLimitPacer:
    """Spend Miro's per-window credit budget without running into a 429.

    From the ``X-RateLimit-Limit/Remaining/Reset`` seen, minus the credits of requests still in
    flight (booked by ``acquire``, so concurrent callers never spend the same credits twice):

    * keep ``reserve_fraction`` of the limit for the small callers sharing the token (offboarding
      lookups, the CLI: their clients pace with no reserve). Held back for most of the window, the
      reserve is released gradually over its last ``release_fraction``: unused credits expire at the
      reset anyway, and a caller arriving then waits at most that long. Without the release a run
      whose credits just exceed (1 - reserve) x N windows pays a whole extra window (a minute at Miro);
    * while more than ``burst_fraction`` of the limit is usable, send at once; below that, space
      calls so the usable credits last until the reset (a call of cost c waits
      c * time_to_reset / usable after the last response); ``burst_fraction=0`` is greedy;
    * when the next call would eat into the reserve, wait until the release makes room for it or
      the window resets.

    With ``reserve_only_when_shared`` the reserve is held back only once another caller is seen
    spending the token's budget: the limit minus ``X-RateLimit-Remaining`` exceeds every credit this
    pacer booked in the window (answered or in flight). Until then a long sync spends every credit
    (a reserve nobody uses expires at each reset: 10% of every window of a 500k-member run); the
    first lookup of another caller may then wait for one reset, after which the reserve holds.

    Waits are capped at ``max_wait`` in case of clock skew. The window length is learned from the
    longest time-to-reset seen (Miro: 60 s; the emulator can compress it), ``window_s`` until then.
    """

    def __init__(
        self,
        *,
        reserve_fraction: float = 0.1,
        burst_fraction: float = 0.5,
        release_fraction: float = 0.1,
        max_wait: float = 65.0,
        window_s: float = 60.0,
        reserve_only_when_shared: bool = False,
    ):
        self.reserve_fraction = reserve_fraction
        self.reserve_only_when_shared = reserve_only_when_shared
        self.shared = False  # another caller was seen spending this token's budget
        self._booked_in_window = 0.0  # credits of this pacer's answered requests in the current window
        self._spent_before_us: float | None = None  # spent in the first window seen before this pacer's share
        self._seen_a_reset = False
        self.burst_fraction = burst_fraction
        self.release_fraction = release_fraction
        self.max_wait = max_wait
        self.window_s = window_s
        self.limit: float | None = None
        self.remaining: float | None = None
        self.reset_at: float | None = None
        self.observed_at: float | None = None
        self.in_flight = 0.0
        self._window_seen: float | None = None
        self._after_429 = False  # remaining was zeroed by a 429, not counted by Miro
        # Several fetch threads share one pacer: reading the budget and booking a request are atomic.
        self._lock = threading.Lock()

    def observe(self, headers: Mapping[str, str], now: float) -> None:
        remaining = _header_float(headers, "X-RateLimit-Remaining")
        if remaining is None:
            return
        reset_at = reset_time(headers, now)
        with self._lock:
            if reset_at is not None and self.reset_at is not None and reset_at < self.reset_at - 0.5:
                return  # a late answer from the previous window says nothing about this one
            same_window = (
                reset_at is not None and self.reset_at is not None and abs(reset_at - self.reset_at) < 0.5
            )
            if same_window and self.remaining is not None and not self._after_429:
                # Responses overtake each other: an older count must not give back spent credits.
                remaining = min(remaining, self.remaining)
            elif not same_window and reset_at is not None:
                self._booked_in_window = 0.0  # a new window: requests released from now on count in it
            limit = _header_float(headers, "X-RateLimit-Limit") or self.limit
            if not same_window and reset_at is not None and self.reset_at is not None:
                self._seen_a_reset = True
            if limit is not None and not self._after_429 and reset_at is not None:
                ours = self._booked_in_window + self.in_flight  # the answer observed is still in flight
                if self._spent_before_us is None:
                    # The first window this pacer sees may hold a previous invocation's spending (a
                    # continuation): only what others spend from now on says the token is shared.
                    self._spent_before_us = max(0.0, limit - remaining - ours)
                elif limit - remaining - (0.0 if self._seen_a_reset else self._spent_before_us) > ours + 0.5:
                    self.shared = True
            self._after_429 = False
            self.remaining = remaining
            self.limit = _header_float(headers, "X-RateLimit-Limit") or self.limit
            self.reset_at = reset_at
            self.observed_at = now
            if reset_at is not None and reset_at > now:
                self._window_seen = max(self._window_seen or 0.0, reset_at - now)

    def _reserve_fraction_now(self) -> float:
        if self.reserve_only_when_shared and not self.shared:
            return 0.0
        return self.reserve_fraction

    def reserve_at(self, now: float) -> float:
        """Credits held back for other callers at `now`: the full reserve, then less and less over
        the window's last `release_fraction`, nothing at the reset."""
        if self.reset_at is None:
            return 0.0
        limit = self.limit or self.remaining or 0.0
        full = self._reserve_fraction_now() * limit
        release_s = self.release_fraction * (self._window_seen or self.window_s)
        if release_s <= 0:
            return full
        return full * min(1.0, max(0.0, self.reset_at - now) / release_s)

    def headroom(self, now: float) -> float | None:
        """The share of the limit that can still be spent before the reserve (in-flight requests
        counted); None when nothing is known or the window has reset since the last answer."""
        with self._lock:
            if self.remaining is None or self.reset_at is None or now >= self.reset_at:
                return None
            limit = self.limit or self.remaining
            if limit <= 0:
                return None
            return (self.remaining - self.in_flight - self.reserve_at(now)) / limit

    def wait_before(self, method: str, cost: int, now: float) -> float:
        with self._lock:
            return self._wait(cost, now)

    def acquire(self, method: str, cost: int, now: float) -> float:
        with self._lock:
            wait = self._wait(cost, now)
            if wait <= 0:
                self.in_flight += cost
            return wait

    def release(self, method: str, cost: int) -> None:
        with self._lock:
            self.in_flight = max(0.0, self.in_flight - cost)
            self._booked_in_window += cost

    def _wait(self, cost: int, now: float) -> float:
        if self.remaining is None or self.reset_at is None or self.observed_at is None:
            return 0.0
        if now >= self.reset_at:
            return 0.0
        limit = self.limit or self.remaining
        to_reset = self.reset_at - now
        reserve = self.reserve_at(now)
        usable = self.remaining - self.in_flight - reserve
        if usable < cost:
            if self.in_flight and self.remaining - reserve >= cost:
                # Only requests in flight are in the way: their answers may show budget left.
                return _IN_FLIGHT_POLL_S
            free = self.remaining - self.in_flight - cost  # left if this call went now
            full_reserve = self._reserve_fraction_now() * limit
            if free >= 0 and full_reserve > 0:
                release_s = self.release_fraction * (self._window_seen or self.window_s)
                # The reserve shrinks to `free` this long before the reset.
                released_at = self.reset_at - free / full_reserve * release_s
                return min(max(released_at - now, _IN_FLIGHT_POLL_S), self.max_wait)
            return min(to_reset, self.max_wait)
        if usable - cost >= self.burst_fraction * limit:
            return 0.0
        interval = cost * (self.reset_at - self.observed_at) / usable
        return min(max(0.0, self.observed_at + interval - now), self.max_wait)

    def wait_after_429(self, method: str, headers: Mapping[str, str], now: float) -> float | None:
        with self._lock:
            self.remaining = 0.0
            self._after_429 = True
            self.observed_at = now
            reset = reset_time(headers, now)
            if reset is not None:
                self.reset_at = reset
        wait = retry_after_seconds(headers, now)
        return None if wait is None else min(wait, self.max_wait)


# Miro SCIM limits: requests per 30 s per operation class.
SCIM_LIMITS: dict[str, int] = {"GET": 200, "PATCH": 100, "PUT": 100, "POST": 100, "DELETE": 20}


class WindowPacer:
    """Sliding-window limiter per HTTP method (SCIM publishes fixed limits, no credit headers).

    Hand-written (a deque per method) rather than a new dependency: it is a dozen lines and needs the
    injectable clock the tests rely on.
    """

    def __init__(
        self,
        limits: Mapping[str, int] | None = None,
        *,
        window_s: float = 30.0,
        headroom_fraction: float = 0.1,
        max_wait: float = 65.0,
    ):
        self.limits = dict(limits or SCIM_LIMITS)
        self.window_s = window_s
        self.headroom_fraction = headroom_fraction
        self.max_wait = max_wait
        self._sent: dict[str, deque[float]] = {}
        # Callers may page concurrently (the members sync does): the windows are shared state.
        self._lock = threading.Lock()

    def _allowed(self, method: str) -> int | None:
        limit = self.limits.get(method.upper())
        if limit is None:
            return None
        return max(1, math.floor(limit * (1 - self.headroom_fraction)))

    def _window(self, method: str, now: float) -> deque[float]:
        sent = self._sent.setdefault(method.upper(), deque())
        while sent and sent[0] <= now - self.window_s:
            sent.popleft()
        return sent

    def wait_before(self, method: str, cost: int, now: float) -> float:
        allowed = self._allowed(method)
        if allowed is None:
            return 0.0
        with self._lock:
            return self._wait(method, allowed, now)

    def _wait(self, method: str, allowed: int, now: float) -> float:
        sent = self._window(method, now)
        if len(sent) < allowed:
            return 0.0
        # Wait until enough old requests leave the window to make room for this one.
        return min(max(0.0, sent[len(sent) - allowed] + self.window_s - now), self.max_wait)

    def record_sent(self, method: str, now: float) -> None:
        if self._allowed(method) is not None:
            with self._lock:
                self._window(method, now).append(now)

    def acquire(self, method: str, cost: int, now: float) -> float:
        allowed = self._allowed(method)
        if allowed is None:
            return 0.0
        with self._lock:
            wait = self._wait(method, allowed, now)
            if wait <= 0:
                self._window(method, now).append(now)
            return wait

    def release(self, method: str, cost: int) -> None:
        return None  # a sent request stays in its window whatever the answer

    def observe(self, headers: Mapping[str, str], now: float) -> None:
        return None

    def wait_after_429(self, method: str, headers: Mapping[str, str], now: float) -> float | None:
        wait = retry_after_seconds(headers, now)
        if wait is None:
            with self._lock:
                sent = self._window(method, now)
                wait = (sent[0] + self.window_s - now) if sent else None
        return None if wait is None else min(max(0.0, wait), self.max_wait)
