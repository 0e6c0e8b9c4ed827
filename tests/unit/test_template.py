"""template.yaml: translated with the real SAM translator, then checked for wiring and least privilege.

cfn-lint transforms SAM too, but it does not notice a `!Ref` to a missing resource inside a
function's Events or Policies; `dangling_references` walks the translated template and does.
The sample events in events/ are checked here as well, against Powertools' own event models.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Callable, Iterator
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel, LambdaFunctionUrlModel, SqsModel
from cfnlint.api import lint_file
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO_ROOT / "template.yaml"
CONVENTIONS_PATH = REPO_ROOT / "docs" / "CONVENTIONS.md"
EVENTS_DIR = REPO_ROOT / "events"

Template = dict[str, Any]

PSEUDO_PARAMETERS = frozenset(
    {
        "AWS::AccountId",
        "AWS::NotificationARNs",
        "AWS::NoValue",
        "AWS::Partition",
        "AWS::Region",
        "AWS::StackId",
        "AWS::StackName",
        "AWS::URLSuffix",
    }
)
# ${Name} or ${Resource.Attribute}; ${!Literal} is an escaped dollar sign, not a reference.
SUB_VARIABLE = re.compile(r"\$\{(?!!)([^}]+)\}")

FUNCTION_FOLDERS = {
    "MembersSyncFunction": "members_sync",
    "AuditLogSyncFunction": "audit_log_sync",
    "BoardWebhookFunction": "board_webhook",
    "OffboardingFunction": "offboarding",
}
TABLES = ("MembersTable", "AuditTable", "BoardEventsTable", "ActionsTable", "StateTable", "IdempotencyTable")
COMMON_ENVIRONMENT = {
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_LOG_LEVEL",
    "POWERTOOLS_METRICS_NAMESPACE",
    "MIRO_API_URL",
    "MIRO_SCIM_URL",
    "MIRO_ORG_ID",
    "MIRO_TOKEN_SECRET",
    "MIRO_SCIM_TOKEN_SECRET",
    "MEMBERS_TABLE",
    "AUDIT_TABLE",
    "BOARD_EVENTS_TABLE",
    "ACTIONS_TABLE",
    "STATE_TABLE",
    "IDEMPOTENCY_TABLE",
}
FUNCTION_ENVIRONMENT = {
    "MembersSyncFunction": {"INACTIVE_DAYS", "WEBHOOK_ENABLED"},
    "AuditLogSyncFunction": {"AUDIT_BACKFILL_DAYS", "AUDIT_RETENTION_DAYS", "AUDIT_EVENT_BUS"},
    "BoardWebhookFunction": {"BOARD_EVENT_RETENTION_DAYS"},
    "OffboardingFunction": {
        "OFFBOARDING_QUEUE_URL",
        "OFFBOARDING_DLQ_URL",
        "PROTECTED_EMAILS",
        "ALLOW_ADMIN_OFFBOARDING",
        "MAX_ACTIONS_PER_HOUR",
        "DEFAULT_SUCCESSOR",
        "RESET_SESSIONS",
        "OFFBOARDING_MAX_CONCURRENCY",
    },
}


# --------------------------------------------------------------------------- loading and translating


class CloudFormationLoader(yaml.SafeLoader):
    """SafeLoader that turns CloudFormation short tags (!Ref, !Sub, ...) into their long JSON form.

    A subclass, so the process-wide SafeLoader (which samtranslator's own yaml_parse mutates) stays clean.
    """


def _construct_intrinsic(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    key = tag_suffix if tag_suffix in ("Ref", "Condition") else f"Fn::{tag_suffix}"
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        assert isinstance(node, yaml.MappingNode)
        value = loader.construct_mapping(node, deep=True)
    return {key: value}


CloudFormationLoader.add_multi_constructor("!", _construct_intrinsic)


def load_sam_template() -> Template:
    with TEMPLATE_PATH.open() as stream:
        loaded = yaml.load(stream, Loader=CloudFormationLoader)  # noqa: S506 - SafeLoader subclass
    assert isinstance(loaded, dict)
    return loaded


def translate(sam_template: Template) -> Template:
    """Runs the SAM transform offline, as CloudFormation would on deploy."""
    packaged = copy.deepcopy(sam_template)
    # `sam package` replaces local code folders with S3 locations; the translator only accepts those.
    for resource in packaged["Resources"].values():
        properties = resource.get("Properties", {})
        for code_key in ("CodeUri", "ContentUri"):
            if isinstance(properties.get(code_key), str):
                properties[code_key] = f"s3://packaged-code/{properties[code_key]}.zip"
    # A session with an explicit region resolves AWS::Region without touching the network or ~/.aws.
    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name="eu-west-1"))
    translated: Template = translator.translate(
        packaged,
        parameter_values={"OrgId": "3458764500000000001"},
        get_managed_policy_map=lambda: {},
    )
    return translated


@pytest.fixture(scope="module")
def sam() -> Template:
    return load_sam_template()


@pytest.fixture(scope="module")
def cfn(sam: Template) -> Template:
    return translate(sam)


# --------------------------------------------------------------------------- reference checking


def dangling_references(template: Template) -> list[str]:
    """Every Ref, GetAtt, Sub variable, condition and DependsOn that names nothing in the template."""
    resources = set(template.get("Resources", {}))
    referable = resources | set(template.get("Parameters", {})) | PSEUDO_PARAMETERS
    conditions = set(template.get("Conditions", {}))
    problems: list[str] = []

    def check_sub(path: str, text: str, local_names: set[str]) -> None:
        for variable in SUB_VARIABLE.findall(text):
            name = variable.strip()
            if name in local_names or name in referable:
                continue
            if "." in name and name.split(".", 1)[0] in resources:
                continue
            problems.append(f"{path}: Fn::Sub variable ${{{name}}} names nothing")

    def visit(node: Any, path: str) -> None:
        if isinstance(node, list):
            for index, item in enumerate(node):
                visit(item, f"{path}[{index}]")
            return
        if not isinstance(node, dict):
            return
        for key, value in node.items():
            where = f"{path}.{key}"
            if key == "Ref" and isinstance(value, str):
                if value not in referable:
                    problems.append(f"{where}: Ref {value} names nothing")
            elif key == "Fn::GetAtt":
                target = value.split(".", 1)[0] if isinstance(value, str) else value[0]
                if target not in resources:
                    problems.append(f"{where}: GetAtt {target} names no resource")
            elif key == "Fn::Sub":
                if isinstance(value, str):
                    check_sub(where, value, set())
                else:
                    text, local_values = value
                    check_sub(where, text, set(local_values))
                    visit(local_values, where)
                continue
            elif key == "Fn::If":
                if value[0] not in conditions:
                    problems.append(f"{where}: Fn::If condition {value[0]} does not exist")
                visit(value[1:], where)
                continue
            elif key == "Condition" and isinstance(value, str) and value not in conditions:
                # IAM statements also have a "Condition" key, but theirs is a mapping.
                problems.append(f"{where}: condition {value} does not exist")
            visit(value, where)

    for section in ("Resources", "Outputs", "Conditions"):
        visit(template.get(section, {}), section)
    for logical_id, resource in template.get("Resources", {}).items():
        depends_on = resource.get("DependsOn", [])
        for dependency in [depends_on] if isinstance(depends_on, str) else depends_on:
            if dependency not in resources:
                problems.append(f"Resources.{logical_id}.DependsOn: {dependency} names no resource")
    return problems


def test_translated_template_references_only_existing_names(cfn: Template) -> None:
    assert dangling_references(cfn) == []


def _break_policy_ref(sam: dict[str, Any]) -> None:
    sam["Resources"]["MembersSyncFunction"]["Properties"]["Policies"].append(
        {"DynamoDBReadPolicy": {"TableName": {"Ref": "MisspelledTable"}}}
    )


def _break_event_ref(sam: dict[str, Any]) -> None:
    sam["Resources"]["MembersSyncFunction"]["Properties"]["Events"]["Schedule"]["Properties"]["Schedule"] = {
        "Ref": "MisspelledSchedule"
    }


def _break_sub_attribute(sam: dict[str, Any]) -> None:
    statements = sam["Resources"]["AuditLogSyncFunction"]["Properties"]["Policies"][-1]["Statement"]
    statements[0]["Resource"] = {"Fn::Sub": "${MisspelledTable.Arn}/index/*"}


def _break_environment_getatt(sam: dict[str, Any]) -> None:
    variables = sam["Resources"]["OffboardingFunction"]["Properties"]["Environment"]["Variables"]
    variables["OFFBOARDING_QUEUE_URL"] = {"Fn::GetAtt": ["MisspelledQueue", "QueueUrl"]}


@pytest.mark.parametrize(
    "break_template",
    [_break_policy_ref, _break_event_ref, _break_sub_attribute, _break_environment_getatt],
)
def test_dangling_reference_inside_sam_properties_is_reported(
    sam: Template, break_template: Callable[[dict[str, Any]], None]
) -> None:
    broken = copy.deepcopy(sam)
    break_template(broken)
    problems = dangling_references(translate(broken))
    assert problems
    assert all("Misspelled" in problem for problem in problems)


def test_cfn_lint_reports_nothing() -> None:
    matches = lint_file(TEMPLATE_PATH)
    assert [str(match) for match in matches] == []


# --------------------------------------------------------------------------- helpers (translated template)


def resources_of_type(template: Template, resource_type: str) -> dict[str, dict[str, Any]]:
    return {name: res for name, res in template["Resources"].items() if res["Type"] == resource_type}


def referenced_names(node: Any) -> set[str]:
    """Logical ids and parameter names a value refers to (through Ref, GetAtt or Sub)."""
    names: set[str] = set()
    if isinstance(node, list):
        for item in node:
            names |= referenced_names(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref":
                names.add(value)
            elif key == "Fn::GetAtt":
                names.add(value.split(".", 1)[0] if isinstance(value, str) else value[0])
            elif key == "Fn::Sub":
                text, local_values = (value, {}) if isinstance(value, str) else value
                names |= {v.split(".", 1)[0] for v in SUB_VARIABLE.findall(text) if v not in local_values}
                names |= referenced_names(local_values)
            else:
                names |= referenced_names(value)
    return names - PSEUDO_PARAMETERS


def role_of(cfn: Template, function_id: str) -> dict[str, Any]:
    role_ref = cfn["Resources"][function_id]["Properties"]["Role"]
    role: dict[str, Any] = cfn["Resources"][role_ref["Fn::GetAtt"][0]]
    return role


def policy_documents(cfn: Template, function_id: str) -> Iterator[tuple[str | None, dict[str, Any]]]:
    """(condition or None, policy document) for each inline policy of the function's role."""
    for policy in role_of(cfn, function_id)["Properties"].get("Policies", []):
        if "Fn::If" in policy:
            condition, when_true, when_false = policy["Fn::If"]
            for branch in (when_true, when_false):
                if branch != {"Ref": "AWS::NoValue"}:
                    yield condition, branch["PolicyDocument"]
        else:
            yield None, policy["PolicyDocument"]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def grants(cfn: Template, function_id: str, *, include_conditional: bool = True) -> dict[str, set[str]]:
    """action -> what it is allowed on: logical ids / parameters referenced, "*", or the literal ARN."""
    allowed: dict[str, set[str]] = {}
    for condition, document in policy_documents(cfn, function_id):
        if condition is not None and not include_conditional:
            continue
        for statement in document["Statement"]:
            assert statement["Effect"] == "Allow"
            for action in _as_list(statement["Action"]):
                for resource in _as_list(statement["Resource"]):
                    targets = {"*"} if resource == "*" else referenced_names(resource)
                    allowed.setdefault(action, set()).update(targets or {json.dumps(resource)})
    return allowed


def environment(cfn: Template, function_id: str) -> dict[str, Any]:
    variables: dict[str, Any] = cfn["Resources"][function_id]["Properties"]["Environment"]["Variables"]
    return variables


def service_name(cfn: Template, function_id: str) -> str:
    name = environment(cfn, function_id)["POWERTOOLS_SERVICE_NAME"]
    assert isinstance(name, str)
    return name


def rate_seconds(expression: str) -> int:
    match = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)", expression)
    assert match, f"not a rate() expression: {expression}"
    unit_seconds = {"minute": 60, "hour": 3600, "day": 86400}[match.group(2).rstrip("s")]
    return int(match.group(1)) * unit_seconds


