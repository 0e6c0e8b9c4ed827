"""The blast-radius limit: at most MAX_ACTIONS_PER_HOUR changes in Miro an hour (reactivations count too:
the limit is on changes). A request past it is held until an operator releases it."""

from __future__ import annotations

import contextlib
from datetime import datetime

from miro_sync.offboarding.errors import NotFinalError
from miro_sync.offboarding.model import Trail
from miro_sync.offboarding.ports import BlastRadius
from miro_sync.offboarding.recording import Recorder
from miro_sync.store.actions import ActionConflictError, ActionRecord


class ActionBudget:
    def __init__(self, *, blast_radius: BlastRadius, max_actions_per_hour: int, recorder: Recorder) -> None:
        self._blast = blast_radius
        self._max_per_hour = max_actions_per_hour
        self._recorder = recorder

    def take(self, trail: Trail, record: ActionRecord, now: datetime) -> None:
        """Count this request against the limit (`record` is the trail's, as last written). A request
        an operator released is counted without a check; one past the limit is recorded as held and
        raises NotFinalError."""
        if record.released_at is not None:
            self._blast.count_unconditionally(now)
        elif not self._blast.try_take(now, self._max_per_hour):
            reason = (
                f"held: more than {self._max_per_hour} actions in the last hour; "
                "run `miro-sync offboard release` to continue"
            )
            with contextlib.suppress(ActionConflictError):  # cancelled meanwhile: stays cancelled
                self._recorder.write(
                    trail, outcome="held", fields={"outcome_reason": reason, "in_flight": None}
                )
            self._recorder.count("OffboardingHeld", 1)
            self._recorder.log.warning(
                "offboarding held by the blast-radius limit",
                extra={"requestId": record.request_id, "outcome": "held"},
            )
            raise NotFinalError("held")
