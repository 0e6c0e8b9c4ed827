"""`--stack NAME` (or MIRO_SYNC_STACK): a deployed stack's tables, queues and secrets, read from
CloudFormation (DescribeStacks) instead of six exported outputs.

    settings = resolve_stack("miro-sync-prod")          # one DescribeStacks call
    settings.value("ACTIONS_TABLE")                      # -> the ActionsTableName output (or None)
    settings.require("ACTIONS_TABLE")                    # -> the value, or StackOutputMissingError naming it
    settings.environment()                               # every setting the stack gives, by variable name

Settings are named by the environment variables of docs/CONVENTIONS.md (the commands' options read the
same variables). Precedence in every command: an explicit option, then its environment variable (typer
fills both into the option), then the stack; `fill_from_stack` applies it and calls CloudFormation only
when a value is still missing. The organization id and Miro URLs are stack *parameters*, not outputs.

boto3 is imported only when `resolve_stack` runs (so `miro-sync --help` stays fast); tests hand in a fake
client. Every failure is a `StackError` whose message is safe to print (it never holds a secret value:
outputs hold secret ARNs, never tokens).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console

STACK_ENVVAR = "MIRO_SYNC_STACK"

Stack = Annotated[
    str | None,
    typer.Option(
        "--stack",
        envvar=STACK_ENVVAR,
        help="Deployed CloudFormation stack (name or id): its outputs and parameters fill every table, "
        "queue, secret and org id not given as an option or environment variable.",
        show_default=False,
    ),
]

# setting (environment variable) -> stack output. Outputs of template.yaml.
OUTPUTS: dict[str, str] = {
    "OFFBOARDING_QUEUE_URL": "OffboardingQueueUrl",
    # as the template sets it for OffboardingFunction: the refused-messages queue (see CONVENTIONS.md)
    "OFFBOARDING_DLQ_URL": "OffboardingRefusedQueueUrl",
    "OFFBOARDING_DEAD_LETTER_QUEUE_URL": "OffboardingDeadLetterQueueUrl",
    "MEMBERS_TABLE": "MembersTableName",
    "AUDIT_TABLE": "AuditTableName",
    "BOARD_EVENTS_TABLE": "BoardEventsTableName",
    "ACTIONS_TABLE": "ActionsTableName",
    "STATE_TABLE": "StateTableName",
    "IDEMPOTENCY_TABLE": "IdempotencyTableName",
    "MIRO_TOKEN_SECRET": "MiroTokenSecretArn",  # nosec B105  # a stack output's name, not a secret
    "MIRO_SCIM_TOKEN_SECRET": "MiroScimTokenSecretArn",  # nosec B105  # a stack output's name, not a secret
    # `miro-sync subscribe create --webhook-url` (only when the stack has EnableWebhook=true)
    "WEBHOOK_URL": "BoardWebhookBaseUrl",
    "MEMBERS_SYNC_FUNCTION": "MembersSyncFunctionName",
    "AUDIT_LOG_SYNC_FUNCTION": "AuditLogSyncFunctionName",
    "ALARM_TOPIC_ARN": "AlarmTopicArn",
}

# setting (environment variable) -> stack parameter. Parameters of template.yaml.
PARAMETERS: dict[str, str] = {
    "MIRO_ORG_ID": "OrgId",
    "MIRO_API_URL": "MiroApiUrl",
    "MIRO_SCIM_URL": "MiroScimUrl",
    "MAX_ACTIONS_PER_HOUR": "MaxActionsPerHour",
    "INACTIVE_DAYS": "InactiveDays",
    "RESET_SESSIONS": "ResetSessions",  # "true"/"false": suspend and delete need sessions:delete
    "WEBHOOK_ENABLED": "EnableWebhook",  # "true"/"false"
}

# The command-line option that sets each setting, for messages.
FLAGS: dict[str, str] = {
    "OFFBOARDING_QUEUE_URL": "--queue-url",
    "MEMBERS_TABLE": "--members-table",
    "ACTIONS_TABLE": "--actions-table",
    "STATE_TABLE": "--state-table",
    "MIRO_TOKEN_SECRET": "--token-secret",  # nosec B105  # an option's name, not a secret
    "MIRO_ORG_ID": "--org-id",
    "MIRO_API_URL": "--api-url",
    "WEBHOOK_URL": "--webhook-url",
    "MAX_ACTIONS_PER_HOUR": "--max",
}

# Why a stack may lack an output although it was deployed from this template.
_MISSING_HINTS: dict[str, str] = {
    "BoardWebhookBaseUrl": "the stack has it only with EnableWebhook=true",
}

_NOT_FOUND_CODES = {"ValidationError"}
_ACCESS_CODES = {
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
}


class StackError(Exception):
    """The stack's settings could not be read; the message says why and is safe to print."""


