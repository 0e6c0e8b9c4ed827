"""Members sync: Miro organization members (+ teams, board ownership, SCIM ids) into MembersTable.

One run goes through phases, each resumable from StateTable:

1. ``aux``: team memberships with each member's team role and the team's name (teams L1 + team
   members L2), board owners (``GET /v2/boards`` paged once, L1, grouped by owner: one request
   per 50 boards instead of one per member), the organization (full licenses purchased) and, on
   the first run and then once every ``SCIM_RELIST`` (7 days), the SCIM id and display name of
   every user (``GET /Users`` paged at Miro's maximum of 1,000 per page, only ``userName``,
   ``displayName`` and ``name`` asked for, joined on userName = email). Other runs look SCIM up
   only for the few internal members that still lack an id. Stored as compressed blobs for the run
   (an aux stored by an older version, without team roles, is collected again). At 500,000 members
   the aux takes longer than one invocation: it watches the deadline, and an invocation that runs
   low stops handing out requests, lets the running ones finish and stores what it has
   (``members_aux.AuxProgress``); the next invocation fetches only what is missing.
2. ``members``: pages ``/v2/orgs/{org}/members``. Each page is handed to a writer thread
   (BatchGetItem of the page's items, fingerprint comparison, batched puts for new members,
   conditional updates for changed ones, then the page record = checkpoint), while the main
   thread already fetches the next page. The cursor chain is the run's critical path, so a run
   that starts with no page records begins it at once, on a background thread, while ``aux`` is
   collected: up to ``member_prefetch_pages`` pages wait for the aux, buffered as zlib'd JSON
   (~4 KB per 100 members instead of ~140 KB as pydantic objects: 300 pages, the default, ~1.3 MB).
   Buffered pages are not checkpointed, but a hand-over stores them (``members_aux.PagesAhead``) for
   the next invocation, so no member page is fetched twice across continuations; a failure drops them.
3. ``removals``: only after the listing completed. Members of the previous complete run's page
   records that this run did not list are marked deprovisioned (never deleted). Memory: the set
   of this run's member ids (~100 B per member); no Scan.
4. ``finish``: the usage snapshot, then the checkpoint returns to idle.

Timestamps written for a run (firstSeenAt, lastChangedAt, removedAt) are the run's start time, so a
run interrupted any number of times writes exactly what an uninterrupted run would.

This module runs the phases; the parts live beside it: ``members_ports`` (adapters, errors, result),
``members_aux_fetch`` (phase 1 and its bounded scheduler), ``members_aux`` (the aux and its progress),
``members_prefetch`` (the listing fetched ahead), ``members_listing`` (phase 2), ``members_writer``
(writing one page), ``members_snapshot`` (the running totals and the usage snapshot).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

from miro_sync.ports import DeadlineWatch, LogSink
from miro_sync.store.dynamo import iso_utc, parse_iso
from miro_sync.sync.member_index import HashSet, key_hash
from miro_sync.sync.members_aux import Aux
from miro_sync.sync.members_aux_fetch import AuxCollector
from miro_sync.sync.members_listing import MemberListing
from miro_sync.sync.members_ports import (
    SYNC_NAME,
    IncompleteListingError,
    MembersSource,
    MembersStore,
    MembersSyncError,
    MembersSyncResult,
    ScimDirectory,
    StateStore,
)
from miro_sync.sync.members_prefetch import PREFETCH_THREAD, MemberPrefetch, PrefetchedPages
from miro_sync.sync.members_snapshot import UNPAID_LICENSES, Totals, usage_snapshot
from miro_sync.sync.members_writer import INTERNAL_ROLES, SCIM_RECHECK, PageWriter

# What other packages import from here; the parts live in the members_* modules.
__all__ = [
    "INTERNAL_ROLES",
    "PREFETCH_THREAD",
    "SCIM_RECHECK",
    "SCIM_RELIST",
    "SYNC_NAME",
    "UNPAID_LICENSES",
    "DeadlineWatch",
    "IncompleteListingError",
    "MembersSource",
    "MembersStore",
    "MembersSync",
    "MembersSyncError",
    "MembersSyncResult",
    "ScimDirectory",
    "StateStore",
]

SCIM_RELIST = timedelta(days=7)  # a full SCIM listing (ids and display names) at least this often


def _utc_now() -> datetime:
    return datetime.now(UTC)


class MembersSync:
    def __init__(
        self,
        *,
        miro: MembersSource,
        scim: ScimDirectory | None,
        members: MembersStore,
        state: StateStore,
        clock: Callable[[], datetime] = _utc_now,
        page_size: int = 100,
        inactive_thresholds_days: Sequence[int] = (30, 60, 90),
        log: LogSink | None = None,
        fetch_workers: int = 12,
        write_workers: int = 4,
        member_prefetch_pages: int = 300,
        credit_headroom: Callable[[], float | None] | None = None,
        listing_holdback: float = 0.7,
    ) -> None:
        self._scim = scim
        self._members = members
        self._state = state
        self._clock = clock
        self._thresholds = tuple(inactive_thresholds_days)
        self._log: LogSink = log if log is not None else logging.getLogger(__name__)
        # A fresh run lists members while the aux is collected, buffering at most this many pages
        # (packed, ~4.4 KB per 100 members); 0 lists them only after the aux, as before.
        self._member_prefetch_pages = max(0, member_prefetch_pages)
        self._aux = AuxCollector(
            miro=miro, scim=scim, state=state, log=self._log, fetch_workers=max(1, fetch_workers)
        )
        self._prefetch = MemberPrefetch(
            miro=miro,
            state=state,
            log=self._log,
            page_size=page_size,
            depth=self._member_prefetch_pages,
            credit_headroom=credit_headroom,
            listing_holdback=listing_holdback,
        )
        self._listing = MemberListing(
            state=state,
            writer=PageWriter(members=members, scim=scim, thresholds=self._thresholds),
            prefetch=self._prefetch,
            log=self._log,
            write_workers=max(1, write_workers),
        )

    # --- entry point -----------------------------------------------------------------------------

    def run(self, *, invocation_id: str, deadline: DeadlineWatch) -> MembersSyncResult:
        now = self._clock()
        now_ms = int(now.timestamp() * 1000)
        if not self._state.acquire_lease(
            SYNC_NAME, invocation_id, now_ms=now_ms, until_ms=now_ms + max(deadline.remaining_ms(), 60_000)
        ):
            self._log.info("another invocation holds the members sync lease", extra={})
            return MembersSyncResult(outcome="busy")
        try:
            return self._run_locked(invocation_id, deadline, now)
        finally:
            self._state.release_lease(SYNC_NAME, invocation_id)

    def _run_locked(self, owner: str, deadline: DeadlineWatch, now: datetime) -> MembersSyncResult:
        state, result = self._begin(owner, now)
        started = parse_iso(state["startedAt"]) or now
        aux = self._aux_and_listing(owner, state, started, now, deadline, result)
        if aux is None:  # handed over: the next invocation resumes
            return result
        self._finish(owner, state, started, aux, result)
        return result

    def _begin(self, owner: str, now: datetime) -> tuple[dict[str, Any], MembersSyncResult]:
        """The run's checkpoint state, resumed or begun now, saved with this invocation counted."""
        stored = self._state.load_checkpoint(SYNC_NAME)
        state = dict(stored.state) if stored else {}
        result = MembersSyncResult(outcome="continue")
        if state.get("runId") and state.get("phase") not in (None, "idle"):
            result.resumed = True
            state["invocations"] = int(state.get("invocations", 1)) + 1
        else:
            state.update(
                runId=f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}",
                phase="aux",
                startedAt=iso_utc(now),
                invocations=1,
                fullScim=self._full_scim_due(state, now),
            )
        self._state.save_checkpoint(SYNC_NAME, owner, state)
        result.run_id = state["runId"]
        self._log.info(
            "members sync invocation",
            extra={"runId": result.run_id, "phase": state["phase"], "resumed": result.resumed},
        )
        return state, result

    def _aux_and_listing(
        self,
        owner: str,
        state: dict[str, Any],
        started: datetime,
        now: datetime,
        deadline: DeadlineWatch,
        result: MembersSyncResult,
    ) -> Aux | None:
        """Phases ``aux`` and ``members`` (those not done yet); the aux, or None on a hand-over.

        The aux collected by this invocation is used as built: reading it back from the store would
        hold the compressed chunks, the decompressed blob and the rebuilt indexes at once (~30 MB at
        100,000 members) just where the member pages start. A resumed invocation loads it.

        The member listing's cursor chain is the critical path: a run with no page records yet
        starts it now, on a background thread, and the listing takes its pages once the aux is
        there. Every way out of this block (hand-over, failure in aux or listing) stops the thread.
        No member page is fetched twice across continuations: on a hand-over -- during the aux, right
        after it, or in the listing -- the pages fetched ahead and not written are stored with the
        cursor after them (`PagesAhead`), and the next invocation takes them first and continues the
        listing there. (Prefetching only in an invocation sure to finish the aux cannot be decided
        up front: the aux's length depends on Miro's credits and latency.) A failure drops them."""
        run_id: str = state["runId"]
        prefetch = ExitStack()
        aux_collected = threading.Event()  # the aux is there: the listing no longer holds back
        leaving = threading.Event()  # set before the prefetch is stopped: a held listing fetches no more
        handing_over = False
        member_pages: PrefetchedPages | None = None
        try:
            if (
                state["phase"] == "aux"
                and self._member_prefetch_pages > 0
                and self._state.last_run_page(SYNC_NAME, run_id) is None
            ):
                ahead = self._prefetch.load_ahead(run_id, first_page=1)
                member_pages = prefetch.enter_context(self._prefetch.pages(aux_collected, leaving, ahead))
            aux = self._aux_of_run(owner, state, now, deadline, aux_collected)
            if aux is None:
                handing_over = True
                return None
            if state["phase"] == "members":
                if not self._list_members(run_id, aux, started, deadline, result, pages=member_pages):
                    handing_over = True
                    return None
                state["phase"] = "removals"
                self._state.save_checkpoint(SYNC_NAME, owner, state)
            return aux
        finally:
            leaving.set()
            prefetch.close()
            if handing_over and member_pages is not None:
                self._prefetch.store_left(run_id, member_pages, now)

    def _aux_of_run(
        self,
        owner: str,
        state: dict[str, Any],
        now: datetime,
        deadline: DeadlineWatch,
        aux_collected: threading.Event,
    ) -> Aux | None:
        """The run's aux: collected in phase ``aux`` (then the phase is ``members``), loaded after it,
        collected again if it expired or was never completed. None: hand over (out of time)."""
        run_id: str = state["runId"]
        full_scim = bool(state.get("fullScim"))
        if state["phase"] == "aux":
            aux = self._collect_aux(run_id, full_scim, now, deadline)
            if aux is None:  # out of time: its progress is stored
                return None
            aux_collected.set()
            state["phase"] = "members"
            self._state.save_checkpoint(SYNC_NAME, owner, state)
            return None if deadline.running_low() else aux
        aux = self._aux.load(run_id)
        if aux is None:  # expired or never completed: collect it again
            aux = self._collect_aux(run_id, full_scim, now, deadline)
        return aux

    def _finish(
        self, owner: str, state: dict[str, Any], started: datetime, aux: Aux, result: MembersSyncResult
    ) -> None:
        """Phases ``removals`` (unless done) and ``finish``: the snapshot, then the checkpoint idle."""
        run_id: str = state["runId"]
        last_page = self._state.last_run_page(SYNC_NAME, run_id)
        totals = Totals.from_json(last_page.state["totals"]) if last_page else Totals()
        if state["phase"] == "removals":
            removed_since_last_run = self._apply_removals(
                run_id, state.get("lastCompleteRunId"), totals.members, started, result
            )
            state["phase"] = "finish"
            state["removedSinceLastRun"] = removed_since_last_run
            self._state.save_checkpoint(SYNC_NAME, owner, state)

        snapshot = self._snapshot(run_id, started, totals, aux, int(state.get("removedSinceLastRun", 0)))
        self._state.put_usage_snapshot(started, run_id, snapshot)
        result.snapshot = snapshot
        state.update(
            phase="idle", runId=None, lastCompleteRunId=run_id, lastCompleteAt=iso_utc(self._clock())
        )
        state.pop("removedSinceLastRun", None)
        if state.get("fullScim"):
            state["lastFullScimAt"] = iso_utc(started)
        self._state.save_checkpoint(SYNC_NAME, owner, state)
        result.outcome = "complete"
        self._log.info(
            "members sync complete",
            extra={"runId": run_id, **{k: v for k, v in snapshot.items() if k != "runId"}},
        )

    def _full_scim_due(self, state: Mapping[str, Any], now: datetime) -> bool:
        """Page all of SCIM this run: on the first run, and when the last full listing is older than
        SCIM_RELIST (display names change; runs in between only look up members lacking an id)."""
        if self._scim is None:
            return False
        if not state.get("lastCompleteRunId"):
            return True
        listed = parse_iso(state["lastFullScimAt"]) if state.get("lastFullScimAt") else None
        return listed is None or listed <= now - SCIM_RELIST

    # --- the phases (separate methods: bench/members_sync.py measures each) ------------------------

    def _collect_aux(
        self, run_id: str, full_scim: bool, now: datetime, deadline: DeadlineWatch
    ) -> Aux | None:
        return self._aux.collect(run_id, full_scim, now, deadline)

    def _list_members(
        self,
        run_id: str,
        aux: Aux,
        started: datetime,
        deadline: DeadlineWatch,
        result: MembersSyncResult,
        *,
        pages: PrefetchedPages | None = None,
    ) -> bool:
        return self._listing.run(run_id, aux, started, deadline, result, pages=pages)

    def _apply_removals(
        self,
        run_id: str,
        previous_run_id: str | None,
        listed_now: int,
        started: datetime,
        result: MembersSyncResult,
    ) -> int:
        if not previous_run_id:
            return 0
        # ~8 bytes per member (sorted hashes), not a set of id strings (~100 bytes per member).
        current = HashSet(
            key_hash(member_id)
            for page in self._state.iter_run_pages(SYNC_NAME, run_id)
            for member_id in page.member_ids
        )
        gone: list[str] = []
        previous_count = 0
        for page in self._state.iter_run_pages(SYNC_NAME, previous_run_id):
            previous_count += len(page.member_ids)
            gone.extend(member_id for member_id in page.member_ids if member_id not in current)
        if not current and previous_count:
            raise IncompleteListingError(
                f"Miro listed no members although the previous run listed {previous_count}; "
                "refusing to mark everyone deprovisioned"
            )
        for start in range(0, len(gone), 100):
            batch = gone[start : start + 100]
            existing, reads = self._members.get_many(batch)
            result.read_requests += reads
            for member_id in batch:
                record = existing.get(member_id)
                if record is not None and self._members.mark_deprovisioned(record, now=started):
                    result.removed += 1
                    result.write_requests += 1
        del current
        return len(gone)

    def _snapshot(
        self, run_id: str, started: datetime, totals: Totals, aux: Aux, removed: int
    ) -> dict[str, Any]:
        return usage_snapshot(run_id, started, totals, aux, removed, self._thresholds)
