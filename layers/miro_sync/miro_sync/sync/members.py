"""Members sync: Miro organization members (+ teams, board ownership, SCIM ids) into MembersTable.

One run goes through phases, each resumable from StateTable:

1. ``aux``: team memberships with each member's team role and the team's name (teams L1 + team
   members L2), board owners (``GET /v2/boards`` paged once, L1, grouped by owner: one request
   per 50 boards instead of one per member), the organization (full licenses purchased) and, on
   the first run and then once every ``SCIM_RELIST`` (7 days), the SCIM id and display name of
   every user (``GET /Users`` paged at Miro's maximum of 1,000 per page, only ``userName``,
   ``displayName`` and ``name`` asked for, joined on userName = email). Other runs look SCIM up
   only for the few internal members that still lack an id. Stored as compressed blobs for the run
   (an aux stored by an older version, without team roles, is collected again). At 500,000 members
   the aux takes longer than one invocation: it watches the deadline, and an invocation that runs
   low stops handing out requests, lets the running ones finish and stores what it has
   (``members_aux.AuxProgress``); the next invocation fetches only what is missing.
2. ``members``: pages ``/v2/orgs/{org}/members``. Each page is handed to a writer thread
   (BatchGetItem of the page's items, fingerprint comparison, batched puts for new members,
   conditional updates for changed ones, then the page record = checkpoint), while the main
   thread already fetches the next page. The cursor chain is the run's critical path, so a run
   that starts with no page records begins it at once, on a background thread, while ``aux`` is
   collected: up to ``member_prefetch_pages`` pages wait for the aux, buffered as zlib'd JSON
   (~4 KB per 100 members instead of ~140 KB as pydantic objects: 300 pages, the default, ~1.3 MB).
   Buffered pages are not checkpointed, but a hand-over stores them (``members_aux.PagesAhead``) for
   the next invocation, so no member page is fetched twice across continuations; a failure drops them.
3. ``removals``: only after the listing completed. Members of the previous complete run's page
   records that this run did not list are marked deprovisioned (never deleted). Memory: the set
   of this run's member ids (~100 B per member); no Scan.
4. ``finish``: the usage snapshot, then the checkpoint returns to idle.

Timestamps written for a run (firstSeenAt, lastChangedAt, removedAt) are the run's start time, so a
run interrupted any number of times writes exactly what an uninterrupted run would.
"""

from __future__ import annotations

import threading
import uuid
import zlib
from array import array
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Protocol, TypeVar

from miro_sync.miro.errors import MiroAuthError, MiroNotFound
from miro_sync.miro.models import (
    BoardsPage,
    MembersPage,
    Organization,
    OrgMember,
    ScimListResponse,
    ScimUser,
    TeamMembersPage,
    TeamsPage,
)
from miro_sync.store.dynamo import iso_utc, parse_iso
from miro_sync.store.members import (
    STATUS_ACTIVE,
    ConcurrentChangeError,
    MemberRecord,
    TeamMembership,
    build_member_record,
)
from miro_sync.store.state import RunPage, StoredCheckpoint
from miro_sync.sync.audit_prefetch import prefetched  # generic (shared with the audit sync)
from miro_sync.sync.member_index import (
    Buffer,
    CountIndex,
    HashSet,
    StaleIndexFormatError,
    StringIndex,
    TeamIndex,
    key_hash,
    pack_section_parts,
    unpack_sections,
)
from miro_sync.sync.members_aux import (
    AUX_PROGRESS,
    BOARD_PAGE,
    NAME_SEPARATOR,
    PAGES_AHEAD,
    AuxProgress,
    PagesAhead,
    UnusableProgressError,
)

SYNC_NAME = "members"
INTERNAL_ROLES = frozenset({"organization_internal_admin", "organization_internal_user"})
UNPAID_LICENSES = frozenset({"free", "free_restricted"})
SCIM_RECHECK = timedelta(days=7)
SCIM_RELIST = timedelta(days=7)  # a full SCIM listing (ids and display names) at least this often
_MAX_WRITE_ATTEMPTS = 5
_SCIM_PAGE = 1000  # the most SCIM /Users returns per page (spec: count "maximum value ... is 1000")
_SCIM_STREAMS = 1  # SCIM pages in flight: 1,000 parsed users each, so one (100k members stay <= 128 MB)
_SCIM_ATTRIBUTES = ("userName", "displayName", "name")  # all the sync reads (id always comes)
_PageT = TypeVar("_PageT")
PREFETCH_THREAD = "members-prefetch"
_HOLD_POLL_S = 0.05
_PAGE_ZLIB_LEVEL = 1  # level 6 saves another ~13% for twice the CPU; the producer thread pays it
# How often the aux looks at the deadline while its requests run (also on each one that finishes).
_DEADLINE_POLL_S = 0.5
_AuxTask = tuple[str, Callable[[], Any]]


# --- adapters (real ones: MiroRestClient, MiroScimClient, MembersRepository, StateRepository) -----


class MembersSource(Protocol):
    def get_organization(self) -> Organization: ...

    def iter_member_pages(self, limit: int = 100, cursor: str | None = None) -> Iterator[MembersPage]: ...

    def iter_team_pages(self, cursor: str | None = None, limit: int = 100) -> Iterator[TeamsPage]: ...

    def iter_team_member_pages(
        self, team_id: str, cursor: str | None = None, limit: int = 100
    ) -> Iterator[TeamMembersPage]: ...

    def iter_board_pages(
        self, owner: str | None = None, team_id: str | None = None, offset: int = 0, limit: int = 50
    ) -> Iterator[BoardsPage]: ...


class ScimDirectory(Protocol):
    def iter_user_pages(
        self,
        filter: str | None = None,
        count: int = 100,
        start_index: int = 1,
        attributes: Sequence[str] | None = None,
    ) -> Iterator[ScimListResponse]: ...

    def find_user_by_username(self, email: str) -> ScimUser | None: ...


class MembersStore(Protocol):
    def get(self, member_id: str) -> MemberRecord | None: ...

    def get_many(self, member_ids: Iterable[str]) -> tuple[dict[str, MemberRecord], int]: ...

    def put_new(self, records: Sequence[MemberRecord]) -> int: ...

    def replace_synced(self, record: MemberRecord, *, expected_last_seen: str) -> None: ...

    def mark_deprovisioned(self, existing: MemberRecord, *, now: datetime) -> bool: ...


