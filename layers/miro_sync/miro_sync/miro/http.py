"""HTTP plumbing shared by the Miro REST and SCIM clients.

* ``shared_http_client``: one ``httpx.Client`` (connection pool) per base URL, kept at module level
  so a warm Lambda container reuses its TLS connections across invocations.
* ``MiroHttp``: one request with pacing (a ``Pacer`` from ``pacing.py``), bounded retries (tenacity,
  jittered exponential backoff; 429 waits for Retry-After or the reset), error mapping
  (``errors.error_for_response``), a single token refresh after a 401, and parsing inside the retry so
  a truncated body is fetched again.
* ``PageGuard``: stops a listing whose cursor comes back.

Sleep, clock and jitter are injectable so unit tests run instantly and deterministically.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from tenacity import RetryCallState, RetryError, Retrying, retry_if_exception_type, stop_after_attempt
from tenacity.wait import wait_random_exponential

from miro_sync.miro.deadline import InvocationDeadline
from miro_sync.miro.errors import (
    AuthHint,
    MiroAuthError,
    MiroError,
    MiroProtocolError,
    MiroUnavailable,
    error_for_response,
)
from miro_sync.miro.pacing import SCIM_LIMITS as SCIM_LIMITS
from miro_sync.miro.pacing import Pacer
from miro_sync.miro.pacing import RateLimitPacer as RateLimitPacer
from miro_sync.miro.pacing import WindowPacer as WindowPacer
from miro_sync.miro.pacing import reset_time as reset_time
from miro_sync.miro.pacing import retry_after_seconds as retry_after_seconds
from miro_sync.miro.token_provider import RefreshableTokenProvider, TokenProvider

# The `name as name` imports: moved to pacing.py, still importable from here (functions/ and tests do).

T = TypeVar("T")

Sleep = Callable[[float], None]
Clock = Callable[[], float]

USER_AGENT = "miro-sync/0.1 (+https://github.com/; httpx)"
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
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
        booked = self._pace(method, path, cost)
        try:
            timeout = self._attempt_timeout(method, path)
        except MiroError:  # MiroDeadlineExceeded: nothing is sent
            if booked:
                self.pacer.release(method, cost)
            raise
        response, now = self._send(method, path, params, json, headers, timeout, cost, booked, idempotent)
        return self._answer(response, now, method, path, parse, cost, hint, token, idempotent)

    def _pace(self, method: str, path: str, cost: int) -> bool:
        """Wait until the pacer books the request (True), or until pacing has taken `_MAX_PACING_S`: the
        request then goes unbooked (False). Raises MiroDeadlineExceeded if a wait would not fit."""
        paced = 0.0
        while paced < _MAX_PACING_S:
            if self._deadline is not None:
                self._deadline.check(0.0, method=method, path=path)
            wait = self.pacer.acquire(method, cost, self._clock())
            if wait <= 0:
                return True
            if self._deadline is not None:
                self._deadline.check(wait, method=method, path=path)
            paced += wait
            self.stats.paced_seconds += wait
            self._sleep(wait)
        return False

    def _attempt_timeout(self, method: str, path: str) -> httpx.Timeout | None:
        """The client's timeouts cut to the invocation's time left (None: no deadline, keep them)."""
        budget = None if self._deadline is None else self._deadline.attempt_budget_s(method=method, path=path)
        return _cut_to(self.http.timeout, budget)

    def _send(
        self,
        method: str,
        path: str,
        params: Mapping[str, str | int] | None,
        json: Any,
        headers: dict[str, str],
        timeout: httpx.Timeout | None,
        cost: int,
        booked: bool,
        idempotent: bool,
    ) -> tuple[httpx.Response, float]:
        """One HTTP exchange: the response and when it arrived (the pacer sees its headers). A booked
        request is released whatever happens; a transport failure becomes MiroUnavailable, retried
        when resending cannot apply the request twice."""
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
        return response, now

    def _answer(
        self,
        response: httpx.Response,
        now: float,
        method: str,
        path: str,
        parse: Callable[[httpx.Response], T],
        cost: int,
        hint: AuthHint | None,
        token: str,
        idempotent: bool,
    ) -> T:
        """The parsed body of a success; an error answer (or a body that does not parse) raised as a
        MiroError, wrapped in _RetryableFailure when another attempt may succeed."""
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
