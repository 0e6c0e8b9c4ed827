"""bench.audit_sync: the audit log sync at 200,000 and 1,000,000 events, each against its ideal-client floor.

For each size (`--events`, `--big-events`; `--skip-big` runs only the first) the parent starts fresh local
servers (DynamoDB Local where Java is present, else moto) and a fresh emulator with about that many audit
events over 100 days (~90 % of them inside Miro's 90 days) by events / 10 members, 50 ms per request, and
stops both afterwards (the 1M org and its stored events are several GB). The sync itself
(AuditLogSyncFunction's handler, continuations included, with the function's own 900 s timeout) runs in a
child interpreter so its peak RSS is its own. Per size:

1. the first run (a backfill of 90 days), measured: wall seconds from just before the first invocation to
   the end of the last, each invocation's duration, peak RSS;
2. 1,000 new events "now", then a second run: it must write exactly those (`*_writes_exactly_new`).

Windows: Miro's real 60 s, 100,000 credits per window (100 per audit page), never tuned per run, so the
run's wall time is what it takes against the real Miro.

The floor (bench/floor.py over the emulator's record, bench/_recorded.py): an ideal client makes the
requests our run made that Miro charged -- each audit page with the latency the emulator recorded, charged
when the emulator charged it, only after the page whose answer carried its cursor (each 24 h window is its
own cursor chain; windows are independent listings) -- starting at the instant our run started, in the
same fixed windows (the budget's phase and what was already spent in the open window, read just before the
start). A client starting late in a window spends that window's budget and the next one's in little more
than one window; the ideal client does too, so the floor is not the sustained-rate estimate
(credits / credits per window x 60 s, kept as `sustained_rate_estimate_s` for comparison: it is not a
lower bound). The store floor is the items the run wrote over the rate of an ideal batch writer measured
on the same DynamoDB stand-in in the same run (bench/_store_rate.py), counted from when the audit pages can
arrive (`pages_store_floor_s`: an event is written only after its page, and the k-th page cannot be
answered before the window whose credits pay for it: bench/floor.py `pipeline_floor`); the floor is the
larger of the two (`floor_bound_by`: "api", "store" or "pages+store"), efficiency = floor / wall, never
clamped. That writer writes copies of an item the run
stored into a scratch table with AuditTable's keys and indexes (index writes included), measured after the
first run, when the emulator is idle.

Where a run loses time against its floor, from the record (`time_breakdown`): the start-up before the
first Miro request, the credits charged in each rate-limit window (a window charged well below the limit
is time the ideal client did not lose), and the tail after the last Miro answer (writes, signals, the
checkpoint).

Cost data for bench/cost.py: the child records AWS usage (bench/_usage.py: DynamoDB capacity units,
requests per service, Lambda GB-seconds at the function's 512 MB) and the parent writes it per run to
`usage_runs`, with `lambda_duration_s_real_windows` = the sum of the invocations' durations (the run
already faces Miro's real windows).

`python -m bench.audit_sync [--events N] [--big-events N] [--skip-big] [--first-only]`; `--first-only`
runs the first run of the first size only and prints it (profiling; nothing is written);
`BENCH_AUDIT_RECORD_DIR=dir` keeps each run's record and limits there as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench._common import free_port, http_json, peak_rss_mb_self, run_child, server_process, write_result
from bench._recorded import read_limits, read_record, run_floor
from bench._store_rate import ideal_batch_write_rate

# The listing whose pages carry the events written (its windows are paged concurrently: several chains).
AUDIT_PAGES = r"/v2/audit/logs(\?|$)"
NAME = "audit_sync"
FUNCTION = "AuditLogSyncFunction"
FUNCTION_MEMORY_MB = 512  # template.yaml: AuditLogSyncFunction MemorySize
EVENTS = 200_000
BIG_EVENTS = 1_000_000
NEW_EVENTS = 1_000
LATENCY_MS = 50.0
WINDOW_S = 60.0  # Miro's own window: the audit bench is not compressed
CREDITS_PER_WINDOW = 100_000  # Miro's budget per token per window (the emulator's default)
AUDIT_OPERATION = "enterprise-get-audit-logs"
EVENT = {"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}, "id": "bench"}
TARGET_EFFICIENCY = 0.9


# --- child ------------------------------------------------------------------------------------------


def _child() -> None:
    """Invoke the handler until the run completes (each continuation is a new invocation)."""
    import resource

    from bench._usage import UsageRecorder

    config = json.loads(os.environ["BENCH_AUDIT_CHILD"])
    # Before the first invocation: the handler builds its boto3 clients then.
    recorder = UsageRecorder().install()
    from miro_sync_cli.local.invoke import invoke_function

    started_epoch = time.time()
    started = time.monotonic()
    invocations: list[dict[str, Any]] = []
    durations: list[float] = []
    while True:
        invoked = time.monotonic()
        result = invoke_function(FUNCTION, EVENT, config["env"])
        duration = time.monotonic() - invoked
        durations.append(duration)
        recorder.lambda_invocation(duration, FUNCTION_MEMORY_MB)
        invocations.append(result)
        # "outcome" since the shared sync runner; "status" before it.
        outcome = result.get("outcome", result.get("status"))
        if outcome == "complete":
            break
        if outcome != "continue":
            raise RuntimeError(f"audit sync invocation ended with outcome {outcome!r}: {result}")
    wall = time.monotonic() - started
    print(
        json.dumps(
            {
                "started_epoch_s": started_epoch,
                "wall_s": wall,
                "invocation_s": [round(d, 3) for d in durations],
                "invocations": len(invocations),
                "pages": sum(r["pages"] for r in invocations),
                "stored": sum(r["stored"] for r in invocations),
                "duplicates": sum(r["duplicates"] for r in invocations),
                "signals_written": sum(r["signals_written"] for r in invocations),
                "peak_rss_mb": peak_rss_mb_self(),
                "cpu_s": round(sum(resource.getrusage(resource.RUSAGE_SELF)[:2]), 2),
                "usage": recorder.snapshot(),
            }
        ),
        flush=True,
    )


# --- the record, read for the report ----------------------------------------------------------------


def time_breakdown(
    record: list[dict[str, Any]], limits: dict[str, Any], start_s: float, wall_s: float
) -> dict[str, Any]:
    """Where the run spent its wall time, from the emulator's record: start-up before the first request,
    the credits charged in each REST window (relative start, credits), the tail after the last answer."""
    charged = [r for r in record if r.get("budget")]
    if not charged:
        return {"startup_s": round(wall_s, 3), "tail_s": 0.0, "rest_windows": []}
    first_received = min(r["receivedS"] for r in record)
    last_answered = max(r["answeredS"] for r in record)
    rest = limits["rest"]
    window_s, phase_s = float(rest["windowS"]), float(rest["phaseS"])
    by_window: dict[int, int] = {}
    for r in charged:
        if r["budget"] == "rest":
            window = int((r["chargedS"] - phase_s) // window_s)
            by_window[window] = by_window.get(window, 0) + int(r["cost"])
    first_window = int((start_s - phase_s) // window_s)
    in_open_window = rest["windowStartS"] <= start_s < rest["windowStartS"] + window_s
    last_window = max(by_window, default=first_window)
    rest_windows = [
        [round(phase_s + w * window_s - start_s, 3), by_window.get(w, 0)]
        for w in range(first_window, last_window + 1)
    ]
    return {
        "startup_s": round(first_received - start_s, 3),
        "tail_s": round(start_s + wall_s - last_answered, 3),
        "rest_spent_before_start": int(rest["spent"]) if in_open_window else 0,
        "rest_windows": rest_windows,  # [window start relative to the run's start, credits charged]
    }


def sustained_rate_estimate(pages: int, credits: int) -> float:
    """The old estimate: one page per round trip, or credits at the sustained rate. Not a lower bound."""
    return max(pages * LATENCY_MS / 1000, credits / CREDITS_PER_WINDOW * WINDOW_S)


# --- parent -----------------------------------------------------------------------------------------


def _run_child(env: dict[str, str]) -> dict[str, Any]:
    return run_child("bench.audit_sync", ["--child"], {"BENCH_AUDIT_CHILD": json.dumps({"env": env})})


def _measured_run(base_url: str, env: dict[str, str], store_rate: Callable[[], float]) -> dict[str, Any]:
    """One run (continuations included), its floor from the emulator's record and the counters."""
    http_json("POST", f"{base_url}/_emulator/reset-stats")
    limits = read_limits(base_url)
    run = _run_child(env)
    record = read_record(base_url)
    stats = http_json("GET", f"{base_url}/_emulator/stats")
    keep_in = os.environ.get("BENCH_AUDIT_RECORD_DIR")
    if keep_in:  # for profiling: the record and the limits the floor was computed from
        path = Path(keep_in) / f"audit-{int(run['started_epoch_s'])}.json"
        path.write_text(json.dumps({"run": run, "limits": limits, "record": record}))
    measured = run_floor(
        record,
        limits,
        run["started_epoch_s"],
        run["wall_s"],
        items_written=run["stored"],
        store_rate_items_per_s=store_rate(),
        item_listing=AUDIT_PAGES,
        single_chain=False,
    )
    return {
        "run": run,
        "floor": measured,
        "stats": stats,
        "time_breakdown": time_breakdown(record, limits, run["started_epoch_s"], run["wall_s"]),
    }


