"""HTTP plumbing shared by the Miro REST and SCIM clients.

* ``shared_http_client``: one ``httpx.Client`` (connection pool) per base URL, kept at module level
  so a warm Lambda container reuses its TLS connections across invocations.
* ``RateLimitPacer``: paces REST calls from ``X-RateLimit-*`` headers so a run spends its credit
  budget evenly up to the reset instead of bursting into 429s.
* ``WindowPacer``: client-side sliding windows for SCIM (fixed per-method limits per 30 s).
* ``MiroHttp``: one request with pacing, bounded retries (tenacity, jittered exponential backoff;
  429 waits for Retry-After or the reset), error mapping, a single token refresh after a 401, and
  parsing inside the retry so a truncated body is fetched again.

Sleep, clock and jitter are injectable so unit tests run instantly and deterministically.
"""

from __future__ import annotations

import email.utils
import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import httpx
from tenacity import RetryCallState, RetryError, Retrying, retry_if_exception_type, stop_after_attempt
from tenacity.wait import wait_random_exponential

from miro_sync.miro.deadline import InvocationDeadline
from miro_sync.miro.errors import (
    MiroAuthError,
    MiroBadRequest,
    MiroConflict,
    MiroError,
    MiroNotFound,
    MiroProtocolError,
    MiroRateLimited,
    MiroUnavailable,
)
from miro_sync.secrets import RefreshableTokenProvider, TokenProvider

T = TypeVar("T")

Sleep = Callable[[float], None]
Clock = Callable[[], float]

USER_AGENT = "miro-sync/0.1 (+https://github.com/; httpx)"
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
# Epoch seconds are > 1e9; anything smaller in X-RateLimit-Reset must be "seconds from now".
_EPOCH_THRESHOLD = 1_000_000_000
_MAX_ERROR_MESSAGE = 500
# How often a caller held back only by requests in flight asks again.
_IN_FLIGHT_POLL_S = 0.01
# A pacer that keeps asking for waits (skew, a request that never answers) holds a request at most
# this long in total; it is then sent unbooked, and a 429 is handled as any other.
_MAX_PACING_S = 130.0


# --- stats ----------------------------------------------------------------------------------------


@dataclass
class RequestStats:
    """Counters a caller turns into Powertools metrics (``as_metrics``)."""

    requests: int = 0
    retries: int = 0
    http_429: int = 0
    credits_spent: int = 0
    token_refreshes: int = 0
    paced_seconds: float = 0.0
    retry_wait_seconds: float = 0.0

    def as_metrics(self) -> dict[str, float]:
        return {
            "MiroRequests": self.requests,
            "MiroRetries": self.retries,
            "MiroRateLimited429": self.http_429,
            "MiroCreditsSpent": self.credits_spent,
            "MiroTokenRefreshes": self.token_refreshes,
            "MiroPacedSeconds": round(self.paced_seconds, 3),
            "MiroRetryWaitSeconds": round(self.retry_wait_seconds, 3),
        }


# --- connection pools -----------------------------------------------------------------------------

_POOLS: dict[str, httpx.Client] = {}
_POOLS_LOCK = threading.Lock()


def shared_http_client(base_url: str) -> httpx.Client:
    """The process-wide pool for ``base_url`` (created on first use, reused while the container lives)."""
    key = base_url.rstrip("/")
    with _POOLS_LOCK:
        client = _POOLS.get(key)
        if client is None or client.is_closed:
            client = httpx.Client(
                timeout=DEFAULT_TIMEOUT,
                limits=httpx.Limits(max_connections=10, max_keepalive_connections=10),
                headers={"User-Agent": USER_AGENT},
                follow_redirects=False,
            )
            _POOLS[key] = client
        return client


def close_shared_http_clients() -> None:
    """Close every pooled client (CLI exit, tests); the next ``shared_http_client`` call reopens."""
    with _POOLS_LOCK:
        for client in _POOLS.values():
            client.close()
        _POOLS.clear()


# --- pacing ---------------------------------------------------------------------------------------


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


# --- errors from responses ------------------------------------------------------------------------


@dataclass(frozen=True)
class AuthHint:
    """What an endpoint needs, quoted in auth errors (from Miro's docs for that endpoint)."""

    scope: str | None = None
    role: str | None = None


def _scrub(text: str, secret: str | None) -> str:
    if secret and secret in text:
        text = text.replace(secret, "**********")
    return text[:_MAX_ERROR_MESSAGE]


