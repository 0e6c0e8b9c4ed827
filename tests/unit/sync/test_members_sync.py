from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from miro_sync.miro.errors import MiroAuthError, MiroProtocolError
from miro_sync.miro.models import MembersPage, OrgMember, TeamMembersPage
from miro_sync.store.members import NEVER_SEEN, MemberRecord, build_member_record
from miro_sync.sync.members import (
    PREFETCH_THREAD,
    IncompleteListingError,
    MembersSync,
    MembersSyncError,
    MembersSyncResult,
)
from miro_sync.sync.members_prefetch import pack_page as _pack_page
from miro_sync.sync.members_prefetch import unpack_page as _unpack_page
from tests.unit.sync.fakes import (
    FakeDeadline,
    FakeMembersStore,
    FakeMiro,
    FakeScim,
    FakeStateStore,
    Killed,
    aux_stored,
    member,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def org(count: int) -> list[OrgMember]:
    people = []
    for index in range(count):
        role = "organization_external_user" if index % 10 == 9 else "organization_internal_user"
        license = "free" if index % 7 == 6 else "full"
        last_activity = None if index % 11 == 10 else f"2026-0{1 + index % 3}-01T00:00:00Z"
        people.append(
            member(
                f"{index:05d}",
                role=role,
                license=license,
                active=index % 13 != 12,
                last_activity=last_activity,
            )
        )
    return people


@dataclass
class _LogLines:
    """A LogSink keeping (message, fields) of every line logged."""

    lines: list[tuple[str, dict[str, Any]]]

    def info(self, msg: object, *args: object, extra: Mapping[str, object] | None = None) -> None:
        self.lines.append((str(msg), dict(extra or {})))

    warning = error = exception = info


@dataclass
class World:
    miro: FakeMiro
    scim: FakeScim
    members: FakeMembersStore = field(default_factory=FakeMembersStore)
    state: FakeStateStore = field(default_factory=FakeStateStore)
    clock: datetime = T0
    invocations: int = 0
    prefetch_pages: int = 100
    logged: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    credit_headroom: Callable[[], float | None] | None = None
    fetch_workers: int = 12

    def sync(self, page_size: int = 10) -> MembersSync:
        return MembersSync(
            miro=self.miro,
            scim=self.scim,
            members=self.members,
            state=self.state,
            clock=lambda: self.clock,
            page_size=page_size,
            member_prefetch_pages=self.prefetch_pages,
            log=_LogLines(self.logged),
            credit_headroom=self.credit_headroom,
            fetch_workers=self.fetch_workers,
        )

    def run(self, deadline: FakeDeadline | None = None, page_size: int = 10) -> MembersSyncResult:
        self.invocations += 1
        return self.sync(page_size).run(
            invocation_id=f"inv-{self.invocations}", deadline=deadline or FakeDeadline()
        )


def world(count: int = 45) -> World:
    people = org(count)
    scim_users = {m.email: f"scim-{m.id}" for m in people if m.role == "organization_internal_user"}
    teams = {"t1": [m.id for m in people[:5]], "t2": [m.id for m in people[3:8]]}
    boards = [(f"b{i}", people[i % 4].id) for i in range(9)]
    return World(miro=FakeMiro(people, teams=teams, boards=boards), scim=FakeScim(scim_users))


def test_first_sync_stores_every_member_with_teams_boards_scim_id_and_seat() -> None:
    w = world()
    result = w.run()

    assert result.outcome == "complete"
    assert result.fetched == 45
    assert result.written == 45
    assert result.pages == 5
    assert set(w.members.items) == {m.id for m in w.miro.members}
    first = w.members.items["00000"]
    assert first["teams"] == ["t1"]
    assert w.members.items["00003"]["teams"] == ["t1", "t2"]
    assert first["boardsOwned"] == 3  # boards b0, b4, b8
    assert first["scimId"] == "scim-00000"
    assert first["seat"] == "active#full"
    assert first["lastSeenAt"] == "2026-01-01T00:00:00.000Z"
    assert first["firstSeenAt"] == first["lastChangedAt"] == "2026-03-01T12:00:00.000Z"
    assert "scimId" not in w.members.items["00009"]  # external users are invisible to SCIM
    assert w.members.items["00010"]["lastSeenAt"] == NEVER_SEEN
    assert w.members.items["00012"]["status"] == "suspended"
    assert w.members.items["00012"]["seat"] == "suspended#full"
    assert w.scim.listings == 1
    assert w.scim.lookups == []


def test_usage_snapshot_counts_licenses_roles_statuses_and_inactive_seats() -> None:
    w = world()
    result = w.run()

    snapshot = result.snapshot
    assert snapshot is not None
    assert w.state.snapshots[result.run_id or ""] == snapshot
    assert snapshot["members"] == 45
    assert snapshot["byLicense"] == {"free": 6, "full": 39}
    assert snapshot["byRole"] == {"organization_external_user": 4, "organization_internal_user": 41}
    assert snapshot["byStatus"] == {"active": 42, "suspended": 3}
    assert snapshot["fullLicensesPurchased"] == 1000
    assert snapshot["fullLicensesAssigned"] == 39
    assert snapshot["boards"] == 9
    # Active paid seats seen 2026-01-01 / 02-01 / 03-01 or never, judged at 2026-03-01 12:00.
    expected = {}
    paid = [m for m in w.miro.members if m.active and m.license != "free"]
    for days in (30, 60, 90):
        limit = T0 - timedelta(days=days)
        expected[str(days)] = sum(1 for m in paid if m.last_activity_at is None or m.last_activity_at < limit)
    assert snapshot["inactiveSeats"] == expected
    assert snapshot["neverSeenSeats"] == sum(1 for m in paid if m.last_activity_at is None)


def test_resync_writes_only_changed_members() -> None:
    w = world(200)
    w.run()
    w.members.items_written = 0
    changed_ids = {"00005", "00100"}
    w.miro.members = [
        m.model_copy(update={"license": "basic"}) if m.id in changed_ids else m for m in w.miro.members
    ]
    w.clock = T0 + timedelta(days=1)

    result = w.run()

    assert result.outcome == "complete"
    assert result.written == 2
    assert result.unchanged == 198
    assert w.members.items_written == 2
    assert w.members.items["00005"]["seat"] == "active#basic"
    assert w.members.items["00005"]["lastChangedAt"] == "2026-03-02T12:00:00.000Z"
    assert w.members.items["00006"]["lastChangedAt"] == "2026-03-01T12:00:00.000Z"
    assert w.scim.listings == 1  # SCIM is paged on the first run only


def test_vanished_member_is_marked_deprovisioned_never_deleted_and_comes_back() -> None:
    w = world()
    w.run()
    gone = w.miro.members.pop(4)
    w.clock = T0 + timedelta(days=1)

    result = w.run()

    item = w.members.items[gone.id]
    assert result.removed == 1
    assert item["status"] == "deprovisioned"
    assert item["seat"] == "deprovisioned#full"
    assert item["removedAt"] == "2026-03-02T12:00:00.000Z"
    assert item["active"] is False
    assert result.snapshot is not None
    assert result.snapshot["removedSinceLastRun"] == 1

    w.miro.members.append(gone)
    w.clock = T0 + timedelta(days=2)
    w.run()
    assert w.members.items[gone.id]["status"] == "active"
    assert "removedAt" not in w.members.items[gone.id]


def test_malformed_page_fails_the_run_without_marking_anyone_deprovisioned() -> None:
    w = world()
    w.run()
    w.miro.members.pop(0)  # really gone, but the listing below never completes
    w.miro.broken_member_pages = {3: MiroProtocolError("truncated body", status=200)}

    with pytest.raises(MiroProtocolError):
        w.run()
    assert all(item["status"] != "deprovisioned" for item in w.members.items.values())

    w.miro.broken_member_pages = {}
    w.clock = T0 + timedelta(hours=1)
    result = w.run()
    assert result.resumed
    assert result.outcome == "complete"
    assert w.members.items["00000"]["status"] == "deprovisioned"


def test_forbidden_fails_fast_naming_the_scope_and_deprovisions_nobody() -> None:
    w = world()
    w.run()
    w.miro.members.pop(0)
    w.miro.broken_member_pages = {
        1: MiroAuthError(
            "forbidden", status=403, required_scope="organizations:read", required_role="Company Admin"
        )
    }

    with pytest.raises(MembersSyncError, match=r"organizations:read.*Company Admin"):
        w.run()
    assert all(item["status"] != "deprovisioned" for item in w.members.items.values())


def test_an_empty_listing_after_a_full_one_is_refused() -> None:
    w = world()
    w.run()
    w.miro.members = []

    with pytest.raises(IncompleteListingError):
        w.run()
    assert all(item["status"] != "deprovisioned" for item in w.members.items.values())


def test_signals_written_by_other_functions_survive_a_sync_rewrite() -> None:
    w = world()
    w.run()
    later = datetime(2026, 2, 20, tzinfo=UTC)
    assert w.members.record_board_activity("00001", later)
    w.miro.members = [
        m.model_copy(update={"role": "organization_internal_admin"}) if m.id == "00001" else m
        for m in w.miro.members
    ]

    w.run()

    item = w.members.items["00001"]
    assert item["role"] == "organization_internal_admin"
    assert item["lastBoardActivityAt"] == "2026-02-20T00:00:00.000Z"
    assert item["lastSeenAt"] == "2026-02-20T00:00:00.000Z"


def test_a_signal_racing_the_sync_write_is_kept() -> None:
    w = world()
    w.run()
    w.miro.members = [
        m.model_copy(update={"license": "basic"}) if m.id == "00002" else m for m in w.miro.members
    ]
    raced = []

    def signal_arrives(member_id: str) -> None:
        if member_id == "00002" and not raced:
            raced.append(member_id)
            w.members.record_board_activity(member_id, datetime(2026, 3, 1, 6, tzinfo=UTC))

    w.members.before_replace = signal_arrives

    w.run()

    item = w.members.items["00002"]
    assert raced == ["00002"]
    assert item["license"] == "basic"
    assert item["lastBoardActivityAt"] == item["lastSeenAt"] == "2026-03-01T06:00:00.000Z"


def test_running_low_on_time_hands_over_and_the_next_invocation_finishes() -> None:
    w = world()
    # Checks pass after the teams/boards phase and after pages 1 and 2; after page 3 time runs low.
    first = w.run(FakeDeadline(checks_before_low=3, count_when=aux_stored(w.state)))
    assert first.outcome == "continue"
    assert first.pages == 3
    w.clock = T0 + timedelta(minutes=15)
    second = w.run()
    assert second.outcome == "complete"
    assert second.resumed
    assert second.run_id == first.run_id
    assert second.pages == 2

    clean = world()
    clean.run()
    assert w.members.table() == clean.members.table()
    assert w.state.snapshots[first.run_id or ""]["members"] == 45


class CountingStateStore(FakeStateStore):
    """Counts reads of the run's aux blob."""

    aux_loads: int = 0

    def load_bytes(self, name: str, run_id: str, kind: str) -> bytes | None:
        if kind == "aux":
            self.aux_loads += 1
        return super().load_bytes(name, run_id, kind)


def test_the_aux_collected_by_an_invocation_is_used_as_built_not_read_back() -> None:
    w = world()
    w.state = CountingStateStore()

    result = w.run()

    assert result.outcome == "complete"
    # One look for an aux collected before an interruption; none after collecting it.
    assert w.state.aux_loads == 1
    assert w.members.items["00003"]["teams"] == ["t1", "t2"]
    assert w.members.items["00000"]["boardsOwned"] == 3


def test_a_resumed_invocation_loads_the_stored_aux_instead_of_collecting_it_again() -> None:
    w = world()
    # Hands over right after the aux phase.
    first = w.run(FakeDeadline(checks_before_low=0, count_when=aux_stored(w.state)))
    assert first.outcome == "continue"
    assert first.pages == 0
    board_pages, listings = w.miro.board_pages_served, w.scim.listings

    second = w.run()

    assert second.outcome == "complete"
    assert (w.miro.board_pages_served, w.scim.listings) == (board_pages, listings)
    clean = world()
    clean.run()
    assert w.members.table() == clean.members.table()


def test_a_second_invocation_while_the_lease_is_held_backs_off() -> None:
    w = world()
    assert w.state.acquire_lease("members", "other", now_ms=0, until_ms=int(T0.timestamp() * 1000) + 60_000)

    result = w.run()

    assert result.outcome == "busy"
    assert w.members.items == {}


def test_later_runs_look_up_scim_ids_only_for_new_internal_members() -> None:
    w = world()
    w.run()
    newcomer = member("99999", email="new@example.com")
    guest = member("99998", email="guest@example.com", role="organization_external_user")
    w.miro.members += [newcomer, guest]
    w.scim.users["new@example.com"] = "scim-new"

    w.run()

    assert w.scim.lookups == ["new@example.com"]
    assert w.members.items["99999"]["scimId"] == "scim-new"
    assert w.scim.listings == 1


def test_an_internal_member_missing_from_scim_is_not_looked_up_every_run() -> None:
    w = world()
    w.run()
    w.miro.members.append(member("99999", email="nosso@example.com"))
    w.run()
    w.run()
    assert w.scim.lookups == ["nosso@example.com"]


def _run_until_complete(w: World, limit: int = 20) -> None:
    for _ in range(limit):
        try:
            result = w.run()
        except Killed:
            w.clock += timedelta(minutes=20)  # the killed invocation's lease runs out
            continue
        if result.outcome == "complete":
            return
    raise AssertionError("the sync did not converge")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kills=st.lists(
        st.tuples(st.sampled_from(["miro", "members", "state"]), st.integers(min_value=1, max_value=40)),
        min_size=1,
        max_size=3,
    ),
    changes=st.integers(min_value=0, max_value=5),
)
def test_killed_at_random_points_a_rerun_converges_to_the_clean_table(
    kills: list[tuple[str, int]], changes: int
) -> None:
    def prepare() -> World:
        w = world(60)
        w.run()  # a previous complete run, so removals are in play
        w.miro.members = w.miro.members[changes:]  # `changes` members left the org
        w.miro.members = [
            m.model_copy(update={"license": "basic"}) if int(m.id) % 9 == 0 else m for m in w.miro.members
        ]
        w.clock = T0 + timedelta(days=1)
        return w

    clean = prepare()
    assert clean.run().outcome == "complete"

    crashed = prepare()
    completed = False
    for target, at in kills:
        faults = {
            "miro": crashed.miro.faults,
            "members": crashed.members.faults,
            "state": crashed.state.faults,
        }[target]
        faults.calls, faults.at, faults.error = 0, at, Killed()
        if completed:
            break
        try:
            completed = crashed.run().outcome == "complete"
        except Killed:
            crashed.clock += timedelta(minutes=20)
        faults.at = None
    if not completed:
        _run_until_complete(crashed)

    assert normalized(crashed) == normalized(clean)


