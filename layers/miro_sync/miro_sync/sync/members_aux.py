"""What the members sync has fetched so far in a run that needs more than one invocation: the aux
(teams, boards, SCIM users, the organization) collected part way, and member pages fetched ahead.

At 500,000 members the aux alone costs ~2.4M Miro credits, ~24 minutes at 100,000 credits a minute:
more than one Lambda invocation. An invocation that runs low on time therefore stores its progress
("aux-progress", a run-scoped StateTable blob) and the next one fetches only what is missing:

* teams: the teams listed so far (ids, names, in listing order: a team's number is its position),
  the cursor of the next teams page, and per team whether its member list is complete. A team whose
  member listing stopped part way keeps the members of the pages it fetched and the cursor of its
  next page, so even a large team is never listed twice.
* boards: offset 0 gives the total; the offsets fetched since (each page is one request, atomic),
  the boards counted and their owners' key hashes.
* SCIM users: the first page gives the total; the [start, stop) index ranges still to page and the
  users fetched so far (the same packed form the aux is built from).
* the organization, once read.

Team members, board owners and SCIM users stay packed (arrays and one byte string: 16 bytes per team
membership instead of a ~40-byte int in a list, 8 per board, ~50 per SCIM user) while collected,
stored and loaded; ids, names, cursors and plans go in a JSON header. The aux built from a finished
progress is the one an uninterrupted run builds: the same pairs (their order does not matter,
`TeamIndex.build` sorts them), the same team numbers (listing order), the SCIM users in the same
order.
"""

from __future__ import annotations

import struct
import threading
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from miro_sync.miro.models import BoardsPage, Organization, ScimListResponse, TeamMember, TeamsPage
from miro_sync.sync.member_index import (
    Buffer,
    CountIndex,
    StringIndex,
    TeamIndex,
    TeamRoles,
    key_hash,
    pack_section_parts,
    unpack_section_views,
    unpack_sections,
)

AUX_PROGRESS = "aux-progress"  # blob kinds, run-scoped (StateStore.put_bytes / load_bytes)
PAGES_AHEAD = "pages-ahead"
_PROGRESS_FORMAT = 1
_PAGES_AHEAD_FORMAT = 1
NAME_SEPARATOR = "\x1f"  # SCIM id and display name in one StringIndex value: "id\x1fname"
BOARD_PAGE = 50  # the most /v2/boards returns per page


class UnusableProgressError(ValueError):
    """A stored progress that cannot be resumed (another format, another kind of run, damaged): the
    caller starts that part over."""


def _copy(code: str, data: Buffer) -> array[int]:
    values = array(code)
    values.frombytes(data)
    return values


