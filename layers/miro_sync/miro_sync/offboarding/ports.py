"""What the offboarding logic needs from the outside world, as structural types.

The real adapters (`miro_sync.miro` clients, `miro_sync.store` repositories) satisfy these without
inheriting from them; unit tests hand in small fakes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from miro_sync.miro.models import BoardsPage, OrgMember, ScimUser
from miro_sync.store.actions import ActionRecord, Attempt, Outcome
from miro_sync.store.queue import OutgoingMessage


class ScimUsers(Protocol):
    def find_user_by_username(self, user_name: str) -> ScimUser | None: ...
    def get_user(self, user_id: str) -> ScimUser: ...
    def set_active(self, user_id: str, active: bool) -> ScimUser: ...
    def delete_user(self, user_id: str) -> None: ...


class OrgDirectory(Protocol):
    def get_member(self, member_id: str) -> OrgMember: ...
    def find_members_by_email(self, emails: list[str]) -> Sequence[OrgMember]: ...
    def iter_board_pages(self, owner: str | None = None) -> Iterator[BoardsPage]: ...


class KnownMember(Protocol):
    """The parts of a Members-table record the worker reads."""

    @property
    def member_id(self) -> str: ...
    @property
    def email(self) -> str: ...
    @property
    def scim_id(self) -> str | None: ...
    @property
    def boards_owned(self) -> int | None: ...


class MembersStore(Protocol):
    def get(self, member_id: str) -> KnownMember | None: ...
    def find_by_email(self, email: str) -> KnownMember | None: ...
    def set_status(self, member_id: str, *, status: str, active: bool, at: datetime) -> Any: ...


class ActionsStore(Protocol):
    def get(self, request_id: str) -> ActionRecord | None: ...
    def create(self, record: ActionRecord) -> bool: ...
    def update(
        self,
        request_id: str,
        *,
        at: datetime,
        expected: Iterable[str],
        outcome: Outcome | None = None,
        fields: dict[str, Any] | None = None,
        attempt: Attempt | None = None,
        attempts: Sequence[Attempt] = (),
    ) -> ActionRecord: ...
    def by_outcome(self, outcome: Outcome, *, limit: int | None = None) -> Iterator[ActionRecord]: ...
    def by_member(self, member_key: str) -> list[ActionRecord]: ...


class BlastRadius(Protocol):
    def try_take(self, at: datetime, limit: int) -> bool: ...
    def count_unconditionally(self, at: datetime) -> None: ...


class MessageSender(Protocol):
    def send(self, message: OutgoingMessage) -> str: ...


class DeadLetterSender(Protocol):
    def dead_letter(self, body: str, *, request_id: str, reason: str) -> str: ...


class MetricsSink(Protocol):
    def add_metric(self, name: str, unit: str, value: float) -> Any: ...


class LogSink(Protocol):
    """The logging calls the worker makes: the handler's Powertools Logger (structured JSON with the
    invocation's keys) in Lambda; any stdlib logger elsewhere."""

    def info(self, msg: object, *args: object, extra: Mapping[str, object] | None = None) -> None: ...
    def warning(self, msg: object, *args: object, extra: Mapping[str, object] | None = None) -> None: ...
    def error(self, msg: object, *args: object, extra: Mapping[str, object] | None = None) -> None: ...
