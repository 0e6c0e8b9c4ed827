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
from miro_emulator.state import Board, Member
from miro_emulator.webhooks import Delivery, board_event

if TYPE_CHECKING:
    from miro_emulator.app import Emulator

ITEM_TYPES = ("sticky_note", "card", "shape", "text", "frame", "app_card", "image", "document", "embed")


def stats(emulator: Emulator, request: Request) -> Response:
    return Response(200, emulator.stats())


def reset_stats(emulator: Emulator, request: Request) -> Response:
    emulator.reset_stats()
    return Response(200, emulator.stats())


def member_truth(member: Member, state_boards: int) -> dict[str, Any]:
    return {
        **member.to_api(),
        "scimId": member.scim_id,
        "deleted": member.deleted,
        "name": member.display_name,
        "createdAt": iso_s(member.created_ms),
        "boardsOwned": state_boards,
    }


def state_members(emulator: Emulator, request: Request) -> Response:
    state = emulator.state
    email = request.param("email")
    member_id = request.param("id")
    with state.lock:
        owned = Counter(board.owner_index for board in state.boards if not board.deleted)
        members = [
            m
            for m in state.all_members
            if (email is None or m.email.lower() == email.lower())
            and (member_id is None or m.id == member_id)
        ]
        return Response(
            200, {"data": [member_truth(m, owned[m.index]) for m in members], "size": len(members)}
        )


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
