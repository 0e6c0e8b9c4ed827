"""Bad input is refused before any table is touched: clear message, non-zero exit."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from miro_sync_cli.report_cmd import app

runner = CliRunner()
NO_TABLES = {"MEMBERS_TABLE": "", "STATE_TABLE": ""}


def flat(output: str) -> str:
    """Click draws usage errors in a box and wraps them: compare the words only."""
    return " ".join(output.replace("│", " ").split())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["inactive", "--format", "xml"], "'xml' is not one of"),
        (["licenses", "--format", "pdf"], "'pdf' is not one of"),
        (["inactive", "--days", "0"], "--days"),
        (["inactive", "--days", "-3"], "--days"),
    ],
)
def test_unknown_format_and_non_positive_days_are_usage_errors(args: list[str], message: str) -> None:
    result = runner.invoke(app, args, env=NO_TABLES)

    assert result.exit_code == 2
    assert message in flat(result.output)
    assert "Invalid value" in flat(result.output)


def test_unreadable_price_file_is_named_in_the_error(tmp_path: Path) -> None:
    prices = tmp_path / "prices.json"
    prices.write_text('{"full": "lots"}')

    result = runner.invoke(app, ["inactive", "--prices", str(prices), "--members-table", "m-t"])

    assert result.exit_code == 2
    assert "price of 'full' must be a number" in result.output


def test_members_table_is_required(tmp_path: Path) -> None:
    result = runner.invoke(app, ["licenses"], env=NO_TABLES)

    assert result.exit_code == 2
    assert "--members-table" in result.output


def test_offboard_with_a_file_format_needs_an_output_file() -> None:
    result = runner.invoke(
        app, ["inactive", "--format", "json", "--offboard", "suspend", "--members-table", "m-t"]
    )

    assert result.exit_code == 2
    assert "--output FILE" in result.output


def test_errors_show_markup_like_names_as_they_are(tmp_path: Path) -> None:
    prices = tmp_path / "[bold]prices.json"
    prices.write_text('{"[/x]": "lots"}')  # rich raised MarkupError printing this licence name

    result = runner.invoke(app, ["inactive", "--prices", str(prices), "--members-table", "m-t"])

    assert result.exit_code == 2, result.output
    assert "'[/x]' is not a license name" in flat(result.output)
    assert "[bold]prices.json" in flat(result.output)


def test_max_sync_age_must_be_positive() -> None:
    result = runner.invoke(
        app, ["inactive", "--offboard", "suspend", "--max-sync-age", "0", "--members-table", "m-t"]
    )

    assert result.exit_code == 2
    assert "--max-sync-age must be a positive number of hours" in flat(result.output)
