"""Every exception offboarding raises, under one root (`OffboardingError`). Each one decides a message's
fate as it moves between the parts (coordinator, guards, steps, sweep, refusals): refused for good,
retried, left open for a later message, or finished as partial."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from miro_sync.store.actions import ActionRecord, Outcome


class OffboardingError(Exception):
    """The root of offboarding's own exceptions."""


class InvalidRequestError(OffboardingError, ValueError):
    """The body is not a valid offboarding message; `reason` says precisely why."""

    def __init__(self, reason: str, body: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.body = body

    @property
    def request_id(self) -> str:
        """Stable id for the refusal record, so a redelivered poison message is recorded once."""
        return "invalid-" + hashlib.sha256(self.body.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class MissingRequestIdError(OffboardingError):
    """An OffboardingRequest without a requestId: built around its validator (`model_construct`), which
    sets the id of every request it validates. A bug, not a message to refuse or retry as such."""


class RetryableError(OffboardingError):
    """Transient: the message goes back to the queue and is retried."""


class NotFinalError(OffboardingError):
    """Pending or held: the idempotency key is released so the request's later message runs."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome)
        self.outcome = outcome


class RecordExistsError(OffboardingError):
    """The first write would create a record that exists: the request goes the careful way."""


class ReusedIdError(OffboardingError):
    """The request id names another request."""

    def __init__(self, original: ActionRecord) -> None:
        super().__init__(original.request_id)
        self.original = original


class RefusalError(OffboardingError):
    """The request is not carried out, for good; `reason` says why."""

    def __init__(self, reason: str, fields: dict[str, Any] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.fields = fields or {}  # what was learnt about the member, for the record


class PartialError(OffboardingError):
    """Miro refused a later step after an earlier one took effect (a delete's SCIM DELETE after the
    deactivation): the request ends as `partial`, and the member's state is what the done steps left."""

    def __init__(self, reason: str, status: str, active: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.active = active
