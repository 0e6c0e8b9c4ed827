"""MembersSyncFunction: EventBridge schedule; continues itself by async self-invoke.

Logic lives in miro_sync.sync.members; this module reads the environment, builds the adapters
once per container (keyed by the frozen settings) and hands the run to miro_sync.sync.runner, which
turns its result into metrics, logs and a hand-over.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics

from miro_sync.settings.members_sync import MembersSyncSettings

if TYPE_CHECKING:
    from collections.abc import Callable

    from aws_lambda_powertools.utilities.typing import LambdaContext

    from miro_sync.continuation import Continuation
    from miro_sync.miro.http import RequestStats
    from miro_sync.ports import MetricsSink
    from miro_sync.sync.members import (
        MembersSource,
        MembersStore,
        MembersSyncResult,
        ScimDirectory,
        StateStore,
    )
    from miro_sync.sync.runner import RunReport
    from miro_sync.webhooks.subscriptions import SubscriptionApi, SubscriptionStore

logger = Logger()
metrics = Metrics()

LOST_ACCESS_CHECK_FAILED = "WebhookLostAccessCheckFailed"


@dataclass(frozen=True)
class Adapters:
    miro: MembersSource
    scim: ScimDirectory | None
    members: MembersStore
    state: StateStore
    continuation: Continuation
    # The Miro clients' counters (they live as long as the container): each invocation reports its share.
    usage: tuple[RequestStats, ...]
    # Used only when the webhook is deployed (WEBHOOK_ENABLED): the lost-access check after a complete run.
    subscription_api: SubscriptionApi
    subscriptions: SubscriptionStore
    # The share of the REST credit limit usable now (None: unknown); lets the aux go first.
    credit_headroom: Callable[[], float | None] | None = None


@lru_cache(maxsize=4)
def build(settings: MembersSyncSettings) -> Adapters:
    """Heavy imports and clients only on the first invocation of a container (cold-start budget)."""
    import boto3
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    from miro_sync.continuation import Continuation
    from miro_sync.miro.client import MiroRestClient
    from miro_sync.miro.http import RateLimitPacer
    from miro_sync.miro.scim import MiroScimClient
    from miro_sync.secrets import SecretsManagerToken
    from miro_sync.store.lowlevel import BULK_WRITER_CONFIG
    from miro_sync.store.members import MembersRepository
    from miro_sync.store.self_invoke import LambdaAsyncInvoker, LazyLambdaClient
    from miro_sync.store.state import StateRepository
    from miro_sync.store.subscriptions import SubscriptionsRepository

    dynamodb = boto3.resource("dynamodb")
    # One secrets client on boto3's default session for both tokens. A bare SecretsProvider() opens a
    # boto3 session of its own, and every session parses botocore's endpoint data again (~9 MB RSS
    # each, more while the sync's fetch threads race to create them on their first Miro request).
    secrets = SecretsProvider(boto3_client=boto3.client("secretsmanager"))
    # A sync is one job that wants to finish: spend the usable credits greedily (burst_fraction 0)
    # instead of spreading them to the reset. The pacer's 10% reserve leaves room for the webhook and
    # offboarding sharing the token once they are seen spending; until then it would expire unused.
    miro = MiroRestClient(
        settings.api_url,
        SecretsManagerToken(settings.token_secret, fetcher=secrets),
        settings.org_id,
        pacer=RateLimitPacer(reserve_fraction=0.1, burst_fraction=0.0, reserve_only_when_shared=True),
    )
    scim = (
        MiroScimClient(settings.scim_url, SecretsManagerToken(settings.scim_token_secret, fetcher=secrets))
        if settings.scim_token_secret
        else None
    )
    # The Lambda client (its service model is ~3.5 MB) is created only when a run hands over.
    invoker = LambdaAsyncInvoker(LazyLambdaClient()) if settings.function_name else None
    state_table = dynamodb.Table(settings.state_table)
    return Adapters(
        miro=miro,
        scim=scim,
        # New members' batch puts with items typed by the store: no resource serializer on that path.
        members=MembersRepository(
            dynamodb.Table(settings.members_table), writer=boto3.client("dynamodb", config=BULK_WRITER_CONFIG)
        ),
        state=StateRepository(state_table),
        continuation=Continuation(invoker, settings.function_name),
        usage=(miro.stats,) + ((scim.stats,) if scim is not None else ()),
        subscription_api=miro,
        subscriptions=SubscriptionsRepository(state_table),
        credit_headroom=miro.credit_headroom,
    )


def _with_short_gil_slices(run: Callable[[], MembersSyncResult]) -> MembersSyncResult:
    """Run with a 1 ms GIL switch interval instead of CPython's 5 ms.

    The member listing is one chain of round trips on its own thread while the writer threads
    serialize batches (CPU-bound, holding the GIL); each time the chain's socket is ready it may wait
    a whole slice for the GIL, several times per page, and the chain is the run's critical path."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(0.001)
    try:
        return run()
    finally:
        sys.setswitchinterval(previous)


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = MembersSyncSettings.from_env(os.environ)  # fails at start, naming what to set
    return run_invocation(settings, build(settings), context, metrics)


