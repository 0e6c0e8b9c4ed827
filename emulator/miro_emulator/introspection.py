"""`/_emulator/...`: the truth for tests and benchmarks, board item changes that trigger webhooks, and
live audit events. Never authenticated, rate limited or faulted."""

from __future__ import annotations

import copy
from collections import Counter
from typing import TYPE_CHECKING, Any

from miro_emulator.config import iso_ms, iso_s
from miro_emulator.faults import PROFILES
from miro_emulator.generator import ACTIVITY_EVENTS, MAX_LIVE_AUDIT_EVENTS, add_live_audit_events
from miro_emulator.http import Request, Response, bad_request, not_found
from miro_emulator.params import json_object
from miro_emulator.rest import subscription_json
from miro_emulator.state import BOARD_OWNER, Board, Member, OrgState
from miro_emulator.webhooks import Delivery, board_event

if TYPE_CHECKING:
    from miro_emulator.app import Emulator

ITEM_TYPES = ("sticky_note", "card", "shape", "text", "frame", "app_card", "image", "document", "embed")


def stats(emulator: Emulator, request: Request) -> Response:
    return Response(200, emulator.stats())


def reset_stats(emulator: Emulator, request: Request) -> Response:
    emulator.reset_stats()
    return Response(200, emulator.stats())


def requests_record(emulator: Emulator, request: Request) -> Response:
    """Every API request since the last reset-stats (or from `?since=N`), with timing, cost and cursor."""
    since = request.param("since") or "0"
    if not since.isdigit():
        raise bad_request("Parameter 'since' must be a whole number")
    return Response(200, emulator.requests_log.snapshot(int(since)))


def rate_limits(emulator: Emulator, request: Request) -> Response:
    return Response(200, {"budgets": emulator.rate_limits(request.param("token"))})


def member_truth(member: Member, boards_owned: int, teams: list[dict[str, str]]) -> dict[str, Any]:
    return {
        **member.to_api(),
        "scimId": member.scim_id,
        "deleted": member.deleted,
        "name": member.display_name,
        "createdAt": iso_s(member.created_ms),
        "boardsOwned": boards_owned,
        "sessionsResetAt": None if member.sessions_reset_ms is None else iso_ms(member.sessions_reset_ms),
        "teams": teams,
    }


def _teams_by_member(state: OrgState) -> dict[int, list[dict[str, str]]]:
    """Member index -> that member's team memberships, from one pass over the teams (not one per member:
    the unfiltered listing covers the whole org)."""
    teams: dict[int, list[dict[str, str]]] = {}
    for team in state.teams:
        for index, membership in team.memberships.items():
            teams.setdefault(index, []).append({"id": team.id, "name": team.name, "role": membership.role})
    return teams


def state_members(emulator: Emulator, request: Request) -> Response:
    state = emulator.state
    email = request.param("email")
    member_id = request.param("id")
    with state.lock:
        owned = Counter(board.owner_index for board in state.boards if not board.deleted)
        teams = _teams_by_member(state)
        members = [
            m
            for m in state.all_members
            if (email is None or m.email.lower() == email.lower())
            and (member_id is None or m.id == member_id)
        ]
        data = [member_truth(m, owned[m.index], teams.get(m.index, [])) for m in members]
        return Response(200, {"data": data, "size": len(members)})


def board_truth(state: OrgState, board: Board) -> dict[str, Any]:
    """A board's owner, team and members; the owner is listed first, as a member with role "owner"."""
    invited = sorted((state.all_members[index].id, role) for index, role in board.members.items())
    owner_id = state.all_members[board.owner_index].id
    return {
        "id": board.id,
        "ownerId": owner_id,
        "teamId": state.teams[board.team_index].id,
        "members": [
            {"id": member_id, "role": role} for member_id, role in [(owner_id, BOARD_OWNER), *invited]
        ],
    }