def normalized(w: World) -> tuple[dict[str, Any], dict[str, Any]]:
    """The table and last snapshot with the last run's start time and id replaced by placeholders.

    A kill before the run's first checkpoint means that run never started: the re-run starts later,
    so its timestamps legitimately differ by exactly that start time.
    """
    snapshot = list(w.state.snapshots.values())[-1]
    table = w.members.table()
    for item in table.values():
        # The fingerprint hashes timestamps such as removedAt (the run start): check it matches the
        # item's content, then leave it out of the comparison like the timestamps themselves.
        assert item.pop("fingerprint") == MemberRecord.from_item(dict(item)).content_fingerprint()
    text = json.dumps([table, snapshot], sort_keys=True)
    text = text.replace(snapshot["at"], "<run start>").replace(snapshot["runId"], "<run id>")
    table, last_snapshot = json.loads(text)
    return table, last_snapshot


def test_board_and_scim_pages_past_the_first_are_fetched_concurrently_exactly_once() -> None:
    people = org(260)
    scim_users = {m.email: f"scim-{m.id}" for m in people if m.role == "organization_internal_user"}
    boards = [(f"b{i}", people[i % 7].id) for i in range(120)]
    w = World(miro=FakeMiro(people, teams={"t1": [people[0].id]}, boards=boards), scim=FakeScim(scim_users))
    assert w.run(page_size=50).outcome == "complete"
    assert w.miro.board_pages_served == 3  # offsets 0, 50, 100
    assert w.scim.pages_served == 1  # 234 users, 1,000 per page (3 pages at the former 100)
    for index, person in enumerate(people):
        item = w.members.items[person.id]
        assert item["boardsOwned"] == sum(1 for _b, owner in boards if owner == person.id)
        assert item.get("scimId") == scim_users.get(person.email), index


