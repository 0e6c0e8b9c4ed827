from pathlib import Path

import pytest

from miro_sync_cli.local.errors import LocalStackError
from miro_sync_cli.local.template import Template

TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Parameters:
  Stage:
    Type: String
    Default: dev
  NoDefault:
    Type: String
Conditions:
  IsProd: !Equals [!Ref Stage, prod]
Globals:
  Function:
    Timeout: 30
    Environment:
      Variables:
        TABLE: !Ref Things
        STAGE: !Ref Stage
Resources:
  Things:
    Type: AWS::DynamoDB::Table
    Properties:
      KeySchema: [{AttributeName: id, KeyType: HASH}]
  Worker:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/worker
      Handler: app.handler
      MemorySize: 256
      Environment:
        Variables:
          ARN: !GetAtt Things.Arn
          URL: !Sub "https://${AWS::Region}.example.com/${Stage}/${Things}"
          MODE: !If [IsProd, strict, lenient]
          JOINED: !Join [",", [a, !Ref Stage]]
          GONE: !If [IsProd, x, !Ref AWS::NoValue]
  Broken:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.handler
      Environment:
        Variables:
          MISSING: !Ref NotThere
"""


@pytest.fixture
def template(tmp_path: Path) -> Template:
    path = tmp_path / "template.yaml"
    path.write_text(TEMPLATE)
    loaded = Template.load(path)
    loaded.physical_ids["Things"] = "things-local"
    return loaded


def test_environment_merges_globals_and_resolves_every_intrinsic(template: Template) -> None:
    spec = template.function("Worker")
    assert (spec.timeout_s, spec.memory_mb, spec.code_uri) == (30, 256, "functions/worker")
    assert template.resolved_environment(spec) == {
        "TABLE": "things-local",
        "STAGE": "dev",
        "ARN": "arn:aws:dynamodb:us-east-1:123456789012:Things/Arn",
        "URL": "https://us-east-1.example.com/dev/things-local",
        "MODE": "lenient",
        "JOINED": "a,dev",
    }


def test_parameter_override_changes_conditions(template: Template) -> None:
    template.parameter_overrides["Stage"] = "prod"
    environment = template.resolved_environment(template.function("Worker"))
    assert (environment["MODE"], environment["GONE"]) == ("strict", "x")


def test_reference_to_a_missing_resource_is_an_error(template: Template) -> None:
    with pytest.raises(LocalStackError, match="'NotThere'"):
        template.resolved_environment(template.function("Broken"))


def test_unknown_function_names_the_known_ones(template: Template) -> None:
    with pytest.raises(LocalStackError, match="Broken, Worker"):
        template.function("Nope")


def test_parameter_without_default_must_be_given(template: Template) -> None:
    with pytest.raises(LocalStackError, match="NoDefault"):
        template.parameter_value("NoDefault")


def test_invalid_yaml_and_missing_resources_are_reported(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("Resources: [unclosed")
    with pytest.raises(LocalStackError, match="not valid YAML"):
        Template.load(broken)
    empty = tmp_path / "empty.yaml"
    empty.write_text("Parameters: {}\n")
    with pytest.raises(LocalStackError, match="no Resources"):
        Template.load(empty)
    with pytest.raises(LocalStackError, match="cannot read"):
        Template.load(tmp_path / "absent.yaml")