def state_boards(emulator: Emulator, request: Request) -> Response:
    """Live boards, all of them or those of `owner=ID` and/or `member=ID` (owner or board member)."""
    state = emulator.state
    owner_id = request.param("owner")
    member_id = request.param("member")
    with state.lock:
        owner = state.members_by_id.get(owner_id) if owner_id is not None else None
        member = state.members_by_id.get(member_id) if member_id is not None else None
        if (owner_id is not None and owner is None) or (member_id is not None and member is None):
            boards: list[Board] = []
        else:
            boards = [
                board
                for board in state.boards
                if not board.deleted
                and (owner is None or board.owner_index == owner.index)
                and (member is None or state.can_access(board, member))
            ]
        data = [board_truth(state, board) for board in boards]
    return Response(200, {"data": data, "size": len(data)})


def state_org(emulator: Emulator, request: Request) -> Response:
    state = emulator.state
    with state.lock:
        alive = [m for m in state.all_members if not m.deleted]
        body = {
            "orgId": state.org_id,
            "members": len(alive),
            "deletedMembers": len(state.all_members) - len(alive),
            "byRole": dict(Counter(m.role for m in alive)),
            "byLicense": dict(Counter(m.license for m in alive)),
            "inactive": sum(1 for m in alive if not m.active),
            "neverActive": sum(1 for m in alive if m.last_activity_ms is None),
            "scimUsers": len(state.scim_order),
            "teams": len(state.teams),
            "boards": sum(1 for b in state.boards if not b.deleted),
            "auditEvents": len(state.audit),
            "auditMemoryBytes": state.audit.memory_bytes(),
            "subscriptions": [subscription_json(s) for s in state.subscriptions.values()],
            "faults": emulator.fault_profile.name,
        }
    return Response(200, body)


def deliveries(emulator: Emulator, request: Request) -> Response:
    done = emulator.deliveries.delivered()
    body = {"data": [d.to_json() for d in done], "size": len(done), "pending": emulator.deliveries.pending()}
    return Response(200, body)


def set_faults(emulator: Emulator, request: Request) -> Response:
    body = json_object(request)
    profile = body.get("profile")
    if not isinstance(profile, str) or profile not in PROFILES:
        raise bad_request(f"Field 'profile' must be one of: {', '.join(PROFILES)}")
    emulator.set_fault_profile(profile)
    return Response(200, {"profile": profile})


AUDIT_EVENT_FIELDS = ("count", "event")


def add_audit_events(emulator: Emulator, request: Request) -> Response:
    """`{"count": N, "event": optional type}`: N new audit events now, after every existing one."""
    body = json_object(request)
    unknown = sorted(set(body) - set(AUDIT_EVENT_FIELDS))
    if unknown:
        raise bad_request(f"Unknown field(s): {', '.join(unknown)}; allowed: {', '.join(AUDIT_EVENT_FIELDS)}")
    count = body.get("count")
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_LIVE_AUDIT_EVENTS:
        raise bad_request(f"Field 'count' must be an integer from 1 to {MAX_LIVE_AUDIT_EVENTS}")
    event = body.get("event")
    if event is not None and event not in ACTIVITY_EVENTS:
        raise bad_request(f"Field 'event' must be one of: {', '.join(ACTIVITY_EVENTS)}")
    state = emulator.state
    with state.lock:
        added = add_live_audit_events(state, count, event if isinstance(event, str) else None)
        audit = state.audit
        kinds = Counter(audit.describe(position)[1].name for position in added)
        body_out = {
            "added": len(added),
            "total": len(audit),
            "firstId": audit.event_id(added.start),
            "lastId": audit.event_id(added.stop - 1),
            "firstCreatedAt": iso_ms(audit.created_ms[added.start]),
            "lastCreatedAt": iso_ms(audit.created_ms[added.stop - 1]),
            "byEvent": dict(sorted(kinds.items())),
        }
    return Response(201, body_out)


def _board_or_404(emulator: Emulator, request: Request) -> Board:
    board = emulator.state.board(request.path_params["board_id"])
    if board is None:
        raise not_found("Board not found")
    return board


def _actor(emulator: Emulator, body: dict[str, object], board: Board) -> Member:
    actor_id = body.get("actorId")
    if actor_id is None:
        return emulator.state.all_members[board.owner_index]
    actor = emulator.state.member(str(actor_id))
    if actor is None:
        raise bad_request("Field 'actorId' is not a member of the organization")
    return actor


