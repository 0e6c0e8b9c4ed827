"""`miro-sync offboard` with a successor: the option and the CSV column go through the worker's message
model (a CSV is all or nothing), the plan shows each request's steps and what the successor takes over
(read from Miro through a fake directory handed in), and `status` shows the recorded steps. Everything
from input, the tables or Miro is shown as it is, never read as rich markup."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from miro_sync.miro.errors import MiroError
from miro_sync.miro.models import Board, BoardsPage, TeamMember, TeamMembersPage, UserRef
from miro_sync.store.actions import ActionRecord, StepRecord
from miro_sync.store.members import MemberRecord, TeamMembership
from miro_sync_cli.offboard.input import InputError, PlannedRequest, build_requests
from miro_sync_cli.offboard.plan import plan_details, render_plan
from miro_sync_cli.offboard.records import describe_record_steps
from miro_sync_cli.offboard_cmd import app

SUBMISSION = "20250303T090000Z-00000001"


def plan(
    action: str,
    *emails: str,
    tmp_path: Path,
    csv_text: str | None = None,
    successor: str | None = None,
    dry_run: bool = False,
) -> list[PlannedRequest]:
    csv_file = None
    if csv_text is not None:
        csv_file = tmp_path / "leavers.csv"
        csv_file.write_text(csv_text, encoding="utf-8")
    return build_requests(
        action,
        list(emails),
        csv_file,
        reason="left",
        requested_by="op@example.com",
        not_before=None,
        dry_run=dry_run,
        submission=SUBMISSION,
        successor=successor,
    )


# ---------------------------------------------------------------- the option and the CSV column


def test_the_option_is_the_successor_of_every_request_and_goes_in_the_body(tmp_path: Path) -> None:
    planned = plan(
        "delete", "ann@example.com", "bob@example.com", tmp_path=tmp_path, successor="Eve@Example.com"
    )
    assert [item.request.successor for item in planned] == ["eve@example.com"] * 2
    assert [json.loads(item.request.to_body())["successor"] for item in planned] == ["eve@example.com"] * 2


def test_without_a_successor_the_body_has_none(tmp_path: Path) -> None:
    [item] = plan("suspend", "ann@example.com", tmp_path=tmp_path)
    assert "successor" not in json.loads(item.request.to_body())


def test_a_rows_own_successor_wins_over_the_option(tmp_path: Path) -> None:
    csv_text = "email,successor\nann@example.com,dan@example.com\nbob@example.com,\n"
    planned = plan("suspend", tmp_path=tmp_path, csv_text=csv_text, successor="eve@example.com")
    assert [item.request.successor for item in planned] == ["dan@example.com", "eve@example.com"]


def test_the_csv_column_alone_sets_the_successor_per_row(tmp_path: Path) -> None:
    csv_text = "email,successor\nann@example.com,dan@example.com\nbob@example.com,\n"
    planned = plan("delete", tmp_path=tmp_path, csv_text=csv_text)
    assert [item.request.successor for item in planned] == ["dan@example.com", None]


def test_a_successor_who_is_the_leaver_refuses_the_whole_file_naming_the_row(tmp_path: Path) -> None:
    csv_text = "email,successor\nann@example.com,dan@example.com\nbob@example.com,BOB@example.com\n"
    with pytest.raises(InputError) as refused:
        plan("delete", tmp_path=tmp_path, csv_text=csv_text)
    message = str(refused.value)
    assert "nothing was enqueued" in message
    assert "leavers.csv line 3" in message
    assert "is the leaver" in message
    assert "line 2" not in message


def test_the_option_naming_a_leaver_is_refused_for_that_leaver(tmp_path: Path) -> None:
    with pytest.raises(InputError) as refused:
        plan("suspend", "ann@example.com", tmp_path=tmp_path, successor="ann@example.com")
    assert "argument 1" in str(refused.value)
    assert "is the leaver" in str(refused.value)


def test_a_successor_on_reactivate_is_refused_naming_the_row(tmp_path: Path) -> None:
    csv_text = "email,successor\nann@example.com,\nbob@example.com,dan@example.com\n"
    with pytest.raises(InputError) as refused:
        plan("reactivate", tmp_path=tmp_path, csv_text=csv_text)
    message = str(refused.value)
    assert "leavers.csv line 3" in message
    assert "only goes with suspend or delete" in message
    assert "line 2" not in message


def test_a_malformed_successor_is_refused_naming_the_row(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"leavers.csv line 2: successor"):
        plan("delete", tmp_path=tmp_path, csv_text="email,successor\nann@example.com,not-an-email\n")


def test_a_successor_offboarded_in_the_same_run_is_refused(tmp_path: Path) -> None:
    csv_text = "email,successor\nann@example.com,bob@example.com\nbob@example.com,dan@example.com\n"
    with pytest.raises(InputError) as refused:
        plan("suspend", tmp_path=tmp_path, csv_text=csv_text)
    message = str(refused.value)
    assert "leavers.csv line 2: successor bob@example.com is offboarded by this command too" in message
    assert "line 3" not in message


def test_one_leaver_with_two_successors_is_refused(tmp_path: Path) -> None:
    csv_text = (
        "email,successor,notBefore\n"
        "ann@example.com,dan@example.com,\n"
        "ann@example.com,eve@example.com,2025-03-10T00:00:00Z\n"
    )
    with pytest.raises(InputError, match=r"ann@example\.com is given different successors"):
        build_requests(
            "delete",
            [],
            _write(tmp_path, csv_text),
            reason="left",
            requested_by="op",
            not_before=None,
            dry_run=False,
            submission=SUBMISSION,
            now=datetime(2025, 3, 3, 9, 0, tzinfo=UTC),
        )


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "leavers.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_successor_is_part_of_what_the_worker_compares_under_one_id(tmp_path: Path) -> None:
    [without] = plan("delete", "ann@example.com", tmp_path=tmp_path)
    [with_one] = plan("delete", "ann@example.com", tmp_path=tmp_path, successor="eve@example.com")
    # a reused explicit id carrying another successor is a conflict to the worker, never a duplicate
    assert with_one.request.fingerprint != without.request.fingerprint
    assert with_one.request.derived_request_id != without.request.derived_request_id


def test_one_leaver_with_and_without_a_successor_in_one_run_is_refused(tmp_path: Path) -> None:
    csv_text = "email,successor\nann@example.com,dan@example.com\nann@example.com,\n"
    with pytest.raises(InputError, match=r"different successors \(dan@example.com, none\)"):
        plan("delete", tmp_path=tmp_path, csv_text=csv_text)


def test_reactivate_has_no_successor_or_token_option() -> None:
    result = CliRunner().invoke(
        app,
        ["reactivate", "ann@example.com", "--reason", "back", "--successor", "eve@example.com"],
        env={"OFFBOARDING_QUEUE_URL": "q", "MEMBERS_TABLE": "m"},
    )
    assert result.exit_code == 2
    assert "No such option" in result.output
    for action in ("suspend", "delete"):
        help_text = CliRunner().invoke(app, [action, "--help"], env={"COLUMNS": "200"}).output
        assert "--successor" in help_text
        assert "--token" in help_text
    reactivate_help = CliRunner().invoke(app, ["reactivate", "--help"], env={"COLUMNS": "200"}).output
    assert "--successor" not in reactivate_help
    assert "--token" not in reactivate_help


# ---------------------------------------------------------------- the plan


def member(
    member_id: str,
    email: str,
    *,
    boards: int = 0,
    admin_of: Iterable[tuple[str, str]] = (),
    status: str = "active",
) -> MemberRecord:
    return MemberRecord(
        member_id=member_id,
        email=email,
        role="organization_internal_user",
        license="full",
        active=status == "active",
        status=status,
        boards_owned=boards,
        team_memberships=tuple(TeamMembership(id=i, name=n, role="admin") for i, n in admin_of),
    )


class FakeMembers:
    def __init__(self, *records: MemberRecord) -> None:
        self.records = {record.member_id: record for record in records}

    def get(self, member_id: str) -> MemberRecord | None:
        return self.records.get(member_id)

    def find_by_email(self, email: str) -> MemberRecord | None:
        return next((r for r in self.records.values() if r.email == email), None)


class FakeDirectory:
    """Boards per owner and admins per team, as Miro would list them; counts the calls."""

    def __init__(
        self, boards: dict[str, list[Board]], admins: dict[str, list[str]], fail: MiroError | None = None
    ) -> None:
        self.boards = boards
        self.admins = admins
        self.fail = fail
        self.board_calls: list[str | None] = []
        self.team_calls: list[str] = []

    def iter_board_pages(self, owner: str | None = None) -> Iterator[BoardsPage]:
        self.board_calls.append(owner)
        if self.fail is not None:
            raise self.fail
        yield BoardsPage(data=self.boards.get(owner or "", []))

    def iter_team_member_pages(
        self, team_id: str, cursor: str | None = None, limit: int = 100, role: str | None = None
    ) -> Iterator[TeamMembersPage]:
        self.team_calls.append(team_id)
        yield TeamMembersPage(data=[TeamMember(id=i, role="admin") for i in self.admins.get(team_id, [])])


def boards_of(owner: str, count: int, name: str = "Board") -> list[Board]:
    return [Board(id=f"b{owner}-{n}=", name=f"{name} {n}", owner=UserRef(id=owner)) for n in range(count)]


def shown(renderable: Any) -> str:
    console = Console(record=True, width=250, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


ANN = member("100", "ann@example.com", boards=12, admin_of=[("t1", "Design"), ("t2", "Sales")])
EVE = member("300", "eve@example.com")


def test_the_plan_lists_steps_successor_boards_and_last_admin_teams(tmp_path: Path) -> None:
    planned = plan("delete", "ann@example.com", tmp_path=tmp_path, successor="eve@example.com")
    directory = FakeDirectory({"100": boards_of("100", 12)}, {"t1": ["100"], "t2": ["100", "200"]})
    text = shown(render_plan(planned, FakeMembers(ANN, EVE), directory))
    assert (
        "steps: 1. hand_over_boards, 2. promote_successor, 3. deactivate, 4. read_back, 5. reset_sessions, "
        "6. delete (reset_sessions unless the stack turns it off)"
    ) in text
    assert "successor: eve@example.com (organization_internal_user, full, active)" in text
    assert "boards to hand over: 12" in text
    for n in range(10):
        assert f"Board {n} (b100-{n}=)" in text
    assert "Board 10" not in text
    assert "and 2 more" in text
    assert "last admin of: Design (t1): the successor is made admin there first" in text
    assert "Sales" not in text.split("last admin of:")[1]  # another admin is there
    assert directory.board_calls == ["100"]
    assert directory.team_calls == ["t1", "t2"]
    assert "will be refused" not in text


def test_a_delete_without_successor_of_the_last_admin_says_the_worker_refuses_it(tmp_path: Path) -> None:
    planned = plan("delete", "ann@example.com", tmp_path=tmp_path)
    directory = FakeDirectory({}, {"t1": ["100"], "t2": ["100"]})
    text = " ".join(shown(render_plan(planned, FakeMembers(ANN), directory)).split())
    assert "✗ the worker will refuse this delete: last admin of Design (t1), Sales (t2)" in text
    assert "give --successor EMAIL" in text
    assert "1 delete(s) will be refused by the worker" in text
    assert "steps: 1. deactivate, 2. read_back, 3. reset_sessions, 4. delete" in text
    assert "boards owned: 12 (Members table; no successor: not handed over)" in text
    assert directory.board_calls == []  # nothing to hand over: no board listing
    [detail] = plan_details(planned, FakeMembers(ANN), directory)
    assert detail.refused_delete


def test_a_suspend_checks_no_team_and_reads_boards_only_with_a_successor(tmp_path: Path) -> None:
    directory = FakeDirectory({"100": boards_of("100", 2)}, {"t1": ["100"]})
    bare = plan("suspend", "ann@example.com", tmp_path=tmp_path)
    text = shown(render_plan(bare, FakeMembers(ANN), directory))
    assert "steps: 1. deactivate, 2. read_back, 3. reset_sessions" in text
    assert "successor: none: boards are not handed over" in text
    assert directory.board_calls == []
    assert directory.team_calls == []
    handed = plan("suspend", "ann@example.com", tmp_path=tmp_path, successor="eve@example.com")
    text = shown(render_plan(handed, FakeMembers(ANN, EVE), directory))
    assert "steps: 1. hand_over_boards, 2. deactivate, 3. read_back, 4. reset_sessions" in text
    assert "boards to hand over: 2" in text
    assert "10 more board(s) owned but not visible to the token" in text
    assert "last admin" not in text
    assert directory.team_calls == []


def test_without_a_token_the_plan_shows_the_members_tables_count_and_the_hint(tmp_path: Path) -> None:
    planned = plan("delete", "ann@example.com", tmp_path=tmp_path, successor="eve@example.com")
    text = " ".join(shown(render_plan(planned, FakeMembers(ANN, EVE))).split())
    assert "boards owned: 12 (Members table) (give --token to list the boards and check team admins)" in text
    assert "admin of team(s) Design (t1), Sales (t2): if they are the last admin there" in text
    assert "reset_sessions unless the stack turns it off" in text


def test_a_reactivate_plan_has_its_two_steps_and_no_successor_line(tmp_path: Path) -> None:
    planned = plan("reactivate", "ann@example.com", tmp_path=tmp_path)
    text = shown(render_plan(planned, FakeMembers(ANN)))
    assert "steps: 1. reactivate, 2. read_back" in text
    assert "successor:" not in text
    assert "reset_sessions" not in text


def test_an_unknown_or_inactive_successor_is_flagged(tmp_path: Path) -> None:
    planned = plan("suspend", "ann@example.com", tmp_path=tmp_path, successor="zed@example.com")
    assert "not in the Members table" in shown(render_plan(planned, FakeMembers(ANN)))
    gone = member("400", "zed@example.com", status="suspended")
    assert "not active: the worker refuses this successor" in shown(
        render_plan(planned, FakeMembers(ANN, gone))
    )


def test_a_member_id_leaver_whose_email_is_the_successor_is_flagged(tmp_path: Path) -> None:
    csv_text = "memberId,successor\n100,ann@example.com\n"
    planned = plan("suspend", tmp_path=tmp_path, csv_text=csv_text)
    assert "is the leaver: the worker refuses this request" in shown(render_plan(planned, FakeMembers(ANN)))


def test_a_miro_error_is_shown_with_its_request_and_the_plan_goes_on(tmp_path: Path) -> None:
    planned = plan("delete", "ann@example.com", tmp_path=tmp_path, successor="eve@example.com")
    directory = FakeDirectory({}, {}, fail=MiroError("403 insufficient scope [boards:read]"))
    text = shown(render_plan(planned, FakeMembers(ANN, EVE), directory))
    assert "could not read Miro: 403 insufficient scope [boards:read]" in text


def test_markup_like_names_from_miro_and_the_tables_are_shown_as_they_are(tmp_path: Path) -> None:
    hostile = member("100", "ann@example.com", boards=1, admin_of=[("t[/x]", "[bold]Team[/red]")])
    planned = plan("delete", "ann@example.com", tmp_path=tmp_path)
    directory = FakeDirectory({}, {"t[/x]": ["100"]})
    text = shown(render_plan(planned, FakeMembers(hostile), directory))
    assert "[bold]Team[/red] (t[/x])" in text
    planned = plan("delete", "ann@example.com", tmp_path=tmp_path, successor="eve@example.com")
    directory = FakeDirectory({"100": boards_of("100", 1, name="[/b]Plan\\")}, {})
    assert "[/b]Plan\\ 0 (b100-0=)" in shown(render_plan(planned, FakeMembers(hostile, EVE), directory))


def test_the_report_commands_hint_replaces_the_token_one(tmp_path: Path) -> None:
    planned = plan("delete", "ann@example.com", tmp_path=tmp_path)
    text = shown(render_plan(planned, FakeMembers(ANN), lookup_hint="(ask the other command)"))
    assert "(ask the other command)" in text
    assert "--token" not in text.split("Offboarding plan")[1].split("\n", 2)[2]


# ---------------------------------------------------------------- status


def action_record(
    outcome: str, steps: list[StepRecord], *, action: str = "delete", **extra: Any
) -> ActionRecord:
    return ActionRecord.model_validate(
        {
            "requestId": "r-1",
            "action": action,
            "memberKey": "ann@example.com",
            "requestedBy": "op",
            "reason": "left",
            "outcome": outcome,
            "createdAt": "2025-03-03T09:00:00.000Z",
            "updatedAt": "2025-03-03T09:00:00.000Z",
            "body": "{}",
            "steps": [step.model_dump(by_alias=True) for step in steps],
            **extra,
        }
    )


def step(kind: str, status: str = "done", count: int | None = None) -> StepRecord:
    return StepRecord.model_validate(
        {"kind": kind, "status": status, "at": "2025-03-03T09:00:00Z", "count": count}
    )


def test_status_lists_recorded_steps_with_counts_and_then_the_pending_ones() -> None:
    record = action_record(
        "failed",
        [step("hand_over_boards", count=12), step("promote_successor", "skipped")],
        successor="eve@example.com",
    )
    assert describe_record_steps(record) == (
        "hand_over_boards ✓ 12, promote_successor skipped, "
        "deactivate …, read_back …, reset_sessions …, delete …"
    )


def test_status_of_a_finished_request_lists_only_what_was_done() -> None:
    record = action_record(
        "done",
        [step("deactivate"), step("read_back"), step("reset_sessions", "partly")],
        action="suspend",
    )
    assert describe_record_steps(record) == "deactivate ✓, read_back ✓, reset_sessions partly"
    assert describe_record_steps(action_record("refused", [])) == "-"
    assert describe_record_steps(action_record("refused", [], action="invalid")) == "-"


def test_status_of_a_dry_run_lists_its_planned_steps() -> None:
    record = action_record("dry-run", [], action="suspend", successor="eve@example.com")
    assert describe_record_steps(record) == "planned: hand_over_boards, deactivate, read_back, reset_sessions"


def test_the_status_table_shows_successor_and_steps_escaped(monkeypatch: pytest.MonkeyPatch) -> None:
    from miro_sync_cli import offboard_cmd

    record = action_record(
        "received", [step("hand_over_boards", count=3)], successor="eve@example.com", warning="[/red]"
    )

    class Repository:
        def by_member(self, member_key: str) -> list[ActionRecord]:
            return [record]

    monkeypatch.setattr(offboard_cmd, "_actions", lambda table: Repository())
    result = CliRunner().invoke(app, ["status", "--member", "ann@example.com"], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert "eve@example.com" in result.output
    assert (
        "hand_over_boards ✓ 3, promote_successor …, deactivate …, read_back …, reset_sessions …, delete …"
        in result.output
    )
    assert "[/red]" in result.output
