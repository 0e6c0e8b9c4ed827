"""The local stack: resources made from template.yaml's own definitions on the loopback servers, and
each function's environment resolved against them. This module is dev tooling (like the emulator), so
it talks to the AWS stand-ins with boto3 directly; the Lambda code keeps boto3 inside miro_sync.store."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from miro_sync_cli.local import function_url
from miro_sync_cli.local.errors import LocalStackError
from miro_sync_cli.local.invoke import invoke_function, load_handler, process_environment
from miro_sync_cli.local.servers import LocalServers
from miro_sync_cli.local.template import DEFAULT_TEMPLATE, Template

# CreateTable takes these properties of AWS::DynamoDB::Table as they are; the rest (PITR, SSE, tags)
# has no meaning locally.
_TABLE_PROPERTIES = ("AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes", "LocalSecondaryIndexes")
_QUEUE_ATTRIBUTES = {
    "VisibilityTimeout",
    "MessageRetentionPeriod",
    "DelaySeconds",
    "ReceiveMessageWaitTimeSeconds",
    "MaximumMessageSize",
}


@dataclass(frozen=True)
class MiroConnection:
    """Where the functions find Miro (the emulator locally) and the tokens to put in the secrets."""

    api_url: str
    scim_url: str
    org_id: str
    token: str
    scim_token: str


@dataclass
class LocalStack:
    servers: LocalServers
    template_path: Path = DEFAULT_TEMPLATE
    prefix: str = field(default_factory=lambda: f"ms{uuid.uuid4().hex[:8]}")
    parameter_overrides: dict[str, str] = field(default_factory=dict)
    template: Template = field(init=False)
    tables: dict[str, str] = field(default_factory=dict)
    queues: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    _session: Any = None

    def __post_init__(self) -> None:
        self.template = Template.load(
            self.template_path, parameter_overrides=dict(self.parameter_overrides), stack_name=self.prefix
        )
        # Parameters a deployment must be given (OrgId) get a placeholder until connect_miro sets them,
        # so table names and endpoints resolve for tools that never talk to Miro.
        for name, parameter in self.template.document.get("Parameters", {}).items():
            if "Default" not in parameter:
                self.template.parameter_overrides.setdefault(name, f"local-{name}")

    # --- boto3 against the stand-ins ------------------------------------------------------
    def client(self, service: str) -> Any:
        import boto3

        if self._session is None:
            environment = self.servers.endpoint_environment()
            self._session = boto3.session.Session(
                aws_access_key_id=environment["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=environment["AWS_SECRET_ACCESS_KEY"],
                aws_session_token=environment["AWS_SESSION_TOKEN"],
                region_name=environment["AWS_DEFAULT_REGION"],
            )
        endpoint = self.servers.dynamodb_url if service == "dynamodb" else self.servers.moto_url
        return self._session.client(service, endpoint_url=endpoint)

    # --- provisioning ---------------------------------------------------------------------
    def provision(self) -> LocalStack:
        """Create every table, queue, secret and bus the template defines, with this stack's prefix."""
        self._name_functions()
        for logical_id, resource in self.template.resources_of_type("AWS::DynamoDB::Table").items():
            self._create_table(logical_id, resource.get("Properties", {}))
        queues = self.template.resources_of_type("AWS::SQS::Queue")
        # Dead-letter queues first: a queue's RedrivePolicy needs its DLQ's ARN.
        for logical_id in sorted(
            queues, key=lambda name: "RedrivePolicy" in queues[name].get("Properties", {})
        ):
            self._create_queue(logical_id, queues[logical_id].get("Properties", {}))
        for logical_id, resource in self.template.resources_of_type("AWS::SecretsManager::Secret").items():
            self._create_secret(logical_id, resource.get("Properties", {}))
        for logical_id in self.template.resources_of_type("AWS::Events::EventBus"):
            name = f"{self.prefix}-{logical_id}"
            arn = self.client("events").create_event_bus(Name=name)["EventBusArn"]
            self.template.physical_ids[logical_id] = name
            self.template.attributes[(logical_id, "Arn")] = arn
            self.template.attributes[(logical_id, "Name")] = name
        self._name_everything_else()
        return self

    def _name_functions(self) -> None:
        for logical_id, spec in self.template.functions().items():
            name = self.template.resolve(spec.function_name) if spec.function_name else None
            physical = str(name) if name else f"{self.prefix}-{logical_id}"
            self.template.physical_ids[logical_id] = physical
            self.template.attributes[(logical_id, "Arn")] = (
                f"arn:aws:lambda:{self.template.region}:{self.template.account_id}:function:{physical}"
            )

    def _name_everything_else(self) -> None:
        """Resources without a local stand-in (alarms, log groups, topics) still get a name, so a
        Ref to them resolves the way CloudFormation would and a Ref to nothing fails."""
        for logical_id in self.template.resources:
            self.template.physical_ids.setdefault(logical_id, f"{self.prefix}-{logical_id}")

    def _create_table(self, logical_id: str, properties: dict[str, Any]) -> None:
        name = f"{self.prefix}-{logical_id}"
        request: dict[str, Any] = {"TableName": name, "BillingMode": "PAY_PER_REQUEST"}
        for key in _TABLE_PROPERTIES:
            if key in properties:
                request[key] = self.template.resolve(properties[key])
        dynamodb = self.client("dynamodb")
        # A persistent local state directory may already hold the table.
        with contextlib.suppress(dynamodb.exceptions.ResourceInUseException):
            dynamodb.create_table(**request)
        ttl = properties.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            try:
                dynamodb.update_time_to_live(
                    TableName=name,
                    TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
                )
            except dynamodb.exceptions.ClientError as error:
                if "already enabled" not in str(error).lower():
                    raise
        self.tables[logical_id] = name
        self.template.physical_ids[logical_id] = name
        self.template.attributes[(logical_id, "Arn")] = (
            f"arn:aws:dynamodb:{self.template.region}:{self.template.account_id}:table/{name}"
        )

    def _create_queue(self, logical_id: str, properties: dict[str, Any]) -> None:
        name = f"{self.prefix}-{logical_id}"
        attributes = {
            key: str(self.template.resolve(value))
            for key, value in properties.items()
            if key in _QUEUE_ATTRIBUTES
        }
        if "RedrivePolicy" in properties:
            attributes["RedrivePolicy"] = json.dumps(self.template.resolve(properties["RedrivePolicy"]))
        sqs = self.client("sqs")
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.queues[logical_id] = url
        self.template.physical_ids[logical_id] = url
        self.template.attributes[(logical_id, "Arn")] = arn
        self.template.attributes[(logical_id, "QueueName")] = name
        self.template.attributes[(logical_id, "QueueUrl")] = url

    def _create_secret(self, logical_id: str, properties: dict[str, Any]) -> None:
        name = f"{self.prefix}-{logical_id}"
        secrets = self.client("secretsmanager")
        description = str(self.template.resolve(properties.get("Description", "")))[:2048]
        arn = secrets.create_secret(Name=name, Description=description, SecretString="replace-me")["ARN"]
        self.secrets[logical_id] = arn
        self.template.physical_ids[logical_id] = arn

    # --- Miro ---------------------------------------------------------------------------------
    def connect_miro(self, miro: MiroConnection) -> LocalStack:
        """Point every function at `miro` and store its tokens in the template's secrets."""
        for parameter, value in (
            ("OrgId", miro.org_id),
            ("MiroApiUrl", miro.api_url),
            ("MiroScimUrl", miro.scim_url),
        ):
            if parameter in self.template.document.get("Parameters", {}):
                self.template.parameter_overrides[parameter] = value
        environment = self.env
        secrets = self.client("secretsmanager")
        for variable, token in (
            ("MIRO_TOKEN_SECRET", miro.token),
            ("MIRO_SCIM_TOKEN_SECRET", miro.scim_token),
        ):
            if variable in environment:
                secrets.put_secret_value(SecretId=environment[variable], SecretString=token)
        self._miro = miro
        return self

    # --- environments -----------------------------------------------------------------------
    def function_env(self, logical_id: str) -> dict[str, str]:
        """The environment Lambda would give this function, pointed at the local stand-ins."""
        spec = self.template.function(logical_id)
        environment = self.template.resolved_environment(spec)
        miro: MiroConnection | None = getattr(self, "_miro", None)
        if miro is not None:
            environment.setdefault("MIRO_API_URL", miro.api_url)
            environment.setdefault("MIRO_SCIM_URL", miro.scim_url)
            environment.setdefault("MIRO_ORG_ID", miro.org_id)
        environment.update(self.servers.endpoint_environment())
        environment["AWS_LAMBDA_FUNCTION_NAME"] = self.template.physical_ids.get(logical_id, logical_id)
        environment["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] = str(spec.memory_mb)
        environment["AWS_LAMBDA_FUNCTION_VERSION"] = "$LATEST"
        return environment

    @property
    def env(self) -> dict[str, str]:
        """Every function's environment in one mapping (they share almost all of it)."""
        merged: dict[str, str] = {}
        for logical_id, spec in self.template.functions().items():
            if self.template.condition_holds(spec.condition):
                merged.update(self.function_env(logical_id))
        merged.pop("AWS_LAMBDA_FUNCTION_NAME", None)
        return merged or dict(self.servers.endpoint_environment())

    @property
    def queue_url(self) -> str:
        return self._queue(dead_letter=False)

    @property
    def dlq_url(self) -> str:
        return self._queue(dead_letter=True)

    def _queue(self, *, dead_letter: bool) -> str:
        for logical_id, url in self.queues.items():
            properties = self.template.resources[logical_id].get("Properties", {})
            if ("RedrivePolicy" not in properties) == dead_letter:
                return url
        kind = "dead-letter queue" if dead_letter else "queue with a dead-letter queue"
        raise LocalStackError(f"the template defines no {kind}")

    def function_for_name(self, function_name: str) -> str:
        for logical_id in self.template.functions():
            if self.template.physical_ids.get(logical_id) == function_name:
                return logical_id
        raise LocalStackError(f"no function of this stack is named {function_name!r}")

    def invoke(
        self,
        logical_id: str,
        event: dict[str, Any],
        env: dict[str, str] | None = None,
        *,
        timeout_s: float | None = None,
        max_continuations: int = 1000,
    ) -> list[Any]:
        """Invoke a function, then play every asynchronous invocation it queued (self-continuation),
        in order. Returns each invocation's result, the first one first."""
        results = [
            invoke_function(
                logical_id,
                event,
                self.function_env(logical_id) | (env or {}),
                timeout_s=timeout_s,
                template=self.template,
            )
        ]
        pending = self.servers.lambda_api.pending
        while pending:
            if len(results) > max_continuations:
                raise LocalStackError(f"{logical_id} continued itself more than {max_continuations} times")
            invocation = pending.popleft()
            target = self.function_for_name(invocation.function_name.split(":")[-1])
            results.append(
                invoke_function(
                    target,
                    invocation.payload,
                    self.function_env(target) | (env or {}),
                    timeout_s=timeout_s,
                    template=self.template,
                )
            )
        return results

    @contextlib.contextmanager
    def serve_function_url(self, logical_id: str, port: int = 0) -> Iterator[Any]:
        """Serve a function behind a local Function URL (real HTTP on 127.0.0.1), as a warm container."""
        spec = self.template.function(logical_id)
        environment = self.function_env(logical_id)
        with process_environment(environment):
            handler = load_handler(self.template, spec.code_uri, spec.handler)
        with function_url.serve_function_url(
            handler,
            environment,
            port,
            function_name=environment["AWS_LAMBDA_FUNCTION_NAME"],
            timeout_s=spec.timeout_s,
            memory_mb=spec.memory_mb,
        ) as server:
            yield server

    def teardown(self) -> None:
        dynamodb = self.client("dynamodb")
        for name in self.tables.values():
            with contextlib.suppress(dynamodb.exceptions.ResourceNotFoundException):
                dynamodb.delete_table(TableName=name)
        sqs = self.client("sqs")
        for url in self.queues.values():
            sqs.delete_queue(QueueUrl=url)
