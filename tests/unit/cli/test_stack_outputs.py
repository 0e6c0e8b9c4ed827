"""`--stack NAME`: a deployed stack's outputs and parameters, read through a fake CloudFormation client."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError, NoCredentialsError, NoRegionError
from typer.testing import CliRunner

from miro_sync_cli import offboard_cmd, report_cmd, subscribe_cmd
from miro_sync_cli.stack_outputs import (
    OUTPUTS,
    PARAMETERS,
    STACK_ENVVAR,
    StackAccessError,
    StackError,
    StackNotFoundError,
    StackOutputMissingError,
    fill_from_stack,
    resolve_stack,
)

QUEUE = "https://sqs.eu-west-1.amazonaws.com/123456789012/prod-OffboardingQueue-Ab1"
TOKEN_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:MiroTokenSecret-x-AbCdEf"
SCIM_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:MiroScimTokenSecret-y-GhIjKl"

OUTPUT_VALUES = {
    "OffboardingQueueUrl": QUEUE,
    "OffboardingDeadLetterQueueUrl": QUEUE + "-dlq",
    "OffboardingRefusedQueueUrl": QUEUE + "-refused",
    "MembersTableName": "prod-MembersTable-1",
    "AuditTableName": "prod-AuditTable-1",
    "BoardEventsTableName": "prod-BoardEventsTable-1",
    "ActionsTableName": "prod-ActionsTable-1",
    "StateTableName": "prod-StateTable-1",
    "IdempotencyTableName": "prod-IdempotencyTable-1",
    "MiroTokenSecretArn": TOKEN_ARN,
    "MiroScimTokenSecretArn": SCIM_ARN,
    "MembersSyncFunctionName": "prod-members-sync",
    "AuditLogSyncFunctionName": "prod-audit-log-sync",
    "AlarmTopicArn": "arn:aws:sns:eu-west-1:123456789012:prod-AlarmTopic",
}
PARAMETER_VALUES = {
    "OrgId": "3458764517517852417",
    "MiroApiUrl": "https://api.miro.com",
    "MiroScimUrl": "https://miro.com/api/v1/scim",
    "MaxActionsPerHour": "25",
    "InactiveDays": "90",
    "ResetSessions": "true",
    "EnableWebhook": "false",
    "ProtectedEmails": "ceo@example.com",
}


def _stack(
    name: str = "prod", outputs: dict[str, str] | None = None, status: str = "UPDATE_COMPLETE"
) -> dict[str, Any]:
    return {
        "StackName": name,
        "StackId": f"arn:aws:cloudformation:eu-west-1:123456789012:stack/{name}/1",
        "StackStatus": status,
        "Outputs": [
            {"OutputKey": key, "OutputValue": value, "Description": "..."}
            for key, value in (OUTPUT_VALUES if outputs is None else outputs).items()
        ],
        "Parameters": [
            {"ParameterKey": key, "ParameterValue": value} for key, value in PARAMETER_VALUES.items()
        ],
    }


class _Meta:
    region_name = "eu-west-1"


class FakeCloudFormation:
    """DescribeStacks only, as boto3's client answers it."""

    meta = _Meta()

    def __init__(self, stacks: list[dict[str, Any]] | None = None, error: Exception | None = None) -> None:
        self.stacks = {stack["StackName"]: stack for stack in (stacks if stacks is not None else [_stack()])}
        self.error = error
        self.calls: list[str] = []

    def describe_stacks(self, *, StackName: str) -> dict[str, Any]:  # noqa: N803 - boto3's spelling
        self.calls.append(StackName)
        if self.error is not None:
            raise self.error
        if StackName not in self.stacks:
            raise _client_error("ValidationError", f"Stack with id {StackName} does not exist")
        return {"Stacks": [self.stacks[StackName]]}


def _client_error(code: str, message: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "DescribeStacks")


def test_every_output_and_parameter_maps_to_its_setting() -> None:
    settings = resolve_stack("prod", FakeCloudFormation())

    assert settings.name == "prod"
    assert settings.status == "UPDATE_COMPLETE"
    assert settings.region == "eu-west-1"
    assert settings.value("OFFBOARDING_QUEUE_URL") == QUEUE
    assert settings.value("MEMBERS_TABLE") == "prod-MembersTable-1"
    assert settings.value("ACTIONS_TABLE") == "prod-ActionsTable-1"
    assert settings.value("STATE_TABLE") == "prod-StateTable-1"
    assert settings.value("MIRO_TOKEN_SECRET") == TOKEN_ARN
    assert settings.value("MIRO_SCIM_TOKEN_SECRET") == SCIM_ARN
    # the org id and the Miro URLs are parameters, not outputs
    assert settings.value("MIRO_ORG_ID") == "3458764517517852417"
    assert settings.value("MIRO_API_URL") == "https://api.miro.com"
    assert settings.value("MAX_ACTIONS_PER_HOUR") == "25"
    # the refused-messages queue, as the template gives it to OffboardingFunction
    assert settings.value("OFFBOARDING_DLQ_URL") == QUEUE + "-refused"
    environment = settings.environment()
    assert environment["AUDIT_TABLE"] == "prod-AuditTable-1"
    assert environment["WEBHOOK_ENABLED"] == "false"
    assert "WEBHOOK_URL" not in environment  # EnableWebhook=false: no BoardWebhookBaseUrl output


def test_the_mapping_names_only_outputs_and_parameters_of_the_template() -> None:
    import yaml

    from miro_sync_cli.local.template import DEFAULT_TEMPLATE

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    template = yaml.load(DEFAULT_TEMPLATE.read_text(encoding="utf-8"), Loader=Loader)  # noqa: S506
    assert set(OUTPUTS.values()) <= set(template["Outputs"])
    assert set(PARAMETERS.values()) <= set(template["Parameters"])


