"""Miro REST API v2 client: organization, members, teams, boards, audit logs, board subscriptions.

Listing methods yield whole pages so callers can checkpoint the cursor between pages. Every call
is paced from Miro's rate-limit headers (``pacing.py``) and retried within bounds (``http.py``); a listing
that cannot be completed raises instead of returning a partial result.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING

from pydantic import TypeAdapter

from miro_sync.miro.base import MiroClientBase, PageT, model_parser, no_content, page_parser
from miro_sync.miro.errors import AuthHint, MiroProtocolError
from miro_sync.miro.http import PageGuard
from miro_sync.miro.models import (
    AuditPage,
    Board,
    BoardInvitation,
    BoardMember,
    BoardsPage,
    BoardSubscription,
    MembersPage,
    Organization,
    OrgMember,
    SubscriptionsPage,
    TeamMember,
    TeamMembersPage,
    TeamsPage,
)
from miro_sync.miro.pacing import Pacer, RateLimitPacer
from miro_sync.timestamps import iso_millis

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from miro_sync.miro.base import ClientOptions
    from miro_sync.miro.token_provider import TokenProvider

# Credit cost per call by Miro rate-limit level.
LEVEL_1, LEVEL_2, LEVEL_3, LEVEL_4 = 50, 100, 500, 2000
MAX_EMAILS_PER_CALL = 10

_COMPANY_ADMIN = "Company Admin"
_ORG_READ = AuthHint(scope="organizations:read", role=_COMPANY_ADMIN)
_TEAMS_READ = AuthHint(scope="organizations:teams:read", role=_COMPANY_ADMIN)
_BOARDS_READ = AuthHint(scope="boards:read")
_AUDIT_READ = AuthHint(scope="auditlogs:read", role=_COMPANY_ADMIN)
_TEAMS_WRITE = AuthHint(scope="organizations:teams:write", role=_COMPANY_ADMIN)
_BOARDS_WRITE = AuthHint(scope="boards:write")
_SESSIONS_DELETE = AuthHint(scope="sessions:delete", role=_COMPANY_ADMIN)
# share-board takes at most this many emails per call
MAX_BOARD_INVITES_PER_CALL = 20

_WEBHOOKS = "/v2-experimental/webhooks"


@cache
def _member_list() -> TypeAdapter[list[OrgMember]]:
    # Built on first use, not at import: keeps the Lambda cold start lean.
    return TypeAdapter(list[OrgMember])


# What `/v2/audit/logs` expects: UTC, milliseconds, `Z` (naive datetimes refused). Exported by miro/.
format_miro_time = iso_millis


class MiroRestClient(MiroClientBase):
    def __init__(
        self, base_url: str, token: TokenProvider | str, org_id: str, **options: Unpack[ClientOptions]
    ) -> None:
        super().__init__(base_url, token, **options)
        self.org_id = org_id

    def _default_pacer(self) -> Pacer:
        # Without a pacer of its own a caller is a small one (offboarding lookups, the CLI): it may
        # spend the reserve the syncs leave for exactly such callers.
        return RateLimitPacer(reserve_fraction=0.0)

    def __repr__(self) -> str:
        return f"MiroRestClient(base_url={self._http.base_url!r}, org_id={self.org_id!r})"

    def credit_headroom(self) -> float | None:
        """The share of the credit limit usable now (see RateLimitPacer.headroom); None if unknown."""
        headroom = getattr(self._http.pacer, "headroom", None)
        return headroom(self._http.now()) if headroom is not None else None

    # --- organization and members -----------------------------------------------------------------

    def get_organization(self) -> Organization:
        return self._http.request(
            "GET", f"/v2/orgs/{self.org_id}", model_parser(Organization), cost=LEVEL_3, hint=_ORG_READ
        )

    def iter_member_pages(
        self, limit: int = 100, cursor: str | None = None, **filters: str | bool
    ) -> Iterator[MembersPage]:
        """Pages of organization members; filters: ``role``, ``license``, ``active``."""
        unknown = set(filters) - {"role", "license", "active"}
        if unknown:
            raise ValueError(f"unknown member filters: {sorted(unknown)}")
        params: dict[str, str | int] = {"limit": limit}
        for name, value in filters.items():
            params[name] = str(value).lower() if isinstance(value, bool) else value
        yield from self._iter_cursor_pages(
            f"/v2/orgs/{self.org_id}/members", MembersPage, params, cursor, LEVEL_3, _ORG_READ
        )

    def get_member(self, member_id: str) -> OrgMember:
        return self._http.request(
            "GET",
            f"/v2/orgs/{self.org_id}/members/{member_id}",
            model_parser(OrgMember),
            cost=LEVEL_3,
            hint=_ORG_READ,
        )

    def find_members_by_email(self, emails: list[str]) -> list[OrgMember]:
        """Members for the given emails (unknown emails are simply absent), 10 emails per call."""
        unique = list(dict.fromkeys(email.strip() for email in emails if email.strip()))
        found: list[OrgMember] = []
        for start in range(0, len(unique), MAX_EMAILS_PER_CALL):
            chunk = unique[start : start + MAX_EMAILS_PER_CALL]
            found.extend(
                self._http.request(
                    "GET",
                    f"/v2/orgs/{self.org_id}/members",
                    lambda response: _member_list().validate_json(response.content),
                    params={"emails": ",".join(chunk)},
                    cost=LEVEL_3,
                    hint=_ORG_READ,
                )
            )
        return found

    # --- teams ------------------------------------------------------------------------------------

    def iter_team_pages(self, cursor: str | None = None, limit: int = 100) -> Iterator[TeamsPage]:
        yield from self._iter_cursor_pages(
            f"/v2/orgs/{self.org_id}/teams", TeamsPage, {"limit": limit}, cursor, LEVEL_1, _TEAMS_READ
        )

    def iter_team_member_pages(
        self, team_id: str, cursor: str | None = None, limit: int = 100, role: str | None = None
    ) -> Iterator[TeamMembersPage]:
        params: dict[str, str | int] = {"limit": limit}
        if role is not None:
            params["role"] = role
        yield from self._iter_cursor_pages(
            f"/v2/orgs/{self.org_id}/teams/{team_id}/members",
            TeamMembersPage,
            params,
            cursor,
            LEVEL_2,
            _TEAMS_READ,
        )

    def get_team_member(self, team_id: str, member_id: str) -> TeamMember:
        return self._http.request(
            "GET",
            f"/v2/orgs/{self.org_id}/teams/{team_id}/members/{member_id}",
            model_parser(TeamMember),
            cost=LEVEL_1,
            hint=_TEAMS_READ,
        )

    def set_team_role(self, team_id: str, member_id: str, role: str) -> TeamMember:
        """PATCH the member's role in the team (idempotent: the same body twice is one state)."""
        return self._http.request(
            "PATCH",
            f"/v2/orgs/{self.org_id}/teams/{team_id}/members/{member_id}",
            model_parser(TeamMember),
            json={"role": role},
            cost=LEVEL_2,
            hint=_TEAMS_WRITE,
        )

    def add_team_member(self, team_id: str, email: str, role: str) -> TeamMember:
        return self._http.request(
            "POST",
            f"/v2/orgs/{self.org_id}/teams/{team_id}/members",
            model_parser(TeamMember),
            json={"email": email, "role": role},
            cost=LEVEL_2,
            hint=_TEAMS_WRITE,
            idempotent=False,
        )

    # --- sessions ---------------------------------------------------------------------------------

    def reset_sessions(self, email: str) -> None:
        """Sign the user out of every device (Enterprise; scope sessions:delete)."""
        self._http.request(
            "POST",
            "/v2/sessions/reset_all",
            no_content,
            params={"email": email},
            cost=LEVEL_3,
            hint=_SESSIONS_DELETE,
            idempotent=False,
        )

    # --- boards -----------------------------------------------------------------------------------

    def iter_board_pages(
        self, owner: str | None = None, team_id: str | None = None, offset: int = 0, limit: int = 50
    ) -> Iterator[BoardsPage]:
        """Offset-paged board listing (``/v2/boards`` has no cursor); stops at ``total`` or a short page."""
        while True:
            params: dict[str, str | int] = {"limit": limit, "offset": offset}
            if owner:
                params["owner"] = owner
            if team_id:
                params["team_id"] = team_id
            page = self._http.request(
                "GET", "/v2/boards", model_parser(BoardsPage), params=params, cost=LEVEL_1, hint=_BOARDS_READ
            )
            yield page
            count = len(page.data)
            if count == 0:
                if page.total is not None and offset < page.total:
                    raise MiroProtocolError(
                        f"empty board page at offset {offset} although total={page.total}", path="/v2/boards"
                    )
                return
            offset += count
            if page.total is not None:
                if offset >= page.total:
                    return
            elif count < limit:
                return

    def iter_boards(self, owner: str | None = None, team_id: str | None = None) -> Iterator[Board]:
        for page in self.iter_board_pages(owner=owner, team_id=team_id):
            yield from page.data

    def share_board(self, board_id: str, emails: list[str], role: str) -> BoardInvitation:
        """Invite up to 20 emails to a board with `role` (e.g. coowner)."""
        if not 1 <= len(emails) <= MAX_BOARD_INVITES_PER_CALL:
            raise ValueError(f"share_board takes 1 to {MAX_BOARD_INVITES_PER_CALL} emails")
        return self._http.request(
            "POST",
            f"/v2/boards/{board_id}/members",
            model_parser(BoardInvitation),
            json={"emails": emails, "role": role},
            cost=LEVEL_3,
            hint=_BOARDS_WRITE,
            idempotent=False,
        )

    def get_board_member(self, board_id: str, member_id: str) -> BoardMember:
        return self._http.request(
            "GET",
            f"/v2/boards/{board_id}/members/{member_id}",
            model_parser(BoardMember),
            cost=LEVEL_1,
            hint=_BOARDS_READ,
        )

    # --- audit logs -------------------------------------------------------------------------------

    def iter_audit_pages(
        self,
        created_after: datetime,
        created_before: datetime,
        cursor: str | None = None,
        limit: int = 100,
        sorting: str = "ASC",
    ) -> Iterator[AuditPage]:
        """Pages of audit events in [created_after, created_before).

        The page envelope (type, cursor, limit, size, data) is validated strictly: a garbled one is
        retried and then raises `MiroProtocolError`. The events are handed over as received (dicts):
        one malformed event must not cost the page, so the caller validates them one by one.
        """
        if sorting not in ("ASC", "DESC"):
            raise ValueError("sorting must be 'ASC' or 'DESC'")
        params: dict[str, str | int] = {
            "createdAfter": format_miro_time(created_after),
            "createdBefore": format_miro_time(created_before),
            "limit": limit,
            "sorting": sorting,
        }
        yield from self._iter_cursor_pages("/v2/audit/logs", AuditPage, params, cursor, LEVEL_2, _AUDIT_READ)

    # --- board subscriptions (experimental webhooks) ----------------------------------------------

    def create_board_subscription(
        self, board_id: str, callback_url: str, status: str = "enabled"
    ) -> BoardSubscription:
        return self._http.request(
            "POST",
            f"{_WEBHOOKS}/board_subscriptions",
            model_parser(BoardSubscription),
            json={"boardId": board_id, "callbackUrl": callback_url, "status": status},
            cost=LEVEL_2,
            hint=_BOARDS_READ,
            # A lost response to a POST may still have created the subscription: never resend it
            # unless the connection was never made.
            idempotent=False,
        )

    def get_board_subscription(self, subscription_id: str) -> BoardSubscription:
        return self._http.request(
            "GET",
            f"{_WEBHOOKS}/subscriptions/{subscription_id}",
            model_parser(BoardSubscription),
            cost=LEVEL_2,
            hint=_BOARDS_READ,
        )

    def update_board_subscription(
        self, subscription_id: str, *, status: str | None = None, callback_url: str | None = None
    ) -> BoardSubscription:
        body: dict[str, str] = {}
        if status is not None:
            body["status"] = status
        if callback_url is not None:
            body["callbackUrl"] = callback_url
        if not body:
            raise ValueError("nothing to update: pass status and/or callback_url")
        return self._http.request(
            "PATCH",
            f"{_WEBHOOKS}/board_subscriptions/{subscription_id}",
            model_parser(BoardSubscription),
            json=body,
            cost=LEVEL_2,
            hint=_BOARDS_READ,
        )

    def delete_board_subscription(self, subscription_id: str) -> None:
        self._http.request(
            "DELETE",
            f"{_WEBHOOKS}/subscriptions/{subscription_id}",
            no_content,
            cost=LEVEL_2,
            hint=_BOARDS_READ,
        )

    def iter_subscriptions(self, limit: int = 100) -> Iterator[BoardSubscription]:
        for page in self._iter_cursor_pages(
            f"{_WEBHOOKS}/subscriptions", SubscriptionsPage, {"limit": limit}, None, LEVEL_4, _BOARDS_READ
        ):
            yield from page.data

    # --- paging -----------------------------------------------------------------------------------

    def _iter_cursor_pages(
        self,
        path: str,
        model: type[PageT],
        params: dict[str, str | int],
        cursor: str | None,
        cost: int,
        hint: AuthHint,
    ) -> Iterator[PageT]:
        guard = PageGuard()
        guard.check(cursor, path=path)
        while True:
            page_params = dict(params)
            if cursor:
                page_params["cursor"] = cursor
            page = self._http.request(
                "GET", path, page_parser(model), params=page_params, cost=cost, hint=hint
            )
            cursor = page.next_cursor
            guard.check(cursor, path=path)
            yield page
            if cursor is None:
                return
