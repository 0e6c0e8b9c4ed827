"""`miro-sync demo` (what `make demo` runs) on a smaller org: every step's check passes, the report is
written, it can run twice in a row with the same outcome, and nothing is left running. The terminal
shows summaries; each function's JSON logs are in <output-dir>/logs/<FunctionLogicalId>.jsonl."""

import json
import re
from pathlib import Path

from tests.fixtures.cli import run_cli

FUNCTIONS = ("MembersSyncFunction", "AuditLogSyncFunction", "BoardWebhookFunction", "OffboardingFunction")


def run_demo(output_dir: Path, *options: str) -> tuple[str, int]:
    result = run_cli(
        "demo", "--members", "300", "--seed", "11", "--output-dir", str(output_dir), *options, timeout_s=600
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert result.servers_left_running() == []
    return result.stdout, result.returncode


def json_log_lines(text: str) -> list[str]:
    """Lines that are a JSON object: Powertools Logger lines and EMF metric blobs."""
    return [line for line in text.splitlines() if line.startswith("{") and line.rstrip().endswith("}")]


def function_logs(output_dir: Path) -> dict[str, list[dict[str, object]]]:
    logs = output_dir / "logs"
    assert {path.stem for path in logs.glob("*.jsonl")} == set(FUNCTIONS)
    return {
        name: [json.loads(line) for line in (logs / f"{name}.jsonl").read_text().splitlines()]
        for name in FUNCTIONS
    }


def test_demo_runs_every_part_and_is_repeatable(tmp_path: Path) -> None:
    first, _ = run_demo(tmp_path)
    report = tmp_path / "inactive-seats.html"
    assert report.is_file()
    assert "<svg" in report.read_text()
    checks = re.findall(r"│ (yes|NO) +│", first)
    assert len(checks) >= 9
    assert set(checks) == {"yes"}
    # the terminal has the summaries, the functions' logs are in their files
    assert json_log_lines(first) == []
    assert "Offboarding requests (10)" in first
    logs = function_logs(tmp_path)
    for name, lines in logs.items():
        assert any("level" in line for line in lines), name  # Powertools Logger
        assert any("_aws" in line for line in lines), name  # EMF metrics
    assert str(tmp_path / "logs") in first
    second, _ = run_demo(tmp_path)
    assert re.findall(r"│ (yes|NO) +│", second) == checks
    # a run writes its own logs (not appended to the last run's)
    assert request_ids(function_logs(tmp_path)).isdisjoint(request_ids(logs))


def request_ids(logs: dict[str, list[dict[str, object]]]) -> set[object]:
    return {
        line["function_request_id"]
        for lines in logs.values()
        for line in lines
        if "function_request_id" in line
    }


def test_verbose_shows_the_logs_as_they_come(tmp_path: Path) -> None:
    shown, _ = run_demo(tmp_path, "--verbose")
    in_files = sum(len(lines) for lines in function_logs(tmp_path).values())
    assert len(json_log_lines(shown)) == in_files
