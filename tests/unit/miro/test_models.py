"""Wire models keep unknown fields and reject wrong types."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from miro_sync.miro.models import (
    SCIM_ENTERPRISE_USER,
    AuditEvent,
    BoardSubscription,
    MembersPage,
    OrgMember,
    ScimListResponse,
    ScimUser,
    TeamMember,
)
from tests.unit.miro.fakes import member

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20))
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=10,
)
known_member_fields = set(member(0)) | {"last_activity_at", "license_assigned_at", "admin_roles"}
unknown_fields = st.dictionaries(
    st.text(min_size=1, max_size=12).filter(lambda k: k not in known_member_fields), json_values, max_size=5
)


@given(extra=unknown_fields)
def test_member_keeps_any_unknown_fields(extra: dict[str, Any]) -> None:
    parsed = OrgMember.model_validate({**member(1), **extra})
    assert parsed.email == "user1@example.com"
    assert parsed.model_extra == extra
    assert parsed.model_dump(by_alias=True, include=set(extra)) == extra


not_a_string = st.one_of(
    st.integers(), st.booleans(), st.floats(allow_nan=False), st.lists(st.text(), max_size=2)
)
not_a_bool = st.one_of(st.integers(), st.text(max_size=5), st.floats(allow_nan=False), st.none())


@given(field=st.sampled_from(["id", "email", "role", "license"]), value=not_a_string)
def test_member_rejects_non_string_identity_fields(field: str, value: object) -> None:
    with pytest.raises(ValidationError):
        OrgMember.model_validate({**member(1), field: value})


@given(value=not_a_bool)
def test_member_rejects_anything_but_a_real_boolean_for_active(value: object) -> None:
    with pytest.raises(ValidationError):
        OrgMember.model_validate({**member(1), "active": value})


def test_member_timestamps_are_parsed_and_bad_ones_rejected() -> None:
    parsed = OrgMember.model_validate(member(1))
    assert parsed.last_activity_at == datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    assert OrgMember.model_validate({**member(1), "lastActivityAt": None}).last_activity_at is None
    with pytest.raises(ValidationError):
        OrgMember.model_validate({**member(1), "lastActivityAt": "last tuesday"})


def test_member_requires_its_identity() -> None:
    incomplete = member(1)
    del incomplete["email"]
    with pytest.raises(ValidationError):
        OrgMember.model_validate(incomplete)


def test_members_page_rejects_a_non_list_data_and_non_integer_size() -> None:
    with pytest.raises(ValidationError):
        MembersPage.model_validate({"data": {"0": member(0)}})
    with pytest.raises(ValidationError):
        MembersPage.model_validate({"data": [], "size": "1"})


def test_models_can_be_built_by_python_names_and_dumped_with_miro_names() -> None:
    built = OrgMember(
        id="1", email="a@example.com", role="r", license="full", active=False, last_activity_at=None
    )
    assert built.model_dump(by_alias=True)["lastActivityAt"] is None


def test_team_member_accepts_spec_id_or_member_id() -> None:
    assert TeamMember.model_validate({"id": "m1", "role": "member", "teamId": "t1"}).member_id == "m1"
    assert TeamMember.model_validate({"memberId": "m2", "role": "admin"}).member_id == "m2"
    with pytest.raises(ValidationError):
        TeamMember.model_validate({"id": 5, "role": "member"})


def test_audit_event_keeps_details_and_unknown_fields() -> None:
    event = AuditEvent.model_validate(
        {
            "id": "e1",
            "createdAt": "2024-01-01T00:00:00.000Z",
            "event": "board_opened",
            "details": {"nested": {"deep": [1, 2]}},
            "createdBy": {"type": "user", "id": "u1", "newKey": True},
            "novel": "x",
        }
    )
    assert event.details == {"nested": {"deep": [1, 2]}}
    assert event.created_by is not None
    assert event.created_by.model_extra == {"newKey": True}
    assert event.model_extra == {"novel": "x"}
    with pytest.raises(ValidationError):
        AuditEvent.model_validate({"id": "e1", "createdAt": "2024-01-01T00:00:00Z", "event": 3})


def test_scim_user_with_enterprise_extension() -> None:
    user = ScimUser.model_validate(
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", SCIM_ENTERPRISE_USER],
            "id": "scim-1",
            "userName": "a@example.com",
            "active": True,
            "emails": [{"value": "a@example.com", "primary": True}],
            SCIM_ENTERPRISE_USER: {"department": "IT", "manager": {"value": "9"}},
        }
    )
    assert user.enterprise is not None
    assert user.enterprise.department == "IT"
    with pytest.raises(ValidationError):
        ScimUser.model_validate({"id": "scim-1", "userName": "a@example.com", "active": "false"})


def test_scim_list_accepts_integral_json_numbers() -> None:
    listing = ScimListResponse.model_validate(
        {"totalResults": 2.0, "startIndex": 1, "itemsPerPage": 0, "Resources": []}
    )
    assert listing.total_results == 2
    with pytest.raises(ValidationError):
        ScimListResponse.model_validate({"totalResults": 2.5})


def test_board_subscription_requires_status() -> None:
    with pytest.raises(ValidationError):
        BoardSubscription.model_validate({"id": "s1"})
