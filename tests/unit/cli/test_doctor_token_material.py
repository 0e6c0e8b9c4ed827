"""Reading a stored token for `miro-sync doctor`: plain or the expiring JSON form, never echoing it."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from miro_sync.miro.token_info import TokenFormatError, TokenInfo, token_material

SECRET = "access-SECRET-value"


def test_plain_token_is_non_expiring() -> None:
    material = token_material(f"  {SECRET}\n")
    assert material.access_token == SECRET
    assert material.expires_at is None
    assert not material.expiring
    assert SECRET not in repr(material)


@pytest.mark.parametrize(
    "expires",
    ["2026-03-02T00:00:00Z", "2026-03-02T00:00:00.000+00:00", 1772409600, 1772409600000, "1772409600"],
)
def test_expiring_json_accepts_iso_and_epoch(expires: object) -> None:
    raw = json.dumps(
        {
            "accessToken": SECRET,
            "refreshToken": "r",
            "clientId": "c",
            "clientSecret": "s",
            "expiresAt": expires,
        }
    )
    material = token_material(raw)
    assert material.access_token == SECRET
    assert material.expires_at == datetime(2026, 3, 2, tzinfo=UTC)
    assert material.has_refresh_token
    assert material.expiring


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "empty"),
        ("{not json", "does not parse"),
        (json.dumps({"refreshToken": SECRET}), "accessToken"),
        (json.dumps({"accessToken": "a", "expiresAt": "next tuesday"}), "expiresAt"),
        (json.dumps({"accessToken": "a", "expiresAt": True}), "expiresAt"),
    ],
)
def test_unreadable_tokens_are_refused_without_quoting_them(raw: str, message: str) -> None:
    with pytest.raises(TokenFormatError, match=message) as caught:
        token_material(raw)
    assert SECRET not in str(caught.value)


def test_token_info_reads_the_spec_shape_and_lists_missing_scopes() -> None:
    info = TokenInfo.model_validate(
        {
            "type": "oauth",
            "organization": {"type": "organization", "name": "Acme", "id": "1"},
            "team": {"type": "team", "name": "Core", "id": "2"},
            "createdBy": {"type": "user", "name": "Ada", "id": "3"},
            "user": {"type": "user", "name": "Ada", "id": "3"},
            "scopes": ["boards:read", "organizations:read"],
        }
    )
    assert info.created_by is not None
    assert info.created_by.id == "3"
    assert info.missing(["organizations:read", "auditlogs:read", "boards:write"]) == [
        "auditlogs:read",
        "boards:write",
    ]
