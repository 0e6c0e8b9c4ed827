from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto import mock_aws

from tests.unit.audit.tables import Tables, create_tables


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def tables(aws_env: None) -> Iterator[Tables]:
    with mock_aws():
        yield create_tables()
