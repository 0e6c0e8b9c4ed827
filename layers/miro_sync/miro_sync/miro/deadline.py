"""The running Lambda invocation's remaining time, as the Miro clients see it. A module of its own (no
httpx): the offboarding handler creates it at import, before any client exists."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from miro_sync.miro.errors import MiroDeadlineExceeded


class InvocationDeadline:
    """Shared by every client of a function: no attempt (and no pacing or retry wait) starts unless it
    and a short answer fit before the function times out, and an attempt that starts gets its timeouts
    cut to what is left. Unbound (CLI, tests, between invocations) it never stops or shortens anything."""

    # Kept after the call for recording its outcome (two DynamoDB writes).
    MARGIN_S: Final = 2.0
    # The least an attempt is started with: a connect and a short answer. Below it, the record is retried.
    MIN_ATTEMPT_S: Final = 8.0

    def __init__(self) -> None:
        self._remaining_ms: Callable[[], int] | None = None

    def bind(self, remaining_ms: Callable[[], int]) -> None:
        self._remaining_ms = remaining_ms

    def unbind(self) -> None:
        self._remaining_ms = None

    def _budget_s(self) -> float | None:
        if self._remaining_ms is None:
            return None
        return self._remaining_ms() / 1000.0 - self.MARGIN_S

    def check(self, wait_s: float, *, method: str, path: str) -> None:
        """Raise MiroDeadlineExceeded unless a wait of `wait_s` and an attempt after it fit."""
        budget = self._budget_s()
        if budget is not None and budget < wait_s + self.MIN_ATTEMPT_S:
            raise MiroDeadlineExceeded(
                f"{budget + self.MARGIN_S:.1f} s left in this invocation: a call after a {wait_s:.1f} s "
                "wait is not started",
                method=method,
                path=path,
            )

    def attempt_budget_s(self, *, method: str, path: str) -> float | None:
        """Seconds an attempt starting now may take (None: unbound); raises if too few are left."""
        self.check(0.0, method=method, path=path)
        return self._budget_s()
