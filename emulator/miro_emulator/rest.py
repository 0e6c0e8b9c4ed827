"""Miro REST API v2 handlers (organization, members, teams, boards, audit logs, webhooks)."""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from miro_emulator.audit import NO_INDEX, render_event
from miro_emulator.config import iso_ms, iso_s
from miro_emulator.http import ApiError, Request, Response, bad_request, not_found
from miro_emulator.params import (
    bool_param,
    decode_cursor,
    encode_cursor,
    enum_param,
    int_param,
    json_object,
    timestamp_param,
)
from miro_emulator.state import (
    BOARD_ROLES,
    LICENSES,
    ROLES,
    TEAM_GUEST,
    TEAM_ROLES,
    Board,
    Member,
    OrgState,
    Subscription,
    Team,
    TeamMembership,
    board_listing_generation,
)
from miro_emulator.webhooks import callback_url_problem, verify_callback

if TYPE_CHECKING:
    from miro_emulator.app import Emulator

AUDIT_RETENTION_MS = 90 * 86_400_000
PROVISIONER = {"type": "scim_provisioner", "id": "0", "name": "SCIM provisioner"}


def _org(emulator: Emulator, request: Request) -> OrgState:
    state = emulator.state
    if request.path_params.get("org_id") != state.org_id:
        raise ApiError(403, "forbiddenAccess", "The token has no access to this organization")
    return state


def _member_or_404(state: OrgState, member_id: str) -> Member:
    member = state.member(member_id)
    if member is None:
        raise not_found("Organization member not found")
    return member


def _team_or_404(state: OrgState, team_id: str) -> Team:
    team = state.teams_by_id.get(team_id)
    if team is None:
        raise not_found("Team not found")
    return team


def cursor_page(data: list[dict[str, Any]], limit: int, next_cursor: str | None) -> dict[str, Any]:
    page: dict[str, Any] = {"limit": limit, "size": len(data), "data": data, "type": "cursor-list"}
    if next_cursor:
        page["cursor"] = next_cursor
    return page


