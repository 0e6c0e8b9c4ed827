"""The 100k-member org builds and serves; timing and memory are printed, never asserted on time."""

from __future__ import annotations

import gc
import time

import httpx
import psutil
import pytest

from miro_emulator import EmulatorConfig, start_emulator

pytestmark = pytest.mark.integration


def test_hundred_thousand_members_and_a_million_events() -> None:
    gc.collect()
    process = psutil.Process()
    rss_before = process.memory_info().rss
    started = time.perf_counter()
    with start_emulator(EmulatorConfig(members=100_000)) as emulator:
        ready_s = time.perf_counter() - started
        rss_growth = process.memory_info().rss - rss_before
        response = httpx.get(
            f"{emulator.base_url}/v2/orgs/{emulator.org_id}/members",
            headers={"Authorization": f"Bearer {emulator.token}"},
            params={"limit": 100},
        )
        assert response.status_code == 200
        assert len(emulator.state.all_members) == 100_000
        assert len(emulator.state.audit) >= 1_000_000
    print(f"\n100k members + {len(emulator.state.audit)} audit events: ready in {ready_s:.1f}s, "
          f"RSS +{rss_growth / 2**20:.0f} MiB")  # fmt: skip
    assert rss_growth < 1024 * 2**20
