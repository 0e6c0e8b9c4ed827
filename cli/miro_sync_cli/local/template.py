"""Reads template.yaml the way CloudFormation would for the parts the local stack needs: the functions
(with SAM Globals merged), their environment with every intrinsic resolved against local resources,
and the resource definitions the local resources are created from. There is no second copy of any
schema: tables, queues and secrets are made from these definitions."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from miro_sync_cli.local.errors import LocalStackError

# The repository's template.yaml: what the local stack, `miro-sync invoke` and the demo run by default.
DEFAULT_TEMPLATE = Path(__file__).resolve().parents[3] / "template.yaml"

_SHORT_TAGS = {
    "Ref": "Ref",
    "Condition": "Condition",
    "GetAtt": "Fn::GetAtt",
    "Sub": "Fn::Sub",
    "If": "Fn::If",
    "Join": "Fn::Join",
    "Select": "Fn::Select",
    "Split": "Fn::Split",
    "Equals": "Fn::Equals",
    "Not": "Fn::Not",
    "And": "Fn::And",
    "Or": "Fn::Or",
    "FindInMap": "Fn::FindInMap",
    "GetAZs": "Fn::GetAZs",
    "ImportValue": "Fn::ImportValue",
    "Base64": "Fn::Base64",
    "Cidr": "Fn::Cidr",
}

NO_VALUE = object()


class _CloudFormationLoader(yaml.SafeLoader):
    """SafeLoader that turns CloudFormation short tags (!Ref, !Sub, ...) into their long form."""


def _construct_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    long_name = _SHORT_TAGS.get(tag_suffix)
    if long_name is None:
        raise yaml.constructor.ConstructorError(None, None, f"unknown tag !{tag_suffix}", node.start_mark)
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if long_name == "Fn::GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {long_name: value}


_CloudFormationLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: Path) -> dict[str, Any]:
    """Parse a CloudFormation/SAM YAML template, short tags included."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise LocalStackError(f"cannot read template {path}: {error.strerror}") from error
    try:
        document = yaml.load(text, Loader=_CloudFormationLoader)  # nosec B506  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as error:
        raise LocalStackError(f"template {path} is not valid YAML: {error}") from error
    if not isinstance(document, dict) or not isinstance(document.get("Resources"), dict):
        raise LocalStackError(f"template {path} has no Resources section")
    return document


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    code_uri: str
    handler: str
    timeout_s: int
    memory_mb: int
    environment: dict[str, Any]
    condition: str | None
    function_name: Any


