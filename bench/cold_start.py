"""Cold start: import-and-init time of every handler module in a fresh interpreter (median of several
runs, interleaved with the baseline so machine noise hits both alike), against a baseline module that
imports only boto3 and the Powertools Logger; plus the installed size of the layer.

Writes bench/results/cold_start.json and prints it as one line."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
RUNS = int(os.environ.get("COLD_START_RUNS", "9"))
TARGET_WEBHOOK = 1.25
TARGET_OTHER = 1.6
LAYER_TARGET_MB = 15.0

BASELINE_SOURCE = "import boto3\nfrom aws_lambda_powertools import Logger\nlogger = Logger()\n"

# Times loading one module file the way the Lambda runtime imports a handler; prints milliseconds.
PROBE = """
import importlib.util, sys, time
started = time.perf_counter()
spec = importlib.util.spec_from_file_location("app", sys.argv[1])
module = importlib.util.module_from_spec(spec)
sys.modules["app"] = module
spec.loader.exec_module(module)
print((time.perf_counter() - started) * 1000)
"""

# What Lambda would hand the handlers at init; values are placeholders, nothing is called at import.
HANDLER_ENV = {
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_LAMBDA_FUNCTION_NAME": "bench",
    "POWERTOOLS_SERVICE_NAME": "miro-sync",
    "POWERTOOLS_METRICS_NAMESPACE": "MiroSync",
    "POWERTOOLS_LOG_LEVEL": "INFO",
    "MIRO_API_URL": "http://127.0.0.1:9",
    "MIRO_SCIM_URL": "http://127.0.0.1:9/api/v1/scim",
    "MIRO_ORG_ID": "1",
    "MIRO_TOKEN_SECRET": "bench-rest",
    "MIRO_SCIM_TOKEN_SECRET": "bench-scim",
    "MEMBERS_TABLE": "bench-members",
    "AUDIT_TABLE": "bench-audit",
    "BOARD_EVENTS_TABLE": "bench-board-events",
    "ACTIONS_TABLE": "bench-actions",
    "STATE_TABLE": "bench-state",
    "IDEMPOTENCY_TABLE": "bench-idempotency",
    "OFFBOARDING_QUEUE_URL": "http://127.0.0.1:9/queue/bench",
}


def time_import(module_path: Path) -> float:
    environment = {**os.environ, **HANDLER_ENV, "PYTHONDONTWRITEBYTECODE": "0"}
    output = subprocess.run(
        [sys.executable, "-c", PROBE, str(module_path)],
        capture_output=True,
        text=True,
        check=True,
        env=environment,
        cwd=module_path.parent,
    ).stdout
    return float(output.strip().splitlines()[-1])


def layer_size_mb() -> float:
    """Install the layer's requirements the way `sam build` does for arm64/python3.12 and measure it."""
    target = ROOT / ".local" / "layer-size"
    requirements = ROOT / "layers" / "miro_sync" / "requirements.txt"
    stamp = target / ".requirements"
    if not stamp.is_file() or stamp.read_text() != requirements.read_text():
        subprocess.run(["rm", "-rf", str(target)], check=True)
        command = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--target",
            str(target),
            "--platform",
            "manylinux2014_aarch64",
            "--implementation",
            "cp",
            "--python-version",
            "3.12",
            "--only-binary=:all:",
            "-r",
            str(requirements),
        ]
        installed = subprocess.run(command, capture_output=True, text=True, check=False)
        if installed.returncode != 0:
            raise SystemExit(f"installing the layer's requirements failed:\n{installed.stderr}")
        stamp.write_text(requirements.read_text())
    package = ROOT / "layers" / "miro_sync" / "miro_sync"
    total = sum(
        path.stat().st_size
        for root in (target, package)
        for path in root.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.name != ".requirements"
    )
    return total / 1_000_000


def main() -> dict[str, object]:
    handlers = sorted(path for path in (ROOT / "functions").glob("*/app.py"))
    with tempfile.TemporaryDirectory() as scratch:
        baseline = Path(scratch) / "baseline.py"
        baseline.write_text(BASELINE_SOURCE)
        # Warm the bytecode caches once so every measured run is a cold interpreter with warm .pyc,
        # as on Lambda where the layer's bytecode is compiled at build time.
        for module in [baseline, *handlers]:
            time_import(module)
        samples: dict[str, list[float]] = {"baseline": []}
        for _ in range(RUNS):
            samples["baseline"].append(time_import(baseline))
            for handler in handlers:
                samples.setdefault(handler.parent.name, []).append(time_import(handler))
    baseline_ms = statistics.median(samples.pop("baseline"))
    handler_ms = {name: round(statistics.median(values), 1) for name, values in samples.items()}
    ratios = {name: round(ms / baseline_ms, 3) for name, ms in handler_ms.items()}
    layer_mb = round(layer_size_mb(), 2)
    within = all(
        ratio <= (TARGET_WEBHOOK if name == "board_webhook" else TARGET_OTHER)
        for name, ratio in ratios.items()
    )
    result: dict[str, object] = {
        "benchmark": "cold_start",
        "runs": RUNS,
        "baseline_ms": round(baseline_ms, 1),
        "handlers": handler_ms,
        "ratios": ratios,
        "worst_ratio": max(ratios.values(), default=0.0),
        "layer_mb": layer_mb,
        "targets": {
            "webhook_ratio": TARGET_WEBHOOK,
            "other_ratio": TARGET_OTHER,
            "layer_mb": LAYER_TARGET_MB,
        },
        "meets_targets": within and layer_mb <= LAYER_TARGET_MB,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "cold_start.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
