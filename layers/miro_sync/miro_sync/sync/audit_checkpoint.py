"""Saving the audit sync's checkpoint off the critical path: one saver thread, always the newest state.

The sync asks for a save after every page (`request`, which returns a ticket) and goes on with the
next page. One background thread saves the newest state asked for; a state asked for while a save is
in flight replaces the one still waiting, because every state the sync hands over is a complete,
consistent checkpoint (only pages whose writes all landed are in it) and the newer one supersedes it.
So saves cost the main loop nothing, and their number adapts to their latency: one per page while
they are fast, fewer when the state store is slow.

What must not run ahead of a save waits for its ticket (`wait_saved`): a page write waits for the save
that recorded its write bound (see `AuditLogSync`, "write bound"), and the end of an invocation
(hand-over, completion, failure) waits for the last state (`flush`) before the lease is released.

A failed save (the lease lost to another invocation, DynamoDB unavailable) ends the saver: nothing is
saved after it, and every later request or wait raises that error, so no write starts that a saved
bound does not cover and the run stops where its last saved checkpoint says.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from types import TracebackType
from typing import Any, Protocol

# Saves one checkpoint state (conditional on the lease; extends it when due).
Persist = Callable[[Mapping[str, Any]], None]


class CheckpointSaver(Protocol):
    def request(self, state: Mapping[str, Any]) -> int:
        """Save (a copy of) `state`, now or later; the ticket to wait for."""
        ...

    def wait_saved(self, ticket: int) -> None:
        """Return once the state of `ticket`, or a newer one, is saved; raise if the saver failed."""
        ...

    def flush(self) -> None:
        """Return once the newest state requested is saved."""
        ...


CheckpointSaverFactory = Callable[[Persist], AbstractContextManager[CheckpointSaver]]


class InlineSaves:
    """Each state is saved at request, in the calling thread."""

    def __init__(self, persist: Persist) -> None:
        self._persist = persist
        self._requested = 0

    def request(self, state: Mapping[str, Any]) -> int:
        self._persist(state)
        self._requested += 1
        return self._requested

    def wait_saved(self, ticket: int) -> None:
        return None

    def flush(self) -> None:
        return None


class BackgroundSaves:
    """One thread saving the newest requested state; older states not yet started are skipped."""

    def __init__(self, persist: Persist, *, name: str = "audit-checkpoint") -> None:
        self._persist = persist
        self._changed = threading.Condition()
        self._waiting: tuple[int, dict[str, Any]] | None = None
        self._requested = 0
        self._saved = 0
        self._error: BaseException | None = None
        self._closing = False
        self._thread = threading.Thread(target=self._save_newest, name=name, daemon=True)
        self._thread.start()

    @property
    def saved(self) -> int:
        """The ticket of the newest state saved (0: none yet)."""
        with self._changed:
            return self._saved

    def request(self, state: Mapping[str, Any]) -> int:
        # A deep copy: the caller goes on changing its state while this one waits to be saved.
        snapshot = copy.deepcopy(dict(state))
        with self._changed:
            self._raise_if_failed()
            self._requested += 1
            self._waiting = (self._requested, snapshot)
            self._changed.notify_all()
            return self._requested

    def wait_saved(self, ticket: int) -> None:
        with self._changed:
            while self._error is None and self._saved < ticket:
                self._changed.wait()
            self._raise_if_failed()

    def flush(self) -> None:
        with self._changed:
            newest = self._requested
        self.wait_saved(newest)

    def close(self) -> None:
        """Stop the thread once the state waiting (if any) is saved."""
        with self._changed:
            self._closing = True
            self._changed.notify_all()
        self._thread.join()

    def __enter__(self) -> BackgroundSaves:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            if exc is None:
                self.flush()
                return
            # The run is failing; its last state is still a valid checkpoint, and saving it keeps
            # the work done so far. If that fails as well, the run's own error is the one raised.
            try:
                self.flush()
            except BaseException as error:  # reported on the error being raised
                if error is not exc:
                    exc.add_note(f"the last audit checkpoint was not saved: {error!r}")
        finally:
            self.close()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    def _save_newest(self) -> None:
        while True:
            with self._changed:
                while self._waiting is None and not self._closing:
                    self._changed.wait()
                if self._waiting is None:
                    return
                ticket, state = self._waiting
                self._waiting = None
            try:
                self._persist(state)
            except BaseException as error:  # handed to whoever waits or requests next
                with self._changed:
                    self._error = error
                    self._changed.notify_all()
                return
            with self._changed:
                self._saved = ticket
                self._changed.notify_all()


def inline_saves(persist: Persist) -> AbstractContextManager[CheckpointSaver]:
    return nullcontext(InlineSaves(persist))


def background_saves(persist: Persist) -> AbstractContextManager[CheckpointSaver]:
    return BackgroundSaves(persist)
