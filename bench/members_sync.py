"""bench.members_sync: our members sync vs a naive baseline, against the emulator and moto server.

Every party runs in its own process: the Miro emulator (`miro-sync emulator`, 50 ms per request),
moto server (DynamoDB, Secrets Manager), our sync (a child that invokes the real handler through
the local stack's `invoke_function`, so its peak RSS is the sync's alone) and the baseline (a child
using the official `miro-api` client, one `put_item` per member). Side by side in one run:

1. `members` (20,000) members: wall seconds of our first sync and of the baseline, and their ratio;
2. the floor and efficiency = floor / our wall (never clamped), from the emulator's own record of the
   run (bench/_recorded.py over bench/floor.py): an ideal client makes the requests our run made that
   Miro charged (429s and pages fetched twice left out), each with its recorded latency, each member
   page after the page whose answer carried its cursor, from our start instant in the same fixed
   windows; the store floor is the members written over an ideal BatchWriteItem writer's rate on the
   same stand-in (bench/_store_rate.py), counted from when the member pages can arrive (a member is
   written only after its page, and the k-th page cannot come before the window whose credits pay for
   it nor before the chain's first k latencies: `pages_store_floor_s`); the floor is the larger
   (`floor_bound_by`: "api", "store" or "pages+store"). The old sustained-rate estimate is kept as
   `sustained_rate_estimate_s` (not a lower bound);
3. a re-sync after 1% of the members changed (suspended through SCIM): items written, write
   requests;
4. `rss-members` (100,000) members: peak RSS of the sync process (ru_maxrss in the child).

The credit window is compressed (`--window-s`, default 10 s instead of Miro's 60 s; the emulator
allows it so that benchmarks can compress time) and stated in the JSON as `window_s`.

`python -m bench.members_sync [--members N] [--rss-members N] [--latency-ms MS] [--window-s S]`
`--rss-only` runs part 4 alone (printed, not written to bench/results); `--rss-trace` adds VmRSS at
the sync's phase boundaries and a VmRSS timeline (sampled every 0.25 s) to its output, to see where
the peak happens. With `--tracemalloc` as well, every mark and sample also carries the traced MB, each
phase end lists the biggest live allocation sites, `BENCH_TRACEMALLOC_FRAMES=N` keeps N frames of them
and `BENCH_SNAPSHOT_AT=s1,s2` adds such a list at those seconds after the child started. Tracing
inflates RSS: read peak_rss_mb only from runs without --tracemalloc.
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
from bench._recorded import operation_spans, read_limits, read_record, run_floor
from bench._store_rate import ideal_batch_write_rate

# The listing whose pages carry the members written (one cursor chain).
MEMBER_PAGES = r"/v2/orgs/[^/?]+/members(\?|$)"
NAME = "members_sync"
CREDITS_PER_WINDOW = 100_000  # Miro's budget per token per window (the emulator's default)
REST_TOKEN = "bench-rest-token"
SCIM_TOKEN = "bench-scim-token"
ORG_ID = "3458764500000000001"
SCIM_PREFIX = "/api/v1/scim"
FUNCTION = "MembersSyncFunction"
# Member pages are cursor-chained: the one chain of Miro requests no client can overlap.
CHAINED_OPERATIONS = ("enterprise-get-organization-members",)
FUNCTION_TIMEOUT_S = 900.0  # template.yaml: MembersSyncFunction Timeout
FUNCTION_MEMORY_MB = 512  # template.yaml: MembersSyncFunction MemorySize
SYNC_MIN_REMAINING_MS = 90_000  # settings/members_sync.py: the default reserve before the timeout
MIRO_WINDOW_S = 60.0


# --- children ---------------------------------------------------------------------------------------


def _vm_rss_mb() -> float:
    """The current resident set size (VmRSS) of this process in MB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    return 0.0