# --------------------------------------------------------------------------- functions and triggers


@pytest.mark.parametrize(("function_id", "folder"), FUNCTION_FOLDERS.items())
def test_function_follows_conventions(sam: Template, cfn: Template, function_id: str, folder: str) -> None:
    assert sam["Resources"][function_id]["Properties"]["CodeUri"] == f"functions/{folder}"
    properties = cfn["Resources"][function_id]["Properties"]
    assert properties["Handler"] == "app.handler"
    assert properties["Runtime"] == "python3.12"
    assert properties["Architectures"] == ["arm64"]
    assert properties["TracingConfig"] == {"Mode": "Active"}
    # SAM renames a layer version to MiroSyncLayer<hash of its content>.
    (layer_ref,) = properties["Layers"]
    assert layer_ref["Ref"].startswith("MiroSyncLayer")
    assert cfn["Resources"][layer_ref["Ref"]]["Type"] == "AWS::Lambda::LayerVersion"


def test_layer_is_built_from_the_miro_sync_package(sam: Template) -> None:
    layer = sam["Resources"]["MiroSyncLayer"]
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    assert layer["Metadata"]["BuildMethod"] == "python3.12"
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    content = REPO_ROOT / layer["Properties"]["ContentUri"]
    assert (content / "requirements.txt").is_file()
    assert (content / "miro_sync" / "__init__.py").is_file()


def schedule_rules_targeting(cfn: Template, function_id: str) -> dict[str, dict[str, Any]]:
    return {
        name: rule
        for name, rule in resources_of_type(cfn, "AWS::Events::Rule").items()
        if {"Fn::GetAtt": [function_id, "Arn"]} in [target["Arn"] for target in rule["Properties"]["Targets"]]
    }


@pytest.mark.parametrize(
    ("function_id", "schedule"),
    [
        ("MembersSyncFunction", {"Ref": "MembersSyncSchedule"}),
        ("AuditLogSyncFunction", {"Ref": "AuditLogSyncSchedule"}),
        ("OffboardingFunction", "rate(5 minutes)"),
    ],
)
def test_function_runs_on_its_schedule(cfn: Template, function_id: str, schedule: Any) -> None:
    rules = schedule_rules_targeting(cfn, function_id)
    assert [rule["Properties"]["ScheduleExpression"] for rule in rules.values()] == [schedule]
    (rule_id,) = rules
    permissions = [
        perm["Properties"]
        for perm in resources_of_type(cfn, "AWS::Lambda::Permission").values()
        if perm["Properties"].get("SourceArn") == {"Fn::GetAtt": [rule_id, "Arn"]}
    ]
    assert permissions == [
        {
            "Action": "lambda:InvokeFunction",
            "FunctionName": {"Ref": function_id},
            "Principal": "events.amazonaws.com",
            "SourceArn": {"Fn::GetAtt": [rule_id, "Arn"]},
        }
    ]


@pytest.mark.parametrize(
    ("function_id", "function_name"),
    [
        ("MembersSyncFunction", "${AWS::StackName}-members-sync"),
        ("AuditLogSyncFunction", "${AWS::StackName}-audit-log-sync"),
    ],
)
def test_sync_function_may_invoke_exactly_itself(cfn: Template, function_id: str, function_name: str) -> None:
    assert cfn["Resources"][function_id]["Properties"]["FunctionName"] == {"Fn::Sub": function_name}
    invoke_targets = grants(cfn, function_id)["lambda:InvokeFunction"]
    function_arn_prefix = "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:"
    own_arn = {"Fn::Sub": function_arn_prefix + function_name}
    assert invoke_targets == {json.dumps(own_arn)}
    assert cfn["Resources"][function_id]["Properties"]["Timeout"] == 900


def test_offboarding_consumes_its_queue_with_partial_batch_failures(cfn: Template) -> None:
    mappings = resources_of_type(cfn, "AWS::Lambda::EventSourceMapping")
    assert [m["Properties"] for m in mappings.values()] == [
        {
            "EventSourceArn": {"Fn::GetAtt": ["OffboardingQueue", "Arn"]},
            "FunctionName": {"Ref": "OffboardingFunction"},
            "BatchSize": 10,
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "ScalingConfig": {"MaximumConcurrency": 2},
        }
    ]


def test_offboarding_paces_scim_to_its_share_of_the_concurrent_containers(cfn: Template) -> None:
    (mapping,) = resources_of_type(cfn, "AWS::Lambda::EventSourceMapping").values()
    variables = cfn["Resources"]["OffboardingFunction"]["Properties"]["Environment"]["Variables"]
    concurrency = mapping["Properties"]["ScalingConfig"]["MaximumConcurrency"]
    assert int(variables["OFFBOARDING_MAX_CONCURRENCY"]) == concurrency


def test_offboarding_queue_visibility_and_dead_letter_queue(cfn: Template) -> None:
    queue = cfn["Resources"]["OffboardingQueue"]["Properties"]
    timeout = cfn["Resources"]["OffboardingFunction"]["Properties"]["Timeout"]
    assert queue["VisibilityTimeout"] >= 6 * timeout
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["OffboardingDeadLetterQueue", "Arn"]},
        "maxReceiveCount": 10,  # see test_throttling_alone_never_dead_letters_an_offboarding_request
    }
    dead_letters = cfn["Resources"]["OffboardingDeadLetterQueue"]["Properties"]
    # A failed message must outlive its stay in the source queue, or the DLQ silently drops it.
    assert dead_letters["MessageRetentionPeriod"] > queue["MessageRetentionPeriod"]
    assert deployed(cfn, queue["SqsManagedSseEnabled"]) is True
    assert deployed(cfn, dead_letters["SqsManagedSseEnabled"]) is True


@pytest.mark.parametrize(
    ("function_id", "parameter", "default"),
    [
        ("BoardWebhookFunction", "BoardWebhookReservedConcurrency", 10),
        ("OffboardingFunction", "OffboardingReservedConcurrency", 3),
    ],
)
def test_public_webhook_and_offboarding_reserve_their_concurrency(
    cfn: Template, function_id: str, parameter: str, default: int
) -> None:
    # The webhook's URL is unauthenticated: a flood must hit its own ceiling, not the account's pool
    # (which the syncs and offboarding need). Offboarding gets capacity nobody else can take.
    properties = cfn["Resources"][function_id]["Properties"]
    assert properties["ReservedConcurrentExecutions"] == {"Ref": parameter}
    declared = cfn["Parameters"][parameter]
    assert (declared["Type"], declared["Default"]) == ("Number", default)
    assert declared["MinValue"] >= 1


