"""Turning a sync's outcome into Powertools metrics, the same way for every sync handler.

The names are a contract with template.yaml's alarms (CONVENTIONS.md "Services, metrics and alarms"):
`SyncSucceeded` (Count 1) is emitted once per complete, successful run, never by an invocation that
only continued itself or found another one holding the lease.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from aws_lambda_powertools.metrics import MetricUnit

SYNC_SUCCEEDED = "SyncSucceeded"
SYNC_FAILED = "SyncFailed"


class MetricsSink(Protocol):
    """The part of Powertools `Metrics` / `EphemeralMetrics` used here."""

    def add_metric(self, name: str, unit: MetricUnit | str, value: float) -> None: ...


def unit_for(name: str) -> MetricUnit:
    # One naming rule instead of a unit table per sync: durations end in "Seconds", the rest count.
    return MetricUnit.Seconds if name.endswith("Seconds") else MetricUnit.Count


def usage_since(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, float]:
    """The share of long-lived counters (a client's `stats.as_metrics()`) spent in between.

    The Miro clients live as long as the Lambda container; each invocation reports its own share.
    """
    return {name: round(value - before.get(name, 0), 3) for name, value in after.items()}


def add_sync_metrics(
    metrics: MetricsSink, result_metrics: Mapping[str, float], *miro_usage: Mapping[str, float]
) -> None:
    """Add a run's own metrics and the Miro client usage (summed over clients, e.g. REST + SCIM)."""
    totals: dict[str, float] = {}
    for usage in miro_usage:
        for name, value in usage.items():
            totals[name] = totals.get(name, 0) + value
    for name, value in {**totals, **result_metrics}.items():
        metrics.add_metric(name=name, unit=unit_for(name), value=value)


def add_sync_succeeded(metrics: MetricsSink) -> None:
    """Call only when a run completed (the stale-sync alarms count missing data as breaching)."""
    metrics.add_metric(name=SYNC_SUCCEEDED, unit=MetricUnit.Count, value=1)


def add_sync_failed(metrics: MetricsSink) -> None:
    metrics.add_metric(name=SYNC_FAILED, unit=MetricUnit.Count, value=1)
