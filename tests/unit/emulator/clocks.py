"""Clocks handed to the emulator core in place of time.monotonic / time.time / time.sleep."""

from __future__ import annotations


class FakeClock:
    """A monotonic clock that moves only when a test moves `now`."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeTime:
    """Monotonic and wall time together; `advance` (the emulator's sleep) moves both."""

    def __init__(self) -> None:
        self.mono = 500.0
        self.wall = 1_700_000_000.25

    def monotonic(self) -> float:
        return self.mono

    def time(self) -> float:
        return self.wall

    def advance(self, seconds: float) -> None:
        self.mono += seconds
        self.wall += seconds
