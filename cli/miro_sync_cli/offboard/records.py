"""The recorded requests as `miro-sync offboard status`, `release` and the demo show them. Everything in a
record came from a message, an operator or Miro: escaped, never read as rich markup."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    from miro_sync.store.actions import ActionRecord


def records_table(records: Iterable[ActionRecord], title: str) -> Table:
    table = Table(title=title)
    for column in (
        "request id",
        "action",
        "member",
        "requested by",
        "outcome",
        "successor",
        "steps",
        "reason",
        "updated",
        "attempts",
    ):
        table.add_column(column, overflow="fold")
    for record in records:
        # everything in a record came from a message, an operator or Miro: escaped, never markup
        detail = escape(record.outcome_reason or record.last_error or "")
        if record.warning:
            detail = f"{detail} [yellow]{escape(record.warning)}[/yellow]"
        statuses = ",".join(str(a.status) if a.status is not None else "-" for a in record.attempts) or "-"
        table.add_row(
            escape(record.request_id),
            escape(record.action),
            escape(record.email or record.member_key),
            # who asked, and the AWS principal that sent the message (SQS SenderId)
            escape(record.requested_by + (f" via {record.sender_id}" if record.sender_id else "")),
            escape(record.outcome),
            escape(record.successor or "-"),
            escape(describe_record_steps(record)),
            detail,
            escape(record.updated_at),
            statuses,
        )
    return table


# How a recorded step's status reads in `status` (a step not recorded yet reads "…").
STEP_MARKS: dict[str, str] = {"done": "✓", "skipped": "skipped", "partly": "partly"}


def describe_record_steps(record: ActionRecord) -> str:
    """e.g. "hand_over_boards ✓ 12, deactivate ✓, read_back …, reset_sessions …": the steps recorded so
    far (with their count, e.g. boards handed over) and, while the request is open, the steps its action
    still has to take ("…"); a dry run lists its steps as planned. Plain text: escape before printing."""
    from miro_sync.offboarding.steps import StepOptions, planned_steps
    from miro_sync.store.actions import OPEN_OUTCOMES

    parts = []
    for step in record.steps:
        text = f"{step.kind} {STEP_MARKS.get(step.status, step.status)}"
        if step.count is not None:
            text += f" {step.count}"
        parts.append(text)
    try:
        planned = planned_steps(record.action, StepOptions(successor=record.successor))
    except KeyError:  # an invalid request's record names an action that has no steps
        planned = ()
    recorded = {step.kind for step in record.steps}
    remaining = [kind for kind in planned if kind not in recorded]
    if record.outcome in OPEN_OUTCOMES:
        parts.extend(f"{kind} …" for kind in remaining)
    elif record.outcome == "dry-run" and not record.steps and remaining:
        parts.append("planned: " + ", ".join(remaining))
    return ", ".join(parts) or "-"
