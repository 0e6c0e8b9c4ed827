"""Shared benchmark helpers: result output and peak RSS of a child process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def write_result(name: str, result: dict[str, Any]) -> None:
    """Write bench/results/<name>.json and print the same JSON as one line."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    line = json.dumps(result, sort_keys=True)
    (RESULTS_DIR / f"{name}.json").write_text(line + "\n")
    print(line, flush=True)


def peak_rss_mb_self() -> float:
    """Peak resident set size of this process in MB (ru_maxrss is KiB on Linux)."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / 1024 if sys.platform != "darwin" else peak / (1024 * 1024), 1)


def run_child(module: str, args: list[str], env: dict[str, str], timeout_s: float = 3600) -> dict[str, Any]:
    """Run `python -m module args...` in a fresh interpreter (so its peak RSS is its own) and
    return the JSON object it prints on its last stdout line."""
    completed = subprocess.run(
        [sys.executable, "-m", module, *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
        cwd=Path(__file__).resolve().parent.parent,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{module} child failed ({completed.returncode}): {completed.stderr[-3000:]}")
    lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
    return dict(json.loads(lines[-1]))
