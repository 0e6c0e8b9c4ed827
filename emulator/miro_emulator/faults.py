"""Named fault profiles. A fault is a pure function of (seed, profile, operation, per-operation ordinal),
so the same request sequence meets the same faults on every run, whatever the thread timing.

429 storms are the one fault with a duration: `decide` only says at which ordinal a storm starts; the
emulator then answers every request of that token with 429 until the storm ends (`storm_duration_s`
after it started) and tells the client so (`Retry-After`, `X-RateLimit-Reset`). Requests answered by a
running storm draw no ordinal, so the other faults stay where they were however hard a client hammers,
and a client that waits as told meets exactly one 429 per storm."""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum


class FaultKind(StrEnum):
    NONE = "none"
    SERVER_ERROR = "server_error"
    RESET = "connection_reset"
    TOO_MANY_REQUESTS = "too_many_requests"
    TRUNCATED = "truncated_body"
    EXPIRED_TOKEN = "expired_token"  # noqa: S105 - a fault name, not a secret


@dataclass(frozen=True)
class FaultProfile:
    name: str
    server_error: float = 0.0
    reset: float = 0.0
    truncated: float = 0.0
    # 429 storms: out of every `storm_every` requests of an operation, one (picked by the seed) starts a
    # storm that lasts min(storm_max_s, window_s * storm_window_fraction), like a real burst that ends
    # when the rate-limit window resets (scaled down so tests with short windows stay short).
    storm_every: int = 0
    storm_max_s: float = 2.0
    storm_window_fraction: float = 1 / 30
    # Latency: lognormal body (median, sigma) plus a rare long tail, in milliseconds.
    latency_median_ms: float = 0.0
    latency_sigma: float = 0.0
    latency_tail: float = 0.0
    latency_tail_ms: float = 0.0
    expire_token_after: int | None = None  # total requests after which the REST/SCIM tokens stop working

    def storm_duration_s(self, window_s: float) -> float:
        return min(self.storm_max_s, window_s * self.storm_window_fraction)


PROFILES: dict[str, FaultProfile] = {
    profile.name: profile
    for profile in (
        FaultProfile("none"),
        FaultProfile("flaky", server_error=0.05, reset=0.03),
        FaultProfile("429-storm", storm_every=12),
        FaultProfile(
            "slow", latency_median_ms=40, latency_sigma=0.8, latency_tail=0.02, latency_tail_ms=1500
        ),
        FaultProfile("truncated", truncated=0.1),
        FaultProfile("expired-token", expire_token_after=50),
        FaultProfile(
            "chaos",
            server_error=0.04,
            reset=0.02,
            truncated=0.03,
            storm_every=40,
            latency_median_ms=15,
            latency_sigma=0.7,
            latency_tail=0.01,
            latency_tail_ms=800,
        ),
    )
}

SERVER_ERROR_STATUSES = (500, 502, 503, 504)


@dataclass(frozen=True)
class FaultDecision:
    kind: FaultKind
    latency_ms: float = 0.0
    status: int = 0  # for SERVER_ERROR


def decide(
    profile: FaultProfile, seed: int, operation: str, ordinal: int, total_ordinal: int
) -> FaultDecision:
    """`ordinal` counts this operation's requests, `total_ordinal` all faultable requests (both from 0)."""
    rng = random.Random(f"{seed}/{profile.name}/{operation}/{ordinal}")
    latency = _latency(profile, rng)
    if profile.expire_token_after is not None and total_ordinal >= profile.expire_token_after:
        return FaultDecision(FaultKind.EXPIRED_TOKEN, latency)
    if profile.storm_every > 0:
        period, offset = divmod(ordinal, profile.storm_every)
        period_rng = random.Random(f"{seed}/{profile.name}/{operation}/storm/{period}")
        if offset == period_rng.randrange(profile.storm_every):
            return FaultDecision(FaultKind.TOO_MANY_REQUESTS, latency)  # a storm starts here
    roll = rng.random()
    if roll < profile.reset:
        return FaultDecision(FaultKind.RESET, latency)
    roll -= profile.reset
    if roll < profile.server_error:
        return FaultDecision(FaultKind.SERVER_ERROR, latency, rng.choice(SERVER_ERROR_STATUSES))
    roll -= profile.server_error
    if roll < profile.truncated:
        return FaultDecision(FaultKind.TRUNCATED, latency)
    return FaultDecision(FaultKind.NONE, latency)


def _latency(profile: FaultProfile, rng: random.Random) -> float:
    if profile.latency_median_ms <= 0:
        return 0.0
    if rng.random() < profile.latency_tail:
        return profile.latency_tail_ms * (1 + rng.random())
    return profile.latency_median_ms * rng.lognormvariate(0, profile.latency_sigma)
