"""miro_sync.observability: the shared run-metrics helpers of the sync handlers."""

from __future__ import annotations

from aws_lambda_powertools.metrics import EphemeralMetrics

from miro_sync.miro.http import RequestStats
from miro_sync.observability import add_sync_succeeded, publish_sync_counters, summed, usage_since


def test_usage_since_reports_only_this_invocations_share_of_long_lived_counters() -> None:
    stats = RequestStats(requests=10, retries=1, paced_seconds=2.5)
    before = stats.as_metrics()
    stats.requests += 3
    stats.paced_seconds += 0.25
    usage = usage_since(before, stats.as_metrics())
    assert usage["MiroRequests"] == 3
    assert usage["MiroRetries"] == 0
    assert usage["MiroPacedSeconds"] == 0.25


def test_client_usage_is_summed_over_clients() -> None:
    rest = {"MiroRequests": 5.0, "MiroPacedSeconds": 1.5}
    scim = {"MiroRequests": 2.0}
    assert summed(rest, scim) == {"MiroRequests": 7.0, "MiroPacedSeconds": 1.5}
    assert summed() == {}


def test_only_the_published_names_become_metrics_with_units_by_name_the_rest_is_returned() -> None:
    sink = EphemeralMetrics(namespace="MiroSync", service="members-sync")
    counters = {
        "MiroRequests": 7.0,
        "MiroPacedSeconds": 1.5,
        "MembersWritten": 7,
        "MembersUnchanged": 3,
        "DurationSeconds": 3.0,
    }
    unpublished = publish_sync_counters(sink, counters)
    add_sync_succeeded(sink)
    emf = sink.serialize_metric_set()
    assert emf["MiroRequests"] == [7.0]
    assert emf["MembersWritten"] == [7.0]
    assert emf["SyncSucceeded"] == [1.0]
    units = {m["Name"]: m["Unit"] for m in emf["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert units == {
        "MiroRequests": "Count",
        "MembersWritten": "Count",
        "DurationSeconds": "Seconds",
        "SyncSucceeded": "Count",
    }
    assert unpublished == {"MiroPacedSeconds": 1.5, "MembersUnchanged": 3}
