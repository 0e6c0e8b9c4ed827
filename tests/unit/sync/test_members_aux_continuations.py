"""The members sync across continuations at a scale where the aux (teams, team members, boards, SCIM
users, the organization) does not fit one invocation: it hands over part way and resumes, and no
page -- of the aux or of the member listing -- is fetched twice.

The fakes page everything (teams and team members cursor-chained, boards by offset, SCIM users by
start index) and count every page requested by where it was requested from."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import pytest

from miro_sync.miro.errors import MiroUnavailable
from miro_sync.miro.models import (
    BoardsPage,
    MembersPage,
    Organization,
    ScimListResponse,
    Team,
    TeamMember,
    TeamMembersPage,
    TeamsPage,
)
from miro_sync.sync.member_index import pack_section_parts
from miro_sync.sync.members_aux import AUX_PROGRESS, PAGES_AHEAD, AuxProgress, PagesAhead
from tests.unit.sync.fakes import FakeDeadline, FakeMiro, FakeScim, aux_stored
from tests.unit.sync.test_members_sync import World, org, prefetch_threads

MEMBERS = 300  # 30 member pages of 10
MEMBER_PAGES = 30
GATE_TIMEOUT_S = 10.0  # only ever waited in full when the overlap is broken


@dataclass
class Pauses:
    """Listings wait before serving the pages named in `at` until `resume` is set (the deadline sets
    it when it reports low): a page requested just as time runs out."""

    at: set[tuple[str, ...]] = field(default_factory=set)
    waiting: int = 0
    resumed_in_time: list[bool] = field(default_factory=list)
    resume: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def before(self, *key: str) -> None:
        if key not in self.at:
            return
        with self.lock:
            self.waiting += 1
        self.resumed_in_time.append(self.resume.wait(GATE_TIMEOUT_S))


@dataclass
class PagedMiro(FakeMiro):
    """Teams and team members in cursor-chained pages of a few, and every page requested counted by
    (kind, where): the cursor, offset or team it was requested for."""

    teams_per_page: int = 4
    team_members_per_page: int = 3
    fetched: Counter[tuple[str, ...]] = field(default_factory=Counter)
    aux_pages: int = 0  # pages other than member pages, so far
    member_pages: int = 0
    # Team member listings wait until this many member pages were served (None: they do not wait).
    gate_after_member_pages: int | None = None
    gate: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    pauses: Pauses = field(default_factory=Pauses)
    fail_once_at: set[tuple[str, ...]] = field(default_factory=set)  # pages answered 503 once

    def note(self, *key: str) -> None:
        with self.lock:
            self.fetched[key] += 1
            if key[0] == "members":
                self.member_pages += 1
                if (
                    self.gate_after_member_pages is not None
                    and self.member_pages >= self.gate_after_member_pages
                ):
                    self.gate.set()
            else:
                self.aux_pages += 1

    def get_organization(self) -> Organization:
        organization = super().get_organization()
        self.note("organization")
        return organization

    def iter_member_pages(self, limit: int = 100, cursor: str | None = None) -> Iterator[MembersPage]:
        for page in super().iter_member_pages(limit, cursor):
            self.note("members", cursor or "")
            yield page
            cursor = page.next_cursor

    def iter_team_pages(self, cursor: str | None = None, limit: int = 100) -> Iterator[TeamsPage]:
        ids = sorted(self.teams)
        start = int(cursor) if cursor else 0
        while True:
            self._call()
            self.note("teams", cursor or "")
            chunk = ids[start : start + self.teams_per_page]
            start += len(chunk)
            cursor = str(start) if start < len(ids) else None
            yield TeamsPage(
                data=[
                    Team(id=team_id, name=self.team_names.get(team_id, f"Team {team_id}"))
                    for team_id in chunk
                ],
                cursor=cursor,
            )
            if cursor is None:
                return

    def iter_team_member_pages(
        self, team_id: str, cursor: str | None = None, limit: int = 100
    ) -> Iterator[TeamMembersPage]:
        if self.gate_after_member_pages is not None:
            assert self.gate.wait(GATE_TIMEOUT_S)
        member_ids = self.teams[team_id]
        start = int(cursor) if cursor else 0
        while True:
            self.pauses.before("team members", team_id, cursor or "")
            if ("team members", team_id, cursor or "") in self.fail_once_at:
                self.fail_once_at.discard(("team members", team_id, cursor or ""))
                raise MiroUnavailable("Miro is down", status=503)
            self._call()
            self.note("team members", team_id, cursor or "")
            chunk = member_ids[start : start + self.team_members_per_page]
            start += len(chunk)
            cursor = str(start) if start < len(member_ids) else None
            roles = [self.team_roles.get((team_id, member_id), "member") for member_id in chunk]
            yield TeamMembersPage(
                data=[
                    TeamMember.model_validate({"id": member_id, "role": role})
                    for member_id, role in zip(chunk, roles, strict=True)
                ],
                cursor=cursor,
            )
            if cursor is None:
                return

    def iter_board_pages(
        self, owner: str | None = None, team_id: str | None = None, offset: int = 0, limit: int = 50
    ) -> Iterator[BoardsPage]:
        for page in super().iter_board_pages(owner, team_id, offset, limit):
            self.note("boards", str(offset))
            yield page
            offset += len(page.data)


@dataclass
class PagedScim(FakeScim):
    """Returns at most `page_size` users per page, however many are asked for (SCIM allows it)."""

    page_size: int = 25
    fetched: Counter[tuple[str, ...]] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)
    miro: PagedMiro | None = None  # counts SCIM pages among its aux pages

    def iter_user_pages(
        self,
        filter: str | None = None,
        count: int = 100,
        start_index: int = 1,
        attributes: Sequence[str] | None = None,
    ) -> Iterator[ScimListResponse]:
        pages = super().iter_user_pages(filter, min(count, self.page_size), start_index, attributes)
        while True:
            if self.miro is not None:
                self.miro.pauses.before("scim", str(start_index))
            page = next(pages, None)
            if page is None:
                return
            with self.lock:
                self.fetched["scim", str(start_index)] += 1
            if self.miro is not None:
                with self.miro.lock:
                    self.miro.aux_pages += 1
            yield page
            start_index += len(page.resources)


def paged_world() -> World:
    """300 members; 25 teams of 2-8 members (1-3 pages each), 4 teams a page; 420 boards (9 pages);
    270 SCIM users (11 pages of 25)."""
    people = org(MEMBERS)
    scim_users = {m.email: f"scim-{m.id}" for m in people if m.role == "organization_internal_user"}
    teams = {f"t{n:02d}": [people[(n * 7 + k) % MEMBERS].id for k in range(2 + n % 7)] for n in range(25)}
    roles = {(team_id, member_ids[0]): "admin" for team_id, member_ids in teams.items()}
    boards = [(f"b{i}", people[i % 13].id) for i in range(420)]
    miro = PagedMiro(people, teams=teams, boards=boards, team_roles=roles)
    w = World(miro=miro, scim=PagedScim(scim_users, miro=miro))
    w.prefetch_pages = 0  # the member listing after the aux (tests of the overlap set it)
    w.fetch_workers = 2  # 8 aux requests handed out at a time: time runs low with most of them to go
    return w


def fetched(w: World) -> Counter[tuple[str, ...]]:
    assert isinstance(w.miro, PagedMiro)
    assert isinstance(w.scim, PagedScim)
    return w.miro.fetched + w.scim.fetched


def aux_pages(w: World) -> int:
    assert isinstance(w.miro, PagedMiro)
    return w.miro.aux_pages


def low_after_aux_pages(w: World, pages: int) -> FakeDeadline:
    """Runs low once this invocation has fetched `pages` aux pages."""
    before = aux_pages(w)
    return FakeDeadline(low_when=lambda: aux_pages(w) - before >= pages)


def hand_overs_in_the_aux(w: World) -> int:
    return sum(1 for message, _fields in w.logged if message == "members sync hands over during the aux")


def uninterrupted(prefetch_pages: int = 0) -> tuple[World, str]:
    clean = paged_world()
    clean.prefetch_pages = prefetch_pages
    result = clean.run()
    assert result.outcome == "complete"
    assert result.run_id is not None
    return clean, result.run_id


def assert_same_as_uninterrupted(w: World, run_id: str, prefetch_pages: int = 0) -> None:
    clean, clean_run_id = uninterrupted(prefetch_pages)
    pages = fetched(w)
    assert max(pages.values()) == 1, [key for key, count in pages.items() if count > 1]
    assert pages.keys() == fetched(clean).keys()  # the same pages, each once
    assert w.state.byte_blobs[(run_id, "aux")] == clean.state.byte_blobs[(clean_run_id, "aux")]
    assert w.members.table() == clean.members.table()


def test_an_aux_interrupted_by_the_deadline_resumes_and_fetches_only_the_pages_it_lacks() -> None:
    w = paged_world()

    first = w.run(low_after_aux_pages(w, 10))

    assert first.outcome == "continue"
    run_id = first.run_id or ""
    assert first.pages == 0
    assert hand_overs_in_the_aux(w) == 1
    assert (run_id, "aux") not in w.state.byte_blobs
    assert (run_id, AUX_PROGRESS) in w.state.byte_blobs
    assert aux_pages(w) >= 10
    assert not AuxProgress.from_bytes(w.state.byte_blobs[(run_id, AUX_PROGRESS)], full_scim=True).complete()
    fetched_first = fetched(w)

    second = w.run()

    assert second.outcome == "complete"
    assert second.resumed
    fetched_second = fetched(w) - fetched_first
    assert fetched_second  # the rest of the aux and the member pages
    assert not fetched_second.keys() & fetched_first.keys()
    assert any(message == "members sync resumes the aux" for message, _fields in w.logged)
    assert_same_as_uninterrupted(w, run_id)


def test_listings_of_several_pages_stopped_part_way_continue_at_their_next_page() -> None:
    w = paged_world()
    assert isinstance(w.miro, PagedMiro)
    pauses = w.miro.pauses
    # Team t06 (8 members, pages at 0, 3 and 6) and the SCIM stream (pages of 25 from 26) are at
    # their second page when time runs low; each is served that page, then stops.
    pauses.at = {("team members", "t06", "3"), ("scim", "51")}

    def both_waiting() -> bool:
        if pauses.waiting < 2:
            return False
        pauses.resume.set()
        return True

    first = w.run(FakeDeadline(low_when=both_waiting))

    assert first.outcome == "continue"
    assert pauses.resumed_in_time == [True, True]
    run_id = first.run_id or ""
    progress = AuxProgress.from_bytes(w.state.byte_blobs[(run_id, AUX_PROGRESS)], full_scim=True)
    assert progress.team_cursors == {6: "6"}  # t06 continues at its third page
    assert progress.scim_ranges == [[76, 271]]  # the stream continues at user 76
    assert fetched(w)["team members", "t06", "6"] == 0
    assert fetched(w)["scim", "76"] == 0

    second = w.run()

    assert second.outcome == "complete"
    assert fetched(w)["team members", "t06", ""] == 1  # not listed again from its start
    assert_same_as_uninterrupted(w, run_id)


def test_an_aux_that_fails_keeps_what_it_fetched_for_the_retry() -> None:
    w = paged_world()
    assert isinstance(w.miro, PagedMiro)
    w.miro.fail_once_at = {("team members", "t09", "3")}  # t09's second page, after some of the aux

    with pytest.raises(MiroUnavailable):
        w.run()

    checkpoint = w.state.load_checkpoint("members")
    assert checkpoint is not None
    stored = w.state.byte_blobs[(checkpoint.state["runId"], AUX_PROGRESS)]
    assert not AuxProgress.from_bytes(stored, full_scim=True).complete()
    retry = w.run()

    assert retry.outcome == "complete"
    assert retry.resumed
    assert_same_as_uninterrupted(w, retry.run_id or "")


def test_an_aux_interrupted_in_several_invocations_in_a_row_still_fetches_every_page_once() -> None:
    w = paged_world()
    w.prefetch_pages = 3  # the member listing runs alongside, and hands over with the aux each time

    results = [w.run(low_after_aux_pages(w, 6))]
    while results[-1].outcome == "continue":
        assert len(results) < 40, "the sync did not converge"
        run_id = results[-1].run_id or ""
        stored = w.state.byte_blobs.get((run_id, PAGES_AHEAD))
        if stored is not None:  # the pages kept for the next invocation never exceed the buffer
            assert len(PagesAhead.from_bytes(stored).pages) <= 3
        results.append(w.run(low_after_aux_pages(w, 6)))

    assert hand_overs_in_the_aux(w) >= 5
    assert prefetch_threads() == []
    assert sum(count for (kind, *_where), count in fetched(w).items() if kind == "members") == MEMBER_PAGES
    assert_same_as_uninterrupted(w, results[-1].run_id or "", prefetch_pages=3)


def _old_format_progress() -> bytes:
    return b"".join(pack_section_parts([], {"format": 0}))


@pytest.mark.parametrize(
    ("damage", "logged"),
    [
        ("missing", False),
        ("truncated", True),
        ("not a progress", True),
        ("old format", True),
    ],
)
def test_a_resumed_aux_whose_progress_is_missing_or_unreadable_starts_over(damage: str, logged: bool) -> None:
    w = paged_world()
    first = w.run(low_after_aux_pages(w, 10))
    assert first.outcome == "continue"
    run_id = first.run_id or ""
    key = (run_id, AUX_PROGRESS)
    progress = w.state.byte_blobs[key]
    if damage == "missing":
        del w.state.byte_blobs[key]
    elif damage == "truncated":
        w.state.byte_blobs[key] = progress[: len(progress) * 2 // 3]
    elif damage == "not a progress":
        w.state.byte_blobs[key] = b"\x00\x00\x00\x02{}" + progress[6:]
    else:
        w.state.byte_blobs[key] = _old_format_progress()
    before = fetched(w)

    second = w.run()

    assert second.outcome == "complete"
    assert fetched(w)["organization",] == 2  # the aux was collected from its start
    assert (fetched(w) - before).keys() == fetched(uninterrupted()[0]).keys()
    starts_over = [
        fields for message, fields in w.logged if message == "members sync collects the aux from the start"
    ]
    assert bool(starts_over) == logged
    clean, _clean_run_id = uninterrupted()
    assert w.members.table() == clean.members.table()


def test_no_member_page_is_fetched_twice_across_a_hand_over_in_the_aux() -> None:
    w = paged_world()
    w.prefetch_pages = 5
    assert isinstance(w.miro, PagedMiro)
    # The team member listings wait until the member listing has served 3 pages; then time runs low.
    w.miro.gate_after_member_pages = 3
    miro = w.miro

    first = w.run(FakeDeadline(low_when=lambda: miro.member_pages >= 3))

    assert first.outcome == "continue"
    assert hand_overs_in_the_aux(w) == 1
    assert 3 <= miro.member_pages <= 5  # buffered, not written: the aux is not there yet
    assert first.pages == 0
    assert prefetch_threads() == []

    second = w.run()

    assert second.outcome == "complete"
    member_pages = {key: count for key, count in fetched(w).items() if key[0] == "members"}
    assert len(member_pages) == MEMBER_PAGES
    assert set(member_pages.values()) == {1}
    assert_same_as_uninterrupted(w, first.run_id or "", prefetch_pages=5)


def test_no_member_page_is_fetched_twice_across_hand_overs_in_the_listing() -> None:
    w = paged_world()
    w.prefetch_pages = 100  # the whole listing fits the buffer

    # After the aux: the check right after it passes, so do those after pages 1 and 2; then low.
    first = w.run(FakeDeadline(checks_before_low=2, count_when=aux_stored(w.state)))
    assert first.outcome == "continue"
    assert first.pages == 2
    # The resumed invocation lists without a prefetch thread: from the pages kept, then hands over.
    second = w.run(FakeDeadline(checks_before_low=5))
    assert second.outcome == "continue"
    assert second.pages == 6
    third = w.run()

    assert third.outcome == "complete"
    assert first.pages + second.pages + third.pages == MEMBER_PAGES
    member_pages = {key: count for key, count in fetched(w).items() if key[0] == "members"}
    assert len(member_pages) == MEMBER_PAGES
    assert set(member_pages.values()) == {1}
    assert_same_as_uninterrupted(w, first.run_id or "", prefetch_pages=100)


def test_a_stored_progress_reads_back_as_it_was() -> None:
    w = paged_world()
    first = w.run(low_after_aux_pages(w, 25))
    stored = w.state.byte_blobs[(first.run_id or "", AUX_PROGRESS)]

    progress = AuxProgress.from_bytes(stored, full_scim=True)

    assert b"".join(progress.to_parts()) == stored
    assert progress.organization_read
    assert progress.team_ids
    assert progress.boards_first
    assert progress.scim_first
    assert not progress.complete()


def test_pages_ahead_are_taken_from_the_page_after_the_last_record() -> None:
    ahead = PagesAhead(first_page=3, pages=[b"p3", b"p4", b"p5"], cursor="c5", ended=False)
    back = PagesAhead.from_bytes(b"".join(ahead.to_parts()))
    assert back == ahead
    assert back.from_page(4) == PagesAhead(4, [b"p4", b"p5"], "c5", False)
    assert back.from_page(6) is None  # the records went past them
    assert back.from_page(2) is None  # a gap: page 2 is not among them
