"""What the webhook handler loads at init (its cold start is benchmarked by bench/cold_start.py).

Structural checks only, no timings: loading the handler module in a fresh interpreter must not pull in
the Miro HTTP clients (httpx), which only the Miro-calling functions need, nor boto3 (its resource
layer and s3transfer): the webhook talks to DynamoDB through a botocore low-level client. And the other
way round: what a request needs (botocore's client machinery, the Event Handler, the delivery models)
is loaded at init, not deferred to the first request."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
HANDLER = REPO_ROOT / "functions" / "board_webhook" / "app.py"

NOT_FOR_THE_WEBHOOK = [
    "httpx",
    "tenacity",
    "miro_sync.miro.client",
    "miro_sync.miro.http",
    "miro_sync.miro.scim",
    "miro_sync.miro.models",
    "miro_sync.store.members",
    "boto3",
    "boto3.resources",
    "boto3.dynamodb",
    "s3transfer",
]
NEEDED_BY_EVERY_REQUEST = [
    "botocore.session",
    "botocore.client",
    "botocore.exceptions",
    "miro_sync.store.lowlevel",
    "miro_sync.store.member_activity",
    "miro_sync.webhooks.models",
    "aws_lambda_powertools.event_handler",
    "pydantic",
]

# Loads the handler the way the Lambda runtime does and reports which modules got loaded; with "build",
# also builds the request path's adapters (DynamoDB client and repositories; no network call).
PROBE = """
import importlib.util, json, os, sys
spec = importlib.util.spec_from_file_location("app", sys.argv[1])
module = importlib.util.module_from_spec(spec)
sys.modules["app"] = module
spec.loader.exec_module(module)
if sys.argv[2] == "build":
    from miro_sync.settings.board_webhook import BoardWebhookSettings
    receiver = module.build_receiver(BoardWebhookSettings.from_env(os.environ))
    assert receiver.max_body_bytes > 0
print(json.dumps(sorted(sys.modules)))
"""


def loaded_modules(mode: str = "init") -> set[str]:
    environment = {
        **os.environ,
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "POWERTOOLS_SERVICE_NAME": "board-webhook",
        "POWERTOOLS_METRICS_NAMESPACE": "MiroSyncTest",
        "BOARD_EVENTS_TABLE": "test-board-events",
        "MEMBERS_TABLE": "test-members",
        "STATE_TABLE": "test-state",
    }
    completed = subprocess.run(
        [sys.executable, "-c", PROBE, str(HANDLER), mode],
        capture_output=True,
        text=True,
        check=True,
        env=environment,
        cwd=HANDLER.parent,
    )
    loaded: list[str] = json.loads(completed.stdout.strip().splitlines()[-1])
    return set(loaded)


def test_webhook_init_does_not_load_the_miro_http_clients_or_boto3() -> None:
    assert sorted(set(NOT_FOR_THE_WEBHOOK) & loaded_modules()) == []


def test_webhook_init_loads_what_every_request_needs() -> None:
    assert sorted(set(NEEDED_BY_EVERY_REQUEST) - loaded_modules()) == []


def test_building_the_request_adapters_loads_no_boto3_either() -> None:
    loaded = loaded_modules("build")
    assert sorted(set(NOT_FOR_THE_WEBHOOK) & loaded) == []
    assert not any(name == "boto3" or name.startswith(("boto3.", "s3transfer")) for name in loaded)


def test_miro_package_names_resolve_lazily() -> None:
    import miro_sync.miro as miro

    assert miro.MiroRestClient.__name__ == "MiroRestClient"
    assert miro.MiroScimClient.__module__ == "miro_sync.miro.scim"
    assert issubclass(miro.MiroNotFound, miro.MiroError)
    assert set(miro.__all__) <= set(dir(miro))
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = miro.no_such_name
