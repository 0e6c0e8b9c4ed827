"""bench/audit_sync: 200,000 audit events over 90 days, emulator at 50 ms per request.

The parent starts the emulator and the local AWS stack; the sync itself (AuditLogSyncFunction's
handler, continuations included) runs in a child interpreter so its peak RSS is its own. A second
run after 1,000 new events shows what an incremental run costs.

floor_s: the fastest any client could page through the events under Miro's budget: 100 credits per
page, `credits_per_window` credits per `window_s`, one page per round trip of `latency_ms`.
efficiency = floor_s / wall_s.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from contextlib import ExitStack
from typing import Any

from bench._common import peak_rss_mb_self, run_child, write_result

EVENTS = 200_000
NEW_EVENTS = 1_000
LATENCY_MS = 50.0
CREDITS_PER_WINDOW = 100_000
WINDOW_S = 60.0
PAGE_COST = 100
PAGE_SIZE = 100
EVENT = {"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}, "id": "bench"}


def floor_seconds(pages: int) -> float:
    per_window = CREDITS_PER_WINDOW // PAGE_COST
    full_windows = (pages - 1) // per_window
    return full_windows * WINDOW_S + (pages - full_windows * per_window) * LATENCY_MS / 1000


def _child() -> None:
    """Invoke the handler until the run completes (each continuation is a new invocation)."""
    from miro_sync_cli.local.invoke import invoke_function

    config = json.loads(os.environ["BENCH_AUDIT_CHILD"])
    started = time.monotonic()
    invocations = []
    while True:
        result = invoke_function("AuditLogSyncFunction", EVENT, config["env"])
        invocations.append(result)
        if result["status"] == "complete":
            break
    wall = time.monotonic() - started
    print(
        json.dumps(
            {
                "wall_s": round(wall, 2),
                "invocations": len(invocations),
                "pages": sum(r["pages"] for r in invocations),
                "stored": sum(r["stored"] for r in invocations),
                "peak_rss_mb": peak_rss_mb_self(),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--events", type=int, default=EVENTS)
    args = parser.parse_args()
    if args.child:
        _child()
        return
    from miro_emulator import EmulatorConfig, start_emulator
    from miro_sync_cli.local.servers import local_servers
    from miro_sync_cli.local.stack import LocalStack, MiroConnection

    with ExitStack() as stack:
        servers = stack.enter_context(local_servers())
        local = LocalStack(servers).provision()
        stack.callback(local.teardown)
        emulator = stack.enter_context(
            start_emulator(
                EmulatorConfig(
                    members=max(200, args.events // 100),
                    seed=5,
                    audit_events=args.events,
                    latency_ms=LATENCY_MS,
                    window_s=WINDOW_S,
                    credits_per_window=CREDITS_PER_WINDOW,
                )
            )
        )
        local.connect_miro(
            MiroConnection(
                emulator.base_url, emulator.scim_url, emulator.org_id, emulator.token, emulator.scim_token
            )
        )
        env = local.function_env("AuditLogSyncFunction") | {"AUDIT_BACKFILL_DAYS": "90"}
        env.pop("AWS_LAMBDA_FUNCTION_NAME", None)  # the child loop continues itself
        child_env = {"BENCH_AUDIT_CHILD": json.dumps({"env": env})}
        first = run_child("bench.audit_sync", ["--child"], child_env)
        servers.lambda_api.pending.clear()

        state = emulator.state
        log = state.audit
        now_ms = int(state.clock.now().timestamp() * 1000)
        for number in range(NEW_EVENTS):
            # New sign-ins by existing members, spread over the last minute.
            log.append(
                now_ms + number, 0, number % len(state.all_members), number % len(state.all_members), -1
            )
        stats_before = _emulator_requests(emulator.base_url)
        second = run_child("bench.audit_sync", ["--child"], child_env)
        second_requests = _emulator_requests(emulator.base_url) - stats_before

    visible = first["stored"]
    floor = floor_seconds(max(1, math.ceil(visible / PAGE_SIZE)))
    write_result(
        "audit_sync",
        {
            "events": visible,
            "events_generated": args.events,
            "pages": first["pages"],
            "invocations": first["invocations"],
            "wall_s": first["wall_s"],
            "floor_s": round(floor, 2),
            "efficiency": round(floor / first["wall_s"], 3) if first["wall_s"] else None,
            "peak_rss_mb": first["peak_rss_mb"],
            "items_written": first["stored"],
            "second_run_items_written": second["stored"],
            "second_run_requests": second_requests,
            "second_run_wall_s": second["wall_s"],
        },
    )


def _emulator_requests(base_url: str) -> int:
    import httpx

    stats: Any = httpx.get(f"{base_url}/_emulator/stats", timeout=10).json()
    return int(stats["totalRequests"])


if __name__ == "__main__":
    main()
