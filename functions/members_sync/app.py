"""MembersSyncFunction: EventBridge schedule; continues itself by async self-invoke.

Logic lives in miro_sync.sync.members; this module reads the environment, builds the adapters
once per container (keyed by the frozen settings) and turns the run's result into metrics.
"""

from __future__ import annotations

import os
import time
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from miro_sync.settings.members_sync import MembersSyncSettings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from miro_sync.continuation import Continuation
    from miro_sync.miro.http import RequestStats
    from miro_sync.sync.members import MembersSync

logger = Logger()
metrics = Metrics()


@lru_cache(maxsize=4)
def build(settings: MembersSyncSettings) -> tuple[MembersSync, list[RequestStats], Continuation]:
    """Heavy imports and clients only on the first invocation of a container (cold-start budget)."""
    import boto3

    from miro_sync.continuation import Continuation
    from miro_sync.miro.client import MiroRestClient
    from miro_sync.miro.http import RateLimitPacer
    from miro_sync.miro.scim import MiroScimClient
    from miro_sync.secrets import SecretsManagerToken
    from miro_sync.store.members import MembersRepository
    from miro_sync.store.self_invoke import LambdaAsyncInvoker
    from miro_sync.store.state import StateRepository
    from miro_sync.sync.members import MembersSync

    dynamodb = boto3.resource("dynamodb")
    # A sync is one job that wants to finish: spend the usable credits greedily (burst_fraction 0)
    # instead of spreading them to the reset; the pacer's 10% reserve still leaves room for the
    # webhook and offboarding sharing the token, and also absorbs the overshoot of concurrent pages.
    miro = MiroRestClient(
        settings.api_url,
        SecretsManagerToken(settings.token_secret),
        settings.org_id,
        pacer=RateLimitPacer(burst_fraction=0.0),
    )
    scim = (
        MiroScimClient(settings.scim_url, SecretsManagerToken(settings.scim_token_secret))
        if settings.scim_token_secret
        else None
    )
    sync = MembersSync(
        miro=miro,
        scim=scim,
        members=MembersRepository(dynamodb.Table(settings.members_table)),
        state=StateRepository(dynamodb.Table(settings.state_table)),
        page_size=settings.page_size,
        inactive_thresholds_days=settings.inactive_thresholds_days,
        log=lambda message, fields: logger.info(message, extra=dict(fields)),
    )
    stats = [miro.stats] + ([scim.stats] if scim is not None else [])
    invoker = LambdaAsyncInvoker(boto3.client("lambda")) if settings.function_name else None
    return sync, stats, Continuation(invoker, settings.function_name)


def _totals(stats: list[RequestStats]) -> tuple[int, int, int]:
    return (
        sum(s.requests for s in stats),
        sum(s.retries for s in stats),
        sum(s.http_429 for s in stats),
    )


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    from miro_sync.continuation import Deadline

    settings = MembersSyncSettings.from_env(os.environ)  # fails at start, naming what to set
    sync, stats, continuation = build(settings)
    started = time.monotonic()
    # The clients' counters live as long as the container: report this invocation's share.
    requests_before, retries_before, throttled_before = _totals(stats)
    try:
        result = sync.run(
            invocation_id=context.aws_request_id, deadline=Deadline(context, settings.min_remaining_ms)
        )
    except Exception:
        metrics.add_metric(name="SyncFailed", unit=MetricUnit.Count, value=1)
        logger.exception("members sync failed")
        raise
    finally:
        requests, retries, throttled = _totals(stats)
        metrics.add_metric(name="MiroRequests", unit=MetricUnit.Count, value=requests - requests_before)
        metrics.add_metric(name="MiroRetries", unit=MetricUnit.Count, value=retries - retries_before)
        metrics.add_metric(
            name="MiroRateLimited429", unit=MetricUnit.Count, value=throttled - throttled_before
        )
        metrics.add_metric(name="DurationSeconds", unit=MetricUnit.Seconds, value=time.monotonic() - started)

    logger.append_keys(run_id=result.run_id)
    for name, value in (
        ("MembersFetched", result.fetched),
        ("MembersWritten", result.written),
        ("MembersUnchanged", result.unchanged),
        ("MembersRemoved", result.removed),
        ("WriteRequests", result.write_requests),
        ("ScimLookups", result.scim_lookups),
        ("Resumes", int(result.resumed)),
    ):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    handed_over = False
    if result.outcome == "continue":
        handed_over = continuation.hand_over({"source": "miro-sync.continuation", "runId": result.run_id})
        metrics.add_metric(name="Continuations", unit=MetricUnit.Count, value=1)
        if not handed_over:
            logger.warning("cannot self-invoke (no function name); the next schedule resumes the run")
    logger.info(
        "members sync invocation finished",
        extra={
            "outcome": result.outcome,
            "pages": result.pages,
            "fetched": result.fetched,
            "handedOver": handed_over,
        },
    )
    return {
        "outcome": result.outcome,
        "runId": result.run_id,
        "resumed": result.resumed,
        "pages": result.pages,
        "fetched": result.fetched,
        "written": result.written,
        "unchanged": result.unchanged,
        "removed": result.removed,
        "writeRequests": result.write_requests,
        "handedOver": handed_over,
        "snapshot": result.snapshot,
    }
