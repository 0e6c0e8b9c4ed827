"""MembersTable keeps a member's Miro admin roles by name (the AdminRole's `name`, not its `type`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from miro_sync.miro.models import OrgMember
from miro_sync.store.members import MemberRecord, build_member_record

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def org_member(admin_roles: list[dict[str, Any]] | None) -> OrgMember:
    body: dict[str, Any] = {
        "id": "3458764510000000001",
        "email": "ada@acme.example",
        "role": "organization_internal_user",
        "license": "full",
        "active": True,
        "type": "organization-member",
    }
    if admin_roles is not None:
        body["adminRoles"] = admin_roles
    return OrgMember.model_validate(body)


def record_for(member: OrgMember, existing: MemberRecord | None = None) -> MemberRecord:
    return build_member_record(
        member, existing, teams=(), boards_owned=0, scim_id=None, scim_checked_at=None, now=NOW
    )


@pytest.mark.parametrize(
    ("admin_roles", "stored"),
    [
        ([{"type": "prebuilt", "name": "Content Admin"}], ("Content Admin",)),
        (
            [{"type": "prebuilt", "name": "User Admin"}, {"type": "prebuilt", "name": "Security Admin"}],
            ("Security Admin", "User Admin"),
        ),
        ([{"type": "custom", "name": "Board Janitor"}], ("Board Janitor",)),
        ([{"name": "Content Admin"}], ("Content Admin",)),
        # No name at all: the type is better than nothing (it still says "some admin role").
        ([{"type": "custom"}], ("custom",)),
        ([{}], ()),
        ([], ()),
        (None, ()),
    ],
)
def test_admin_roles_are_stored_by_name(
    admin_roles: list[dict[str, Any]] | None, stored: tuple[str, ...]
) -> None:
    record = record_for(org_member(admin_roles))

    assert record.admin_roles == stored
    item = record.to_item()
    if stored:
        assert item["adminRoles"] == list(stored)
    else:
        assert "adminRoles" not in item
    assert MemberRecord.from_item(item).admin_roles == stored


def test_a_record_stored_with_role_types_is_rewritten_with_names() -> None:
    """Items written before the fix hold "prebuilt": the fingerprint differs, so the sync rewrites them."""
    member = org_member([{"type": "prebuilt", "name": "Content Admin"}])
    current = record_for(member)
    old = current.model_copy(update={"admin_roles": ("prebuilt",)})
    old = old.model_copy(update={"fingerprint": old.content_fingerprint()})

    rebuilt = record_for(member, existing=old)

    assert rebuilt.admin_roles == ("Content Admin",)
    assert rebuilt.fingerprint != old.fingerprint
    assert rebuilt.last_changed_at == NOW