@dataclass
class AuxProgress:
    """The aux of one run as collected so far. The `record_*` methods are called by the fetch threads
    (one page at a time, under one lock, so a stored progress never holds half a page)."""

    full_scim: bool
    # the organization
    organization_read: bool = False
    full_licenses_purchased: int | None = None
    # teams: number = position in team_ids; team_complete[number] = 1 once its member list is whole
    team_ids: list[str] = field(default_factory=list)
    team_names: list[str] = field(default_factory=list)
    team_roles: TeamRoles = field(default_factory=TeamRoles)
    teams_listed: bool = False
    teams_cursor: str | None = None  # the next teams page (None with teams listed: the first)
    team_complete: bytearray = field(default_factory=bytearray)
    team_cursors: dict[int, str] = field(default_factory=dict)  # teams listed part way: next page
    pair_keys: array[int] = field(default_factory=lambda: array("q"))  # TeamIndex.pair_parts
    pair_codes: array[int] = field(default_factory=lambda: array("l"))
    # boards: the first page (offset 0), then either offsets planned from its total or, without a
    # total, a listing in order that continues at boards_next
    boards_first: bool = False
    boards_plan: tuple[int, int] | None = None  # (first planned offset, total)
    boards_done: set[int] = field(default_factory=set)  # planned offsets fetched
    boards_next: int | None = None
    boards_total: int = 0
    board_owners: array[int] = field(default_factory=lambda: array("q"))
    # SCIM users (full_scim only): the first page, then ranges [start, stop) paged in order
    scim_first: bool = False
    scim_ranges: list[list[int]] = field(default_factory=list)
    scim_hashes: array[int] = field(default_factory=lambda: array("q"))
    # "id\x1fname" back to back, UTF-8 (~2.5 MB at 100k instead of ~12 MB of str)
    scim_values: bytearray = field(default_factory=bytearray)
    scim_ends: array[int] = field(default_factory=lambda: array("L"))
    # Something was recorded since this progress was loaded (or created): worth storing.
    changed: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    # --- recording (fetch threads) -----------------------------------------------------------------

    def record_organization(self, organization: Organization) -> None:
        with self._lock:
            self.organization_read = True
            self.full_licenses_purchased = organization.full_licenses_purchased
            self.changed = True

    def record_teams_page(self, page: TeamsPage) -> range:
        """The page's teams, numbered in listing order; returns their numbers."""
        with self._lock:
            first = len(self.team_ids)
            self.team_ids.extend(team.id for team in page.data)
            self.team_names.extend(team.name for team in page.data)
            self.team_complete.extend(bytes(len(page.data)))
            self.teams_cursor = page.next_cursor
            self.teams_listed = page.next_cursor is None
            self.changed = True
            return range(first, len(self.team_ids))

    def record_teams_listed(self) -> None:
        with self._lock:
            self.teams_listed = True

    def record_team_members(
        self, number: int, members: Sequence[TeamMember], next_cursor: str | None
    ) -> None:
        """One page of team `number`'s members; `next_cursor` None: its member list is complete."""
        parts = [
            TeamIndex.pair_parts(member.member_id, number, self.team_roles.code(member.role))
            for member in members
        ]
        with self._lock:
            for key, code in parts:
                self.pair_keys.append(key)
                self.pair_codes.append(code)
            if next_cursor is None:
                self.team_complete[number] = 1
                self.team_cursors.pop(number, None)
            else:
                self.team_cursors[number] = next_cursor
            self.changed = True

    def record_first_boards(self, page: BoardsPage | None, limit: int) -> None:
        """The page at offset 0 (None: the listing had no page) and the plan for the rest."""
        owners = _owners(page)
        with self._lock:
            self.boards_first = True
            self.changed = True
            if page is None:
                return
            self._add_boards(page, owners)
            if page.total is not None:
                self.boards_plan = (len(page.data), page.total)
            elif len(page.data) >= limit:
                self.boards_next = len(page.data)  # no total to split by: the rest in order

    def record_boards(self, offset: int, page: BoardsPage) -> None:
        """A planned page (offset from boards_plan)."""
        owners = _owners(page)
        with self._lock:
            self.boards_done.add(offset)
            self._add_boards(page, owners)
            self.changed = True

    def record_boards_in_order(self, page: BoardsPage | None, next_offset: int | None) -> None:
        """A page of the listing without a total (None: it ended); `next_offset` None: nothing left."""
        owners = _owners(page)
        with self._lock:
            if page is not None:
                self._add_boards(page, owners)
            self.boards_next = next_offset
            self.changed = True

    def _add_boards(self, page: BoardsPage, owners: list[int]) -> None:
        self.boards_total += len(page.data)
        self.board_owners.extend(owners)

    def record_first_scim(self, page: ScimListResponse | None, ranges: Iterable[tuple[int, int]]) -> None:
        users = _users(page)
        with self._lock:
            self.scim_first = True
            self._add_users(users)
            self.scim_ranges = [[start, stop] for start, stop in ranges]
            self.changed = True

    def record_scim(self, range_number: int, page: ScimListResponse | None, next_start: int) -> None:
        """A page of range `range_number` (None: the listing ended early, nothing more to page there)."""
        users = _users(page)
        with self._lock:
            self._add_users(users)
            span = self.scim_ranges[range_number]
            span[0] = next_start if page is not None else span[1]
            self.changed = True

    def _add_users(self, users: list[tuple[int, bytes]]) -> None:
        for hashed, value in users:
            self.scim_hashes.append(hashed)
            self.scim_values.extend(value)
            self.scim_ends.append(len(self.scim_values))

    # --- what is left ------------------------------------------------------------------------------

    def teams_to_finish(self) -> list[tuple[int, str | None]]:
        """(number, cursor to continue at) of each team listed whose member list is not complete."""
        return [
            (number, self.team_cursors.get(number))
            for number, complete in enumerate(self.team_complete)
            if not complete
        ]

    def board_offsets_left(self) -> list[int]:
        if self.boards_plan is None:
            return []
        start, total = self.boards_plan
        return [offset for offset in range(start, total, BOARD_PAGE) if offset not in self.boards_done]

    def scim_ranges_left(self) -> list[int]:
        """Numbers of the SCIM ranges not paged to their end."""
        return [number for number, (start, stop) in enumerate(self.scim_ranges) if start < stop]

    def complete(self) -> bool:
        return (
            self.organization_read
            and self.teams_listed
            and all(self.team_complete)
            and self.boards_first
            and self.boards_next is None
            and not self.board_offsets_left()
            and (not self.full_scim or (self.scim_first and not self.scim_ranges_left()))
        )

    def counts(self) -> dict[str, int]:
        """For the hand-over log line."""
        return {
            "teamsListed": len(self.team_ids),
            "teamsLeft": len(self.teams_to_finish()),
            "boardPagesLeft": len(self.board_offsets_left()),
            "scimUsers": len(self.scim_ends),
        }

    # --- stored form -------------------------------------------------------------------------------

    def to_parts(self) -> list[Buffer]:
        """The progress as buffers for put_bytes (views of the arrays: nothing is joined here).
        Only while no fetch thread records (the caller's pool has finished)."""
        header = {
            "format": _PROGRESS_FORMAT,
            "fullScim": self.full_scim,
            "organization": (
                {"fullLicensesPurchased": self.full_licenses_purchased} if self.organization_read else None
            ),
            "teams": {
                "ids": self.team_ids,
                "names": self.team_names,
                "roles": self.team_roles.roles,
                "listed": self.teams_listed,
                "cursor": self.teams_cursor,
                "memberCursors": {str(number): cursor for number, cursor in self.team_cursors.items()},
            },
            "boards": {
                "first": self.boards_first,
                "plan": list(self.boards_plan) if self.boards_plan is not None else None,
                "next": self.boards_next,
                "counted": self.boards_total,
            },
            "scim": {"first": self.scim_first, "ranges": self.scim_ranges},
        }
        sections: list[list[Buffer]] = [
            [self.team_complete],
            [memoryview(self.pair_keys)],
            [memoryview(self.pair_codes)],
            [memoryview(array("q", sorted(self.boards_done)))],
            [memoryview(self.board_owners)],
            [memoryview(self.scim_hashes)],
            [memoryview(self.scim_ends)],
            [self.scim_values],
        ]
        return pack_section_parts(sections, header)

    @classmethod
    def from_bytes(cls, data: Buffer, *, full_scim: bool) -> AuxProgress:
        """Raises UnusableProgressError for a progress this version cannot resume."""
        try:
            header, sections = unpack_section_views(data)
            if header.get("format") != _PROGRESS_FORMAT:
                raise UnusableProgressError(
                    f"aux progress format {header.get('format')}, not {_PROGRESS_FORMAT}"
                )
            if header["fullScim"] != full_scim:
                raise UnusableProgressError("aux progress of a run with another SCIM listing")
            complete, keys, codes, done, owners, hashes, ends, values = sections
            teams, boards, scim = header["teams"], header["boards"], header["scim"]
            organization = header["organization"]
            progress = cls(
                full_scim=full_scim,
                organization_read=organization is not None,
                full_licenses_purchased=organization["fullLicensesPurchased"] if organization else None,
                team_ids=list(teams["ids"]),
                team_names=list(teams["names"]),
                team_roles=TeamRoles(teams["roles"]),
                teams_listed=bool(teams["listed"]),
                teams_cursor=teams["cursor"],
                team_complete=bytearray(complete),
                team_cursors={int(number): cursor for number, cursor in teams["memberCursors"].items()},
                pair_keys=_copy("q", keys),
                pair_codes=_copy("l", codes),
                boards_first=bool(boards["first"]),
                boards_plan=(int(boards["plan"][0]), int(boards["plan"][1])) if boards["plan"] else None,
                boards_done=set(_copy("q", done)),
                boards_next=boards["next"],
                boards_total=int(boards["counted"]),
                board_owners=_copy("q", owners),
                scim_first=bool(scim["first"]),
                scim_ranges=[[int(start), int(stop)] for start, stop in scim["ranges"]],
                scim_hashes=_copy("q", hashes),
                scim_values=bytearray(values),
                scim_ends=_copy("L", ends),
            )
        except UnusableProgressError:
            raise
        except (KeyError, TypeError, ValueError, IndexError, struct.error) as damaged:
            raise UnusableProgressError(f"aux progress unreadable: {damaged!r}") from None
        if not (
            len(progress.team_ids) == len(progress.team_names) == len(progress.team_complete)
            and len(progress.pair_keys) == len(progress.pair_codes)
            and len(progress.scim_hashes) == len(progress.scim_ends)
            and (not progress.scim_ends or progress.scim_ends[-1] == len(progress.scim_values))
        ):
            raise UnusableProgressError("aux progress with sections that do not fit together")
        return progress


