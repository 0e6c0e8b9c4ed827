"""Compact lookups for the members sync, so memory stays small however large the organization.

A dict of 100,000 email -> SCIM id strings costs ~20 MB in Python; the same as a sorted array of
64-bit key hashes plus the values packed in arrays/one string costs ~1.5 MB. Keys are hashed with
BLAKE2b (8 bytes): two of 500,000 keys collide with probability ~1e-8, and a collision can only
attach a team, board count or SCIM id to the wrong member until the next run, never lose data.

Hand-written rather than a library: the stdlib `array` + `bisect` do the work, and numpy would
add 30 MB to a Lambda layer whose whole point here is staying small.
"""

from __future__ import annotations

import hashlib
import json
import struct
import threading
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from typing import Any, TypeAlias

Buffer: TypeAlias = bytes | bytearray | memoryview

_TEAM_BITS = 24  # up to 16.7 million teams per organization


def key_hash(value: str) -> int:
    return int.from_bytes(hashlib.blake2b(value.encode(), digest_size=8).digest(), "big", signed=True)


def pack_sections(sections: Sequence[bytes], header: dict[str, Any]) -> bytes:
    return b"".join(pack_section_parts([[section] for section in sections], header))


def pack_section_parts(sections: Sequence[Sequence[Buffer]], header: dict[str, Any]) -> list[Buffer]:
    """pack_sections as a list of buffers, each section given as the buffers it is made of: the
    indexes hand out views of their arrays, so storing them copies nothing until compression."""
    lengths = [sum(memoryview(part).nbytes for part in parts) for parts in sections]
    head = json.dumps({**header, "sections": lengths}).encode()
    return [struct.pack(">I", len(head)) + head, *(part for parts in sections for part in parts)]


def unpack_sections(data: bytes) -> tuple[dict[str, Any], list[bytes]]:
    (head_length,) = struct.unpack_from(">I", data)
    header: dict[str, Any] = json.loads(data[4 : 4 + head_length])
    sections = []
    offset = 4 + head_length
    for length in header["sections"]:
        sections.append(data[offset : offset + length])
        offset += length
    return header, sections


def unpack_section_views(data: Buffer) -> tuple[dict[str, Any], list[memoryview]]:
    """unpack_sections without copying: each section is a view of `data` (the caller copies what it
    keeps, e.g. into an array, and can then drop `data` whole)."""
    view = memoryview(data)
    (head_length,) = struct.unpack_from(">I", view)
    header: dict[str, Any] = json.loads(bytes(view[4 : 4 + head_length]))
    sections = []
    offset = 4 + head_length
    for length in header["sections"]:
        if offset + length > len(view):
            raise ValueError("a section runs past the end of the data")
        sections.append(view[offset : offset + length])
        offset += length
    return header, sections


def _array(code: str, data: bytes) -> array[int]:
    values = array(code)
    values.frombytes(data)
    return values


class StaleIndexFormatError(ValueError):
    """A serialised index written by an older version of this module; the caller collects it anew."""


# Team roles as Miro names them; a role is kept as a small code in its member's pair. The codes of
# these are fixed, any other role Miro sends gets the next free code for the run (listed in the header).
TEAM_ROLES = ("member", "admin", "non_team", "team_guest")
UNKNOWN_TEAM_ROLE = "unknown"  # the last code, for an eighth distinct role and beyond (never seen)
_ROLE_BITS = 3  # 8 codes; the pair (hash << 27 | team << 3 | role) stays a 3-digit Python int
_ROLE_MASK = (1 << _ROLE_BITS) - 1
_TEAM_INDEX_FORMAT = 2  # 1 (no "format" in the header): team ids only, no names or roles


class TeamRoles:
    """Team role <-> small code (0..7), assigned on first sight. Thread-safe: the team member
    listings of several teams run at once."""

    def __init__(self, roles: Sequence[str] = TEAM_ROLES) -> None:
        self.roles = list(roles)
        self._codes = {role: code for code, role in enumerate(self.roles)}
        self._lock = threading.Lock()

    def code(self, role: str) -> int:
        code = self._codes.get(role)
        if code is not None:
            return code
        with self._lock:
            code = self._codes.get(role)
            if code is not None:
                return code
            if len(self.roles) < _ROLE_MASK:
                code = len(self.roles)
                self.roles.append(role)
                self._codes[role] = code
                return code
            if len(self.roles) == _ROLE_MASK:
                self.roles.append(UNKNOWN_TEAM_ROLE)
            return _ROLE_MASK  # an eighth distinct role: stored as "unknown"


