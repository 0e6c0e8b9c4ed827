"""Runs a function's handler in this process the way Lambda does: the handler module is imported once
per function (a warm container), the environment is the function's, and the context's remaining time
counts down from the function's timeout.

While a FunctionLogs is open (the demo opens one), what each function writes to stdout/stderr goes to
its own file instead of the terminal; without one (`miro-sync invoke`) it goes where it always did."""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType, TracebackType
from typing import IO, Any

from miro_sync_cli.local.errors import LocalStackError
from miro_sync_cli.local.template import DEFAULT_TEMPLATE, Template

_modules: dict[Path, ModuleType] = {}
# The function (logical id) whose code runs in this context, and the FunctionLogs open in this process.
_running: ContextVar[str | None] = ContextVar("miro_sync_running_function", default=None)
_open_logs: FunctionLogs | None = None


class FunctionLogs:
    """Each function's stdout and stderr (Powertools Logger's JSON lines, Metrics' EMF blobs, prints,
    tracebacks) in `<directory>/<LogicalId>.jsonl`, rewritten on each open; `echo` also lets them through.

    While open, sys.stdout and sys.stderr are stand-ins that send a write to the running function's file
    (see `function_output`) and anything else on to the stream they replaced. Powertools' Logger keeps the
    sys.stdout of its module's import, so open this before the first invocation."""

    def __init__(self, directory: Path, *, echo: bool = False) -> None:
        self.directory = directory
        self.echo = echo
        self.lines: dict[str, int] = {}
        self._files: dict[str, IO[str]] = {}
        self._lock = threading.Lock()
        self._replaced: tuple[Any, Any] | None = None

    def path(self, logical_id: str) -> Path:
        return self.directory / f"{logical_id}.jsonl"

    def __enter__(self) -> FunctionLogs:
        global _open_logs
        if _open_logs is not None:
            raise LocalStackError("function logs are already being captured")
        self.directory.mkdir(parents=True, exist_ok=True)
        self._replaced = (sys.stdout, sys.stderr)
        sys.stdout = _FunctionOutputStream(sys.stdout)
        sys.stderr = _FunctionOutputStream(sys.stderr)
        _open_logs = self
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        global _open_logs
        _open_logs = None
        if self._replaced is not None:
            sys.stdout, sys.stderr = self._replaced
        with self._lock:
            for file in self._files.values():
                file.close()
            self._files.clear()

    def write(self, logical_id: str, text: str) -> None:
        with self._lock:
            file = self._files.get(logical_id)
            if file is None:
                file = self._files[logical_id] = self.path(logical_id).open("w", encoding="utf-8")
                self.lines[logical_id] = 0
            file.write(text)
            file.flush()
            self.lines[logical_id] += text.count("\n")


class _FunctionOutputStream:
    """sys.stdout/sys.stderr while FunctionLogs is open: a function's writes to its file, the rest on."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        logs, function = _open_logs, _running.get()
        if logs is None or function is None:
            return int(self._stream.write(text))
        logs.write(function, text)
        if logs.echo:
            self._stream.write(text)
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, encoding, ...: the terminal's
        return getattr(self._stream, name)


@contextlib.contextmanager
def function_output(logical_id: str) -> Iterator[None]:
    """Attribute what this context writes to `logical_id` (unless a function already is)."""
    if _running.get() is not None:
        yield
        return
    token = _running.set(logical_id)
    try:
        yield
    finally:
        _running.reset(token)


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
    if _open_logs is not None:
        # A handler called from elsewhere (a Function URL's request thread) logs to its function's file too.
        for logical_id, function_spec in template.functions().items():
            if (function_spec.code_uri, function_spec.handler) == (code_uri, handler):
                return _attributed(function, logical_id)
    return function


def _attributed(function: Any, logical_id: str) -> Any:
    @functools.wraps(function)
    def handler(event: Any, context: Any) -> Any:
        with function_output(logical_id):
            return function(event, context)

    return handler


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
    with process_environment(env), function_output(logical_id):
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
