"""`POST /_emulator/audit-events` over real HTTP: new events are listed after the old ones, as new."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from miro_emulator import RunningEmulator
from miro_emulator.config import iso_s
from tests.fixtures.emulator import MiroSpec
from tests.integration.emulator.conftest_helpers import rest

pytestmark = pytest.mark.integration


def miro_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def control(emulator: RunningEmulator) -> httpx.Client:
    """No Authorization header: the control endpoints are never authenticated."""
    return httpx.Client(base_url=emulator.base_url, timeout=30)


def list_events(
    emulator: RunningEmulator, miro_spec: MiroSpec, created_after: str, created_before: str
) -> list[dict[str, Any]]:
    """Every event of the range, ASC, through Miro's cursor, each page checked against the spec."""
    events: list[dict[str, Any]] = []
    cursor: str | None = None
    with rest(emulator) as client:
        while True:
            params: dict[str, str | int] = {
                "createdAfter": created_after,
                "createdBefore": created_before,
                "limit": 100,
                "sorting": "ASC",
                **({"cursor": cursor} if cursor else {}),
            }
            response = client.get("/v2/audit/logs", params=params)
            assert response.status_code == 200, response.text
            miro_spec.validate("enterprise-get-audit-logs", 200, response.json())
            events.extend(response.json()["data"])
            cursor = response.json().get("cursor")
            if not cursor:
                return events


def test_new_events_follow_the_old_ones_in_the_listing(
    emulator: RunningEmulator, miro_spec: MiroSpec
) -> None:
    now = emulator.state.clock.now()
    since = miro_time(now - timedelta(days=2))
    until = miro_time(now + timedelta(hours=1))
    old = list_events(emulator, miro_spec, since, until)
    assert old, "two days of a 200-member org must hold audit events"
    with control(emulator) as client:
        total_before = client.get("/_emulator/state/org").json()["auditEvents"]
        response = client.post("/_emulator/audit-events", json={"count": 250})
        total_after = client.get("/_emulator/state/org").json()["auditEvents"]
    assert response.status_code == 201, response.text
    answer = response.json()
    assert answer["added"] == 250
    assert answer["total"] == total_after == total_before + 250
    assert sum(answer["byEvent"].values()) == 250

    listed = list_events(emulator, miro_spec, since, until)
    assert [e["id"] for e in listed[: len(old)]] == [e["id"] for e in old]
    new = listed[len(old) :]
    assert len(new) == 250
    assert new[0]["id"] == answer["firstId"]
    assert new[-1]["id"] == answer["lastId"]
    assert new[0]["createdAt"] == answer["firstCreatedAt"]
    assert new[-1]["createdAt"] == answer["lastCreatedAt"]
    assert len({e["id"] for e in listed}) == len(listed)
    assert new[0]["createdAt"] > old[-1]["createdAt"]  # strictly after: same-format ISO strings sort by time
    newest = datetime.fromisoformat(answer["lastCreatedAt"].replace("Z", "+00:00"))
    assert emulator.state.clock.now() - newest < timedelta(minutes=1)

    # What an incremental sync asks for: everything after the newest event it has seen is exactly the new.
    newest_seen = datetime.fromisoformat(old[-1]["createdAt"].replace("Z", "+00:00"))
    seen_until = newest_seen + timedelta(milliseconds=1)
    assert [e["id"] for e in list_events(emulator, miro_spec, miro_time(seen_until), until)] == [
        e["id"] for e in new
    ]

    members = {m.id: m for m in emulator.state.all_members}
    board_ids = {b.id for b in emulator.state.boards}
    for event in new:
        actor = members[event["createdBy"]["id"]]
        assert event["createdBy"] == {
            "type": "user",
            "id": actor.id,
            "name": actor.display_name,
            "email": actor.email,
        }
        assert actor.active
        assert event["event"] in answer["byEvent"]
        if event["category"] == "boards":
            assert event["object"]["id"] in board_ids
        else:
            assert event["object"]["id"] == actor.id


def test_one_event_type_and_the_actors_last_activity(emulator: RunningEmulator) -> None:
    audit = emulator.state.audit
    with control(emulator) as client:
        response = client.post("/_emulator/audit-events", json={"count": 30, "event": "sign_in_succeeded"})
        assert response.status_code == 201, response.text
        answer = response.json()
        assert answer["byEvent"] == {"sign_in_succeeded": 30}
        first = audit.position_of(answer["firstId"])
        assert first is not None
        newest: dict[str, int] = {}
        for position in range(first, first + 30):
            actor_id = emulator.state.all_members[audit.actor[position]].id
            newest[actor_id] = max(newest.get(actor_id, 0), audit.created_ms[position])
        for actor_id, created_ms in newest.items():
            truth = client.get("/_emulator/state/members", params={"id": actor_id}).json()["data"][0]
            # No event after its actor's lastActivityAt (rendered to the second, as Miro does).
            assert truth["lastActivityAt"] == iso_s(created_ms)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "Field 'count' must be an integer from 1 to 100000"),
        ({"count": 0}, "Field 'count' must be an integer from 1 to 100000"),
        ({"count": -5}, "Field 'count' must be an integer from 1 to 100000"),
        ({"count": 100_001}, "Field 'count' must be an integer from 1 to 100000"),
        ({"count": "10"}, "Field 'count' must be an integer from 1 to 100000"),
        ({"count": 2.5}, "Field 'count' must be an integer from 1 to 100000"),
        ({"count": True}, "Field 'count' must be an integer from 1 to 100000"),
        ({"count": 5, "event": "user_deleted"}, "Field 'event' must be one of: sign_in_succeeded,"),
        ({"count": 5, "actor": "x"}, "Unknown field(s): actor; allowed: count, event"),
        ([5], "Request body must be a JSON object"),
    ],
)
def test_bad_input_is_400_with_a_clear_message_and_adds_nothing(
    emulator: RunningEmulator, body: object, message: str
) -> None:
    before = len(emulator.state.audit)
    with control(emulator) as client:
        response = client.post("/_emulator/audit-events", json=body)
    assert response.status_code == 400
    assert response.json()["code"] == "invalidParameters"
    assert response.json()["message"].startswith(message)
    assert len(emulator.state.audit) == before


def test_not_json_and_wrong_method(emulator: RunningEmulator) -> None:
    with control(emulator) as client:
        not_json = client.post("/_emulator/audit-events", content=b"count=5")
        wrong_method = client.get("/_emulator/audit-events")
    assert not_json.status_code == 400
    assert not_json.json()["message"] == "Request body must be valid JSON"
    assert wrong_method.status_code == 405


def test_never_authenticated_rate_limited_faulted_or_counted(
    emulator_factory: Callable[..., RunningEmulator],
) -> None:
    emulator = emulator_factory(faults="expired-token", credits_per_window=1)
    with (
        control(emulator) as anonymous,
        httpx.Client(
            base_url=emulator.base_url, headers={"Authorization": "Bearer wrong"}, timeout=30
        ) as wrong_token,
    ):
        answers = [anonymous.post("/_emulator/audit-events", json={"count": 1000}) for _ in range(60)]
        answers.append(wrong_token.post("/_emulator/audit-events", json={"count": 1000}))
    assert [a.status_code for a in answers] == [201] * 61
    assert answers[-1].json()["total"] == answers[0].json()["total"] + 60 * 1000
    assert emulator.stats()["totalRequests"] == 0
