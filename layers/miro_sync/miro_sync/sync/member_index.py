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


def _array(code: str, data: bytes) -> array[int]:
    values = array(code)
    values.frombytes(data)
    return values


class TeamIndex:
    """member id -> team ids. Built from (member, team) pairs as team member pages arrive."""

    def __init__(self, team_ids: list[str], keys: array[int], teams: array[int]) -> None:
        self.team_ids = team_ids
        self._keys = keys
        self._teams = teams

    @classmethod
    def build(cls, team_ids: list[str], pairs: list[int]) -> TeamIndex:
        """`pairs` holds TeamIndexBuilder.pair() values; sorted in place, then dropped by the caller."""
        pairs.sort()
        mask = (1 << _TEAM_BITS) - 1
        keys = array("q", (pair >> _TEAM_BITS for pair in pairs))
        teams = array("l", (pair & mask for pair in pairs))
        return cls(team_ids, keys, teams)

    @staticmethod
    def pair(member_id: str, team_number: int) -> int:
        return (key_hash(member_id) << _TEAM_BITS) | team_number

    def teams_of(self, member_id: str) -> list[str]:
        key = key_hash(member_id)
        start = bisect_left(self._keys, key)
        end = bisect_right(self._keys, key, start)
        return sorted({self.team_ids[self._teams[index]] for index in range(start, end)})

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
        return pack_section_parts(
            [[memoryview(self._keys)], [memoryview(self._teams)]], {"teamIds": self.team_ids}
        )

    def to_bytes(self) -> bytes:
        return b"".join(self.to_parts())

    @classmethod
    def from_bytes(cls, data: bytes) -> TeamIndex:
        header, (keys, teams) = unpack_sections(data)
        return cls(header["teamIds"], _array("q", keys), _array("l", teams))


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
    """key (e.g. lower-cased email) -> string value (e.g. SCIM id), values packed in one string."""

    def __init__(self, keys: array[int], ends: array[int], text: str) -> None:
        self._keys = keys
        self._ends = ends
        self._text = text

    @classmethod
    def build(cls, hashes: array[int], values: list[str]) -> StringIndex:
        order = sorted(range(len(hashes)), key=hashes.__getitem__)
        keys = array("q", (hashes[index] for index in order))
        ends: array[int] = array("L")
        parts: list[str] = []
        end = 0
        for index in order:
            end += len(values[index])
            ends.append(end)
            parts.append(values[index])
        return cls(keys, ends, "".join(parts))

    @classmethod
    def build_packed(cls, hashes: array[int], packed: bytes | bytearray, ends: array[int]) -> StringIndex:
        """Like build, from values stored back to back in `packed` (ASCII), value i ending at ends[i].

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
        return cls(keys, sorted_ends, text.decode())

    def get(self, key: str) -> str | None:
        hashed = key_hash(key)
        index = bisect_left(self._keys, hashed)
        if index >= len(self._keys) or self._keys[index] != hashed:
            return None
        start = self._ends[index - 1] if index else 0
        return self._text[start : self._ends[index]]

    def __len__(self) -> int:
        return len(self._keys)

    def to_parts(self) -> list[Buffer]:
        return pack_section_parts(
            [[memoryview(self._keys)], [memoryview(self._ends)], [self._text.encode()]], {}
        )

    def to_bytes(self) -> bytes:
        return b"".join(self.to_parts())

    @classmethod
    def from_bytes(cls, data: bytes) -> StringIndex:
        _header, (keys, ends, text) = unpack_sections(data)
        return cls(_array("q", keys), _array("L", ends), text.decode())


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
