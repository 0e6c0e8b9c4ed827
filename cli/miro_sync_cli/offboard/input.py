"""The command line and CSV input of `miro-sync offboard suspend|delete|reactivate`, turned into requests.

Every request is validated with the worker's own message model before anything is sent (a CSV is all
or nothing): a row naming another action than the command's, a dryRun other than true/false, a
notBefore more than MAX_NOT_BEFORE_BEHIND_CLI in the past or more than MAX_NOT_BEFORE_AHEAD ahead, a
successor on reactivate, a successor who is the leaver or is offboarded in the same run, or one leaver
given two successors is refused with its line. Each request gets an explicit requestId unique to this
run of the command (a CSV row may give its own): running a command again later is a new request
(suspend -> reactivate -> suspend acts three times), while SQS redeliveries and the retried sends of one
run stay one request.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from miro_sync.offboarding.messages import OffboardingRequest

# The columns a CSV may have (the command names the action: an action column may only repeat it).
CSV_COLUMNS = frozenset(
    {
        "email",
        "memberId",
        "action",
        "reason",
        "requestedBy",
        "notBefore",
        "requestId",
        "dryRun",
        "successor",
    }
)


@dataclass(frozen=True)
class PlannedRequest:
    request: OffboardingRequest
    source: str  # "argument 2" or "leavers.csv line 7", for error messages


class InputError(Exception):
    """Bad command-line or CSV input; nothing has been sent."""


@dataclass(frozen=True)
class RowDefaults:
    """What the command line gives every row that does not say otherwise."""

    action: str
    requested_by: str
    reason: str | None = None
    not_before: str | None = None
    successor: str | None = None
    dry_run: bool = False
    inactive_since: datetime | None = None


def build_requests(
    action: str,
    emails: Sequence[str],
    csv_file: Path | None,
    *,
    reason: str | None,
    requested_by: str,
    not_before: str | None,
    dry_run: bool,
    submission: str | None = None,
    now: datetime | None = None,
    inactive_since: datetime | None = None,
    successor: str | None = None,
) -> list[PlannedRequest]:
    """Validate everything first; raise InputError listing every bad row, so a CSV is all or nothing.
    Rows without a requestId get one from `submission` (default: this run, see `new_submission`).
    `now` (default: the clock) bounds notBefore; `inactive_since` is set on every request (the
    precondition `report inactive --offboard` hands the worker); `successor` (--successor) is the
    successor of every row without its own `successor` column value."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    submission = submission or new_submission(now)
    if not_before is not None:
        _check_not_before_option(not_before, now)
    rows = _input_rows(emails, csv_file)
    defaults = RowDefaults(action, requested_by, reason, not_before, successor, dry_run, inactive_since)
    planned: list[PlannedRequest] = []
    problems: list[str] = []
    for source, row in rows:
        request, row_problems = _row_request(row, defaults, now)
        if row_problems or request is None:
            problems.append(f"{source}: {'; '.join(row_problems)}")
            continue
        if "requestId" not in row:
            request = _with_run_request_id(request, submission)
        planned.append(PlannedRequest(request, source))
    problems.extend(_successor_problems(planned))
    problems.extend(_duplicate_problems(planned))
    if problems:
        raise InputError("nothing was enqueued:\n  " + "\n  ".join(problems))
    return planned


def _check_not_before_option(not_before: str, now: datetime) -> None:
    from miro_sync.offboarding.messages import parse_instant

    try:
        problem = not_before_problem(parse_instant(not_before, "--not-before"), now)
    except ValueError as bad:
        problem = str(bad)
    if problem:
        raise InputError(f"nothing was enqueued: --not-before: {problem}")


def _input_rows(emails: Sequence[str], csv_file: Path | None) -> list[tuple[str, dict[str, Any]]]:
    """(where, row) for each EMAIL argument, then each CSV line; InputError when there is none."""
    rows: list[tuple[str, dict[str, Any]]] = [
        (f"argument {position}", {"email": email}) for position, email in enumerate(emails, 1)
    ]
    if csv_file is not None:
        rows.extend(_csv_rows(csv_file))
    if not rows:
        raise InputError("name at least one EMAIL or a --csv FILE")
    return rows


def _csv_rows(csv_file: Path) -> list[tuple[str, dict[str, Any]]]:
    with csv_file.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        unknown = set(reader.fieldnames or []) - CSV_COLUMNS
        if unknown:
            raise InputError(
                f"{csv_file}: unknown column(s) {', '.join(sorted(unknown))}; allowed: {sorted(CSV_COLUMNS)}"
            )
        return [
            (f"{csv_file.name} line {line}", {k: v.strip() for k, v in row.items() if k and v and v.strip()})
            for line, row in enumerate(reader, 2)
        ]