class StateStore(Protocol):
    def load_checkpoint(self, name: str) -> StoredCheckpoint | None: ...

    def acquire_lease(self, name: str, owner: str, *, now_ms: int, until_ms: int) -> bool: ...

    def save_checkpoint(self, name: str, owner: str, state: Mapping[str, Any]) -> None: ...

    def release_lease(self, name: str, owner: str) -> None: ...

    def put_run_page(
        self,
        name: str,
        run_id: str,
        number: int,
        member_ids: Sequence[str],
        state: Mapping[str, Any],
        *,
        now: datetime,
    ) -> None: ...

    def last_run_page(self, name: str, run_id: str) -> RunPage | None: ...

    def iter_run_pages(self, name: str, run_id: str) -> Iterator[RunPage]: ...

    def put_bytes(
        self, name: str, run_id: str, kind: str, payload: bytes | Iterable[Buffer], *, now: datetime
    ) -> int: ...

    def load_bytes(self, name: str, run_id: str, kind: str) -> bytes | None: ...

    def put_usage_snapshot(self, at: datetime, run_id: str, snapshot: Mapping[str, Any]) -> None: ...


class DeadlineWatch(Protocol):
    def remaining_ms(self) -> int: ...

    def running_low(self) -> bool: ...


# --- errors and results ---------------------------------------------------------------------------


class MembersSyncError(RuntimeError):
    """The run cannot continue; the message says why and what to fix. Nobody was deprovisioned."""


class IncompleteListingError(MembersSyncError):
    """The member listing looks incomplete; removals are refused."""


@dataclass
class MembersSyncResult:
    outcome: str  # "complete" | "continue" | "busy"
    run_id: str | None = None
    resumed: bool = False
    pages: int = 0
    fetched: int = 0
    written: int = 0
    unchanged: int = 0
    removed: int = 0
    write_requests: int = 0
    read_requests: int = 0
    scim_lookups: int = 0
    snapshot: dict[str, Any] | None = None


