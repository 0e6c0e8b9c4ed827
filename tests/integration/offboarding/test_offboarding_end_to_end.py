"""OffboardingFunction end to end: messages go through the real queue (moto server), are received the
way Lambda's poller does and handed to the real handler (`invoke_function`), which calls the emulator's
SCIM API and writes DynamoDB Local. Truth is read back from the emulator's state."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from miro_emulator import RunningEmulator
from miro_sync.store.actions import ActionRecord, ActionsRepository
from miro_sync_cli.local.invoke import invoke_function
from miro_sync_cli.local.stack import LocalStack, MiroConnection
from tests.integration.offboarding.sqs import Poller, sqs_event

pytestmark = pytest.mark.integration
FUNCTION = "OffboardingFunction"


class Harness:
    def __init__(self, stack: LocalStack, emulator: RunningEmulator, **env: str) -> None:
        stack.connect_miro(
            MiroConnection(
                api_url=emulator.base_url,
                scim_url=emulator.scim_url,
                org_id=emulator.org_id,
                token=emulator.token,
                scim_token=emulator.scim_token,
            )
        )
        self.emulator = emulator
        self.env = {**stack.function_env(FUNCTION), **env}
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
        self.poller = Poller(self.sqs, self.queue_url)

    def send(self, *bodies: str) -> None:
        for body in bodies:
            self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=body)

    def drain(self, *, max_rounds: int = 60) -> int:
        """Poll and invoke until the queue is empty; failed records come back at once. Returns invocations."""
        invocations = 0
        empty_polls = 0
        for _ in range(max_rounds):
            messages = self.poller.receive(max_messages=10)
            if not messages:
                empty_polls += 1
                if empty_polls >= 2:
                    return invocations
                continue
            empty_polls = 0
            response = invoke_function(FUNCTION, sqs_event(messages, self.poller.queue_arn), self.env)
            invocations += 1
            self.poller.settle(messages, response)
        raise AssertionError("the queue did not drain")

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
    def make(faults: str = "none", **env: str) -> Harness:
        return Harness(
            local_stack, emulator_factory(members=120, seed=11, faults=faults, window_s=2.0), **env
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
    assert [a.operation.split(" ")[0] for a in suspend.attempts if a.status == 200] == ["PATCH"]
    delete = harness.record("d-bob")
    assert delete.outcome == "done"
    assert [a.status for a in delete.attempts] == [200, 204]


def test_guests_external_protected_and_poison_are_refused_untouched(
    harness_factory: Callable[..., Harness],
) -> None:
    harness = harness_factory(PROTECTED_EMAILS="")
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
    assert harness.poller.receive() == []  # nothing left to retry


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
    harness.drain(max_rounds=200)
    for index, user in enumerate(users):
        record = harness.record(f"r-{index}")
        assert record.outcome == "done", (record.outcome, record.last_error)
        successful_writes = [a for a in record.attempts if a.status in (200, 204)]
        if index % 3 == 0:
            assert user.deleted
            assert [a.status for a in successful_writes] == [200, 204]
        else:
            assert user.active is False
            assert len(successful_writes) == 1


def test_blast_radius_holds_and_release_continues(harness_factory: Callable[..., Harness]) -> None:
    harness = harness_factory(MAX_ACTIONS_PER_HOUR="2")
    users = members_with_role(harness.emulator, "organization_internal_user", 3)
    harness.send(*(message("suspend", u.email, requestId=f"r-{n}") for n, u in enumerate(users)))
    harness.drain()
    outcomes = sorted(harness.record(f"r-{n}").outcome for n in range(3))
    assert outcomes == ["done", "done", "held"]
    held = next(n for n in range(3) if harness.record(f"r-{n}").outcome == "held")
    assert users[held].active is True
    from typer.testing import CliRunner

    from miro_sync_cli.offboard_cmd import app

    result = CliRunner().invoke(app, ["release", "--by", "op@example.com"], env=harness.env)
    assert result.exit_code == 0, result.output
    released = harness.drain()
    record = harness.record(f"r-{held}")
    assert released >= 1
    assert record.outcome == "done"
    assert record.released_by == "op@example.com"
    assert users[held].active is False


def test_delete_after_not_before(harness_factory: Callable[..., Harness]) -> None:
    from datetime import UTC, datetime, timedelta

    harness = harness_factory()
    [user] = members_with_role(harness.emulator, "organization_internal_user", 1)
    due = datetime.now(UTC) + timedelta(seconds=2)
    harness.send(message("delete", user.email, requestId="later", notBefore=due.isoformat()))
    harness.drain()
    assert harness.record("later").outcome == "pending"
    assert not user.deleted
    # the delayed "due" message becomes visible after its DelaySeconds; poll until it does
    import time

    deadline = time.monotonic() + 30
    while harness.record("later").outcome != "done" and time.monotonic() < deadline:
        harness.drain()
        time.sleep(0.5)
    assert harness.record("later").outcome == "done"
    assert user.deleted