@dataclass
class Template:
    """A parsed template plus what is needed to resolve its intrinsics locally."""

    document: dict[str, Any]
    path: Path
    parameter_overrides: dict[str, str] = field(default_factory=dict)
    physical_ids: dict[str, str] = field(default_factory=dict)
    attributes: dict[tuple[str, str], str] = field(default_factory=dict)
    stack_name: str = "miro-sync-local"
    region: str = "us-east-1"
    account_id: str = "123456789012"

    @classmethod
    def load(cls, path: Path, **kwargs: Any) -> Template:
        return cls(document=load_template(path), path=path, **kwargs)

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        resources: dict[str, dict[str, Any]] = self.document["Resources"]
        return resources

    def resources_of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {
            logical_id: resource
            for logical_id, resource in self.resources.items()
            if resource.get("Type") == resource_type and self.condition_holds(resource.get("Condition"))
        }

    def parameter_value(self, name: str) -> str:
        if name in self.parameter_overrides:
            return self.parameter_overrides[name]
        parameter = self.document.get("Parameters", {}).get(name)
        if parameter is None:
            raise LocalStackError(f"template refers to parameter {name!r}, which it does not declare")
        if "Default" not in parameter:
            raise LocalStackError(f"template parameter {name!r} has no Default; pass a value for it")
        return str(parameter["Default"])

    def condition_holds(self, name: str | None) -> bool:
        if name is None:
            return True
        conditions = self.document.get("Conditions", {})
        if name not in conditions:
            raise LocalStackError(f"template refers to condition {name!r}, which it does not declare")
        return bool(self.resolve(conditions[name]))

    def functions(self) -> dict[str, FunctionSpec]:
        globals_ = self.document.get("Globals", {}).get("Function", {})
        specs: dict[str, FunctionSpec] = {}
        for logical_id, resource in self.resources.items():
            if resource.get("Type") != "AWS::Serverless::Function":
                continue
            properties = resource.get("Properties", {})
            environment = dict(globals_.get("Environment", {}).get("Variables", {}))
            environment.update(properties.get("Environment", {}).get("Variables", {}))
            specs[logical_id] = FunctionSpec(
                logical_id=logical_id,
                code_uri=str(properties.get("CodeUri", globals_.get("CodeUri", "."))),
                handler=str(properties.get("Handler", globals_.get("Handler", "app.handler"))),
                timeout_s=int(properties.get("Timeout", globals_.get("Timeout", 3))),
                memory_mb=int(properties.get("MemorySize", globals_.get("MemorySize", 128))),
                environment=environment,
                condition=resource.get("Condition"),
                function_name=properties.get("FunctionName"),
            )
        return specs

    def function(self, logical_id: str) -> FunctionSpec:
        functions = self.functions()
        if logical_id not in functions:
            known = ", ".join(sorted(functions)) or "none"
            raise LocalStackError(f"unknown function {logical_id!r}; the template defines: {known}")
        return functions[logical_id]

    def resolved_environment(self, spec: FunctionSpec) -> dict[str, str]:
        resolved: dict[str, str] = {}
        for name, value in spec.environment.items():
            result = self.resolve(value)
            if result is NO_VALUE:
                continue
            resolved[name] = str(result)
        return resolved

    # --- intrinsic functions -------------------------------------------------------------
    def _pseudo(self, name: str) -> str | object | None:
        return {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account_id,
            "AWS::StackName": self.stack_name,
            "AWS::StackId": (
                f"arn:aws:cloudformation:{self.region}:{self.account_id}:stack/{self.stack_name}/local"
            ),
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": NO_VALUE,
        }.get(name)

    def _ref(self, name: str) -> Any:
        pseudo = self._pseudo(name)
        if pseudo is not None:
            return pseudo
        if name in self.document.get("Parameters", {}):
            return self.parameter_value(name)
        if name in self.resources:
            if name not in self.physical_ids:
                raise LocalStackError(f"resource {name!r} has no local stand-in (Ref {name})")
            return self.physical_ids[name]
        raise LocalStackError(f"template refers to {name!r}, which is neither a parameter nor a resource")

    def _get_att(self, logical_id: str, attribute: str) -> str:
        if logical_id not in self.resources:
            raise LocalStackError(f"template refers to missing resource {logical_id!r} (GetAtt)")
        key = (logical_id, attribute)
        if key in self.attributes:
            return self.attributes[key]
        resource_type = self.resources[logical_id].get("Type", "")
        service = resource_type.split("::")[1].lower() if "::" in resource_type else "local"
        return f"arn:aws:{service}:{self.region}:{self.account_id}:{logical_id}/{attribute}"

    def _sub(self, template: str, variables: Mapping[str, Any]) -> str:
        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(self.resolve(variables[name]))
            if "." in name and not name.startswith("AWS::"):
                logical_id, attribute = name.split(".", 1)
                return self._get_att(logical_id, attribute)
            return str(self._ref(name))

        return re.sub(r"\$\{([^}]+)\}", replace, template)

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [item for item in (self.resolve(v) for v in value) if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) != 1:
            return {key: self.resolve(item) for key, item in value.items()}
        ((key, argument),) = value.items()
        intrinsic = _INTRINSICS.get(key)
        if intrinsic is None:
            return {key: self.resolve(argument)}
        return intrinsic(self, argument)

    # One method per intrinsic `resolve` knows, named after it; `argument` is the intrinsic's value.
    def _fn_ref(self, argument: Any) -> Any:
        return self._ref(str(argument))

    def _fn_condition(self, argument: Any) -> bool:
        return self.condition_holds(str(argument))

    def _fn_get_att(self, argument: Any) -> str:
        logical_id, attribute = argument if isinstance(argument, list) else str(argument).split(".", 1)
        return self._get_att(logical_id, attribute)

    def _fn_sub(self, argument: Any) -> str:
        if isinstance(argument, list):
            return self._sub(argument[0], argument[1])
        return self._sub(argument, {})

    def _fn_if(self, argument: Any) -> Any:
        condition, if_true, if_false = argument
        return self.resolve(if_true if self.condition_holds(condition) else if_false)

    def _fn_join(self, argument: Any) -> str:
        delimiter, items = argument
        return str(delimiter).join(str(item) for item in self.resolve(items))

    def _fn_select(self, argument: Any) -> Any:
        index, items = argument
        return self.resolve(items)[int(self.resolve(index))]

    def _fn_split(self, argument: Any) -> list[str]:
        delimiter, source = argument
        return str(self.resolve(source)).split(delimiter)

    def _fn_equals(self, argument: Any) -> bool:
        left, right = (self.resolve(item) for item in argument)
        return str(left) == str(right)

    def _fn_not(self, argument: Any) -> bool:
        return not self.resolve(argument[0])

    def _fn_and(self, argument: Any) -> bool:
        return all(self.resolve(item) for item in argument)

    def _fn_or(self, argument: Any) -> bool:
        return any(self.resolve(item) for item in argument)


# The intrinsics `Template.resolve` evaluates; any other single-key mapping is resolved as plain data.
_INTRINSICS: dict[str, Callable[[Template, Any], Any]] = {
    "Ref": Template._fn_ref,
    "Condition": Template._fn_condition,
    "Fn::GetAtt": Template._fn_get_att,
    "Fn::Sub": Template._fn_sub,
    "Fn::If": Template._fn_if,
    "Fn::Join": Template._fn_join,
    "Fn::Select": Template._fn_select,
    "Fn::Split": Template._fn_split,
    "Fn::Equals": Template._fn_equals,
    "Fn::Not": Template._fn_not,
    "Fn::And": Template._fn_and,
    "Fn::Or": Template._fn_or,
}
