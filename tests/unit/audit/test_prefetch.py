"""The bounded prefetch of audit pages: order, errors in place, bounded look-ahead, clean stop."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from miro_sync.miro.errors import MiroBadRequest
from miro_sync.sync.audit_prefetch import prefetched


def test_items_arrive_in_order_and_the_producer_is_gone_afterwards() -> None:
    before = threading.active_count()
    with prefetched(iter(range(50)), depth=3) as items:
        assert list(items) == list(range(50))
    assert threading.active_count() == before


def test_an_error_of_the_listing_is_raised_after_the_items_before_it() -> None:
    def listing() -> Iterator[int]:
        yield 1
        yield 2
        raise MiroBadRequest("window too wide", status=400)

    seen = []
    with pytest.raises(MiroBadRequest), prefetched(listing(), depth=2) as items:
        seen.extend(items)
    assert seen == [1, 2]


def test_look_ahead_is_bounded_and_leaving_early_stops_and_closes_the_listing() -> None:
    produced: list[int] = []
    closed = threading.Event()

    def listing() -> Iterator[int]:
        try:
            for number in range(1000):
                produced.append(number)
                yield number
        finally:
            closed.set()

    with prefetched(listing(), depth=2) as items:
        for item in items:
            assert item == 0
            break
    assert closed.is_set()
    # item 0 taken, at most `depth` queued, one more held by the blocked producer.
    assert len(produced) <= 4


def test_depth_must_be_positive() -> None:
    with pytest.raises(ValueError, match="depth"), prefetched(iter([]), depth=0):
        pass