# --- the member listing overlaps the aux collection -------------------------------------------------

GATE_TIMEOUT_S = 10.0  # only ever waited in full when the overlap is broken


@dataclass
class GatedMiro(FakeMiro):
    """While `gated`, every team member listing (part of the aux) waits for `gate`, which the member
    listing opens on its first page request (`open_on="start"`) or when it fails (`"failure"`).
    A sequential sync would never open it: the waits time out and `gate_opened_in_time` says so."""

    gated: bool = True
    open_on: str = "start"
    gate: threading.Event = field(default_factory=threading.Event)
    gate_opened_in_time: list[bool] = field(default_factory=list)
    team_members_error: Exception | None = None

    def iter_member_pages(self, limit: int = 100, cursor: str | None = None) -> Iterator[MembersPage]:
        if self.open_on == "start":
            self.gate.set()
        try:
            yield from super().iter_member_pages(limit, cursor)
        except Exception:
            if self.open_on == "failure":
                self.gate.set()
            raise

    def iter_team_member_pages(
        self, team_id: str, cursor: str | None = None, limit: int = 100
    ) -> Iterator[TeamMembersPage]:
        if self.gated:
            self.gate_opened_in_time.append(self.gate.wait(GATE_TIMEOUT_S))
        if self.team_members_error is not None:
            raise self.team_members_error
        yield from super().iter_team_member_pages(team_id, cursor, limit)