def run_size(events: int, *, first_only: bool = False) -> dict[str, Any]:
    """One size: fresh local servers and emulator, the first run, 1,000 new events, the second run."""
    from miro_emulator import EmulatorConfig
    from miro_sync_cli.local.servers import local_servers
    from miro_sync_cli.local.stack import LocalStack, MiroConnection

    members = max(200, events // 10)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    emulator_command = [
        sys.executable, "-m", "miro_sync_cli.main", "emulator", "--port", str(port), "--members",
        str(members), "--audit-events", str(events), "--seed", "5", "--latency-ms", str(LATENCY_MS),
        "--window-s", str(WINDOW_S),
    ]  # fmt: skip
    defaults = EmulatorConfig()
    setup_started = time.monotonic()
    with ExitStack() as stack:
        servers = stack.enter_context(local_servers())
        local = LocalStack(servers).provision()
        rates: list[float] = []

        def store_rate() -> float:
            """The ideal batch writer on this stand-in, writing copies of the audit table's items into a
            table with its keys and indexes: measured once, after the first run filled the table (the
            emulator is idle by then)."""
            if not rates:
                rates.append(
                    ideal_batch_write_rate(servers.dynamodb_url, like_table=local.tables["AuditTable"])
                )
            return rates[0]

        stack.callback(local.teardown)
        stack.enter_context(server_process(emulator_command, f"{base_url}/_emulator/stats", timeout_s=900))
        org = http_json("GET", f"{base_url}/_emulator/state/org")
        local.connect_miro(
            MiroConnection(
                base_url, f"{base_url}/api/v1/scim", org["orgId"], defaults.token, defaults.scim_token
            )
        )
        env = local.function_env(FUNCTION) | {"AUDIT_BACKFILL_DAYS": "90"}
        env.pop("AWS_LAMBDA_FUNCTION_NAME", None)  # the child loop continues itself
        setup_s = time.monotonic() - setup_started

        first = _measured_run(base_url, env, store_rate)
        servers.lambda_api.pending.clear()
        if first_only:
            return {"events": events, "store_rate_items_per_s": store_rate(), **first}

        events_before = int(http_json("GET", f"{base_url}/_emulator/state/org")["auditEvents"])
        _add_new_events(base_url, NEW_EVENTS)
        events_after = int(http_json("GET", f"{base_url}/_emulator/state/org")["auditEvents"])
        second = _measured_run(base_url, env, store_rate)
    return size_figures(
        events=events,
        events_generated=int(org["auditEvents"]),
        members=members,
        store_rate=store_rate(),
        setup_s=setup_s,
        first=first,
        second=second,
        new_events=events_after - events_before,
    )


