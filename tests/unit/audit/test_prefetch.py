"""The bounded prefetch of audit pages: order, errors in place, bounded look-ahead, clean stop."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from functools import partial

import pytest

from miro_sync.miro.errors import MiroBadRequest
from miro_sync.sync.audit_prefetch import lookahead, prefetched


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

    seen: list[int] = []
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


# --- lookahead: several windows paged at once, consumed in order ---------------------------------


def _windows(
    count: int, pages_each: int, opened: list[int]
) -> Iterator[tuple[int, Callable[[], Iterator[str]]]]:
    def open_window(number: int) -> Iterator[str]:
        opened.append(number)
        for page in range(pages_each):
            yield f"w{number}p{page}"

    for number in range(count):
        yield number, partial(open_window, number)


def test_windows_are_consumed_in_order_with_all_their_pages_and_no_thread_outlives_the_block() -> None:
    before = threading.active_count()
    opened: list[int] = []
    with lookahead(_windows(10, 3, opened), windows=4, depth=2) as windows:
        seen = [(key, list(pages)) for key, pages in windows]
    assert [key for key, _ in seen] == list(range(10))
    assert all(pages == [f"w{key}p{page}" for page in range(3)] for key, pages in seen)
    assert sorted(opened) == list(range(10))
    assert threading.active_count() == before


def test_later_windows_are_fetched_while_the_first_is_still_being_consumed() -> None:
    third_window_started = threading.Event()

    def first_window() -> Iterator[str]:
        yield "first"
        # Only finishes once the third window's producer has run: proves they run concurrently.
        assert third_window_started.wait(5), "later windows were not fetched ahead"
        yield "first-last"

    def third_window() -> Iterator[str]:
        third_window_started.set()
        yield "third"

    listings: list[tuple[str, Callable[[], Iterator[str]]]] = [
        ("a", first_window),
        ("b", lambda: iter(["second"])),
        ("c", third_window),
    ]
    with lookahead(iter(listings), windows=3, depth=1) as windows:
        seen = [page for _key, pages in windows for page in pages]
    assert seen == ["first", "first-last", "second", "third"]


def test_only_the_next_windows_are_opened_and_an_error_surfaces_in_its_own_window() -> None:
    opened: list[int] = []

    def failing() -> Iterator[str]:
        yield "w1p0"
        raise MiroBadRequest("window too wide", status=400)

    def listings() -> Iterator[tuple[int, Callable[[], Iterator[str]]]]:
        yield 0, lambda: iter(["w0p0"])
        yield 1, failing
        yield from _windows(100, 1, opened)

    seen: list[tuple[int, str]] = []
    with pytest.raises(MiroBadRequest), lookahead(listings(), windows=3, depth=1) as windows:
        seen.extend((key, page) for key, pages in windows for page in pages)
    assert seen == [(0, "w0p0"), (1, "w1p0")]
    # Windows 0 and 1 plus at most `windows` more were ever opened, never the whole plan.
    assert len(opened) <= 3


def test_lookahead_needs_positive_sizes() -> None:
    with pytest.raises(ValueError, match="windows"), lookahead(iter([]), windows=0):
        pass