def test_offboarding_reserved_concurrency_covers_its_pollers_and_its_sweep(cfn: Template) -> None:
    # Lambda's guidance: reserved concurrency >= the SQS mapping's MaximumConcurrency, or batches are
    # throttled; plus one for the notBefore sweep's schedule, which runs alongside them.
    (mapping,) = resources_of_type(cfn, "AWS::Lambda::EventSourceMapping").values()
    pollers = mapping["Properties"]["ScalingConfig"]["MaximumConcurrency"]
    sweeps = len(schedule_rules_targeting(cfn, "OffboardingFunction"))
    declared = cfn["Parameters"]["OffboardingReservedConcurrency"]
    assert declared["MinValue"] >= pollers + sweeps
    assert declared["Default"] >= declared["MinValue"]
    # and the SCIM pacing share stays the pollers' count (test_offboarding_paces_scim_to_...)
    variables = environment(cfn, "OffboardingFunction")
    assert int(variables["OFFBOARDING_MAX_CONCURRENCY"]) == pollers


def test_throttling_alone_never_dead_letters_an_offboarding_request(cfn: Template) -> None:
    # A batch Lambda received but could not run (throttled at the reserved concurrency) still counts
    # as a receive. AWS's guidance with throttling is maxReceiveCount >= 5; the template keeps 10.
    queue = cfn["Resources"]["OffboardingQueue"]["Properties"]
    assert queue["RedrivePolicy"]["maxReceiveCount"] >= 10
    # the time a failing request gets before the DLQ, well inside the queue's retention
    timeout = cfn["Resources"]["OffboardingFunction"]["Properties"]["Timeout"]
    assert queue["VisibilityTimeout"] >= 6 * timeout
    assert (
        queue["RedrivePolicy"]["maxReceiveCount"] * queue["VisibilityTimeout"]
        < queue["MessageRetentionPeriod"]
    )


def _redrive_targets(cfn: Template) -> set[str]:
    return {
        queue["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        for queue in resources_of_type(cfn, "AWS::SQS::Queue").values()
        if "RedrivePolicy" in queue["Properties"]
    }


def test_refused_copies_have_their_own_queue_apart_from_the_redrive_dead_letter_queue(cfn: Template) -> None:
    # The worker copies refused messages with SendMessage on purpose; SQS moves repeated failures by
    # redrive. Sharing one queue kept the DLQ alarm in ALARM for 14 days after any refusal.
    copies_to = environment(cfn, "OffboardingFunction")["OFFBOARDING_DLQ_URL"]["Ref"]
    assert _redrive_targets(cfn) == {"OffboardingDeadLetterQueue"}
    assert copies_to == "OffboardingRefusedQueue"
    refused = cfn["Resources"]["OffboardingRefusedQueue"]
    assert refused["Type"] == "AWS::SQS::Queue"
    assert "RedrivePolicy" not in refused["Properties"]
    assert deployed(cfn, refused["Properties"]["SqsManagedSseEnabled"]) is True
    assert refused["Properties"]["MessageRetentionPeriod"] == 1209600
    assert cfn["Outputs"]["OffboardingRefusedQueueUrl"]["Value"] == {"Ref": "OffboardingRefusedQueue"}
    assert cfn["Outputs"]["OffboardingDeadLetterQueueUrl"]["Value"] == {"Ref": "OffboardingDeadLetterQueue"}


# A deployed CommaDelimitedList: CloudFormation splits the value on commas, so "" is [""], never [].
def _deployed_list(value: str) -> list[str]:
    return value.split(",")


def _evaluate(node: Any, parameters: dict[str, Any], conditions: dict[str, Any]) -> Any:
    """The intrinsics the queue policy and the key wiring use, evaluated as CloudFormation would for
    these parameters (a list item or property that is AWS::NoValue is left out)."""
    if isinstance(node, list):
        items = [_evaluate(item, parameters, conditions) for item in node]
        return [item for item in items if item is not _NO_VALUE]
    if not isinstance(node, dict):
        return node
    if list(node) == ["Ref"]:
        name = node["Ref"]
        return _NO_VALUE if name == "AWS::NoValue" else parameters.get(name, f"<{name}>")
    if list(node) == ["Fn::If"]:
        condition, when_true, when_false = node["Fn::If"]
        chosen = when_true if _evaluate(conditions[condition], parameters, conditions) else when_false
        return _evaluate(chosen, parameters, conditions)
    if list(node) == ["Fn::Not"]:
        return not _evaluate(node["Fn::Not"][0], parameters, conditions)
    if list(node) == ["Fn::Equals"]:
        left, right = (_evaluate(item, parameters, conditions) for item in node["Fn::Equals"])
        return left == right
    if list(node) == ["Fn::Join"]:
        delimiter, items = node["Fn::Join"]
        return delimiter.join(_evaluate(items, parameters, conditions))
    if list(node) == ["Fn::GetAtt"]:
        return "<{}.{}>".format(*node["Fn::GetAtt"])
    if list(node) == ["Fn::Sub"] and isinstance(node["Fn::Sub"], str):
        return SUB_VARIABLE.sub(lambda name: str(parameters.get(name[1], f"<{name[1]}>")), node["Fn::Sub"])
    evaluated = {key: _evaluate(value, parameters, conditions) for key, value in node.items()}
    return {key: value for key, value in evaluated.items() if value is not _NO_VALUE}


_NO_VALUE = object()


def deployed(cfn: Template, node: Any, **parameters: Any) -> Any:
    """`node` as CloudFormation deploys it with these parameters (the others at their defaults)."""
    values = {name: p["Default"] for name, p in cfn["Parameters"].items() if "Default" in p}
    return _evaluate(node, {**values, "AWS::Region": "eu-west-1", **parameters}, cfn["Conditions"])


SENDER_ROLES = ["arn:aws:iam::210987654321:role/hr-offboarding", "arn:aws:iam::210987654321:role/it/tickets"]


def _queue_policy_statements(cfn: Template, sender_roles: str) -> list[dict[str, Any]]:
    (policy,) = [
        p["Properties"]
        for p in resources_of_type(cfn, "AWS::SQS::QueuePolicy").values()
        if p["Properties"]["Queues"] == [{"Ref": "OffboardingQueue"}]
    ]
    parameters = {"OffboardingSenderRoleArns": _deployed_list(sender_roles), "AWS::AccountId": "123456789012"}
    document = _evaluate(policy["PolicyDocument"], parameters, cfn["Conditions"])
    statements: list[dict[str, Any]] = document["Statement"]
    return statements


def test_only_this_account_may_send_to_the_offboarding_queue_by_default(cfn: Template) -> None:
    parameter = cfn["Parameters"]["OffboardingSenderRoleArns"]
    assert (parameter["Type"], parameter["Default"]) == ("CommaDelimitedList", "")
    (deny,) = _queue_policy_statements(cfn, "")
    assert (deny["Effect"], deny["Principal"], deny["Action"]) == ("Deny", "*", "sqs:SendMessage")
    assert deny["Resource"] == "<OffboardingQueue.Arn>"
    # no ArnNotLike on [""]: the empty list must not reach the policy
    assert deny["Condition"] == {"StringNotEquals": {"aws:PrincipalAccount": "123456789012"}}


def test_named_sender_roles_may_send_to_the_offboarding_queue_and_nobody_else(cfn: Template) -> None:
    deny, allow = _queue_policy_statements(cfn, ",".join(SENDER_ROLES))
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {
        "StringNotEquals": {"aws:PrincipalAccount": "123456789012"},
        "ArnNotLike": {"aws:PrincipalArn": SENDER_ROLES},
    }
    assert allow == {
        "Sid": "AllowNamedSenderRoles",
        "Effect": "Allow",
        "Principal": {"AWS": SENDER_ROLES},
        "Action": "sqs:SendMessage",
        "Resource": "<OffboardingQueue.Arn>",
    }


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("", True),
        (SENDER_ROLES[0], True),
        (SENDER_ROLES[1], True),
        ("arn:aws-us-gov:iam::210987654321:role/hr", True),
        ("arn:aws:iam::210987654321:root", False),
        ("arn:aws:iam::210987654321:user/ann", False),
        ("*", False),
        ("210987654321", False),
    ],
)
def test_sender_roles_parameter_takes_role_arns_only(cfn: Template, value: str, accepted: bool) -> None:
    # CloudFormation applies a CommaDelimitedList's AllowedPattern to each value of the list.
    pattern = cfn["Parameters"]["OffboardingSenderRoleArns"]["AllowedPattern"]
    assert all(bool(re.fullmatch(pattern, item)) == accepted for item in _deployed_list(value))


