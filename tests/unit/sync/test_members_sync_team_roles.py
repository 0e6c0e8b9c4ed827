"""The members sync stores each member's teams with the team's name and the member's team role."""

from __future__ import annotations

from array import array
from datetime import timedelta

from miro_sync.store.members import MemberRecord, TeamMembership
from miro_sync.sync.member_index import pack_section_parts, unpack_sections
from tests.unit.sync.fakes import FakeDeadline, aux_stored
from tests.unit.sync.test_members_sync import T0, World, world


def roles_world(count: int = 45) -> World:
    w = world(count)  # t1: members 00000-00004, t2: members 00003-00007
    w.miro.team_names = {"t1": "Design", "t2": "Sales"}
    w.miro.team_roles = {("t1", "00003"): "admin", ("t2", "00004"): "non_team", ("t2", "00007"): "admin"}
    return w


def memberships(w: World, member_id: str) -> list[dict[str, str]] | None:
    stored = w.members.items[member_id].get("teamMemberships")
    return None if stored is None else [TeamMembership.from_item(value).model_dump() for value in stored]


def test_each_member_gets_their_teams_with_name_and_role() -> None:
    w = roles_world()

    assert w.run().outcome == "complete"

    assert memberships(w, "00000") == [{"id": "t1", "name": "Design", "role": "member"}]
    assert memberships(w, "00003") == [
        {"id": "t1", "name": "Design", "role": "admin"},
        {"id": "t2", "name": "Sales", "role": "member"},
    ]
    assert memberships(w, "00004") == [
        {"id": "t1", "name": "Design", "role": "member"},
        {"id": "t2", "name": "Sales", "role": "non_team"},
    ]
    assert memberships(w, "00020") is None  # in no team: no attribute
    assert w.members.items["00003"]["teams"] == ["t1", "t2"]  # the ids, as before
    assert MemberRecord.from_item(w.members.items["00003"]).admin_team_ids == ("t1",)
    assert MemberRecord.from_item(w.members.items["00007"]).admin_team_ids == ("t2",)


def test_a_role_change_or_a_team_rename_is_written_on_the_next_sync_and_nothing_else() -> None:
    w = roles_world(200)
    w.run()
    w.members.items_written = 0
    w.miro.team_roles[("t1", "00001")] = "admin"  # promoted
    w.miro.team_names["t2"] = "Sales EMEA"  # renamed: members 00003-00007
    w.clock = T0 + timedelta(days=1)

    result = w.run()

    assert result.outcome == "complete"
    assert result.written == 6  # 00001, and 00003-00007
    assert result.unchanged == 194
    assert memberships(w, "00001") == [{"id": "t1", "name": "Design", "role": "admin"}]
    assert memberships(w, "00007") == [{"id": "t2", "name": "Sales EMEA", "role": "admin"}]
    assert w.members.items["00001"]["lastChangedAt"] == "2026-03-02T12:00:00.000Z"
    assert w.members.items["00000"]["lastChangedAt"] == "2026-03-01T12:00:00.000Z"

    w.members.items_written = 0
    w.clock = T0 + timedelta(days=2)
    again = w.run()
    assert (again.written, again.unchanged, w.members.items_written) == (0, 200, 0)


def test_a_member_who_leaves_every_team_loses_the_attribute() -> None:
    w = roles_world()
    w.run()
    w.miro.teams["t1"].remove("00000")
    w.clock = T0 + timedelta(days=1)

    w.run()

    assert memberships(w, "00000") is None
    assert "teams" not in w.members.items["00000"]


def _as_stored_before_team_roles(aux: bytes) -> bytes:
    """The run's aux as the code before team roles stored it: the team index without "format",
    team names or roles, its team word the bare team number."""
    header, sections = unpack_sections(aux)
    team_header, (keys, teams) = unpack_sections(sections[0])
    words = array("l")
    words.frombytes(teams)
    numbers = array("l", (word >> 3 for word in words))  # team number << 3 | role code, before: number
    old_team_index = b"".join(
        pack_section_parts([[keys], [numbers.tobytes()]], {"teamIds": team_header["teamIds"]})
    )
    outer = {key: value for key, value in header.items() if key != "sections"}
    return b"".join(pack_section_parts([[old_team_index], *([section] for section in sections[1:])], outer))


def test_a_run_resumed_on_an_aux_stored_before_team_roles_collects_it_again() -> None:
    w = roles_world()
    # Hands over right after the aux phase.
    first = w.run(FakeDeadline(checks_before_low=0, count_when=aux_stored(w.state)))
    assert first.outcome == "continue"
    run_id, kind = first.run_id or "", "aux"
    assert (run_id, kind) in w.state.byte_blobs
    w.state.byte_blobs[(run_id, kind)] = _as_stored_before_team_roles(w.state.byte_blobs[(run_id, kind)])
    requests = w.miro.requests

    second = w.run()

    assert second.outcome == "complete"
    # The organization, the teams page, both teams' members and the boards page were fetched again;
    # the member pages fetched ahead by the first invocation were kept.
    assert w.miro.requests == requests + 5
    assert any(message == "members sync collects the aux again" for message, _fields in w.logged)
    assert memberships(w, "00003") == [
        {"id": "t1", "name": "Design", "role": "admin"},
        {"id": "t2", "name": "Sales", "role": "member"},
    ]
    clean = roles_world()
    clean.run()
    assert w.members.table() == clean.members.table()