def gated_world(count: int = 45, open_on: str = "start") -> tuple[World, GatedMiro]:
    w = world(count)
    miro = GatedMiro(w.miro.members, teams=w.miro.teams, boards=w.miro.boards, open_on=open_on)
    w.miro = miro
    return w, miro


def prefetch_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name.startswith(PREFETCH_THREAD)]


def without_run_id(snapshot: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in snapshot.items() if key != "runId"}


def test_the_member_listing_runs_during_the_aux_collection_and_writes_the_same_table() -> None:
    w, miro = gated_world()
    sequential = world()
    sequential.prefetch_pages = 0  # the listing only after the aux, as before

    for day in range(2):  # a first run, then one with removals in play
        if day:
            for other in (w, sequential):
                other.miro.members.pop(4)
                other.clock = T0 + timedelta(days=day)
        miro.gate.clear()
        miro.gate_opened_in_time.clear()
        result = w.run()
        expected = sequential.run()

        # Both team member listings waited for the member listing to start, and it did.
        assert miro.gate_opened_in_time == [True, True]
        assert result.outcome == expected.outcome == "complete"
        assert (result.pages, result.fetched, result.written, result.removed) == (
            expected.pages,
            expected.fetched,
            expected.written,
            expected.removed,
        )
        assert w.members.table() == sequential.members.table()
        assert result.snapshot is not None
        assert expected.snapshot is not None
        assert without_run_id(result.snapshot) == without_run_id(expected.snapshot)
        assert prefetch_threads() == []
    assert result.removed == 1
    listings = [fields for message, fields in w.logged if message == "members sync listing"]
    assert [fields["fromPage"] for fields in listings] == [1, 1]