def _owners(page: BoardsPage | None) -> list[int]:
    """Key hashes of the page's board owners (computed before taking the lock)."""
    if page is None:
        return []
    return [key_hash(board.owner.id) for board in page.data if board.owner is not None]


def _users(page: ScimListResponse | None) -> list[tuple[int, bytes]]:
    """(email key hash, "id\x1fname") of the page's users (computed before taking the lock)."""
    if page is None:
        return []
    return [
        (
            key_hash(user.user_name.strip().lower()),
            f"{user.id}{NAME_SEPARATOR}{user.full_name or ''}".encode(),
        )
        for user in page.resources
    ]


@dataclass
class PagesAhead:
    """Member pages fetched ahead of their turn (packed, `members_prefetch.pack_page`) and not yet written:
    kept for the next invocation instead of being fetched again. `first_page` is the number the
    first of them gets in the run's page records; the listing continues at `cursor` unless `ended`."""

    first_page: int
    pages: list[bytes]
    cursor: str | None
    ended: bool

    def to_parts(self) -> list[Buffer]:
        header = {
            "format": _PAGES_AHEAD_FORMAT,
            "firstPage": self.first_page,
            "cursor": self.cursor,
            "ended": self.ended,
        }
        return pack_section_parts([[page] for page in self.pages], header)

    @classmethod
    def from_bytes(cls, data: Buffer) -> PagesAhead:
        try:
            header, sections = unpack_section_views(data)
            if header.get("format") != _PAGES_AHEAD_FORMAT:
                raise UnusableProgressError(f"pages ahead format {header.get('format')}")
            return cls(
                first_page=int(header["firstPage"]),
                pages=[bytes(section) for section in sections],
                cursor=header["cursor"],
                ended=bool(header["ended"]),
            )
        except UnusableProgressError:
            raise
        except (KeyError, TypeError, ValueError, struct.error) as damaged:
            raise UnusableProgressError(f"pages ahead unreadable: {damaged!r}") from None

    def from_page(self, number: int) -> PagesAhead | None:
        """The pages from page `number` on (None when none of them is here: the page records go
        further, or there is a gap before the first)."""
        skip = number - self.first_page
        if skip < 0 or skip >= len(self.pages):
            return None
        return PagesAhead(number, self.pages[skip:], self.cursor, self.ended)


@dataclass
class Aux:
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
    def from_bytes(cls, data: bytes) -> Aux:
        header, sections = unpack_sections(data)
        return cls(
            teams=TeamIndex.from_bytes(sections[0]),
            boards_owned=CountIndex.from_bytes(sections[1]),
            boards_total=int(header["boardsTotal"]),
            full_licenses_purchased=header.get("fullLicensesPurchased"),
            scim_ids=StringIndex.from_bytes(sections[2]) if len(sections) > 2 else None,
        )