@dataclass
class _Totals:
    """Running counts over the listing, stored in every page record (JSON-able)."""

    members: int = 0
    by_license: Counter[str] = field(default_factory=Counter)
    by_role: Counter[str] = field(default_factory=Counter)
    by_status: Counter[str] = field(default_factory=Counter)
    inactive_seats: Counter[str] = field(default_factory=Counter)
    never_seen_seats: int = 0

    def add(self, record: MemberRecord, *, run_started: datetime, thresholds: Sequence[int]) -> None:
        self.members += 1
        self.by_license[record.license] += 1
        self.by_role[record.role] += 1
        self.by_status[record.status] += 1
        if record.status != STATUS_ACTIVE or record.license in UNPAID_LICENSES:
            return
        seen = record.last_seen_at
        if seen is None:
            self.never_seen_seats += 1
        for days in thresholds:
            if seen is None or seen < run_started - timedelta(days=days):
                self.inactive_seats[str(days)] += 1

    def merge(self, other: _Totals) -> None:
        self.members += other.members
        self.by_license.update(other.by_license)
        self.by_role.update(other.by_role)
        self.by_status.update(other.by_status)
        self.inactive_seats.update(other.inactive_seats)
        self.never_seen_seats += other.never_seen_seats

    def to_json(self) -> dict[str, Any]:
        return {
            "members": self.members,
            "byLicense": dict(self.by_license),
            "byRole": dict(self.by_role),
            "byStatus": dict(self.by_status),
            "inactiveSeats": dict(self.inactive_seats),
            "neverSeenSeats": self.never_seen_seats,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> _Totals:
        return cls(
            members=int(data.get("members", 0)),
            by_license=Counter(data.get("byLicense", {})),
            by_role=Counter(data.get("byRole", {})),
            by_status=Counter(data.get("byStatus", {})),
            inactive_seats=Counter(data.get("inactiveSeats", {})),
            never_seen_seats=int(data.get("neverSeenSeats", 0)),
        )


@dataclass
class _Aux:
    """What the member records need besides the member listing, in compact form (member_index)."""

    teams: TeamIndex
    boards_owned: CountIndex
    boards_total: int
    full_licenses_purchased: int | None
    # lower-cased email -> "scimId\x1fdisplayName" (an aux of an older version: "scimId"); None when
    # SCIM was not paged this run. One index for both: one key array, names packed like the ids.
    scim_ids: StringIndex | None

    def scim_user(self, email: str) -> tuple[str | None, str | None]:
        """(SCIM id, display name) of the user with this lower-cased email, as listed this run."""
        if self.scim_ids is None:
            return None, None
        value = self.scim_ids.get(email)
        if value is None:
            return None, None
        scim_id, _separator, name = value.partition(NAME_SEPARATOR)
        return scim_id, name or None

    def to_parts(self) -> list[Buffer]:
        """The bytes of to_bytes() as buffers (views of the indexes' arrays), for put_bytes to
        compress one by one instead of joining a copy of everything first."""
        sections = [self.teams.to_parts(), self.boards_owned.to_parts()]
        if self.scim_ids is not None:
            sections.append(self.scim_ids.to_parts())
        header = {"boardsTotal": self.boards_total, "fullLicensesPurchased": self.full_licenses_purchased}
        return pack_section_parts(sections, header)

    def to_bytes(self) -> bytes:
        return b"".join(self.to_parts())

    @classmethod
    def from_bytes(cls, data: bytes) -> _Aux:
        header, sections = unpack_sections(data)
        return cls(
            teams=TeamIndex.from_bytes(sections[0]),
            boards_owned=CountIndex.from_bytes(sections[1]),
            boards_total=int(header["boardsTotal"]),
            full_licenses_purchased=header.get("fullLicensesPurchased"),
            scim_ids=StringIndex.from_bytes(sections[2]) if len(sections) > 2 else None,
        )


@dataclass
class _PageOutcome:
    """What storing one page did; merged into the run's totals in page order."""

    member_ids: list[str]
    totals: _Totals
    written: int = 0
    unchanged: int = 0
    write_requests: int = 0
    read_requests: int = 0
    scim_lookups: int = 0


def _auth_failure(error: MiroAuthError, what: str) -> MembersSyncError:
    needs = " and ".join(
        part
        for part in (
            f"the scope {error.required_scope}" if error.required_scope else "",
            f"the role {error.required_role}" if error.required_role else "",
        )
        if part
    )
    hint = f"; the token needs {needs}" if needs else ""
    return MembersSyncError(
        f"Miro refused {what} (HTTP {error.status}){hint}. Nothing was marked deprovisioned."
    )


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _first_page(pages: Iterator[_PageT]) -> _PageT | None:
    """The first page of a listing (None if it has none); the listing is closed either way."""
    try:
        return next(pages, None)
    finally:
        _close(pages)


def _close(pages: Iterator[Any]) -> None:
    close = getattr(pages, "close", None)
    if close is not None:
        close()


def _pack_page(page: MembersPage) -> bytes:
    """A members page as zlib'd JSON: measured on emulator members, a page of 100 costs ~4.4 KB
    this way, ~27 KB as plain JSON and ~140 KB as pydantic objects. Every field and extra survives
    `_unpack_page` (by alias, so the models parse it back exactly as they parse Miro's own JSON)."""
    return zlib.compress(page.model_dump_json(by_alias=True).encode(), _PAGE_ZLIB_LEVEL)


def _unpack_page(data: bytes) -> MembersPage:
    return MembersPage.model_validate_json(zlib.decompress(data))


class _PrefetchedPages:
    """Member pages fetched ahead by a background thread (see `prefetched`) and buffered packed;
    iterated by `_list_members` in place of the client's own page iterator. A resumed invocation
    starts with the pages an earlier one fetched ahead and stored (`ahead`) and continues the
    listing after them.

    Every page fetched is in `_pending` from the moment it arrives until it is taken, whichever
    queue it sits in, so `left()` can hand all of them to the next invocation.
    Memory: at most `member_prefetch_pages` packed pages (the producer's `hold` waits while the
    buffer is full). `pack` runs on the producer thread, `__next__` on the consumer; `left()` only
    once the producer has stopped."""

    def __init__(self, ahead: PagesAhead | None = None) -> None:
        self.first_page = ahead.first_page if ahead is not None else 1  # the first page's number
        self.fetched = 0
        self.taken = 0
        self._pending: deque[bytes] = deque(ahead.pages if ahead is not None else ())
        self._preloaded = len(self._pending)
        self.next_cursor = ahead.cursor if ahead is not None else None
        self.ended = ahead.ended if ahead is not None else False
        self._packed: Iterator[bytes] = iter(())

    @property
    def buffered(self) -> int:
        """Pages fetched (or stored by an earlier invocation) but not yet taken."""
        return len(self._pending)

    def pack(
        self, open_pages: Callable[[], Iterator[MembersPage]], hold: Callable[[], bool]
    ) -> Iterator[bytes]:
        """`hold` is called before each page is requested; it may wait; False: stop listing."""
        pages: Iterator[MembersPage] | None = None
        try:
            pages = open_pages()  # opened on the producer thread, at its first step
            while True:
                if not hold():
                    return
                page = next(pages, None)
                if page is None:
                    self.ended = True
                    return
                data = _pack_page(page)
                self._pending.append(data)  # before the hand-off: a page is never only in a queue
                self.next_cursor = page.next_cursor
                self.ended = page.next_cursor is None
                self.fetched += 1
                yield data
        finally:
            if pages is not None:
                _close(pages)

    def attach(self, packed: Iterator[bytes]) -> None:
        self._packed = packed

    def __iter__(self) -> _PrefetchedPages:
        return self

    def __next__(self) -> MembersPage:
        if self._preloaded:
            self._preloaded -= 1
            data = self._pending.popleft()
        else:
            data = next(self._packed)  # the producer's error (e.g. MiroAuthError) is raised here
            self._pending.popleft()  # the same page: pages reach the queue in the order of `_pending`
        self.taken += 1
        return _unpack_page(data)

    def left(self) -> PagesAhead | None:
        """The pages fetched and not taken, numbered after those taken (None: none, or only the
        ones an earlier invocation stored, unchanged). Only after the producer stopped."""
        if not self._pending or not (self.fetched or self.taken):
            return None
        return PagesAhead(self.first_page + self.taken, list(self._pending), self.next_cursor, self.ended)


class MembersSync:
    def __init__(
        self,
        *,
        miro: MembersSource,
        scim: ScimDirectory | None,
        members: MembersStore,
        state: StateStore,
        clock: Callable[[], datetime] = _utc_now,
        page_size: int = 100,
        inactive_thresholds_days: Sequence[int] = (30, 60, 90),
        log: Callable[[str, Mapping[str, Any]], None] | None = None,
        fetch_workers: int = 12,
        write_workers: int = 4,
        member_prefetch_pages: int = 300,
        credit_headroom: Callable[[], float | None] | None = None,
        listing_holdback: float = 0.7,
    ) -> None:
        self._miro = miro
        self._scim = scim
        self._members = members
        self._state = state
        self._clock = clock
        self._page_size = page_size
        self._thresholds = tuple(inactive_thresholds_days)
        self._log = log or (lambda _message, _fields: None)
        # Independent listings (team members, board and SCIM pages) are fetched this many at a time;
        # this many member pages are written at once while the next page is fetched.
        self._fetch_workers = max(1, fetch_workers)
        self._write_workers = max(1, write_workers)
        # A fresh run lists members while the aux is collected, buffering at most this many pages
        # (packed, ~4.4 KB per 100 members); 0 lists them only after the aux, as before.
        self._member_prefetch_pages = max(0, member_prefetch_pages)
        # While the aux is collected, member pages are requested only while more than
        # `listing_holdback` of the credit limit is usable (`credit_headroom`: the share usable now,
        # None when unknown). The member records wait for the aux and the writes after it are the
        # longest stretch of a first sync, so when credits run short the aux goes first.
        self._credit_headroom = credit_headroom
        self._listing_holdback = listing_holdback

    # --- entry point -----------------------------------------------------------------------------

    def run(self, *, invocation_id: str, deadline: DeadlineWatch) -> MembersSyncResult:
        now = self._clock()
        now_ms = int(now.timestamp() * 1000)
        if not self._state.acquire_lease(
            SYNC_NAME, invocation_id, now_ms=now_ms, until_ms=now_ms + max(deadline.remaining_ms(), 60_000)
        ):
            self._log("another invocation holds the members sync lease", {})
            return MembersSyncResult(outcome="busy")
        try:
            return self._run_locked(invocation_id, deadline, now)
        finally:
            self._state.release_lease(SYNC_NAME, invocation_id)

    def _run_locked(self, owner: str, deadline: DeadlineWatch, now: datetime) -> MembersSyncResult:
        stored = self._state.load_checkpoint(SYNC_NAME)
        state = dict(stored.state) if stored else {}
        result = MembersSyncResult(outcome="continue")
        if state.get("runId") and state.get("phase") not in (None, "idle"):
            result.resumed = True
            state["invocations"] = int(state.get("invocations", 1)) + 1
        else:
            state.update(
                runId=f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}",
                phase="aux",
                startedAt=iso_utc(now),
                invocations=1,
                fullScim=self._full_scim_due(state, now),
            )
        self._state.save_checkpoint(SYNC_NAME, owner, state)
        run_id: str = state["runId"]
        result.run_id = run_id
        started = parse_iso(state["startedAt"]) or now
        self._log(
            "members sync invocation", {"runId": run_id, "phase": state["phase"], "resumed": result.resumed}
        )

        # The aux collected by this invocation is used as built: reading it back from the store would
        # hold the compressed chunks, the decompressed blob and the rebuilt indexes at once (~30 MB at
        # 100,000 members) just where the member pages start. A resumed invocation loads it.
        aux: _Aux | None = None
        # The member listing's cursor chain is the critical path: a run with no page records yet
        # starts it now, on a background thread, and `_list_members` takes its pages once the aux is
        # there. Every way out of this block (hand-over, failure in aux or listing) stops the thread.
        # No member page is fetched twice across continuations: on a hand-over -- during the aux, right
        # after it, or in the listing -- the pages fetched ahead and not written are stored with the
        # cursor after them (`PagesAhead`), and the next invocation takes them first and continues the
        # listing there. (Prefetching only in an invocation sure to finish the aux cannot be decided
        # up front: the aux's length depends on Miro's credits and latency.) A failure drops them.
        prefetch = ExitStack()
        aux_collected = threading.Event()  # the aux is there: the listing no longer holds back
        leaving = threading.Event()  # set before the prefetch is stopped: a held listing fetches no more
        handing_over = False
        member_pages: _PrefetchedPages | None = None
        try:
            if (
                state["phase"] == "aux"
                and self._member_prefetch_pages > 0
                and self._state.last_run_page(SYNC_NAME, run_id) is None
            ):
                ahead = self._load_pages_ahead(run_id, first_page=1)
                member_pages = prefetch.enter_context(
                    self._prefetch_member_pages(aux_collected, leaving, ahead)
                )
            if state["phase"] == "aux":
                aux = self._collect_aux(run_id, bool(state.get("fullScim")), now, deadline)
                if aux is None:  # out of time: its progress is stored
                    handing_over = True
                    return result
                aux_collected.set()
                state["phase"] = "members"
                self._state.save_checkpoint(SYNC_NAME, owner, state)
                if deadline.running_low():
                    handing_over = True
                    return result
            if aux is None:
                aux = self._load_aux(run_id)
            if aux is None:  # expired or never completed: collect it again
                aux = self._collect_aux(run_id, bool(state.get("fullScim")), now, deadline)
                if aux is None:
                    handing_over = True
                    return result

            if state["phase"] == "members":
                complete = self._list_members(run_id, aux, started, deadline, result, pages=member_pages)
                if not complete:
                    handing_over = True
                    return result
                state["phase"] = "removals"
                self._state.save_checkpoint(SYNC_NAME, owner, state)
        finally:
            leaving.set()
            prefetch.close()
            if handing_over and member_pages is not None:
                self._store_pages_ahead(run_id, member_pages, now)

        last_page = self._state.last_run_page(SYNC_NAME, run_id)
        totals = _Totals.from_json(last_page.state["totals"]) if last_page else _Totals()
        removed_since_last_run = 0
        if state["phase"] == "removals":
            removed_since_last_run = self._apply_removals(
                run_id, state.get("lastCompleteRunId"), totals.members, started, result
            )
            state["phase"] = "finish"
            state["removedSinceLastRun"] = removed_since_last_run
            self._state.save_checkpoint(SYNC_NAME, owner, state)

        snapshot = self._snapshot(run_id, started, totals, aux, int(state.get("removedSinceLastRun", 0)))
        self._state.put_usage_snapshot(started, run_id, snapshot)
        result.snapshot = snapshot
        state.update(
            phase="idle", runId=None, lastCompleteRunId=run_id, lastCompleteAt=iso_utc(self._clock())
        )
        state.pop("removedSinceLastRun", None)
        if state.get("fullScim"):
            state["lastFullScimAt"] = iso_utc(started)
        self._state.save_checkpoint(SYNC_NAME, owner, state)
        result.outcome = "complete"
        self._log(
            "members sync complete", {"runId": run_id, **{k: v for k, v in snapshot.items() if k != "runId"}}
        )
        return result

    def _full_scim_due(self, state: Mapping[str, Any], now: datetime) -> bool:
        """Page all of SCIM this run: on the first run, and when the last full listing is older than
        SCIM_RELIST (display names change; runs in between only look up members lacking an id)."""
        if self._scim is None:
            return False
        if not state.get("lastCompleteRunId"):
            return True
        listed = parse_iso(state["lastFullScimAt"]) if state.get("lastFullScimAt") else None
        return listed is None or listed <= now - SCIM_RELIST

    # --- phase 1: teams, boards, organization, SCIM ids ------------------------------------------

    def _load_aux(self, run_id: str) -> _Aux | None:
        """The run's aux as stored by `_collect_aux`; None when absent (expired or never stored) or
        stored in an older format (a run begun before an upgrade): the caller collects it again."""
        data = self._state.load_bytes(SYNC_NAME, run_id, "aux")
        if data is None:
            return None
        try:
            return _Aux.from_bytes(data)
        except StaleIndexFormatError as stale:
            self._log("members sync collects the aux again", {"runId": run_id, "reason": str(stale)})
            return None

    def _load_aux_progress(self, run_id: str, full_scim: bool) -> AuxProgress:
        """What earlier invocations of the run collected of the aux, or a fresh start: a progress that
        is missing, damaged or of another format starts the aux over (its pages are fetched again)."""
        try:
            data = self._state.load_bytes(SYNC_NAME, run_id, AUX_PROGRESS)
            if data is None:
                return AuxProgress(full_scim=full_scim)
            progress = AuxProgress.from_bytes(data, full_scim=full_scim)
        except (zlib.error, UnusableProgressError) as unusable:  # zlib: chunks that do not fit together
            self._log(
                "members sync collects the aux from the start", {"runId": run_id, "reason": str(unusable)}
            )
            return AuxProgress(full_scim=full_scim)
        del data  # the decoded arrays are copies: the blob goes now, not at the end of the aux
        self._log("members sync resumes the aux", {"runId": run_id, **progress.counts()})
        return progress

    def _collect_aux(
        self, run_id: str, full_scim: bool, now: datetime, deadline: DeadlineWatch
    ) -> _Aux | None:
        """Fetch the independent listings concurrently: team member lists per team, board pages by
        offset and SCIM pages by startIndex once the first page tells the total. Each listing still
        raises if it cannot be completed. Stores the result for the run's later invocations.

        None when time ran low first: no new request is started, the running ones finish (a SCIM or
        team member listing at its next page), and what was fetched is stored ("aux-progress") for
        the next invocation, which fetches only the rest. A failure stores it too, then raises."""
        stored = self._load_aux(run_id)
        if stored is not None:
            return stored  # collected before an interruption
        full_scim = full_scim and self._scim is not None
        progress = self._load_aux_progress(run_id, full_scim)
        stop = threading.Event()  # out of time or failed: listings of several pages stop at the next

        def guarded(what: str, work: Callable[[], Any]) -> Any:
            try:
                return work()
            except MiroAuthError as error:
                raise _auth_failure(error, what) from None

        def read_organization() -> None:
            progress.record_organization(self._miro.get_organization())

        def team_members(number: int, team_id: str, cursor: str | None) -> None:
            pages = (
                self._miro.iter_team_member_pages(team_id, cursor=cursor)
                if cursor is not None
                else self._miro.iter_team_member_pages(team_id)
            )
            try:
                for page in pages:
                    progress.record_team_members(number, page.data, page.next_cursor)
                    if stop.is_set():
                        return  # the rest (if any) from page.next_cursor, next invocation
                progress.record_team_members(number, (), None)  # the listing ended: complete
            finally:
                _close(pages)

        def board_page(offset: int) -> None:
            pages = self._miro.iter_board_pages(offset=offset, limit=BOARD_PAGE)
            try:
                progress.record_boards(offset, next(pages))
            finally:
                _close(pages)

        def boards_in_order() -> None:
            """The boards past the first page of a listing without a total, in order."""
            offset = progress.boards_next
            assert offset is not None
            pages = self._miro.iter_board_pages(offset=offset, limit=BOARD_PAGE)
            try:
                for page in pages:
                    offset += len(page.data)
                    progress.record_boards_in_order(page, offset)
                    if stop.is_set():
                        return
                progress.record_boards_in_order(None, None)
            finally:
                _close(pages)

        def board_tasks() -> Iterator[_AuxTask] | None:
            if progress.boards_next is not None:
                return iter([("listing boards", boards_in_order)])
            offsets = progress.board_offsets_left()
            if not offsets:
                return None
            return (("listing boards", partial(board_page, offset)) for offset in offsets)

        def first_boards() -> Iterator[_AuxTask] | None:
            progress.record_first_boards(
                _first_page(self._miro.iter_board_pages(offset=0, limit=BOARD_PAGE)), BOARD_PAGE
            )
            return board_tasks()

        def scim_pages(number: int) -> None:
            """SCIM range `number`: the pages from its start up to (not including) its stop, in order."""
            assert self._scim is not None
            start_index, stop_index = progress.scim_ranges[number]
            pages = self._scim.iter_user_pages(
                count=_SCIM_PAGE, start_index=start_index, attributes=_SCIM_ATTRIBUTES
            )
            try:
                for page in pages:
                    start_index += len(page.resources)
                    progress.record_scim(number, page, start_index)
                    if start_index >= stop_index or stop.is_set():
                        return
                progress.record_scim(number, None, stop_index)  # fewer users than the total said
            finally:
                _close(pages)

        def scim_tasks() -> Iterator[_AuxTask] | None:
            numbers = progress.scim_ranges_left()
            if not numbers:
                return None
            return (("listing SCIM users", partial(scim_pages, number)) for number in numbers)

        def first_scim() -> Iterator[_AuxTask] | None:
            assert self._scim is not None
            first = _first_page(
                self._scim.iter_user_pages(count=_SCIM_PAGE, start_index=1, attributes=_SCIM_ATTRIBUTES)
            )
            if first is None:
                progress.record_first_scim(None, ())
                return None
            # The rest in at most _SCIM_STREAMS runs of consecutive pages, each run fetched in order.
            starts = list(range(1 + len(first.resources), first.total_results + 1, _SCIM_PAGE))
            bounds: list[tuple[int, int]] = []
            if starts:
                per_stream = -(-len(starts) // min(_SCIM_STREAMS, len(starts)))
                runs = [starts[at : at + per_stream] for at in range(0, len(starts), per_stream)]
                end = first.total_results + 1
                bounds = [
                    (run[0], following[0] if following else end)
                    for run, following in zip(runs, [*runs[1:], []], strict=True)
                ]
            progress.record_first_scim(first, bounds)
            return scim_tasks()

        def team_tasks() -> Iterator[_AuxTask]:
            # Teams an earlier invocation listed whose member lists are not complete, then the team
            # pages not listed yet, here, on the thread that hands out the work, as tasks are needed.
            what = "listing teams and team members"
            for number, cursor in progress.teams_to_finish():
                yield what, partial(team_members, number, progress.team_ids[number], cursor)
            if progress.teams_listed:
                return
            try:
                cursor = progress.teams_cursor
                pages = self._miro.iter_team_pages(cursor=cursor) if cursor else self._miro.iter_team_pages()
                for teams_page in pages:
                    numbers = progress.record_teams_page(teams_page)
                    for number, team in zip(numbers, teams_page.data, strict=True):
                        yield what, partial(team_members, number, team.id, None)
                progress.record_teams_listed()
            except MiroAuthError as error:
                raise _auth_failure(error, what) from None

        # Work comes from sources (iterators of tasks), taken in turn and handed to the pool only
        # while fewer than `window` tasks are queued or running: a queued task costs ~2 KB, and
        # submitting every page up front (6,500 tasks at 100,000 members) held ~14 MB at the peak.
        # A task may return a further source (the board and SCIM pages past the first).
        window = 4 * self._fetch_workers
        sources: deque[Iterator[_AuxTask]] = deque()
        further: Iterator[_AuxTask] | None
        further = iter([("listing boards", first_boards)]) if not progress.boards_first else board_tasks()
        if further is not None:
            sources.append(further)
        if full_scim:
            further = iter([("listing SCIM users", first_scim)]) if not progress.scim_first else scim_tasks()
            if further is not None:
                sources.append(further)
        sources.append(team_tasks())
        running: set[Future[Any]] = set()
        failure: Exception | None = None

        def stop_handing_out() -> None:
            stop.set()
            for future in running:
                future.cancel()  # queued, not started: left for the next invocation

        with ThreadPoolExecutor(self._fetch_workers, thread_name_prefix="members-aux") as pool:
            if not progress.organization_read:
                running.add(pool.submit(guarded, "reading the organization", read_organization))
            try:
                while True:
                    while not stop.is_set() and sources and len(running) < window:
                        try:
                            what, work = next(sources[0])
                        except StopIteration:
                            sources.popleft()
                            continue
                        except Exception as error:  # listing the teams failed
                            sources.popleft()
                            failure = failure or error
                            stop_handing_out()
                            break
                        running.add(pool.submit(guarded, what, work))
                        sources.rotate(-1)
                    if not running:
                        break
                    done, _pending = wait(running, timeout=_DEADLINE_POLL_S, return_when=FIRST_COMPLETED)
                    for future in done:
                        running.discard(future)
                        if future.cancelled():
                            continue
                        try:
                            more = future.result()
                        except Exception as error:  # the first failure is raised once the rest stopped
                            failure = failure or error
                            stop_handing_out()
                            continue
                        if more is not None:
                            sources.append(more)
                    # Checked only once requests were handed out: every invocation gets somewhere.
                    if not stop.is_set() and deadline.running_low():
                        stop_handing_out()
            finally:
                for future in running:  # something not an Exception (the process ending): no more
                    future.cancel()
                for source in sources:
                    _close(source)

        if failure is not None or not progress.complete():
            if failure is None and not stop.is_set():
                raise MembersSyncError("the teams, boards and SCIM listings ended incomplete; retry the run")
            if failure is not None:
                self._keep_aux_progress_after(failure, run_id, progress, now)
                raise failure
            if progress.changed:
                self._state.put_bytes(SYNC_NAME, run_id, AUX_PROGRESS, progress.to_parts(), now=now)
            self._log("members sync hands over during the aux", {"runId": run_id, **progress.counts()})
            return None
        return self._build_aux(run_id, progress, now)

    def _keep_aux_progress_after(
        self, failure: Exception, run_id: str, progress: AuxProgress, now: datetime
    ) -> None:
        """Store what the failed aux fetched, so the retry does not fetch it again; the failure is
        what the caller raises, whether or not this works."""
        if not progress.changed:
            return
        try:
            self._state.put_bytes(SYNC_NAME, run_id, AUX_PROGRESS, progress.to_parts(), now=now)
        except Exception as storing:
            self._log(
                "members sync could not keep the aux progress",
                {"runId": run_id, "failure": repr(failure), "error": repr(storing)},
            )

    def _build_aux(self, run_id: str, progress: AuxProgress, now: datetime) -> _Aux:
        """The aux of a complete progress, stored for the run's later invocations; the progress's
        arrays are handed over and emptied on the way (each freed once its index is built)."""
        scim_ids = (
            StringIndex.build_packed(progress.scim_hashes, progress.scim_values, progress.scim_ends)
            if progress.full_scim
            else None
        )
        progress.scim_hashes, progress.scim_values, progress.scim_ends = array("q"), bytearray(), array("L")
        team_pairs = TeamIndex.join_pairs(progress.pair_keys, progress.pair_codes)
        progress.pair_keys, progress.pair_codes = array("q"), array("l")
        aux = _Aux(
            teams=TeamIndex.build(
                progress.team_ids, team_pairs, team_names=progress.team_names, roles=progress.team_roles
            ),
            boards_owned=CountIndex.build(progress.board_owners),
            boards_total=progress.boards_total,
            full_licenses_purchased=progress.full_licenses_purchased,
            scim_ids=scim_ids,
        )
        team_pairs.clear()
        progress.board_owners = array("q")
        self._state.put_bytes(SYNC_NAME, run_id, "aux", aux.to_parts(), now=now)
        self._log(
            "members sync collected teams and boards",
            {
                "runId": run_id,
                "teams": len(progress.team_ids),
                "boards": progress.boards_total,
                "scimUsers": len(scim_ids) if scim_ids is not None else 0,
            },
        )
        return aux

    # --- phase 2: the listing --------------------------------------------------------------------

    @contextmanager
    def _prefetch_member_pages(
        self, aux_collected: threading.Event, leaving: threading.Event, ahead: PagesAhead | None
    ) -> Iterator[_PrefetchedPages]:
        """The member listing, fetched on a background thread from now on: after the pages in `ahead`
        (stored by an earlier invocation), from cursor None without them. At most
        `member_prefetch_pages` packed pages wait. Leaving the block stops the thread."""
        headroom = self._credit_headroom
        depth = self._member_prefetch_pages
        buffer = _PrefetchedPages(ahead)

        def hold() -> bool:
            """Wait while the buffer is full, or while credits are short and the aux still needs
            them; False once the run leaves."""
            while not leaving.is_set():
                if buffer.buffered >= depth:
                    leaving.wait(_HOLD_POLL_S)
                    continue
                if headroom is None or aux_collected.is_set():
                    break
                share = headroom()
                if share is None or share >= self._listing_holdback:
                    break
                leaving.wait(_HOLD_POLL_S)
            return not leaving.is_set()

        if buffer.ended:  # an earlier invocation fetched the listing to its end
            yield buffer
            return
        open_pages = partial(self._miro.iter_member_pages, limit=self._page_size, cursor=buffer.next_cursor)
        packed = buffer.pack(open_pages, hold)
        with prefetched(packed, depth=depth, name=PREFETCH_THREAD) as taken:
            buffer.attach(taken)
            yield buffer

    def _load_pages_ahead(self, run_id: str, *, first_page: int) -> PagesAhead | None:
        """The member pages an earlier invocation fetched ahead and stored, from `first_page` on (None:
        none stored, none of them left, or unreadable: the listing continues from the page records)."""
        try:
            data = self._state.load_bytes(SYNC_NAME, run_id, PAGES_AHEAD)
            stored = PagesAhead.from_bytes(data) if data is not None else None
        except (zlib.error, UnusableProgressError) as unusable:
            self._log(
                "members sync lists the pages fetched ahead again", {"runId": run_id, "reason": str(unusable)}
            )
            return None
        return stored.from_page(first_page) if stored is not None else None

    def _store_pages_ahead(self, run_id: str, pages: _PrefetchedPages, now: datetime) -> None:
        left = pages.left()
        if left is None:
            return
        self._state.put_bytes(SYNC_NAME, run_id, PAGES_AHEAD, left.to_parts(), now=now)
        self._log(
            "members sync keeps the pages fetched ahead",
            {"runId": run_id, "fromPage": left.first_page, "pages": len(left.pages)},
        )

    def _listing_after(self, run_id: str, page_number: int, cursor: str | None) -> Iterator[MembersPage]:
        """The member pages after page record `page_number` (at `cursor`): first those an earlier
        invocation fetched ahead and stored, then Miro's, from where the stored ones end."""
        ahead = self._load_pages_ahead(run_id, first_page=page_number + 1)
        if ahead is not None:
            for data in ahead.pages:
                yield _unpack_page(data)
            if ahead.ended:
                return
            cursor = ahead.cursor
        yield from self._miro.iter_member_pages(limit=self._page_size, cursor=cursor)

    def _list_members(
        self,
        run_id: str,
        aux: _Aux,
        started: datetime,
        deadline: DeadlineWatch,
        result: MembersSyncResult,
        *,
        pages: _PrefetchedPages | None = None,
    ) -> bool:
        """Page through members from the last checkpoint. True when the listing is complete.

        `pages`: the listing from cursor None, already under way (`_prefetch_member_pages`); used
        only when the run has no page records, i.e. when the listing starts from cursor None.
        Without it, pages an earlier invocation fetched ahead and stored come first.

        Up to `write_workers` pages are written at once (BatchGetItem, fingerprint comparison,
        batched puts / conditional updates) while the main thread fetches the next page. Page
        records (the checkpoints) are still written strictly in page order: each page's task waits
        for the previous page's record before writing its own, so the last record is always a valid
        resume point (a record without its predecessors would make the skipped members look removed).
        """
        last_page = self._state.last_run_page(SYNC_NAME, run_id)
        if last_page is not None and last_page.state.get("cursor") is None:
            return True
        cursor: str | None = last_page.state["cursor"] if last_page else None
        page_number = last_page.number if last_page else 0
        running = _Totals.from_json(last_page.state["totals"]) if last_page else _Totals()
        merge_lock = threading.Lock()
        if pages is not None and cursor is not None:
            pages = None  # fetched from cursor None: cannot continue a listing from a checkpoint
        self._log(
            "members sync listing",
            {
                "runId": run_id,
                "fromPage": page_number + 1,
                "bufferedPages": pages.buffered if pages is not None else 0,
            },
        )

        def record_after(
            previous: Future[None] | None, number: int, page: MembersPage, stored: Future[_PageOutcome]
        ) -> None:
            outcome = stored.result()
            if previous is not None:
                previous.result()
            with merge_lock:
                running.merge(outcome.totals)
                totals_json = running.to_json()
                result.written += outcome.written
                result.unchanged += outcome.unchanged
                result.write_requests += outcome.write_requests
                result.read_requests += outcome.read_requests
                result.scim_lookups += outcome.scim_lookups
            self._state.put_run_page(
                SYNC_NAME,
                run_id,
                number,
                outcome.member_ids,
                {"cursor": page.next_cursor, "totals": totals_json},
                now=started,
            )

        # Two pools: page writes run in parallel; records wait in their own single thread, in order,
        # so a waiting record never holds a writer.
        in_flight: deque[Future[None]] = deque()
        with (
            ThreadPoolExecutor(self._write_workers, thread_name_prefix="members-writer") as writers,
            ThreadPoolExecutor(1, thread_name_prefix="members-checkpoint") as recorder,
        ):
            previous: Future[None] | None = None
            listing: Iterator[MembersPage] = (
                pages if pages is not None else self._listing_after(run_id, page_number, cursor)
            )
            try:
                while True:
                    try:
                        page = next(listing)
                    except StopIteration:
                        break
                    except MiroAuthError as error:
                        raise _auth_failure(error, "listing organization members") from None
                    page_number += 1
                    result.pages += 1
                    result.fetched += len(page.data)
                    stored = writers.submit(self._store_page, page, aux, started)
                    previous = recorder.submit(record_after, previous, page_number, page, stored)
                    in_flight.append(previous)
                    # Bounded memory: at most `write_workers` pages wait to be stored.
                    while len(in_flight) > self._write_workers or (in_flight and in_flight[0].done()):
                        in_flight.popleft().result()
                    if page.next_cursor is None:
                        break
                    if deadline.running_low():
                        while in_flight:
                            in_flight.popleft().result()
                        self._log("members sync hands over", {"runId": run_id, "page": page_number})
                        return False
                while in_flight:
                    in_flight.popleft().result()
            finally:
                _close(listing)  # a prefetch is stopped by its owner (`_run_locked`)
        if page_number == 0:
            # Not even one page (an empty organization has its caller at least): record the
            # completed, empty listing so removals can judge it.
            self._state.put_run_page(
                SYNC_NAME, run_id, 1, [], {"cursor": None, "totals": running.to_json()}, now=started
            )
        return True

    def _store_page(self, page: MembersPage, aux: _Aux, started: datetime) -> _PageOutcome:
        listed = {member.id: member for member in page.data}  # a repeated id counts once
        outcome = _PageOutcome(member_ids=list(listed), totals=_Totals())
        existing, reads = self._members.get_many(listed)
        outcome.read_requests += reads
        new_records: list[MemberRecord] = []
        changed: list[tuple[MemberRecord, MemberRecord]] = []
        for member in listed.values():
            old = existing.get(member.id)
            record = self._build(member, old, aux, started, outcome)
            outcome.totals.add(record, run_started=started, thresholds=self._thresholds)
            if old is None:
                new_records.append(record)
            elif old.fingerprint != record.fingerprint:
                changed.append((record, old))
            else:
                outcome.unchanged += 1
        if new_records:
            outcome.write_requests += self._members.put_new(new_records)
            outcome.written += len(new_records)
        for record, old in changed:
            self._replace(record, old, outcome)
        return outcome

    def _build(
        self,
        member: OrgMember,
        old: MemberRecord | None,
        aux: _Aux,
        started: datetime,
        outcome: _PageOutcome,
    ) -> MemberRecord:
        scim_id: str | None = None
        display_name: str | None = None
        checked_at: datetime | None = None
        email = member.email.strip().lower()
        if aux.scim_ids is not None:
            scim_id, display_name = aux.scim_user(email)
            if scim_id is None and member.role in INTERNAL_ROLES:
                checked_at = started  # not in SCIM now: look again only after SCIM_RECHECK
        elif self._needs_scim_lookup(member, old, started):
            outcome.scim_lookups += 1
            checked_at = started
            try:
                user = self._scim.find_user_by_username(email) if self._scim else None
            except MiroNotFound:
                user = None
            except MiroAuthError as error:
                raise _auth_failure(error, "looking up SCIM users") from None
            scim_id = user.id if user else None
            display_name = user.full_name if user else None
        memberships = aux.teams.memberships_of(member.id)
        return build_member_record(
            member,
            old,
            teams=[team_id for team_id, _name, _role in memberships],
            team_memberships=[
                TeamMembership(id=team_id, name=name, role=role) for team_id, name, role in memberships
            ],
            boards_owned=aux.boards_owned.count(member.id),
            scim_id=scim_id,
            scim_checked_at=checked_at,
            display_name=display_name,
            now=started,
        )

    def _needs_scim_lookup(self, member: OrgMember, old: MemberRecord | None, started: datetime) -> bool:
        if self._scim is None or member.role not in INTERNAL_ROLES:
            return False  # guests and external users are invisible to SCIM
        if old is not None and old.scim_id:
            return False
        checked = old.scim_checked_at if old is not None else None
        return checked is None or checked < started - SCIM_RECHECK

    def _replace(self, record: MemberRecord, old: MemberRecord, outcome: _PageOutcome) -> None:
        for _attempt in range(_MAX_WRITE_ATTEMPTS):
            try:
                self._members.replace_synced(record, expected_last_seen=old.last_seen_key)
                outcome.write_requests += 1
                outcome.written += 1
                return
            except ConcurrentChangeError:
                outcome.write_requests += 1
                # A signal writer moved lastSeenAt: rebuild on the fresh item, keeping its signals.
                fresh = self._members.get(record.member_id)
                if fresh is None:
                    raise MembersSyncError(
                        f"member {record.member_id} vanished from the table mid-run"
                    ) from None
                old = fresh
                record = record.model_copy(
                    update={
                        "first_seen_at": fresh.first_seen_at or record.first_seen_at,
                        "last_sign_in_at": fresh.last_sign_in_at,
                        "last_audit_activity_at": fresh.last_audit_activity_at,
                        "last_board_activity_at": fresh.last_board_activity_at,
                    }
                )
                if record.fingerprint == fresh.fingerprint:
                    outcome.unchanged += 1
                    return
        raise MembersSyncError(f"member {record.member_id} kept changing during the write; retry the run")

    # --- phase 3: removals -----------------------------------------------------------------------

    def _apply_removals(
        self,
        run_id: str,
        previous_run_id: str | None,
        listed_now: int,
        started: datetime,
        result: MembersSyncResult,
    ) -> int:
        if not previous_run_id:
            return 0
        # ~8 bytes per member (sorted hashes), not a set of id strings (~100 bytes per member).
        current = HashSet(
            key_hash(member_id)
            for page in self._state.iter_run_pages(SYNC_NAME, run_id)
            for member_id in page.member_ids
        )
        gone: list[str] = []
        previous_count = 0
        for page in self._state.iter_run_pages(SYNC_NAME, previous_run_id):
            previous_count += len(page.member_ids)
            gone.extend(member_id for member_id in page.member_ids if member_id not in current)
        if not current and previous_count:
            raise IncompleteListingError(
                f"Miro listed no members although the previous run listed {previous_count}; "
                "refusing to mark everyone deprovisioned"
            )
        for start in range(0, len(gone), 100):
            batch = gone[start : start + 100]
            existing, reads = self._members.get_many(batch)
            result.read_requests += reads
            for member_id in batch:
                record = existing.get(member_id)
                if record is not None and self._members.mark_deprovisioned(record, now=started):
                    result.removed += 1
                    result.write_requests += 1
        del current
        return len(gone)

    # --- phase 4: usage snapshot -----------------------------------------------------------------

    def _snapshot(
        self, run_id: str, started: datetime, totals: _Totals, aux: _Aux, removed: int
    ) -> dict[str, Any]:
        full_assigned = totals.by_license.get("full", 0)
        return {
            "runId": run_id,
            "at": iso_utc(started),
            "members": totals.members,
            "byLicense": dict(sorted(totals.by_license.items())),
            "byRole": dict(sorted(totals.by_role.items())),
            "byStatus": dict(sorted(totals.by_status.items())),
            "removedSinceLastRun": removed,
            "fullLicensesPurchased": aux.full_licenses_purchased,
            "fullLicensesAssigned": full_assigned,
            "fullLicensesFree": (
                aux.full_licenses_purchased - full_assigned
                if aux.full_licenses_purchased is not None
                else None
            ),
            "boards": aux.boards_total,
            "membersOwningBoards": len(aux.boards_owned),
            "teamsMembers": aux.teams.members,
            "inactiveSeats": {
                days: totals.inactive_seats.get(days, 0) for days in map(str, self._thresholds)
            },
            "neverSeenSeats": totals.never_seen_seats,
        }
