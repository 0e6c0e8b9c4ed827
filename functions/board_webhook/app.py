"""BoardWebhookFunction: Function URL `POST /board-events/{secret}` (see miro_sync.webhooks)."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from miro_sync.settings.board_webhook import BoardWebhookSettings
from miro_sync.store.board_events import BoardEventsRepository
from miro_sync.store.members import MembersRepository
from miro_sync.store.subscriptions import SubscriptionsRepository
from miro_sync.webhooks.endpoint import create_resolver
from miro_sync.webhooks.receiver import SubscriptionCache, WebhookReceiver

logger = Logger()
metrics = Metrics()


@lru_cache(maxsize=4)
def build_receiver(settings: BoardWebhookSettings) -> WebhookReceiver:
    """Once per container and settings: the boto3 resource and the subscription cache are reused."""
    dynamodb = boto3.resource("dynamodb")
    return WebhookReceiver(
        subscriptions=SubscriptionCache(
            SubscriptionsRepository(dynamodb.Table(settings.state_table)),
            ttl_seconds=settings.subscription_cache_seconds,
        ),
        board_events=BoardEventsRepository(
            dynamodb.Table(settings.board_events_table), retention_days=settings.board_event_retention_days
        ),
        members=MembersRepository(dynamodb.Table(settings.members_table)),
        max_body_bytes=settings.max_body_bytes,
    )


resolver = create_resolver(
    lambda: build_receiver(BoardWebhookSettings.from_env(os.environ)), logger=logger, metrics=metrics
)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.LAMBDA_FUNCTION_URL)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return resolver.resolve(event, context)
