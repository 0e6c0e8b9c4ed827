"""What a leaver leaves behind: the boards they own and the teams they are the last admin of.

Read from Miro (never only from the Members table, which can be a sync old) by the worker before it
acts, by its dry run, and by `miro-sync offboard` for the plan it shows before `--yes`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from miro_sync.miro.models import Board, BoardsPage, TeamMembersPage


class HandoverDirectory(Protocol):
    def iter_board_pages(self, owner: str | None = None) -> Iterator[BoardsPage]: ...
    def iter_team_member_pages(
        self, team_id: str, cursor: str | None = None, limit: int = 100, role: str | None = None
    ) -> Iterator[TeamMembersPage]: ...


@dataclass(frozen=True)
class TeamInfo:
    id: str
    name: str


@dataclass(frozen=True)
class Handover:
    """The leaver's boards that the token sees, and the teams where nobody else is admin."""

    boards: tuple[Board, ...]
    sole_admin_teams: tuple[TeamInfo, ...]
    # boards the last members sync counted for the leaver: more than `boards` means the token does not
    # see them all (it needs the Content Admin role), and those cannot be handed over
    boards_counted: int | None = None

    @property
    def boards_unseen(self) -> int:
        if self.boards_counted is None:
            return 0
        return max(0, self.boards_counted - len(self.boards))

    def describe(self) -> str:
        text = f"{len(self.boards)} board(s) to hand over"
        if self.boards_unseen:
            text += f" ({self.boards_unseen} more owned but not visible to the token: needs Content Admin)"
        if self.sole_admin_teams:
            named = ", ".join(f"{team.name} ({team.id})" for team in self.sole_admin_teams)
            text += f"; last admin of team(s) {named}"
        return text


def boards_owned_by(directory: HandoverDirectory, member_id: str) -> list[Board]:
    """Every board the member owns that the token can see (`GET /v2/boards?owner=`)."""
    return [
        board
        for page in directory.iter_board_pages(owner=member_id)
        for board in page.data
        # the filter is Miro's; checked again so a board of someone else is never touched
        if board.owner is None or board.owner.id == member_id
    ]


def teams_without_another_admin(
    directory: HandoverDirectory, member_id: str, admin_teams: Sequence[TeamInfo]
) -> list[TeamInfo]:
    """Of the teams the member is admin of (per the Members table), those where Miro lists no other
    admin: deleting the member there is refused by Miro (SCIM 409) unless someone is promoted first."""
    sole: list[TeamInfo] = []
    for team in admin_teams:
        admins = {
            team_member.member_id
            for page in directory.iter_team_member_pages(team.id, role="admin")
            for team_member in page.data
            if team_member.role == "admin"
        }
        if not admins - {member_id}:
            sole.append(team)
    return sole


def find_handover(
    directory: HandoverDirectory,
    member_id: str,
    admin_teams: Sequence[TeamInfo],
    *,
    boards_counted: int | None = None,
    with_boards: bool = True,
) -> Handover:
    boards = boards_owned_by(directory, member_id) if with_boards else []
    return Handover(
        boards=tuple(boards),
        sole_admin_teams=tuple(teams_without_another_admin(directory, member_id, admin_teams)),
        boards_counted=boards_counted,
    )
