"""Self-continuation for long syncs: watch the Lambda deadline, hand over to a fresh invocation.

A sync checks `Deadline.running_low()` at its safe points (right after a checkpoint); when it is
true the sync stops and the handler calls `Continuation.hand_over(payload)`, which invokes the same
function asynchronously. The new invocation resumes from the checkpoint, so losing the hand-over
(throttling, a crash) costs only time: the next scheduled run resumes the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol


class RemainingTime(Protocol):
    """The part of the Lambda context we need."""

    def get_remaining_time_in_millis(self) -> int: ...


class AsyncInvoker(Protocol):
    def invoke_async(self, function_name: str, payload: Mapping[str, Any]) -> None: ...


@dataclass(frozen=True)
class Deadline:
    context: RemainingTime
    # Time kept in reserve for the work after the last safe point (one page, checkpoint, hand-over).
    reserve_ms: int

    def remaining_ms(self) -> int:
        return self.context.get_remaining_time_in_millis()

    def running_low(self) -> bool:
        return self.remaining_ms() < self.reserve_ms


class NoDeadline:
    """For callers outside Lambda (CLI, benchmarks): never runs low."""

    def remaining_ms(self) -> int:
        return 2**31

    def running_low(self) -> bool:
        return False


class Continuation:
    def __init__(self, invoker: AsyncInvoker | None, function_name: str | None) -> None:
        self._invoker = invoker
        self._function_name = function_name

    @property
    def available(self) -> bool:
        return self._invoker is not None and bool(self._function_name)

    def hand_over(self, payload: Mapping[str, Any]) -> bool:
        """Start the next invocation; False when no invoker/function name is configured."""
        if self._invoker is None or not self._function_name:
            return False
        self._invoker.invoke_async(self._function_name, payload)
        return True