# ---- organization and members ----------------------------------------------------------------------
def get_organization(emulator: Emulator, request: Request) -> Response:
    state = _org(emulator, request)
    with state.lock:
        purchased = state.fully_licensed_count() + max(5, state.fully_licensed_count() // 20)
    body = {
        "id": state.org_id,
        "name": state.org_name,
        "plan": "company",
        "fullLicensesPurchased": purchased,
        "type": "organization",
    }
    return Response(200, body)


def get_members(emulator: Emulator, request: Request) -> Response:
    state = _org(emulator, request)
    emails = request.param("emails")
    if emails is not None:
        addresses = [address.strip() for address in emails.split(",") if address.strip()]
        if not addresses:
            raise bad_request("Parameter 'emails' must not be empty")
        if len(addresses) > 10:
            raise bad_request("Parameter 'emails' accepts at most 10 emails")
        with state.lock:
            found = [state.member_by_email(address) for address in addresses]
            return Response(200, [member.to_api() for member in found if member is not None])
    role = enum_param(request, "role", ROLES)
    license_ = enum_param(request, "license", LICENSES)
    active = bool_param(request, "active")
    limit = int_param(request, "limit", 100, 1, 100)
    cursor = request.param("cursor")
    if cursor is not None and not cursor.isdigit():
        raise bad_request("Parameter 'cursor' must be an organization member id")

    def matches(member: Member) -> bool:
        return (
            (role is None or member.role == role)
            and (license_ is None or member.license == license_)
            and (active is None or member.active == active)
        )

    with state.lock:
        ids = state.member_ids
        position = bisect.bisect_right(ids, cursor) if cursor else 0
        data: list[dict[str, Any]] = []
        last_id: str | None = None
        more = False
        while position < len(ids):
            member = state.members_by_id[ids[position]]
            position += 1
            if not matches(member):
                continue
            if len(data) == limit:
                more = True
                break
            data.append(member.to_api())
            last_id = member.id
    return Response(200, cursor_page(data, limit, last_id if more else None))


def get_member(emulator: Emulator, request: Request) -> Response:
    state = _org(emulator, request)
    with state.lock:
        return Response(200, _member_or_404(state, request.path_params["member_id"]).to_api())


def reset_user_sessions(emulator: Emulator, request: Request) -> Response:
    """Signs the member out everywhere. Deleted members are unknown here, as everywhere else."""
    state = emulator.state
    email = (request.param("email") or "").strip()
    if not email:
        raise bad_request("Parameter 'email' is required")
    with state.lock:
        member = state.member_by_email(email)
        if member is None:
            raise not_found("Organization member not found")
        state.reset_sessions(member)
    return Response(200)  # the spec documents no body


# ---- teams ---------------------------------------------------------------------------------------
def get_teams(emulator: Emulator, request: Request) -> Response:
    state = _org(emulator, request)
    limit = int_param(request, "limit", 100, 1, 100)
    cursor = request.param("cursor")
    name = (request.param("name") or "").lower()
    with state.lock:
        teams = [team for team in state.teams if name in team.name.lower()]
        start = 0
        if cursor:
            positions = [i for i, team in enumerate(teams) if team.id == cursor]
            if not positions:
                raise bad_request("Parameter 'cursor' is not valid")
            start = positions[0] + 1
        window = teams[start : start + limit]
        more = start + limit < len(teams)
        data = [{"id": team.id, "name": team.name, "type": "team"} for team in window]
    return Response(200, cursor_page(data, limit, window[-1].id if more and window else None))


TEAM_ROLE_FILTERS = ("member", "admin", "non_team", "team_guest")


def get_team_members(emulator: Emulator, request: Request) -> Response:
    state = _org(emulator, request)
    limit = int_param(request, "limit", 100, 1, 100)
    role = enum_param(request, "role", TEAM_ROLE_FILTERS)
    cursor = request.param("cursor")
    if cursor is not None and not cursor.isdigit():
        raise bad_request("Parameter 'cursor' is not valid")
    with state.lock:
        team = _team_or_404(state, request.path_params["team_id"])
        rows = []
        for index, membership in team.memberships.items():
            member = state.all_members[index]
            if role == "team_guest":
                if member.role != TEAM_GUEST:
                    continue
            elif role is not None and membership.role != role:
                continue
            rows.append((member.id, membership))
        rows.sort(key=lambda row: row[0])
        keys = [member_id for member_id, _ in rows]
        start = bisect.bisect_right(keys, cursor) if cursor else 0
        window = rows[start : start + limit]
        more = start + limit < len(rows)
        data = [team_member_json(team, member_id, membership) for member_id, membership in window]
    return Response(200, cursor_page(data, limit, window[-1][0] if more and window else None))


def team_member_json(team: Team, member_id: str, membership: TeamMembership) -> dict[str, Any]:
    modified_ms = membership.modified_ms if membership.modified_ms is not None else membership.created_ms
    return {
        "id": member_id,
        "role": membership.role,
        "createdAt": iso_s(membership.created_ms),
        "createdBy": membership.created_by,
        "modifiedAt": iso_s(modified_ms),
        "modifiedBy": membership.modified_by or membership.created_by,
        "teamId": team.id,
        "type": "team-member",
    }


def _team_member_or_404(state: OrgState, team: Team, member_id: str) -> tuple[Member, TeamMembership]:
    member = state.member(member_id)
    membership = team.memberships.get(member.index) if member is not None else None
    if member is None or membership is None:
        raise not_found("Team member not found")
    return member, membership


def _team_role(body: dict[str, object]) -> str | None:
    role = body.get("role")
    if role is not None and role not in TEAM_ROLES:
        raise bad_request(f"Field 'role' must be one of: {', '.join(TEAM_ROLES)}")
    return role if isinstance(role, str) else None


def get_team_member(emulator: Emulator, request: Request) -> Response:
    state = _org(emulator, request)
    with state.lock:
        team = _team_or_404(state, request.path_params["team_id"])
        member, membership = _team_member_or_404(state, team, request.path_params["member_id"])
        return Response(200, team_member_json(team, member.id, membership))


def invite_team_member(emulator: Emulator, request: Request) -> Response:
    """Adds an existing org member to the team: "The user must exist in your Miro organization"."""
    state = _org(emulator, request)
    body = json_object(request)
    email = body.get("email")
    if not isinstance(email, str) or not email.strip():
        raise bad_request("Field 'email' is required")
    role = _team_role(body)
    with state.lock:
        team = _team_or_404(state, request.path_params["team_id"])
        member = state.member_by_email(email.strip())
        if member is None:
            raise not_found("Organization member not found")
        membership = state.add_team_member(team, member, role, state.token_user())
        return Response(201, team_member_json(team, member.id, membership))


def update_team_member(emulator: Emulator, request: Request) -> Response:
    state = _org(emulator, request)
    role = _team_role(json_object(request))
    with state.lock:
        team = _team_or_404(state, request.path_params["team_id"])
        member, membership = _team_member_or_404(state, team, request.path_params["member_id"])
        if role is not None:  # TeamMemberChanges has no required field: an empty body changes nothing
            membership = state.set_team_role(team, member, role, state.token_user())
        return Response(200, team_member_json(team, member.id, membership))


def delete_team_member(emulator: Emulator, request: Request) -> Response:
    state = _org(emulator, request)
    with state.lock:
        team = _team_or_404(state, request.path_params["team_id"])
        member = _member_or_404(state, request.path_params["member_id"])
        state.remove_team_member(team, member)
    return Response(204)


# ---- boards --------------------------------------------------------------------------------------
def _user_short(member: Member) -> dict[str, str]:
    return {"id": member.id, "name": member.display_name, "type": "user"}


def board_json(state: OrgState, board: Board) -> dict[str, Any]:
    owner = state.all_members[board.owner_index]
    creator = state.all_members[board.created_by_index]
    team = state.teams[board.team_index]
    return {
        "id": board.id,
        "type": "board",
        "name": board.name,
        "description": board.description,
        "createdAt": iso_s(board.created_ms),
        "createdBy": _user_short(creator),
        "modifiedAt": iso_s(board.modified_ms),
        "modifiedBy": _user_short(owner),
        "owner": _user_short(owner),
        "team": {"id": team.id, "name": team.name, "type": "team"},
        "viewLink": f"https://miro.com/app/board/{board.id}/",
        "policy": {
            "permissionsPolicy": {
                "collaborationToolsStartAccess": "all_editors",
                "copyAccess": "anyone",
                "sharingAccess": "team_members_with_editing_rights",
            },
            "sharingPolicy": {
                "access": "private",
                "inviteToAccountAndBoardLinkAccess": "no_access",
                "organizationAccess": "private",
                "teamAccess": "edit",
            },
        },
    }


def _boards_by_last_modified(state: OrgState) -> list[Board]:
    """Every live board, last modified first: sorted once and reused until a board changes, not per
    page (a listing of 80,000 boards is 1,600 pages). Call with the state lock held."""
    key = (board_listing_generation(), len(state.boards))
    cached = state.listing_cache.get("boards")
    if cached is None or cached[0] != key:
        boards = [b for b in state.boards if not b.deleted]
        boards.sort(key=lambda b: (-b.modified_ms, b.id))
        cached = (key, boards)
        state.listing_cache["boards"] = cached
    return cached[1]


def _viewer(emulator: Emulator) -> Member | None:
    """The token's user when it sees only its own boards (`content_admin` off); None: it sees all."""
    return None if emulator.config.content_admin else emulator.state.token_user()


def _board_or_404(emulator: Emulator, board_id: str) -> Board:
    """A live board the token's user can access. Call with the state lock held."""
    board = emulator.state.board(board_id)
    viewer = _viewer(emulator)
    if board is None or (viewer is not None and not emulator.state.can_access(board, viewer)):
        raise not_found("Board not found")
    return board


def offset_page(
    emulator: Emulator,
    request: Request,
    path: str,
    window: tuple[int, int],
    data: list[dict[str, Any]],
    total: int,
) -> dict[str, Any]:
    """Miro's offset-paged collection (BoardsPagedResponse, BoardMembersPagedResponse) with its links;
    `window` is the request's (limit, offset)."""
    limit, offset = window
    query = {key: values[0] for key, values in request.query.items() if key not in ("limit", "offset")}
    base = f"{emulator.public_base(request)}{path}"

    def link(at: int) -> str:
        return f"{base}?{urlencode({**query, 'limit': limit, 'offset': at})}"

    links = {"self": link(offset), "first": link(0), "last": link(max(0, (total - 1) // limit * limit))}
    if offset + limit < total:
        links["next"] = link(offset + limit)
    if offset > 0:
        links["prev"] = link(max(0, offset - limit))
    return {
        "data": data,
        "total": total,
        "size": len(data),
        "offset": offset,
        "limit": limit,
        "links": links,
        "type": "list",
    }


def get_boards(emulator: Emulator, request: Request) -> Response:
    state = emulator.state
    limit = int_param(request, "limit", 20, 1, 50)
    offset = int_param(request, "offset", 0, 0, None)
    team_id = request.param("team_id")
    owner_id = request.param("owner")
    viewer = _viewer(emulator)
    with state.lock:
        if team_id is not None:
            team = _team_or_404(state, team_id)
            boards = [b for b in state.boards if not b.deleted and b.team_index == team.index]
            boards.sort(key=lambda b: (-b.created_ms, b.id))  # default sort with team_id: last_created
        else:
            owner_index = None
            if owner_id is not None:
                owner = state.members_by_id.get(owner_id)
                owner_index = owner.index if owner is not None else NO_INDEX
            if owner_index is None:
                boards = _boards_by_last_modified(state)
            else:
                boards = [b for b in state.boards if not b.deleted and b.owner_index == owner_index]
                boards.sort(key=lambda b: (-b.modified_ms, b.id))
        if viewer is not None:
            boards = [b for b in boards if state.can_access(b, viewer)]
        total = len(boards)
        data = [board_json(state, board) for board in boards[offset : offset + limit]]
    return Response(200, offset_page(emulator, request, "/v2/boards", (limit, offset), data, total))


# ---- board members -------------------------------------------------------------------------------
def board_member_json(member: Member, role: str) -> dict[str, Any]:
    return {"id": member.id, "name": member.display_name, "role": role, "type": "board_member"}


def _board_member_with_links(emulator: Emulator, request: Request, board: Board, member: Member) -> Response:
    role = emulator.state.board_role(board, member)
    assert role is not None
    body = board_member_json(member, role)
    body["links"] = {"self": f"{emulator.public_base(request)}/v2/boards/{board.id}/members/{member.id}"}
    return Response(200, body)


def _board_member_or_404(state: OrgState, board: Board, member_id: str) -> Member:
    member = state.member(member_id)
    if member is None or state.board_role(board, member) is None:
        raise not_found("Board member not found")
    return member


def _board_role(body: dict[str, object]) -> str:
    role = body.get("role", "commenter")  # the default of BoardMembersInvite and BoardMemberChanges
    if not isinstance(role, str) or role not in BOARD_ROLES:
        raise bad_request(f"Field 'role' must be one of: {', '.join(BOARD_ROLES)}")
    return role


def get_board_members(emulator: Emulator, request: Request) -> Response:
    """The owner first, then the invited members by id."""
    state = emulator.state
    limit = int_param(request, "limit", 20, 1, 50)
    offset = int_param(request, "offset", 0, 0, None)
    with state.lock:
        board = _board_or_404(emulator, request.path_params["board_id"])
        rows = [board_member_json(state.all_members[board.owner_index], "owner")]
        invited = sorted(
            ((state.all_members[index], role) for index, role in board.members.items()),
            key=lambda row: row[0].id,
        )
        rows.extend(board_member_json(member, role) for member, role in invited)
    page = offset_page(
        emulator,
        request,
        f"/v2/boards/{board.id}/members",
        (limit, offset),
        rows[offset : offset + limit],
        len(rows),
    )
    return Response(200, page)


MAX_BOARD_INVITES = 20


def share_board(emulator: Emulator, request: Request) -> Response:
    """Org members become board members (a member's role changes, the owner's stays); any other email
    fails, as inviting someone from outside the org would need the invitee to accept."""
    state = emulator.state
    body = json_object(request)
    emails = body.get("emails")
    if not isinstance(emails, list) or not emails:
        raise bad_request("Field 'emails' is required: a list of 1 to 20 email addresses")
    if len(emails) > MAX_BOARD_INVITES:
        raise bad_request(f"Field 'emails' accepts at most {MAX_BOARD_INVITES} email addresses")
    if not all(isinstance(email, str) and email.strip() for email in emails):
        raise bad_request("Field 'emails' must contain only email addresses")
    role = _board_role(body)
    if not isinstance(body.get("message", ""), str):
        raise bad_request("Field 'message' must be a string")
    successful: list[int] = []
    failed: list[dict[str, str]] = []
    with state.lock:
        board = _board_or_404(emulator, request.path_params["board_id"])
        for email in dict.fromkeys(str(email).strip() for email in emails):
            member = state.member_by_email(email)
            if member is None:
                failed.append({"email": email, "reason": "INVITATION_FAILED"})
                continue
            state.share_board(board, member, role)
            successful.append(int(member.id))
    return Response(201, {"successful": successful, "failed": failed})


def get_board_member(emulator: Emulator, request: Request) -> Response:
    state = emulator.state
    with state.lock:
        board = _board_or_404(emulator, request.path_params["board_id"])
        member = _board_member_or_404(state, board, request.path_params["board_member_id"])
        return _board_member_with_links(emulator, request, board, member)


def update_board_member(emulator: Emulator, request: Request) -> Response:
    state = emulator.state
    role = _board_role(json_object(request))
    with state.lock:
        board = _board_or_404(emulator, request.path_params["board_id"])
        member = _board_member_or_404(state, board, request.path_params["board_member_id"])
        state.set_board_role(board, member, role)
        return _board_member_with_links(emulator, request, board, member)


def remove_board_member(emulator: Emulator, request: Request) -> Response:
    state = emulator.state
    with state.lock:
        board = _board_or_404(emulator, request.path_params["board_id"])
        member = _board_member_or_404(state, board, request.path_params["board_member_id"])
        state.remove_board_member(board, member)
    return Response(204)


# ---- audit logs ----------------------------------------------------------------------------------
def get_audit_logs(emulator: Emulator, request: Request) -> Response:
    state = emulator.state
    after_ms = timestamp_param(request, "createdAfter")
    before_ms = timestamp_param(request, "createdBefore")
    if after_ms >= before_ms:
        raise bad_request("Parameter 'createdAfter' must be before 'createdBefore'")
    if after_ms < state.clock.now_ms() - AUDIT_RETENTION_MS:
        raise bad_request("Parameter 'createdAfter' must be within the last 90 days")
    limit = int_param(request, "limit", 100, 1, 100)
    sorting = enum_param(request, "sorting", ("ASC", "DESC")) or "ASC"
    raw_cursor = request.param("cursor")
    with state.lock:
        first, end = state.audit.range_positions(after_ms, before_ms)
        if raw_cursor:
            direction, position_text = decode_cursor(raw_cursor, 2)
            if direction != sorting or not position_text.isdigit():
                raise bad_request("Parameter 'cursor' is not valid")
            position = int(position_text)
            if not first <= position <= end:
                raise bad_request("Parameter 'cursor' is not valid")
        else:
            position = first if sorting == "ASC" else end
        if sorting == "ASC":
            positions = range(position, min(end, position + limit))
            next_position = position + len(positions)
            more = next_position < end
        else:
            positions = range(position - 1, max(first, position - limit) - 1, -1)
            next_position = position - len(positions)
            more = next_position > first
        data = [_audit_event_json(state, p) for p in positions]
    next_cursor = encode_cursor(sorting, next_position) if more else None
    return Response(200, cursor_page(data, limit, next_cursor))


def _audit_event_json(state: OrgState, position: int) -> dict[str, Any]:
    created_ms, event_type, actor, target, team_index = state.audit.describe(position)
    if actor == NO_INDEX:
        created_by: dict[str, Any] = dict(PROVISIONER)
        ip = "203.0.113.10"
    else:
        member = state.all_members[actor]
        created_by = {"type": "user", "id": member.id, "name": member.display_name, "email": member.email}
        ip = f"10.{(actor >> 16) & 255}.{(actor >> 8) & 255}.{actor & 255}"
    if event_type.object_kind == "board":
        board = state.boards[target]
        object_id, object_name = board.id, board.name
        details: dict[str, Any] = {"role": "EDITOR"} if event_type.name == "board_shared" else {}
    else:
        subject = state.all_members[target]
        object_id, object_name = subject.id, subject.email
        details = {"authenticationMethod": "SSO"} if event_type.category == "authentication" else {}
    team = None
    if team_index != NO_INDEX:
        team_obj = state.teams[team_index]
        team = {"id": team_obj.id, "name": team_obj.name}
    return render_event(
        event_id=state.audit.event_id(position),
        created_ms=created_ms,
        event_type=event_type,
        created_by=created_by,
        object_id=object_id,
        object_name=object_name,
        ip=ip,
        team=team,
        organization={"id": state.org_id, "name": state.org_name},
        details=details,
    )


# ---- webhook subscriptions (v2-experimental) -------------------------------------------------------
def subscription_json(subscription: Subscription) -> dict[str, Any]:
    return {
        "id": subscription.id,
        "type": "board_subscription",
        "status": subscription.status,
        "callbackUrl": subscription.callback_url,
        "createdAt": iso_ms(subscription.created_ms),
        "modifiedAt": iso_ms(subscription.modified_ms),
        "data": {"boardId": subscription.board_id},
    }


def _subscription_status(body: dict[str, object]) -> str | None:
    status = body.get("status")
    if status is not None and status not in ("enabled", "disabled"):
        raise bad_request("Field 'status' must be one of: enabled, disabled")
    return status if isinstance(status, str) else None


def _checked_callback(emulator: Emulator, url: object) -> str:
    problem = callback_url_problem(url, emulator.config.allow_http_loopback_callbacks)
    if problem is not None:
        raise bad_request(problem)
    assert isinstance(url, str)
    failure = verify_callback(url, emulator.config.callback_timeout_s)
    if failure is not None:
        raise bad_request(failure)
    return url


def create_board_subscription(emulator: Emulator, request: Request) -> Response:
    state = emulator.state
    body = json_object(request)
    board_id = body.get("boardId")
    if not isinstance(board_id, str) or not board_id:
        raise bad_request("Field 'boardId' is required")
    status = _subscription_status(body) or "enabled"
    if state.board(board_id) is None:
        raise not_found("Board not found")
    # The handshake runs outside the state lock: the callback may call the emulator back.
    callback_url = _checked_callback(emulator, body.get("callbackUrl"))
    with state.lock:
        now_ms = state.clock.now_ms()
        subscription = Subscription(
            state.new_subscription_id(), board_id, callback_url, status, now_ms, now_ms
        )
        state.subscriptions[subscription.id] = subscription
        return Response(201, subscription_json(subscription))


def _subscription_or_404(state: OrgState, subscription_id: str) -> Subscription:
    subscription = state.subscriptions.get(subscription_id)
    if subscription is None:
        raise not_found("Subscription not found")
    return subscription


def update_board_subscription(emulator: Emulator, request: Request) -> Response:
    state = emulator.state
    body = json_object(request)
    status = _subscription_status(body)
    with state.lock:
        subscription = _subscription_or_404(state, request.path_params["subscription_id"])
    callback_url = body.get("callbackUrl")
    if callback_url is not None and callback_url != subscription.callback_url:
        callback_url = _checked_callback(emulator, callback_url)
    with state.lock:
        if isinstance(callback_url, str):
            subscription.callback_url = callback_url
        if status is not None:
            if status == "enabled" and state.board(subscription.board_id) is None:
                raise bad_request("The board of this subscription is no longer accessible")
            subscription.status = status
        subscription.modified_ms = state.clock.now_ms()
        return Response(200, subscription_json(subscription))


def get_user_subscriptions(emulator: Emulator, request: Request) -> Response:
    state = emulator.state
    limit = int_param(request, "limit", 10, 1, 100)
    cursor = request.param("cursor")
    with state.lock:
        ordered = sorted(state.subscriptions.values(), key=lambda s: int(s.id))
        start = 0
        if cursor:
            ids = [s.id for s in ordered]
            if cursor not in ids:
                raise bad_request("Parameter 'cursor' is not valid")
            start = ids.index(cursor) + 1
        window = ordered[start : start + limit]
        more = start + limit < len(ordered)
        body: dict[str, Any] = {
            "data": [subscription_json(s) for s in window],
            "limit": limit,
            "size": len(window),
            "total": len(ordered),
        }
        if more and window:
            body["cursor"] = window[-1].id
    return Response(200, body)


def get_subscription(emulator: Emulator, request: Request) -> Response:
    with emulator.state.lock:
        subscription = _subscription_or_404(emulator.state, request.path_params["subscription_id"])
        return Response(200, subscription_json(subscription))


def delete_subscription(emulator: Emulator, request: Request) -> Response:
    state = emulator.state
    with state.lock:
        _subscription_or_404(state, request.path_params["subscription_id"])
        del state.subscriptions[request.path_params["subscription_id"]]
    return Response(204)
