"""What the members sync needs from around it (the adapters: MiroRestClient, MiroScimClient,
MembersRepository, StateRepository), what it returns and how it fails; shared by its modules."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from miro_sync.miro.errors import MiroAuthError
from miro_sync.miro.models import (
    BoardsPage,
    MembersPage,
    Organization,
    ScimListResponse,
    ScimUser,
    TeamMembersPage,
    TeamsPage,
)
from miro_sync.store.members import MemberRecord
from miro_sync.store.state import RunPage, StoredCheckpoint
from miro_sync.sync.member_index import Buffer

SYNC_NAME = "members"
_PageT = TypeVar("_PageT")


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


def auth_failure(error: MiroAuthError, what: str) -> MembersSyncError:
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


def first_page(pages: Iterator[_PageT]) -> _PageT | None:
    """The first page of a listing (None if it has none); the listing is closed either way."""
    try:
        return next(pages, None)
    finally:
        close(pages)


def close(pages: Iterator[Any]) -> None:
    close_pages = getattr(pages, "close", None)
    if close_pages is not None:
        close_pages()
