"""Shared benchmark helpers: result output, peak RSS, and servers/children in their own processes."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


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


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _die_with_parent() -> None:
    """Linux: the child gets SIGTERM when the benchmark dies (even by SIGKILL): no server outlives it."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def wait_for_http(url: str, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"server for {url} exited with code {process.returncode}")
        try:
            urllib.request.urlopen(url, timeout=2).close()  # noqa: S310 - loopback only
            return
        except urllib.error.HTTPError:
            return  # it answers: up
        except (urllib.error.URLError, OSError):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer within {timeout_s:.0f} s") from None
            time.sleep(0.1)


@contextlib.contextmanager
def server_process(command: list[str], ready_url: str, timeout_s: float = 300) -> Iterator[None]:
    """Run a server in its own process until the block ends (then terminate it, kill if it hangs)."""
    process = subprocess.Popen(
        command,
        cwd=PROJECT_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=_die_with_parent,
    )
    try:
        wait_for_http(ready_url, process, timeout_s)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def http_json(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(  # noqa: S310 - loopback only
        url, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})}
    )
    with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310
        raw = response.read()
    return json.loads(raw) if raw else None


def run_child(module: str, args: list[str], env: dict[str, str], timeout_s: float = 3600) -> dict[str, Any]:
    """Run `python -m module args...` in a fresh interpreter (so its peak RSS is its own) and
    return the JSON object it prints on its last stdout line (lines before it may be logs)."""
    completed = subprocess.run(
        [sys.executable, "-m", module, *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
        cwd=PROJECT_ROOT,
        preexec_fn=_die_with_parent,
    )
    log_path = os.environ.get("BENCH_CHILD_LOG")
    if log_path:  # keep the child's logs for profiling
        with open(log_path, "a") as log:
            log.write(completed.stdout)
    if completed.returncode != 0:
        raise RuntimeError(
            f"{module} child failed ({completed.returncode}): {completed.stderr[-3000:]}"
            f"{completed.stdout[-2000:]}"
        )
    lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"{module} child printed no result: {completed.stdout[-2000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    if completed.stderr.strip():
        result["stderr_tail"] = completed.stderr[-4000:]
    return result