class StackNotFoundError(StackError):
    """No such stack in this account and region."""


class StackAccessError(StackError):
    """No AWS credentials or region, access denied, or CloudFormation unreachable."""


class StackOutputMissingError(StackError):
    """The stack lacks an output (or parameter) a command needs; the message names it."""


@dataclass(frozen=True)
class StackSettings:
    """What one DescribeStacks call says about a deployed stack."""

    name: str
    stack_id: str = ""
    status: str = ""
    region: str | None = None
    outputs: Mapping[str, str] = field(default_factory=dict)
    parameters: Mapping[str, str] = field(default_factory=dict)

    def source(self, setting: str) -> str:
        """e.g. "output ActionsTableName" or "parameter OrgId"."""
        if setting in OUTPUTS:
            return f"output {OUTPUTS[setting]}"
        if setting in PARAMETERS:
            return f"parameter {PARAMETERS[setting]}"
        raise KeyError(setting)

    def value(self, setting: str) -> str | None:
        """The stack's value for a setting (an environment variable name), or None when it has none."""
        if setting in OUTPUTS:
            found = self.outputs.get(OUTPUTS[setting])
        elif setting in PARAMETERS:
            found = self.parameters.get(PARAMETERS[setting])
        else:
            raise KeyError(
                f"{setting} is not a setting a stack provides; known: {sorted(OUTPUTS | PARAMETERS)}"
            )
        return found or None

    def require(self, setting: str) -> str:
        found = self.value(setting)
        if found is not None:
            return found
        key = OUTPUTS.get(setting) or PARAMETERS[setting]
        kind = "output" if setting in OUTPUTS else "parameter"
        flag = FLAGS.get(setting)
        given = f"{flag} or {setting}" if flag else setting
        hint = _MISSING_HINTS.get(key) or (
            "deployed from an older template.yaml, or not finished deploying? Update the stack"
        )
        status = f", status {self.status}" if self.status else ""
        raise StackOutputMissingError(
            f"stack {self.name!r}{status} has no {kind} {key} (needed for {setting}): {hint}, or give {given}"
        )

    def environment(self) -> dict[str, str]:
        """Every setting the stack provides, by environment variable name (e.g. for `doctor`)."""
        settings = {}
        for setting in (*OUTPUTS, *PARAMETERS):
            found = self.value(setting)
            if found is not None:
                settings[setting] = found
        return settings


def resolve_stack(name: str, cloudformation_client: Any = None) -> StackSettings:
    """Read a deployed stack's outputs and parameters (CloudFormation DescribeStacks). `name` is the
    stack's name or id (ARN). Without `cloudformation_client`, boto3's default session is used (region,
    credentials and AWS_ENDPOINT_URL(_CLOUDFORMATION) from the usual AWS environment).

    Raises StackNotFoundError, StackAccessError (no credentials or region, access denied, unreachable)
    or StackError; a missing output is reported by `StackSettings.require`, naming it."""
    stack_name = (name or "").strip()
    if not stack_name:
        raise StackError("--stack/MIRO_SYNC_STACK is empty: name the deployed stack")
    response, region = _describe_stacks(stack_name, cloudformation_client)
    where = f" in region {region}" if region else ""
    stacks = response.get("Stacks") or []
    if not stacks:
        raise StackNotFoundError(f"stack {stack_name!r} not found{where}")
    stack = stacks[0]
    status = str(stack.get("StackStatus", ""))
    if status == "DELETE_COMPLETE":
        raise StackNotFoundError(f"stack {stack_name!r} was deleted (DELETE_COMPLETE)")
    return StackSettings(
        name=str(stack.get("StackName", stack_name)),
        stack_id=str(stack.get("StackId", "")),
        status=status,
        region=region,
        outputs={
            str(output["OutputKey"]): str(output.get("OutputValue", ""))
            for output in stack.get("Outputs") or []
            if "OutputKey" in output
        },
        parameters={
            str(parameter["ParameterKey"]): str(
                parameter.get("ResolvedValue") or parameter.get("ParameterValue", "")
            )
            for parameter in stack.get("Parameters") or []
            if "ParameterKey" in parameter
        },
    )