def size_figures(
    *,
    events: int,
    events_generated: int,
    members: int,
    store_rate: float,
    setup_s: float,
    first: dict[str, Any],
    second: dict[str, Any],
    new_events: int,
) -> dict[str, Any]:
    """The figures of one size, keyed as bench/results/audit_sync.json has them for the 200k size."""
    run, stats, measured = first["run"], first["stats"], first["floor"]
    pages = int(stats["requests"].get(AUDIT_OPERATION, run["pages"]))
    credits = int(stats["creditsSpent"])
    second_run, second_stats = second["run"], second["stats"]
    return {
        "events": run["stored"],
        "events_requested": events,
        "events_generated": events_generated,
        "members": members,
        "setup_s": round(setup_s, 1),
        "pages": pages,
        "miro_requests": int(stats["totalRequests"]),
        "credits_spent": credits,
        "http_429": int(stats["totalRateLimited"]),
        "invocations": run["invocations"],
        "invocation_s": run["invocation_s"],
        "wall_s": round(run["wall_s"], 2),
        "peak_rss_mb": run["peak_rss_mb"],
        "cpu_s": run["cpu_s"],
        "signals_written": run["signals_written"],
        **measured,  # floor_s, floor_bound_by, efficiency, items_written, api_floor_s, store_floor_s, ...
        "sustained_rate_estimate_s": round(sustained_rate_estimate(pages, credits), 2),
        "time_breakdown": first["time_breakdown"],
        "second_run_new_events": new_events,
        "second_run_items_written": second_run["stored"],
        "second_run_writes_exactly_new": second_run["stored"] == new_events,
        "second_run_pages": int(second_stats["requests"].get(AUDIT_OPERATION, second_run["pages"])),
        "second_run_requests": int(second_stats["totalRequests"]),
        "second_run_duplicates_skipped": second_run["duplicates"],
        "second_run_wall_s": round(second_run["wall_s"], 2),
        "second_run_floor_s": second["floor"]["floor_s"],
        "second_run_floor_bound_by": second["floor"]["floor_bound_by"],
        "usage_runs": [
            usage_run(events, "first", run),
            usage_run(events, "incremental", second_run),
        ],
    }