def test_a_member_listing_auth_error_during_the_aux_fails_naming_the_scope_and_deprovisions_nobody() -> None:
    w, miro = gated_world(open_on="failure")
    miro.gated = False
    w.run()
    w.miro.members.pop(0)  # really gone, but the listing below fails
    w.miro.broken_member_pages = {
        1: MiroAuthError(
            "forbidden", status=403, required_scope="organizations:read", required_role="Company Admin"
        )
    }
    miro.gated = True
    w.clock = T0 + timedelta(days=1)

    with pytest.raises(
        MembersSyncError, match=r"listing organization members.*organizations:read.*Company Admin"
    ):
        w.run()

    # The error was raised while the aux (team member listings) was still waiting.
    assert miro.gate_opened_in_time == [True, True]
    assert prefetch_threads() == []
    assert all(item["status"] != "deprovisioned" for item in w.members.items.values())

    miro.gated = False
    w.miro.broken_member_pages = {}
    result = w.run()
    assert result.resumed
    assert result.outcome == "complete"
    assert w.members.items["00000"]["status"] == "deprovisioned"


def test_an_aux_failure_stops_the_member_listing_thread() -> None:
    w, miro = gated_world(count=200)
    miro.gated = False
    w.run()
    w.miro.members.pop(0)
    w.prefetch_pages = 1  # the listing thread soon waits on its full buffer
    miro.gated = True
    miro.team_members_error = MiroAuthError("forbidden", status=403, required_scope="team:read")
    served_before = miro.member_pages_served
    w.clock = T0 + timedelta(days=1)

    with pytest.raises(MembersSyncError, match=r"listing teams and team members.*team:read"):
        w.run()

    # The listing was under way when the aux failed (the second team may never have been started).
    assert miro.gate_opened_in_time
    assert all(miro.gate_opened_in_time)
    assert prefetch_threads() == []
    # One page in the buffer (its depth): the listing waited there for room that never came.
    assert miro.member_pages_served - served_before == 1
    assert all(item["status"] != "deprovisioned" for item in w.members.items.values())


