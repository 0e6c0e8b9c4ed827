"""Every SQS record has its own fate: whatever one body holds, it is refused on its own (recorded, copied
once to the DLQ, acknowledged) and never fails the batch or another record. Driven through the real
handler code (`process_event`: Powertools' BatchProcessor and the record handler) with fakes."""

from __future__ import annotations

import json
from datetime import timedelta
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from miro_sync.miro.errors import MiroDeadlineExceeded
from miro_sync.offboarding.errors import InvalidRequestError
from miro_sync.offboarding.messages import MAX_NOT_BEFORE_AHEAD, parse_request
from tests.fixtures.functions import load_function_app
from tests.unit.offboarding.fakes import (
    FakeLambdaContext,
    FakeMemberRecord,
    FakeMembers,
    FakeMiro,
    OrgPerson,
    TableWriteError,
    World,
    offboarding_settings,
)

SENDER = "AROAEXAMPLE:ops-automation"


@pytest.fixture(scope="module")
def app() -> ModuleType:
    return load_function_app("offboarding")


def people(count: int) -> list[OrgPerson]:
    return [OrgPerson(f"m{n}", f"user{n}@example.com", scim_id=f"s{n}") for n in range(count)]


def world_of(count: int) -> World:
    org = people(count)
    return World(
        miro=FakeMiro(org),
        members=FakeMembers([FakeMemberRecord(p.member_id, p.email, p.scim_id, p.boards) for p in org]),
    )


def request_body(n: int, action: str = "suspend", **fields: Any) -> str:
    message = {
        "action": action,
        "email": f"user{n}@example.com",
        "requestedBy": "it-ops@example.com",
        "reason": "left the company",
        "requestId": f"r-{n}",
        **fields,
    }
    return json.dumps(message)


def sqs_event(bodies: list[str], *, receive_count: int = 1) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": f"msg-{index}",
                "receiptHandle": f"handle-{index}",
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": str(receive_count),
                    "SentTimestamp": "1740992400000",
                    "SenderId": SENDER,
                    "ApproximateFirstReceiveTimestamp": "1740992400001",
                },
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:offboarding",
                "awsRegion": "eu-west-1",
            }
            for index, body in enumerate(bodies)
        ]
    }


def failed_ids(response: dict[str, Any]) -> set[str]:
    return {failure["itemIdentifier"] for failure in response["batchItemFailures"]}


# --- the bodies that used to take a batch down -------------------------------------------------------

OUT_OF_RANGE = [
    "9999-12-31T23:00:00-05:00",  # past datetime.max once moved to UTC
    "0001-01-01T00:30:00+01:00",  # before datetime.min once moved to UTC
]


@pytest.mark.parametrize("not_before", OUT_OF_RANGE)
def test_an_out_of_range_not_before_is_refused_alone_and_the_good_requests_run(
    app: ModuleType, not_before: str
) -> None:
    world = world_of(3)
    hostile = request_body(9, "delete", notBefore=not_before)
    event = sqs_event([request_body(0), hostile, request_body(1)])
    response = app.process_event(event, FakeLambdaContext(), world.worker())
    assert response == {"batchItemFailures": []}
    assert world.actions.items["r-0"].outcome == "done"
    assert world.actions.items["r-1"].outcome == "done"
    refused = [r for r in world.actions.items.values() if r.outcome == "refused"]
    assert len(refused) == 1
    assert "notBefore" in (refused[0].outcome_reason or "")
    assert [letter.body for letter in world.dead_letters.sent] == [hostile]


@pytest.mark.parametrize(
    ("hostile", "why"),
    [
        ("[" * 50_000, "characters; at most"),
        ("[" * 5_000 + "]" * 5_000, "nested too deeply"),
        (
            '{"action": "suspend", "email": "a@example.com", "requestedBy": "\\ud800", "reason": "x"}',
            "unicode string",
        ),
        ("\udcff\udcfe", "not valid UTF-8"),
        (
            '{"action": "suspend", "email": "a@example.com", "requestedBy": "x", "reason": "x", '
            '"notBefore": 20250301}',
            "ISO-8601 string",
        ),
        (
            '{"action": "suspend", "email": "a@example.com", "requestedBy": "x", "reason": "x", '
            '"notBefore": "20250301"}',
            "explicit offset",
        ),
        (
            '{"action": "suspend", "email": "a@example.com", "requestedBy": "x", "reason": "x", '
            '"notBefore": 1e400}',
            "ISO-8601 string",
        ),
        ('{"action": ["suspend"], "email": {"a": 1}, "requestedBy": null, "reason": 7}', "action"),
    ],
)
def test_a_hostile_body_is_refused_for_good_with_its_reason(app: ModuleType, hostile: str, why: str) -> None:
    world = world_of(2)
    response = app.process_event(sqs_event([hostile, request_body(0)]), FakeLambdaContext(), world.worker())
    assert response == {"batchItemFailures": []}
    assert world.actions.items["r-0"].outcome == "done"
    refused = [r for r in world.actions.items.values() if r.outcome == "refused"]
    assert len(refused) == 1
    assert why in (refused[0].outcome_reason or "")
    assert len(world.dead_letters.sent) == 1


