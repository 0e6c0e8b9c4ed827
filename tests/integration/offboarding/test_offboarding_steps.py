"""Offboarding that finishes the job, end to end: the members sync fills DynamoDB Local from the emulator,
messages go through the real queue (moto server) to the real handler, which calls the emulator's REST and
SCIM APIs. What happened is read back over HTTP from the emulator's introspection (`/_emulator/state/...`,
`/_emulator/stats`), never from the worker's own account of it."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

import boto3
import httpx
import pytest

from miro_emulator import EmulatorConfig, RunningEmulator, start_emulator
from miro_sync.store.actions import ActionRecord, ActionsRepository
from miro_sync_cli.local.invoke import LocalLambdaContext
from miro_sync_cli.local.sqs_poller import drain_queue, sqs_event
from miro_sync_cli.local.stack import LocalStack
from tests.fixtures.functions import load_function_app
from tests.fixtures.sync import sync_members

pytestmark = pytest.mark.integration
FUNCTION = "OffboardingFunction"


class Org:
    """The emulated org as its introspection endpoints tell it (HTTP, unauthenticated)."""

    def __init__(self, emulator: RunningEmulator) -> None:
        self.emulator = emulator
        self.http = httpx.Client(base_url=emulator.base_url, timeout=10)

    def member(self, email: str) -> dict[str, Any]:
        [found] = self.http.get("/_emulator/state/members", params={"email": email}).json()["data"]
        return dict(found)

    def boards_owned_by(self, member_id: str) -> list[dict[str, Any]]:
        return list(self.http.get("/_emulator/state/boards", params={"owner": member_id}).json()["data"])

    def boards_with_member(self, member_id: str) -> list[dict[str, Any]]:
        return list(self.http.get("/_emulator/state/boards", params={"member": member_id}).json()["data"])

    def successes(self, *operations: str) -> int:
        """Successful calls of these operations so far (2xx), from /_emulator/stats."""
        by_status = self.http.get("/_emulator/stats").json()["byOperationStatus"]
        return sum(
            count
            for key, count in by_status.items()
            for operation in operations
            if key.startswith(operation + " ") and key.rsplit(" ", 1)[1].startswith("2")
        )


def effect_counts(org: Org) -> dict[str, int]:
    return {
        "share": org.successes("share-board"),
        "team": org.successes("enterprise-update-team-member", "enterprise-invite-team-member"),
        "patch": org.successes("patchUser"),
        "reset": org.successes("enterprise-post-user-sessions-reset"),
        "delete": org.successes("deleteUser"),
    }


class Harness:
    def __init__(self, stack: LocalStack, emulator: RunningEmulator) -> None:
        sync_members(stack, emulator)
        self.stack = stack
        self.org = Org(emulator)
        env = stack.function_env(FUNCTION)
        self.env = env
        session = boto3.session.Session(
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=env.get("AWS_SESSION_TOKEN"),
            region_name=env.get("AWS_DEFAULT_REGION", "us-east-1"),
        )
        self.sqs = session.client("sqs", endpoint_url=env["AWS_ENDPOINT_URL"])
        dynamodb = session.resource("dynamodb", endpoint_url=env["AWS_ENDPOINT_URL_DYNAMODB"])
        self.actions = ActionsRepository(dynamodb.Table(stack.tables["ActionsTable"]))

    def send(self, **message: Any) -> None:
        body = {"requestedBy": "it@example.com", "reason": "left", **message}
        self.sqs.send_message(QueueUrl=self.stack.queue_url, MessageBody=json.dumps(body))

    def drain(self) -> None:
        report = drain_queue(self.stack, FUNCTION, self.stack.queue_url, timeout_s=120)
        assert not report.timed_out, report
        assert report.function_errors == []

    def record(self, request_id: str) -> ActionRecord:
        record = self.actions.get(request_id)
        assert record is not None, request_id
        return record


@pytest.fixture
def emulator() -> Iterator[RunningEmulator]:
    with start_emulator(EmulatorConfig(members=160, seed=7, window_s=2.0), port=0) as running:
        yield running


def make_sole_team_admin(emulator: RunningEmulator) -> Any:
    """Through Miro's own API, before the sync: an internal user who owns boards becomes the only admin
    of one of their teams (promoted, the team's other admins made members)."""
    state = emulator.state
    api = httpx.Client(
        base_url=emulator.base_url, headers={"Authorization": f"Bearer {emulator.token}"}, timeout=10
    )
    owners = {board.owner_index for board in state.boards if not board.deleted}
    for member in internal_members(emulator):
        teams = [team for team in state.teams if member.index in team.memberships]
        if member.index not in owners or not teams:
            continue
        team = teams[0]
        path = f"/v2/orgs/{emulator.org_id}/teams/{team.id}/members"
        assert api.patch(f"{path}/{member.id}", json={"role": "admin"}).status_code == 200
        for index, membership in list(team.memberships.items()):
            if membership.role == "admin" and index != member.index:
                other = state.all_members[index].id
                assert api.patch(f"{path}/{other}", json={"role": "member"}).status_code == 200
        assert [t.id for t in state.teams_with_sole_admin(member)] == [team.id]
        # the arrangement's calls are not the worker's effects
        assert httpx.post(f"{emulator.base_url}/_emulator/reset-stats", timeout=10).status_code == 200
        return member
    raise AssertionError("the emulated org has no internal user who owns boards and is in a team")


@pytest.fixture
def harness(local_stack: LocalStack, emulator: RunningEmulator) -> Harness:
    local_stack.template.parameter_overrides.update({"ResetSessions": "true"})
    make_sole_team_admin(emulator)
    return Harness(local_stack, emulator)


def internal_members(emulator: RunningEmulator) -> list[Any]:
    return [
        m
        for m in emulator.state.all_members
        if not m.deleted
        and m.active
        and m.role == "organization_internal_user"
        and m.license == "full"
        and not m.admin_roles
    ]


def leaver_with_boards(org: Org, candidates: Iterable[Any], *, sole_admin: bool) -> Any:
    for member in candidates:
        is_sole = bool(org.emulator.state.teams_with_sole_admin(member))
        if org.boards_owned_by(member.id) and is_sole == sole_admin:
            return member
    raise AssertionError(f"the emulated org has no internal user with boards and sole_admin={sole_admin}")


def test_a_suspend_with_a_successor_hands_every_board_over_and_signs_the_leaver_out(harness: Harness) -> None:
    org = harness.org
    people = internal_members(org.emulator)
    leaver = leaver_with_boards(org, people, sole_admin=False)
    successor = next(p for p in people if p.id != leaver.id)
    owned = {board["id"] for board in org.boards_owned_by(leaver.id)}
    assert org.member(leaver.email)["sessionsResetAt"] is None

    harness.send(action="suspend", email=leaver.email, successor=successor.email, requestId="s-1")
    harness.drain()

    record = harness.record("s-1")
    assert record.outcome == "done", record.outcome_reason
    truth = org.member(leaver.email)
    assert truth["active"] is False
    assert truth["sessionsResetAt"] is not None
    co_owned = {
        board["id"]
        for board in org.boards_with_member(successor.id)
        if {"id": successor.id, "role": "coowner"} in board["members"]
    }
    assert owned <= co_owned
    assert [step.kind for step in record.steps] == [
        "hand_over_boards",
        "deactivate",
        "read_back",
        "reset_sessions",
    ]
    assert sorted(record.handed_over) == sorted(owned)
    assert effect_counts(org) == {"share": len(owned), "team": 0, "patch": 1, "reset": 1, "delete": 0}


def test_a_delete_of_the_last_admin_of_a_team_is_refused_up_front_without_a_successor(
    harness: Harness,
) -> None:
    org = harness.org
    leaver = leaver_with_boards(org, internal_members(org.emulator), sole_admin=True)
    sole = org.emulator.state.teams_with_sole_admin(leaver)

    harness.send(action="delete", email=leaver.email, requestId="d-1")
    harness.drain()

    record = harness.record("d-1")
    assert record.outcome == "refused"
    assert all(team.name in (record.outcome_reason or "") for team in sole)
    assert org.member(leaver.email)["active"] is True
    assert effect_counts(org) == {"share": 0, "team": 0, "patch": 0, "reset": 0, "delete": 0}


def test_a_delete_of_the_last_admin_of_a_team_with_a_successor_promotes_the_successor_first(
    harness: Harness,
) -> None:
    org = harness.org
    people = internal_members(org.emulator)
    leaver = leaver_with_boards(org, people, sole_admin=True)
    sole = org.emulator.state.teams_with_sole_admin(leaver)
    successor = next(p for p in people if p.id != leaver.id)
    owned = {board["id"] for board in org.boards_owned_by(leaver.id)}

    harness.send(action="delete", email=leaver.email, successor=successor.email, requestId="d-2")
    harness.drain()

    record = harness.record("d-2")
    assert record.outcome == "done", record.outcome_reason
    assert org.http.get("/_emulator/state/members", params={"id": leaver.id}).json()["data"][0]["deleted"]
    teams = {team["id"]: team["role"] for team in org.member(successor.email)["teams"]}
    assert all(teams.get(team.id) == "admin" for team in sole)
    # Miro moved the boards to a team admin on delete; the successor co-owns every one of them
    co_owned = {
        board["id"]
        for board in org.boards_with_member(successor.id)
        if any(m["id"] == successor.id and m["role"] in {"coowner", "owner"} for m in board["members"])
    }
    assert owned <= co_owned
    assert effect_counts(org) == {"share": len(owned), "team": len(sole), "patch": 1, "reset": 1, "delete": 1}


@pytest.mark.parametrize(
    ("who", "reason"),
    [("guest", "only an internal member"), ("inactive", "deactivated"), ("leaver", "the leaver")],
)
def test_a_successor_who_cannot_take_over_is_refused_before_any_call(
    harness: Harness, who: str, reason: str
) -> None:
    org = harness.org
    people = internal_members(org.emulator)
    leaver = leaver_with_boards(org, people, sole_admin=False)
    candidates = {
        "guest": [m for m in org.emulator.state.all_members if m.role == "organization_team_guest_user"],
        "inactive": [m for m in org.emulator.state.all_members if not m.active and not m.deleted],
        "leaver": [leaver],
    }[who]
    assert candidates, f"the emulated org has no {who}"
    successor = candidates[0]
    # by member id, so the message model's own "successor is the leaver" check does not answer first
    harness.send(action="suspend", memberId=leaver.id, successor=successor.email, requestId="r-1")
    harness.drain()
    record = harness.record("r-1")
    assert record.outcome == "refused"
    assert reason in (record.outcome_reason or "")
    assert effect_counts(org) == {"share": 0, "team": 0, "patch": 0, "reset": 0, "delete": 0}
    assert org.member(leaver.email)["active"] is True


class CrashAfterUpdates(ActionsRepository):
    """The real repository; the invocation dies right after its nth update has been stored."""

    def __init__(self, inner: ActionsRepository, crash_after: int) -> None:
        super().__init__(inner._table)
        self.left = crash_after

    def update(self, *args: Any, **kwargs: Any) -> ActionRecord:
        stored = super().update(*args, **kwargs)
        self.left -= 1
        if self.left == 0:
            raise InvocationCrashError(f"died after update {self.left}")
        return stored


class InvocationCrashError(Exception):
    pass


def crashing_worker(harness: Harness, crash_after: int) -> Any:
    """The function's own worker (built by its handler module from its environment), with the actions
    table wrapped so that the invocation dies between two steps."""
    from miro_sync.settings.offboarding import OffboardingSettings

    app = load_function_app("offboarding")
    settings = OffboardingSettings.from_env(harness.env)
    worker = app.build_worker.__wrapped__(settings)
    wrapped = CrashAfterUpdates(worker._actions, crash_after)
    worker._actions = wrapped
    worker._recorder._actions = wrapped
    worker._refusals._actions = wrapped
    return app, worker


@pytest.mark.parametrize("crash_after", [1, 2, 3, 4, 5])
def test_a_crash_between_two_steps_resumes_without_a_second_effect(
    harness: Harness, crash_after: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    org = harness.org
    people = internal_members(org.emulator)
    leaver = leaver_with_boards(org, people, sole_admin=True)
    sole = org.emulator.state.teams_with_sole_admin(leaver)
    successor = next(p for p in people if p.id != leaver.id)
    owned = {board["id"] for board in org.boards_owned_by(leaver.id)}
    harness.send(action="delete", email=leaver.email, successor=successor.email, requestId="c-1")

    # the first delivery runs in an invocation that dies after `crash_after` writes of the record, in
    # the function's environment (as the local stack's invoke sets it)
    for name, value in harness.env.items():
        monkeypatch.setenv(name, value)
    app, worker = crashing_worker(harness, crash_after)
    queue_arn = harness.sqs.get_queue_attributes(
        QueueUrl=harness.stack.queue_url, AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    messages = harness.sqs.receive_message(
        QueueUrl=harness.stack.queue_url, AttributeNames=["All"], MessageAttributeNames=["All"]
    )["Messages"]
    event = sqs_event(messages, queue_arn, "us-east-1")
    context = LocalLambdaContext(function_name=FUNCTION, memory_limit_in_mb=256, timeout_s=30)
    app.deadline.bind(context.get_remaining_time_in_millis)
    try:
        response = app.process_event(event, context, worker)
    finally:
        app.deadline.unbind()
    assert response["batchItemFailures"], "the crashed delivery must come back"
    harness.sqs.change_message_visibility(
        QueueUrl=harness.stack.queue_url, ReceiptHandle=messages[0]["ReceiptHandle"], VisibilityTimeout=0
    )

    harness.drain()  # redelivered to the function as deployed

    record = harness.record("c-1")
    assert record.outcome == "done", record.outcome_reason
    assert effect_counts(org) == {"share": len(owned), "team": len(sole), "patch": 1, "reset": 1, "delete": 1}
    assert [step.kind for step in record.steps] == [
        "hand_over_boards",
        "promote_successor",
        "deactivate",
        "read_back",
        "reset_sessions",
        "delete",
    ]