def error_for_response(
    response: httpx.Response, *, method: str, path: str, hint: AuthHint | None, token: str | None
) -> MiroError:
    """Map a 4xx/5xx to the error classes; reads REST ``{code,message}`` and SCIM ``{detail,scimType}``."""
    code: str | None = None
    message = ""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        raw_message = body.get("message") or body.get("detail")
        raw_code = body.get("code") or body.get("scimType")
        message = raw_message if isinstance(raw_message, str) else ""
        code = raw_code if isinstance(raw_code, str) else None
    message = _scrub(message or response.reason_phrase or "no error message", token)
    status = response.status_code
    kwargs: dict[str, Any] = {"status": status, "code": code, "method": method, "path": path}
    if status in (401, 403):
        needs = []
        if hint and hint.scope:
            needs.append(f"scope '{hint.scope}'")
        if hint and hint.role:
            needs.append(f"the {hint.role} role")
        what = "token invalid, expired or revoked" if status == 401 else "token lacks a permission"
        text = f"Miro refused the token ({what}): {message}"
        if needs:
            text += f"; this call needs {' and '.join(needs)}"
        return MiroAuthError(
            text,
            required_scope=hint.scope if hint else None,
            required_role=hint.role if hint else None,
            **kwargs,
        )
    if status == 400:
        return MiroBadRequest(message, **kwargs)
    if status == 404:
        return MiroNotFound(message, **kwargs)
    if status == 409:
        return MiroConflict(message, **kwargs)
    if status == 429:
        return MiroRateLimited(f"rate limited: {message}", **kwargs)
    if status >= 500:
        return MiroUnavailable(f"Miro server error: {message}", **kwargs)
    return MiroError(message, **kwargs)


# --- the request executor -------------------------------------------------------------------------


