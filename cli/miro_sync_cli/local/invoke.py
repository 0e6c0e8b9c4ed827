"""Runs a function's handler in this process the way Lambda does: the handler module is imported once
per function (a warm container), the environment is the function's, and the context's remaining time
counts down from the function's timeout."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import time
import traceback
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from miro_sync_cli.local.errors import LocalStackError
from miro_sync_cli.local.template import Template

_modules: dict[Path, ModuleType] = {}


@dataclass
class LocalLambdaContext:
    """The attributes and method of Lambda's context object that handlers and Powertools use."""

    function_name: str
    memory_limit_in_mb: int
    timeout_s: float
    region: str = "us-east-1"
    account_id: str = "123456789012"
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    _deadline: float = 0.0

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_s

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account_id}:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return f"local/{self.aws_request_id}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class FunctionError(Exception):
    """The handler raised: carries Lambda's error payload (errorType, errorMessage, stackTrace)."""

    def __init__(self, payload: dict[str, Any]) -> None:
        super().__init__(f"{payload['errorType']}: {payload['errorMessage']}")
        self.payload = payload


@contextlib.contextmanager
def process_environment(variables: dict[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(
        {key: value for key, value in saved.items() if not key.startswith(("AWS_", "POWERTOOLS_"))}
    )
    os.environ.update(variables)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def load_handler(template: Template, code_uri: str, handler: str) -> Any:
    module_name, _, attribute = handler.rpartition(".")
    code_dir = (template.path.parent / code_uri).resolve()
    source = code_dir / (module_name.replace(".", "/") + ".py")
    if not source.is_file():
        raise LocalStackError(f"handler file {source} does not exist (CodeUri {code_uri}, Handler {handler})")
    module = _modules.get(source)
    if module is None:
        unique_name = f"miro_sync_function_{code_dir.name}_{module_name.replace('.', '_')}"
        spec = importlib.util.spec_from_file_location(unique_name, source)
        if spec is None or spec.loader is None:
            raise LocalStackError(f"cannot import {source}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[unique_name] = module
        spec.loader.exec_module(module)
        _modules[source] = module
    function = getattr(module, attribute, None)
    if not callable(function):
        raise LocalStackError(f"{source} has no callable {attribute!r}")
    return function


def invoke_function(
    logical_id: str,
    event: dict[str, Any],
    env: dict[str, str],
    *,
    timeout_s: float | None = None,
    template: Template | None = None,
    template_path: Path | None = None,
) -> Any:
    """Call the function's handler with `event` under `env`; return its result or raise FunctionError."""
    if template is None:
        from miro_sync_cli.local.stack import DEFAULT_TEMPLATE

        template = Template.load(template_path or DEFAULT_TEMPLATE)
    spec = template.function(logical_id)
    if not template.condition_holds(spec.condition):
        raise LocalStackError(
            f"{logical_id} is not part of the stack: its condition {spec.condition} is false"
            " (set the parameters it depends on, e.g. --parameter EnableWebhook=true)"
        )
    context = LocalLambdaContext(
        function_name=env.get("AWS_LAMBDA_FUNCTION_NAME", logical_id),
        memory_limit_in_mb=spec.memory_mb,
        timeout_s=timeout_s if timeout_s is not None else spec.timeout_s,
        region=template.region,
        account_id=template.account_id,
    )
    with process_environment(env):
        handler = load_handler(template, spec.code_uri, spec.handler)
        try:
            return handler(event, context)
        except Exception as error:
            raise FunctionError(
                {
                    "errorType": type(error).__name__,
                    "errorMessage": str(error),
                    "requestId": context.aws_request_id,
                    "stackTrace": traceback.format_exception(error)[-6:],
                }
            ) from error
