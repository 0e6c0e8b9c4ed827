"""Builds the reports from the read-side adapters, refusing to report on tables no sync has filled."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Protocol

from miro_sync.reports.errors import NoSyncDataError
from miro_sync.reports.inactive import InactiveReport, SeatSource, build_inactive_report
from miro_sync.reports.licenses import STATUSES, LicenseReport, build_license_report
from miro_sync.reports.prices import SeatPrices


class SeatCountSource(Protocol):
    """`miro_sync.store.reports.SeatCounter` is the real one."""

    def counts(
        self, licenses: Iterable[str], statuses: Iterable[str] = ...
    ) -> dict[tuple[str, str], int]: ...


class StoredSnapshotLike(Protocol):
    @property
    def at(self) -> datetime: ...

    @property
    def data(self) -> Any: ...


class SnapshotSource(Protocol):
    """`miro_sync.store.reports.UsageSnapshotHistory` is the real one."""

    def list_snapshots(self, since: datetime | None = None) -> Iterable[StoredSnapshotLike]: ...


def seat_counts(
    counter: SeatCountSource, prices: SeatPrices, *, table_name: str
) -> Mapping[tuple[str, str], int]:
    counts = counter.counts(prices.all_licenses, STATUSES)
    if not any(counts.values()):
        raise NoSyncDataError(table_name)
    return counts


def collect_inactive(
    members: SeatSource,
    counter: SeatCountSource,
    *,
    table_name: str,
    days: int,
    now: datetime,
    prices: SeatPrices,
    team_names: Mapping[str, str] | None = None,
    counts: Mapping[tuple[str, str], int] | None = None,
) -> InactiveReport:
    if counts is None:
        counts = seat_counts(counter, prices, table_name=table_name)
    return build_inactive_report(
        members, days=days, now=now, prices=prices, team_names=team_names, seat_counts=counts
    )


def collect_licenses(
    counter: SeatCountSource,
    snapshots: SnapshotSource | None,
    *,
    table_name: str,
    now: datetime,
    prices: SeatPrices,
    counts: Mapping[tuple[str, str], int] | None = None,
) -> LicenseReport:
    """`counts` reuses seat counts already taken (e.g. by `collect_inactive`'s caller)."""
    current = counts if counts is not None else seat_counts(counter, prices, table_name=table_name)
    history = [(stored.at, stored.data) for stored in snapshots.list_snapshots()] if snapshots else []
    return build_license_report(current, history, now=now, prices=prices)
