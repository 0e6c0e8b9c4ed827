"""Turns bench/results/*.json (one `make bench` run) into the Markdown table the README quotes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"

# benchmark -> [(label, key, target text)]
ROWS: dict[str, list[tuple[str, str, str]]] = {
    "cold_start": [
        ("baseline import+init (boto3 + Logger), ms", "baseline_ms", ""),
        (
            "framework baseline (botocore, Logger, Metrics, Event Handler, pydantic), ms",
            "framework_baseline_ms",
            "",
        ),
        ("webhook / framework baseline", "webhook_vs_framework", "<= 1.1x"),
        ("worst other handler / baseline", "worst_other_ratio", "<= 1.6x"),
        ("layer size, MB", "layer_mb", "<= 15"),
    ],
    "members_sync": [
        ("members", "members", ""),
        ("our sync, s", "wall_s", ""),
        ("naive baseline (miro-api + put_item), s", "baseline_wall_s", ""),
        ("speedup", "speedup", ">= 3x"),
        ("floor (ideal client; bound by), s", "floor_s|floor_bound_by", ""),
        ("efficiency (floor / wall)", "efficiency", ">= 0.9"),
        ("re-sync after 1% changed: fraction written", "resync_write_fraction", "<= 0.015"),
        ("100k members: efficiency", "efficiency_100k", ">= 0.9"),
        ("peak RSS at 100k members, MB", "peak_rss_mb_100k", "<= 128"),
        ("500k members across continuations: efficiency", "efficiency_500k", ">= 0.85"),
        ("500k: peak RSS, MB / pages fetched twice", "peak_rss_mb_500k|duplicate_pages_500k", "<= 256 / 0"),
        ("500k: every member written exactly once", "written_exactly_once_500k", "true"),
        ("HTTP 429s", "http_429", ""),
    ],
    "audit_sync": [
        ("events", "events", ""),
        ("wall, s", "wall_s", ""),
        ("floor (ideal client; bound by), s", "floor_s|floor_bound_by", ""),
        ("efficiency", "efficiency", ">= 0.9"),
        ("1M events: efficiency", "efficiency_1m", ">= 0.9"),
        ("peak RSS, MB", "peak_rss_mb", "<= 128"),
        ("second run: items written (1,000 new events)", "second_run_items_written", "= 1000"),
        ("second run: requests", "second_run_requests", ""),
    ],
    "webhook": [
        ("requests", "requests", ""),
        ("requests/s", "rps", ""),
        ("p50 / p99, ms", "p50_ms|p99_ms", ""),
        ("baseline p99, ms", "baseline_p99_ms", ""),
        ("overhead (p99 / baseline p99)", "overhead_ratio", "<= 1.5"),
    ],
    "offboarding": [
        ("requests (distinct)", "requests|distinct_requests", ""),
        ("wall, s", "wall_s", ""),
        ("rate-limit floor (binding budget), s", "floor_s|binding_budget", ""),
        ("efficiency", "efficiency", ">= 0.9"),
        ("effects / lost", "effects|lost", "one per distinct request / 0"),
        ("boards handed over / sessions reset", "boards_handed_over|sessions_reset", "all / one each"),
    ],
    "cost": [
        ("USD per month at 10k / 100k / 500k members", "usd_per_month", "<= 5 at 100k"),
    ],
    "emulator_scale": [
        ("members / audit events", "members|audit_events", "100k / 1M"),
        ("ready, s", "ready_s", "seconds"),
        ("memory, MB", "rss_growth_mb", "well under 1024"),
    ],
}


def _value(result: dict[str, Any], key: str) -> str:
    parts = [result.get(part, "-") for part in key.split("|")]
    if len(parts) == 1 and isinstance(parts[0], dict):
        return " / ".join(str(value) for value in parts[0].values())
    return " / ".join(str(part) for part in parts)


def main() -> None:
    lines = ["| benchmark | figure | measured | target |", "|---|---|---|---|"]
    for name, rows in ROWS.items():
        path = RESULTS / f"{name}.json"
        if not path.is_file():
            continue
        result = json.loads(path.read_text())
        for label, key, target in rows:
            lines.append(f"| {name} | {label} | {_value(result, key)} | {target} |")
    table = "\n".join(lines) + "\n"
    (RESULTS / "SUMMARY.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
