"""`miro-sync demo` (what `make demo` runs) on a smaller org: every step's check passes, the report is
written, it can run twice in a row with the same outcome, and nothing is left running."""

import re
from pathlib import Path

from tests.fixtures.cli import run_cli


def run_demo(output_dir: Path) -> tuple[str, int]:
    result = run_cli(
        "demo", "--members", "300", "--seed", "11", "--output-dir", str(output_dir), timeout_s=600
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert result.servers_left_running() == []
    return result.stdout, result.returncode


def test_demo_runs_every_part_and_is_repeatable(tmp_path: Path) -> None:
    first, _ = run_demo(tmp_path)
    report = tmp_path / "inactive-seats.html"
    assert report.is_file()
    assert "<svg" in report.read_text()
    checks = re.findall(r"│ (yes|NO) +│", first)
    assert len(checks) >= 8
    assert set(checks) == {"yes"}
    second, _ = run_demo(tmp_path)
    assert re.findall(r"│ (yes|NO) +│", second) == checks
