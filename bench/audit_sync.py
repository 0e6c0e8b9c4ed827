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
import os
import sys
import time
from contextlib import ExitStack

from bench._common import free_port, http_json, peak_rss_mb_self, run_child, server_process, write_result

EVENTS = 200_000
NEW_EVENTS = 1_000
LATENCY_MS = 50.0
CREDITS_PER_WINDOW = 100_000
WINDOW_S = 60.0
PAGE_COST = 100
PAGE_SIZE = 100
EVENT = {"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}, "id": "bench"}


def floor_seconds(pages: int, credits_spent: int) -> float:
    """The fastest any client could go: one page per round trip, and no more credits than the budget."""
    return max(pages * LATENCY_MS / 1000, credits_spent / CREDITS_PER_WINDOW * WINDOW_S)


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
    parser.add_argument("--first-only", action="store_true", help="only the first run (profiling)")
    args = parser.parse_args()
    if args.child:
        _child()
        return
    from miro_emulator import EmulatorConfig
    from miro_sync_cli.local.servers import local_servers
    from miro_sync_cli.local.stack import LocalStack, MiroConnection

    # About `--events` audit events over 100 days (~90 % of them inside Miro's 90 days), by
    # events / 10 members.
    members = max(200, args.events // 10)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    emulator_command = [
        sys.executable, "-m", "miro_sync_cli.main", "emulator", "--port", str(port), "--members",
        str(members), "--audit-events", str(args.events), "--seed", "5", "--latency-ms", str(LATENCY_MS),
        "--window-s", str(WINDOW_S),
    ]  # fmt: skip
    defaults = EmulatorConfig()
    with ExitStack() as stack:
        servers = stack.enter_context(local_servers())
        local = LocalStack(servers).provision()
        stack.callback(local.teardown)
        stack.enter_context(server_process(emulator_command, f"{base_url}/_emulator/stats", timeout_s=900))
        org = http_json("GET", f"{base_url}/_emulator/state/org")
        local.connect_miro(
            MiroConnection(
                base_url, f"{base_url}/api/v1/scim", org["orgId"], defaults.token, defaults.scim_token
            )
        )
        env = local.function_env("AuditLogSyncFunction") | {"AUDIT_BACKFILL_DAYS": "90"}
        env.pop("AWS_LAMBDA_FUNCTION_NAME", None)  # the child loop continues itself
        child_env = {"BENCH_AUDIT_CHILD": json.dumps({"env": env})}

        http_json("POST", f"{base_url}/_emulator/reset-stats")
        first = run_child("bench.audit_sync", ["--child"], child_env)
        first_stats = http_json("GET", f"{base_url}/_emulator/stats")
        servers.lambda_api.pending.clear()
        if args.first_only:
            print(json.dumps({"first": first, "stats": first_stats}), flush=True)
            return

        events_before = int(http_json("GET", f"{base_url}/_emulator/state/org")["auditEvents"])
        _add_new_events(base_url, NEW_EVENTS)
        events_after = int(http_json("GET", f"{base_url}/_emulator/state/org")["auditEvents"])

        http_json("POST", f"{base_url}/_emulator/reset-stats")
        second = run_child("bench.audit_sync", ["--child"], child_env)
        second_stats = http_json("GET", f"{base_url}/_emulator/stats")

    pages = int(first_stats["requests"].get("enterprise-get-audit-logs", first["pages"]))
    credits = int(first_stats["creditsSpent"])
    floor = floor_seconds(pages, credits)
    write_result(
        "audit_sync",
        {
            "events": first["stored"],
            "events_generated": org["auditEvents"],
            "members": members,
            "latency_ms": LATENCY_MS,
            "window_s": WINDOW_S,
            "pages": pages,
            "miro_requests": first_stats["totalRequests"],
            "credits_spent": credits,
            "http_429": first_stats["totalRateLimited"],
            "invocations": first["invocations"],
            "wall_s": first["wall_s"],
            "floor_s": round(floor, 2),
            "efficiency": round(floor / first["wall_s"], 3) if first["wall_s"] else None,
            "peak_rss_mb": first["peak_rss_mb"],
            "items_written": first["stored"],
            "second_run_new_events": events_after - events_before,
            "second_run_items_written": second["stored"],
            "second_run_requests": second_stats["totalRequests"],
            "second_run_wall_s": second["wall_s"],
        },
    )


def _add_new_events(base_url: str, count: int) -> None:
    """`count` new audit events "now", after every existing one, in one call to the emulator's
    `POST /_emulator/audit-events` (made as the generator makes its events: active members signing in and
    working on boards)."""
    before = int(http_json("GET", f"{base_url}/_emulator/state/org")["auditEvents"])
    answer = http_json("POST", f"{base_url}/_emulator/audit-events", {"count": count})
    after = int(http_json("GET", f"{base_url}/_emulator/state/org")["auditEvents"])
    if answer["added"] != count or after - before != count:
        raise RuntimeError(
            f"asked for {count} new audit events, got {answer['added']} ({after - before} in the log)"
        )


if __name__ == "__main__":
    main()