def test_a_hand_over_right_after_the_aux_keeps_the_buffered_pages_for_the_next_invocation() -> None:
    w, miro = gated_world()

    # Hands over right after the aux phase.
    first = w.run(FakeDeadline(checks_before_low=0, count_when=aux_stored(w.state)))

    assert first.outcome == "continue"
    assert first.pages == 0
    assert miro.gate_opened_in_time == [True, True]
    assert prefetch_threads() == []
    assert w.state.last_run_page("members", first.run_id or "") is None  # no page record yet
    served = miro.member_pages_served
    assert served >= 1

    second = w.run()

    assert second.outcome == "complete"
    assert second.resumed
    assert second.run_id == first.run_id
    assert second.pages == 5
    # The pages fetched ahead by the first invocation were written by the second, not fetched again.
    assert miro.member_pages_served == 5
    clean = world()
    clean.run()
    assert w.members.table() == clean.members.table()


def test_the_packed_member_page_keeps_every_field_the_record_builder_uses() -> None:
    page = MembersPage.model_validate(
        {
            "type": "cursor-list",
            "limit": 100,
            "size": 3,
            "total": 1234,
            "cursor": "3458764510000000003",
            "futurePageField": {"nested": [1, "a", None]},
            "data": [
                {
                    "id": "3458764510000000001",
                    "email": " Mixed.Case@Example.com",
                    "role": "organization_internal_admin",
                    "license": "full",
                    "active": True,
                    "lastActivityAt": "2026-02-28T23:00:00.123456+02:00",
                    "licenseAssignedAt": "2025-01-01T00:00:00Z",
                    "type": "organization-member",
                    "adminRoles": [{"type": "prebuilt", "name": "Security Admin"}, {"name": "Content Admin"}],
                    "futureMemberField": "kept",
                },
                {
                    "id": "3458764510000000002",
                    "email": "suspended@example.com",
                    "role": "organization_internal_user",
                    "license": "basic",
                    "active": False,
                    "lastActivityAt": None,
                },
                {
                    "id": "3458764510000000003",
                    "email": "guest@partner.example",
                    "role": "organization_external_user",
                    "license": "free",
                    "active": True,
                    "adminRoles": [{"type": "custom", "name": "Ünïcødé role"}],
                },
            ],
        }
    )

    back = _unpack_page(_pack_page(page))

    assert back == page
    assert back.next_cursor == "3458764510000000003"
    assert back.model_extra == {"futurePageField": {"nested": [1, "a", None]}}
    assert back.data[0].model_extra == {"futureMemberField": "kept"}
    assert back.data[0].last_activity_at is not None
    assert back.data[0].last_activity_at == page.data[0].last_activity_at
    assert back.data[0].last_activity_at.utcoffset() == timedelta(hours=2)
    for before, after in zip(page.data, back.data, strict=True):
        assert after.admin_roles == before.admin_roles
        kwargs: dict[str, Any] = {
            "teams": ["t1"],
            "boards_owned": 2,
            "scim_id": "scim-1",
            "scim_checked_at": None,
            "now": T0,
        }
        assert build_member_record(after, None, **kwargs) == build_member_record(before, None, **kwargs)

    for cursor in (None, ""):  # the last page, however Miro says it
        last = page.model_copy(update={"cursor": cursor})
        assert _unpack_page(_pack_page(last)).next_cursor is None