def usage_run(events: int, kind: str, run: dict[str, Any]) -> dict[str, Any]:
    """One run's AWS usage for bench/cost.py; the run already faced Miro's real 60 s windows."""
    return {
        "events": events,
        "kind": kind,
        "usage": run["usage"],
        "lambda_duration_s_real_windows": round(sum(run["invocation_s"]), 3),
    }


def summarize(sizes: dict[int, dict[str, Any]], events: int, big_events: int | None) -> dict[str, Any]:
    """The result: the 200k size's figures at the top level (today's keys), the 1M size's headline figures
    with a `_1m` suffix and in full under `big_run`, every run's usage, and the targets."""
    main = dict(sizes[events])
    usage_runs = main.pop("usage_runs")
    summary: dict[str, Any] = {
        **main,
        "latency_ms": LATENCY_MS,
        "window_s": WINDOW_S,
        "credits_per_window": CREDITS_PER_WINDOW,
        "floor_method": "ideal-client",
    }
    targets = {
        "efficiency>=0.9": summary["efficiency"] >= TARGET_EFFICIENCY,
        "second_run_writes_exactly_new": summary["second_run_writes_exactly_new"],
    }
    if big_events is not None:
        big = dict(sizes[big_events])
        usage_runs += big.pop("usage_runs")
        summary.update(
            big_events=big_events,
            efficiency_1m=big["efficiency"],
            floor_s_1m=big["floor_s"],
            floor_bound_by_1m=big["floor_bound_by"],
            wall_s_1m=big["wall_s"],
            peak_rss_mb_1m=big["peak_rss_mb"],
            second_run_new_events_1m=big["second_run_new_events"],
            second_run_items_written_1m=big["second_run_items_written"],
            second_run_writes_exactly_new_1m=big["second_run_writes_exactly_new"],
            big_run=big,
        )
        targets["efficiency_1m>=0.9"] = big["efficiency"] >= TARGET_EFFICIENCY
        targets["second_run_writes_exactly_new_1m"] = big["second_run_writes_exactly_new"]
    summary["usage_runs"] = usage_runs
    summary["targets_met"] = targets
    return summary


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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--events", type=int, default=EVENTS)
    parser.add_argument("--big-events", type=int, default=BIG_EVENTS)
    parser.add_argument("--skip-big", action="store_true", help="only --events, not --big-events")
    parser.add_argument("--first-only", action="store_true", help="first run of --events only (profiling)")
    args = parser.parse_args()
    if args.child:
        _child()
        return
    if args.first_only:
        print(json.dumps(run_size(args.events, first_only=True)), flush=True)
        return
    bench_started = time.monotonic()
    big_events = None if args.skip_big else args.big_events
    sizes = {size: run_size(size) for size in (args.events, big_events) if size is not None}
    summary = summarize(sizes, args.events, big_events)
    summary["bench_wall_s"] = round(time.monotonic() - bench_started, 1)
    write_result(NAME, summary)


if __name__ == "__main__":
    main()
