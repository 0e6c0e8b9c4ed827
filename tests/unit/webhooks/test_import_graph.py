"""What the webhook handler loads at init (its cold start is benchmarked by bench/cold_start.py).

Structural checks only, no timings: loading the handler module in a fresh interpreter must not pull in
the Miro HTTP clients (httpx), which only the Miro-calling functions need."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
HANDLER = REPO_ROOT / "functions" / "board_webhook" / "app.py"

# Loads the handler the way the Lambda runtime does and reports which of the watched modules got loaded.
PROBE = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("app", sys.argv[1])
module = importlib.util.module_from_spec(spec)
sys.modules["app"] = module
spec.loader.exec_module(module)
watched = ["httpx", "tenacity", "miro_sync.miro.client", "miro_sync.miro.http", "miro_sync.miro.scim"]
print(json.dumps(sorted(name for name in watched if name in sys.modules)))
"""


def loaded_by_handler_init() -> list[str]:
    environment = {
        **os.environ,
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_SERVICE_NAME": "board-webhook",
        "POWERTOOLS_METRICS_NAMESPACE": "MiroSyncTest",
    }
    completed = subprocess.run(
        [sys.executable, "-c", PROBE, str(HANDLER)],
        capture_output=True,
        text=True,
        check=True,
        env=environment,
        cwd=HANDLER.parent,
    )
    loaded: list[str] = json.loads(completed.stdout.strip().splitlines()[-1])
    return loaded


def test_webhook_init_does_not_load_the_miro_http_clients() -> None:
    assert loaded_by_handler_init() == []


def test_miro_package_names_resolve_lazily() -> None:
    import miro_sync.miro as miro

    assert miro.MiroRestClient.__name__ == "MiroRestClient"
    assert miro.MiroScimClient.__module__ == "miro_sync.miro.scim"
    assert issubclass(miro.MiroNotFound, miro.MiroError)
    assert set(miro.__all__) <= set(dir(miro))
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = miro.no_such_name
