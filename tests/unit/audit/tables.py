"""Tables made from template.yaml's own definitions in moto's in-process DynamoDB (unit tests only)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from miro_sync_cli.local.template import load_template

TEMPLATE = Path(__file__).resolve().parents[3] / "template.yaml"
_KEYS = ("AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes")
_DEFINITIONS: dict[str, dict[str, Any]] = {}


def _definition(logical_id: str) -> dict[str, Any]:
    if not _DEFINITIONS:
        resources = load_template(TEMPLATE)["Resources"]
        for name, resource in resources.items():
            if resource.get("Type") == "AWS::DynamoDB::Table":
                properties = resource["Properties"]
                _DEFINITIONS[name] = {key: properties[key] for key in _KEYS if key in properties}
    return _DEFINITIONS[logical_id]


@dataclass
class Tables:
    resource: Any
    audit: Any
    state: Any
    members: Any

    def drop(self) -> None:
        for table in (self.audit, self.state, self.members):
            table.delete()


def create_tables(resource: Any | None = None) -> Tables:
    """Fresh AuditTable, StateTable and MembersTable (call inside moto's mock_aws)."""
    dynamodb = resource or boto3.resource("dynamodb", region_name="us-east-1")
    prefix = f"t{uuid.uuid4().hex[:8]}"
    made = {}
    for logical_id in ("AuditTable", "StateTable", "MembersTable"):
        made[logical_id] = dynamodb.create_table(
            TableName=f"{prefix}-{logical_id}", BillingMode="PAY_PER_REQUEST", **_definition(logical_id)
        )
    return Tables(dynamodb, made["AuditTable"], made["StateTable"], made["MembersTable"])
