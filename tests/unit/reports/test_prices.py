from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from miro_sync.reports.errors import PriceConfigError
from miro_sync.reports.prices import DEFAULT_MONTHLY_PRICES, MIRO_LICENSES, default_prices, load_seat_prices


def test_defaults_price_every_miro_license_and_only_paid_ones_above_zero() -> None:
    prices = default_prices()

    assert set(MIRO_LICENSES) <= set(DEFAULT_MONTHLY_PRICES)
    assert set(prices.paid_licenses) == {"full", "full_trial", "occasional", "advanced", "standard"}
    assert not prices.is_paid("free")
    assert not prices.is_paid("free_restricted")
    assert prices.price("a_license_miro_adds_later") == 0


def test_json_file_overrides_only_the_licenses_it_names(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    path.write_text('{"full": 16, "occasional": 0, "whiteboard_plus": 4.5}')

    prices = load_seat_prices(path)

    assert prices.price("full") == Decimal("16.00")
    assert prices.price("full_trial") == DEFAULT_MONTHLY_PRICES["full_trial"]
    assert not prices.is_paid("occasional")  # price 0 takes a license out of the report
    assert prices.price("whiteboard_plus") == Decimal("4.50")
    assert "whiteboard_plus" in prices.all_licenses
    assert "prices.json" in prices.source


def test_toml_file_is_read_by_its_suffix(tmp_path: Path) -> None:
    path = tmp_path / "prices.toml"
    path.write_text('full = 25.0\n"full_trial" = 0\n')

    prices = load_seat_prices(path)

    assert prices.price("full") == Decimal("25.00")
    assert not prices.is_paid("full_trial")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("p.json", "{full: 16}", "not valid JSON"),
        ("p.toml", "full = ", "not valid TOML"),
        ("p.json", "[16]", "must hold a table"),
        ("p.json", "{}", "is empty"),
        ("p.json", '{"full": -1}', "between 0 and"),
        ("p.json", '{"full": true}', "must be a number"),
        ("p.json", '{"full": "twenty"}', "must be a number"),
        ("p.json", '{"full": {"monthly": 16}}', "must be a number"),
        ("p.json", '{"Full Seat": 16}', "is not a license name"),
        ("p.json", '{"full": "NaN"}', "between 0 and"),
    ],
)
def test_bad_price_files_are_refused_naming_the_file_and_the_problem(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(content)

    with pytest.raises(PriceConfigError, match=message) as refused:
        load_seat_prices(path)

    assert str(path) in str(refused.value)


def test_missing_and_unreadable_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(PriceConfigError, match="does not exist"):
        load_seat_prices(tmp_path / "nope.json")
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(PriceConfigError, match="cannot read"):
        load_seat_prices(binary)
