"""Guards fail closed: a configuration that cannot be read protects everyone, admin roles count as
admin, an inactivity report's precondition is re-checked against Miro's live record."""

from __future__ import annotations

import json
from datetime import timedelta, timezone
from typing import Any

import pytest

from miro_sync.miro.models import AdminRole
from miro_sync.offboarding.worker import GuardPolicy
from miro_sync.settings.offboarding import ProtectedEmailsError, parse_protected_emails
from tests.unit.offboarding.fakes import START, OrgPerson, make_world, offboarding_settings


def body(action: str = "suspend", email: str = "ann@example.com", **fields: Any) -> str:
    return json.dumps(
        {"action": action, "email": email, "requestedBy": "it-ops@example.com", "reason": "left", **fields}
    )


# --- PROTECTED_EMAILS ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("", ()),
        ("ceo@example.com", ("ceo@example.com",)),
        ("CEO@example.com, cfo@example.com", ("ceo@example.com", "cfo@example.com")),
        ("ceo@example.com;cfo@example.com", ("ceo@example.com", "cfo@example.com")),
        (
            "ceo@example.com cfo@example.com\n\tcto@example.com",
            ("ceo@example.com", "cfo@example.com", "cto@example.com"),
        ),
        (" ceo@example.com ,; ceo@example.com ", ("ceo@example.com",)),
    ],
)
def test_protected_emails_accept_commas_semicolons_and_whitespace(text: str, parsed: tuple[str, ...]) -> None:
    assert parse_protected_emails(text) == parsed


@pytest.mark.parametrize(
    "text",
    ["ceo", "ceo@example.com, cfo", "ceo@example.com|cfo@example.com", "@example.com", "ceo@", "a@b"],
)
def test_a_bad_protected_email_is_a_configuration_error(text: str) -> None:
    with pytest.raises(ProtectedEmailsError, match="not an email address"):
        parse_protected_emails(text)


def test_settings_with_a_bad_protected_list_still_load_and_name_the_error() -> None:
    settings = offboarding_settings(PROTECTED_EMAILS="ceo@example.com, ceo")
    with pytest.raises(ProtectedEmailsError, match="'ceo'"):
        _ = settings.protected_emails


def test_a_configuration_error_refuses_every_suspend_and_delete_with_its_reason() -> None:
    world = make_world()
    worker = world.worker()
    worker._planner._policy = GuardPolicy(  # the handler builds it from the settings: see test_guard_policy_*
        protected_emails=frozenset(),
        allow_admin_offboarding=False,
        max_actions_per_hour=100,
        configuration_error="PROTECTED_EMAILS: not an email address: 'ceo'",
    )
    for action in ("suspend", "delete"):
        result = worker.handle_message(body(action, email="bob@example.com", requestId=f"{action}-1"))
        assert result.outcome == "refused"
        assert "configuration error" in (result.reason or "")
        assert "PROTECTED_EMAILS" in (result.reason or "")
    assert world.miro.writes == []
    assert world.metrics.values["OffboardingConfigurationError"] == 2
    # undoing is never blocked by a broken protection list
    assert worker.handle_message(body("reactivate", email="gone@example.com")).outcome == "done"


# --- admin roles ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["Content Admin", "User Admin", "Security Admin", "Custom auditor"])
def test_a_member_holding_a_miro_admin_role_counts_as_an_admin(role: str) -> None:
    world = make_world()
    world.miro.people["m2"].admin_roles = (role,)
    result = world.worker().handle_message(body(email="bob@example.com"))
    assert result.outcome == "refused"
    assert f"holds Miro admin roles ({role})" in (result.reason or "")
    assert world.miro.writes == []
    allowed = world.worker(allow_admins=True).handle_message(body(email="bob@example.com", requestId="again"))
    assert allowed.outcome == "done"


def test_an_admin_role_without_a_name_still_counts() -> None:
    world = make_world()
    original = world.miro._member

    def member_with_unnamed_role(person: Any) -> Any:
        return original(person).model_copy(
            update={"admin_roles": [AdminRole()] if person.member_id == "m2" else []}
        )

    world.miro._member = member_with_unnamed_role  # type: ignore[method-assign]
    result = world.worker().handle_message(body(email="bob@example.com"))
    assert result.outcome == "refused"
    assert "unnamed role" in (result.reason or "")


# --- the inactivity precondition -----------------------------------------------------------------------

CUTOFF = START - timedelta(days=90)


def test_a_member_active_again_since_the_report_is_refused() -> None:
    world = make_world()
    world.miro.people["m1"].last_activity_at = CUTOFF + timedelta(days=80)
    result = world.worker().handle_message(body(inactiveSince=CUTOFF.isoformat()))
    assert result.outcome == "refused"
    assert "active again" in (result.reason or "")
    assert world.miro.writes == []


def test_a_member_licensed_after_the_cutoff_is_refused() -> None:
    world = make_world()
    world.miro.people["m1"].license_assigned_at = CUTOFF + timedelta(days=1)
    result = world.worker().handle_message(body(inactiveSince=CUTOFF.isoformat()))
    assert result.outcome == "refused"
    assert "licensed" in (result.reason or "")


@pytest.mark.parametrize("last_activity", [None, CUTOFF, CUTOFF - timedelta(days=200)])
def test_a_member_still_inactive_is_offboarded(last_activity: Any) -> None:
    world = make_world()
    world.miro.people["m1"].last_activity_at = last_activity
    result = world.worker().handle_message(body(inactiveSince=CUTOFF.isoformat()))
    assert result.outcome == "done"
    assert world.miro.writes == ["active=False:s-ann"]