def test_webhook_is_a_public_function_url_behind_the_enable_webhook_condition(cfn: Template) -> None:
    assert cfn["Conditions"]["EnableWebhook"] == {"Fn::Equals": [{"Ref": "EnableWebhook"}, "true"]}
    urls = resources_of_type(cfn, "AWS::Lambda::Url")
    assert [(u["Properties"]["TargetFunctionArn"], u["Properties"]["AuthType"]) for u in urls.values()] == [
        ({"Ref": "BoardWebhookFunction"}, "NONE")
    ]
    url_permissions = {
        perm["Properties"]["Action"]
        for perm in resources_of_type(cfn, "AWS::Lambda::Permission").values()
        if perm["Properties"]["FunctionName"] == {"Ref": "BoardWebhookFunction"}
    }
    assert url_permissions == {"lambda:InvokeFunctionUrl", "lambda:InvokeFunction"}
    assert schedule_rules_targeting(cfn, "BoardWebhookFunction") == {}
    webhook_resources = [
        name
        for name, res in cfn["Resources"].items()
        if name.startswith("BoardWebhook") or "BoardWebhook" in str(res)
    ]
    assert webhook_resources, "no webhook resources found"
    unconditional = [
        name for name in webhook_resources if cfn["Resources"][name].get("Condition") != "EnableWebhook"
    ]
    assert unconditional == []
    assert cfn["Outputs"]["BoardWebhookBaseUrl"]["Condition"] == "EnableWebhook"
    assert referenced_names(cfn["Outputs"]["BoardWebhookBaseUrl"]["Value"]) == {"BoardWebhookFunctionUrl"}


def test_every_function_logs_to_its_own_group_with_the_retention_parameter(cfn: Template) -> None:
    log_groups = resources_of_type(cfn, "AWS::Logs::LogGroup")
    used = []
    for function_id in FUNCTION_FOLDERS:
        group_ref = cfn["Resources"][function_id]["Properties"]["LoggingConfig"]["LogGroup"]
        group = log_groups[group_ref["Ref"]]
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
        assert group.get("Condition") == cfn["Resources"][function_id].get("Condition")
        used.append(group_ref["Ref"])
    assert sorted(used) == sorted(log_groups)


# --------------------------------------------------------------------------- environment


@pytest.mark.parametrize("function_id", FUNCTION_FOLDERS)
def test_function_environment_has_exactly_the_contract_names(cfn: Template, function_id: str) -> None:
    assert set(environment(cfn, function_id)) == COMMON_ENVIRONMENT | FUNCTION_ENVIRONMENT[function_id]


@pytest.mark.parametrize("function_id", FUNCTION_FOLDERS)
def test_function_environment_points_at_the_right_resources(cfn: Template, function_id: str) -> None:
    variables = environment(cfn, function_id)
    expected_refs = {
        "MEMBERS_TABLE": "MembersTable",
        "AUDIT_TABLE": "AuditTable",
        "BOARD_EVENTS_TABLE": "BoardEventsTable",
        "ACTIONS_TABLE": "ActionsTable",
        "STATE_TABLE": "StateTable",
        "IDEMPOTENCY_TABLE": "IdempotencyTable",
        "MIRO_TOKEN_SECRET": "MiroTokenSecret",
        "MIRO_SCIM_TOKEN_SECRET": "MiroScimTokenSecret",
        "MIRO_API_URL": "MiroApiUrl",
        "MIRO_SCIM_URL": "MiroScimUrl",
        "MIRO_ORG_ID": "OrgId",
        "POWERTOOLS_LOG_LEVEL": "LogLevel",
        "POWERTOOLS_METRICS_NAMESPACE": "MetricsNamespace",
        "INACTIVE_DAYS": "InactiveDays",
        "AUDIT_BACKFILL_DAYS": "AuditBackfillDays",
        "AUDIT_RETENTION_DAYS": "AuditRetentionDays",
        "BOARD_EVENT_RETENTION_DAYS": "BoardEventRetentionDays",
        "OFFBOARDING_QUEUE_URL": "OffboardingQueue",
        # the worker copies refused messages there; the redrive DLQ only receives repeated failures
        "OFFBOARDING_DLQ_URL": "OffboardingRefusedQueue",
        "PROTECTED_EMAILS": "ProtectedEmails",
        "ALLOW_ADMIN_OFFBOARDING": "AllowAdminOffboarding",
        "MAX_ACTIONS_PER_HOUR": "MaxActionsPerHour",
    }
    for name, value in variables.items():
        if name in expected_refs:
            assert value == {"Ref": expected_refs[name]}, name
    if function_id == "MembersSyncFunction":
        assert variables["WEBHOOK_ENABLED"] == {"Fn::If": ["EnableWebhook", "true", "false"]}
    if function_id == "AuditLogSyncFunction":
        assert variables["AUDIT_EVENT_BUS"] == {
            "Fn::If": ["ForwardAuditEvents", {"Ref": "AuditEventBusName"}, ""]
        }


def test_service_names_are_distinct(cfn: Template) -> None:
    names = [service_name(cfn, function_id) for function_id in FUNCTION_FOLDERS]
    assert len(set(names)) == len(names)


