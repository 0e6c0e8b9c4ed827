"""MembersTable keeps each member's teams with the team's name and the member's team role
(`teamMemberships`), besides the bare team ids (`teams`) it always had."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from miro_sync.miro.models import OrgMember
from miro_sync.store.members import MemberRecord, TeamMembership, build_member_record

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=1)

ADMIN_OF_B = (
    TeamMembership(id="t-b", name="Beta", role="admin"),
    TeamMembership(id="t-a", name="Alpha", role="member"),
)


def org_member() -> OrgMember:
    return OrgMember.model_validate(
        {
            "id": "3458764510000000001",
            "email": "Ada@Acme.example",
            "role": "organization_internal_user",
            "license": "full",
            "active": True,
            "type": "organization-member",
        }
    )


def record_for(
    memberships: tuple[TeamMembership, ...] | None,
    existing: MemberRecord | None = None,
    *,
    now: datetime = NOW,
) -> MemberRecord:
    return build_member_record(
        org_member(),
        existing,
        teams=[membership.id for membership in memberships or ()],
        team_memberships=memberships,
        boards_owned=0,
        scim_id=None,
        scim_checked_at=None,
        now=now,
    )


def test_memberships_are_stored_as_id_role_name_strings_sorted_by_team_id_and_read_back() -> None:
    record = record_for(ADMIN_OF_B)

    item = record.to_item()

    assert item["teamMemberships"] == ["t-a:member:Alpha", "t-b:admin:Beta"]
    assert item["teams"] == ["t-a", "t-b"]
    restored = MemberRecord.from_item(item)
    assert restored == record
    assert restored.team_memberships == (
        TeamMembership(id="t-a", name="Alpha", role="member"),
        TeamMembership(id="t-b", name="Beta", role="admin"),
    )
    assert restored.admin_team_ids == ("t-b",)
    assert restored.content_fingerprint() == record.fingerprint


def test_a_team_name_with_colons_survives_and_the_first_map_form_still_reads() -> None:
    odd = TeamMembership(id="t-9", name="R&D: EMEA: 2027", role="admin")
    assert TeamMembership.from_item(odd.to_item()) == odd
    assert TeamMembership.from_item({"id": "t-9", "name": "R&D: EMEA: 2027", "role": "admin"}) == odd


def test_no_memberships_no_attribute_and_a_rewrite_removes_it() -> None:
    record = record_for(())

    assert "teamMemberships" not in record.to_item()
    assert record.sync_owned_attributes()["teamMemberships"] is None  # REMOVE on a rewrite
    assert record.admin_team_ids == ()
    assert record_for(ADMIN_OF_B).sync_owned_attributes()["teamMemberships"] == [
        "t-a:member:Alpha",
        "t-b:admin:Beta",
    ]


def test_an_item_written_before_memberships_were_stored_reads_back_without_them() -> None:
    item: dict[str, Any] = {
        "memberId": "m1",
        "email": "ada@acme.example",
        "role": "organization_internal_user",
        "license": "full",
        "active": True,
        "status": "active",
        "seat": "active#full",
        "lastSeenAt": "0000-00-00T00:00:00Z",
        "boardsOwned": 2,
        "teams": ["t1", "t2"],
        "fingerprint": "39239eec919f984e93d07d28",
    }

    record = MemberRecord.from_item(item)

    assert record.team_memberships == ()
    assert record.admin_team_ids == ()
    assert record.teams == ("t1", "t2")


def test_a_member_in_no_team_keeps_the_fingerprint_it_had_before_memberships_were_stored() -> None:
    """So the first sync after the upgrade does not rewrite every member who is in no team. The
    values were computed by the code before this change."""
    base: dict[str, Any] = {
        "member_id": "m1",
        "email": "ada@acme.example",
        "role": "organization_internal_user",
        "license": "full",
        "active": True,
        "status": "active",
    }
    assert MemberRecord(**base).content_fingerprint() == "e0b5f9017459ba7b6600a00e"
    in_teams = MemberRecord(**base, teams=("t1", "t2"), boards_owned=2)
    assert in_teams.content_fingerprint() == "39239eec919f984e93d07d28"
    # A member in teams is rewritten once, to add the memberships.
    with_memberships = in_teams.model_copy(
        update={"team_memberships": (TeamMembership(id="t1", name="One", role="member"),)}
    )
    assert with_memberships.content_fingerprint() != "39239eec919f984e93d07d28"


def test_an_unchanged_member_keeps_its_fingerprint_and_last_changed_at() -> None:
    first = record_for(ADMIN_OF_B)
    # The same memberships in another order, as another listing may give them.
    again = record_for(tuple(reversed(ADMIN_OF_B)), MemberRecord.from_item(first.to_item()), now=LATER)

    assert again.fingerprint == first.fingerprint
    assert again.last_changed_at == NOW


def test_a_role_change_or_a_team_rename_changes_the_fingerprint() -> None:
    first = MemberRecord.from_item(record_for(ADMIN_OF_B).to_item())
    promoted = (
        TeamMembership(id="t-b", name="Beta", role="admin"),
        TeamMembership(id="t-a", name="Alpha", role="admin"),
    )
    renamed = (
        TeamMembership(id="t-b", name="Beta (old)", role="admin"),
        TeamMembership(id="t-a", name="Alpha", role="member"),
    )

    for memberships in (promoted, renamed):
        changed = record_for(memberships, first, now=LATER)
        assert changed.fingerprint != first.fingerprint
        assert changed.last_changed_at == LATER
        assert MemberRecord.from_item(changed.to_item()).team_memberships == tuple(
            sorted(memberships, key=lambda m: m.id)
        )
    assert record_for(promoted, first, now=LATER).admin_team_ids == ("t-a", "t-b")


def test_a_refresh_without_team_listing_keeps_the_stored_memberships() -> None:
    """upsert_from_miro (after offboarding) passes teams=existing.teams and no memberships."""
    stored = MemberRecord.from_item(record_for(ADMIN_OF_B).to_item())

    refreshed = build_member_record(
        org_member(),
        stored,
        teams=stored.teams,
        boards_owned=0,
        scim_id=None,
        scim_checked_at=None,
        now=LATER,
    )

    assert refreshed.team_memberships == stored.team_memberships
    assert refreshed.fingerprint == stored.fingerprint