def _describe_stacks(stack_name: str, client: Any) -> tuple[Any, str | None]:
    """DescribeStacks' response for the stack and the client's region; every boto failure becomes a
    StackError saying what to check."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        CredentialRetrievalError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
        SSOError,
        TokenRetrievalError,
    )

    no_credentials = (
        NoCredentialsError,
        PartialCredentialsError,
        CredentialRetrievalError,
        SSOError,
        TokenRetrievalError,
    )
    region: str | None = None
    where = ""
    try:
        if client is None:
            client = _default_cloudformation_client(stack_name)
        region = getattr(getattr(client, "meta", None), "region_name", None)
        where = f" in region {region}" if region else ""
        return client.describe_stacks(StackName=stack_name), region
    except NoRegionError:
        raise StackAccessError(
            f"cannot look up stack {stack_name!r}: no AWS region (set AWS_REGION or AWS_PROFILE)"
        ) from None
    except no_credentials as error:
        raise StackAccessError(
            f"cannot look up stack {stack_name!r}: no usable AWS credentials ({type(error).__name__}); "
            "set AWS_PROFILE or sign in (aws sso login)"
        ) from None
    except EndpointConnectionError as error:
        raise StackAccessError(
            f"cannot reach CloudFormation to look up stack {stack_name!r}: {error}"
        ) from None
    except ClientError as error:
        raise _client_error(error.response, stack_name, where) from None
    except BotoCoreError as error:
        raise StackAccessError(f"cannot look up stack {stack_name!r}: {error}") from None


def _default_cloudformation_client(stack_name: str) -> Any:
    import boto3

    try:
        return boto3.client("cloudformation")
    except ValueError as error:  # e.g. AWS_REGION set but empty: "Invalid endpoint"
        raise StackAccessError(f"cannot look up stack {stack_name!r}: check AWS_REGION ({error})") from None


def _client_error(response: Mapping[str, Any], stack_name: str, where: str) -> StackError:
    """The StackError for an error CloudFormation answered DescribeStacks with."""
    code = str(response.get("Error", {}).get("Code", ""))
    message = str(response.get("Error", {}).get("Message", ""))
    if code in _NOT_FOUND_CODES and "does not exist" in message:
        return StackNotFoundError(
            f"stack {stack_name!r} not found{where}: check the name, the account (AWS_PROFILE) "
            "and the region (AWS_REGION)"
        )
    if code in _ACCESS_CODES:
        return StackAccessError(
            f"cannot look up stack {stack_name!r}{where}: {code} (needs cloudformation:DescribeStacks)"
        )
    return StackError(f"cannot look up stack {stack_name!r}{where}: {code} {message}".rstrip())


def fill_from_stack(
    stack: str | None,
    values: Mapping[str, str | None],
    *,
    required: Collection[str] = (),
    cloudformation_client: Any = None,
) -> dict[str, str | None]:
    """`values` maps settings (environment variable names) to what the command's options hold (an
    explicit option or its environment variable; None or "" = not given). Returns them with every blank
    filled from the stack: explicit option > environment variable > stack. The stack is read only when
    `stack` is set and a value is blank. A blank setting in `required` that the stack lacks raises
    StackOutputMissingError naming the output; without a stack, blanks stay blank (None)."""
    filled: dict[str, str | None] = {setting: (value or None) for setting, value in values.items()}
    blanks = [setting for setting, value in filled.items() if value is None]
    if not stack or not blanks:
        return filled
    settings = resolve_stack(stack, cloudformation_client)
    for setting in blanks:
        filled[setting] = settings.require(setting) if setting in required else settings.value(setting)
    return filled


def fill_or_exit(
    stack: str | None,
    values: Mapping[str, str | None],
    *,
    required: Collection[str] = (),
    console: Console | None = None,
    cloudformation_client: Any = None,
) -> dict[str, str | None]:
    """`fill_from_stack` for a command: a StackError is printed as one line and exits 2."""
    try:
        return fill_from_stack(stack, values, required=required, cloudformation_client=cloudformation_client)
    except StackError as error:
        from rich.console import Console
        from rich.markup import escape

        (console or Console(stderr=True)).print(f"[red]error:[/red] --stack: {escape(str(error))}")
        raise typer.Exit(2) from None
