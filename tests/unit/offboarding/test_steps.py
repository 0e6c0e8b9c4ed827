"""Offboarding that finishes the job: boards handed to a successor, team admins promoted, sessions
reset - each step recorded with Miro's answer, resumed after a crash without a second effect."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.unit.offboarding.fakes import (
    FakeMemberRecord,
    FakeTeamRole,
    InvocationCrashError,
    OrgPerson,
    World,
    make_world,
)

LEAVER = "ann@example.com"  # m1, owns 3 boards
SUCCESSOR = "bob@example.com"  # m2


def body(action: str = "suspend", email: str = LEAVER, **fields: Any) -> str:
    message = {"action": action, "email": email, "requestedBy": "it@example.com", "reason": "left"}
    message.update(fields)
    return json.dumps(message)


def leaver_is_sole_admin_of_design(world: World) -> None:
    world.miro.teams["t-design"] = {"m1": "admin", "m2": "member", "m6": "member"}
    world.members.records["m1"].team_memberships = (FakeTeamRole("t-design", "Design", "admin"),)


def effects(world: World) -> list[str]:
    return [*world.miro.writes, *(f"reset:{email}" for email in world.miro.sessions_reset)]


def test_a_suspend_with_a_successor_hands_every_board_over_then_deactivates_and_signs_out() -> None:
    world = make_world()
    result = world.worker(reset_sessions=True).handle_message(body(successor=SUCCESSOR, requestId="r1"))
    assert result.outcome == "done"
    boards = [f"bm1-{n}" for n in range(3)]
    assert all(world.miro.board_members[board]["m2"] == "coowner" for board in boards)
    assert world.miro.people["m1"].active is False
    assert world.miro.sessions_reset == [LEAVER]
    # boards first (a deactivated owner's boards stay reachable through the co-owner), sign-out last
    assert effects(world) == [
        *(f"share:{b}:{SUCCESSOR}" for b in boards),
        "active=False:s-ann",
        f"reset:{LEAVER}",
    ]
    record = world.actions.items["r1"]
    assert [step.kind for step in record.steps] == [
        "hand_over_boards",
        "deactivate",
        "read_back",
        "reset_sessions",
    ]
    assert all(step.status == "done" for step in record.steps)
    assert record.step("hand_over_boards").count == 3  # type: ignore[union-attr]
    assert sorted(record.handed_over) == boards
    assert record.successor == SUCCESSOR
    assert [a.operation for a in record.attempts if a.operation.startswith("POST /v2/sessions")] == [
        f"POST /v2/sessions/reset_all?email={LEAVER}"
    ]


def test_sessions_are_not_reset_when_the_stack_turns_it_off() -> None:
    world = make_world()
    assert world.worker(reset_sessions=False).handle_message(body()).outcome == "done"
    assert world.miro.sessions_reset == []


def test_the_default_successor_takes_over_when_the_request_names_none() -> None:
    world = make_world()
    worker = world.worker(default_successor=SUCCESSOR)
    assert worker.handle_message(body(requestId="r1")).outcome == "done"
    assert world.miro.board_members["bm1-0"]["m2"] == "coowner"
    assert world.actions.items["r1"].successor == SUCCESSOR


@pytest.mark.parametrize(
    ("successor", "change", "reason"),
    [
        ("guest@partner.com", None, "only an internal member"),
        ("ext@partner.com", None, "only an internal member"),
        ("gone@example.com", None, "deactivated"),
        ("nobody@example.com", None, "not a member of the Miro organization"),
        ("bob@example.com", "free", "licence"),
    ],
)
def test_a_successor_who_cannot_take_over_is_refused_before_any_call(
    successor: str, change: str | None, reason: str
) -> None:
    world = make_world()
    if change is not None:
        world.miro.people["m2"].license = change
    result = world.worker().handle_message(body("delete", successor=successor, requestId="r1"))
    assert result.outcome == "refused"
    assert reason in (result.reason or "")
    assert effects(world) == []


def test_a_successor_who_is_the_leaver_is_refused_as_the_message_arrives() -> None:
    world = make_world()
    result = world.worker().handle_message(body(successor=LEAVER))
    assert result.outcome == "refused"
    assert "'successor' is the leaver" in (result.reason or "")
    assert effects(world) == []


def test_a_default_successor_who_is_the_leaver_is_refused_before_any_call() -> None:
    world = make_world()
    result = world.worker(default_successor=LEAVER).handle_message(body(requestId="r1"))
    assert result.outcome == "refused"
    assert "is the leaver" in (result.reason or "")
    assert effects(world) == []


def test_deleting_the_last_admin_of_a_team_without_a_successor_is_refused_up_front_naming_the_team() -> None:
    world = make_world()
    leaver_is_sole_admin_of_design(world)
    result = world.worker().handle_message(body("delete", requestId="d1"))
    assert result.outcome == "refused"
    assert "last admin of team(s) Design (t-design)" in (result.reason or "")
    assert effects(world) == []
    assert world.miro.people["m1"].active is True


def test_deleting_the_last_admin_of_a_team_with_a_successor_promotes_the_successor_first() -> None:
    world = make_world()
    leaver_is_sole_admin_of_design(world)
    result = world.worker(reset_sessions=True).handle_message(
        body("delete", successor=SUCCESSOR, requestId="d1")
    )
    assert result.outcome == "done"
    assert world.miro.teams["t-design"]["m2"] == "admin"
    assert "m1" not in world.miro.people
    record = world.actions.items["d1"]
    assert [step.kind for step in record.steps] == [
        "hand_over_boards",
        "promote_successor",
        "deactivate",
        "read_back",
        "reset_sessions",
        "delete",
    ]
    # the promotion comes before any change to the leaver
    assert effects(world).index("team-role:t-design:m2=admin") < effects(world).index("active=False:s-ann")


def test_a_successor_outside_the_team_is_added_to_it_as_admin() -> None:
    world = make_world()
    leaver_is_sole_admin_of_design(world)
    del world.miro.teams["t-design"]["m2"]
    assert world.worker().handle_message(body("delete", successor=SUCCESSOR)).outcome == "done"
    assert world.miro.teams["t-design"]["m2"] == "admin"


def test_a_team_with_another_admin_needs_no_promotion() -> None:
    world = make_world()
    leaver_is_sole_admin_of_design(world)
    world.miro.teams["t-design"]["m6"] = "admin"  # the table is a sync old; Miro says otherwise
    result = world.worker().handle_message(body("delete", requestId="d1"))
    assert result.outcome == "done"
    assert world.miro.teams["t-design"]["m2"] == "member"


def test_boards_the_token_cannot_share_are_reported_and_the_request_is_partial() -> None:
    world = make_world()
    world.miro.hidden_boards.add("bm1-1")
    result = world.worker().handle_message(body(successor=SUCCESSOR, requestId="r1"))
    assert result.outcome == "partial"
    assert "bm1-1" in (result.reason or "")
    record = world.actions.items["r1"]
    step = record.step("hand_over_boards")
    assert step is not None
    assert step.status == "partly"
    assert step.count == 2
    assert world.miro.people["m1"].active is False  # the leaver is still suspended


def test_boards_owned_but_not_listed_are_counted_in_a_warning() -> None:
    world = make_world()
    world.members.records["m1"].boards_owned = 5  # the sync saw 5; the token lists 3
    result = world.worker().handle_message(body(successor=SUCCESSOR, requestId="r1"))
    assert result.outcome == "done"
    warning = world.actions.items["r1"].warning or ""
    assert "2 board(s)" in warning
    assert "Content Admin" in warning


def test_a_dry_run_lists_the_steps_the_boards_and_the_teams_and_changes_nothing() -> None:
    world = make_world()
    leaver_is_sole_admin_of_design(world)
    result = world.worker(reset_sessions=True).handle_message(
        body("delete", successor=SUCCESSOR, dryRun=True)
    )
    assert result.outcome == "dry-run"
    reason = result.reason or ""
    assert "1. hand_over_boards, 2. promote_successor, 3. deactivate" in reason
    assert "3 board(s) to hand over" in reason
    assert "last admin of team(s) Design (t-design)" in reason
    assert effects(world) == []


def _full_delete_world() -> World:
    world = make_world()
    leaver_is_sole_admin_of_design(world)
    return world


def _updates_of_a_full_run() -> int:
    world = _full_delete_world()
    world.worker(reset_sessions=True).handle_message(body("delete", successor=SUCCESSOR, requestId="d1"))
    return sum(1 for trip in world.actions.round_trips if trip.startswith("update"))


@pytest.mark.parametrize("crash_after", range(1, _updates_of_a_full_run()))
def test_a_crash_between_any_two_steps_resumes_without_a_second_effect(crash_after: int) -> None:
    reference = _full_delete_world()
    reference.worker(reset_sessions=True).handle_message(body("delete", successor=SUCCESSOR, requestId="d1"))

    world = _full_delete_world()
    worker = world.worker(reset_sessions=True)
    world.actions.crash_after_updates = crash_after
    with pytest.raises(InvocationCrashError):
        worker.handle_message(body("delete", successor=SUCCESSOR, requestId="d1"))
    result = worker.handle_message(body("delete", successor=SUCCESSOR, requestId="d1"), receive_count=2)

    assert result.outcome == "done"
    assert effects(world) == effects(reference)  # every effect once, in the same order
    assert [s.kind for s in world.actions.items["d1"].steps] == [
        s.kind for s in reference.actions.items["d1"].steps
    ]


@pytest.mark.parametrize("operation", ["share_board", "set_team_role", "set_active", "delete_user"])
def test_a_crash_inside_a_step_after_miro_acted_makes_no_second_effect(operation: str) -> None:
    world = _full_delete_world()
    worker = world.worker()
    world.miro.crash_after(operation)
    with pytest.raises(InvocationCrashError):
        worker.handle_message(body("delete", successor=SUCCESSOR, requestId="d1"))
    result = worker.handle_message(body("delete", successor=SUCCESSOR, requestId="d1"), receive_count=2)
    assert result.outcome == "done"
    assert len(effects(world)) == len(set(effects(world)))
    assert "delete:s-ann" in world.miro.writes
    assert all(world.miro.board_members[f"bm1-{n}"]["m2"] == "coowner" for n in range(3))


def test_a_share_interrupted_mid_chunk_is_confirmed_with_miro_not_repeated() -> None:
    world = make_world()
    world.miro.crash_after("share_board", nth=2)
    worker = world.worker()
    with pytest.raises(InvocationCrashError):
        worker.handle_message(body(successor=SUCCESSOR, requestId="r1"))
    assert worker.handle_message(body(successor=SUCCESSOR, requestId="r1"), receive_count=2).outcome == "done"
    shares = [w for w in world.miro.writes if w.startswith("share:")]
    assert sorted(shares) == [f"share:bm1-{n}:{SUCCESSOR}" for n in range(3)]
    assert world.miro.calls.count("get_board_member") >= 2  # the interrupted chunk was asked about
    step = world.actions.items["r1"].step("hand_over_boards")
    assert step is not None
    assert "by an earlier attempt" in (step.answer or "")


def test_a_reactivate_has_no_successor_steps() -> None:
    world = make_world()
    world.miro.people["m7"].active = False
    world.members.records["m7"] = FakeMemberRecord("m7", "gone@example.com", "s-gone")
    result = world.worker(reset_sessions=True).handle_message(
        body("reactivate", email="gone@example.com", requestId="x")
    )
    assert result.outcome == "done"
    assert [s.kind for s in world.actions.items["x"].steps] == ["reactivate", "read_back"]
    assert world.miro.sessions_reset == []


def test_a_member_with_no_team_data_is_deleted_as_before() -> None:
    world = make_world()
    world.miro.people["m9"] = OrgPerson("m9", "new@example.com", scim_id="s-new")
    result = world.worker().handle_message(body("delete", email="new@example.com"))
    assert result.outcome == "done"


# ---------------------------------------------------------------- answers lost after Miro acted


def _lose_the_answer_of(world: World, operation: str, nth: int, error: Exception) -> None:
    """The nth call of `operation` takes effect in Miro, then its answer is lost (timeout, 5xx)."""
    original = getattr(world.miro, operation)
    calls = {"n": 0}

    def call(*args: Any) -> Any:
        result = original(*args)
        calls["n"] += 1
        if calls["n"] == nth:
            raise error
        return result

    setattr(world.miro, operation, call)


@pytest.mark.parametrize("status", [None, 504])
def test_a_share_whose_answer_was_lost_is_confirmed_with_miro_not_repeated(status: int | None) -> None:
    from miro_sync.miro.errors import MiroUnavailable
    from miro_sync.offboarding.errors import RetryableError

    world = make_world()
    _lose_the_answer_of(world, "share_board", 2, MiroUnavailable("gateway timeout", status=status))
    worker = world.worker()
    with pytest.raises(RetryableError):
        worker.handle_message(body(successor=SUCCESSOR, requestId="r1"))
    result = worker.handle_message(body(successor=SUCCESSOR, requestId="r1"), receive_count=2)
    assert result.outcome == "done"
    shares = [w for w in world.miro.writes if w.startswith("share:")]
    assert sorted(shares) == [f"share:bm1-{n}:{SUCCESSOR}" for n in range(3)]


def test_an_interrupted_share_is_still_confirmed_when_the_first_confirmation_fails() -> None:
    from miro_sync.miro.errors import MiroUnavailable
    from miro_sync.offboarding.errors import RetryableError

    world = make_world()
    world.miro.crash_after("share_board", nth=2)
    worker = world.worker()
    with pytest.raises(InvocationCrashError):
        worker.handle_message(body(successor=SUCCESSOR, requestId="r1"))
    world.miro.fail("get_board_member", MiroUnavailable("down", status=503))
    with pytest.raises(RetryableError):
        worker.handle_message(body(successor=SUCCESSOR, requestId="r1"), receive_count=2)
    assert worker.handle_message(body(successor=SUCCESSOR, requestId="r1"), receive_count=3).outcome == "done"
    shares = [w for w in world.miro.writes if w.startswith("share:")]
    assert sorted(shares) == [f"share:bm1-{n}:{SUCCESSOR}" for n in range(3)]


def test_a_refused_promotion_after_an_earlier_attempts_shares_is_partial_not_nothing_changed() -> None:
    from miro_sync.miro.errors import MiroBadRequest

    world = make_world()
    world.miro.teams["t-design"] = {"m1": "admin", "m6": "member"}  # the successor is not in the team
    world.members.records["m1"].team_memberships = (FakeTeamRole("t-design", "Design", "admin"),)
    world.miro.crash_after("share_board", nth=3)
    worker = world.worker()
    with pytest.raises(InvocationCrashError):
        worker.handle_message(body("delete", successor=SUCCESSOR, requestId="d1"))
    world.miro.fail("add_team_member", MiroBadRequest("cannot add", status=400))
    result = worker.handle_message(body("delete", successor=SUCCESSOR, requestId="d1"), receive_count=2)
    assert result.outcome == "partial"
    assert "nothing was changed" not in (result.reason or "")
    assert world.miro.people["m1"].active is True  # stopped before the deactivation


def test_a_request_keeps_its_successor_when_the_default_changes_between_attempts() -> None:
    from miro_sync.miro.errors import MiroUnavailable
    from miro_sync.offboarding.errors import RetryableError

    world = make_world()
    original = world.miro.share_board
    calls = {"n": 0}

    def share(board_id: str, emails: list[str], role: str) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            raise MiroUnavailable("down", status=503)
        return original(board_id, emails, role)

    world.miro.share_board = share  # type: ignore[method-assign]
    with pytest.raises(RetryableError):
        world.worker(default_successor=SUCCESSOR).handle_message(body(requestId="r1"))
    result = world.worker(default_successor="ceo@example.com").handle_message(
        body(requestId="r1"), receive_count=2
    )
    assert result.outcome == "done"
    assert all(world.miro.board_members[f"bm1-{n}"].get("m2") == "coowner" for n in range(3))
    assert world.actions.items["r1"].successor == SUCCESSOR


def test_a_deactivation_whose_answer_was_lost_makes_a_refused_delete_partial() -> None:
    from miro_sync.miro.errors import MiroUnavailable
    from miro_sync.offboarding.errors import RetryableError

    world = make_world()
    _lose_the_answer_of(world, "set_active", 1, MiroUnavailable("timeout", status=None))
    world.miro.last_team_admin_ids.add("m1")  # the Members table does not know: Miro's 409 answers
    worker = world.worker()
    with pytest.raises(RetryableError):
        worker.handle_message(body("delete", requestId="d1"))
    result = worker.handle_message(body("delete", requestId="d1"), receive_count=2)
    assert result.outcome == "partial"
    assert world.members.records["m1"].status == "suspended"


def test_a_delete_retried_after_the_members_table_failed_records_one_delete_step() -> None:
    world = make_world()
    worker = world.worker()
    world.members.set_status_failures = 1
    with pytest.raises(Exception, match="Members table"):
        worker.handle_message(body("delete", requestId="d1"))
    assert worker.handle_message(body("delete", requestId="d1"), receive_count=2).outcome == "done"
    assert [s.kind for s in world.actions.items["d1"].steps].count("delete") == 1