class TeamIndex:
    """member id -> the member's teams (id, name, team role). Built from (member, team, role) pairs
    as team member pages arrive.

    Per membership: 8 bytes of member key hash + one word holding team number << 3 | role code.
    Team ids and names are kept once per team (the header), role names once per run."""

    def __init__(
        self,
        team_ids: list[str],
        keys: array[int],
        teams: array[int],
        *,
        team_names: list[str] | None = None,
        roles: Sequence[str] = TEAM_ROLES,
    ) -> None:
        self.team_ids = team_ids
        self.team_names = team_names if team_names is not None else [""] * len(team_ids)
        self.roles = list(roles)
        # Every code has a name, however few roles were seen (a code past them reads as unknown).
        self._role_names = [*self.roles, *[UNKNOWN_TEAM_ROLE] * (_ROLE_MASK + 1 - len(self.roles))]
        self._keys = keys
        self._teams = teams  # team number << _ROLE_BITS | role code

    @classmethod
    def build(
        cls,
        team_ids: list[str],
        pairs: list[int],
        *,
        team_names: list[str] | None = None,
        roles: TeamRoles | Sequence[str] = TEAM_ROLES,
    ) -> TeamIndex:
        """`pairs` holds TeamIndex.pair() values; sorted in place, then dropped by the caller.

        A member listed twice in one team (a page repeated by Miro) is kept once, with the role
        of the higher code (admin over member)."""
        pairs.sort()
        mask = (1 << (_TEAM_BITS + _ROLE_BITS)) - 1
        keys: array[int] = array("q")
        teams: array[int] = array("l")
        previous: int | None = None  # (key, team) of the last pair kept
        for pair in pairs:
            member_team = pair >> _ROLE_BITS
            if member_team == previous:
                teams[-1] = pair & mask  # sorted: the same membership with a higher role code
                continue
            previous = member_team
            keys.append(pair >> (_TEAM_BITS + _ROLE_BITS))
            teams.append(pair & mask)
        role_names = roles.roles if isinstance(roles, TeamRoles) else roles
        return cls(team_ids, keys, teams, team_names=team_names, roles=list(role_names))

    @staticmethod
    def pair(member_id: str, team_number: int, role_code: int = 0) -> int:
        return (((key_hash(member_id) << _TEAM_BITS) | team_number) << _ROLE_BITS) | role_code

    @staticmethod
    def pair_parts(member_id: str, team_number: int, role_code: int = 0) -> tuple[int, int]:
        """pair() as (member key hash, team number << 3 | role code): two machine words that fit
        an array("q") and an array("l") (16 bytes) instead of one ~40-byte Python int."""
        return key_hash(member_id), (team_number << _ROLE_BITS) | role_code

    @staticmethod
    def join_pairs(keys: Sequence[int], codes: Sequence[int]) -> list[int]:
        """The pair() values of pair_parts() results, for build()."""
        shift = _TEAM_BITS + _ROLE_BITS
        return [(key << shift) | code for key, code in zip(keys, codes, strict=True)]

    def _range(self, member_id: str) -> range:
        key = key_hash(member_id)
        start = bisect_left(self._keys, key)
        return range(start, bisect_right(self._keys, key, start))

    def teams_of(self, member_id: str) -> list[str]:
        return sorted({self.team_ids[self._teams[index] >> _ROLE_BITS] for index in self._range(member_id)})

    def memberships_of(self, member_id: str) -> list[tuple[str, str, str]]:
        """(team id, team name, team role) of each of the member's teams, sorted by team id."""
        teams, ids, names, roles = self._teams, self.team_ids, self.team_names, self._role_names
        found = []
        for index in self._range(member_id):  # one entry per team: `build` dropped repeats
            value = teams[index]
            number = value >> _ROLE_BITS
            found.append((ids[number], names[number], roles[value & _ROLE_MASK]))
        found.sort()
        return found

    @property
    def members(self) -> int:
        distinct = 0
        previous: int | None = None
        for key in self._keys:
            if key != previous:
                distinct += 1
                previous = key
        return distinct

    def to_parts(self) -> list[Buffer]:
        header = {
            "format": _TEAM_INDEX_FORMAT,
            "teamIds": self.team_ids,
            "teamNames": self.team_names,
            "roles": self.roles,
        }
        return pack_section_parts([[memoryview(self._keys)], [memoryview(self._teams)]], header)

    def to_bytes(self) -> bytes:
        return b"".join(self.to_parts())

    @classmethod
    def from_bytes(cls, data: bytes) -> TeamIndex:
        """Raises StaleIndexFormatError for an index of another format (e.g. one without team roles,
        stored by a run that began before an upgrade): the caller lists the teams again."""
        header, sections = unpack_sections(data)
        if header.get("format") != _TEAM_INDEX_FORMAT:
            found = header.get("format", 1)
            raise StaleIndexFormatError(f"team index format {found}, not {_TEAM_INDEX_FORMAT}")
        keys, teams = sections
        return cls(
            header["teamIds"],
            _array("q", keys),
            _array("l", teams),
            team_names=header["teamNames"],
            roles=header["roles"],
        )