def test_every_environment_name_in_the_conventions_is_set_somewhere(cfn: Template) -> None:
    conventions = CONVENTIONS_PATH.read_text()
    section = conventions.split("## Environment", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", section))
    assert "OFFBOARDING_QUEUE_URL" in documented
    # the paragraph starting "Not set by the template" lists settings with defaults that only tests,
    # benchmarks or operators override
    optional_part = section.split("Not set by the template", 1)[1].split("\n\n", 1)[0]
    optional = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", optional_part))
    provided = set().union(*(environment(cfn, function_id) for function_id in FUNCTION_FOLDERS))
    assert documented - optional - provided == set()
    assert optional & provided == set()


# --------------------------------------------------------------------------- least privilege

EXPECTED_TABLE_ACCESS = {
    "MembersSyncFunction": {"MembersTable", "StateTable"},
    "AuditLogSyncFunction": {"AuditTable", "StateTable", "MembersTable"},
    "BoardWebhookFunction": {"StateTable", "BoardEventsTable", "MembersTable"},
    "OffboardingFunction": {"ActionsTable", "MembersTable", "StateTable", "IdempotencyTable"},
}
EXPECTED_SECRETS = {
    # The SCIM token resolves SCIM ids (one /Users listing joined on email).
    "MembersSyncFunction": {"MiroTokenSecret", "MiroScimTokenSecret"},
    "AuditLogSyncFunction": {"MiroTokenSecret"},
    "BoardWebhookFunction": set(),
    "OffboardingFunction": {"MiroTokenSecret", "MiroScimTokenSecret"},
}
ALLOWED_MANAGED_POLICIES = {"service-role/AWSLambdaBasicExecutionRole", "AWSXrayWriteOnlyAccess"}


def _targets(allowed: dict[str, set[str]], prefix: str) -> set[str]:
    return set().union(*(targets for action, targets in allowed.items() if action.startswith(prefix)))


@pytest.mark.parametrize("function_id", FUNCTION_FOLDERS)
def test_no_inline_statement_allows_every_resource(cfn: Template, function_id: str) -> None:
    wildcard_actions = [action for action, targets in grants(cfn, function_id).items() if "*" in targets]
    assert wildcard_actions == []


@pytest.mark.parametrize("function_id", FUNCTION_FOLDERS)
def test_managed_policies_are_only_logging_and_tracing(cfn: Template, function_id: str) -> None:
    arns = role_of(cfn, function_id)["Properties"]["ManagedPolicyArns"]
    names = {(arn if isinstance(arn, str) else arn["Fn::Sub"]).split(":policy/", 1)[1] for arn in arns}
    # AWSLambdaSQSQueueExecutionRole (receive/delete on every queue) must not sneak in via a SAM SQS event.
    assert names <= ALLOWED_MANAGED_POLICIES


@pytest.mark.parametrize("function_id", FUNCTION_FOLDERS)
def test_function_touches_only_its_tables(cfn: Template, function_id: str) -> None:
    allowed = grants(cfn, function_id)
    assert _targets(allowed, "dynamodb:") == EXPECTED_TABLE_ACCESS[function_id]
    # Every access pattern is a GetItem or a Query (DESIGN.md): nobody needs Scan.
    assert "dynamodb:Scan" not in allowed


def test_webhook_can_only_read_subscriptions_append_events_and_touch_members(cfn: Template) -> None:
    allowed = grants(cfn, "BoardWebhookFunction")
    per_table = {
        table: {
            action
            for action, targets in allowed.items()
            if action.startswith("dynamodb:") and table in targets
        }
        for table in EXPECTED_TABLE_ACCESS["BoardWebhookFunction"]
    }
    # store/subscriptions.py get, store/board_events.py put_once, store/member_activity.py: no Query of
    # the subscription directory and no batch writes, which the webhook never makes.
    assert per_table == {
        "StateTable": {"dynamodb:GetItem"},
        "BoardEventsTable": {"dynamodb:PutItem"},
        "MembersTable": {"dynamodb:UpdateItem"},
    }


def test_members_sync_table_actions_are_gets_queries_and_writes(cfn: Template) -> None:
    allowed = grants(cfn, "MembersSyncFunction")
    per_table = {
        table: {
            action
            for action, targets in allowed.items()
            if action.startswith("dynamodb:") and table in targets
        }
        for table in EXPECTED_TABLE_ACCESS["MembersSyncFunction"]
    }
    # Exactly (this used to be a lower bound that let PutItem, Query and DeleteItem on members and
    # DeleteItem on state through): members are batch-written when new, updated conditionally after,
    # and never deleted or queried by the sync.
    assert per_table["MembersTable"] == {
        "dynamodb:GetItem",
        "dynamodb:BatchGetItem",
        "dynamodb:BatchWriteItem",
        "dynamodb:UpdateItem",
    }
    # StateTable gets BatchWriteItem for the run's chunked blobs; the lost-access check (WEBHOOK_ENABLED)
    # lists the subscription directory (Query) and rewrites a record (PutItem).
    assert per_table["StateTable"] == {
        "dynamodb:GetItem",
        "dynamodb:UpdateItem",
        "dynamodb:PutItem",
        "dynamodb:Query",
        "dynamodb:BatchWriteItem",
    }


# Expiring Miro tokens: the REST token secret gets its refreshed pair written back (a staged version,
# then AWSCURRENT moved to it from the version read): exactly these two writes, on that secret only.
TOKEN_WRITE_BACK = {"secretsmanager:PutSecretValue", "secretsmanager:UpdateSecretVersionStage"}


@pytest.mark.parametrize("function_id", FUNCTION_FOLDERS)
def test_function_reads_only_its_secrets(cfn: Template, function_id: str) -> None:
    allowed = grants(cfn, function_id)
    secret_actions = {action for action in allowed if action.startswith("secretsmanager:")}
    assert secret_actions <= {"secretsmanager:GetSecretValue"} | TOKEN_WRITE_BACK
    assert allowed.get("secretsmanager:GetSecretValue", set()) == EXPECTED_SECRETS[function_id]
    writes_back = "MiroTokenSecret" in EXPECTED_SECRETS[function_id]
    for action in TOKEN_WRITE_BACK:
        assert allowed.get(action, set()) == ({"MiroTokenSecret"} if writes_back else set()), action


@pytest.mark.parametrize("function_id", FUNCTION_FOLDERS)
def test_only_offboarding_uses_the_queue(cfn: Template, function_id: str) -> None:
    sqs_targets = _targets(grants(cfn, function_id), "sqs:")
    # Not the redrive DLQ: SQS moves failures there itself.
    expected = {"OffboardingQueue", "OffboardingRefusedQueue"}
    assert sqs_targets == (expected if function_id == "OffboardingFunction" else set())


def test_offboarding_polls_and_requeues_only_its_queue(cfn: Template) -> None:
    allowed = grants(cfn, "OffboardingFunction")
    for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:SendMessage*"):
        assert allowed[action] == {"OffboardingQueue"}, action


def test_offboarding_may_only_send_single_messages_to_the_refused_queue(cfn: Template) -> None:
    allowed = grants(cfn, "OffboardingFunction")
    on_refused = {action for action, targets in allowed.items() if "OffboardingRefusedQueue" in targets}
    assert on_refused == {"sqs:SendMessage"}
    assert allowed["sqs:SendMessage"] == {"OffboardingRefusedQueue"}
    assert [action for action, targets in allowed.items() if "OffboardingDeadLetterQueue" in targets] == []


@pytest.mark.parametrize("function_id", ["BoardWebhookFunction", "OffboardingFunction"])
def test_webhook_and_offboarding_cannot_invoke_functions(cfn: Template, function_id: str) -> None:
    assert [action for action in grants(cfn, function_id) if action.startswith("lambda:")] == []


def test_audit_forwarding_permission_exists_only_when_enabled(cfn: Template) -> None:
    conditional = [
        (condition, statement)
        for condition, document in policy_documents(cfn, "AuditLogSyncFunction")
        for statement in document["Statement"]
        if statement["Action"] == "events:PutEvents"
    ]
    assert [condition for condition, _ in conditional] == ["ForwardAuditEvents"]
    assert referenced_names(conditional[0][1]["Resource"]) == {"AuditEventBusName"}
    for function_id in FUNCTION_FOLDERS:
        assert "events:PutEvents" not in grants(cfn, function_id, include_conditional=False)


def _dynamodb_grants(cfn: Template, function_id: str) -> set[tuple[str, str, str]]:
    """(action, table, "" for the table itself or the "/index/..." part) of every DynamoDB grant."""
    found: set[tuple[str, str, str]] = set()
    for _, document in policy_documents(cfn, function_id):
        for statement in document["Statement"]:
            for action in _as_list(statement["Action"]):
                if not action.startswith("dynamodb:"):
                    continue
                for resource in _as_list(statement["Resource"]):
                    (table,) = referenced_names(resource)
                    text = resource["Fn::Sub"] if isinstance(resource, dict) and "Fn::Sub" in resource else ""
                    suffix = text.split("}", 1)[1] if isinstance(text, str) and "}" in text else ""
                    found.add((action.removeprefix("dynamodb:"), table, suffix))
    return found


def test_audit_sync_gets_exactly_the_dynamodb_calls_on_its_path(cfn: Template) -> None:
    # store/audit.py (filter_new, put, query_time_range), store/state.py (checkpoint and lease),
    # RejectedEventsRepository.record, MembersRepository.get_many, record_sign_in/record_audit_activity
    # and find_by_email (ByEmail index): nothing else, in particular no Scan, DeleteItem or PutItem.
    assert _dynamodb_grants(cfn, "AuditLogSyncFunction") == {
        ("BatchGetItem", "AuditTable", ""),
        ("BatchWriteItem", "AuditTable", ""),
        ("Query", "AuditTable", ""),
        ("GetItem", "StateTable", ""),
        ("UpdateItem", "StateTable", ""),
        ("BatchWriteItem", "StateTable", ""),
        ("BatchGetItem", "MembersTable", ""),
        ("UpdateItem", "MembersTable", ""),
        ("Query", "MembersTable", "/index/ByEmail"),
    }


@pytest.mark.parametrize(
    ("function_id", "expected"),
    [
        (
            # sync/members.py's MembersStore and StateStore, and the lost-access check
            "MembersSyncFunction",
            {
                ("GetItem", "MembersTable", ""),
                ("BatchGetItem", "MembersTable", ""),
                ("BatchWriteItem", "MembersTable", ""),
                ("UpdateItem", "MembersTable", ""),
                ("GetItem", "StateTable", ""),
                ("UpdateItem", "StateTable", ""),
                ("PutItem", "StateTable", ""),
                ("Query", "StateTable", ""),
                ("BatchWriteItem", "StateTable", ""),
            },
        ),
        (
            # SubscriptionsRepository.get, BoardEventsRepository.put_once, MemberActivityRepository
            "BoardWebhookFunction",
            {
                ("GetItem", "StateTable", ""),
                ("PutItem", "BoardEventsTable", ""),
                ("UpdateItem", "MembersTable", ""),
            },
        ),
        (
            # ActionsRepository get/create/update/by_outcome/by_member, MembersRepository get/
            # find_by_email/set_status, BlastRadiusCounter try_take/count_unconditionally, Idempotency
            "OffboardingFunction",
            {
                ("GetItem", "ActionsTable", ""),
                ("PutItem", "ActionsTable", ""),
                ("UpdateItem", "ActionsTable", ""),
                ("Query", "ActionsTable", "/index/ByOutcome"),
                ("Query", "ActionsTable", "/index/ByMember"),
                ("GetItem", "MembersTable", ""),
                ("UpdateItem", "MembersTable", ""),
                ("Query", "MembersTable", "/index/ByEmail"),
                ("Query", "StateTable", ""),
                ("UpdateItem", "StateTable", ""),
                ("GetItem", "IdempotencyTable", ""),
                ("PutItem", "IdempotencyTable", ""),
                ("UpdateItem", "IdempotencyTable", ""),
                ("DeleteItem", "IdempotencyTable", ""),
            },
        ),
    ],
)
def test_function_gets_exactly_the_dynamodb_calls_on_its_path(
    cfn: Template, function_id: str, expected: set[tuple[str, str, str]]
) -> None:
    # No Scan anywhere, no DeleteItem except Powertools Idempotency's, no index the code never queries.
    assert _dynamodb_grants(cfn, function_id) == expected


def _statements_on(cfn: Template, function_id: str, table_id: str) -> list[dict[str, Any]]:
    return [
        statement
        for _, document in policy_documents(cfn, function_id)
        for statement in document["Statement"]
        if any(a.startswith("dynamodb:") for a in _as_list(statement["Action"]))
        and table_id in referenced_names(statement["Resource"])
    ]


class _RecordingTable:
    """A table whose conditional writes fail as often as asked; records every request."""

    def __init__(self, condition_failures: int = 0) -> None:
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self._failures = condition_failures

    def _record(self, operation: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        self.requests.append((operation, kwargs))
        if operation != "query" and "ConditionExpression" in kwargs and self._failures > 0:
            self._failures -= 1
            raise ClientError({"Error": {"Code": "ConditionalCheckFailedException"}}, operation)
        return {"Items": []}

    def update_item(self, **kwargs: Any) -> dict[str, Any]:
        return self._record("update_item", kwargs)

    def get_item(self, **kwargs: Any) -> dict[str, Any]:
        return self._record("get_item", kwargs)

    def query(self, **kwargs: Any) -> dict[str, Any]:
        return self._record("query", kwargs)

    def put_item(self, **kwargs: Any) -> dict[str, Any]:
        return self._record("put_item", kwargs)

    def delete_item(self, **kwargs: Any) -> dict[str, Any]:
        return self._record("delete_item", kwargs)


def test_webhook_may_update_only_the_activity_attributes_member_activity_writes(cfn: Template) -> None:
    from datetime import UTC, datetime

    from miro_sync.store.member_activity import MemberActivityRepository

    # Both of member_activity.py's conditional UpdateItems (the second runs when the first's condition fails).
    table = _RecordingTable(condition_failures=1)
    MemberActivityRepository(table).record_board_activity(
        "3458764517517852417", datetime(2026, 1, 2, tzinfo=UTC)
    )
    assert [operation for operation, _ in table.requests] == ["update_item", "update_item"]
    referenced = set().union(
        *(
            set(kwargs["Key"]) | set(kwargs["ExpressionAttributeNames"].values())
            for _, kwargs in table.requests
        )
    )
    assert all("ReturnValues" not in kwargs for _, kwargs in table.requests)

    (statement,) = _statements_on(cfn, "BoardWebhookFunction", "MembersTable")
    assert statement["Action"] == "dynamodb:UpdateItem"
    condition = statement["Condition"]
    allowed = condition["ForAllValues:StringEquals"]["dynamodb:Attributes"]
    # Exactly what the code reads, writes and evaluates, the table's key (memberId) included, as AWS
    # requires: not email, role, license or status.
    assert set(allowed) == referenced
    assert {
        key["AttributeName"] for key in cfn["Resources"]["MembersTable"]["Properties"]["KeySchema"]
    } <= set(allowed)
    # UpdateItem may not return the whole old or new item (that would read every attribute).
    assert condition["StringEqualsIfExists"]["dynamodb:ReturnValues"] == [
        "NONE",
        "UPDATED_OLD",
        "UPDATED_NEW",
    ]
    assert condition["StringEqualsIfExists"]["dynamodb:Select"] == "SPECIFIC_ATTRIBUTES"


def _partition_patterns(statement: dict[str, Any]) -> list[str]:
    patterns: list[str] = statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
    return patterns


def _other_state_partitions() -> dict[str, str]:
    """Every StateTable partition the code writes, by owner."""
    from miro_sync.store.audit import REJECTED_PK
    from miro_sync.store.blast_radius import PARTITION
    from miro_sync.store.state import USAGE_SNAPSHOT_PK
    from miro_sync.store.subscriptions import DIRECTORY_PK, credential_pk
    from miro_sync.sync.audit import CHECKPOINT_NAME as AUDIT_CHECKPOINT

    return {
        "blast radius": PARTITION,
        "subscription credential": credential_pk("0" * 64),
        "subscription directory": DIRECTORY_PK,
        "members checkpoint": "sync#members",  # StateRepository._checkpoint_key
        "audit checkpoint": f"sync#{AUDIT_CHECKPOINT}",
        "members run pages": "sync#members#run#r-1",
        "usage snapshots": USAGE_SNAPSHOT_PK,
        "rejected audit events": REJECTED_PK,
    }


def _matching_partitions(patterns: list[str]) -> set[str]:
    return {
        owner
        for owner, partition in _other_state_partitions().items()
        if any(fnmatchcase(partition, pattern) for pattern in patterns)
    }


def test_offboarding_writes_only_its_blast_radius_items_in_the_state_table(cfn: Template) -> None:
    from datetime import UTC, datetime

    from miro_sync.store.blast_radius import PARTITION, BlastRadiusCounter

    # The partition keys BlastRadiusCounter really uses (its Query and both UpdateItems).
    table = _RecordingTable()
    counter = BlastRadiusCounter(table)  # type: ignore[arg-type]
    now = datetime(2026, 1, 2, 9, 30, 10, tzinfo=UTC)
    assert counter.try_take(now, limit=25)
    counter.count_unconditionally(now)
    used = {kwargs["Key"]["pk"] for operation, kwargs in table.requests if operation == "update_item"}
    for operation, kwargs in table.requests:
        if operation == "query":  # Key("pk").eq(...) & Key("sk").between(...)
            for part in kwargs["KeyConditionExpression"].get_expression()["values"]:
                key, *values = part.get_expression()["values"]
                if key.name == "pk":
                    used |= {str(value) for value in values}
    assert sorted(op for op, _ in table.requests) == ["query", "update_item", "update_item"]

    (statement,) = _statements_on(cfn, "OffboardingFunction", "StateTable")
    patterns = _partition_patterns(statement)
    assert used == {PARTITION}
    assert all(any(fnmatchcase(pk, pattern) for pattern in patterns) for pk in used)
    assert _matching_partitions(patterns) == {"blast radius"}


def test_webhook_reads_only_subscription_credentials_in_the_state_table(cfn: Template) -> None:
    (statement,) = _statements_on(cfn, "BoardWebhookFunction", "StateTable")
    assert statement["Action"] == "dynamodb:GetItem"
    assert _matching_partitions(_partition_patterns(statement)) == {"subscription credential"}


def test_only_offboarding_uses_the_idempotency_table(cfn: Template) -> None:
    users = [f for f in FUNCTION_FOLDERS if "IdempotencyTable" in _targets(grants(cfn, f), "dynamodb:")]
    assert users == ["OffboardingFunction"]


def test_secrets_are_generated_placeholders(cfn: Template) -> None:
    secrets = resources_of_type(cfn, "AWS::SecretsManager::Secret")
    assert set(secrets) == {"MiroTokenSecret", "MiroScimTokenSecret"}
    for secret in secrets.values():
        assert "SecretString" not in secret["Properties"]
        assert "GenerateSecretString" in secret["Properties"]


# --------------------------------------------------------------------------- tables

TABLE_TTL = {
    "MembersTable": None,
    "AuditTable": "expiresAt",
    "BoardEventsTable": "expiresAt",
    "ActionsTable": None,
    "StateTable": "expiresAt",
    "IdempotencyTable": "expiration",
}
TABLE_INDEXES = {
    "MembersTable": {"ByEmail", "BySeat"},
    "AuditTable": {"ByActor", "ByEventType"},
    "ActionsTable": {"ByMember", "ByOutcome"},
}


def _contains_intrinsic(node: Any) -> bool:
    if isinstance(node, list):
        return any(_contains_intrinsic(item) for item in node)
    if isinstance(node, dict):
        return any(
            key == "Ref" or key.startswith("Fn::") or _contains_intrinsic(v) for key, v in node.items()
        )
    return False


@pytest.mark.parametrize("table_id", TABLES)
def test_table_is_on_demand_encrypted_recoverable_and_expires_what_it_should(
    cfn: Template, table_id: str
) -> None:
    table = cfn["Resources"][table_id]
    properties = table["Properties"]
    assert table["Type"] == "AWS::DynamoDB::Table"
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert deployed(cfn, properties["SSESpecification"]) == {"SSEEnabled": True}
    assert "TableName" not in properties
    ttl = TABLE_TTL[table_id]
    expected_ttl = None if ttl is None else {"AttributeName": ttl, "Enabled": True}
    assert properties.get("TimeToLiveSpecification") == expected_ttl
    if table_id != "IdempotencyTable":
        assert (table["DeletionPolicy"], table["UpdateReplacePolicy"]) == ("Retain", "Retain")


@pytest.mark.parametrize("table_id", TABLES)
def test_table_keys_are_literal_for_the_local_stack(cfn: Template, table_id: str) -> None:
    properties = cfn["Resources"][table_id]["Properties"]
    key_parts = {
        key: properties.get(key) for key in ("AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes")
    }
    assert not _contains_intrinsic(key_parts)
    indexes = properties.get("GlobalSecondaryIndexes", [])
    assert {index["IndexName"] for index in indexes} == TABLE_INDEXES.get(table_id, set())
    if table_id != "AuditTable":  # see test_audit_indexes_project_the_listing_attributes_only
        assert all(index["Projection"] == {"ProjectionType": "ALL"} for index in indexes)
    key_attributes = {k["AttributeName"] for k in properties["KeySchema"]} | {
        k["AttributeName"] for index in indexes for k in index["KeySchema"]
    }
    assert {a["AttributeName"] for a in properties["AttributeDefinitions"]} == key_attributes


AUDIT_LISTING_ATTRIBUTES = {
    "eventId", "createdAt", "event", "category", "actor", "actorType", "actorId", "actorEmail",
    "objectId", "objectName",
}  # fmt: skip


def test_audit_indexes_project_the_listing_attributes_only(cfn: Template) -> None:
    # store/audit.py's AuditSummary is read from these indexes; `raw` stays in the table only
    # (AuditRepository.full_events), so an event's raw JSON is written once, not three times.
    for index in cfn["Resources"]["AuditTable"]["Properties"]["GlobalSecondaryIndexes"]:
        projection = index["Projection"]
        assert projection["ProjectionType"] == "INCLUDE"
        index_keys = {key["AttributeName"] for key in index["KeySchema"]}
        projected = set(projection["NonKeyAttributes"]) | index_keys | {"day", "sk"}
        assert projected >= AUDIT_LISTING_ATTRIBUTES
        assert "raw" not in projected
        assert not index_keys & set(projection["NonKeyAttributes"])


# --------------------------------------------------------------------------- customer-managed key (KmsKeyArn)

CUSTOMER_KEY = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
# Where each type of resource takes its key, and how it reads without one (AWS-owned/managed keys).
KEY_PROPERTIES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "AWS::DynamoDB::Table": (
        {"SSESpecification": {"SSEEnabled": True, "SSEType": "KMS", "KMSMasterKeyId": CUSTOMER_KEY}},
        {"SSESpecification": {"SSEEnabled": True}},
    ),
    "AWS::SQS::Queue": (
        {"SqsManagedSseEnabled": False, "KmsMasterKeyId": CUSTOMER_KEY},
        {"SqsManagedSseEnabled": True, "KmsMasterKeyId": None},
    ),
    "AWS::SecretsManager::Secret": ({"KmsKeyId": CUSTOMER_KEY}, {"KmsKeyId": None}),
    "AWS::Logs::LogGroup": ({"KmsKeyId": CUSTOMER_KEY}, {"KmsKeyId": None}),
}
# The services that keep the functions' data under the key; a function may use it through these only.
KEY_SERVICES = ("dynamodb", "sqs", "secretsmanager")


def _key_properties(cfn: Template, resource: dict[str, Any], **parameters: Any) -> dict[str, Any]:
    properties = deployed(cfn, resource["Properties"], **parameters)
    with_key, _ = KEY_PROPERTIES[resource["Type"]]
    return {name: properties.get(name) for name in with_key}


def _key_statements(cfn: Template, function_id: str, **parameters: Any) -> list[dict[str, Any]]:
    policies = deployed(cfn, role_of(cfn, function_id)["Properties"]["Policies"], **parameters)
    statements = [statement for policy in policies for statement in policy["PolicyDocument"]["Statement"]]
    return [s for s in statements if any(a.startswith("kms:") for a in _as_list(s["Action"]))]


def test_customer_managed_key_parameter_is_off_by_default(cfn: Template) -> None:
    parameter = cfn["Parameters"]["KmsKeyArn"]
    assert (parameter["Type"], parameter["Default"]) == ("String", "")
    assert deployed(cfn, cfn["Conditions"]["UseCustomerManagedKey"]) is False
    assert deployed(cfn, cfn["Conditions"]["UseCustomerManagedKey"], KmsKeyArn=CUSTOMER_KEY) is True


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("", True),
        (CUSTOMER_KEY, True),
        ("arn:aws-us-gov:kms:us-gov-west-1:123456789012:key/mrk-1234abcd12ab34cd56ef1234567890ab", True),
        ("arn:aws:kms:eu-west-1:123456789012:alias/miro-sync", False),  # log groups take key ARNs only
        ("1234abcd-12ab-34cd-56ef-1234567890ab", False),
        ("alias/aws/dynamodb", False),
    ],
)
def test_customer_managed_key_parameter_takes_a_key_arn(cfn: Template, value: str, accepted: bool) -> None:
    assert bool(re.fullmatch(cfn["Parameters"]["KmsKeyArn"]["AllowedPattern"], value)) == accepted


