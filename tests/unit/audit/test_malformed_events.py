"""A page with malformed events, end to end: Miro's JSON through the real client into the sync and the
real repositories (moto). The good events are stored, the bad ones rejected with the page cursor, and
the run goes on to completion."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx

from miro_sync.continuation import NoDeadline
from miro_sync.miro import MiroRestClient
from miro_sync.store.audit import AuditRepository, RejectedEventsRepository
from miro_sync.store.members import MembersRepository
from miro_sync.store.state import StateRepository
from miro_sync.sync.audit import AuditLogSync, AuditSyncConfig
from tests.unit.audit.fakes import T0, FakeAuditApi, FakeClock, RecordingForwarder, make_event
from tests.unit.audit.harness import Harness
from tests.unit.audit.tables import Tables
from tests.unit.miro.fakes import FakeTime


def _page(data: list[Any], cursor: str | None) -> httpx.Response:
    body = {"type": "cursor-list", "limit": 100, "size": len(data), "cursor": cursor, "data": data}
    return httpx.Response(
        200, content=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )


def test_a_page_with_bad_events_stores_the_others_and_rejects_the_bad_ones_with_its_cursor(
    tables: Tables,
) -> None:
    at = [T0 - timedelta(hours=hours) for hours in (5, 4, 3, 2, 1)]
    no_id = make_event("x", at[2]) | {"id": ""}
    bad_date = make_event("e4", at[3]) | {"createdAt": "2026-02-30T25:00:00Z"}
    pages = {
        None: _page([make_event("e1", at[0]), make_event("e2", at[1])], "cursor-2"),
        "cursor-2": _page([no_id, bad_date, make_event("e5", at[4]) | {"newField": [1, 2]}], None),
    }
    requested: list[str | None] = []

    def miro(request: httpx.Request) -> httpx.Response:
        cursor = request.url.params.get("cursor")
        requested.append(cursor)
        return pages[cursor]

    client = MiroRestClient(
        "https://api.miro.test",
        "token",
        "org-1",
        http=httpx.Client(transport=httpx.MockTransport(miro)),
        sleep=FakeTime().sleep,
        clock=FakeTime().clock,
    )
    forwarder = RecordingForwarder()
    sync = AuditLogSync(
        source=client,
        store=AuditRepository(tables.audit),
        rejects=RejectedEventsRepository(tables.state),
        checkpoints=StateRepository(tables.state),
        members=MembersRepository(tables.members),
        forwarder=forwarder,
        # Inline writes and signals: moto's in-process DynamoDB is not thread-safe.
        config=AuditSyncConfig(backfill_days=1, signal_workers=1, write_behind=False),
        clock=FakeClock(),
    )

    result = sync.run(owner="inv-1", deadline=NoDeadline())

    assert result.outcome == "complete"
    assert requested == [None, "cursor-2"]
    assert (result.events_seen, result.stored, result.rejected) == (5, 3, 2)
    # Harness only for its read-back helpers (its fake API is not used here).
    h = Harness(
        tables=tables, api=FakeAuditApi(clock=FakeClock()), clock=FakeClock(), config=AuditSyncConfig()
    )
    assert h.stored_ids() == ["e1", "e2", "e5"]
    assert [event["id"] for event in forwarder.published] == ["e1", "e2", "e5"]
    repository = AuditRepository(tables.audit)
    (stored_e5,) = repository.full_events(repository.query_by_actor("m1@acme.example", at[4]))
    assert stored_e5.raw["newField"] == [1, 2]  # unknown fields kept
    rejected = sorted(h.rejected(), key=lambda item: item["reason"])
    assert [item["cursor"] for item in rejected] == ["cursor-2", "cursor-2"]
    assert rejected[0]["reason"] == "missing or empty id"
    assert rejected[1]["reason"].startswith("unparseable createdAt")
    assert json.loads(rejected[1]["raw"])["id"] == "e4"
    # The watermark moved only to what was stored.
    assert h.checkpoint()["watermark"] == make_event("e5", at[4])["createdAt"]
