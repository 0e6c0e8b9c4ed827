"""Errors a report raises for input a user can fix; the CLI prints them and exits non-zero."""

from __future__ import annotations


class ReportError(Exception):
    """A report cannot be produced; the message says why and what to do."""


class PriceConfigError(ReportError):
    """The seat price file is missing, unreadable or not a {license: monthly price} table."""


class NoSyncDataError(ReportError):
    """The members table holds nothing: no sync has run yet against these tables."""

    def __init__(self, table_name: str) -> None:
        super().__init__(
            f"the members table {table_name!r} holds no members: no sync has run yet. Run one first, "
            "e.g. `miro-sync invoke MembersSyncFunction --event events/members_sync/scheduled.json` "
            "locally, or wait for the scheduled MembersSyncFunction in AWS."
        )
        self.table_name = table_name


class StaleSyncError(ReportError):
    """The members table is older than the caller accepts for acting on it (`--offboard`)."""
