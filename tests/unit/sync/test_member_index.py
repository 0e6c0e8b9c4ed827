"""The compact lookups the members sync keeps in memory instead of dicts of strings."""

from __future__ import annotations

from array import array

from miro_sync.sync.member_index import (
    CountIndex,
    HashSet,
    StringIndex,
    TeamIndex,
    key_hash,
    pack_section_parts,
    pack_sections,
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