def test_a_stack_that_does_not_exist_is_named_with_the_region() -> None:
    with pytest.raises(StackNotFoundError, match=r"stack 'prdo' not found in region eu-west-1"):
        resolve_stack("prdo", FakeCloudFormation())


def test_a_deleted_stack_is_not_found() -> None:
    client = FakeCloudFormation([_stack(status="DELETE_COMPLETE")])
    with pytest.raises(StackNotFoundError, match="deleted"):
        resolve_stack("prod", client)


def test_no_credentials_says_so() -> None:
    with pytest.raises(StackAccessError, match="no usable AWS credentials"):
        resolve_stack("prod", FakeCloudFormation(error=NoCredentialsError()))


def test_no_region_says_so() -> None:
    with pytest.raises(StackAccessError, match="no AWS region"):
        resolve_stack("prod", FakeCloudFormation(error=NoRegionError()))


def test_access_denied_names_the_permission() -> None:
    denied = _client_error("AccessDenied", "User: arn:aws:iam::1:user/x is not authorized")
    with pytest.raises(StackAccessError, match=r"cloudformation:DescribeStacks"):
        resolve_stack("prod", FakeCloudFormation(error=denied))


def test_an_empty_name_is_refused_before_any_call() -> None:
    client = FakeCloudFormation()
    with pytest.raises(StackError, match="empty"):
        resolve_stack("  ", client)
    assert client.calls == []


def test_a_missing_output_is_named() -> None:
    outputs = {key: value for key, value in OUTPUT_VALUES.items() if key != "ActionsTableName"}
    settings = resolve_stack("prod", FakeCloudFormation([_stack(outputs=outputs)]))

    assert settings.value("ACTIONS_TABLE") is None
    with pytest.raises(StackOutputMissingError, match=r"has no output ActionsTableName .*--actions-table"):
        settings.require("ACTIONS_TABLE")
    with pytest.raises(StackOutputMissingError, match="EnableWebhook=true"):
        settings.require("WEBHOOK_URL")


def test_explicit_values_win_and_only_blanks_come_from_the_stack() -> None:
    client = FakeCloudFormation()
    filled = fill_from_stack(
        "prod",
        {"MEMBERS_TABLE": "my-members", "ACTIONS_TABLE": "", "MIRO_ORG_ID": None},
        cloudformation_client=client,
    )
    assert filled == {
        "MEMBERS_TABLE": "my-members",
        "ACTIONS_TABLE": "prod-ActionsTable-1",
        "MIRO_ORG_ID": "3458764517517852417",
    }
    assert client.calls == ["prod"]


def test_nothing_blank_means_no_call() -> None:
    client = FakeCloudFormation(error=NoCredentialsError())
    filled = fill_from_stack("prod", {"MEMBERS_TABLE": "t"}, cloudformation_client=client)
    assert filled == {"MEMBERS_TABLE": "t"}
    assert client.calls == []


def test_without_a_stack_blanks_stay_blank() -> None:
    assert fill_from_stack(None, {"MEMBERS_TABLE": ""}, required=("MEMBERS_TABLE",)) == {
        "MEMBERS_TABLE": None
    }


def test_a_required_setting_the_stack_lacks_is_an_error_an_optional_one_is_not() -> None:
    outputs = {key: value for key, value in OUTPUT_VALUES.items() if key != "StateTableName"}
    client = FakeCloudFormation([_stack(outputs=outputs)])
    assert fill_from_stack("prod", {"STATE_TABLE": ""}, cloudformation_client=client) == {"STATE_TABLE": None}
    with pytest.raises(StackOutputMissingError, match="StateTableName"):
        fill_from_stack("prod", {"STATE_TABLE": ""}, required=("STATE_TABLE",), cloudformation_client=client)


@pytest.mark.parametrize(
    ("app", "command"),
    [
        (offboard_cmd.app, ["suspend"]),
        (offboard_cmd.app, ["delete"]),
        (offboard_cmd.app, ["reactivate"]),
        (offboard_cmd.app, ["status"]),
        (offboard_cmd.app, ["release"]),
        (offboard_cmd.app, ["cancel"]),
        (report_cmd.app, ["inactive"]),
        (report_cmd.app, ["licenses"]),
        (subscribe_cmd.app, ["create"]),
        (subscribe_cmd.app, ["list"]),
        (subscribe_cmd.app, ["disable"]),
        (subscribe_cmd.app, ["enable"]),
        (subscribe_cmd.app, ["delete"]),
        (subscribe_cmd.app, ["check"]),
    ],
)
def test_every_command_against_a_stack_takes_stack(app: Any, command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "--stack" in result.output


def test_a_bad_stack_is_one_line_and_exit_2(monkeypatch: pytest.MonkeyPatch) -> None:
    """No credentials and no region at all: the command says so instead of a traceback."""
    for variable in ("ACTIONS_TABLE", "AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(variable, raising=False)
    environment: dict[str, str | None] = {
        STACK_ENVVAR: "prod",
        "AWS_REGION": None,
        "AWS_DEFAULT_REGION": None,
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        "AWS_EC2_METADATA_DISABLED": "true",
        "COLUMNS": "200",
    }
    result = CliRunner().invoke(offboard_cmd.app, ["status", "--outcome", "failed"], env=environment)
    assert result.exit_code == 2
    assert "--stack:" in result.output
    assert "no AWS region" in result.output
    assert "Traceback" not in result.output