def test_a_not_before_more_than_a_year_ahead_is_refused(app: ModuleType) -> None:
    world = world_of(1)
    far = (world.clock.now + timedelta(days=400)).isoformat()
    result = world.worker().handle_message(request_body(0, "delete", notBefore=far))
    assert result.outcome == "refused"
    assert "more than 366 days ahead" in (result.reason or "")
    assert world.miro.writes == []
    assert world.queue.sent == []


def test_an_unexpected_error_is_retried_then_refused_for_good_on_its_own(app: ModuleType) -> None:
    world = world_of(2)
    original_update = world.actions.update
    broken = {"r-0"}

    def update(request_id: str, **kwargs: Any) -> Any:
        if request_id in broken:
            raise TableWriteError("ValidationException: something only this record triggers")
        return original_update(request_id, **kwargs)

    world.actions.update = update  # type: ignore[method-assign]
    worker = world.worker()
    first = app.process_event(sqs_event([request_body(0), request_body(1)]), FakeLambdaContext(), worker)
    assert failed_ids(first) == {"msg-0"}  # retried: a throttled table would recover
    assert world.actions.items["r-1"].outcome == "done"
    assert world.dead_letters.sent == []
    third = app.process_event(sqs_event([request_body(0)], receive_count=3), FakeLambdaContext(), worker)
    assert third == {"batchItemFailures": []}  # on the third delivery it ends, recorded
    refused = [r for r in world.actions.items.values() if r.request_id.startswith("error-")]
    assert len(refused) == 1
    assert refused[0].outcome == "refused"
    assert "TableWriteError" in (refused[0].outcome_reason or "")
    assert refused[0].email == "user0@example.com"  # `offboard status --member` finds it
    assert len(world.dead_letters.sent) == 1


def test_the_sender_and_the_send_time_are_recorded(app: ModuleType) -> None:
    world = world_of(1)
    app.process_event(sqs_event([request_body(0)]), FakeLambdaContext(), world.worker())
    record = world.actions.items["r-0"]
    assert record.sender_id == SENDER
    assert record.requested_at == "2025-03-03T09:00:00.000Z"


def test_a_record_that_runs_out_of_time_is_retried_and_the_others_are_not(app: ModuleType) -> None:
    world = world_of(2)
    world.miro.fail("set_active", MiroDeadlineExceeded("2.0 s left in this invocation"))
    response = app.process_event(
        sqs_event([request_body(0), request_body(1)]), FakeLambdaContext(), world.worker()
    )
    assert failed_ids(response) == {"msg-0"}
    assert world.actions.items["r-0"].outcome == "failed"
    assert world.actions.items["r-1"].outcome == "done"


# --- the property ------------------------------------------------------------------------------------

