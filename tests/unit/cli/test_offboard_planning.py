"""`miro-sync offboard`'s planning (build_requests): everything is checked before anything is sent, and a
CSV with one bad row is refused whole. The clock is handed in."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from miro_sync.offboarding.messages import MAX_NOT_BEFORE_AHEAD, MAX_NOT_BEFORE_BEHIND_CLI
from miro_sync_cli.offboard.input import InputError, PlannedRequest, build_requests

NOW = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


def plan(
    action: str,
    csv_text: str | None = None,
    *emails: str,
    tmp_path: Path,
    not_before: str | None = None,
    dry_run: bool = False,
    now: datetime | None = None,
    inactive_since: datetime | None = None,
) -> list[PlannedRequest]:
    csv_file = None
    if csv_text is not None:
        csv_file = tmp_path / "leavers.csv"
        csv_file.write_text(csv_text, encoding="utf-8")
    extra: dict[str, Any] = {}
    if not_before is not None or now is not None:
        extra["now"] = now or NOW  # the clock matters only to notBefore
    if inactive_since is not None:
        extra["inactive_since"] = inactive_since
    return build_requests(
        action,
        list(emails),
        csv_file,
        reason="left",
        requested_by="op@example.com",
        not_before=not_before,
        dry_run=dry_run,
        submission="20250303T090000Z-00000001",
        **extra,
    )


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


# ---------------------------------------------------------------- 1. the command names the action


def test_a_row_naming_another_action_refuses_the_whole_file(tmp_path: Path) -> None:
    csv_text = "email,action\nann@example.com,suspend\nbob@example.com,delete\ncarl@example.com,\n"
    with pytest.raises(InputError) as refused:
        plan("suspend", csv_text, tmp_path=tmp_path)
    message = str(refused.value)
    assert "nothing was enqueued" in message
    assert "leavers.csv line 3" in message
    assert "'delete'" in message
    assert "'suspend'" in message
    assert "line 2" not in message
    assert "line 4" not in message


def test_a_row_repeating_the_commands_action_is_planned_with_it(tmp_path: Path) -> None:
    planned = plan("delete", "email,action\nann@example.com,delete\nbob@example.com,\n", tmp_path=tmp_path)
    assert [item.request.action for item in planned] == ["delete", "delete"]


def test_a_row_action_never_overrides_the_command(tmp_path: Path) -> None:
    # today's bug: `**row` after `action` let the row's action win
    with pytest.raises(InputError, match="line 2"):
        plan("reactivate", "email,action\nann@example.com,delete\n", tmp_path=tmp_path)


# ---------------------------------------------------------------- 2. dryRun is true or false only


@pytest.mark.parametrize("spelled", ["yes", "1", "ture", "no", "0", "y"])
def test_a_dry_run_spelled_otherwise_is_an_error_naming_the_line(tmp_path: Path, spelled: str) -> None:
    csv_text = f"email,dryRun\nann@example.com,true\nbob@example.com,{spelled}\n"
    with pytest.raises(InputError) as refused:
        plan("suspend", csv_text, tmp_path=tmp_path)
    message = str(refused.value)
    assert "leavers.csv line 3" in message
    assert "dryRun must be true or false" in message
    assert repr(spelled) in message


def test_dry_run_true_and_false_in_any_case_are_read(tmp_path: Path) -> None:
    csv_text = "email,dryRun\nann@example.com,TRUE\nbob@example.com,False\ncarl@example.com,\n"
    planned = plan("suspend", csv_text, tmp_path=tmp_path)
    assert [item.request.dry_run for item in planned] == [True, False, False]


def test_the_dry_run_flag_makes_every_row_a_dry_run(tmp_path: Path) -> None:
    planned = plan("suspend", "email,dryRun\nann@example.com,false\n", tmp_path=tmp_path, dry_run=True)
    assert [item.request.dry_run for item in planned] == [True]


# ---------------------------------------------------------------- 3. notBefore bounds


def test_not_before_option_far_in_the_past_is_refused(tmp_path: Path) -> None:
    past = NOW - MAX_NOT_BEFORE_BEHIND_CLI - timedelta(seconds=1)
    with pytest.raises(InputError, match=r"--not-before: .*in the past"):
        plan("delete", None, "ann@example.com", tmp_path=tmp_path, not_before=iso(past))


def test_not_before_option_too_far_ahead_is_refused(tmp_path: Path) -> None:
    ahead = NOW + MAX_NOT_BEFORE_AHEAD + timedelta(seconds=1)
    with pytest.raises(InputError, match=r"--not-before: .*366 days ahead"):
        plan("delete", None, "ann@example.com", tmp_path=tmp_path, not_before=iso(ahead))


def test_not_before_within_the_bounds_is_planned(tmp_path: Path) -> None:
    just_now = NOW - MAX_NOT_BEFORE_BEHIND_CLI + timedelta(seconds=1)
    latest = NOW + MAX_NOT_BEFORE_AHEAD
    for moment in (just_now, latest):
        [item] = plan("delete", None, "ann@example.com", tmp_path=tmp_path, not_before=iso(moment))
        assert item.request.not_before == moment


def test_a_bare_number_not_before_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="explicit offset"):
        plan("delete", None, "ann@example.com", tmp_path=tmp_path, not_before="20250301")


def test_csv_not_before_out_of_bounds_refuses_the_file_naming_the_line(tmp_path: Path) -> None:
    good = iso(NOW + timedelta(days=14))
    stale = iso(NOW - timedelta(days=2))
    too_far = iso(NOW + timedelta(days=400))
    csv_text = (
        "email,notBefore\n"
        f"ann@example.com,{good}\n"
        f"bob@example.com,{stale}\n"
        f"carl@example.com,{too_far}\n"
        "dan@example.com,1740787200\n"
    )
    with pytest.raises(InputError) as refused:
        plan("delete", csv_text, tmp_path=tmp_path, now=NOW)
    message = str(refused.value)
    assert "line 2" not in message
    assert "leavers.csv line 3: notBefore:" in message
    assert "in the past" in message
    assert "leavers.csv line 4: notBefore:" in message
    assert "ahead" in message
    assert "leavers.csv line 5" in message
    assert "explicit offset" in message


def test_the_bounds_follow_the_clock_handed_in(tmp_path: Path) -> None:
    moment = NOW + timedelta(days=2)
    [item] = plan("delete", None, "ann@example.com", tmp_path=tmp_path, not_before=iso(moment))
    assert item.request.not_before == moment
    with pytest.raises(InputError, match="in the past"):
        plan(
            "delete",
            None,
            "ann@example.com",
            tmp_path=tmp_path,
            not_before=iso(moment),
            now=moment + timedelta(hours=1),
        )


# ---------------------------------------------------------------- 7. inactiveSince


def test_inactive_since_is_carried_by_every_request(tmp_path: Path) -> None:
    cutoff = NOW - timedelta(days=90)
    planned = plan(
        "suspend", None, "ann@example.com", "bob@example.com", tmp_path=tmp_path, inactive_since=cutoff
    )
    bodies = [json.loads(item.request.to_body()) for item in planned]
    assert [body["inactiveSince"] for body in bodies] == [iso(cutoff)] * 2
    assert all(item.request.inactive_since == cutoff for item in planned)


# ---------------------------------------------------------------- a row's own values win over the options


def test_a_rows_own_reason_not_before_and_request_id_are_kept(tmp_path: Path) -> None:
    own = iso(NOW + timedelta(days=3))
    csv_text = f"email,reason,notBefore,requestId\nann@example.com,contract ended,{own},my-id-1\n"
    [planned] = plan("delete", csv_text, tmp_path=tmp_path, not_before=iso(NOW + timedelta(days=1)))
    assert planned.request.reason == "contract ended"
    assert planned.request.not_before == NOW + timedelta(days=3)
    assert planned.request.key == "my-id-1"


def test_an_argument_error_names_its_position(tmp_path: Path) -> None:
    with pytest.raises(InputError) as refused:
        plan("suspend", None, "ann@example.com", "not-an-email", tmp_path=tmp_path)
    assert "argument 2:" in str(refused.value)


def test_a_not_before_just_inside_the_past_bound_is_planned(tmp_path: Path) -> None:
    edge = NOW - MAX_NOT_BEFORE_BEHIND_CLI
    [planned] = plan("delete", None, "ann@example.com", tmp_path=tmp_path, not_before=iso(edge))
    assert planned.request.not_before == edge


def test_each_action_of_one_run_gets_its_own_request_id(tmp_path: Path) -> None:
    ids = {
        action: plan(action, None, "ann@example.com", tmp_path=tmp_path)[0].request.key
        for action in ("suspend", "delete", "reactivate")
    }
    assert len(set(ids.values())) == 3
    dry = plan("suspend", None, "ann@example.com", tmp_path=tmp_path, dry_run=True)[0].request.key
    assert dry != ids["suspend"]
    later = plan(
        "suspend", None, "ann@example.com", tmp_path=tmp_path, not_before=iso(NOW + timedelta(days=1))
    )
    assert later[0].request.key != ids["suspend"]
