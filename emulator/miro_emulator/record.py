"""The emulator's own record of a run: every API request with its timing, its cost and its cursor link.

Benchmarks derive their floor from this record (bench/recorded.py): the window boundaries (each budget's
phase), when each request was received, charged and answered, what it cost in which budget, and which
request it had to follow (a cursor chain: the `cursor` a request sends is the `cursor` an earlier answer
of the same listing returned). `GET /_emulator/requests` serves it, `POST /_emulator/reset-stats` clears it
with the counters; `GET /_emulator/ratelimits` serves the budgets.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

# Bounded so a long-running demo emulator cannot grow without end; a benchmark resets before each run.
MAX_RECORDS = 2_000_000
# Query parameters that position a page within a listing: not part of the listing's identity.
POSITION_PARAMS = frozenset({"cursor", "startIndex", "offset"})


@dataclass(slots=True)
class RequestRecord:
    operation: str
    method: str
    listing: str  # path + the query parameters that are not a position: one listing's pages share it
    position: str | None  # the cursor (REST) or startIndex (SCIM) the request sent
    received_s: float  # epoch seconds, when the emulator began handling the request
    budget: str | None = None  # "rest" or "scim_<METHOD>"; None when nothing was charged
    cost: int = 0
    charged_s: float | None = None
    answered_s: float = 0.0
    status: int | None = None  # None: the connection was reset (a fault)
    next_position: str | None = None  # the cursor the answer returned (REST listings)

    def to_json(self) -> dict[str, Any]:
        return {
            "operation": self.operation,
            "method": self.method,
            "listing": self.listing,
            "position": self.position,
            "receivedS": round(self.received_s, 6),
            "budget": self.budget,
            "cost": self.cost,
            "chargedS": None if self.charged_s is None else round(self.charged_s, 6),
            "answeredS": round(self.answered_s, 6),
            "status": self.status,
            "nextPosition": self.next_position,
        }


def listing_of(path: str, query: dict[str, list[str]]) -> tuple[str, str | None]:
    """(the listing a request belongs to, its position in it)."""
    rest = sorted(
        (key, value) for key, values in query.items() if key not in POSITION_PARAMS for value in values
    )
    listing = path + ("?" + "&".join(f"{key}={value}" for key, value in rest) if rest else "")
    position = None
    for name in ("cursor", "startIndex", "offset"):
        values = query.get(name)
        if values and values[0]:
            position = values[0]
            break
    return listing, position


class RequestLog:
    def __init__(self, limit: int = MAX_RECORDS) -> None:
        self._lock = threading.Lock()
        self._records: list[RequestRecord] = []
        self._limit = limit
        self.dropped = 0

    def add(self, record: RequestRecord) -> None:
        with self._lock:
            if len(self._records) >= self._limit:
                self.dropped += 1
                return
            self._records.append(record)

    def clear(self) -> None:
        with self._lock:
            self._records = []
            self.dropped = 0

    def snapshot(self, since: int = 0) -> dict[str, Any]:
        with self._lock:
            records = self._records[since:]
            dropped = self.dropped
        return {"since": since, "dropped": dropped, "requests": [record.to_json() for record in records]}