_BASE = {"action": "suspend", "email": "someone@example.com", "requestedBy": "x", "reason": "y"}
_odd_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30).filter(lambda text: "@" not in text),  # never a valid email by accident
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
_bad_instants = st.one_of(
    st.sampled_from([*OUT_OF_RANGE, "20250301", "2025-03-01", "2025-03-01T10:00:00", "tomorrow", ""]),
    st.integers(min_value=0, max_value=10**12),
    # instants that leave datetime's range once moved to UTC
    st.integers(min_value=1, max_value=23).map(lambda hours: f"0001-01-01T00:00:00+{hours:02d}:00"),
    st.integers(min_value=1, max_value=23).map(lambda hours: f"9999-12-31T23:59:59-{hours:02d}:00"),
)
hostile_bodies = st.one_of(
    st.text(max_size=200),
    st.integers(min_value=100, max_value=20_000).map(lambda depth: "[" * depth + "]" * depth),
    st.integers(min_value=16_385, max_value=40_000).map(lambda size: "x" * size),
    st.sampled_from(["\ud800", '{"reason": "\\udfff"}', "null", "[]", '"text"', "{}"]),
    st.builds(
        lambda key, value: json.dumps({**_BASE, key: value}), st.sampled_from(sorted(_BASE)), _odd_values
    ).filter(lambda body: json.loads(body) != _BASE),
    _bad_instants.map(lambda when: json.dumps({**_BASE, "notBefore": when})),
    _bad_instants.map(lambda when: json.dumps({**_BASE, "inactiveSince": when})),
    st.sampled_from(["yes", "no", "1", 0, "false", None]).map(
        lambda flag: json.dumps({**_BASE, "dryRun": flag})
    ),
    st.text(min_size=1, max_size=8)
    .filter(lambda key: key not in _BASE)
    .map(lambda key: json.dumps({**_BASE, key: 1})),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    valid=st.integers(min_value=0, max_value=5),
    hostile=st.lists(hostile_bodies, min_size=1, max_size=5),
    seed=st.randoms(use_true_random=False),
)
def test_valid_requests_have_one_effect_and_hostile_bodies_one_refusal(
    app: ModuleType, valid: int, hostile: list[str], seed: Any
) -> None:
    world = world_of(6)
    bodies = [request_body(n) for n in range(valid)] + hostile
    seed.shuffle(bodies)
    assert len(bodies) <= 10  # one SQS batch

    response = app.process_event(sqs_event(bodies), FakeLambdaContext(), world.worker())

    assert response == {"batchItemFailures": []}
    assert sorted(world.miro.writes) == sorted(f"active=False:s{n}" for n in range(valid))
    for n in range(valid):
        assert world.actions.items[f"r-{n}"].outcome == "done"
    # A generated body may, rarely, be a well-formed request (for nobody in the org): it is then refused
    # by the guards, under its own id, and not dead-lettered. Every other one is refused as invalid.
    invalid: set[str] = set()
    for body in hostile:
        try:
            request = parse_request(body)
            if request.not_before is not None and request.not_before - world.clock.now > MAX_NOT_BEFORE_AHEAD:
                raise InvalidRequestError("too far ahead", body)
        except InvalidRequestError as error:
            invalid.add(error.request_id)
            continue
        # for nobody in the org: refused by the guards, or waiting for its notBefore
        assert world.actions.items[request.key].outcome in {"refused", "pending"}
    refused_invalid = {r.request_id for r in world.actions.items.values() if r.action == "invalid"}
    assert refused_invalid == invalid
    assert all(world.actions.items[key].outcome == "refused" for key in invalid)
    assert sorted(letter.request_id for letter in world.dead_letters.sent) == sorted(invalid)


def test_guard_policy_from_a_bad_protected_list_fails_closed(app: ModuleType) -> None:
    policy = app.guard_policy(offboarding_settings(PROTECTED_EMAILS="ceo@example.com; cfo"))
    assert policy.protected_emails == frozenset()
    assert "'cfo'" in (policy.configuration_error or "")


def test_guard_policy_from_a_good_protected_list(app: ModuleType) -> None:
    policy = app.guard_policy(offboarding_settings(PROTECTED_EMAILS="CEO@example.com; cfo@example.com"))
    assert policy.protected_emails == frozenset({"ceo@example.com", "cfo@example.com"})
    assert policy.configuration_error is None


def test_guard_policy_carries_the_default_successor_and_the_session_reset(app: ModuleType) -> None:
    policy = app.guard_policy(
        offboarding_settings(DEFAULT_SUCCESSOR=" Lead@Example.com ", RESET_SESSIONS="false")
    )
    assert policy.default_successor == "lead@example.com"
    assert policy.reset_sessions is False
    assert policy.configuration_error is None
    assert app.guard_policy(offboarding_settings()).reset_sessions is True


def test_guard_policy_from_a_bad_default_successor_fails_closed(app: ModuleType) -> None:
    policy = app.guard_policy(offboarding_settings(DEFAULT_SUCCESSOR="lead@example.com, cfo@example.com"))
    assert policy.default_successor is None
    assert "DEFAULT_SUCCESSOR" in (policy.configuration_error or "")


def test_reset_sessions_takes_only_true_or_false() -> None:
    with pytest.raises(ValueError, match="RESET_SESSIONS"):
        offboarding_settings(RESET_SESSIONS="yes")


def test_a_throttled_table_is_retried_however_often_it_comes_back(app: ModuleType) -> None:
    from botocore.exceptions import ClientError

    world = world_of(1)
    throttled = ClientError(
        {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}}, "PutItem"
    )

    def create(record: Any) -> bool:
        raise throttled

    world.actions.create = create  # type: ignore[method-assign]
    response = app.process_event(
        sqs_event([request_body(0)], receive_count=7), FakeLambdaContext(), world.worker()
    )
    assert failed_ids(response) == {"msg-0"}  # never refused for good: the table will answer again
    assert world.dead_letters.sent == []