def test_a_last_activity_without_an_offset_is_read_as_utc() -> None:
    world = make_world()
    world.miro.people["m1"].last_activity_at = (CUTOFF + timedelta(days=1)).replace(tzinfo=None)
    result = world.worker().handle_message(body(inactiveSince=CUTOFF.isoformat()))
    assert result.outcome == "refused"
    assert "active again" in (result.reason or "")


def test_the_precondition_is_part_of_what_a_request_id_stands_for() -> None:
    world = make_world()
    worker = world.worker()
    worker.handle_message(body(requestId="r-1", inactiveSince=CUTOFF.isoformat()))
    other = worker.handle_message(
        body(requestId="r-1", inactiveSince=(CUTOFF + timedelta(days=1)).isoformat())
    )
    assert other.outcome == "refused"
    assert "requestId reused" in (other.reason or "")


def test_two_miro_members_with_the_same_email_are_never_guessed_between() -> None:
    world = make_world()
    world.miro.people["m9"] = OrgPerson("m9", "ann@example.com", scim_id="s-ann-2")
    result = world.worker().handle_message(body())
    assert result.outcome == "refused"
    assert "matches 2 Miro members; refusing to guess" in (result.reason or "")
    assert world.miro.writes == []


def test_a_role_that_is_neither_user_nor_admin_is_refused() -> None:
    world = make_world()
    world.miro.people["m2"].role = "unknown"
    result = world.worker().handle_message(body(email="bob@example.com"))
    assert result.outcome == "refused"
    assert "has role 'unknown'; only internal users and admins are offboarded" in (result.reason or "")


def test_a_member_without_a_scim_user_is_refused_with_that_reason() -> None:
    world = make_world(table=False)
    world.miro.people["m2"].scim_id = None
    result = world.worker().handle_message(body(email="bob@example.com"))
    assert result.outcome == "refused"
    assert "bob@example.com has no SCIM user" in (result.reason or "")


def test_a_stale_scim_id_in_the_table_is_refused_with_that_reason() -> None:
    world = make_world()
    world.miro.people["m2"].scim_id = "s-bob-new"  # the table still says s-bob
    result = world.worker().handle_message(body(email="bob@example.com"))
    assert result.outcome == "refused"
    assert "has no SCIM user" in (result.reason or "")
    assert [c for c in world.miro.calls if c != "find_members_by_email"] == ["get_user"]


def test_a_licence_assigned_exactly_at_the_cutoff_is_inside_the_inactivity() -> None:
    world = make_world()
    world.miro.people["m1"].license_assigned_at = CUTOFF
    assert world.worker().handle_message(body(inactiveSince=CUTOFF.isoformat())).outcome == "done"


def test_derived_ids_tell_intents_apart() -> None:
    from miro_sync.offboarding.messages import derive_request_id

    plain = derive_request_id("suspend", "ann@example.com", None)
    assert derive_request_id("suspend", "ann@example.com", None, dry_run=True) != plain
    assert derive_request_id("suspend", "ann@example.com", START) != plain
    assert derive_request_id("suspend", "ann@example.com", START) != derive_request_id(
        "suspend", "ann@example.com", START + timedelta(hours=1)
    )
    assert derive_request_id("suspend", "ann@example.com", None, inactive_since=CUTOFF) != plain
    # the same instant in another offset is the same intent
    assert derive_request_id("suspend", "a@b.co", START) == derive_request_id(
        "suspend", "a@b.co", START.astimezone(timezone(timedelta(hours=5)))
    )


@pytest.mark.parametrize(
    ("text", "allowed"), [("true", True), ("false", False), (" TRUE ", True), ("False", False)]
)
def test_allow_admin_offboarding_reads_true_and_false_only(text: str, allowed: bool) -> None:
    assert offboarding_settings(ALLOW_ADMIN_OFFBOARDING=text).allow_admin_offboarding is allowed


@pytest.mark.parametrize("env", [{}, {"ALLOW_ADMIN_OFFBOARDING": ""}])  # SAM renders unset as ""
def test_allow_admin_offboarding_is_off_unless_set(env: dict[str, str]) -> None:
    assert offboarding_settings(**env).allow_admin_offboarding is False


@pytest.mark.parametrize("text", ["yes", "1", "on", "flase"])
def test_allow_admin_offboarding_refuses_anything_else(text: str) -> None:
    with pytest.raises(ValueError, match="must be 'true' or 'false'"):
        offboarding_settings(ALLOW_ADMIN_OFFBOARDING=text)


def test_protected_emails_come_from_their_variable() -> None:
    assert offboarding_settings(PROTECTED_EMAILS="ceo@example.com cfo@example.com").protected_emails == (
        "ceo@example.com",
        "cfo@example.com",
    )


def test_an_unknown_phase_marker_gets_no_privileges() -> None:
    world = make_world()
    worker = world.worker(max_per_hour=1)
    assert worker.handle_message(body(requestId="s-1")).outcome == "done"
    assert worker.handle_message(body(email="bob@example.com", requestId="s-2")).outcome == "held"
    # a forged marker does not release a held request past the limit
    assert (
        worker.handle_message(body(email="bob@example.com", requestId="s-2"), phase="bogus").outcome == "held"
    )
    assert world.miro.writes == ["active=False:s-ann"]
    # and is answered as the plain request it is: a repeat of a finished one is a duplicate
    assert worker.handle_message(body(requestId="s-1"), phase="bogus").outcome == "duplicate"
