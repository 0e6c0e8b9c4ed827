"""The offboarding store adapters and `miro-sync offboard` against DynamoDB Local and moto server SQS."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from typer.testing import CliRunner

from miro_sync.store.actions import ActionConflictError, ActionRecord, ActionsRepository, Attempt, utc_now_iso
from miro_sync.store.blast_radius import BlastRadiusCounter
from miro_sync.store.queue import OffboardingQueue, OutgoingMessage, QueueSendError
from miro_sync_cli.local.stack import LocalStack
from miro_sync_cli.offboard_cmd import app
from tests.integration.offboarding.sqs import QueueReader

pytestmark = pytest.mark.integration
# The top of the current hour, not a fixed date: the blast-radius items carry `expiresAt` = their minute
# + 2 h, and DynamoDB Local's TTL sweeper deletes items whose expiresAt has passed, mid-test (a counter
# written for 2025 vanished and let a seventh action through in one run).
NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


def _aws_env(stack: LocalStack) -> dict[str, str]:
    # the stand-ins' endpoints and credentials only: these tests need no Miro connection
    return dict(stack.servers.endpoint_environment())


def _session(stack: LocalStack) -> boto3.session.Session:
    env = _aws_env(stack)
    return boto3.session.Session(
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=env.get("AWS_SESSION_TOKEN"),
        region_name=env.get("AWS_DEFAULT_REGION", "us-east-1"),
    )


def _table(stack: LocalStack, logical_id: str) -> Any:
    return (
        _session(stack)
        .resource("dynamodb", endpoint_url=_aws_env(stack)["AWS_ENDPOINT_URL_DYNAMODB"])
        .Table(stack.tables[logical_id])
    )


def _sqs(stack: LocalStack) -> Any:
    return _session(stack).client("sqs", endpoint_url=_aws_env(stack)["AWS_ENDPOINT_URL"])


def _record(request_id: str, outcome: str = "held", member: str = "ann@example.com") -> ActionRecord:
    stamp = utc_now_iso(NOW)
    return ActionRecord.model_validate(
        {
            "requestId": request_id,
            "action": "suspend",
            "memberKey": member,
            "requestedBy": "it",
            "reason": "left",
            "outcome": outcome,
            "createdAt": stamp,
            "updatedAt": stamp,
            "body": json.dumps(
                {
                    "action": "suspend",
                    "email": member,
                    "requestedBy": "it",
                    "reason": "left",
                    "requestId": request_id,
                }
            ),
            "email": member,
        }
    )


def test_actions_repository_conditional_transitions_and_indexes(local_stack: LocalStack) -> None:
    actions = ActionsRepository(_table(local_stack, "ActionsTable"))
    assert actions.create(_record("r-1", "received"))
    assert not actions.create(_record("r-1", "received"))  # duplicate
    updated = actions.update(
        "r-1",
        at=NOW,
        expected={"received"},
        outcome="done",
        fields={"scim_id": "s-1", "last_error": None},
        attempt=Attempt(at=utc_now_iso(NOW), operation="PATCH /Users/s-1 active=false", status=200),
    )
    assert updated.outcome == "done"
    assert updated.scim_id == "s-1"
    assert [a.status for a in updated.attempts] == [200]
    with pytest.raises(ActionConflictError):
        actions.update("r-1", at=NOW, expected={"received", "pending"}, outcome="cancelled")
    with pytest.raises(ActionConflictError):
        actions.update("missing", at=NOW, expected={"received"}, outcome="done")
    actions.create(_record("r-2", "held"))
    actions.create(_record("r-3", "held", member="bob@example.com"))
    assert [r.request_id for r in actions.by_outcome("held")] == ["r-2", "r-3"]
    assert sorted(r.request_id for r in actions.by_member("ann@example.com")) == ["r-1", "r-2"]
    stored = actions.get("r-1")
    assert stored is not None
    assert stored.outcome == "done"


def test_blast_radius_counter_is_a_rolling_hour(local_stack: LocalStack) -> None:
    counter = BlastRadiusCounter(_table(local_stack, "StateTable"))
    assert [counter.try_take(NOW + timedelta(minutes=minute), limit=3) for minute in (0, 10, 20)] == [
        True
    ] * 3
    assert not counter.try_take(NOW + timedelta(minutes=30), limit=3)
    counter.count_unconditionally(NOW + timedelta(minutes=30))  # an operator's release still counts
    assert counter.used(NOW + timedelta(minutes=30)) == 4
    # 61 minutes after the first take, two of the four remain in the window
    assert counter.used(NOW + timedelta(minutes=61)) == 3
    assert not counter.try_take(NOW + timedelta(minutes=61), limit=3)
    assert counter.try_take(NOW + timedelta(minutes=81), limit=3)


def test_blast_radius_reads_earlier_minutes_once_per_minute(local_stack: LocalStack) -> None:
    counter = BlastRadiusCounter(_table(local_stack, "StateTable"))
    start = NOW + timedelta(seconds=10)  # past the settling seconds at the start of a minute
    assert all(counter.try_take(start + timedelta(seconds=n), limit=100) for n in range(5))
    assert counter.queries == 1
    assert counter.try_take(start + timedelta(minutes=1), limit=100)  # a new minute: one new read
    assert counter.queries == 2
    assert counter.used(start + timedelta(minutes=1)) == 6


def test_blast_radius_rereads_a_sum_taken_right_after_the_minute_began(local_stack: LocalStack) -> None:
    counter = BlastRadiusCounter(_table(local_stack, "StateTable"))
    late_take = BlastRadiusCounter(_table(local_stack, "StateTable"))
    assert counter.try_take(NOW + timedelta(minutes=1, seconds=1), limit=2)
    # another worker's take from the minute before lands after that read (it was in flight)
    assert late_take.try_take(NOW + timedelta(seconds=59), limit=2)
    assert not counter.try_take(NOW + timedelta(minutes=1, seconds=30), limit=2)
    assert counter.used(NOW + timedelta(minutes=1, seconds=30)) == 2


def test_blast_radius_is_never_exceeded_by_concurrent_workers(local_stack: LocalStack) -> None:
    # each thread is one container: its own boto3 resource and its own cached sum
    counters = [BlastRadiusCounter(_table(local_stack, "StateTable")) for _ in range(4)]
    counters[0].count_unconditionally(NOW - timedelta(minutes=30))  # an earlier minute holds 1
    at = NOW + timedelta(seconds=20)

    def take_all(counter: BlastRadiusCounter) -> int:
        return sum(counter.try_take(at, limit=7) for _ in range(5))

    with ThreadPoolExecutor(max_workers=len(counters)) as pool:
        granted = sum(pool.map(take_all, counters))
    assert granted == 6
    assert counters[0].used(at) == 7


def test_queue_sends_batches_with_delay_and_attributes(local_stack: LocalStack) -> None:
    sqs = _sqs(local_stack)
    queue = OffboardingQueue(local_stack.queue_url, sqs)
    sent: list[int] = []
    failures = queue.send_batch(
        [OutgoingMessage(body=f'{{"n": {n}}}') for n in range(23)], on_sent=sent.append
    )
    assert failures == []
    assert sum(sent) == 23
    queue.send(OutgoingMessage(body='{"n": "late"}', attributes={"miroSyncPhase": "due"}))
    received = QueueReader(sqs, local_stack.queue_url).receive_all()
    bodies = [m["Body"] for m in received]
    phases = [
        m.get("MessageAttributes", {}).get("miroSyncPhase", {}).get("StringValue", "") for m in received
    ]
    assert sorted(bodies) == sorted([f'{{"n": {n}}}' for n in range(23)] + ['{"n": "late"}'])
    assert phases.count("due") == 1


def test_a_send_sqs_refuses_is_reported_as_a_queue_send_error(local_stack: LocalStack) -> None:
    # the worker turns QueueSendError into a retry and records the request as unscheduled
    missing = local_stack.queue_url.rsplit("/", 1)[0] + "/no-such-queue"
    with pytest.raises(QueueSendError, match="could not send to the offboarding queue"):
        OffboardingQueue(missing, _sqs(local_stack)).send(OutgoingMessage(body="{}"))


def _cli(stack: LocalStack, *args: str, env: dict[str, str | None] | None = None) -> Any:
    full_env: dict[str, str | None] = {
        **_aws_env(stack),
        "ACTIONS_TABLE": stack.tables["ActionsTable"],
        "MEMBERS_TABLE": stack.tables["MembersTable"],
        "OFFBOARDING_QUEUE_URL": stack.queue_url,
        "MIRO_SYNC_OPERATOR": "op@example.com",
        "COLUMNS": "250",
        "MAX_ACTIONS_PER_HOUR": None,  # unset unless a test sets it
        **(env or {}),
    }
    return CliRunner().invoke(app, list(args), env=full_env)


def test_cli_shows_the_plan_and_enqueues_only_with_yes(local_stack: LocalStack) -> None:
    plan = _cli(local_stack, "suspend", "Ann@Example.com", "bob@example.com", "--reason", "left")
    assert plan.exit_code == 1, plan.output
    assert "ann@example.com" in plan.output
    assert "Nothing enqueued" in plan.output
    poller = QueueReader(_sqs(local_stack), local_stack.queue_url)
    assert poller.receive() == []
    done = _cli(local_stack, "suspend", "ann@example.com", "bob@example.com", "--reason", "left", "--yes")
    assert done.exit_code == 0, done.output
    bodies = [json.loads(m["Body"]) for m in poller.receive()]
    assert sorted(b["email"] for b in bodies) == ["ann@example.com", "bob@example.com"]
    assert {b["requestedBy"] for b in bodies} == {"op@example.com"}
    assert all(b["requestId"].startswith("cli-") for b in bodies)
    assert len({b["requestId"] for b in bodies}) == 2


def test_cli_csv_is_all_or_nothing(local_stack: LocalStack, tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    good.write_text("email,reason\n" + "".join(f"user{n}@example.com,left\n" for n in range(25)))
    bad = tmp_path / "bad.csv"
    bad.write_text("email,reason\nann@example.com,left\nnot-an-email,left\nbob@example.com,\n")
    refused = _cli(local_stack, "delete", "--csv", str(bad), "--yes")
    assert refused.exit_code == 2
    assert "line 3" in refused.output
    assert "not a valid email address" in refused.output
    assert "line 4" in refused.output  # no reason given and no --reason
    poller = QueueReader(_sqs(local_stack), local_stack.queue_url)
    assert poller.receive() == []
    accepted = _cli(local_stack, "delete", "--csv", str(good), "--yes")
    assert accepted.exit_code == 0, accepted.output
    assert len(poller.receive_all()) == 25


def test_cli_status_release_and_cancel(local_stack: LocalStack) -> None:
    actions = ActionsRepository(_table(local_stack, "ActionsTable"))
    actions.create(_record("r-held"))
    actions.create(_record("r-pending", "pending", member="bob@example.com"))
    actions.create(_record("r-done", "done", member="carl@example.com"))
    status = _cli(local_stack, "status", "--member", "ann@example.com")
    assert status.exit_code == 0, status.output
    assert "r-held" in status.output
    released = _cli(local_stack, "release", "--yes")
    assert released.exit_code == 0, released.output
    record = actions.get("r-held")
    assert record is not None
    assert record.released_by == "op@example.com"
    [message] = QueueReader(_sqs(local_stack), local_stack.queue_url).receive()
    assert message["MessageAttributes"]["miroSyncPhase"]["StringValue"] == "release"
    assert json.loads(message["Body"])["requestId"] == "r-held"
    cancelled = _cli(local_stack, "cancel", "r-pending", "r-done")
    assert cancelled.exit_code == 1  # r-done cannot be cancelled
    assert "r-done cannot be cancelled (done)" in cancelled.output
    pending = actions.get("r-pending")
    assert pending is not None
    assert pending.outcome == "cancelled"
    assert pending.cancelled_by == "op@example.com"


def _nothing_sent(stack: LocalStack) -> bool:
    return QueueReader(_sqs(stack), stack.queue_url).receive() == []


def test_cli_csv_row_naming_another_action_refuses_the_file(local_stack: LocalStack, tmp_path: Path) -> None:
    leavers = tmp_path / "leavers.csv"
    leavers.write_text(
        "email,action,reason\nann@example.com,suspend,left\nbob@example.com,delete,left\n", encoding="utf-8"
    )
    refused = _cli(local_stack, "suspend", "--csv", str(leavers), "--yes")
    assert refused.exit_code == 2, refused.output
    assert "leavers.csv line 3" in refused.output
    assert "'delete'" in refused.output
    assert _nothing_sent(local_stack)


def test_cli_csv_dry_run_must_be_true_or_false(local_stack: LocalStack, tmp_path: Path) -> None:
    leavers = tmp_path / "leavers.csv"
    leavers.write_text("email,reason,dryRun\nann@example.com,left,TRUE\nbob@example.com,left,yes\n")
    refused = _cli(local_stack, "delete", "--csv", str(leavers), "--yes")
    assert refused.exit_code == 2, refused.output
    assert "leavers.csv line 3" in refused.output
    assert "dryRun must be true or false" in refused.output
    assert _nothing_sent(local_stack)


@pytest.mark.parametrize(
    ("not_before", "message"),
    [
        ("20250301", "explicit offset"),  # a bare number would be read as Unix seconds: at once
        ("2025-03-01", "explicit offset"),
        ("2025-03-01T18:00:00", "explicit offset"),
        ("2020-01-01T00:00:00Z", "in the past"),
        ("2999-01-01T00:00:00Z", "366 days ahead"),
    ],
)
def test_cli_refuses_a_bad_not_before_and_sends_nothing(
    local_stack: LocalStack, not_before: str, message: str
) -> None:
    refused = _cli(
        local_stack, "delete", "ann@example.com", "--reason", "left", "--not-before", not_before, "--yes"
    )
    assert refused.exit_code == 2, refused.output
    assert "--not-before" in refused.output
    assert message in refused.output
    assert "nothing was enqueued" in refused.output
    assert _nothing_sent(local_stack)


def test_cli_cancel_stops_failed_and_retrying_requests(local_stack: LocalStack) -> None:
    actions = ActionsRepository(_table(local_stack, "ActionsTable"))
    actions.create(_record("r-failed", "failed"))
    actions.create(_record("r-claimed", "received", member="bob@example.com"))
    cancelled = _cli(local_stack, "cancel", "r-failed", "r-claimed")
    assert cancelled.exit_code == 1, cancelled.output
    failed = actions.get("r-failed")
    assert failed is not None
    assert failed.outcome == "cancelled"
    assert failed.cancelled_by == "op@example.com"
    # a claimed request may be inside Miro: never cancelled
    assert "r-claimed cannot be cancelled (received)" in cancelled.output
    claimed = actions.get("r-claimed")
    assert claimed is not None
    assert claimed.outcome == "received"


def test_cli_release_shows_its_plan_and_releases_only_with_yes(local_stack: LocalStack) -> None:
    actions = ActionsRepository(_table(local_stack, "ActionsTable"))
    actions.create(_record("r-held"))
    plan = _cli(local_stack, "release")
    assert plan.exit_code == 0, plan.output
    assert "Release plan: 1 held request(s)" in plan.output
    assert "r-held" in plan.output
    assert "Re-run with --yes" in plan.output
    assert _nothing_sent(local_stack)
    record = actions.get("r-held")
    assert record is not None
    assert record.outcome == "held"
    assert record.released_by is None


def _held(actions: ActionsRepository, count: int) -> None:
    for n in range(count):
        stamp = utc_now_iso(NOW + timedelta(seconds=n))  # held one after the other: oldest first
        record = _record(f"r-{n:02d}", member=f"user{n}@example.com")
        actions.create(record.model_copy(update={"created_at": stamp, "updated_at": stamp}))


def _not_released(actions: ActionsRepository) -> list[str]:
    # a release records the approval and re-sends the message; the worker moves the outcome on
    return sorted(r.request_id for r in actions.by_outcome("held") if r.released_by is None)


def _released(stack: LocalStack) -> list[str]:
    messages = QueueReader(_sqs(stack), stack.queue_url).receive_all()
    return sorted(json.loads(m["Body"])["requestId"] for m in messages)


def test_cli_release_defaults_to_max_actions_per_hour(local_stack: LocalStack) -> None:
    actions = ActionsRepository(_table(local_stack, "ActionsTable"))
    _held(actions, 4)
    released = _cli(local_stack, "release", "--yes", env={"MAX_ACTIONS_PER_HOUR": "3"})
    assert released.exit_code == 0, released.output
    assert "More held requests wait beyond --max 3" in released.output
    assert _released(local_stack) == ["r-00", "r-01", "r-02"]
    assert _not_released(actions) == ["r-03"]


def test_cli_release_an_explicit_max_wins_over_the_environment(local_stack: LocalStack) -> None:
    actions = ActionsRepository(_table(local_stack, "ActionsTable"))
    _held(actions, 3)
    released = _cli(local_stack, "release", "--max", "1", "--yes", env={"MAX_ACTIONS_PER_HOUR": "3"})
    assert released.exit_code == 0, released.output
    assert _released(local_stack) == ["r-00"]


def test_cli_release_without_the_variable_releases_at_most_25(local_stack: LocalStack) -> None:
    actions = ActionsRepository(_table(local_stack, "ActionsTable"))
    _held(actions, 26)
    released = _cli(local_stack, "release", "--yes")
    assert released.exit_code == 0, released.output
    assert len(_released(local_stack)) == 25
    assert _not_released(actions) == ["r-25"]


def test_cli_shows_markup_like_text_from_the_table_as_it_is(local_stack: LocalStack) -> None:
    actions = ActionsRepository(_table(local_stack, "ActionsTable"))
    hostile = _record("r-[/x]", "refused", member="[/x]").model_copy(
        update={"outcome_reason": "[bold]no[/x] such member", "warning": "[/red]"}
    )
    actions.create(hostile)
    status = _cli(local_stack, "status", "--outcome", "refused")
    assert status.exit_code == 0, status.output  # raised rich's MarkupError before
    assert "r-[/x]" in status.output
    assert "[bold]no[/x] such member" in status.output
    assert "[/red]" in status.output
    by_member = _cli(local_stack, "status", "--member", "[/x]")
    assert by_member.exit_code == 0, by_member.output
    cancelled = _cli(local_stack, "cancel", "r-[/x]", "[/y]")
    assert cancelled.exit_code == 1, cancelled.output
    assert "r-[/x] cannot be cancelled (refused)" in cancelled.output
    assert "[/y] cannot be cancelled (unknown request)" in cancelled.output
