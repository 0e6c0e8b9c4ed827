"""`miro-sync emulator` as a user runs it: its own process on a port, stopped with Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from miro_emulator import EmulatorConfig
from miro_emulator.config import Clock
from miro_emulator.generator import build_org
from miro_sync_cli.local.servers import free_port
from tests.fixtures.cli import ROOT, run_cli

pytestmark = pytest.mark.integration


@contextmanager
def emulator_command(*options: str) -> Iterator[str]:
    """Runs `miro-sync emulator --port P *options`; yields its base URL once it answers."""
    port = free_port()
    command = [sys.executable, "-m", "miro_sync_cli.main", "emulator", "--port", str(port), *options]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.communicate()[1]
            try:
                httpx.get(f"{base_url}/_emulator/stats", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the emulator did not start within 60 s"
                time.sleep(0.1)
        yield base_url
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
        assert process.returncode == 0, stderr
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def generated_events(**config: Any) -> int:
    """How many audit events the generator makes for this config (the count does not depend on `now`)."""
    settings = EmulatorConfig(**config)
    return len(build_org(settings, Clock(settings.now)).audit)


def org_truth(base_url: str) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(f"{base_url}/_emulator/state/org", timeout=10).json()
    return body


def test_audit_events_option_sets_the_generated_log() -> None:
    with emulator_command("--members", "60", "--seed", "3", "--audit-events", "2500") as base_url:
        assert org_truth(base_url)["auditEvents"] == generated_events(members=60, seed=3, audit_events=2500)
        added = httpx.post(f"{base_url}/_emulator/audit-events", json={"count": 100}, timeout=10).json()
        assert added["added"] == 100
        assert org_truth(base_url)["auditEvents"] == added["total"]
    # About N: the generator adds each deactivated member's deactivation (and one sign-in per actor).
    assert 2500 <= generated_events(members=60, seed=3, audit_events=2500) <= 2500 + 60


def test_audit_events_default_and_zero() -> None:
    with emulator_command("--members", "40", "--seed", "2") as base_url:
        assert org_truth(base_url)["auditEvents"] == generated_events(members=40, seed=2)
    assert generated_events(members=40, seed=2) == generated_events(members=40, seed=2, audit_events=400)
    with emulator_command("--members", "40", "--seed", "2", "--audit-events", "0") as base_url:
        assert org_truth(base_url)["auditEvents"] == 0
        added = httpx.post(f"{base_url}/_emulator/audit-events", json={"count": 5}, timeout=10).json()
        assert (added["added"], added["total"], added["firstId"]) == (5, 5, "3458764600000000000")


def test_negative_audit_events_is_a_usage_error() -> None:
    result = run_cli("emulator", "--port", "0", "--audit-events", "-1", timeout_s=60)
    assert result.returncode == 2
    assert "--audit-events" in result.stderr


def test_ctrl_c_pressed_twice_while_stopping_still_gives_the_prompt_back() -> None:
    port = free_port()
    command = [sys.executable, "-m", "miro_sync_cli.main", "emulator", "--port", str(port), "--members", "30"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.communicate()[1]
            try:
                httpx.get(f"http://127.0.0.1:{port}/_emulator/stats", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the emulator did not start within 60 s"
                time.sleep(0.05)
        # right after it answers (it may still be printing its banner), then again while it stops
        process.send_signal(signal.SIGINT)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
        assert process.returncode == 0, stderr
        assert "Traceback" not in stderr
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
