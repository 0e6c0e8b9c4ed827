"""BoardWebhookFunction: Function URL `POST /board-events/{secret}` (see miro_sync.webhooks).

No boto3 here: the webhook only does GetItem/PutItem/UpdateItem, so it talks through a botocore
low-level client (miro_sync.store.lowlevel) and never loads boto3's resource layer or s3transfer.
Everything a request needs is imported at init; only the client itself is built on first use."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from miro_sync.settings.board_webhook import BoardWebhookSettings
from miro_sync.store.board_events import BoardEventsRepository
from miro_sync.store.lowlevel import LowLevelTable, dynamodb_client
from miro_sync.store.member_activity import MemberActivityRepository
from miro_sync.store.subscriptions import SubscriptionsRepository
from miro_sync.webhooks.endpoint import create_resolver
from miro_sync.webhooks.receiver import SubscriptionCache, WebhookReceiver

logger = Logger()
metrics = Metrics()


@lru_cache(maxsize=4)
def build_receiver(settings: BoardWebhookSettings) -> WebhookReceiver:
    """Once per container and settings: the DynamoDB client and the subscription cache are reused."""
    client = dynamodb_client()
    return WebhookReceiver(
        subscriptions=SubscriptionCache(
            SubscriptionsRepository(LowLevelTable(client, settings.state_table)),
            ttl_seconds=settings.subscription_cache_seconds,
        ),
        board_events=BoardEventsRepository(
            LowLevelTable(client, settings.board_events_table),
            retention_days=settings.board_event_retention_days,
        ),
        members=MemberActivityRepository(LowLevelTable(client, settings.members_table)),
        max_body_bytes=settings.max_body_bytes,
    )


resolver = create_resolver(
    lambda: build_receiver(BoardWebhookSettings.from_env(os.environ)), logger=logger, metrics=metrics
)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.LAMBDA_FUNCTION_URL)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return resolver.resolve(event, context)
