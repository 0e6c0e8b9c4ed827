"""Board webhook throughput and latency through the local Function URL adapter into moto server.

Side by side in one run: the real BoardWebhookFunction handler, and a baseline handler that does the
least any webhook consumer must (parse the JSON, one put_item), served by the same adapter. Requests
alternate between the two in rounds so drift on a shared machine hits both alike.
`python -m bench.webhook` writes bench/results/webhook.json and prints it as one line."""

from __future__ import annotations

import importlib.util
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import httpx

from miro_sync.miro.models import OrgMember
from miro_sync.store.members import MembersRepository
from miro_sync.store.subscriptions import SubscriptionRecord, SubscriptionsRepository
from miro_sync.webhooks.receiver import hash_secret
from miro_sync_cli.local.function_url import serve_function_url
from miro_sync_cli.local.servers import local_servers
from miro_sync_cli.local.stack import LocalStack

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "webhook.json"
REQUESTS = int(os.environ.get("BENCH_WEBHOOK_REQUESTS", "2000"))
ROUNDS = 4
WARM_UP = 50
SECRET = "bench-secret-0123456789-abcdefghijklmnopqrstu"
BOARD = "uXjVBench00="
ACTOR = "3458764517517852417"
TARGET_RATIO = 1.5


def _load_handler() -> Callable[[dict[str, Any], Any], Any]:
    source = ROOT / "functions" / "board_webhook" / "app.py"
    spec = importlib.util.spec_from_file_location("bench_board_webhook_app", source)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    handler: Callable[[dict[str, Any], Any], Any] = module.handler
    return handler


def _baseline(table_name: str) -> Callable[[dict[str, Any], Any], Any]:
    table = boto3.resource("dynamodb").Table(table_name)

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        payload = json.loads(event["body"])
        change = payload["event"]
        table.put_item(
            Item={
                "boardId": change["boardId"],
                "sk": f"{payload['eventTime']}#{change['item']['id']}#{change['type']}",
                "body": event["body"],
            }
        )
        return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": "{}"}

    return handler


def _event_time(sequence: int) -> str:
    """Ten events a second, in order: a busy board as Miro would report it."""
    minutes, tenths = divmod(sequence, 600)
    return f"2025-11-20T{10 + minutes // 60 % 12:02d}:{minutes % 60:02d}:{tenths // 10:02d}.{tenths % 10}00Z"


def _event_body(sequence: int) -> bytes:
    return json.dumps(
        {
            "eventType": "board_subscription",
            "eventTime": _event_time(sequence),
            "appId": "3458764598123456789",
            "event": {
                "boardId": BOARD,
                "type": "update",
                "item": {
                    "id": f"3458764612{sequence:09d}",
                    "type": "sticky_note",
                    "createdBy": {"id": ACTOR, "type": "user"},
                    "modifiedBy": {"id": ACTOR, "type": "user"},
                    "data": {"content": "<p>bench</p>", "shape": "square"},
                    "position": {"x": 1.0, "y": 2.0},
                },
            },
        }
    ).encode()


def _measure(client: httpx.Client, url: str, start: int, count: int, latencies: list[float]) -> float:
    began = time.perf_counter()
    for sequence in range(start, start + count):
        sent = time.perf_counter()
        response = client.post(
            url, content=_event_body(sequence), headers={"content-type": "application/json"}
        )
        latencies.append((time.perf_counter() - sent) * 1000)
        if response.status_code != 200:
            raise RuntimeError(
                f"{url.split('/board-events/')[0]} answered {response.status_code}: {response.text}"
            )
    return time.perf_counter() - began


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> dict[str, Any]:
    with local_servers(prefer_java=False) as servers:
        stack = LocalStack(
            servers, parameter_overrides={"EnableWebhook": "true", "OrgId": "3458764517517852417"}
        )
        stack.provision()
        try:
            env = stack.function_env("BoardWebhookFunction")
            os.environ.update(env)
            resource = boto3.resource("dynamodb")
            SubscriptionsRepository(resource.Table(stack.tables["StateTable"])).put(
                SubscriptionRecord(
                    secret_hash=hash_secret(SECRET),
                    board_id=BOARD,
                    status="enabled",
                    created_at="2025-11-20T00:00:00.000Z",
                    updated_at="2025-11-20T00:00:00.000Z",
                    subscription_id="bench",
                )
            )
            MembersRepository(resource.Table(stack.tables["MembersTable"])).upsert_from_miro(
                OrgMember.model_validate(
                    {
                        "id": ACTOR,
                        "email": "bench@example.com",
                        "role": "organization_internal_user",
                        "license": "full",
                        "active": True,
                    }
                ),
                None,
            )
            ours: list[float] = []
            baseline: list[float] = []
            ours_seconds = baseline_seconds = 0.0
            with (
                serve_function_url(_load_handler(), env) as ours_server,
                serve_function_url(_baseline(stack.tables["BoardEventsTable"]), env) as baseline_server,
                httpx.Client(timeout=30) as client,
            ):
                ours_url = f"{ours_server.url}/board-events/{SECRET}"
                baseline_url = f"{baseline_server.url}/board-events/{SECRET}"
                _measure(client, ours_url, 10_000_000, WARM_UP, [])
                _measure(client, baseline_url, 20_000_000, WARM_UP, [])
                per_round = REQUESTS // ROUNDS
                for round_number in range(ROUNDS):
                    start = round_number * per_round
                    ours_seconds += _measure(client, ours_url, start, per_round, ours)
                    baseline_seconds += _measure(client, baseline_url, 5_000_000 + start, per_round, baseline)
        finally:
            stack.teardown()
    p99, baseline_p99 = _percentile(ours, 0.99), _percentile(baseline, 0.99)
    result = {
        "bench": "webhook",
        "requests": len(ours),
        "rps": round(len(ours) / ours_seconds, 1),
        "p50_ms": round(statistics.median(ours), 3),
        "p99_ms": round(p99, 3),
        "baseline_requests": len(baseline),
        "baseline_rps": round(len(baseline) / baseline_seconds, 1),
        "baseline_p50_ms": round(statistics.median(baseline), 3),
        "baseline_p99_ms": round(baseline_p99, 3),
        "overhead_ratio": round(p99 / baseline_p99, 3),
        "target_ratio": TARGET_RATIO,
        "meets_target": p99 <= TARGET_RATIO * baseline_p99,
        "dynamodb": "moto server",
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
