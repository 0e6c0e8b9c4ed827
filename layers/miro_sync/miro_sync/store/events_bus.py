"""Forwarding of newly stored audit events to an EventBridge bus (PutEvents, 10 entries per call).

Delivery is at least once: the sync publishes a page's new events before it writes them, so a crash
in between publishes them again on the re-run. Subscribers deduplicate on `detail.id` (Miro's event
id), which EventBridge rules and SIEM pipelines can do.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

SOURCE = "miro-sync.audit"
DETAIL_TYPE = "Miro Audit Event"
MAX_ENTRIES_PER_CALL = 10
_MAX_ROUNDS = 5


class ForwardingError(RuntimeError):
    """EventBridge kept failing some entries after every retry round."""


class EventBridgeForwarder:
    def __init__(
        self,
        events_client: Any,
        bus_name: str,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = events_client
        self.bus_name = bus_name
        self._sleep = sleep
        self.published = 0
        self.requests = 0

    def publish(self, events: Sequence[Mapping[str, Any]]) -> None:
        entries = [
            {
                "Source": SOURCE,
                "DetailType": DETAIL_TYPE,
                "Detail": json.dumps(event, separators=(",", ":"), default=str),
                "EventBusName": self.bus_name,
            }
            for event in events
        ]
        for start in range(0, len(entries), MAX_ENTRIES_PER_CALL):
            self._put(entries[start : start + MAX_ENTRIES_PER_CALL])

    def _put(self, entries: list[dict[str, Any]]) -> None:
        pending = entries
        for round_number in range(_MAX_ROUNDS):
            response = self._client.put_events(Entries=pending)
            self.requests += 1
            results = response.get("Entries", [])
            failed = [
                entry for entry, result in zip(pending, results, strict=False) if result.get("ErrorCode")
            ]
            self.published += len(pending) - len(failed)
            if not failed:
                return
            pending = failed
            # Failed entries are throttling or internal errors; back off before the next round.
            self._sleep(min(0.1 * (2**round_number), 2.0))
        raise ForwardingError(f"{len(pending)} audit events could not be put on bus {self.bus_name}")
