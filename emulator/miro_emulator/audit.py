"""Columnar audit log: one typed array per field, sorted by time, rendered to JSON one page at a time.

A million events as dicts would cost ~1 GiB; as arrays they cost ~25 MB."""

from __future__ import annotations

import bisect
from array import array
from dataclasses import dataclass
from typing import Any

from miro_emulator.config import iso_ms

NO_INDEX = -1


@dataclass(frozen=True, slots=True)
class AuditEventType:
    name: str
    category: str
    object_kind: str  # "user" (object is a member) or "board"
    created_by_type: str = "user"


# Names follow Miro's audit log vocabulary (authentication, boards, users, teams).
EVENT_TYPES: tuple[AuditEventType, ...] = (
    AuditEventType("sign_in_succeeded", "authentication", "user"),
    AuditEventType("sign_in_failed", "authentication", "user"),
    AuditEventType("board_opened", "boards", "board"),
    AuditEventType("board_created", "boards", "board"),
    AuditEventType("board_shared", "boards", "board"),
    AuditEventType("user_deactivated", "users", "user", "scim_provisioner"),
    AuditEventType("user_activated", "users", "user", "scim_provisioner"),
    AuditEventType("user_deleted", "users", "user", "scim_provisioner"),
    AuditEventType("board_owner_changed", "boards", "board", "miro_automation"),
)
EVENT_TYPE_INDEX: dict[str, int] = {event.name: index for index, event in enumerate(EVENT_TYPES)}


class AuditLog:
    """Append-only, time-ordered. Event id = a fixed base + position, so ids are stable for a seed."""

    ID_BASE = 3_458_764_600_000_000_000

    def __init__(self) -> None:
        self.created_ms = array("q")
        self.event_type = array("b")
        self.actor = array("i")  # index into OrgState.all_members, NO_INDEX for the SCIM provisioner
        self.target = array("i")  # member or board index, by the event type's object kind
        self.team = array("i")

    def __len__(self) -> int:
        return len(self.created_ms)

    def append(self, created_ms: int, event_type: int, actor: int, target: int, team: int) -> None:
        if self.created_ms and created_ms < self.created_ms[-1]:
            raise ValueError("audit events must be appended in time order")
        self.created_ms.append(created_ms)
        self.event_type.append(event_type)
        self.actor.append(actor)
        self.target.append(target)
        self.team.append(team)

    def event_id(self, position: int) -> str:
        return str(self.ID_BASE + position)

    def position_of(self, event_id: str) -> int | None:
        if not event_id.isdigit():
            return None
        position = int(event_id) - self.ID_BASE
        return position if 0 <= position < len(self) else None

    def range_positions(self, after_ms: int, before_ms: int) -> tuple[int, int]:
        """Half-open [first, end) positions of events with after_ms <= createdAt < before_ms."""
        first = bisect.bisect_left(self.created_ms, after_ms)
        end = bisect.bisect_left(self.created_ms, before_ms)
        return first, max(first, end)

    def describe(self, position: int) -> tuple[int, AuditEventType, int, int, int]:
        return (
            self.created_ms[position],
            EVENT_TYPES[self.event_type[position]],
            self.actor[position],
            self.target[position],
            self.team[position],
        )

    def memory_bytes(self) -> int:
        arrays = (self.created_ms, self.event_type, self.actor, self.target, self.team)
        return sum(column.itemsize * len(column) for column in arrays)


def render_event(
    *,
    event_id: str,
    created_ms: int,
    event_type: AuditEventType,
    created_by: dict[str, Any],
    object_id: str,
    object_name: str,
    ip: str,
    team: dict[str, str] | None,
    organization: dict[str, str],
    details: dict[str, Any],
) -> dict[str, Any]:
    context: dict[str, Any] = {"ip": ip, "organization": organization}
    if team is not None:
        context["team"] = team
    return {
        "id": event_id,
        "createdAt": iso_ms(created_ms),
        "event": event_type.name,
        "category": event_type.category,
        "context": context,
        "object": {"id": object_id, "name": object_name},
        "createdBy": created_by,
        "details": details,
    }
