"""What a run costs in AWS terms: DynamoDB capacity units, requests per service and operation, Lambda
GB-seconds, observed from inside the process that runs the handlers.

`UsageRecorder.install()` wraps `botocore.session.Session.create_client`, the one place every client is
built: `boto3.client(...)` and `boto3.resource(...)` (boto3's default session), a fresh
`boto3.session.Session()` (Powertools' providers and idempotency layer) and a bare botocore session
(`miro_sync.store.lowlevel`, the webhook). boto3's `creating-client-class` event would cover only
clients of the session it is registered on: clients made from a new session would go unseen.

Each client created while a recorder is installed gets two botocore event handlers, which do the work
without changing what the caller sees:
* `provide-client-params.dynamodb`: a DynamoDB call that can report its consumed capacity and did not
  ask for it gets `ReturnConsumedCapacity="TOTAL"` (TOTAL includes the writes to global secondary
  indexes);
* `after-call`: every answered call counts as one request of its service and operation (errors
  included: AWS bills most refused requests too), DynamoDB's `ConsumedCapacity` is summed into read and
  write units per table, and removed again from the parsed response when the recorder added the
  parameter, so the code under test gets exactly the response it asked for.

The handlers stay on their clients after `uninstall()`, doing nothing until a recorder is installed
again: a warm Lambda container keeps its clients between invocations, and a recorder per run must see
the calls of clients an earlier run created. A client created before any recorder was installed is
seen only once handed to `observe()`.

A conditional write whose condition fails is billed (at least one write unit, more for items over
1 KB) but DynamoDB reports no capacity on the error: the recorder counts 1 write unit for it, a lower
bound. Retries inside botocore are not counted separately: a call counts once.
"""

from __future__ import annotations

import functools
import math
import threading
import weakref
from collections import defaultdict
from collections.abc import Callable
from types import TracebackType
from typing import Any

import botocore.session

_READS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"})
_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})
_CONDITIONAL_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem"})
# The parameter handler leaves what it did to one call in botocore's per-call context, which the
# response handler of the same call receives.
_CONTEXT_KEY = "bench_usage_recorder"
_EVENT_PARAMS = "provide-client-params.dynamodb"
_EVENT_RESPONSE = "after-call"
# An emitter keeps one handler per unique id, whatever the event: one id per event.
_PARAMS_ID = "bench-usage-recorder-params"
_RESPONSE_ID = "bench-usage-recorder-response"


class _Hooks:
    """Process-wide: the recorder currently installed and the clients that carry the handlers."""

    def __init__(self) -> None:
        self.recorder: UsageRecorder | None = None
        self.original_create_client: Callable[..., Any] | None = None
        self.clients: weakref.WeakSet[Any] = weakref.WeakSet()
        self.lock = threading.Lock()


_hooks = _Hooks()