@pytest.mark.parametrize("resource_type", KEY_PROPERTIES)
def test_without_a_key_every_resource_keeps_the_aws_owned_or_managed_key(
    cfn: Template, resource_type: str
) -> None:
    resources = resources_of_type(cfn, resource_type)
    assert resources
    _, without_key = KEY_PROPERTIES[resource_type]
    for name, resource in resources.items():
        assert _key_properties(cfn, resource) == without_key, name


@pytest.mark.parametrize("resource_type", KEY_PROPERTIES)
def test_the_key_encrypts_every_table_queue_secret_and_log_group(cfn: Template, resource_type: str) -> None:
    # Every resource of the type, so a table or queue added later without the key fails here.
    with_key, _ = KEY_PROPERTIES[resource_type]
    for name, resource in resources_of_type(cfn, resource_type).items():
        assert _key_properties(cfn, resource, KmsKeyArn=CUSTOMER_KEY) == with_key, name


def test_the_alarm_topic_keeps_its_own_key_either_way(cfn: Template) -> None:
    # CloudWatch publishes only with a key whose policy names it
    # (test_alarm_topic_key_lets_cloudwatch_publish): the stack's key does not replace it.
    topic = cfn["Resources"]["AlarmTopic"]["Properties"]
    assert deployed(cfn, topic, KmsKeyArn=CUSTOMER_KEY)["KmsMasterKeyId"] == "<AlarmTopicKey.Arn>"