class _RssTrace:
    """Diagnostics only (--rss-trace): VmRSS sampled in a thread, and at the sync's phase boundaries.

    The phase methods are wrapped on the class (the handler imports the same module), so the run
    itself is unchanged; the sampler thread costs well under 1 MB."""

    def __init__(self) -> None:
        import threading

        self.started = time.monotonic()
        self.marks: list[tuple[Any, ...]] = []
        self.samples: list[tuple[float, ...]] = []
        self.mark("child start")
        self._stop = threading.Event()
        self._snapshots_due = [float(at) for at in os.environ.get("BENCH_SNAPSHOT_AT", "").split(",") if at]
        self._snapshot_at = self._snapshots_due.pop(0) if self._snapshots_due else float("inf")
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        from miro_sync.sync import members

        for name in ("_collect_aux", "_list_members", "_apply_removals", "_snapshot"):
            setattr(members.MembersSync, name, self._wrap(name, getattr(members.MembersSync, name)))

    def mark(self, what: str) -> None:
        """VmRSS now; with --tracemalloc also the traced MB now and the traced peak since the last mark."""
        import tracemalloc

        entry: list[Any] = [round(time.monotonic() - self.started, 2), what, _vm_rss_mb()]
        if tracemalloc.is_tracing():
            current, peak = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            entry += [round(current / 2**20, 1), round(peak / 2**20, 1)]
            if what.endswith(" end"):  # what is live then: the biggest allocation sites
                top = tracemalloc.take_snapshot().statistics("traceback")[:8]
                entry.append(
                    [f"{stat.size / 2**20:.1f} MB " + " < ".join(map(str, stat.traceback)) for stat in top]
                )
        self.marks.append(tuple(entry))

    def _wrap(self, name: str, method: Any) -> Any:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            self.mark(f"{name} start")
            try:
                return method(*args, **kwargs)
            finally:
                self.mark(f"{name} end")

        return wrapped

    def _sample(self) -> None:
        import tracemalloc

        while not self._stop.wait(0.25):
            sample: tuple[float, ...] = (round(time.monotonic() - self.started, 2), _vm_rss_mb())
            if tracemalloc.is_tracing():  # with --tracemalloc: the traced (live Python) MB beside it
                sample += (round(tracemalloc.get_traced_memory()[0] / 2**20, 1),)
            self.samples.append(sample)
            if tracemalloc.is_tracing() and sample[0] >= self._snapshot_at:  # BENCH_SNAPSHOT_AT=s[,s...]
                self._snapshot_at = self._snapshots_due.pop(0) if self._snapshots_due else float("inf")
                top = tracemalloc.take_snapshot().statistics("traceback")[:6]
                lines = [
                    f"{stat.size / 2**20:.1f} MB " + " < ".join(map(str, stat.traceback)) for stat in top
                ]
                self.marks.append((sample[0], "snapshot", *sample[1:], lines))

    def report(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join()
        peak = max(self.samples, key=lambda sample: sample[1], default=(0.0, 0.0))
        every = max(1, len(self.samples) // 60)  # a readable timeline: ~60 points
        return {
            "marks": self.marks,
            "sampled_peak": peak,
            "timeline": self.samples[::every],
        }


def _child_sync() -> None:
    """Invoke the real handler (and its self-continuations) until the run completes."""
    import resource

    config = json.loads(os.environ["BENCH_CHILD"])
    trace = bool(config.get("tracemalloc"))
    if trace:
        import tracemalloc

        tracemalloc.start(int(os.environ.get("BENCH_TRACEMALLOC_FRAMES", "1")))
    rss_trace = _RssTrace() if config.get("rss_trace") else None
    from miro_sync_cli.local.invoke import invoke_function

    if rss_trace is not None:
        rss_trace.mark("invoke imported")

    event: dict[str, Any] = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
    timeout_s = float(config.get("timeout_s", FUNCTION_TIMEOUT_S))
    recorder = None
    if config.get("usage"):
        from bench._usage import UsageRecorder

        recorder = UsageRecorder().install()
    started_epoch = time.time()
    started = time.monotonic()
    results = []
    durations = []
    while True:
        invoked = time.monotonic()
        result = invoke_function(FUNCTION, event, config["env"], timeout_s=timeout_s)
        durations.append(time.monotonic() - invoked)
        if recorder is not None:
            recorder.lambda_invocation(durations[-1], FUNCTION_MEMORY_MB)
        results.append(result)
        if result["outcome"] != "continue":
            break
        event = {"source": "miro-sync.continuation", "runId": result["runId"]}
    wall = time.monotonic() - started
    summary = {
        "bench": "sync",
        "started_epoch_s": started_epoch,
        "wall_s": wall,
        "invocation_s": [round(d, 2) for d in durations],
        "peak_rss_mb": peak_rss_mb_self(),
        "cpu_s": round(sum(resource.getrusage(resource.RUSAGE_SELF)[:2]), 2),
        "invocations": len(results),
        "outcome": results[-1]["outcome"],
        "fetched": sum(r["fetched"] for r in results),
        "written": sum(r["written"] for r in results),
        "unchanged": sum(r["unchanged"] for r in results),
        "removed": sum(r["removed"] for r in results),
        "write_requests": sum(r["writeRequests"] for r in results),
        "snapshot_members": (results[-1].get("snapshot") or {}).get("members"),
    }
    if recorder is not None:
        summary["usage"] = recorder.snapshot()
        recorder.uninstall()
    if trace:
        import tracemalloc

        _current, peak = tracemalloc.get_traced_memory()
        top = tracemalloc.take_snapshot().statistics("lineno")[:15]
        summary["tracemalloc_peak_mb"] = round(peak / 2**20, 1)
        print("\n".join(str(line) for line in top), file=sys.stderr)
    if rss_trace is not None:
        summary["rss_trace"] = rss_trace.report()
    print(json.dumps(summary), flush=True)


def _child_baseline() -> None:
    """What a user would write: the official client pages members, one put_item per member."""
    config = json.loads(os.environ["BENCH_CHILD"])
    import boto3
    from miro_api import MiroApi

    api = MiroApi(config["token"])
    api.api_client.configuration.host = config["api_url"]
    table = boto3.resource("dynamodb").Table(config["table"])
    started = time.monotonic()
    cursor: str | None = None
    written = 0
    while True:
        response = api.enterprise_get_organization_members(config["org_id"], limit=100, cursor=cursor)
        page = response.actual_instance
        for member in page.data:
            status = "active" if member.active else "suspended"
            item = {
                "memberId": member.id,
                "email": member.email,
                "role": member.role,
                "license": member.license,
                "active": member.active,
                "status": status,
                "seat": f"{status}#{member.license}",
                "lastSeenAt": (
                    member.last_activity_at.isoformat() if member.last_activity_at else "0000-00-00T00:00:00Z"
                ),
            }
            table.put_item(Item=item)
            written += 1
        cursor = page.cursor
        if not cursor:
            break
    wall = time.monotonic() - started
    print(json.dumps({"bench": "baseline", "wall_s": wall, "written": written}), flush=True)


# --- parent -----------------------------------------------------------------------------------------


class Emulator:
    def __init__(self, stack: ExitStack, *, members: int, seed: int, latency_ms: float, window_s: float):
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.scim_url = self.base_url + SCIM_PREFIX
        command = [
            sys.executable,
            "-m",
            "miro_sync_cli.main",
            "emulator",
            "--port",
            str(self.port),
            "--members",
            str(members),
            "--seed",
            str(seed),
            "--latency-ms",
            str(latency_ms),
            "--window-s",
            str(window_s),
            "--org-id",
            ORG_ID,
            "--token",
            REST_TOKEN,
            "--scim-token",
            SCIM_TOKEN,
        ]
        self._close = stack.enter_context(ExitStack())
        self._close.enter_context(server_process(command, f"{self.base_url}/_emulator/stats", timeout_s=600))

    def stop(self) -> None:
        self._close.close()

    def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = http_json("GET", f"{self.base_url}/_emulator/stats")
        return stats

    def reset_stats(self) -> None:
        http_json("POST", f"{self.base_url}/_emulator/reset-stats")


def _stack(servers: Any, emulator: Emulator, prefix: str) -> Any:
    from miro_sync_cli.local.stack import LocalStack, MiroConnection

    local = LocalStack(servers, prefix=prefix).provision()
    local.connect_miro(MiroConnection(emulator.base_url, emulator.scim_url, ORG_ID, REST_TOKEN, SCIM_TOKEN))
    return local


def _sync_env(local: Any) -> dict[str, str]:
    env: dict[str, str] = local.function_env(FUNCTION)
    # Logs at WARNING: the run's metrics still print; per-invocation info lines are not the subject.
    env["POWERTOOLS_LOG_LEVEL"] = os.environ.get("BENCH_LOG_LEVEL", "WARNING")
    return env


def _run_sync(
    env: dict[str, str],
    *,
    trace: bool = False,
    rss_trace: bool = False,
    timeout_s: float = FUNCTION_TIMEOUT_S,
    usage: bool = False,
) -> dict[str, Any]:
    config = {
        "env": env,
        "tracemalloc": trace,
        "rss_trace": rss_trace,
        "timeout_s": timeout_s,
        "usage": usage,
    }
    return run_child("bench.members_sync", ["--child", "sync"], {"BENCH_CHILD": json.dumps(config)})


def _store_probe(servers: Any, local: Any) -> Callable[[], float]:
    """The ideal batch writer's rate on this stack's stand-in, writing copies of the members table's items
    into a table with its keys and indexes: measured once, after the first run filled the table."""
    measured: list[float] = []

    def rate() -> float:
        if not measured:
            measured.append(
                ideal_batch_write_rate(servers.dynamodb_url, like_table=local.tables["MembersTable"])
            )
        return measured[0]

    return rate


def _measured_run(
    emulator: Emulator,
    env: dict[str, str],
    store_rate: Callable[[], float],
    **options: Any,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One sync run (continuations included) and its ideal-client floor from the emulator's record."""
    emulator.reset_stats()
    limits = read_limits(emulator.base_url)
    run = _run_sync(env, **options)
    record = read_record(emulator.base_url)
    dump = os.environ.get("BENCH_RECORD_DUMP")
    if dump:  # diagnostics: the emulator's record and the run, to see where the run lost time
        Path(dump).write_text(json.dumps({"run": run, "limits": limits, "record": record}))
    measured = run_floor(
        record,
        limits,
        run["started_epoch_s"],
        run["wall_s"],
        items_written=run["written"],
        store_rate_items_per_s=store_rate(),
        item_listing=MEMBER_PAGES,
        single_chain=True,
    )
    spans = operation_spans(record, run["started_epoch_s"])
    return run, {
        **measured,
        **_floor(emulator.stats(), 0.0, 0.0, counters_only=True),
        "operation_spans_s": spans,
    }


def _floor(
    stats: dict[str, Any], latency_ms: float, window_s: float, *, counters_only: bool = False
) -> dict[str, Any]:
    """The emulator's counters, and (unless `counters_only`) the old sustained-rate estimate, which is
    not a lower bound (a run that starts late in a window spends two windows' budget in little more than
    one): kept only as `sustained_rate_estimate_s` for comparison with earlier results."""
    requests: dict[str, int] = stats["requests"]
    pages = sum(requests.values())
    counters = {
        "pages": pages,
        "pages_by_operation": requests,
        "credits_spent": int(stats["creditsSpent"]),
        "http_429": int(stats["totalRateLimited"]),
    }
    if counters_only:
        return counters
    chained = sum(requests.get(name, 0) for name in CHAINED_OPERATIONS)
    estimate = max(chained * latency_ms / 1000, counters["credits_spent"] / CREDITS_PER_WINDOW * window_s)
    return {**counters, "sustained_rate_estimate_s": round(estimate, 2)}


def _suspend_one_percent(emulator: Emulator, members: int) -> int:
    """Change 1% of the members the way an admin would: suspend them through SCIM."""
    truth = http_json("GET", f"{emulator.base_url}/_emulator/state/members")
    rows = truth["data"] if isinstance(truth, dict) else truth
    candidates = [row for row in rows if row.get("scimId") and row.get("active")]
    wanted = max(1, members // 100)
    step = max(1, len(candidates) // wanted)
    chosen = candidates[::step][:wanted]
    body = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "Replace", "path": "active", "value": False}],
    }
    headers = {"Authorization": f"Bearer {SCIM_TOKEN}"}
    changed = 0
    for row in chosen:
        for _attempt in range(60):
            try:
                http_json("PATCH", f"{emulator.scim_url}/Users/{row['scimId']}", body, headers)
                changed += 1
                break
            except Exception as error:
                if getattr(error, "code", None) != 429:
                    raise
                time.sleep(0.5)
    return changed


def _compare(args: argparse.Namespace, stack: ExitStack, servers: Any, summary: dict[str, Any]) -> bool:
    """Parts 1-3 (and 1b). False when --ours-only stopped after part 1."""
    # 1 + 2. our first sync
    ours = Emulator(stack, members=args.members, seed=11, latency_ms=args.latency_ms, window_s=args.window_s)
    local = _stack(servers, ours, "bench-ours")
    env = _sync_env(local)
    first, floor = _measured_run(ours, env, _store_probe(servers, local))
    if first["outcome"] != "complete":
        raise RuntimeError(f"first sync did not complete: {first}")
    summary.update(
        wall_s=round(first["wall_s"], 2),
        **floor,
        first_sync_items_written=first["written"],
        first_sync_write_requests=first["write_requests"],
        first_sync_peak_rss_mb=first["peak_rss_mb"],
        first_sync_cpu_s=first["cpu_s"],
    )

    if args.ours_only:
        print(first.get("stderr_tail", ""), file=sys.stderr)
        return False

    # 3. re-sync after 1% changed (same emulator: its state is the org)
    changed = _suspend_one_percent(ours, args.members)
    ours.reset_stats()
    resync = _run_sync(env)
    resync_stats = ours.stats()
    summary.update(
        resync_changed=changed,
        resync_items_written=resync["written"],
        resync_write_requests=resync["write_requests"],
        resync_write_fraction=round(resync["written"] / args.members, 4),
        resync_wall_s=round(resync["wall_s"], 2),
        resync_pages=sum(resync_stats["requests"].values()),
        resync_credits_spent=resync_stats["creditsSpent"],
    )
    ours.stop()

    # 1b. the baseline: a fresh emulator with the same org and its own budget, empty tables
    baseline_emulator = Emulator(
        stack, members=args.members, seed=11, latency_ms=args.latency_ms, window_s=args.window_s
    )
    baseline_local = _stack(servers, baseline_emulator, "bench-base")
    baseline_emulator.reset_stats()
    baseline = run_child(
        "bench.members_sync",
        ["--child", "baseline"],
        {
            "BENCH_CHILD": json.dumps(
                {
                    "api_url": baseline_emulator.base_url,
                    "org_id": ORG_ID,
                    "token": REST_TOKEN,
                    "table": baseline_local.tables["MembersTable"],
                }
            ),
            **servers.endpoint_environment(),
        },
    )
    baseline_stats = baseline_emulator.stats()
    baseline_emulator.stop()
    summary.update(
        baseline_wall_s=round(baseline["wall_s"], 2),
        baseline_written=baseline["written"],
        baseline_pages=sum(baseline_stats["requests"].values()),
        baseline_http_429=baseline_stats["totalRateLimited"],
        speedup=round(baseline["wall_s"] / first["wall_s"], 2),
    )
    return True


def _measure_rss(args: argparse.Namespace, stack: ExitStack, servers: Any, summary: dict[str, Any]) -> None:
    """Part 4: peak RSS of the sync process at --rss-members."""
    started = time.monotonic()
    rss_emulator = Emulator(
        stack, members=args.rss_members, seed=12, latency_ms=args.latency_ms, window_s=args.window_s
    )
    rss_local = _stack(servers, rss_emulator, "bench-rss")
    setup_s = time.monotonic() - started
    rss, rss_floor = _measured_run(
        rss_emulator,
        _sync_env(rss_local),
        _store_probe(servers, rss_local),
        trace=args.tracemalloc,
        rss_trace=args.rss_trace,
    )
    rss_emulator.stop()
    summary.update(
        rss_members=args.rss_members,
        efficiency_100k=rss_floor["efficiency"],
        peak_rss_mb_100k=rss["peak_rss_mb"],
        rss_run_wall_s=round(rss["wall_s"], 2),
        rss_run_cpu_s=rss["cpu_s"],
        rss_run_setup_s=round(setup_s, 1),
        rss_run_fetched=rss["fetched"],
        rss_run_written=rss["written"],
        rss_run_invocations=rss["invocations"],
        rss_run_floor=rss_floor,
    )
    if args.tracemalloc:
        summary["rss_tracemalloc_peak_mb"] = rss.get("tracemalloc_peak_mb")
        print(rss.get("stderr_tail", ""), file=sys.stderr)
    if args.rss_trace:
        summary["rss_trace"] = rss.get("rss_trace")


def _measure_at_scale(
    args: argparse.Namespace, stack: ExitStack, servers: Any, summary: dict[str, Any]
) -> None:
    """Part 5: --big-members (500,000) across continuations, with the function's real memory and its real
    timeout compressed by the same factor as the windows (900 s x window_s / 60 s), so that the run
    continues as often as it would against the real Miro."""
    started = time.monotonic()
    emulator = Emulator(
        stack, members=args.big_members, seed=13, latency_ms=args.latency_ms, window_s=args.window_s
    )
    local = _stack(servers, emulator, "bench-big")
    setup_s = time.monotonic() - started
    timeout_s = args.big_timeout_s or FUNCTION_TIMEOUT_S * args.window_s / MIRO_WINDOW_S
    env = _sync_env(local)
    # The time an invocation keeps in reserve before its timeout, compressed by the same factor.
    reserve_ms = max(1_000, int(SYNC_MIN_REMAINING_MS * timeout_s / FUNCTION_TIMEOUT_S))
    env["SYNC_MIN_REMAINING_MS"] = str(reserve_ms)
    run, measured = _measured_run(emulator, env, _store_probe(servers, local), timeout_s=timeout_s)
    emulator.stop()
    summary.update(
        big_members=args.big_members,
        efficiency_500k=measured["efficiency"],
        peak_rss_mb_500k=run["peak_rss_mb"],
        duplicate_pages_500k=measured["duplicate_pages"],
        written_500k=run["written"],
        written_exactly_once_500k=run["written"] == args.big_members == run["snapshot_members"],
        big_run_outcome=run["outcome"],
        big_run_wall_s=round(run["wall_s"], 2),
        big_run_invocations=run["invocations"],
        big_run_invocation_s=run["invocation_s"],
        big_run_timeout_s=timeout_s,
        big_run_reserve_ms=reserve_ms,
        # The local runner does not stop a handler at its timeout (Lambda does): count the invocations
        # that would have been killed (a second of grace for the request in flight when time ran out).
        big_run_over_timeout=sum(1 for seconds in run["invocation_s"] if seconds > timeout_s + 1.0),
        big_run_setup_s=round(setup_s, 1),
        big_run_cpu_s=run["cpu_s"],
        big_run_floor=measured,
    )


def _measure_usage(args: argparse.Namespace, summary: dict[str, Any]) -> None:
    """Part 6: what runs cost in AWS terms, for bench.cost: capacity units, requests, Lambda seconds of a
    first sync and of a re-sync after 1% changed, at two sizes, on DynamoDB Local (moto server reports
    made-up capacity). The Lambda time at Miro's real 60 s windows is the measured wall plus what the
    real windows add to the ideal client's floor (the same requests, the same limits, 60 s windows)."""
    from miro_sync_cli.local.servers import local_servers

    runs: list[dict[str, Any]] = []
    for name in [name for name in os.environ if name.startswith("AWS_ENDPOINT_URL")]:
        del os.environ[name]  # the moto server of the parts before is gone; a set URL would replace both
    with ExitStack() as stack:
        servers = stack.enter_context(local_servers())
        if not servers.uses_dynamodb_local:
            summary["usage_runs_note"] = "DynamoDB Local unavailable: no usage measured"
            return
        os.environ.update(servers.endpoint_environment())  # the children's AWS endpoints
        for members in args.usage_members:
            emulator = Emulator(
                stack, members=members, seed=21, latency_ms=args.latency_ms, window_s=args.window_s
            )
            usage_local = _stack(servers, emulator, f"bench-usage-{members}")
            store_rate = _store_probe(servers, usage_local)
            env = usage_local.function_env(FUNCTION)
            env.update(servers.endpoint_environment())
            env["POWERTOOLS_LOG_LEVEL"] = "WARNING"
            for kind in ("first", "resync"):
                changed = _suspend_one_percent(emulator, members) if kind == "resync" else members
                run, measured = _measured_run(emulator, env, store_rate, usage=True)
                stretch = max(0.0, measured["api_floor_s_real_windows"] - measured["api_floor_s"])
                runs.append(
                    {
                        "members": members,
                        "kind": kind,
                        "changed_fraction": round(changed / members, 4),
                        "usage": run["usage"],
                        "lambda_duration_s_real_windows": round(sum(run["invocation_s"]) + stretch, 2),
                        "items_written": run["written"],
                    }
                )
            emulator.stop()
    summary["usage_runs"] = runs
    summary["usage_store"] = "DynamoDB Local"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=20_000)
    parser.add_argument("--rss-members", type=int, default=100_000)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--window-s", type=float, default=10.0)
    parser.add_argument("--tracemalloc", action="store_true", help="tracemalloc top lines of the RSS run")
    parser.add_argument("--skip-rss", action="store_true")
    parser.add_argument("--big-members", type=int, default=500_000)
    parser.add_argument("--big-timeout-s", type=float, default=None, help="default: 900 x window_s / 60")
    parser.add_argument("--usage-members", type=int, nargs="+", default=[2_000, 10_000])
    parser.add_argument("--skip-usage", action="store_true", help="skip part 6 (AWS usage for bench.cost)")
    parser.add_argument(
        "--skip-big", action="store_true", help="skip part 5 (--big-members across continuations)"
    )
    parser.add_argument("--rss-only", action="store_true", help="only part 4, the peak RSS at --rss-members")
    parser.add_argument(
        "--rss-trace", action="store_true", help="VmRSS at the phase boundaries and over time (RSS run)"
    )
    parser.add_argument("--ours-only", action="store_true", help="only our first sync (profiling)")
    parser.add_argument("--child", choices=("sync", "baseline"))
    args = parser.parse_args()
    if args.child == "sync":
        _child_sync()
        return
    if args.child == "baseline":
        _child_baseline()
        return

    from miro_sync_cli.local.servers import LambdaInvokeApi, LocalServers

    summary: dict[str, Any] = {
        "members": args.members,
        "latency_ms": args.latency_ms,
        "window_s": args.window_s,
        "credits_per_window": CREDITS_PER_WINDOW,
    }
    bench_started = time.monotonic()
    with ExitStack() as stack:
        moto_port = free_port()
        moto_url = f"http://127.0.0.1:{moto_port}"
        moto_server = str(Path(sys.executable).with_name("moto_server"))
        stack.enter_context(server_process([moto_server, "-H", "127.0.0.1", "-p", str(moto_port)], moto_url))
        lambda_api = LambdaInvokeApi().start()
        stack.callback(lambda_api.stop)
        servers = LocalServers(moto_url, moto_url, lambda_api, uses_dynamodb_local=False)
        os.environ.update(servers.endpoint_environment())

        if not args.rss_only and not _compare(args, stack, servers, summary):
            print(json.dumps(summary), flush=True)  # --ours-only: printed, not written
            return
        if not args.skip_rss:
            _measure_rss(args, stack, servers, summary)
        if not args.skip_big and not args.rss_only:
            _measure_at_scale(args, stack, servers, summary)
    if not args.skip_usage and not args.rss_only:
        _measure_usage(args, summary)
    summary["bench_wall_s"] = round(time.monotonic() - bench_started, 1)
    if args.rss_only:
        print(json.dumps(summary), flush=True)  # one part only: printed, not written over the full result
        return
    summary["floor_method"] = "ideal-client"
    summary["targets_met"] = {
        "efficiency>=0.9": summary["efficiency"] >= 0.9,
        "speedup>=3": summary["speedup"] >= 3,
        "resync_write_fraction<=0.015": summary["resync_write_fraction"] <= 0.015,
        "efficiency_100k>=0.9": summary.get("efficiency_100k", 0) >= 0.9,
        "peak_rss_mb_100k<=128": summary.get("peak_rss_mb_100k", 1e9) <= 128,
        "efficiency_500k>=0.85": summary.get("efficiency_500k", 0) >= 0.85,
        "peak_rss_mb_500k<=256": summary.get("peak_rss_mb_500k", 1e9) <= 256,
        "duplicate_pages_500k==0": summary.get("duplicate_pages_500k") == 0,
        "written_exactly_once_500k": summary.get("written_exactly_once_500k") is True,
        "no_invocation_over_timeout_500k": summary.get("big_run_over_timeout") == 0,
    }
    write_result(NAME, summary)


if __name__ == "__main__":
    main()
