"""The cross-cutting ports logic needs from the invocation around it: where metrics and log lines go, and how
much time is left. In Lambda the handler passes Powertools' `Metrics`/`Logger` and a `Deadline` on the Lambda
context; elsewhere (CLI, tests) `EphemeralMetrics`, any stdlib logger and fakes satisfy the same protocols.
Package-specific ports (stores, Miro sources) stay in their packages; these are the ones every package shares.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class MetricsSink(Protocol):
    """The part of Powertools `Metrics` / `EphemeralMetrics` logic uses."""

    def add_metric(self, name: str, unit: Any, value: float) -> Any: ...


class LogSink(Protocol):
    """The logging calls logic makes: structured fields go in `extra` (Powertools turns them into JSON
    keys; a stdlib logger keeps them on the record)."""

    def info(self, msg: object, *args: object, extra: Mapping[str, object] | None = None) -> None: ...

    def warning(self, msg: object, *args: object, extra: Mapping[str, object] | None = None) -> None: ...

    def error(self, msg: object, *args: object, extra: Mapping[str, object] | None = None) -> None: ...

    def exception(self, msg: object, *args: object, extra: Mapping[str, object] | None = None) -> None: ...


class DeadlineWatch(Protocol):
    """The invocation's remaining time (miro_sync.continuation.Deadline on the Lambda context)."""

    def remaining_ms(self) -> int: ...

    def running_low(self) -> bool: ...