@pytest.mark.parametrize("function_id", FUNCTION_FOLDERS)
def test_functions_get_no_key_permission_without_a_key(cfn: Template, function_id: str) -> None:
    assert _key_statements(cfn, function_id) == []


@pytest.mark.parametrize("function_id", FUNCTION_FOLDERS)
def test_function_may_use_the_key_only_through_the_services_that_keep_its_data(
    cfn: Template, function_id: str
) -> None:
    (statement,) = _key_statements(cfn, function_id, KmsKeyArn=CUSTOMER_KEY)
    assert statement["Effect"] == "Allow"
    assert sorted(_as_list(statement["Action"])) == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert statement["Resource"] == CUSTOMER_KEY
    used = {action.split(":", 1)[0] for action in grants(cfn, function_id)} & set(KEY_SERVICES)
    via = statement["Condition"]["StringEquals"]["kms:ViaService"]
    assert sorted(via) == sorted(f"{service}.eu-west-1.amazonaws.com" for service in used)


# --------------------------------------------------------------------------- alarms and outputs


def alarms(cfn: Template) -> dict[str, dict[str, Any]]:
    return resources_of_type(cfn, "AWS::CloudWatch::Alarm")


def test_dead_letter_queue_alarm(cfn: Template) -> None:
    (alarm,) = [
        a["Properties"]
        for a in alarms(cfn).values()
        if a["Properties"]["MetricName"] == "ApproximateNumberOfMessagesVisible"
    ]
    assert alarm["Namespace"] == "AWS/SQS"
    assert alarm["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["OffboardingDeadLetterQueue", "QueueName"]}}
    ]
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)


def test_dead_letter_queue_alarm_watches_only_the_redrive_target(cfn: Template) -> None:
    # Only SQS's redrive puts messages there (nobody may send to it), so a visible message is a request
    # that failed maxReceiveCount times, never a refused copy; NumberOfMessagesSent would miss exactly
    # those (SQS does not count redriven messages in it).
    (alarm,) = [
        a["Properties"]
        for a in alarms(cfn).values()
        if a["Properties"]["Dimensions"]
        == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["OffboardingDeadLetterQueue", "QueueName"]}}]
    ]
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert _redrive_targets(cfn) == {"OffboardingDeadLetterQueue"}
    senders = {
        function_id
        for function_id in FUNCTION_FOLDERS
        if "OffboardingDeadLetterQueue" in _targets(grants(cfn, function_id), "sqs:")
    }
    assert senders == set()


def test_refusals_alarm_once_per_new_refusal(cfn: Template) -> None:
    # The worker's copies are SendMessage calls, which NumberOfMessagesSent counts: the alarm fires for
    # the period in which a refusal happened and returns to OK, whatever stays queued for 14 days.
    (alarm,) = [
        a["Properties"]
        for a in alarms(cfn).values()
        if a["Properties"]["Dimensions"]
        == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["OffboardingRefusedQueue", "QueueName"]}}]
    ]
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == (
        "AWS/SQS",
        "NumberOfMessagesSent",
        "Sum",
    )
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)
    assert alarm["TreatMissingData"] == "notBreaching"


def _worker_source() -> str:
    """Every module of the offboarding package (the worker and the parts it delegates to)."""
    package = REPO_ROOT / "layers" / "miro_sync" / "miro_sync" / "offboarding"
    return "\n".join(path.read_text() for path in sorted(package.glob("*.py")))


@pytest.mark.parametrize(
    ("metric", "emitted_today"),
    [
        # each record that failed and goes back to the queue: with partial batch responses a batch
        # whose every record failed leaves Lambda's Errors metric at 0
        ("OffboardingTransientFailures", True),
        # invalid ProtectedEmails configuration: the worker refuses every destructive action
        ("OffboardingConfigurationError", False),
    ],
)
def test_offboarding_alarms_on_its_own_failure_metrics(
    cfn: Template, metric: str, emitted_today: bool
) -> None:
    (alarm,) = [a["Properties"] for a in alarms(cfn).values() if a["Properties"]["MetricName"] == metric]
    assert alarm["Namespace"] == {"Ref": "MetricsNamespace"}
    assert environment(cfn, "OffboardingFunction")["POWERTOOLS_METRICS_NAMESPACE"] == {
        "Ref": "MetricsNamespace"
    }
    # Powertools Metrics adds the service dimension (POWERTOOLS_SERVICE_NAME) to every metric.
    assert alarm["Dimensions"] == [{"Name": "service", "Value": service_name(cfn, "OffboardingFunction")}]
    assert (alarm["Statistic"], alarm["ComparisonOperator"], alarm["Threshold"]) == (
        "Sum",
        "GreaterThanThreshold",
        0,
    )
    assert alarm["TreatMissingData"] == "notBreaching"
    if emitted_today:
        assert f'"{metric}"' in _worker_source()


