"""`miro-sync offboard release`: which held requests a release lets continue past the blast-radius limit,
and releasing them (the approval is recorded on each request before its release message is sent)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import typer
from rich.markup import escape

from miro_sync_cli.offboard.records import records_table
from miro_sync_cli.offboard.terminal import console, errors

if TYPE_CHECKING:
    from miro_sync.store.actions import ActionRecord, ActionsRepository
    from miro_sync.store.queue import OutgoingMessage


def release_limit(max_count: int | None, stack_max: str) -> int:
    """At most how many to release: --max (or MAX_ACTIONS_PER_HOUR), else the stack's MaxActionsPerHour,
    else the worker's own default, so one release is at most one hour's budget."""
    if max_count is not None:
        return max_count
    if stack_max.isdigit():
        return max(1, int(stack_max))
    return default_release_max()


def default_release_max() -> int:
    """The worker's own default for MAX_ACTIONS_PER_HOUR (the template's MaxActionsPerHour default)."""
    from miro_sync.settings.offboarding import OffboardingSettings

    default = OffboardingSettings.model_fields["max_actions_per_hour"].default
    return int(default)


def held_requests(
    repository: ActionsRepository, request_ids: Sequence[str] | None, limit: int
) -> tuple[list[ActionRecord], bool]:
    """Up to `limit` held requests (those named, else the oldest held) and whether more wait beyond
    them; a named request that is not held is skipped with a warning."""
    candidates: list[ActionRecord]
    if request_ids:
        named = (_held(repository, request_id) for request_id in request_ids)
        candidates = [record for record in named if record is not None]
    else:
        candidates = list(repository.by_outcome("held", limit=limit + 1))
    return candidates[:limit], len(candidates) > limit


def _held(repository: ActionsRepository, request_id: str) -> ActionRecord | None:
    record = repository.get(request_id)
    if record is None:
        errors.print(f"[yellow]{escape(request_id)}: no such request; skipped[/yellow]")
        return None
    if record.outcome != "held":
        errors.print(f"[yellow]{escape(request_id)} is not held ({escape(record.outcome)}); skipped[/yellow]")
        return None
    return record


def show_release_plan(candidates: Sequence[ActionRecord], limit: int, *, more_held: bool) -> None:
    console.print(records_table(candidates, f"Release plan: {len(candidates)} held request(s)"))
    if more_held:
        console.print(
            f"[yellow]More held requests wait beyond --max {limit}: release them in a later run.[/yellow]"
        )


def release_requests(
    repository: ActionsRepository, candidates: Sequence[ActionRecord], operator: str, queue_url: str
) -> None:
    """Record `operator`'s approval on each request still held, then send each its release message;
    typer.Exit(1) when none was still held or a message could not be sent."""
    from miro_sync.store.queue import OffboardingQueue

    released = _record_approvals(repository, candidates, operator)
    if not released:
        console.print("Nothing to release.")
        raise typer.Exit(1)
    failures = OffboardingQueue.from_url(queue_url).send_batch([message for _, message in released])
    for failure in failures:
        errors.print(
            f"[red]release of {escape(released[failure.index][0].request_id)} not enqueued: "
            f"{escape(str(failure.code))}[/red]"
        )
    console.print(
        records_table([record for record, _ in released], f"Released {len(released) - len(failures)}")
    )
    if failures:
        raise typer.Exit(1)


def _record_approvals(
    repository: ActionsRepository, candidates: Sequence[ActionRecord], operator: str
) -> list[tuple[ActionRecord, OutgoingMessage]]:
    """Each request still held, with its approval recorded, and the release message it is sent."""
    from miro_sync.offboarding.worker import PHASE_ATTRIBUTE, PHASE_RELEASE
    from miro_sync.store.actions import ActionConflictError, utc_now_iso
    from miro_sync.store.queue import OutgoingMessage

    released: list[tuple[ActionRecord, OutgoingMessage]] = []
    for record in candidates:
        now = datetime.now(UTC)
        try:
            updated = repository.update(
                record.request_id,
                at=now,
                expected={"held"},
                fields={"released_by": operator, "released_at": utc_now_iso(now)},
            )
        except ActionConflictError:
            current = repository.get(record.request_id)
            state = current.outcome if current else "unknown request"
            errors.print(
                f"[yellow]{escape(record.request_id)} is not held ({escape(state)}); skipped[/yellow]"
            )
            continue
        released.append(
            (updated, OutgoingMessage(body=updated.body, attributes={PHASE_ATTRIBUTE: PHASE_RELEASE}))
        )
    return released
