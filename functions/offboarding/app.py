"""OffboardingFunction: SQS batches of offboarding requests, plus a schedule for the notBefore sweep.

SQS: Powertools BatchProcessor with partial batch responses. Records are parsed inside the record
handler rather than through a Parser model: a malformed message must be refused for good (recorded
in the actions table and acknowledged), whereas a Parser failure would fail the record and SQS would
redeliver it until the DLQ without a reason anywhere an operator looks. See miro_sync.offboarding.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from miro_sync.miro.deadline import InvocationDeadline
from miro_sync.offboarding.worker import (
    PHASE_ATTRIBUTE,
    PHASE_REQUEST,
    GuardPolicy,
    OffboardingWorker,
    request_id_of,
)
from miro_sync.settings import ConfigurationError
from miro_sync.settings.offboarding import DefaultSuccessorError, OffboardingSettings, ProtectedEmailsError

logger = Logger()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
# The running invocation's remaining time, read by every Miro call before it starts an attempt
deadline = InvocationDeadline()


def guard_policy(settings: OffboardingSettings) -> GuardPolicy:
    """The guards from the settings. A PROTECTED_EMAILS that cannot be read fails closed: the worker
    refuses every suspend and delete with the error (and a metric the template alarms on)."""
    errors: list[str] = []
    try:
        protected = settings.protected_emails
    except ProtectedEmailsError as invalid:
        protected = ()
        errors.append(str(invalid))
    try:
        successor = settings.default_successor
    except DefaultSuccessorError as invalid:
        successor = None
        errors.append(str(invalid))
    error = "; ".join(errors) or None
    if error:
        logger.error("invalid guard configuration; suspends and deletes are refused", extra={"error": error})
    return GuardPolicy(
        protected_emails=frozenset(protected),
        allow_admin_offboarding=settings.allow_admin_offboarding,
        max_actions_per_hour=settings.max_actions_per_hour,
        configuration_error=error,
        default_successor=successor,
        reset_sessions=settings.reset_sessions,
    )


@lru_cache(maxsize=4)
def build_worker(settings: OffboardingSettings) -> OffboardingWorker:
    """Once per container and settings: boto3 resources and the httpx pools are reused while warm."""
    import boto3
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    from miro_sync.miro.client import MiroRestClient
    from miro_sync.miro.http import SCIM_LIMITS, WindowPacer
    from miro_sync.miro.scim import MiroScimClient
    from miro_sync.secrets import SecretsManagerToken
    from miro_sync.store.actions import ActionsRepository
    from miro_sync.store.blast_radius import BlastRadiusCounter
    from miro_sync.store.members import MembersRepository
    from miro_sync.store.queue import OffboardingQueue

    if settings.scim_token_secret is None:  # from_env requires it; settings built otherwise may lack it
        raise ConfigurationError("OffboardingSettings: set the environment variable MIRO_SCIM_TOKEN_SECRET")
    dynamodb = boto3.resource("dynamodb")
    sqs = boto3.client("sqs")
    # One secrets client on boto3's default session for both tokens (a bare SecretsProvider() opens a
    # boto3 session of its own: ~9 MB and ~0.5 s each).
    secrets = SecretsProvider(boto3_client=boto3.client("secretsmanager"))
    return OffboardingWorker(
        actions=ActionsRepository(dynamodb.Table(settings.actions_table)),
        members=MembersRepository(dynamodb.Table(settings.members_table)),
        directory=MiroRestClient(
            settings.api_url,
            SecretsManagerToken(settings.token_secret, fetcher=secrets),
            settings.org_id,
            deadline=deadline,
        ),
        scim=MiroScimClient(
            settings.scim_url,
            SecretsManagerToken(settings.scim_token_secret, fetcher=secrets),
            pacer=WindowPacer(
                settings.scim_limits(SCIM_LIMITS),
                window_s=settings.scim_window_s,
                # No margin below the share: the sliding window already keeps every one of Miro's fixed
                # windows within it (WindowPacer's default 10% would leave that much of the budget
                # unused, and round DELETE's 10 per container down to 9, which stalls a worker whose
                # batches happen to hold more deletes). Arrival jitter can rarely cost a 429, which is
                # retried after the window resets, never lost.
                headroom_fraction=0.0,
            ),
            deadline=deadline,
        ),
        blast_radius=BlastRadiusCounter(dynamodb.Table(settings.state_table)),
        queue=OffboardingQueue(settings.queue_url, sqs),
        dead_letters=OffboardingQueue(settings.dlq_url, sqs) if settings.dlq_url else None,
        policy=guard_policy(settings),
        persistence_store=DynamoDBPersistenceLayer(table_name=settings.idempotency_table),
        idempotency_config=IdempotencyConfig(
            event_key_jmespath="requestId",
            expires_after_seconds=settings.idempotency_ttl_s,
            # a duplicate of a request this container finished is answered without DynamoDB; only
            # completed (final) results are cached, in-progress ones always go to the table
            use_local_cache=True,
        ),
        metrics=metrics,
        # the worker logs through the handler's Logger: JSON lines with the invocation's keys
        logger=logger,
    )


def _is_schedule(event: dict[str, Any]) -> bool:
    return event.get("source") == "aws.events" or event.get("detail-type") == "Scheduled Event"


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    worker = build_worker(OffboardingSettings.from_env(os.environ))
    deadline.bind(context.get_remaining_time_in_millis)
    try:
        return process_event(event, context, worker)
    finally:
        deadline.unbind()


def process_event(event: dict[str, Any], context: LambdaContext, worker: OffboardingWorker) -> dict[str, Any]:
    """One invocation: the notBefore sweep, or one SQS batch with a partial batch response in which
    every record has its own fate (see OffboardingWorker.handle_message)."""
    worker.register_lambda_context(context)
    if _is_schedule(event):
        sent = worker.sweep_due()
        logger.info("notBefore sweep", extra={"enqueued": sent})
        return {"enqueued": sent}
    if "Records" not in event:
        raise ValueError("OffboardingFunction handles SQS batches and its EventBridge schedule only")

    def record_handler(record: SQSRecord) -> dict[str, Any]:
        logger.append_keys(messageId=record.get("messageId"))
        body = record.get("body")
        body = body if isinstance(body, str) else ""
        try:
            result = worker.handle_message(
                body,
                phase=_phase_of(record),
                receive_count=_receive_count(record),
                sent_at=_sent_at(record),
                sender_id=_attribute(record, "SenderId"),
            )
        except Exception:
            # the record goes back to the queue (partial batch failure); say why in the log
            logger.exception(
                "offboarding message failed; it will be retried",
                extra={"requestId": request_id_of(body), "outcome": "retry"},
            )
            raise
        logger.info("offboarding message", extra=result.as_dict())
        return result.as_dict()

    records = event["Records"] if isinstance(event["Records"], list) else []
    bodies = [
        record["body"]
        for record in records
        if isinstance(record, dict) and isinstance(record.get("body"), str)
    ]
    with worker.batch(bodies):
        return dict(
            process_partial_response(
                event=event, record_handler=record_handler, processor=processor, context=context
            )
        )


# The SQS record's attributes are read defensively: a record that lacks one (or carries an odd value)
# still gets its own fate, with the neutral default, rather than failing the batch.


def _attribute(record: SQSRecord, name: str) -> str | None:
    attributes = record.get("attributes")
    value = attributes.get(name) if isinstance(attributes, dict) else None
    return value if isinstance(value, str) and value else None


def _phase_of(record: SQSRecord) -> str:
    attributes = record.get("messageAttributes")
    marker = attributes.get(PHASE_ATTRIBUTE) if isinstance(attributes, dict) else None
    value = marker.get("stringValue") if isinstance(marker, dict) else None
    return value if isinstance(value, str) and value else PHASE_REQUEST


def _receive_count(record: SQSRecord) -> int:
    value = _attribute(record, "ApproximateReceiveCount")
    return int(value) if value is not None and value.isdigit() and len(value) < 6 else 1


def _sent_at(record: SQSRecord) -> datetime | None:
    value = _attribute(record, "SentTimestamp")
    if value is None or not value.isdigit() or len(value) > 15:
        return None
    return datetime.fromtimestamp(int(value) / 1000, UTC)
