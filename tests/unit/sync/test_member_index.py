"""The compact lookups the members sync keeps in memory instead of dicts of strings."""

from __future__ import annotations

import sys
from array import array

import pytest

from miro_sync.sync.member_index import (
    UNKNOWN_TEAM_ROLE,
    CountIndex,
    HashSet,
    StaleIndexFormatError,
    StringIndex,
    TeamIndex,
    TeamRoles,
    key_hash,
    pack_section_parts,
    pack_sections,
    unpack_section_views,
    unpack_sections,
)


def test_team_index_lists_each_members_teams_once_sorted_and_survives_bytes() -> None:
    team_ids = ["t-b", "t-a", "t-c"]
    pairs = [
        TeamIndex.pair("m1", 0),
        TeamIndex.pair("m2", 1),
        TeamIndex.pair("m1", 1),
        TeamIndex.pair("m1", 0),
    ]
    index = TeamIndex.from_bytes(TeamIndex.build(team_ids, pairs).to_bytes())
    assert index.teams_of("m1") == ["t-a", "t-b"]
    assert index.teams_of("m2") == ["t-a"]
    assert index.teams_of("nobody") == []
    assert index.members == 2


def test_count_index_counts_boards_per_owner() -> None:
    owners = array("q", [key_hash("a"), key_hash("b"), key_hash("a"), key_hash("a")])
    index = CountIndex.from_bytes(CountIndex.build(owners).to_bytes())
    assert (index.count("a"), index.count("b"), index.count("c")) == (3, 1, 0)
    assert len(index) == 2


def test_string_index_maps_keys_to_values_of_any_length() -> None:
    emails = [f"user{i}@example.com" for i in range(500)]
    values = [f"scim-{i}" * (1 + i % 3) for i in range(500)]
    index = StringIndex.build(array("q", map(key_hash, emails)), values)
    restored = StringIndex.from_bytes(index.to_bytes())
    assert [restored.get(email) for email in emails] == values
    assert restored.get("stranger@example.com") is None
    assert len(restored) == 500


def test_hash_set_membership() -> None:
    members = HashSet(key_hash(f"m{i}") for i in range(1000))
    assert all(f"m{i}" in members for i in range(1000))
    assert "m1000" not in members
    assert 5 not in members
    assert len(members) == 1000


def test_string_index_built_from_packed_values_matches_the_plain_build() -> None:
    emails = [f"user{i}@example.com" for i in range(300)]
    values = [f"{i * 7919}" * (1 + i % 2) for i in range(300)]
    packed = bytearray()
    ends: array[int] = array("L")
    for value in values:
        packed += value.encode()
        ends.append(len(packed))
    index = StringIndex.build_packed(array("q", map(key_hash, emails)), bytes(packed), ends)
    assert [index.get(email) for email in emails] == values
    assert index.to_bytes() == StringIndex.build(array("q", map(key_hash, emails)), values).to_bytes()


def test_parts_are_the_packed_bytes_without_a_joined_copy() -> None:
    """to_parts() hands out views of the arrays; joined they are the layout pack_sections writes."""
    index = StringIndex.build(array("q", [key_hash("a"), key_hash("b")]), ["abc", "de"])
    parts = index.to_parts()
    assert any(isinstance(part, memoryview) for part in parts)
    _header, (keys, ends, text) = unpack_sections(b"".join(parts))
    assert b"".join(parts) == pack_sections([keys, ends, text], {})
    restored = StringIndex.from_bytes(b"".join(parts))
    assert (restored.get("a"), restored.get("b")) == ("abc", "de")

    outer = pack_section_parts([index.to_parts(), [b"xy"]], {"n": 1})
    header, (first, second) = unpack_sections(b"".join(outer))
    assert header["n"] == 1
    assert first == index.to_bytes()
    assert second == b"xy"


def test_team_index_keeps_each_members_role_and_the_team_names_through_bytes() -> None:
    team_ids = ["t-b", "t-a", "t-c"]
    team_names = ["Beta", "Alpha", "Gamma"]
    roles = TeamRoles()
    pairs = [
        TeamIndex.pair("m1", 0, roles.code("admin")),
        TeamIndex.pair("m1", 1, roles.code("member")),
        TeamIndex.pair("m2", 1, roles.code("non_team")),
        TeamIndex.pair("m2", 2, roles.code("team_guest")),
        TeamIndex.pair("m3", 2, roles.code("observer")),  # a role this code does not know yet
    ]
    built = TeamIndex.build(team_ids, pairs, team_names=team_names, roles=roles)
    restored = TeamIndex.from_bytes(b"".join(built.to_parts()))

    for index in (built, restored):
        assert index.memberships_of("m1") == [("t-a", "Alpha", "member"), ("t-b", "Beta", "admin")]
        assert index.memberships_of("m2") == [("t-a", "Alpha", "non_team"), ("t-c", "Gamma", "team_guest")]
        assert index.memberships_of("m3") == [("t-c", "Gamma", "observer")]
        assert index.memberships_of("nobody") == []
        assert index.teams_of("m1") == ["t-a", "t-b"]
        assert index.members == 3
    assert restored.team_names == team_names


