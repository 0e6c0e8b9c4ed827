"""The emulator at 100,000 members: time until it serves, memory it takes, audit events it holds.
Issue target: 100k members and 1M audit events well under 1 GiB and ready in seconds.

Writes bench/results/emulator_scale.json and prints it as one line."""

from __future__ import annotations

import gc
import json
import os
import time
from pathlib import Path

import httpx
import psutil

from miro_emulator import EmulatorConfig, start_emulator

RESULTS = Path(__file__).resolve().parent / "results"
MEMBERS = int(os.environ.get("BENCH_EMULATOR_MEMBERS", "100000"))


def main() -> dict[str, object]:
    gc.collect()
    process = psutil.Process()
    rss_before = process.memory_info().rss
    cpu_before = process.cpu_times()
    started = time.perf_counter()
    with start_emulator(EmulatorConfig(members=MEMBERS)) as emulator:
        response = httpx.get(
            f"{emulator.base_url}/v2/orgs/{emulator.org_id}/members",
            headers={"Authorization": f"Bearer {emulator.token}"},
            params={"limit": 100},
        )
        ready_s = time.perf_counter() - started
        response.raise_for_status()
        cpu_after = process.cpu_times()
        rss_growth_mb = (process.memory_info().rss - rss_before) / 2**20
        result: dict[str, object] = {
            "benchmark": "emulator_scale",
            "members": len(emulator.state.all_members),
            "audit_events": len(emulator.state.audit),
            "ready_s": round(ready_s, 2),
            "cpu_s": round((cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system), 2),
            "rss_growth_mb": round(rss_growth_mb, 1),
            "targets": {"rss_growth_mb": 1024},
            "meets_targets": rss_growth_mb < 1024,
        }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "emulator_scale.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
