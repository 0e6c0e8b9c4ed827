"""AuditLogSyncFunction: EventBridge schedule; continues itself by async self-invoke.

Logic lives in miro_sync.sync.audit; this module reads the environment, builds the adapters once per
container (keyed by the frozen settings) and turns the run's result into metrics and logs.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics

from miro_sync.settings.audit_log_sync import AuditLogSyncSettings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from miro_sync.continuation import Continuation
    from miro_sync.miro.client import MiroRestClient
    from miro_sync.observability import MetricsSink
    from miro_sync.store.audit import AuditRepository, RejectedEventsRepository
    from miro_sync.store.events_bus import EventBridgeForwarder
    from miro_sync.store.members import MembersRepository
    from miro_sync.store.state import StateRepository

logger = Logger()
metrics = Metrics()


@dataclass(frozen=True)
class Adapters:
    miro: MiroRestClient
    audit: AuditRepository
    rejects: RejectedEventsRepository
    state: StateRepository
    members: MembersRepository
    forwarder: EventBridgeForwarder | None
    continuation: Continuation


@lru_cache(maxsize=4)
def build(settings: AuditLogSyncSettings) -> Adapters:
    """Heavy imports and clients only on the first invocation of a container (cold-start budget)."""
    import boto3
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    from miro_sync.continuation import Continuation
    from miro_sync.miro.client import MiroRestClient
    from miro_sync.miro.http import RateLimitPacer
    from miro_sync.secrets import SecretsManagerToken
    from miro_sync.store.audit import AuditRepository, RejectedEventsRepository
    from miro_sync.store.events_bus import EventBridgeForwarder
    from miro_sync.store.members import MembersRepository
    from miro_sync.store.self_invoke import LambdaAsyncInvoker, LazyLambdaClient
    from miro_sync.store.state import StateRepository

    dynamodb = boto3.resource("dynamodb")
    # As in the members sync: the Lambda client only on a hand-over, and the secrets client on boto3's
    # default session (a bare SecretsProvider() opens a session of its own, ~9 MB and ~0.5 s).
    invoker = LambdaAsyncInvoker(LazyLambdaClient()) if settings.function_name else None
    secrets = SecretsProvider(boto3_client=boto3.client("secretsmanager"))
    return Adapters(
        miro=MiroRestClient(
            settings.api_url,
            SecretsManagerToken(settings.token_secret, fetcher=secrets),
            settings.org_id,
            # A sync is one job that wants to finish (as the members sync): spend the usable credits
            # greedily instead of spreading them to the reset; the reserve stays for other callers.
            pacer=RateLimitPacer(
                reserve_fraction=settings.rate_reserve_fraction,
                burst_fraction=0.0,
                reserve_only_when_shared=True,
            ),
        ),
        audit=AuditRepository(
            dynamodb.Table(settings.audit_table),
            retention_days=settings.retention_days,
            write_workers=settings.write_workers,
        ),
        rejects=RejectedEventsRepository(dynamodb.Table(settings.state_table)),
        state=StateRepository(dynamodb.Table(settings.state_table)),
        members=MembersRepository(dynamodb.Table(settings.members_table)),
        forwarder=EventBridgeForwarder(boto3.client("events"), settings.event_bus)
        if settings.event_bus
        else None,
        continuation=Continuation(invoker, settings.function_name),
    )


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = AuditLogSyncSettings.from_env(os.environ)  # fails at start, naming what to set
    return run_invocation(settings, build(settings), context, metrics)


def run_invocation(
    settings: AuditLogSyncSettings, adapters: Adapters, context: LambdaContext, sink: MetricsSink
) -> dict[str, Any]:
    """One invocation: sync until done or out of time, then metrics, hand-over and a summary."""
    from datetime import timedelta

    from miro_sync.continuation import Deadline
    from miro_sync.observability import add_sync_failed, add_sync_metrics, add_sync_succeeded, usage_since
    from miro_sync.sync.audit import AuditLogSync, AuditSyncConfig

    sync = AuditLogSync(
        source=adapters.miro,
        store=adapters.audit,
        rejects=adapters.rejects,
        checkpoints=adapters.state,
        members=adapters.members,
        forwarder=adapters.forwarder,
        config=AuditSyncConfig(
            backfill_days=settings.backfill_days,
            overlap=timedelta(minutes=settings.overlap_minutes),
            window=timedelta(hours=settings.window_hours),
            page_size=settings.page_size,
            prefetch_windows=settings.prefetch_windows,
        ),
    )
    miro_before = adapters.miro.stats.as_metrics()
    started = time.monotonic()
    try:
        result = sync.run(
            owner=context.aws_request_id,
            deadline=Deadline(context, settings.min_remaining_ms),
            # The lease outlives this invocation a little, so a crashed one blocks only until then.
            lease_ms=context.get_remaining_time_in_millis() + 60_000,
        )
    except Exception:
        add_sync_failed(sink)
        logger.exception("audit log sync failed; the checkpoint is kept and the next run resumes")
        raise
    finally:
        usage = usage_since(miro_before, adapters.miro.stats.as_metrics())
        add_sync_metrics(sink, {"DurationSeconds": round(time.monotonic() - started, 3)}, usage)

    add_sync_metrics(sink, result.metrics())
    handed_over = False
    if result.status == "complete":
        add_sync_succeeded(sink)
    elif result.status == "continue":
        handed_over = adapters.continuation.hand_over({"source": "miro-sync.continuation", "sync": "audit"})
        add_sync_metrics(sink, {"Continuations": 1})
        if not handed_over:
            logger.warning("cannot self-invoke (no function name); the next schedule resumes the run")
    elif result.status == "busy":
        logger.info("another invocation holds the audit sync lease; nothing to do")
    summary = result.as_dict() | {"handedOver": handed_over}
    logger.info("audit log sync invocation finished", extra=summary)
    return summary
