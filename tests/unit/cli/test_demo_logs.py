"""`miro-sync demo` keeps each function's output (Powertools Logger lines, EMF metric blobs, prints) in
its own file under the output directory; the terminal gets only the demo's own summaries."""

from __future__ import annotations

import json
import logging
import sys
import threading
from pathlib import Path

import pytest

from miro_sync_cli.demo_cmd import _show_command, audit_sync_summary, members_sync_summary
from miro_sync_cli.local import invoke
from miro_sync_cli.local.errors import LocalStackError
from miro_sync_cli.local.invoke import FunctionLogs, function_output, invoke_function, load_handler
from miro_sync_cli.local.template import Template

TEMPLATE = """
Resources:
  Chatty:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: chatty
      Handler: app.handler
      Timeout: 10
"""

HANDLER = """
import json, logging, sys

logger = logging.getLogger("chatty")
logger.propagate = False
logger.setLevel(logging.INFO)
logger.handlers.clear()
logger.addHandler(logging.StreamHandler(sys.stdout))  # as Powertools' Logger does at import


def handler(event, context):
    logger.info(json.dumps({"level": "INFO", "message": "hello", "n": event["n"]}))
    print(json.dumps({"_aws": {"CloudWatchMetrics": []}, "Calls": [1.0]}))  # as Metrics does
    return event["n"]
"""


@pytest.fixture
def template(tmp_path: Path) -> Template:
    (tmp_path / "chatty").mkdir()
    (tmp_path / "chatty" / "app.py").write_text(HANDLER)
    (tmp_path / "template.yaml").write_text(TEMPLATE)
    return Template.load(tmp_path / "template.yaml")


@pytest.fixture(autouse=True)
def fresh_modules() -> None:
    """Each test imports the handler anew, under the stdout it sets up (the demo's process does once)."""
    for path in [path for path in invoke._modules if "chatty" in str(path)]:
        del invoke._modules[path]


def json_lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_functions_logs_and_metrics_go_to_its_file_not_the_terminal(
    template: Template, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logs_dir = tmp_path / "logs"
    with FunctionLogs(logs_dir) as logs:
        assert invoke_function("Chatty", {"n": 1}, {}, template=template) == 1
        assert invoke_function("Chatty", {"n": 2}, {}, template=template) == 2
        print("the demo's own line")
    assert capsys.readouterr().out == "the demo's own line\n"
    lines = json_lines(logs_dir / "Chatty.jsonl")
    assert [line.get("n") for line in lines if "message" in line] == [1, 2]
    assert sum(1 for line in lines if "_aws" in line) == 2
    assert logs.lines == {"Chatty": 4}


def test_verbose_shows_them_too_and_a_new_run_rewrites_the_file(
    template: Template, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "Chatty.jsonl").write_text('{"from": "the last run"}\n')
    with FunctionLogs(tmp_path / "logs", echo=True):
        invoke_function("Chatty", {"n": 3}, {}, template=template)
    shown = capsys.readouterr().out.splitlines()
    assert shown == (tmp_path / "logs" / "Chatty.jsonl").read_text().splitlines()
    assert len(shown) == 2


def test_without_function_logs_output_goes_where_it_always_did(
    template: Template, capsys: pytest.CaptureFixture[str]
) -> None:
    """`miro-sync invoke` opens none: the handler's logs are printed as before."""
    stdout = sys.stdout
    invoke_function("Chatty", {"n": 4}, {}, template=template)
    assert sys.stdout is stdout
    assert next(json.loads(line).get("n") for line in capsys.readouterr().out.splitlines()) == 4


def test_a_handler_served_from_another_thread_logs_to_its_file(template: Template, tmp_path: Path) -> None:
    """A Function URL calls the handler load_handler gave it from a request thread."""
    with FunctionLogs(tmp_path / "logs"):
        handler = load_handler(template, "chatty", "app.handler")
        thread = threading.Thread(target=handler, args=({"n": 5}, None))
        thread.start()
        thread.join()
    assert [line.get("n") for line in json_lines(tmp_path / "logs" / "Chatty.jsonl")] == [5, None]


def test_output_of_other_threads_and_of_nested_attribution(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with FunctionLogs(tmp_path / "logs"):
        with function_output("First"), function_output("Second"):
            print("{}")  # the outer function runs the inner code: still the outer's
        thread = threading.Thread(target=print, args=("from a server thread",))
        thread.start()
        thread.join()
        with pytest.raises(LocalStackError, match="already"), FunctionLogs(tmp_path / "other"):
            pass
    assert (tmp_path / "logs" / "First.jsonl").read_text() == "{}\n"
    assert not (tmp_path / "logs" / "Second.jsonl").exists()
    assert capsys.readouterr().out == "from a server thread\n"


def test_logging_handlers_made_while_capturing_write_through_after_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with FunctionLogs(tmp_path / "logs"):
        handler = logging.StreamHandler(sys.stdout)
    handler.stream.write("after\n")
    assert capsys.readouterr().out == "after\n"


def test_step_summaries() -> None:
    sync = {
        "outcome": "complete",
        "pages": 50,
        "fetched": 5000,
        "written": 4990,
        "unchanged": 10,
        "removed": 2,
        "snapshot": {
            "members": 5000,
            "byStatus": {"active": 4751, "suspended": 249},
            "boards": 4000,
            "fullLicensesAssigned": 2383,
            "fullLicensesPurchased": 2502,
            "inactiveSeats": {"30": 1092, "60": 904, "90": 710},
        },
    }
    first, snapshot = members_sync_summary([{"outcome": "handed over"}, sync], "8.1 s")
    assert first == (
        "[bold]complete[/bold] in 8.1 s, 2 invocations: 5,000 members fetched in 50 pages, "
        "4,990 written, 10 unchanged, 2 removed"
    )
    assert "4,751 active" in snapshot
    assert "2,383 of 2,502 full licenses" in snapshot
    assert snapshot.endswith("1,092 / 904 / 710")
    audit = audit_sync_summary(
        [{"outcome": "complete", "pages": 184, "events_seen": 17047, "stored": 17047, "watermark": "T"}],
        "49.0 s",
    )
    assert audit.startswith("[bold]complete[/bold] in 49.0 s: 17,047 events in 184 pages, 17,047 stored")
    assert members_sync_summary(["not a dict"], "1 s")[0].startswith("[bold]?[/bold]")


def test_commands_are_shown_on_one_line_without_the_token() -> None:
    from rich.console import Console

    console = Console(width=300, record=True)
    emails = [f"leaver{n}@acme.example" for n in range(8)]
    _show_command(console, ("offboard", "suspend", *emails, "--by", "ops@example.com", "--reason", "left us"))
    _show_command(console, ("offboard", "suspend", "a@acme.example", "--token", "secret", "--yes"))
    first, second = console.export_text().splitlines()
    assert first == (
        "$ miro-sync offboard suspend leaver0@acme.example leaver1@acme.example … (8 emails) "
        "--by ops@example.com --reason 'left us'"
    )
    assert second == "$ miro-sync offboard suspend a@acme.example --token *** --yes"