class UsageRecorder:
    """Counts the AWS usage of boto3/botocore clients while installed (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._read_units: defaultdict[str, float] = defaultdict(float)
        self._write_units: defaultdict[str, float] = defaultdict(float)
        self._requests: defaultdict[str, defaultdict[str, int]] = defaultdict(lambda: defaultdict(int))
        self._invocations = 0
        self._duration_s = 0.0
        self._gb_seconds = 0.0

    # --- installation -------------------------------------------------------------------------

    def install(self) -> UsageRecorder:
        with _hooks.lock:
            if _hooks.recorder is not None:
                raise RuntimeError("a UsageRecorder is already installed in this process; uninstall it first")
            original = botocore.session.Session.create_client

            @functools.wraps(original)
            def create_client(session: botocore.session.Session, *args: Any, **kwargs: Any) -> Any:
                return _hook(original(session, *args, **kwargs))

            _hooks.original_create_client = original
            botocore.session.Session.create_client = create_client  # type: ignore[method-assign,assignment]
            _hooks.recorder = self
        return self

    def uninstall(self) -> None:
        with _hooks.lock:
            if _hooks.recorder is not self:
                return
            if _hooks.original_create_client is not None:
                botocore.session.Session.create_client = _hooks.original_create_client  # type: ignore[method-assign]
                _hooks.original_create_client = None
            _hooks.recorder = None

    def observe(self, client: Any) -> Any:
        """Give a client created before any recorder was installed the handlers; returns it."""
        return _hook(client)

    def __enter__(self) -> UsageRecorder:
        return self.install()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.uninstall()

    # --- what the benches record themselves ----------------------------------------------------

    def lambda_invocation(self, duration_s: float, memory_mb: int) -> None:
        """One Lambda invocation; Lambda bills its duration rounded up to the millisecond."""
        billed_s = math.ceil(max(0.0, duration_s) * 1000) / 1000
        with self._lock:
            self._invocations += 1
            self._duration_s += billed_s
            self._gb_seconds += billed_s * memory_mb / 1024

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            tables = sorted(set(self._read_units) | set(self._write_units))
            return {
                "dynamodb": {
                    "read_units": _units(sum(self._read_units.values())),
                    "write_units": _units(sum(self._write_units.values())),
                    "by_table": {
                        table: {
                            "read_units": _units(self._read_units.get(table, 0.0)),
                            "write_units": _units(self._write_units.get(table, 0.0)),
                        }
                        for table in tables
                    },
                },
                "requests": {
                    service: dict(sorted(operations.items()))
                    for service, operations in sorted(self._requests.items())
                },
                "lambda": {
                    "invocations": self._invocations,
                    "duration_s": round(self._duration_s, 3),
                    "gb_seconds": round(self._gb_seconds, 6),
                },
            }

    # --- what the handlers report ------------------------------------------------------------------

    def _count_request(self, service: str, operation: str) -> None:
        with self._lock:
            self._requests[service][operation] += 1

    def _count_capacity(self, operation: str, consumed: dict[str, Any] | list[dict[str, Any]]) -> None:
        with self._lock:
            for entry in consumed if isinstance(consumed, list) else [consumed]:
                table = str(entry.get("TableName", "?"))
                if "ReadCapacityUnits" in entry or "WriteCapacityUnits" in entry:
                    self._read_units[table] += float(entry.get("ReadCapacityUnits", 0.0))
                    self._write_units[table] += float(entry.get("WriteCapacityUnits", 0.0))
                elif operation in _READS:
                    self._read_units[table] += float(entry.get("CapacityUnits", 0.0))
                else:
                    self._write_units[table] += float(entry.get("CapacityUnits", 0.0))

    def _count_failed_condition(self, table: str) -> None:
        with self._lock:
            self._write_units[table] += 1.0


# --- botocore event handlers (on every hooked client, for the life of the client) -----------------


def _hook(client: Any) -> Any:
    with _hooks.lock:
        if client not in _hooks.clients:
            client.meta.events.register(_EVENT_PARAMS, _ask_for_capacity, unique_id=_PARAMS_ID)
            client.meta.events.register(_EVENT_RESPONSE, _count_response, unique_id=_RESPONSE_ID)
            _hooks.clients.add(client)
    return client


def _ask_for_capacity(params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
    recorder = _hooks.recorder
    operation = model.name
    if recorder is None or (operation not in _READS and operation not in _WRITES):
        return
    asked = params.get("ReturnConsumedCapacity") in ("TOTAL", "INDEXES")
    if not asked:
        params["ReturnConsumedCapacity"] = "TOTAL"
    context[_CONTEXT_KEY] = {"recorder": recorder, "added": not asked, "table": params.get("TableName")}


def _count_response(parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
    call = context.get(_CONTEXT_KEY)
    # A DynamoDB call belongs to the recorder that asked for its capacity, even if the run ended meanwhile.
    recorder = call["recorder"] if call is not None else _hooks.recorder
    if recorder is None:
        return
    operation = model.name
    recorder._count_request(model.service_model.service_name, operation)
    if call is None:
        return
    consumed = parsed.get("ConsumedCapacity")
    if consumed is not None:
        recorder._count_capacity(operation, consumed)
    elif _condition_failed(parsed) and operation in _CONDITIONAL_WRITES and call["table"]:
        recorder._count_failed_condition(str(call["table"]))
    if call["added"]:
        parsed.pop("ConsumedCapacity", None)


def _condition_failed(parsed: dict[str, Any]) -> bool:
    error = parsed.get("Error")
    return isinstance(error, dict) and error.get("Code") == "ConditionalCheckFailedException"


def _units(value: float) -> float:
    # Units come in halves and tenths of items; rounding only removes float summation noise.
    return float(round(value, 4))
