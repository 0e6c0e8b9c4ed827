"""Token providers: Secrets Manager via a Powertools-shaped fetcher fake, masking, refresh."""

from __future__ import annotations

import json
from typing import Any

import pytest

from miro_sync.secrets import (
    RefreshableTokenProvider,
    SecretsManagerToken,
    StaticToken,
    TokenProvider,
    TokenUnavailableError,
)


class FakeSecrets:
    """Stands in for Powertools' SecretsProvider: a cache that ``force_fetch`` bypasses."""

    def __init__(self, value: Any) -> None:
        self.value = value
        self.cached: Any = None
        self.calls: list[tuple[str, int | None, bool]] = []

    def get(self, name: str, *, max_age: int | None = None, force_fetch: bool = False) -> Any:
        self.calls.append((name, max_age, force_fetch))
        if self.cached is None or force_fetch:
            self.cached = self.value
        return self.cached


def test_plain_string_secret() -> None:
    token = SecretsManagerToken("miro/token", fetcher=FakeSecrets("  abc123\n"))
    assert token() == "abc123"


def test_json_secret_with_token_field() -> None:
    fetcher = FakeSecrets(json.dumps({"token": "from-json", "note": "rotated monthly"}))
    assert SecretsManagerToken("miro/token", max_age=60, fetcher=fetcher)() == "from-json"
    assert fetcher.calls == [("miro/token", 60, False)]


@pytest.mark.parametrize(
    "raw", ["", "{not json", json.dumps({"other": "x"}), json.dumps({"token": ""}), None]
)
def test_unusable_secrets_fail_clearly_without_echoing_the_value(raw: Any) -> None:
    with pytest.raises(TokenUnavailableError, match="miro/token") as caught:
        SecretsManagerToken("miro/token", fetcher=FakeSecrets(raw))()
    if raw:
        assert raw not in str(caught.value)


def test_refresh_bypasses_the_cache_to_pick_up_a_rotated_secret() -> None:
    fetcher = FakeSecrets("old")
    token = SecretsManagerToken("miro/token", fetcher=fetcher)
    assert token() == "old"
    fetcher.value = "new"
    assert token() == "old"  # still cached
    assert token.refresh() == "new"
    assert fetcher.calls[-1] == ("miro/token", 300, True)


def test_providers_satisfy_the_protocols() -> None:
    assert isinstance(StaticToken("x"), TokenProvider)
    assert not isinstance(StaticToken("x"), RefreshableTokenProvider)
    assert isinstance(SecretsManagerToken("n", fetcher=FakeSecrets("x")), RefreshableTokenProvider)


def test_token_values_are_masked_in_reprs() -> None:
    static = StaticToken("super-secret-value")
    managed = SecretsManagerToken("miro/token", fetcher=FakeSecrets("super-secret-value"))
    managed()
    for provider in (static, managed):
        assert "super-secret-value" not in repr(provider)
        assert "super-secret-value" not in str(provider)
        assert "super-secret-value" not in repr(vars(provider))


def test_empty_static_token_is_refused() -> None:
    with pytest.raises(TokenUnavailableError):
        StaticToken("")