class CountIndex:
    """member id -> number of boards owned. Built from one hash per board."""

    def __init__(self, keys: array[int], counts: array[int]) -> None:
        self._keys = keys
        self._counts = counts

    @classmethod
    def build(cls, owner_hashes: Iterable[int]) -> CountIndex:
        keys: array[int] = array("q")
        counts: array[int] = array("l")
        for key in sorted(owner_hashes):
            if keys and keys[-1] == key:
                counts[-1] += 1
            else:
                keys.append(key)
                counts.append(1)
        return cls(keys, counts)

    def count(self, member_id: str) -> int:
        key = key_hash(member_id)
        index = bisect_left(self._keys, key)
        return self._counts[index] if index < len(self._keys) and self._keys[index] == key else 0

    def __len__(self) -> int:
        return len(self._keys)

    def to_parts(self) -> list[Buffer]:
        return pack_section_parts([[memoryview(self._keys)], [memoryview(self._counts)]], {})

    def to_bytes(self) -> bytes:
        return b"".join(self.to_parts())

    @classmethod
    def from_bytes(cls, data: bytes) -> CountIndex:
        _header, (keys, counts) = unpack_sections(data)
        return cls(_array("q", keys), _array("l", counts))


class StringIndex:
    """key (e.g. lower-cased email) -> string value (e.g. SCIM id), values packed in one UTF-8 byte
    string (offsets are byte offsets, so values need not be ASCII: display names are not)."""

    def __init__(self, keys: array[int], ends: array[int], text: bytes) -> None:
        self._keys = keys
        self._ends = ends
        self._text = text

    @classmethod
    def build(cls, hashes: array[int], values: list[str]) -> StringIndex:
        order = sorted(range(len(hashes)), key=hashes.__getitem__)
        keys = array("q", (hashes[index] for index in order))
        ends: array[int] = array("L")
        text = bytearray()
        for index in order:
            text += values[index].encode()
            ends.append(len(text))
        return cls(keys, ends, bytes(text))

    @classmethod
    def build_packed(cls, hashes: array[int], packed: bytes | bytearray, ends: array[int]) -> StringIndex:
        """Like build, from values stored back to back in `packed` (UTF-8), value i ending at byte ends[i].

        Sorted through one list of Python ints (hash and position in one number), ~45 bytes per
        entry while building, instead of a permutation plus a key list."""
        bias = 1 << 63
        order = [((hashes[index] + bias) << 32) | index for index in range(len(hashes))]
        order.sort()
        keys: array[int] = array("q")
        sorted_ends: array[int] = array("L")
        text = bytearray()
        mask = (1 << 32) - 1
        for combined in order:
            index = combined & mask
            keys.append(hashes[index])
            text += packed[ends[index - 1] if index else 0 : ends[index]]
            sorted_ends.append(len(text))
        del order
        return cls(keys, sorted_ends, bytes(text))

    def get(self, key: str) -> str | None:
        hashed = key_hash(key)
        index = bisect_left(self._keys, hashed)
        if index >= len(self._keys) or self._keys[index] != hashed:
            return None
        start = self._ends[index - 1] if index else 0
        return self._text[start : self._ends[index]].decode()

    def __len__(self) -> int:
        return len(self._keys)

    def to_parts(self) -> list[Buffer]:
        return pack_section_parts([[memoryview(self._keys)], [memoryview(self._ends)], [self._text]], {})

    def to_bytes(self) -> bytes:
        return b"".join(self.to_parts())

    @classmethod
    def from_bytes(cls, data: bytes) -> StringIndex:
        _header, (keys, ends, text) = unpack_sections(data)
        return cls(_array("q", keys), _array("L", ends), bytes(text))


class HashSet:
    """A sorted set of 64-bit key hashes (~8 bytes per member instead of ~100 for a set of ids)."""

    def __init__(self, keys: Iterable[int]) -> None:
        self._keys = array("q", sorted(keys))

    def __contains__(self, value: object) -> bool:
        if not isinstance(value, str):
            return False
        hashed = key_hash(value)
        index = bisect_left(self._keys, hashed)
        return index < len(self._keys) and self._keys[index] == hashed

    def __len__(self) -> int:
        return len(self._keys)