def test_alarm_topic_key_lets_cloudwatch_publish(cfn: Template) -> None:
    # CloudWatch drops an alarm's notification if it may not use the topic's key: the AWS-managed
    # alias/aws/sns key's policy cannot allow it, a customer-managed key's can.
    topic = cfn["Resources"]["AlarmTopic"]["Properties"]
    assert topic["KmsMasterKeyId"] == {"Fn::GetAtt": ["AlarmTopicKey", "Arn"]}
    key = cfn["Resources"]["AlarmTopicKey"]
    assert key["Type"] == "AWS::KMS::Key"
    assert key["Properties"]["EnableKeyRotation"] is True
    statements = key["Properties"]["KeyPolicy"]["Statement"]
    (cloudwatch,) = [s for s in statements if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}]
    assert cloudwatch["Effect"] == "Allow"
    assert set(cloudwatch["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    assert "Condition" not in cloudwatch  # a condition key the request lacks would drop every alarm
    # The account keeps administering its key (KMS refuses a policy that would lock it out).
    (root,) = [s for s in statements if s["Principal"] != {"Service": "cloudwatch.amazonaws.com"}]
    assert root["Principal"] == {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}}
    assert (root["Effect"], root["Action"]) == ("Allow", "kms:*")


def test_every_function_has_an_errors_alarm_with_its_condition(cfn: Template) -> None:
    watched = {
        alarm["Properties"]["Dimensions"][0]["Value"]["Ref"]: alarm.get("Condition")
        for alarm in alarms(cfn).values()
        if alarm["Properties"]["MetricName"] == "Errors"
    }
    assert watched == {
        function_id: cfn["Resources"][function_id].get("Condition") for function_id in FUNCTION_FOLDERS
    }


@pytest.mark.parametrize(
    ("function_id", "schedule_parameter", "period_parameter"),
    [
        ("MembersSyncFunction", "MembersSyncSchedule", "MembersSyncAlarmPeriodSeconds"),
        ("AuditLogSyncFunction", "AuditLogSyncSchedule", "AuditLogSyncAlarmPeriodSeconds"),
    ],
)
def test_sync_alarms_when_no_success_for_two_schedule_periods(
    cfn: Template, function_id: str, schedule_parameter: str, period_parameter: str
) -> None:
    service = service_name(cfn, function_id)
    (alarm,) = [
        a["Properties"]
        for a in alarms(cfn).values()
        if a["Properties"]["MetricName"] == "SyncSucceeded"
        and a["Properties"]["Dimensions"] == [{"Name": "service", "Value": service}]
    ]
    assert alarm["Namespace"] == {"Ref": "MetricsNamespace"}
    assert (alarm["Statistic"], alarm["ComparisonOperator"], alarm["Threshold"]) == (
        "Sum",
        "LessThanThreshold",
        1,
    )
    assert alarm["TreatMissingData"] == "breaching"
    assert alarm["Period"] == {"Ref": period_parameter}
    parameters = cfn["Parameters"]
    schedule_default = parameters[schedule_parameter]["Default"]
    assert parameters[period_parameter]["Default"] == 2 * rate_seconds(schedule_default)


def test_blast_radius_alarm_watches_offboarding_held(cfn: Template) -> None:
    (alarm,) = [
        a["Properties"] for a in alarms(cfn).values() if a["Properties"]["MetricName"] == "OffboardingHeld"
    ]
    assert alarm["Namespace"] == {"Ref": "MetricsNamespace"}
    assert alarm["Dimensions"] == [{"Name": "service", "Value": service_name(cfn, "OffboardingFunction")}]
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)


def test_every_alarm_notifies_the_alarm_topic(cfn: Template) -> None:
    for name, alarm in alarms(cfn).items():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}], name
    subscription = cfn["Resources"]["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail"


def test_outputs_name_the_queue_and_every_table(cfn: Template) -> None:
    outputs = cfn["Outputs"]
    assert outputs["OffboardingQueueUrl"]["Value"] == {"Ref": "OffboardingQueue"}
    for table_id in TABLES:
        assert outputs[f"{table_id}Name"]["Value"] == {"Ref": table_id}


def test_parameters_constrain_what_they_can(cfn: Template) -> None:
    parameters = cfn["Parameters"]
    assert parameters["AuditBackfillDays"]["Default"] == 30
    assert parameters["AuditBackfillDays"]["MaxValue"] == 90
    for flag in ("EnableWebhook", "EnableAuditForwarding", "AllowAdminOffboarding"):
        assert parameters[flag]["AllowedValues"] == ["true", "false"], flag
    assert "Default" not in parameters["OrgId"]
    assert parameters["MembersSyncSchedule"]["Default"] == "rate(6 hours)"
    assert parameters["AuditLogSyncSchedule"]["Default"] == "rate(1 hour)"


@pytest.mark.parametrize("parameter", ["MiroApiUrl", "MiroScimUrl"])
@pytest.mark.parametrize(
    ("url", "accepted"),
    [
        ("https://api.miro.com", True),
        ("https://miro.com/api/v1/scim", True),
        ("http://api.miro.com", False),
        ("http://127.0.0.1:8900", False),  # the local runner bypasses this: test_template_local_runner.py
        ("ftp://api.miro.com", False),
        ("https://", False),
    ],
)
def test_miro_urls_are_https_only(cfn: Template, parameter: str, url: str, accepted: bool) -> None:
    # The tokens travel in the Authorization header of every request.
    declared = cfn["Parameters"][parameter]
    assert bool(re.fullmatch(declared["AllowedPattern"], url)) == accepted
    assert re.fullmatch(declared["AllowedPattern"], declared["Default"])


# --------------------------------------------------------------------------- sample events


def load_event(relative: str) -> dict[str, Any]:
    loaded = json.loads((EVENTS_DIR / relative).read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_every_sample_event_is_listed_in_the_readme() -> None:
    readme = (EVENTS_DIR / "README.md").read_text()
    files = {str(path.relative_to(EVENTS_DIR)) for path in EVENTS_DIR.rglob("*.json")}
    required = {
        "members_sync/scheduled.json",
        "audit_log_sync/scheduled.json",
        "board_webhook/challenge.json",
        "board_webhook/item_created.json",
        "board_webhook/item_updated.json",
        "board_webhook/item_deleted.json",
        "offboarding/sqs_batch.json",
        "offboarding/sweep.json",
    }
    assert required <= files
    assert sorted(f for f in files if f"`{f}`" not in readme) == []


@pytest.mark.parametrize(
    "relative", ["members_sync/scheduled.json", "audit_log_sync/scheduled.json", "offboarding/sweep.json"]
)
def test_scheduled_events_have_the_eventbridge_shape(relative: str) -> None:
    event = EventBridgeModel.model_validate(load_event(relative))
    assert (event.source, event.detail_type, event.detail) == ("aws.events", "Scheduled Event", {})
    assert event.resources[0].startswith(f"arn:aws:events:{event.region}:{event.account}:rule/")


@pytest.mark.parametrize(
    ("relative", "event_type"),
    [
        ("board_webhook/item_created.json", "create"),
        ("board_webhook/item_updated.json", "update"),
        ("board_webhook/item_deleted.json", "delete"),
    ],
)
def test_board_events_are_function_url_posts_with_a_miro_body(relative: str, event_type: str) -> None:
    event = LambdaFunctionUrlModel.model_validate(load_event(relative))
    assert event.rawPath == "/board-events/local-demo-secret"
    assert event.requestContext.http.method == "POST"
    assert isinstance(event.body, str)
    body = json.loads(event.body)
    assert body["eventType"] == "board_subscription"
    assert body["event"]["type"] == event_type
    item = body["event"]["item"]
    assert {"id", "type", "modifiedBy"} <= set(item)
    assert re.fullmatch(r"\d{19}", item["modifiedBy"]["id"])
    assert int(event.headers["content-length"]) == len(event.body.encode())


def test_challenge_event_carries_only_the_challenge() -> None:
    event = LambdaFunctionUrlModel.model_validate(load_event("board_webhook/challenge.json"))
    assert isinstance(event.body, str)
    assert list(json.loads(event.body)) == ["challenge"]


def test_offboarding_batch_covers_every_action_and_a_malformed_body() -> None:
    batch = SqsModel.model_validate(load_event("offboarding/sqs_batch.json"))
    parsed: list[dict[str, Any]] = []
    malformed = 0
    for record in batch.Records:
        assert isinstance(record.body, str)
        assert record.md5OfBody == hashlib.md5(record.body.encode()).hexdigest()  # noqa: S324 - SQS's checksum
        try:
            parsed.append(json.loads(record.body))
        except json.JSONDecodeError:
            malformed += 1
    assert malformed == 1
    assert sorted(body["action"] for body in parsed) == ["delete", "reactivate", "suspend"]
    (delete,) = [body for body in parsed if body["action"] == "delete"]
    assert "notBefore" in delete
    assert re.fullmatch(r"\d{19}", delete["memberId"])
    assert all(body.get("email", "@example.com").endswith("@example.com") for body in parsed)
    assert len({record.messageId for record in batch.Records}) == len(batch.Records)


def test_the_audit_archive_uses_the_infrequent_access_table_class_and_the_live_tables_do_not(
    cfn: Template,
) -> None:
    # Audit events are written once and read rarely: storage dominates (bench/cost.py), IA stores at 40%.
    tables = {
        name: resource["Properties"]
        for name, resource in cfn["Resources"].items()
        if resource["Type"] == "AWS::DynamoDB::Table"
    }
    assert tables["AuditTable"]["TableClass"] == "STANDARD_INFREQUENT_ACCESS"
    assert all("TableClass" not in properties for name, properties in tables.items() if name != "AuditTable")
