"""ActionsTable: the offboarding audit trail, one item per request id.

Every state change is a conditional write on `outcome`, so two workers (or a worker and an operator's
`cancel`) can never both move the same request, and a finished request can never be reopened.
Access patterns: by request id (GetItem), by member (`ByMember`: memberKey, createdAt), by outcome
(`ByOutcome`: outcome, updatedAt) for held and pending actions.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from miro_sync.store.dynamo import is_conditional_check_failed, paged_items
from miro_sync.timestamps import iso_millis

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table

Outcome = Literal[
    "received",  # recorded, not yet evaluated (or evaluation interrupted)
    "pending",  # notBefore is in the future; carried out when due
    "held",  # over the blast-radius limit; waits for `miro-sync offboard release`
    "failed",  # the last attempt failed transiently; the message goes back to the queue
    "done",
    # some of the steps were carried out and Miro refused the next one (e.g. a delete whose SCIM DELETE
    # was refused after the deactivation): final, with what happened in `outcomeReason`
    "partial",
    "refused",
    "dry-run",
    "cancelled",
]
FINAL_OUTCOMES: frozenset[str] = frozenset({"done", "partial", "refused", "dry-run", "cancelled"})
OPEN_OUTCOMES: frozenset[str] = frozenset({"received", "pending", "held", "failed"})
MAX_STORED_BODY = 4000


# The old name of the stored-timestamp form, still imported by offboarding/ and the CLI.
utc_now_iso = iso_millis


class Attempt(BaseModel):
    """One call to Miro made on behalf of a request, with Miro's status code (None: no HTTP answer)."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    at: str
    operation: str
    status: int | None = None
    detail: str | None = None


