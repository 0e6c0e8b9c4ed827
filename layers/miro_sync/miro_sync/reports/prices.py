"""Monthly seat prices per Miro license, and which licenses count as paid seats.

The defaults are list-price ASSUMPTIONS in USD per seat per month, taken from miro.com/pricing
(monthly billing, 2024): Business $20, Starter $10. Enterprise prices are negotiated and not
published, so a `full` seat defaults to the Business list price; pass `--prices FILE` with your
contract's numbers. Miro's license names come from the OrganizationMember schema of its OpenAPI
spec (advanced, standard, basic, full, occasional, free, free_restricted, full_trial, unknown).

A license is a paid seat when its price is above zero, so a price file can also add or remove
licenses from the inactive-seat report (e.g. `occasional = 0` under Flexible Licensing, where an
occasional member costs nothing in a month without activity).
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from types import MappingProxyType
from typing import Any

from miro_sync.reports.errors import PriceConfigError

# Every license value Miro's spec lists; the reports query each of them.
MIRO_LICENSES: tuple[str, ...] = (
    "advanced",
    "standard",
    "basic",
    "full",
    "occasional",
    "free",
    "free_restricted",
    "full_trial",
    "unknown",
)

DEFAULT_MONTHLY_PRICES: Mapping[str, Decimal] = MappingProxyType(
    {
        "full": Decimal("20.00"),  # Business list price, monthly billing
        "full_trial": Decimal("20.00"),  # becomes a full seat when the trial converts
        "advanced": Decimal("20.00"),  # assumed equal to a full seat
        "standard": Decimal("10.00"),  # assumed equal to a Starter seat
        "occasional": Decimal("10.00"),  # assumption: half a full seat
        "basic": Decimal("0"),
        "free": Decimal("0"),
        "free_restricted": Decimal("0"),
        "unknown": Decimal("0"),
    }
)

_LICENSE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_MAX_PRICE = Decimal("100000")


@dataclass(frozen=True)
class SeatPrices:
    """Monthly price per license (unlisted licenses cost nothing) and where the numbers came from."""

    monthly: Mapping[str, Decimal] = field(default_factory=lambda: dict(DEFAULT_MONTHLY_PRICES))
    source: str = "Miro list prices (defaults)"
    currency: str = "USD"

    def price(self, license: str) -> Decimal:
        return self.monthly.get(license, Decimal("0"))

    def is_paid(self, license: str) -> bool:
        return self.price(license) > 0

    @property
    def paid_licenses(self) -> tuple[str, ...]:
        return tuple(sorted(name for name, price in self.monthly.items() if price > 0))

    @property
    def all_licenses(self) -> tuple[str, ...]:
        """Miro's licenses plus any the price file added, in Miro's order then alphabetical."""
        extra = sorted(set(self.monthly) - set(MIRO_LICENSES))
        return (*MIRO_LICENSES, *extra)


def default_prices() -> SeatPrices:
    return SeatPrices()


def load_seat_prices(path: Path) -> SeatPrices:
    """Defaults overridden by `path`, a JSON or TOML table `{license: monthly price}`.

    Raises PriceConfigError with the file name and the offending entry for anything else.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PriceConfigError(f"price file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as error:
        raise PriceConfigError(f"cannot read price file {path}: {error}") from None
    raw = _parse(path, text)
    overrides = {license: _price(path, license, value) for license, value in raw.items()}
    merged = {**DEFAULT_MONTHLY_PRICES, **overrides}
    return SeatPrices(monthly=merged, source=f"{path.name} (over list-price defaults)")


def _parse(path: Path, text: str) -> dict[str, Any]:
    as_toml = path.suffix.lower() == ".toml"
    try:
        data: Any = tomllib.loads(text) if as_toml else json.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise PriceConfigError(f"price file {path} is not valid TOML: {error}") from None
    except json.JSONDecodeError as error:
        raise PriceConfigError(
            f"price file {path} is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
            " (use a .toml suffix for TOML)"
        ) from None
    if not isinstance(data, dict):
        raise PriceConfigError(
            f"price file {path} must hold a table of license -> monthly price, e.g. "
            '{"full": 16, "occasional": 8}'
        )
    if not data:
        raise PriceConfigError(f"price file {path} is empty: give at least one license price")
    return data


def _price(path: Path, license: Any, value: Any) -> Decimal:
    if not isinstance(license, str) or not _LICENSE_NAME.match(license):
        raise PriceConfigError(
            f"price file {path}: {license!r} is not a license name (lower case, e.g. full, occasional)"
        )
    # bool is an int subclass: `full = true` must not become a price of 1.
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise PriceConfigError(f"price file {path}: price of {license!r} must be a number, not {value!r}")
    try:
        price = Decimal(str(value))
    except InvalidOperation:
        raise PriceConfigError(
            f"price file {path}: price of {license!r} must be a number, not {value!r}"
        ) from None
    if not price.is_finite() or price < 0 or price > _MAX_PRICE:
        raise PriceConfigError(
            f"price file {path}: price of {license!r} must be between 0 and {_MAX_PRICE}, not {value!r}"
        )
    return price.quantize(Decimal("0.01"))