def run_invocation(
    settings: MembersSyncSettings,
    adapters: Adapters,
    context: LambdaContext,
    sink: MetricsSink,
    log: Logger = logger,
) -> dict[str, Any]:
    """One invocation: sync until done or out of time, then metrics, hand-over and a summary."""
    from miro_sync.sync.runner import run_sync_invocation

    return run_sync_invocation(
        lambda: _sync(settings, adapters, context, sink, log),
        name="members sync",
        usage=adapters.usage,
        sink=sink,
        log=log,
        continuation=adapters.continuation,
    )


def _sync(
    settings: MembersSyncSettings, adapters: Adapters, context: LambdaContext, sink: MetricsSink, log: Logger
) -> RunReport:
    from miro_sync.continuation import Deadline
    from miro_sync.sync.members import MembersSync

    sync = MembersSync(
        miro=adapters.miro,
        scim=adapters.scim,
        members=adapters.members,
        state=adapters.state,
        page_size=settings.page_size,
        inactive_thresholds_days=settings.inactive_thresholds_days,
        log=log,
        credit_headroom=adapters.credit_headroom,
    )
    result = _with_short_gil_slices(
        lambda: sync.run(
            invocation_id=context.aws_request_id,
            deadline=Deadline(context, settings.min_remaining_ms),
        )
    )
    if result.outcome == "complete" and settings.webhook_enabled:
        _check_lost_access(adapters, sink, log)
    if result.run_id:
        log.append_keys(run_id=result.run_id)
    return _report(result)


def _report(result: MembersSyncResult) -> RunReport:
    from miro_sync.sync.runner import RunReport

    return RunReport(
        outcome=result.outcome,
        counters={
            "MembersFetched": result.fetched,
            "MembersWritten": result.written,
            "MembersUnchanged": result.unchanged,
            "MembersRemoved": result.removed,
            "WriteRequests": result.write_requests,
            "ScimLookups": result.scim_lookups,
            "Resumes": int(result.resumed),
        },
        summary={
            "outcome": result.outcome,
            "runId": result.run_id,
            "resumed": result.resumed,
            "pages": result.pages,
            "fetched": result.fetched,
            "written": result.written,
            "unchanged": result.unchanged,
            "removed": result.removed,
            "writeRequests": result.write_requests,
            "snapshot": result.snapshot,
        },
        continuation_payload={"source": "miro-sync.continuation", "runId": result.run_id},
        # The snapshot has a log line of its own ("members sync complete").
        logged=("outcome", "pages", "fetched"),
    )


def _check_lost_access(adapters: Adapters, sink: MetricsSink, log: Logger) -> None:
    """Report board subscriptions that lost access (metric + warning). The members are already synced,
    so a failure here is logged and counted, never allowed to fail the run."""
    from aws_lambda_powertools.metrics import MetricUnit

    from miro_sync.webhooks.subscriptions import check_lost_access

    try:
        check_lost_access(adapters.subscription_api, adapters.subscriptions, metrics=sink, logger=log)
    except Exception:
        sink.add_metric(name=LOST_ACCESS_CHECK_FAILED, unit=MetricUnit.Count, value=1)
        log.exception("the webhook subscriptions' lost-access check failed; the next complete run retries")