def test_a_packed_page_of_100_members_is_a_fraction_of_its_json() -> None:
    page = MembersPage(data=org(100), cursor="00099", limit=100)
    packed = _pack_page(page)
    assert _unpack_page(packed) == page
    assert len(packed) * 3 < len(page.model_dump_json(by_alias=True))


@dataclass
class OrderedMiro(FakeMiro):
    """Records, in order, each member page and each team member listing requested."""

    order: list[str] = field(default_factory=list)
    team_members_error: Exception | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def iter_member_pages(self, limit: int = 100, cursor: str | None = None) -> Iterator[MembersPage]:
        for page in super().iter_member_pages(limit, cursor):
            yield page
            with self.lock:
                self.order.append("member page")

    def iter_team_member_pages(
        self, team_id: str, cursor: str | None = None, limit: int = 100
    ) -> Iterator[TeamMembersPage]:
        with self.lock:
            self.order.append("team members")
        if self.team_members_error is not None:
            raise self.team_members_error
        yield from super().iter_team_member_pages(team_id, cursor, limit)


def ordered_world(headroom: float | None) -> tuple[World, OrderedMiro]:
    w = world()
    miro = OrderedMiro(w.miro.members, teams=w.miro.teams, boards=w.miro.boards)
    w.miro = miro
    w.credit_headroom = lambda: headroom
    return w, miro


def test_when_credits_run_short_the_member_listing_waits_for_the_aux() -> None:
    w, miro = ordered_world(headroom=0.2)  # below the 70% hold-back
    reference = world()
    reference.prefetch_pages = 0

    result = w.run()

    assert result.outcome == "complete"
    first_page = miro.order.index("member page")
    assert "team members" not in miro.order[first_page:]
    reference.run()
    assert w.members.table() == reference.members.table()
    assert prefetch_threads() == []


def test_with_credits_to_spare_the_member_listing_runs_during_the_aux() -> None:
    w, miro = gated_world()
    w.credit_headroom = lambda: 0.9
    assert w.run().outcome == "complete"
    assert miro.gate_opened_in_time == [True, True]  # the listing started while the aux waited for it


def test_an_aux_failure_releases_a_held_member_listing() -> None:
    w, miro = ordered_world(headroom=0.0)
    miro.team_members_error = MiroAuthError("forbidden", status=403, required_scope="team:read")
    with pytest.raises(MembersSyncError, match="team:read"):
        w.run()
    assert "member page" not in miro.order
    assert miro.member_pages_served == 0  # held, then stopped: not one page requested
    assert prefetch_threads() == []
    assert all(record.status != "deprovisioned" for record in w.members.table().values())