def create_item(emulator: Emulator, request: Request) -> Response:
    body = json_object(request)
    item_type = body.get("type", "sticky_note")
    if item_type not in ITEM_TYPES:
        raise bad_request(f"Field 'type' must be one of: {', '.join(ITEM_TYPES)}")
    data = body.get("data", {"content": "Hello from the emulator", "shape": "square"})
    if not isinstance(data, dict):
        raise bad_request("Field 'data' must be an object")
    state = emulator.state
    with state.lock:
        board = _board_or_404(emulator, request)
        actor = _actor(emulator, body, board)
        now_ms = state.clock.now_ms()
        item = {
            "id": state.new_item_id(),
            "type": item_type,
            "data": data,
            "position": {"x": 0.0, "y": 0.0, "origin": "center", "relativeTo": "canvas_center"},
            "createdAt": iso_ms(now_ms),
            "createdBy": {"id": actor.id, "type": "user"},
            "modifiedAt": iso_ms(now_ms),
            "modifiedBy": {"id": actor.id, "type": "user"},
        }
        board.items[str(item["id"])] = item
        board.modified_ms = now_ms
        queued = _publish(emulator, board, "create", item, actor, now_ms)
    return Response(201, {"item": item, "deliveriesQueued": queued})


def update_item(emulator: Emulator, request: Request) -> Response:
    body = json_object(request)
    state = emulator.state
    with state.lock:
        board = _board_or_404(emulator, request)
        item = board.items.get(request.path_params["item_id"])
        if item is None:
            raise not_found("Item not found")
        actor = _actor(emulator, body, board)
        data = body.get("data")
        if data is not None:
            if not isinstance(data, dict):
                raise bad_request("Field 'data' must be an object")
            item["data"] = {**item["data"], **data}
        now_ms = state.clock.now_ms()
        item["modifiedAt"] = iso_ms(now_ms)
        item["modifiedBy"] = {"id": actor.id, "type": "user"}
        board.modified_ms = now_ms
        queued = _publish(emulator, board, "update", item, actor, now_ms)
    return Response(200, {"item": item, "deliveriesQueued": queued})


def delete_item(emulator: Emulator, request: Request) -> Response:
    state = emulator.state
    with state.lock:
        board = _board_or_404(emulator, request)
        item = board.items.pop(request.path_params["item_id"], None)
        if item is None:
            raise not_found("Item not found")
        actor = _actor(emulator, {}, board)
        now_ms = state.clock.now_ms()
        queued = _publish(emulator, board, "delete", {"id": item["id"], "type": item["type"]}, actor, now_ms)
    return Response(200, {"deliveriesQueued": queued})


def delete_board(emulator: Emulator, request: Request) -> Response:
    with emulator.state.lock:
        board = _board_or_404(emulator, request)
        emulator.state.delete_board(board)
    return Response(204)


def lose_access(emulator: Emulator, request: Request) -> Response:
    state = emulator.state
    with state.lock:
        subscription = state.subscriptions.get(request.path_params["subscription_id"])
        if subscription is None:
            raise not_found("Subscription not found")
        subscription.status = "lost_access"
        subscription.modified_ms = state.clock.now_ms()
        return Response(200, subscription_json(subscription))


def _publish(
    emulator: Emulator, board: Board, event_type: str, item: dict[str, Any], actor: Member, now_ms: int
) -> int:
    queued = 0
    for subscription in emulator.state.subscriptions.values():
        if subscription.board_id != board.id or subscription.status != "enabled":
            continue
        payload = board_event(
            app_id=emulator.app_id,
            board_id=board.id,
            event_type=event_type,
            item=copy.deepcopy(item),
            actor_id=actor.id,
            event_ms=now_ms,
        )
        emulator.deliveries.submit(
            Delivery(
                subscription.id, board.id, str(item["id"]), event_type, subscription.callback_url, payload
            )
        )
        queued += 1
    return queued
