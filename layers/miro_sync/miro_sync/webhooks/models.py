"""What Miro POSTs to a board-subscription callback (DESIGN.md): a challenge once, then board events.

Only the fields the webhook uses are modelled; anything else Miro adds is ignored, so a new upstream
field never turns a delivery into a 400.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictStr, field_validator

# Bounds keep a hostile-but-authenticated timestamp from overflowing the TTL arithmetic.
_EARLIEST_EVENT = datetime(2010, 1, 1, tzinfo=UTC)
_LATEST_EVENT = datetime(2200, 1, 1, tzinfo=UTC)


class _WireModel(BaseModel):
    # Deferred by default: a model builds its own validator only when something validates against it
    # directly. The parts of a delivery (Actor, BoardItem, BoardChange) are validated inside
    # BoardEventDelivery's validator, which generates their schemas itself, so building theirs too
    # would only lengthen the cold start.
    model_config = ConfigDict(
        extra="ignore", frozen=True, coerce_numbers_to_str=True, populate_by_name=True, defer_build=True
    )


class Challenge(_WireModel):
    # Only the one-off handshake when a subscription is created validates this: its schema is built
    # then, not on every cold start.
    model_config = ConfigDict(defer_build=True)

    # Strict: the echo must be exactly what Miro sent, never a number turned into text.
    challenge: StrictStr = Field(min_length=1, max_length=2048)


class Actor(_WireModel):
    id: str = Field(min_length=1, max_length=128)
    type: str | None = Field(default=None, max_length=64)


class BoardItem(_WireModel):
    id: str = Field(min_length=1, max_length=128)
    type: str = Field(min_length=1, max_length=64)
    created_by: Actor | None = Field(default=None, alias="createdBy")
    modified_by: Actor | None = Field(default=None, alias="modifiedBy")


class BoardChange(_WireModel):
    board_id: str = Field(alias="boardId", min_length=1, max_length=128)
    type: Literal["create", "update", "delete"]
    item: BoardItem

    @property
    def actor_id(self) -> str | None:
        """Who made the change: the creator for a create, otherwise the last modifier."""
        first, second = (
            (self.item.created_by, self.item.modified_by)
            if self.type == "create"
            else (self.item.modified_by, self.item.created_by)
        )
        if first is not None:
            return first.id
        # A delete names nobody but the last modifier; the creator of a deleted item did not act now.
        if second is not None and self.type != "delete":
            return second.id
        return None


class BoardEventDelivery(_WireModel):
    # Every delivery is validated against this: built at import, not on the first request.
    model_config = ConfigDict(defer_build=False)

    event_type: Literal["board_subscription"] = Field(default="board_subscription", alias="eventType")
    event_time: AwareDatetime = Field(alias="eventTime")
    event: BoardChange

    @field_validator("event_time")
    @classmethod
    def _plausible_time(cls, value: datetime) -> datetime:
        if not _EARLIEST_EVENT <= value < _LATEST_EVENT:
            raise ValueError("eventTime is out of range")
        return value
