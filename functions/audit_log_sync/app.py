"""AuditLogSyncFunction: EventBridge schedule; continues itself by async self-invoke.

Logic lives in miro_sync.sync.audit; this module reads the environment, builds the adapters once per
container (keyed by the frozen settings) and hands the run to miro_sync.sync.runner, which turns its
result into metrics, logs and a hand-over.
"""

from __future__ import annotations

import os
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
    from miro_sync.sync.runner import RunReport

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
    from miro_sync.store.lowlevel import BULK_WRITER_CONFIG
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
            # Page writes with items typed by the store: no resource serializer on the hot path.
            writer=boto3.client("dynamodb", config=BULK_WRITER_CONFIG),
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
    settings: AuditLogSyncSettings,
    adapters: Adapters,
    context: LambdaContext,
    sink: MetricsSink,
    log: Logger = logger,
) -> dict[str, Any]:
    """One invocation: sync until done or out of time, then metrics, hand-over and a summary."""
    from miro_sync.sync.runner import run_sync_invocation

    return run_sync_invocation(
        lambda: _sync(settings, adapters, context),
        name="audit log sync",
        usage=(adapters.miro.stats,),
        sink=sink,
        log=log,
        continuation=adapters.continuation,
    )


def _sync(settings: AuditLogSyncSettings, adapters: Adapters, context: LambdaContext) -> RunReport:
    from datetime import timedelta

    from miro_sync.continuation import Deadline
    from miro_sync.sync.audit import AuditLogSync, AuditSyncConfig
    from miro_sync.sync.runner import RunReport

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
    result = sync.run(
        owner=context.aws_request_id,
        deadline=Deadline(context, settings.min_remaining_ms),
        # The lease outlives this invocation a little, so a crashed one blocks only until then.
        lease_ms=context.get_remaining_time_in_millis() + 60_000,
    )
    return RunReport(
        outcome=result.outcome,
        counters=result.counters(),
        summary=result.as_dict(),
        continuation_payload={"source": "miro-sync.continuation", "sync": "audit"},
    )