class _RetryableFailure(Exception):  # noqa: N818 - internal signal, never escapes
    """Internal: an attempt failed in a way worth retrying; ``error`` is raised if attempts run out."""

    def __init__(self, error: MiroError, wait_hint: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.wait_hint = wait_hint


# Transport failures where the request certainly never reached Miro: safe to retry even a POST.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class MiroHttp:
    """Sends one logical request with pacing, bounded retries, error mapping and parsing."""

    def __init__(
        self,
        base_url: str,
        token: TokenProvider,
        *,
        http: httpx.Client | None = None,
        pacer: Pacer,
        max_attempts: int = 6,
        sleep: Sleep = time.sleep,
        clock: Clock = time.time,
        stats: RequestStats | None = None,
        backoff_initial: float = 0.5,
        backoff_max: float = 20.0,
        rate_limit_jitter: float = 1.0,
        jitter: Callable[[float, float], float] = random.uniform,
        deadline: InvocationDeadline | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        self.base_url = base_url.rstrip("/")
        self._token = token
        # Expiring tokens refresh at the token endpoint of the API they are used with (unless told).
        use_api_url = getattr(token, "use_api_url", None)
        if callable(use_api_url) and httpx.URL(self.base_url).path in ("", "/"):  # not the SCIM base
            use_api_url(self.base_url)
        self.http = http if http is not None else shared_http_client(self.base_url)
        self.pacer = pacer
        self.max_attempts = max_attempts
        self._sleep = sleep
        self._clock = clock
        self.stats = stats if stats is not None else RequestStats()
        self._backoff = wait_random_exponential(multiplier=backoff_initial, max=backoff_max)
        self._rate_limit_jitter = rate_limit_jitter
        self._jitter = jitter
        self._deadline = deadline
        self.may_have_applied = False

    def __repr__(self) -> str:
        return f"MiroHttp(base_url={self.base_url!r})"

    def now(self) -> float:
        """The clock the pacing runs on."""
        return self._clock()

    def request(
        self,
        method: str,
        path: str,
        parse: Callable[[httpx.Response], T],
        *,
        params: Mapping[str, str | int] | None = None,
        json: Any = None,
        cost: int = 0,
        hint: AuthHint | None = None,
        idempotent: bool = True,
    ) -> T:
        """Send with retries; refresh the token once and try again if Miro answers 401.

        Afterwards ``may_have_applied`` tells whether an earlier, failed attempt may nevertheless
        have reached Miro (timeout after sending, 5xx): a DELETE retried after that may see a 404.
        """
        self.may_have_applied = False
        try:
            return self._with_retries(method, path, parse, params, json, cost, hint, idempotent)
        except MiroAuthError as exc:
            if exc.status != 401 or not isinstance(self._token, RefreshableTokenProvider):
                raise
            self._token.refresh()
            self.stats.token_refreshes += 1
            return self._with_retries(method, path, parse, params, json, cost, hint, idempotent)

    def _with_retries(
        self,
        method: str,
        path: str,
        parse: Callable[[httpx.Response], T],
        params: Mapping[str, str | int] | None,
        json: Any,
        cost: int,
        hint: AuthHint | None,
        idempotent: bool,
    ) -> T:
        retrying = Retrying(
            stop=stop_after_attempt(self.max_attempts),
            wait=self._wait,
            retry=retry_if_exception_type(_RetryableFailure),
            sleep=self._retry_sleep,
            reraise=False,
        )
        try:
            return retrying(self._attempt, method, path, parse, params, json, cost, hint, idempotent)
        except RetryError as exc:
            failure = exc.last_attempt.exception()
            if isinstance(failure, _RetryableFailure):
                raise failure.error from None
            raise  # pragma: no cover - only _RetryableFailure is retried

    def _wait(self, retry_state: RetryCallState) -> float:
        failure = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(failure, _RetryableFailure) and failure.wait_hint is not None:
            # Spread callers that all wake at the reset second.
            return failure.wait_hint + self._jitter(0.0, self._rate_limit_jitter)
        return float(self._backoff(retry_state))

    def _retry_sleep(self, seconds: float) -> None:
        if self._deadline is not None:
            # the wait and an attempt after it must fit, or the caller hears now (and retries later)
            self._deadline.check(seconds, method="RETRY", path="")
        self.stats.retries += 1
        self.stats.retry_wait_seconds += seconds
        if seconds > 0:
            self._sleep(seconds)

    def _attempt(
        self,
        method: str,
        path: str,
        parse: Callable[[httpx.Response], T],
        params: Mapping[str, str | int] | None,
        json: Any,
        cost: int,
        hint: AuthHint | None,
        idempotent: bool,
    ) -> T:
        token = self._token()
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        booked = False
        paced = 0.0
        while paced < _MAX_PACING_S:
            if self._deadline is not None:
                self._deadline.check(0.0, method=method, path=path)
            wait = self.pacer.acquire(method, cost, self._clock())
            if wait <= 0:
                booked = True
                break
            if self._deadline is not None:
                self._deadline.check(wait, method=method, path=path)
            paced += wait
            self.stats.paced_seconds += wait
            self._sleep(wait)
        try:
            budget = (
                None if self._deadline is None else self._deadline.attempt_budget_s(method=method, path=path)
            )
            timeout = _cut_to(self.http.timeout, budget)
        except MiroError:  # MiroDeadlineExceeded: nothing is sent
            if booked:
                self.pacer.release(method, cost)
            raise
        self.stats.requests += 1
        try:
            if timeout is None:
                response = self.http.request(
                    method, f"{self.base_url}{path}", params=params, json=json, headers=headers
                )
            else:
                response = self.http.request(
                    method,
                    f"{self.base_url}{path}",
                    params=params,
                    json=json,
                    headers=headers,
                    timeout=timeout,
                )
            now = self._clock()
            self.pacer.observe(response.headers, now)
        except httpx.TransportError as exc:
            # The message names the failure class only: httpx messages can echo URLs, never needed here.
            unavailable = MiroUnavailable(f"{type(exc).__name__} talking to Miro", method=method, path=path)
            if not isinstance(exc, _NOT_SENT):
                self.may_have_applied = True
            if idempotent or isinstance(exc, _NOT_SENT):
                raise _RetryableFailure(unavailable) from None
            raise unavailable from None
        finally:
            if booked:
                self.pacer.release(method, cost)
        if "X-RateLimit-Remaining" in response.headers:
            self.stats.credits_spent += cost
        status = response.status_code
        if status == 429:
            self.stats.http_429 += 1
            error = error_for_response(response, method=method, path=path, hint=hint, token=token)
            raise _RetryableFailure(error, self.pacer.wait_after_429(method, response.headers, now))
        if status >= 400:
            error = error_for_response(response, method=method, path=path, hint=hint, token=token)
            if status >= 500:
                self.may_have_applied = True
                if idempotent:
                    raise _RetryableFailure(error)
            raise error
        try:
            return parse(response)
        except ValueError as exc:  # JSON decode errors and pydantic ValidationError are ValueErrors
            raise _RetryableFailure(
                MiroProtocolError(
                    f"malformed response body ({_describe_parse_error(exc)})",
                    status=status,
                    method=method,
                    path=path,
                )
            ) from None


def _cut_to(default: httpx.Timeout, budget_s: float | None) -> httpx.Timeout | None:
    """The client's timeouts, cut so that an attempt ends within `budget_s` (None: no deadline)."""
    if budget_s is None:
        return None
    connect = min(default.connect or budget_s, budget_s / 2)
    rest = budget_s - connect
    return httpx.Timeout(
        min(default.read or rest, rest),
        connect=connect,
        write=min(default.write or rest, rest),
        pool=min(default.pool or connect, connect),
    )


def _describe_parse_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            first = errors()[0]
            location = ".".join(str(part) for part in first.get("loc", ()))
            return f"{type(exc).__name__} at {location or 'body'}: {first.get('msg', '')}"[:200]
        except (IndexError, TypeError):
            pass
    return f"{type(exc).__name__}: {exc}"[:200]


@dataclass
class PageGuard:
    """Detects a cursor that comes back again (a loop) instead of paging forever."""

    seen: set[str] = field(default_factory=set)

    def check(self, cursor: str | None, *, path: str) -> None:
        if cursor is None:
            return
        if cursor in self.seen:
            raise MiroProtocolError(
                f"Miro returned cursor {cursor!r} twice; stopping to avoid a loop", path=path
            )
        self.seen.add(cursor)