class StepRecord(BaseModel):
    """One finished step of a request (see miro_sync.offboarding.steps), with what Miro answered."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    kind: str
    status: Literal["done", "skipped", "partly"]
    at: str
    answer: str | None = None
    count: int | None = None  # e.g. boards handed over, teams promoted


class ActionRecord(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    request_id: str = Field(alias="requestId")
    action: str
    member_key: str = Field(alias="memberKey")
    requested_by: str = Field(alias="requestedBy")
    reason: str
    outcome: Outcome
    created_at: str = Field(alias="createdAt")
    updated_at: str = Field(alias="updatedAt")
    body: str
    dry_run: bool = Field(default=False, alias="dryRun")
    not_before: str | None = Field(default=None, alias="notBefore")
    outcome_reason: str | None = Field(default=None, alias="outcomeReason")
    email: str | None = None
    member_id: str | None = Field(default=None, alias="memberId")
    scim_id: str | None = Field(default=None, alias="scimId")
    role: str | None = None
    license: str | None = None
    boards_owned: int | None = Field(default=None, alias="boardsOwned")
    warning: str | None = None
    attempts: list[Attempt] = Field(default_factory=list)
    receive_count: int | None = Field(default=None, alias="receiveCount")
    last_error: str | None = Field(default=None, alias="lastError")
    budget_counted_at: str | None = Field(default=None, alias="budgetCountedAt")
    scheduled_for: str | None = Field(default=None, alias="scheduledFor")
    released_by: str | None = Field(default=None, alias="releasedBy")
    released_at: str | None = Field(default=None, alias="releasedAt")
    cancelled_by: str | None = Field(default=None, alias="cancelledBy")
    completed_at: str | None = Field(default=None, alias="completedAt")
    # The Miro writes an invocation is about to make, set by the write before them and cleared by the one
    # after. Attempts are recorded with the outcome they lead to (one write instead of one per call); if
    # the invocation dies in between, the next one finds this and records the interrupted attempt.
    in_flight: str | None = Field(default=None, alias="inFlight")
    # when a refused malformed message was copied to the dead-letter queue (so it is copied once)
    dead_lettered_at: str | None = Field(default=None, alias="deadLetteredAt")
    # When the request was sent (SQS SentTimestamp of its first message): orders requests for one member
    requested_at: str | None = Field(default=None, alias="requestedAt")
    # Who sent it: SQS SenderId (the IAM principal's id), recorded for the audit trail
    sender_id: str | None = Field(default=None, alias="senderId")
    # Who takes over the leaver's boards and team admin roles (the message's or DefaultSuccessor)
    successor: str | None = None
    # The steps finished so far, in order: a retry resumes at the first kind not listed here
    steps: list[StepRecord] = Field(default_factory=list)
    # Boards shared with the successor so far (ids), so a retry of the hand-over skips them
    handed_over: list[str] = Field(default_factory=list, alias="handedOver")

    def step(self, kind: str) -> StepRecord | None:
        return next((step for step in self.steps if step.kind == kind), None)

    @property
    def requested_instant(self) -> str:
        """When the request was made, for ordering requests for one member (ISO, comparable as text)."""
        return self.requested_at or self.created_at

    @property
    def is_final(self) -> bool:
        return self.outcome in FINAL_OUTCOMES

    def to_item(self) -> dict[str, Any]:
        item = self.model_dump(by_alias=True, exclude_none=True)
        # DynamoDB Local rejects empty strings; none of these fields means anything when empty
        return {key: value for key, value in item.items() if value != ""}


# Attribute names written by `update`, mapped from the model's field names.
_ALIASES: dict[str, str] = {
    name: (field.alias or name) for name, field in ActionRecord.model_fields.items() if name != "attempts"
}


class ActionConflictError(Exception):
    """A conditional write lost: the request is not in the state the caller expected."""


class ActionsRepository:
    def __init__(self, table: Table) -> None:
        self._table = table

    @classmethod
    def from_table_name(cls, table_name: str) -> ActionsRepository:
        import boto3  # deferred: keeps the CLI's --help and the handler's cold start light

        return cls(boto3.resource("dynamodb").Table(table_name))

    def get(self, request_id: str) -> ActionRecord | None:
        item = self._table.get_item(Key={"requestId": request_id}, ConsistentRead=True).get("Item")
        return ActionRecord.model_validate(item) if item else None

    def create(self, record: ActionRecord) -> bool:
        """Insert if the request id is new; False when it already exists (a duplicate)."""
        from botocore.exceptions import ClientError

        try:
            self._table.put_item(Item=record.to_item(), ConditionExpression="attribute_not_exists(requestId)")
        except ClientError as error:
            if is_conditional_check_failed(error):
                return False
            raise
        return True

    def update(
        self,
        request_id: str,
        *,
        at: datetime,
        expected: Iterable[str],
        outcome: Outcome | None = None,
        fields: dict[str, Any] | None = None,
        attempt: Attempt | None = None,
        attempts: Sequence[Attempt] = (),
    ) -> ActionRecord:
        """Set `outcome`/`fields` (model field names; None removes) and append `attempt` and `attempts`,
        only while the record's outcome is one of `expected`. Raises ActionConflictError otherwise."""
        from botocore.exceptions import ClientError

        names: dict[str, str] = {"#outcome": "outcome", "#updatedAt": "updatedAt"}
        values: dict[str, Any] = {":now": iso_millis(at)}
        sets = ["#updatedAt = :now"]
        removes: list[str] = []
        if outcome is not None:
            values[":outcome"] = outcome
            sets.append("#outcome = :outcome")
        for index, (name, value) in enumerate((fields or {}).items()):
            attribute = _ALIASES[name]
            names[f"#f{index}"] = attribute
            if value is None or value == "":
                removes.append(f"#f{index}")
            else:
                values[f":f{index}"] = value
                sets.append(f"#f{index} = :f{index}")
        appended = [*attempts, *([attempt] if attempt is not None else [])]
        if appended:
            names["#attempts"] = "attempts"
            values[":attempt"] = [a.model_dump(exclude_none=True) for a in appended]
            values[":empty"] = []
            sets.append("#attempts = list_append(if_not_exists(#attempts, :empty), :attempt)")
        expected_list = sorted(set(expected))
        conditions = []
        for index, state in enumerate(expected_list):
            values[f":e{index}"] = state
            conditions.append(f":e{index}")
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        try:
            response = self._table.update_item(
                Key={"requestId": request_id},
                UpdateExpression=expression,
                ConditionExpression=f"attribute_exists(requestId) AND #outcome IN ({', '.join(conditions)})",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if is_conditional_check_failed(error):
                raise ActionConflictError(f"{request_id} is not in any of {expected_list}") from None
            raise
        return ActionRecord.model_validate(response["Attributes"])

    def by_member(self, member_key: str) -> list[ActionRecord]:
        from boto3.dynamodb.conditions import Key

        items = paged_items(
            self._table.query, IndexName="ByMember", KeyConditionExpression=Key("memberKey").eq(member_key)
        )
        return [ActionRecord.model_validate(item) for item in items]

    def by_outcome(self, outcome: Outcome, *, limit: int | None = None) -> Iterator[ActionRecord]:
        """Oldest first. The index is eventually consistent: callers re-read before acting."""
        from boto3.dynamodb.conditions import Key

        items = paged_items(
            self._table.query, IndexName="ByOutcome", KeyConditionExpression=Key("outcome").eq(outcome)
        )
        for produced, item in enumerate(items, start=1):
            yield ActionRecord.model_validate(item)
            if limit is not None and produced >= limit:
                return
