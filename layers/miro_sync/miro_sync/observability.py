"""Turning a sync's counters into Powertools metrics and log fields, the same way for every sync handler.

The names are a contract with template.yaml's alarms (CONVENTIONS.md "Services, metrics and alarms"):
`SyncSucceeded` (Count 1) is emitted once per complete, successful run, never by an invocation that
only continued itself or found another one holding the lease.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_lambda_powertools.metrics import MetricUnit

from miro_sync.ports import MetricsSink

SYNC_SUCCEEDED = "SyncSucceeded"
SYNC_FAILED = "SyncFailed"
CONTINUATIONS = "Continuations"
DURATION_SECONDS = "DurationSeconds"

# CloudWatch bills $0.30 per custom metric a month, prorated by the hours in which it is published: the
# hourly audit sync publishing all its 17 counters cost $5.10 a month, a third of the stack's cost at 10k
# members. So only what an alarm or a dashboard needs is a metric: success and failure (the stale-sync
# alarms), the run's length and hand-overs, Miro's load and pushback, one volume figure per sync. Every
# other counter goes to the invocation's summary log line under "counters", where Logs Insights reads it.
# (The lost-access check of webhook subscriptions publishes its own two names, only with EnableWebhook.)
PUBLISHED_SYNC_METRICS = frozenset(
    {
        SYNC_SUCCEEDED,
        SYNC_FAILED,
        DURATION_SECONDS,
        CONTINUATIONS,
        "MiroRequests",
        "MiroRateLimited429",
        "MembersWritten",
        "AuditEventsStored",
    }
)


def unit_for(name: str) -> MetricUnit:
    # One naming rule instead of a unit table per sync: durations end in "Seconds", the rest count.
    return MetricUnit.Seconds if name.endswith("Seconds") else MetricUnit.Count


def usage_since(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, float]:
    """The share of long-lived counters (a client's `stats.as_metrics()`) spent in between.

    The Miro clients live as long as the Lambda container; each invocation reports its own share.
    """
    return {name: round(value - before.get(name, 0), 3) for name, value in after.items()}


def summed(*counters: Mapping[str, float]) -> dict[str, float]:
    """Counters of the same names added up (e.g. the REST and the SCIM client's usage)."""
    totals: dict[str, float] = {}
    for each in counters:
        for name, value in each.items():
            totals[name] = totals.get(name, 0) + value
    return totals


def publish_sync_counters(metrics: MetricsSink, counters: Mapping[str, float]) -> dict[str, float]:
    """Add the counters in PUBLISHED_SYNC_METRICS as metrics; return the others, for the log line."""
    unpublished: dict[str, float] = {}
    for name, value in counters.items():
        if name in PUBLISHED_SYNC_METRICS:
            metrics.add_metric(name=name, unit=unit_for(name), value=value)
        else:
            unpublished[name] = value
    return unpublished


def add_sync_succeeded(metrics: MetricsSink) -> None:
    """Call only when a run completed (the stale-sync alarms count missing data as breaching)."""
    metrics.add_metric(name=SYNC_SUCCEEDED, unit=MetricUnit.Count, value=1)


def add_sync_failed(metrics: MetricsSink) -> None:
    metrics.add_metric(name=SYNC_FAILED, unit=MetricUnit.Count, value=1)
