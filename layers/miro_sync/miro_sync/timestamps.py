"""Every textual timestamp the system writes or reads, in one place.

Stored timestamps are keys and sort keys (AuditTable `sk`, BoardEventsTable `sk`, MembersTable
`lastSeenAt` on the BySeat index, ActionsTable `createdAt`/`updatedAt` on its indexes), so string
order must be time order and one instant must have one spelling: UTC, fixed width, a trailing `Z`.
Changing a format here changes keys of data already stored.

Policy for naive datetimes: refused with ValueError. Every caller passes timezone-aware values (the
clocks are `datetime.now(UTC)`, parsed values carry an offset), and a naive one is a bug whose zone
could only be guessed. Text without an offset is another matter: what is parsed here is text this
system stored or Miro sent, both UTC by contract, so `parse_timestamp` reads it as UTC.

Kept import-light (datetime only): the board webhook's cold start imports it.
"""

from __future__ import annotations

from datetime import UTC, datetime


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"a naive datetime ({moment.isoformat()}) is ambiguous: pass a timezone-aware one")
    return moment.astimezone(UTC)


def iso_millis(moment: datetime) -> str:
    """`YYYY-MM-DDTHH:MM:SS.mmmZ`: UTC, milliseconds truncated (never rounded up into the next
    millisecond, so a key never sorts after the instant it names). The form of every stored
    timestamp and of Miro's audit-log query times."""
    return _utc(moment).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def iso_seconds(moment: datetime) -> str:
    """`YYYY-MM-DDTHH:MM:SSZ`: UTC, fractions of a second truncated (for people and Miro's
    second-precision fields; never for keys, whose form is `iso_millis`)."""
    return _utc(moment).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


def iso_as_given(moment: datetime) -> str:
    """ISO-8601 in the datetime's own offset and precision, `Z` for UTC (the reports' output: an
    instant is shown as it was computed, microseconds only when there are any)."""
    _utc(moment)  # refuses a naive one
    return moment.isoformat().replace("+00:00", "Z")


def parse_timestamp(text: str) -> datetime:
    """An aware UTC datetime from ISO-8601 text with `Z`, `+00:00` or any other offset (moved to
    UTC); text without an offset is read as UTC. Raises ValueError for anything else."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
