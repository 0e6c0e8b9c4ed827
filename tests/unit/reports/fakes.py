"""In-memory stand-ins for the report's read side, following MembersTable's BySeat semantics."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from miro_sync.store.members import MemberRecord


class FakeMembers:
    """query_seats and counts the way the BySeat index answers them: seat = status#license,
    lastSeenAt = the newest signal (or "0000-..." when never seen), strictly before the bound."""

    def __init__(self, records: Iterable[MemberRecord]) -> None:
        self.records = list(records)
        self.queries: list[tuple[str, str, str]] = []

    def query_seats(self, status: str, license: str, last_seen_before: str) -> Iterator[MemberRecord]:
        self.queries.append((status, license, last_seen_before))
        matching = [
            record
            for record in self.records
            if record.seat == f"{status}#{license}" and record.last_seen_key < last_seen_before
        ]
        yield from sorted(matching, key=lambda record: record.last_seen_key)

    def counts(
        self, licenses: Iterable[str], statuses: Iterable[str] = ("active", "suspended", "deprovisioned")
    ) -> dict[tuple[str, str], int]:
        wanted = tuple(statuses)
        return {
            (status, license): sum(1 for r in self.records if r.seat == f"{status}#{license}")
            for license in licenses
            for status in wanted
        }


@dataclass(frozen=True)
class Stored:
    at: datetime
    data: Any


class FakeSnapshots:
    def __init__(self, snapshots: Iterable[Stored]) -> None:
        self.snapshots = list(snapshots)

    def list_snapshots(self, since: datetime | None = None) -> Iterator[Stored]:
        yield from (s for s in self.snapshots if since is None or s.at >= since)


def member(
    member_id: str,
    *,
    license: str = "full",
    role: str = "organization_internal_user",
    status: str = "active",
    teams: tuple[str, ...] = (),
    boards_owned: int = 0,
    **signals: datetime | None,
) -> MemberRecord:
    return MemberRecord(
        member_id=member_id,
        email=f"{member_id}@acme.example",
        role=role,
        license=license,
        active=status == "active",
        status=status,
        teams=teams,
        boards_owned=boards_owned,
        **signals,
    )
