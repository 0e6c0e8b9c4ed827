"""Managing Miro board subscriptions: create (with a fresh per-subscription secret), status changes,
delete, and the lost-access check. Miro's client and the StateTable repository are handed in."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from miro_sync.miro.errors import MiroNotFound
from miro_sync.ports import LogSink, MetricsSink
from miro_sync.store.board_events import iso_millis
from miro_sync.store.subscriptions import SubscriptionRecord
from miro_sync.webhooks.receiver import hash_secret

CALLBACK_PREFIX = "/board-events/"


class SubscriptionApi(Protocol):
    def create_board_subscription(self, board_id: str, callback_url: str, status: str = ...) -> Any: ...
    def update_board_subscription(
        self, subscription_id: str, *, status: str | None = ..., callback_url: str | None = ...
    ) -> Any: ...
    def delete_board_subscription(self, subscription_id: str) -> None: ...
    def iter_subscriptions(self, limit: int = ...) -> Iterator[Any]: ...


class SubscriptionStore(Protocol):
    def put(self, record: SubscriptionRecord) -> None: ...
    def delete(self, secret_hash: str) -> None: ...
    def list_all(self) -> Iterator[SubscriptionRecord]: ...
    def find_by_subscription_id(self, subscription_id: str) -> SubscriptionRecord | None: ...


class UnknownSubscriptionError(LookupError):
    """No subscription with this id was created by miro-sync (nothing in the StateTable)."""


def _now() -> str:
    return iso_millis(datetime.now(UTC))


def callback_url(webhook_url: str, secret: str) -> str:
    return f"{webhook_url.rstrip('/')}{CALLBACK_PREFIX}{secret}"


def create_subscription(
    api: SubscriptionApi,
    store: SubscriptionStore,
    board_id: str,
    webhook_url: str,
    *,
    new_secret: Callable[[], str] = lambda: secrets.token_urlsafe(32),
    now: Callable[[], str] = _now,
) -> SubscriptionRecord:
    """Stores the pending record first: Miro sends the challenge while the create call is running, and
    the webhook only answers challenges for secrets it knows. The secret itself is never returned."""
    secret = new_secret()
    created_at = now()
    pending = SubscriptionRecord(
        secret_hash=hash_secret(secret),
        board_id=board_id,
        status="pending",
        created_at=created_at,
        updated_at=created_at,
    )
    store.put(pending)
    try:
        created = api.create_board_subscription(board_id, callback_url(webhook_url, secret))
    except BaseException:
        # No subscription exists at Miro, so the credential must not outlive the failed call.
        store.delete(pending.secret_hash)
        raise
    active = pending.model_copy(
        update={"status": _known_status(created.status), "subscription_id": created.id, "updated_at": now()}
    )
    store.put(active)
    return active


def create_subscriptions(
    api: SubscriptionApi, store: SubscriptionStore, board_ids: Iterable[str], webhook_url: str
) -> list[SubscriptionRecord]:
    return [create_subscription(api, store, board_id, webhook_url) for board_id in board_ids]


def _known_status(status: str) -> Any:
    return status if status in ("pending", "enabled", "disabled", "lost_access") else "failed"


def _record(store: SubscriptionStore, subscription_id: str) -> SubscriptionRecord:
    record = store.find_by_subscription_id(subscription_id)
    if record is None:
        raise UnknownSubscriptionError(f"subscription {subscription_id} was not created by miro-sync")
    return record


def set_status(
    api: SubscriptionApi,
    store: SubscriptionStore,
    subscription_id: str,
    status: str,
    *,
    now: Callable[[], str] = _now,
) -> SubscriptionRecord:
    record = _record(store, subscription_id)
    updated = api.update_board_subscription(subscription_id, status=status)
    changed = record.model_copy(update={"status": _known_status(updated.status), "updated_at": now()})
    store.put(changed)
    return changed


def delete_subscription(
    api: SubscriptionApi, store: SubscriptionStore, subscription_id: str
) -> SubscriptionRecord:
    """Miro first (so no event arrives for a forgotten secret), then the credential."""
    record = _record(store, subscription_id)
    # Already gone at Miro: still forget the credential.
    with contextlib.suppress(MiroNotFound):
        api.delete_board_subscription(subscription_id)
    store.delete(record.secret_hash)
    return record


@dataclass
class SubscriptionStatus:
    subscription_id: str | None
    board_id: str
    miro_status: str | None
    stored_status: str
    secret_hash_prefix: str


@dataclass
class LostAccessReport:
    checked: int = 0
    lost_access: list[SubscriptionStatus] = field(default_factory=list)
    # Known to Miro but not to us (created elsewhere, or the StateTable lost it).
    unmanaged: list[str] = field(default_factory=list)


def subscription_statuses(api: SubscriptionApi, store: SubscriptionStore) -> list[SubscriptionStatus]:
    """Every stored subscription with Miro's current status (None = Miro does not know it)."""
    at_miro = {subscription.id: subscription.status for subscription in api.iter_subscriptions()}
    return [
        SubscriptionStatus(
            subscription_id=record.subscription_id,
            board_id=record.board_id,
            miro_status=at_miro.get(record.subscription_id) if record.subscription_id else None,
            stored_status=record.status,
            secret_hash_prefix=record.secret_hash[:8],
        )
        for record in store.list_all()
    ]


def check_lost_access(
    api: SubscriptionApi,
    store: SubscriptionStore,
    *,
    metrics: MetricsSink | None = None,
    logger: LogSink | None = None,
    now: Callable[[], str] = _now,
) -> LostAccessReport:
    """Finds subscriptions Miro reports as `lost_access` (the subscribing user lost the board), records
    that status, and reports them as a metric and a warning. Meant to run on a schedule."""
    records = {record.subscription_id: record for record in store.list_all() if record.subscription_id}
    report = LostAccessReport()
    for subscription in api.iter_subscriptions():
        report.checked += 1
        record = records.get(subscription.id)
        if record is None:
            report.unmanaged.append(subscription.id)
            continue
        if subscription.status != "lost_access":
            continue
        if record.status != "lost_access":
            store.put(record.model_copy(update={"status": "lost_access", "updated_at": now()}))
        report.lost_access.append(
            SubscriptionStatus(
                subscription.id, record.board_id, "lost_access", "lost_access", record.secret_hash[:8]
            )
        )
    if metrics is not None:
        metrics.add_metric(name="WebhookSubscriptionsLostAccess", unit="Count", value=len(report.lost_access))
    if logger is not None and report.lost_access:
        logger.warning(
            "board subscriptions lost access",
            extra={
                "count": len(report.lost_access),
                "subscriptions": [item.subscription_id for item in report.lost_access],
                "boards": [item.board_id for item in report.lost_access],
            },
        )
    return report
