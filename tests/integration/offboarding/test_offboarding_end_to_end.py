"""OffboardingFunction end to end: messages go through the real queue (moto server), are fed to the real
handler by the local stack's SQS poller (`drain_queue`, what Lambda's event source mapping does), which
calls the emulator's SCIM API and writes DynamoDB Local. Truth is read back from the emulator's state."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from miro_emulator import RunningEmulator
from miro_sync.store.actions import ActionRecord, ActionsRepository
from miro_sync.store.queue import REJECT_REASON_ATTRIBUTE, REQUEST_ID_ATTRIBUTE
from miro_sync_cli.local.sqs_poller import DrainReport, drain_queue
from miro_sync_cli.local.stack import LocalStack, MiroConnection
from tests.integration.offboarding.sqs import QueueReader

pytestmark = pytest.mark.integration
FUNCTION = "OffboardingFunction"


class Harness:
    def __init__(self, stack: LocalStack, emulator: RunningEmulator, **parameters: str) -> None:
        # Guard-rail settings are template parameters (ProtectedEmails, MaxActionsPerHour): set them the
        # way a deployment would, so the function's environment comes from the template as in Lambda.
        stack.template.parameter_overrides.update(parameters)
        stack.connect_miro(
            MiroConnection(
                api_url=emulator.base_url,
                scim_url=emulator.scim_url,
                org_id=emulator.org_id,
                token=emulator.token,
                scim_token=emulator.scim_token,
            )
        )
        self.stack = stack
        self.emulator = emulator
        self.env = stack.function_env(FUNCTION)
        session = boto3.session.Session(
            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=self.env.get("AWS_SESSION_TOKEN"),
            region_name=self.env.get("AWS_DEFAULT_REGION", "us-east-1"),
        )
        self.sqs = session.client("sqs", endpoint_url=self.env["AWS_ENDPOINT_URL"])
        dynamodb = session.resource("dynamodb", endpoint_url=self.env["AWS_ENDPOINT_URL_DYNAMODB"])
        self.actions = ActionsRepository(dynamodb.Table(stack.tables["ActionsTable"]))
        self.queue_url = stack.queue_url
        self.queue = QueueReader(self.sqs, self.queue_url)
        self.dead_letters = QueueReader(self.sqs, stack.dlq_url)

    def send(self, *bodies: str) -> None:
        for body in bodies:
            self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=body)

    def drain(self, *, max_batches: int = 10_000) -> DrainReport:
        """Feed the queue to the function until it is empty (delayed messages included)."""
        report = drain_queue(self.stack, FUNCTION, self.queue_url, max_batches=max_batches, timeout_s=120)
        assert not report.timed_out, report
        assert report.function_errors == []
        return report

    def record(self, request_id: str) -> ActionRecord:
        record = self.actions.get(request_id)
        assert record is not None, request_id
        return record


def message(action: str, email: str, **extra: Any) -> str:
    return json.dumps(
        {"action": action, "email": email, "requestedBy": "it@example.com", "reason": "left", **extra}
    )


def members_with_role(emulator: RunningEmulator, role: str, count: int, *, active: bool = True) -> list[Any]:
    chosen = [
        m for m in emulator.state.all_members if m.role == role and not m.deleted and m.active == active
    ]
    assert len(chosen) >= count, f"the emulated org has too few {role}"
    return chosen[:count]


@pytest.fixture
def harness_factory(
    local_stack: LocalStack, emulator_factory: Callable[..., RunningEmulator]
) -> Callable[..., Harness]:
    def make(faults: str = "none", **parameters: str) -> Harness:
        return Harness(
            local_stack, emulator_factory(members=120, seed=11, faults=faults, window_s=2.0), **parameters
        )

    return make


def test_suspend_and_delete_with_duplicates_have_one_effect_each(
    harness_factory: Callable[..., Harness],
) -> None:
    harness = harness_factory()
    ann, bob = members_with_role(harness.emulator, "organization_internal_user", 2)
    harness.send(
        message("suspend", ann.email, requestId="s-ann"),
        message("suspend", ann.email, requestId="s-ann"),  # double submission
        message("delete", bob.email, requestId="d-bob"),
        message("delete", bob.email, requestId="d-bob"),
    )
    harness.drain()
    assert harness.emulator.state.member(ann.id) is not None
    assert ann.active is False
    assert bob.deleted is True
    suspend = harness.record("s-ann")
    assert suspend.outcome == "done"
    # the deactivation, then the sign-out (ResetSessions is on by default)
    assert [a.operation.split(" ")[0] for a in suspend.attempts if a.status == 200] == ["PATCH", "POST"]
    delete = harness.record("d-bob")
    assert delete.outcome == "done"
    assert [a.status for a in delete.attempts] == [200, 200, 204]


def test_guests_external_protected_and_poison_are_refused_untouched(
    harness_factory: Callable[..., Harness],
) -> None:
    harness = harness_factory()
    [guest] = members_with_role(harness.emulator, "organization_team_guest_user", 1)
    [external] = members_with_role(harness.emulator, "organization_external_user", 1)
    [admin] = members_with_role(harness.emulator, "organization_internal_admin", 1)
    harness.send(
        message("suspend", guest.email, requestId="guest"),
        message("delete", external.email, requestId="external"),
        message("delete", admin.email, requestId="admin"),
        message("suspend", "nobody@nowhere.example", requestId="unknown"),
        "{not json",
        json.dumps({"action": "nuke", "email": guest.email, "requestedBy": "x", "reason": "y"}),
    )
    harness.drain()
    assert guest.active
    assert external.active
    assert admin.active
    assert not (guest.deleted)
    assert not (external.deleted)
    assert not (admin.deleted)
    reasons = {
        rid: harness.record(rid).outcome_reason or "" for rid in ("guest", "external", "admin", "unknown")
    }
    assert all(harness.record(rid).outcome == "refused" for rid in reasons)
    assert "team guests" in reasons["guest"]
    assert "external users" in reasons["external"]
    assert "Company Admin" in reasons["admin"]
    assert "unknown member" in reasons["unknown"]
    poison = list(harness.actions.by_member("invalid"))
    assert sorted(r.outcome_reason.split(":")[0] for r in poison if r.outcome_reason) == [
        "action",
        "malformed JSON",
    ]
    assert harness.queue.receive() == []  # nothing left to retry


@pytest.mark.parametrize("faults", ["429-storm", "flaky"])
def test_faults_still_give_exactly_one_effect_per_request(
    harness_factory: Callable[..., Harness], faults: str
) -> None:
    harness = harness_factory(faults)
    users = members_with_role(harness.emulator, "organization_internal_user", 6)
    for index, user in enumerate(users):
        action = "delete" if index % 3 == 0 else "suspend"
        harness.send(
            message(action, user.email, requestId=f"r-{index}"),
            message(action, user.email, requestId=f"r-{index}"),
        )
    harness.drain()
    for index, user in enumerate(users):
        record = harness.record(f"r-{index}")
        assert record.outcome == "done", (record.outcome, record.last_error)
        successful_writes = [a.operation.split(" ")[0] for a in record.attempts if a.status in (200, 204)]
        if index % 3 == 0:
            assert user.deleted
            assert successful_writes == ["PATCH", "POST", "DELETE"]
        else:
            assert user.active is False
            assert successful_writes == ["PATCH", "POST"]


def test_blast_radius_holds_and_release_continues(harness_factory: Callable[..., Harness]) -> None:
    harness = harness_factory(MaxActionsPerHour="2")
    users = members_with_role(harness.emulator, "organization_internal_user", 3)
    harness.send(*(message("suspend", u.email, requestId=f"r-{n}") for n, u in enumerate(users)))
    harness.drain()
    outcomes = sorted(harness.record(f"r-{n}").outcome for n in range(3))
    assert outcomes == ["done", "done", "held"]
    held = next(n for n in range(3) if harness.record(f"r-{n}").outcome == "held")
    assert users[held].active is True
    from typer.testing import CliRunner

    from miro_sync_cli.offboard_cmd import app

    result = CliRunner().invoke(app, ["release", "--by", "op@example.com", "--yes"], env=harness.env)
    assert result.exit_code == 0, result.output
    released = harness.drain()
    record = harness.record(f"r-{held}")
    assert released.succeeded == 1
    assert record.outcome == "done"
    assert record.released_by == "op@example.com"
    assert users[held].active is False


def test_delete_after_not_before(harness_factory: Callable[..., Harness]) -> None:
    from datetime import UTC, datetime, timedelta

    harness = harness_factory()
    [user] = members_with_role(harness.emulator, "organization_internal_user", 1)
    due = datetime.now(UTC) + timedelta(seconds=2)
    harness.send(message("delete", user.email, requestId="later", notBefore=due.isoformat()))
    harness.drain(max_batches=1)  # the request itself: parked, and a delayed "due" message sent
    assert harness.record("later").outcome == "pending"
    assert not user.deleted
    harness.drain()  # waits for the delayed message, as Lambda's poller would
    assert harness.record("later").outcome == "done"
    assert user.deleted


def test_poison_message_lands_on_the_dead_letter_queue_once_with_its_reason(
    harness_factory: Callable[..., Harness],
) -> None:
    harness = harness_factory()
    unknown_field = message("suspend", "ann@example.com", requestId="typo", priorty="high")
    harness.send("{not json", unknown_field, unknown_field)  # a double submission of the bad one
    report = harness.drain()
    assert report.failed == 0  # refused for good: acknowledged, not retried
    letters = harness.dead_letters.receive_all()
    assert sorted(letter["Body"] for letter in letters) == sorted(["{not json", unknown_field])
    reasons = {
        letter["Body"]: letter["MessageAttributes"][REJECT_REASON_ATTRIBUTE]["StringValue"]
        for letter in letters
    }
    assert reasons["{not json"].startswith("malformed JSON")
    assert "priorty: unknown field" in reasons[unknown_field]
    for letter in letters:
        request_id = letter["MessageAttributes"][REQUEST_ID_ATTRIBUTE]["StringValue"]
        record = harness.record(request_id)
        assert record.outcome == "refused"
        assert record.outcome_reason == reasons[letter["Body"]]
        assert record.body == letter["Body"]
        assert record.dead_lettered_at is not None
    assert harness.emulator.stats()["totalRequests"] == 0  # nothing reached Miro


def test_an_out_of_range_not_before_is_refused_alone_and_the_batch_runs(
    harness_factory: Callable[..., Harness],
) -> None:
    harness = harness_factory()
    ann, bob = members_with_role(harness.emulator, "organization_internal_user", 2)
    hostile = message("delete", bob.email, requestId="far-out", notBefore="9999-12-31T23:00:00-05:00")
    harness.send(
        message("suspend", ann.email, requestId="s-ann"),
        hostile,
        message("suspend", bob.email, requestId="s-bob"),
    )
    report = harness.drain()
    assert report.failed == 0, report
    assert (ann.active, bob.active, bob.deleted) == (False, False, False)
    done = harness.record("s-ann")
    assert done.outcome == "done"
    assert done.sender_id  # SQS SenderId: who sent it, in the audit trail
    assert done.requested_at is not None
    copies = harness.dead_letters.receive_all()
    assert [copy["Body"] for copy in copies] == [hostile]
    reason = copies[0]["MessageAttributes"][REJECT_REASON_ATTRIBUTE]["StringValue"]
    assert "notBefore" in reason
    refused = harness.record(copies[0]["MessageAttributes"][REQUEST_ID_ATTRIBUTE]["StringValue"])
    assert refused.outcome == "refused"


def test_a_delete_of_a_teams_last_admin_is_partial_and_leaves_the_member_suspended(
    harness_factory: Callable[..., Harness],
) -> None:
    harness = harness_factory()
    state = harness.emulator.state
    sole_admins = [
        m
        for m in state.all_members
        if m.role == "organization_internal_user"
        and m.active
        and not m.deleted
        and state.teams_with_sole_admin(m)
    ]
    assert sole_admins, "the emulated org has no internal user who is a team's only admin"
    leaver = sole_admins[0]
    harness.send(message("delete", leaver.email, requestId="d-leaver"))
    harness.drain()
    record = harness.record("d-leaver")
    assert record.outcome == "partial"
    assert "suspended, but Miro refused the delete" in (record.outcome_reason or "")
    # no members sync ran, so the worker could not know the teams up front: Miro's 409 answers
    assert [(a.operation.split(" ")[0], a.status) for a in record.attempts if a.status] == [
        ("PATCH", 200),
        ("POST", 200),
        ("DELETE", 409),
    ]
    assert (leaver.active, leaver.deleted) == (False, False)
