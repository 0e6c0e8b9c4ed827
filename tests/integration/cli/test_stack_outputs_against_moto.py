"""`--stack NAME` end to end: a stack in moto server's CloudFormation whose outputs and parameters name the
local stack's real tables, queue and secrets (as a deployed stack's would), an org synced from the
emulator; `offboard` and `report` given only --stack (no table or queue variables) act on those."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from miro_emulator import EmulatorConfig, RunningEmulator, start_emulator
from miro_sync_cli import offboard_cmd, report_cmd
from miro_sync_cli.local.sqs_poller import drain_queue
from miro_sync_cli.local.stack import LocalStack
from tests.fixtures.sync import sync_members

pytestmark = pytest.mark.integration

# Every setting a command could read from the environment instead of the stack: unset, so only --stack
# can supply them.
CLEARED = (
    "MEMBERS_TABLE",
    "ACTIONS_TABLE",
    "STATE_TABLE",
    "OFFBOARDING_QUEUE_URL",
    "MIRO_TOKEN",
    "MIRO_TOKEN_SECRET",
    "MIRO_ORG_ID",
    "MIRO_API_URL",
    "MAX_ACTIONS_PER_HOUR",
    "MIRO_SYNC_STACK",
)


@pytest.fixture
def emulator() -> Iterator[RunningEmulator]:
    with start_emulator(EmulatorConfig(members=40, seed=5), port=0) as running:
        yield running


@pytest.fixture
def synced(local_stack: LocalStack, emulator: RunningEmulator) -> LocalStack:
    return sync_members(local_stack, emulator)


def create_fake_stack(
    local: LocalStack, emulator: RunningEmulator, *, leave_out: tuple[str, ...] = ()
) -> str:
    """A CloudFormation stack in moto with only Parameters and Outputs: the outputs pass the local
    stack's physical names through, as the deployed template's Refs would."""
    outputs = {
        "OffboardingQueueUrl": local.queue_url,
        "MembersTableName": local.tables["MembersTable"],
        "ActionsTableName": local.tables["ActionsTable"],
        "StateTableName": local.tables["StateTable"],
        "MiroTokenSecretArn": local.secrets["MiroTokenSecret"],
        "MiroScimTokenSecretArn": local.secrets["MiroScimTokenSecret"],
    }
    outputs = {key: value for key, value in outputs.items() if key not in leave_out}
    parameters = {
        "OrgId": emulator.org_id,
        # the template only allows https; a deployed stack pointing at a proxy would have it here
        "MiroApiUrl": emulator.base_url,
        "MaxActionsPerHour": "25",
    }
    template = {
        "Parameters": {
            **{key: {"Type": "String"} for key in parameters},
            **{f"Out{key}": {"Type": "String"} for key in outputs},
        },
        "Resources": {},
        "Outputs": {key: {"Value": {"Ref": f"Out{key}"}} for key in outputs},
    }
    name = f"miro-sync-{uuid.uuid4().hex[:8]}"
    local.client("cloudformation").create_stack(
        StackName=name,
        TemplateBody=json.dumps(template),
        Parameters=[
            {"ParameterKey": key, "ParameterValue": value}
            for key, value in {**parameters, **{f"Out{k}": v for k, v in outputs.items()}}.items()
        ],
    )
    return name


def _env(local: LocalStack, **extra: str) -> dict[str, str | None]:
    environment: dict[str, str | None] = {
        **local.servers.endpoint_environment(),
        "MIRO_SYNC_OPERATOR": "op@example.com",
        "COLUMNS": "250",
    }
    environment.update(dict.fromkeys(CLEARED))
    environment.update(extra)
    return environment


def _leaver(emulator: RunningEmulator) -> Any:
    return next(
        m
        for m in emulator.state.all_members
        if not m.deleted and m.active and m.role == "organization_internal_user" and m.license == "full"
    )


def test_offboard_with_only_stack_enqueues_and_status_reads_the_actions_table(
    synced: LocalStack, emulator: RunningEmulator
) -> None:
    stack = create_fake_stack(synced, emulator)
    leaver = _leaver(emulator)
    runner = CliRunner()

    plan = runner.invoke(
        offboard_cmd.app,
        ["suspend", leaver.email, "--reason", "left", "--yes", "--stack", stack],
        env=_env(synced),
    )
    assert plan.exit_code == 0, plan.output
    assert "Enqueued 1 of 1" in plan.output
    # the plan read Miro with the stack's token secret, org id and API URL: no "give --token" hint
    assert "could not read Miro" not in plan.output

    report = drain_queue(synced, "OffboardingFunction", synced.queue_url, timeout_s=120)
    assert not report.timed_out
    assert report.function_errors == []

    status = runner.invoke(
        offboard_cmd.app, ["status", "--member", leaver.email], env=_env(synced, MIRO_SYNC_STACK=stack)
    )
    assert status.exit_code == 0, status.output
    assert "done" in status.output
    assert leaver.email in status.output


def test_report_licenses_with_only_stack_matches_the_explicit_tables(
    synced: LocalStack, emulator: RunningEmulator
) -> None:
    stack = create_fake_stack(synced, emulator)
    runner = CliRunner()
    explicit = runner.invoke(
        report_cmd.app,
        [
            "licenses",
            "--format",
            "json",
            "--members-table",
            synced.tables["MembersTable"],
            "--state-table",
            synced.tables["StateTable"],
        ],
        env=_env(synced),
    )
    from_stack = runner.invoke(
        report_cmd.app, ["licenses", "--format", "json", "--stack", stack], env=_env(synced)
    )
    assert explicit.exit_code == 0, explicit.output
    assert from_stack.exit_code == 0, from_stack.output

    def stable(text: str) -> dict[str, Any]:
        document = json.loads(text)
        document.pop("generatedAt", None)
        document.pop("generated_at", None)
        return dict(document)

    assert stable(from_stack.stdout) == stable(explicit.stdout)


def test_explicit_options_and_variables_win_over_the_stack(
    synced: LocalStack, emulator: RunningEmulator
) -> None:
    stack = create_fake_stack(synced, emulator)
    runner = CliRunner()
    by_option = runner.invoke(
        report_cmd.app,
        ["licenses", "--stack", stack, "--members-table", "chosen-by-option"],
        env=_env(synced, MEMBERS_TABLE="chosen-by-variable"),
    )
    assert by_option.exit_code == 2
    assert "chosen-by-option" in by_option.output

    by_variable = runner.invoke(
        report_cmd.app, ["licenses", "--stack", stack], env=_env(synced, MEMBERS_TABLE="chosen-by-variable")
    )
    assert by_variable.exit_code == 2
    assert "chosen-by-variable" in by_variable.output


def test_unknown_stack_and_missing_output_are_named(synced: LocalStack, emulator: RunningEmulator) -> None:
    runner = CliRunner()
    unknown = runner.invoke(
        offboard_cmd.app, ["status", "--outcome", "failed", "--stack", "no-such-stack"], env=_env(synced)
    )
    assert unknown.exit_code == 2
    assert "stack 'no-such-stack' not found" in unknown.output

    partial = create_fake_stack(synced, emulator, leave_out=("ActionsTableName",))
    missing = runner.invoke(
        offboard_cmd.app, ["status", "--outcome", "failed", "--stack", partial], env=_env(synced)
    )
    assert missing.exit_code == 2
    assert "no output ActionsTableName" in missing.output
