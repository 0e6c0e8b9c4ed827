"""A local stack with the optional webhook turned on, its Function URL served over real HTTP."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from miro_sync.store.board_events import BoardEventsRepository
from miro_sync.store.members import MembersRepository
from miro_sync.store.subscriptions import SubscriptionsRepository
from miro_sync_cli.local.function_url import serve_function_url
from miro_sync_cli.local.invoke import invoke_function
from miro_sync_cli.local.stack import LocalStack


@dataclass
class Webhook:
    stack: LocalStack
    env: dict[str, str]
    url: str
    subscriptions: SubscriptionsRepository
    board_events: BoardEventsRepository
    members: MembersRepository


def _table(stack: LocalStack, logical_id: str) -> Any:
    environment = stack.servers.endpoint_environment()
    resource = boto3.resource(
        "dynamodb",
        endpoint_url=stack.servers.dynamodb_url,
        region_name=environment["AWS_DEFAULT_REGION"],
        aws_access_key_id=environment["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=environment["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=environment["AWS_SESSION_TOKEN"],
    )
    return resource.Table(stack.tables[logical_id])


@pytest.fixture
def webhook(local_stack: LocalStack) -> Iterator[Webhook]:
    # The webhook never calls Miro, but the shared environment names an org.
    local_stack.template.parameter_overrides.setdefault("OrgId", "3458764517517852417")
    with serve_webhook(local_stack) as running:
        yield running


@contextlib.contextmanager
def serve_webhook(webhook_stack: LocalStack) -> Iterator[Webhook]:
    env = webhook_stack.function_env("BoardWebhookFunction")

    def handler(event: dict[str, Any], context: Any) -> Any:
        return invoke_function("BoardWebhookFunction", event, env, template=webhook_stack.template)

    with serve_function_url(handler, env) as server:
        yield Webhook(
            stack=webhook_stack,
            env=env,
            url=server.url,
            subscriptions=SubscriptionsRepository(_table(webhook_stack, "StateTable")),
            board_events=BoardEventsRepository(_table(webhook_stack, "BoardEventsTable"), retention_days=400),
            members=MembersRepository(_table(webhook_stack, "MembersTable")),
        )
