"""Is the members table recent enough to act on? `report inactive --offboard` suspends or deletes people
because the table says they are idle; a table the members sync has not refreshed for a while misses
their recent activity, so acting on it is refused (listing it is not).

The members sync records the end of its last complete run in its checkpoint (StateTable,
`sync#members` / `checkpoint`, `lastCompleteAt`); `miro_sync.store.reports.MembersSyncStatus` reads it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

from miro_sync.reports.errors import StaleSyncError

# template.yaml's MembersSyncSchedule default, rate(6 hours); the stale-sync alarm fires after twice that.
MEMBERS_SYNC_PERIOD = timedelta(hours=6)
DEFAULT_MAX_SYNC_AGE = 2 * MEMBERS_SYNC_PERIOD


class SyncStatusSource(Protocol):
    """`miro_sync.store.reports.MembersSyncStatus` is the real one."""

    def last_complete_at(self) -> datetime | None: ...


def _hours(span: timedelta) -> str:
    return f"{span.total_seconds() / 3600:.1f} hours"


def require_recent_sync(source: SyncStatusSource | None, *, now: datetime, max_age: timedelta) -> datetime:
    """The end of the last complete members sync, if it is at most `max_age` before `now`; raises
    StaleSyncError (a ReportError: the CLI exits 2) otherwise, or when none is recorded."""
    if source is None:
        raise StaleSyncError(
            "acting on the report needs the state table (--state-table or STATE_TABLE), to check when "
            "the members sync last completed"
        )
    completed = source.last_complete_at()
    if completed is None:
        raise StaleSyncError(
            "no complete members sync is recorded in the state table: run one before acting on the report"
        )
    age = now - completed
    if age > max_age:
        raise StaleSyncError(
            f"the last complete members sync ended {completed.isoformat(timespec='seconds')}, "
            f"{_hours(age)} ago, more than --max-sync-age ({_hours(max_age)}): the members table may "
            "miss recent activity. Nothing was enqueued; check the members sync (its alarm, its logs), "
            "let it complete and run this again."
        )
    return completed
