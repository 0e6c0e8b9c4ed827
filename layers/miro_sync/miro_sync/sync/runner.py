"""One sync invocation, the same for every sync handler: run, measure, report, hand over.

The handler builds its adapters and turns its sync's result into a `RunReport`; this module times the
run, takes the invocation's share of the container-lived Miro client counters, publishes the metrics
an alarm or a dashboard needs (observability.PUBLISHED_SYNC_METRICS), logs the other counters with
the invocation's summary, and hands over to a fresh invocation when the sync ran out of time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from miro_sync.observability import (
    CONTINUATIONS,
    DURATION_SECONDS,
    add_sync_failed,
    add_sync_succeeded,
    publish_sync_counters,
    summed,
    usage_since,
)
from miro_sync.ports import LogSink, MetricsSink

COMPLETE = "complete"
CONTINUE = "continue"
BUSY = "busy"


class UsageCounters(Protocol):
    """A Miro client's `RequestStats`: counters that live as long as the container."""

    def as_metrics(self) -> dict[str, float]: ...


class HandOver(Protocol):
    """`Continuation`: start the next invocation; False when this function cannot invoke itself."""

    def hand_over(self, payload: Mapping[str, Any]) -> bool: ...


@dataclass(frozen=True)
class RunReport:
    """A sync's result, as the runner reports it."""

    outcome: str  # complete | continue | busy
    counters: Mapping[str, float]
    # What the handler returns; logged at the end of the invocation (only the `logged` keys if given).
    summary: Mapping[str, Any]
    # The next invocation's event when the outcome is "continue".
    continuation_payload: Mapping[str, Any]
    logged: Sequence[str] | None = None


def run_sync_invocation(
    sync: Callable[[], RunReport],
    *,
    name: str,
    usage: Sequence[UsageCounters],
    sink: MetricsSink,
    log: LogSink,
    continuation: HandOver,
) -> dict[str, Any]:
    """Run `sync` once and report it; `name` ("members sync") is how the log lines call it.

    A failure is counted (SyncFailed) and raised again: the sync kept its checkpoint, so the next
    invocation resumes. The usage and duration are reported for failed invocations too."""
    usage_before = [stats.as_metrics() for stats in usage]
    started = time.monotonic()

    def spent() -> dict[str, float]:
        after = (
            usage_since(before, stats.as_metrics()) for before, stats in zip(usage_before, usage, strict=True)
        )
        return summed(*after) | {DURATION_SECONDS: round(time.monotonic() - started, 3)}

    try:
        report = sync()
    except Exception:
        add_sync_failed(sink)
        unpublished = publish_sync_counters(sink, spent())
        log.exception(
            f"{name} failed; the checkpoint is kept and the next run resumes", extra={"counters": unpublished}
        )
        raise
    unpublished = publish_sync_counters(sink, spent() | dict(report.counters))
    handed_over = _conclude(report, name=name, sink=sink, log=log, continuation=continuation)
    summary = dict(report.summary) | {"handedOver": handed_over}
    logged = (
        summary if report.logged is None else {key: summary[key] for key in (*report.logged, "handedOver")}
    )
    log.info(f"{name} invocation finished", extra=logged | {"counters": unpublished})
    return summary


def _conclude(
    report: RunReport, *, name: str, sink: MetricsSink, log: LogSink, continuation: HandOver
) -> bool:
    """Count a complete run, hand a continued one over; True when the next invocation was started."""
    if report.outcome == COMPLETE:
        add_sync_succeeded(sink)
    elif report.outcome == CONTINUE:
        handed_over = continuation.hand_over(report.continuation_payload)
        publish_sync_counters(sink, {CONTINUATIONS: 1})
        if handed_over:
            return True
        log.warning("cannot self-invoke (no function name); the next schedule resumes the run")
    elif report.outcome == BUSY:
        log.info(f"another invocation holds the {name} lease; nothing to do")
    return False
