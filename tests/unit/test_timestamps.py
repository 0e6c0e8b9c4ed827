"""The one time module: the exact strings stored today (they are DynamoDB keys), naive datetimes refused,
offsets moved to UTC, milliseconds truncated, and text read back as aware UTC."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest

from miro_sync.miro.client import format_miro_time
from miro_sync.reports.render import iso
from miro_sync.store.actions import utc_now_iso
from miro_sync.store.audit import canonical_time
from miro_sync.store.board_events import iso_millis as board_event_time
from miro_sync.store.dynamo import iso_utc, parse_iso
from miro_sync.timestamps import iso_as_given, iso_millis, iso_seconds, parse_timestamp

PLUS_TWO = timezone(timedelta(hours=2))
MINUS_FIVE_THIRTY = timezone(-timedelta(hours=5, minutes=30))

# Every name the stored millisecond form has gone by; callers in sync/, offboarding/, webhooks/, miro/
# and the CLI still import the old ones.
MILLISECOND_FORMATTERS: dict[str, Callable[[datetime], str]] = {
    "timestamps.iso_millis": iso_millis,
    "store.dynamo.iso_utc": iso_utc,
    "store.actions.utc_now_iso": utc_now_iso,
    "store.audit.canonical_time": canonical_time,
    "store.board_events.iso_millis": board_event_time,
    "miro.client.format_miro_time": format_miro_time,
}
FORMATTERS: dict[str, Callable[[datetime], str | None]] = {
    **MILLISECOND_FORMATTERS,
    "timestamps.iso_seconds": iso_seconds,
    "timestamps.iso_as_given": iso_as_given,
    "reports.render.iso": iso,
}


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2024, 5, 1, 10, 0, tzinfo=UTC), "2024-05-01T10:00:00.000Z"),
        (datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC), "2024-05-01T10:00:00.123Z"),
        # truncated, never rounded: .999999 stays in its second, 23:59:59.9995 stays on its day
        (datetime(2024, 5, 1, 10, 0, 0, 999999, tzinfo=UTC), "2024-05-01T10:00:00.999Z"),
        (datetime(2024, 12, 31, 23, 59, 59, 999500, tzinfo=UTC), "2024-12-31T23:59:59.999Z"),
        (datetime(2024, 5, 1, 10, 0, 0, 999, tzinfo=UTC), "2024-05-01T10:00:00.000Z"),
        # other offsets are moved to UTC, across the day boundary when they must be
        (datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=PLUS_TWO), "2024-05-01T10:00:00.123Z"),
        (datetime(2024, 5, 1, 1, 30, tzinfo=PLUS_TWO), "2024-04-30T23:30:00.000Z"),
        (datetime(2024, 12, 31, 20, 0, tzinfo=MINUS_FIVE_THIRTY), "2025-01-01T01:30:00.000Z"),
    ],
)
@pytest.mark.parametrize("name", MILLISECOND_FORMATTERS)
def test_every_millisecond_formatter_writes_todays_key_form(
    name: str, moment: datetime, expected: str
) -> None:
    assert MILLISECOND_FORMATTERS[name](moment) == expected


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2024, 5, 1, 10, 0, 0, 999999, tzinfo=UTC), "2024-05-01T10:00:00Z"),
        (datetime(2024, 5, 1, 1, 30, 15, tzinfo=PLUS_TWO), "2024-04-30T23:30:15Z"),
    ],
)
def test_the_seconds_form_is_utc_with_the_fraction_truncated(moment: datetime, expected: str) -> None:
    assert iso_seconds(moment) == expected


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2024, 5, 1, 10, 0, tzinfo=UTC), "2024-05-01T10:00:00Z"),
        (datetime(2024, 5, 1, 10, 0, 0, 123000, tzinfo=UTC), "2024-05-01T10:00:00.123000Z"),
        (datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC), "2024-05-01T10:00:00.123456Z"),
        # the reports show an instant in the offset it was computed in
        (datetime(2024, 5, 1, 12, 0, tzinfo=PLUS_TWO), "2024-05-01T12:00:00+02:00"),
    ],
)
def test_reports_show_an_instant_as_given(moment: datetime, expected: str) -> None:
    assert iso_as_given(moment) == expected
    assert iso(moment) == expected


def test_reports_show_no_instant_as_none() -> None:
    assert iso(None) is None


@pytest.mark.parametrize("name", FORMATTERS)
def test_naive_datetimes_are_refused_by_every_formatter(name: str) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        FORMATTERS[name](datetime(2024, 5, 1, 10, 0))


@pytest.mark.parametrize(
    "text",
    [
        "2024-05-01T10:00:00.123Z",
        "2024-05-01T10:00:00.123+00:00",
        "2024-05-01T12:00:00.123+02:00",
        "2024-05-01T04:30:00.123-05:30",
        "2024-05-01T10:00:00.123",  # no offset: stored and Miro text is UTC by contract
    ],
)
def test_parsing_gives_an_aware_utc_datetime_whatever_the_offset(text: str) -> None:
    moment = parse_timestamp(text)
    assert moment.tzinfo is UTC
    assert moment == datetime(2024, 5, 1, 10, 0, 0, 123000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("", "Invalid isoformat"),
        ("yesterday", "Invalid isoformat"),
        ("2024-13-01T00:00:00Z", "month must be in 1..12"),
        ("0000-00-00T00:00:00Z", "year 0 is out of range"),  # the stored "never": callers check it first
    ],
)
def test_text_that_is_no_timestamp_is_refused(text: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        parse_timestamp(text)


@pytest.mark.parametrize(
    "stored", ["2024-05-01T10:00:00.000Z", "2024-05-01T10:00:00.123Z", "1999-12-31T23:59:59.999Z"]
)
def test_a_stored_key_survives_parse_and_format_unchanged(stored: str) -> None:
    assert iso_millis(parse_timestamp(stored)) == stored


def test_formatting_then_parsing_keeps_the_instant_to_the_millisecond() -> None:
    moment = datetime(2024, 5, 1, 12, 0, 0, 123999, tzinfo=PLUS_TWO)
    assert parse_timestamp(iso_millis(moment)) == datetime(2024, 5, 1, 10, 0, 0, 123000, tzinfo=UTC)


def test_key_order_is_time_order_across_offsets() -> None:
    base = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    moments = [base + timedelta(milliseconds=step * 37) for step in range(60)]
    spelled = [
        iso_millis(moment.astimezone(PLUS_TWO if index % 2 else MINUS_FIVE_THIRTY))
        for index, moment in enumerate(moments)
    ]
    assert spelled == sorted(spelled)


@pytest.mark.parametrize("value", [None, "", "0000-00-00T00:00:00Z"])
def test_the_stored_never_placeholder_and_absent_values_read_as_none(value: str | None) -> None:
    assert parse_iso(value) is None


def test_a_stored_value_reads_as_aware_utc() -> None:
    assert parse_iso("2024-05-01T10:00:00.123Z") == datetime(2024, 5, 1, 10, 0, 0, 123000, tzinfo=UTC)
