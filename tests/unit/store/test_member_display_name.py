"""displayName on the member record: stored, round-tripped, part of the fingerprint only when known."""

from __future__ import annotations

from datetime import UTC, datetime

from miro_sync.miro.models import OrgMember
from miro_sync.store.members import MemberRecord, build_member_record

NOW = datetime(2026, 3, 1, tzinfo=UTC)
MEMBER = OrgMember.model_validate(
    {
        "id": "m1",
        "email": "A@example.com",
        "role": "organization_internal_admin",
        "license": "full",
        "active": True,
        "adminRoles": [{"type": "prebuilt", "name": "Content Admin"}, {"type": "custom", "name": "Auditor"}],
    }
)


def record(existing: MemberRecord | None = None, name: str | None = None) -> MemberRecord:
    return build_member_record(
        MEMBER,
        existing,
        teams=(),
        boards_owned=2,
        scim_id="s1",
        scim_checked_at=None,
        now=NOW,
        display_name=name,
    )


def test_display_name_round_trips_and_is_sync_owned() -> None:
    named = record(name="José Núñez")
    item = named.to_item()
    assert item["displayName"] == "José Núñez"
    assert item["adminRoles"] == ["Auditor", "Content Admin"]
    assert MemberRecord.from_item(item) == named
    assert named.sync_owned_attributes()["displayName"] == "José Núñez"
    assert "displayName" not in record().to_item()


def test_unnamed_members_keep_their_fingerprint_and_a_name_changes_it_once() -> None:
    unnamed = record()
    legacy = unnamed.model_copy(update={"display_name": None})
    assert unnamed.fingerprint == legacy.content_fingerprint()
    named = record(unnamed, "Ann")
    assert named.fingerprint != unnamed.fingerprint
    again = record(named, "Ann")
    assert again.fingerprint == named.fingerprint
    assert again.last_changed_at == named.last_changed_at
    # Not asked (None): the stored name is kept, nothing to write.
    kept = record(named)
    assert kept.display_name == "Ann"
    assert kept.fingerprint == named.fingerprint