def test_team_index_stores_one_word_per_membership_and_each_team_name_once() -> None:
    """The role rides in the team word (team << 3 | role): no per-member strings, no extra array."""
    members = [f"m{i}" for i in range(2000)]
    roles = TeamRoles()
    pairs = [
        TeamIndex.pair(m, i % 3, roles.code("admin" if i % 50 == 0 else "member"))
        for i, m in enumerate(members)
    ]
    index = TeamIndex.build(["t0", "t1", "t2"], pairs, team_names=["Zero", "One", "Two"], roles=roles)
    parts = index.to_parts()
    header, (keys, teams) = unpack_sections(b"".join(parts))
    assert len(keys) == 8 * 2000
    assert len(teams) == array("l").itemsize * 2000
    assert header["teamNames"] == ["Zero", "One", "Two"]
    assert header["roles"][:4] == ["member", "admin", "non_team", "team_guest"]
    assert index.memberships_of("m50") == [("t2", "Two", "admin")]
    assert index.memberships_of("m51") == [("t0", "Zero", "member")]
    # The pair stays a 3-digit Python int (36 bytes), as it was without roles.
    assert sys.getsizeof(TeamIndex.pair("m1", (1 << 24) - 1, 7)) == sys.getsizeof(1 << 89)


def test_a_member_listed_twice_in_a_team_is_kept_once() -> None:
    roles = TeamRoles()
    pairs = [
        TeamIndex.pair("m1", 0, roles.code("member")),
        TeamIndex.pair("m1", 0, roles.code("member")),
        TeamIndex.pair("m1", 0, roles.code("admin")),
    ]
    index = TeamIndex.build(["t"], pairs, team_names=["T"], roles=roles)
    assert index.memberships_of("m1") == [("t", "T", "admin")]
    assert memoryview(index.to_parts()[-1]).nbytes == array("l").itemsize


def test_team_roles_beyond_eight_are_stored_as_unknown() -> None:
    roles = TeamRoles()
    codes = [roles.code(f"role-{i}") for i in range(6)]
    assert codes == [4, 5, 6, 7, 7, 7]
    assert roles.roles[7] == UNKNOWN_TEAM_ROLE
    assert roles.code("admin") == 1
    index = TeamIndex.build(["t"], [TeamIndex.pair("m", 0, codes[-1])], team_names=["T"], roles=roles)
    assert TeamIndex.from_bytes(index.to_bytes()).memberships_of("m") == [("t", "T", UNKNOWN_TEAM_ROLE)]


def test_a_team_index_of_the_format_before_roles_is_refused_as_stale() -> None:
    """Stored by a run that began before the upgrade: team ids only, no "format" in the header."""
    keys = array("q", sorted([key_hash("m1")]))
    teams = array("l", [0])
    old = pack_section_parts([[memoryview(keys)], [memoryview(teams)]], {"teamIds": ["t1"]})
    with pytest.raises(StaleIndexFormatError):
        TeamIndex.from_bytes(b"".join(old))


def test_pairs_kept_as_two_words_join_back_to_the_same_pairs() -> None:
    member_ids = [f"member-{n}" for n in range(200)]  # key hashes of both signs
    assert {key_hash(member_id) < 0 for member_id in member_ids} == {True, False}
    expected = [TeamIndex.pair(member_id, n % 5000, n % 8) for n, member_id in enumerate(member_ids)]
    keys, codes = array("q"), array("l")
    for n, member_id in enumerate(member_ids):
        key, code = TeamIndex.pair_parts(member_id, n % 5000, n % 8)
        keys.append(key)
        codes.append(code)
    assert TeamIndex.join_pairs(keys, codes) == expected


def test_section_views_read_what_pack_section_parts_wrote_and_refuse_a_cut_one() -> None:
    packed = b"".join(pack_section_parts([[b"abc"], [b""], [b"defg"]], {"k": 1}))
    header, views = unpack_section_views(packed)
    assert header["k"] == 1
    assert [bytes(view) for view in views] == [b"abc", b"", b"defg"]
    with pytest.raises(ValueError, match="past the end"):
        unpack_section_views(packed[:-1])
