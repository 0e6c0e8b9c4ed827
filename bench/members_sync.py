"""bench.members_sync: our members sync vs a naive baseline, against the emulator and moto server.

Side by side in one run:
1. 20,000 members (emulator at 50 ms per request, Miro's 100,000 credits per 60 s): wall time of
   our sync and of the baseline a user would write (official `miro-api` client paging members,
   one `put_item` per member), and their ratio;
2. the floor: max(requests x latency, rate-limit floor of the credits spent); efficiency = floor / wall;
3. a re-sync after 1% of the members changed: member items written, write requests;
4. 100,000 members: peak RSS of a process running only the sync (rate limit lifted: memory, not
   time, is measured there).

`python -m bench.members_sync [--members N] [--rss-members N] [--latency-ms MS]`
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from typing import Any

from bench._common import peak_rss_mb_self, run_child, write_result

NAME = "members_sync"
BIG_CREDITS = 10**12


def _stack(stack: ExitStack, prefix: str) -> Any:
    from miro_sync_cli.local.servers import local_servers
    from miro_sync_cli.local.stack import LocalStack

    servers = stack.enter_context(local_servers(prefer_java=False))
    os.environ.update(servers.endpoint_environment())
    local = LocalStack(servers, prefix=prefix).provision()
    stack.callback(local.teardown)
    return local


def _our_sync(
    api_url: str, scim_url: str, org_id: str, token: str, scim_token: str, tables: dict[str, str]
) -> Any:
    import boto3

    from miro_sync.continuation import NoDeadline
    from miro_sync.miro.client import MiroRestClient
    from miro_sync.miro.scim import MiroScimClient
    from miro_sync.secrets import StaticToken
    from miro_sync.store.members import MembersRepository
    from miro_sync.store.state import StateRepository
    from miro_sync.sync.members import MembersSync

    dynamodb = boto3.resource("dynamodb")
    miro = MiroRestClient(api_url, StaticToken(token), org_id)
    scim = MiroScimClient(scim_url, StaticToken(scim_token))
    sync = MembersSync(
        miro=miro,
        scim=scim,
        members=MembersRepository(dynamodb.Table(tables["MembersTable"])),
        state=StateRepository(dynamodb.Table(tables["StateTable"])),
    )

    def run() -> tuple[Any, float]:
        started = time.monotonic()
        result = sync.run(invocation_id=f"bench-{time.time_ns()}", deadline=NoDeadline())
        return result, time.monotonic() - started

    return run, miro, scim


def _baseline(api_url: str, org_id: str, token: str, table_name: str) -> tuple[float, int]:
    """What a user would write: the official client, one put_item per member, no overlap."""
    import boto3
    from miro_api import MiroApi

    api = MiroApi(token)
    api.api_client.configuration.host = api_url
    table = boto3.resource("dynamodb").Table(table_name)
    started = time.monotonic()
    cursor: str | None = None
    written = 0
    while True:
        response = api.enterprise_get_organization_members(org_id, limit=100, cursor=cursor)
        page = response.actual_instance
        for member in page.data:
            item = {
                "memberId": member.id,
                "email": member.email,
                "role": member.role,
                "license": member.license,
                "active": member.active,
                "status": "active" if member.active else "suspended",
                "seat": f"{'active' if member.active else 'suspended'}#{member.license}",
                "lastSeenAt": member.last_activity_at.isoformat() if member.last_activity_at else "0000",
            }
            table.put_item(Item=item)
            written += 1
        cursor = page.cursor
        if not cursor:
            break
    return time.monotonic() - started, written


def _rss_child() -> None:
    """Child mode: sync once against the given Miro and tables, print RSS and counters."""
    config = json.loads(os.environ["BENCH_MEMBERS_CHILD"])
    run, _miro, _scim = _our_sync(
        config["api_url"],
        config["scim_url"],
        config["org_id"],
        config["token"],
        config["scim_token"],
        config["tables"],
    )
    result, wall = run()
    print(json.dumps({"wall_s": wall, "fetched": result.fetched, "peak_rss_mb": peak_rss_mb_self()}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=20_000)
    parser.add_argument("--rss-members", type=int, default=100_000)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--child", action="store_true")
    args = parser.parse_args()
    if args.child:
        _rss_child()
        return

    from miro_emulator import EmulatorConfig, start_emulator

    now = datetime(2026, 3, 1, tzinfo=UTC)
    config = EmulatorConfig(members=args.members, seed=11, latency_ms=args.latency_ms, window_s=60.0, now=now)
    summary: dict[str, Any] = {"members": args.members, "latency_ms": args.latency_ms}
    with ExitStack() as stack:
        local = _stack(stack, "bench-ms")
        # 1. ours (own emulator = own rate-limit budget)
        ours_emulator = stack.enter_context(start_emulator(config, port=0))
        run, miro, scim = _our_sync(
            ours_emulator.base_url,
            ours_emulator.scim_url,
            ours_emulator.org_id,
            ours_emulator.token,
            ours_emulator.scim_token,
            local.tables,
        )
        result, wall = run()
        assert result.outcome == "complete", result
        requests = miro.stats.requests + scim.stats.requests
        credits = miro.stats.credits_spent
        latency_floor = requests * args.latency_ms / 1000
        windows_needed = math.ceil(credits / config.credits_per_window)
        rate_floor = (windows_needed - 1) * config.window_s
        floor = max(latency_floor, rate_floor)
        summary.update(
            wall_s=round(wall, 2),
            requests=requests,
            credits_spent=credits,
            floor_s=round(floor, 2),
            latency_floor_s=round(latency_floor, 2),
            rate_limit_floor_s=round(rate_floor, 2),
            efficiency=round(floor / wall, 3),
            http_429=miro.stats.http_429 + scim.stats.http_429,
            retries=miro.stats.retries + scim.stats.retries,
            first_sync_write_requests=result.write_requests,
        )

        # 3. re-sync after 1% changed (same emulator: its state is the org)
        changed = 0
        for member in ours_emulator.state.all_members[::100]:
            member.license = "basic" if member.license != "basic" else "full"
            changed += 1
        resync, resync_wall = run()
        summary.update(
            resync_changed=changed,
            resync_items_written=resync.written,
            resync_write_requests=resync.write_requests,
            resync_write_fraction=round(resync.written / args.members, 4),
            resync_wall_s=round(resync_wall, 2),
        )

        # 1b. the baseline, against a fresh emulator with the same org and its own budget
        baseline_emulator = stack.enter_context(start_emulator(config, port=0))
        baseline_tables = _fresh_tables(local, "bench-base")
        baseline_wall, baseline_written = _baseline(
            baseline_emulator.base_url,
            baseline_emulator.org_id,
            baseline_emulator.token,
            baseline_tables.tables["MembersTable"],
        )
        summary.update(
            baseline_wall_s=round(baseline_wall, 2),
            baseline_written=baseline_written,
            speedup=round(baseline_wall / wall, 2),
        )

        # 4. peak RSS at --rss-members, in a child process
        rss_config = EmulatorConfig(
            members=args.rss_members, seed=12, latency_ms=0, credits_per_window=BIG_CREDITS, now=now
        )
        rss_emulator = stack.enter_context(start_emulator(rss_config, port=0))
        rss_local = _fresh_tables(local, "bench-rss")
        child = run_child(
            "bench.members_sync",
            ["--child"],
            {
                "BENCH_MEMBERS_CHILD": json.dumps(
                    {
                        "api_url": rss_emulator.base_url,
                        "scim_url": rss_emulator.scim_url,
                        "org_id": rss_emulator.org_id,
                        "token": rss_emulator.token,
                        "scim_token": rss_emulator.scim_token,
                        "tables": rss_local.tables,
                    }
                ),
                **local.servers.endpoint_environment(),
            },
        )
        summary.update(
            rss_members=args.rss_members,
            peak_rss_mb_100k=child["peak_rss_mb"],
            rss_run_wall_s=round(child["wall_s"], 2),
        )
    summary["targets_met"] = {
        "efficiency>=0.9": summary["efficiency"] >= 0.9,
        "speedup>=3": summary["speedup"] >= 3,
        "resync_write_fraction<=0.015": summary["resync_write_fraction"] <= 0.015,
        "peak_rss_mb_100k<=128": summary["peak_rss_mb_100k"] <= 128,
    }
    write_result(NAME, summary)


def _fresh_tables(existing: Any, prefix: str) -> Any:
    """Another set of empty tables on the same servers."""
    from miro_sync_cli.local.stack import LocalStack

    return LocalStack(existing.servers, prefix=prefix).provision()


if __name__ == "__main__":
    main()
