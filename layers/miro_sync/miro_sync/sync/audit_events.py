"""Turning one audit event as received into an `AuditRecord`, or into a rejection reason.

Tolerant by design: unknown fields are kept (the whole event is stored as received), odd shapes of
optional parts are ignored. Only what the key needs is required: an id and a timestamp that parses
with a timezone. Anything else is stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from miro_sync.store.audit import AuditRecord

SIGN_IN_EVENTS = frozenset({"sign_in_succeeded"})
# Events by a user that do not show the user was active (anyone can fail to sign in as you).
NOT_ACTIVITY_EVENTS = frozenset({"sign_in_failed"})
USER_ACTOR = "user"


def as_raw(item: Any) -> Any:
    """The event as a JSON-like mapping (the client may hand over pydantic models)."""
    if isinstance(item, BaseModel):
        return item.model_dump(mode="json", by_alias=True, exclude_unset=True)
    return item


def _text(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def parse_timestamp(value: Any) -> datetime | None:
    """An ISO-8601 timestamp with a timezone, or None (naive times are ambiguous: not guessed)."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def to_record(item: Any) -> AuditRecord | str:
    """The record to store, or a short reason why this event cannot be stored."""
    raw = as_raw(item)
    if not isinstance(raw, Mapping):
        return f"event is a {type(raw).__name__}, not an object"
    event_id = _text(raw.get("id"))
    if event_id is None:
        return "missing or empty id"
    created_at = parse_timestamp(raw.get("createdAt"))
    if created_at is None:
        return f"unparseable createdAt {str(raw.get('createdAt'))[:60]!r}"
    created_by = _mapping(raw.get("createdBy"))
    target = _mapping(raw.get("object"))
    email = _text(created_by.get("email"))
    return AuditRecord(
        event_id=event_id,
        created_at=created_at,
        event=_text(raw.get("event")),
        category=_text(raw.get("category")),
        actor_type=_text(created_by.get("type")),
        actor_id=_text(created_by.get("id")),
        actor_email=email.lower() if email else None,
        object_id=_text(target.get("id")),
        object_name=_text(target.get("name")),
        raw=dict(raw),
    )


def is_sign_in(record: AuditRecord) -> bool:
    return record.actor_type == USER_ACTOR and record.event in SIGN_IN_EVENTS


def is_activity(record: AuditRecord) -> bool:
    return record.actor_type == USER_ACTOR and record.event not in NOT_ACTIVITY_EVENTS