def _row_request(
    row: dict[str, Any], defaults: RowDefaults, now: datetime
) -> tuple[OffboardingRequest | None, list[str]]:
    """The row's request as the worker's message model reads it, and what is wrong with the row."""
    from pydantic import ValidationError

    from miro_sync.offboarding.messages import (
        InvalidRequestError,
        OffboardingRequest,
        describe_validation_error,
    )

    message, problems = _row_message(row, defaults)
    request: OffboardingRequest | None = None
    try:
        request = OffboardingRequest.model_validate(message)
    except ValidationError as invalid:
        problems.append(describe_validation_error(invalid))
    except InvalidRequestError as invalid:  # pragma: no cover - model_validate raises ValidationError
        problems.append(invalid.reason)
    if request is not None and request.not_before is not None and "notBefore" in row:
        problem = not_before_problem(request.not_before, now)
        if problem:
            problems.append(f"notBefore: {problem}")
    return request, problems


def _row_message(row: dict[str, Any], defaults: RowDefaults) -> tuple[dict[str, Any], list[str]]:
    """The message body for one row (its own columns over the command line's), and the problems the
    message model would not name as clearly."""
    message: dict[str, Any] = {"requestedBy": defaults.requested_by, **row, "action": defaults.action}
    problems: list[str] = []
    if "action" in row and row["action"] != defaults.action:
        # the command names the action; a row may only repeat it, never change it
        problems.append(f"the action column says {row['action']!r} but this command is {defaults.action!r}")
    if defaults.reason and "reason" not in row:
        message["reason"] = defaults.reason
    if defaults.not_before and "notBefore" not in row:
        message["notBefore"] = defaults.not_before
    if defaults.successor and "successor" not in row:
        message["successor"] = defaults.successor
    if "dryRun" in message:
        spelled = str(message["dryRun"]).lower()
        if spelled not in {"true", "false"}:
            problems.append(f"dryRun must be true or false, got {str(message['dryRun'])[:40]!r}")
        message["dryRun"] = spelled == "true"
    if defaults.dry_run:
        message["dryRun"] = True
    if defaults.inactive_since is not None:
        message["inactiveSince"] = defaults.inactive_since
    return message, problems


def _with_run_request_id(request: OffboardingRequest, submission: str) -> OffboardingRequest:
    from miro_sync.offboarding.messages import cli_request_id

    request_id = cli_request_id(
        request.action,
        request.member_key,
        request.not_before,
        dry_run=request.dry_run,
        submission=submission,
        successor=request.successor,
    )
    return request.model_copy(update={"request_id": request_id})


def _successor_problems(planned: Sequence[PlannedRequest]) -> list[str]:
    """What the message model cannot see row by row: a successor who leaves in the same run (their
    boards would be handed to someone being offboarded), and one leaver given two successors."""
    leavers = {p.request.email for p in planned if p.request.email and p.request.is_destructive}
    problems: list[str] = []
    successors: dict[str, set[str]] = {}
    for item in planned:
        request = item.request
        if request.is_destructive:
            successors.setdefault(request.member_key, set()).add(request.successor or "none")
        if request.successor is None:
            continue
        if request.successor in leavers:
            problems.append(
                f"{item.source}: successor {request.successor} is offboarded by this command too; "
                "name someone who stays"
            )
    for member_key, named in sorted(successors.items()):
        if len(named) > 1:
            problems.append(
                f"{member_key} is given different successors ({', '.join(sorted(named))}): "
                "one successor per leaver"
            )
    return problems


def _duplicate_problems(planned: Sequence[PlannedRequest]) -> list[str]:
    keys = [p.request.key for p in planned]
    duplicates = sorted({key for key in keys if keys.count(key) > 1})
    if duplicates:
        return [f"the same request appears more than once: {', '.join(duplicates)}"]
    return []


def not_before_problem(not_before: datetime, now: datetime) -> str | None:
    """Why the CLI refuses this notBefore, or None: a time well in the past is a typo or a stale file
    (it would run at once), one more than MAX_NOT_BEFORE_AHEAD ahead is one the worker refuses."""
    from miro_sync.offboarding.messages import MAX_NOT_BEFORE_AHEAD, MAX_NOT_BEFORE_BEHIND_CLI

    if not_before < now - MAX_NOT_BEFORE_BEHIND_CLI:
        return (
            f"{not_before.isoformat()} is more than {_span(MAX_NOT_BEFORE_BEHIND_CLI)} in the past "
            f"(now {now.isoformat(timespec='seconds')})"
        )
    if not_before > now + MAX_NOT_BEFORE_AHEAD:
        return f"{not_before.isoformat()} is more than {_span(MAX_NOT_BEFORE_AHEAD)} ahead"
    return None


def _span(span: timedelta) -> str:
    if span >= timedelta(days=1):
        return f"{span.days} days"
    return f"{int(span.total_seconds() // 60)} minutes"


def new_submission(now: datetime | None = None) -> str:
    """One run of the command: its UTC time (readable in the ids) and a random part (two runs in the
    same second are still two submissions)."""
    import secrets

    at = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{at:%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"
