from __future__ import annotations

from datetime import UTC, datetime

import pytest

from miro_sync.miro.models import AuditEvent
from miro_sync.store.audit import AuditRecord
from miro_sync.sync.audit_events import is_activity, is_sign_in, to_record
from tests.unit.audit.fakes import make_event


def test_equal_instants_in_different_notations_get_one_key() -> None:
    first = make_event("42", datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC))
    second = dict(first, createdAt="2026-01-02T04:04:05.678+01:00")
    third = dict(first, createdAt="2026-01-02T03:04:05.678000Z")
    records = [to_record(raw) for raw in (first, second, third)]
    assert all(isinstance(record, AuditRecord) for record in records)
    keys = {record.sk for record in records if isinstance(record, AuditRecord)}
    assert keys == {"2026-01-02T03:04:05.678Z#42"}


def test_unknown_fields_are_kept_in_raw() -> None:
    raw = make_event("7", datetime(2026, 1, 2, tzinfo=UTC)) | {"riskScore": 0.9, "newThing": {"a": [1]}}
    record = to_record(raw)
    assert isinstance(record, AuditRecord)
    assert record.raw["riskScore"] == 0.9
    assert record.raw["newThing"] == {"a": [1]}


def test_pydantic_events_from_the_client_keep_their_extra_fields() -> None:
    model = AuditEvent.model_validate(make_event("8", datetime(2026, 1, 2, tzinfo=UTC)) | {"extra": "x"})
    record = to_record(model)
    assert isinstance(record, AuditRecord)
    assert record.sk == "2026-01-02T00:00:00.000Z#8"
    assert record.raw["extra"] == "x"
    assert record.actor_email == "m1@acme.example"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"id": None}, "missing or empty id"),
        ({"id": "  "}, "missing or empty id"),
        ({"createdAt": "yesterday"}, "unparseable createdAt"),
        ({"createdAt": "2026-01-02T03:04:05"}, "unparseable createdAt"),  # no timezone: not guessed
        ({"createdAt": 1767225600}, "unparseable createdAt"),
    ],
)
def test_events_without_a_usable_key_are_rejected_with_a_reason(
    change: dict[str, object], reason: str
) -> None:
    raw = make_event("9", datetime(2026, 1, 2, tzinfo=UTC)) | change
    outcome = to_record(raw)
    assert isinstance(outcome, str)
    assert outcome.startswith(reason)


def test_non_objects_are_rejected() -> None:
    assert to_record(["not", "an", "event"]) == "event is a list, not an object"


def test_signal_classification() -> None:
    at = datetime(2026, 1, 2, tzinfo=UTC)
    sign_in = to_record(make_event("1", at, event="sign_in_succeeded"))
    failed = to_record(make_event("2", at, event="sign_in_failed"))
    opened = to_record(make_event("3", at, event="board_opened"))
    provisioner = to_record(
        make_event("4", at, event="user_deactivated") | {"createdBy": {"type": "scim_provisioner", "id": "0"}}
    )
    assert isinstance(sign_in, AuditRecord)
    assert is_sign_in(sign_in)
    assert is_activity(sign_in)
    assert isinstance(failed, AuditRecord)
    assert not is_sign_in(failed)
    assert not is_activity(failed)
    assert isinstance(opened, AuditRecord)
    assert not is_sign_in(opened)
    assert is_activity(opened)
    assert isinstance(provisioner, AuditRecord)
    assert not is_activity(provisioner)
    assert provisioner.actor == "0"
