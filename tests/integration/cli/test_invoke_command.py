"""`miro-sync invoke` as a user runs it: a real process, real exit codes, nothing left running."""

import json
import time
from pathlib import Path

import pytest

from tests.fixtures.cli import ROOT, run_cli

SAMPLE_TEMPLATE = ROOT / "tests" / "integration" / "local" / "template.yaml"
MIRO = ["--miro-url", "http://127.0.0.1:9", "--org-id", "1", "--token", "t", "--scim-token", "s"]


@pytest.fixture
def event_file(tmp_path: Path) -> Path:
    path = tmp_path / "event.json"
    path.write_text(json.dumps({"rounds": 2}))
    return path


def test_runs_the_handler_and_its_continuations_and_leaves_nothing_running(event_file: Path) -> None:
    result = run_cli(
        "invoke", "SampleFunction", "--event", str(event_file), "--template", str(SAMPLE_TEMPLATE), *MIRO
    )
    assert result.returncode == 0, result.stderr
    documents = [json.loads(chunk) for chunk in result.stdout.replace("}\n{", "}\n\x00{").split("\x00")]
    assert [document["round"] for document in documents] == [1, 2]
    time.sleep(0.5)
    assert result.servers_left_running() == []


def test_a_failing_handler_prints_lambdas_error_and_exits_1(tmp_path: Path) -> None:
    event = tmp_path / "fail.json"
    event.write_text(json.dumps({"fail": True}))
    result = run_cli(
        "invoke", "SampleFunction", "--event", str(event), "--template", str(SAMPLE_TEMPLATE), *MIRO
    )
    assert result.returncode == 1
    assert json.loads(result.stdout)["errorMessage"] == "asked to fail"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            ["invoke", "NoSuchFunction", "--template", str(SAMPLE_TEMPLATE)],
            "unknown function 'NoSuchFunction'",
        ),
        (["invoke", "SampleFunction", "--template", "missing.yaml"], "cannot read template"),
    ],
)
def test_bad_function_or_template_is_named(arguments: list[str], message: str, event_file: Path) -> None:
    result = run_cli(*arguments, "--event", str(event_file), *MIRO)
    assert result.returncode == 2
    assert message in " ".join(result.stderr.split())


def test_missing_and_invalid_event_files_are_named(tmp_path: Path) -> None:
    missing = run_cli(
        "invoke",
        "SampleFunction",
        "--event",
        str(tmp_path / "nope.json"),
        "--template",
        str(SAMPLE_TEMPLATE),
        *MIRO,
    )
    assert missing.returncode == 2
    assert "does not exist" in missing.stderr
    invalid = tmp_path / "invalid.json"
    invalid.write_text("{not json")
    result = run_cli(
        "invoke", "SampleFunction", "--event", str(invalid), "--template", str(SAMPLE_TEMPLATE), *MIRO
    )
    assert result.returncode == 2
    assert "not valid JSON" in " ".join(result.stderr.split())
    array = tmp_path / "array.json"
    array.write_text("[1, 2]")
    result = run_cli(
        "invoke", "SampleFunction", "--event", str(array), "--template", str(SAMPLE_TEMPLATE), *MIRO
    )
    assert result.returncode == 2
    assert "JSON object" in result.stderr
