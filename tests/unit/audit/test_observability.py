"""miro_sync.observability: the shared run-metrics helper of the sync handlers."""

from __future__ import annotations

from aws_lambda_powertools.metrics import EphemeralMetrics

from miro_sync.miro.http import RequestStats
from miro_sync.observability import add_sync_metrics, add_sync_succeeded, usage_since


def test_usage_since_reports_only_this_invocations_share_of_long_lived_counters() -> None:
    stats = RequestStats(requests=10, retries=1, paced_seconds=2.5)
    before = stats.as_metrics()
    stats.requests += 3
    stats.paced_seconds += 0.25
    usage = usage_since(before, stats.as_metrics())
    assert usage["MiroRequests"] == 3
    assert usage["MiroRetries"] == 0
    assert usage["MiroPacedSeconds"] == 0.25


def test_results_and_summed_client_usage_become_metrics_with_units_by_name() -> None:
    sink = EphemeralMetrics(namespace="MiroSync", service="members-sync")
    rest = {"MiroRequests": 5.0, "MiroPacedSeconds": 1.5}
    scim = {"MiroRequests": 2.0}
    add_sync_metrics(sink, {"MembersWritten": 7, "DurationSeconds": 3.0}, rest, scim)
    add_sync_succeeded(sink)
    emf = sink.serialize_metric_set()
    assert emf["MiroRequests"] == [7.0]
    assert emf["MembersWritten"] == [7.0]
    assert emf["SyncSucceeded"] == [1.0]
    units = {m["Name"]: m["Unit"] for m in emf["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert units == {
        "MiroRequests": "Count",
        "MiroPacedSeconds": "Seconds",
        "MembersWritten": "Count",
        "DurationSeconds": "Seconds",
        "SyncSucceeded": "Count",
    }
