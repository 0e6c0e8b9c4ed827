"""Query/body parameter parsing that fails with Miro's 400 shape instead of a traceback."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from datetime import UTC, datetime

from miro_emulator.http import ApiError, Request, bad_request

MIRO_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def int_param(request: Request, name: str, default: int, minimum: int, maximum: int | None) -> int:
    raw = request.param(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad_request(f"Parameter '{name}' must be an integer") from None
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        raise bad_request(f"Parameter '{name}' must be {bound}")
    return value


def bool_param(request: Request, name: str) -> bool | None:
    raw = request.param(name)
    if raw is None:
        return None
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    raise bad_request(f"Parameter '{name}' must be true or false")


def enum_param(request: Request, name: str, allowed: Iterable[str]) -> str | None:
    raw = request.param(name)
    if raw is None:
        return None
    choices = tuple(allowed)
    if raw not in choices:
        raise bad_request(f"Parameter '{name}' must be one of: {', '.join(choices)}")
    return raw


def timestamp_param(request: Request, name: str) -> int:
    """Required ISO-8601 UTC timestamp with milliseconds and a trailing Z, as epoch milliseconds."""
    raw = request.param(name)
    if raw is None:
        raise bad_request(f"Parameter '{name}' is required")
    if not MIRO_TIMESTAMP.match(raw):
        raise bad_request(
            f"Parameter '{name}' must be an ISO 8601 UTC date-time with milliseconds and a Z, "
            "like 2023-03-30T17:26:50.000Z"
        )
    try:
        moment = datetime.strptime(raw, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError:
        raise bad_request(f"Parameter '{name}' is not a valid date-time") from None
    return int(moment.timestamp() * 1000)


def encode_cursor(*parts: object) -> str:
    return base64.urlsafe_b64encode(":".join(str(p) for p in parts).encode()).decode().rstrip("=")


def decode_cursor(raw: str, expected_parts: int) -> list[str]:
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise bad_request("Parameter 'cursor' is not valid") from None
    parts = text.split(":")
    if len(parts) != expected_parts:
        raise bad_request("Parameter 'cursor' is not valid")
    return parts


def json_object(request: Request) -> dict[str, object]:
    try:
        body = request.json()
    except (ValueError, UnicodeDecodeError):
        raise bad_request("Request body must be valid JSON") from None
    if not isinstance(body, dict):
        raise bad_request("Request body must be a JSON object")
    return body


__all__ = ["ApiError"]
