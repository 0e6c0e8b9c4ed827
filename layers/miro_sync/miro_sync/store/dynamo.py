"""Low-level DynamoDB helpers shared by the repositories.

Repositories receive a boto3 `Table` resource and talk through `table.meta.client`: that client
is the resource's own, so it carries boto3's high-level (de)serialisation (plain Python values in
and out) and, unlike the resource, it is safe to share between threads.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from miro_sync.timestamps import iso_millis, parse_timestamp

# DynamoDB (and DynamoDB Local, which enforces it) limits per request.
MAX_BATCH_WRITE_ITEMS = 25
MAX_BATCH_GET_KEYS = 100
_MAX_UNPROCESSED_ROUNDS = 8


class UnprocessedItemsError(RuntimeError):
    """DynamoDB kept returning unprocessed items/keys after every retry round (sustained throttling)."""


# The old name of the stored-timestamp form, still imported by sync/ and reports/.
iso_utc = iso_millis


def parse_iso(value: str | None) -> datetime | None:
    """A stored timestamp as an aware UTC datetime; None when absent or the "never" placeholder
    (`0000-...`, which sorts before every real instant)."""
    if not value or value.startswith("0000"):
        return None
    return parse_timestamp(value)


def pages(operation: Callable[..., Mapping[str, Any]], **request: Any) -> Iterator[Mapping[str, Any]]:
    """Every page of a Query or Scan: `operation(**request)`, then again from each page's
    LastEvaluatedKey (as ExclusiveStartKey) until a page has none. Lazy: a page is requested only
    when the previous one has been consumed, so a caller that stops early stops the requests."""
    while True:
        page = operation(**request)
        yield page
        last_key = page.get("LastEvaluatedKey")
        if not last_key:
            return
        request = {**request, "ExclusiveStartKey": last_key}


def paged_items(operation: Callable[..., Mapping[str, Any]], **request: Any) -> Iterator[Any]:
    """The items of every page of a Query or Scan (see `pages`)."""
    for page in pages(operation, **request):
        yield from page.get("Items", [])


def is_conditional_check_failed(error: BaseException) -> bool:
    """True when a conditional write or update was refused because its condition did not hold
    (the expected outcome of a race or a duplicate, not a failure)."""
    from botocore.exceptions import ClientError  # deferred: callers keep their import light

    return (
        isinstance(error, ClientError)
        and error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"
    )


def plain(value: Any) -> Any:
    """Turn what boto3 returns (Decimal, set, Binary) into JSON-friendly Python values."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Mapping):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if isinstance(value, set):
        return sorted(plain(item) for item in value)
    return value


def chunked(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _backoff(round_number: int) -> None:
    # Exponential backoff for UnprocessedItems as AWS recommends; capped, no jitter needed for
    # a single writer.
    time.sleep(min(0.05 * (2**round_number), 2.0))


def batch_write(client: Any, table_name: str, puts: Sequence[Mapping[str, Any]]) -> int:
    """Put items in batches of 25, re-sending unprocessed items. Returns the number of requests made.

    Hand-written rather than `Table.batch_writer()`: the batch writer hides how many requests it
    made (we report write requests) and buffers across calls, which blurs checkpoint boundaries.
    """
    requests = 0
    for batch in chunked(puts, MAX_BATCH_WRITE_ITEMS):
        pending: list[dict[str, Any]] = [{"PutRequest": {"Item": dict(item)}} for item in batch]
        for round_number in range(_MAX_UNPROCESSED_ROUNDS):
            response = client.batch_write_item(RequestItems={table_name: pending})
            requests += 1
            pending = response.get("UnprocessedItems", {}).get(table_name, [])
            if not pending:
                break
            _backoff(round_number)
        else:
            raise UnprocessedItemsError(f"{len(pending)} items of {table_name} stayed unprocessed")
    return requests


def batch_get(
    client: Any, table_name: str, keys: Sequence[Mapping[str, Any]], *, consistent: bool = True
) -> tuple[list[dict[str, Any]], int]:
    """Get items by key in batches of 100, re-requesting unprocessed keys. Returns (items, requests)."""
    found: list[dict[str, Any]] = []
    requests = 0
    for batch in chunked(keys, MAX_BATCH_GET_KEYS):
        pending: list[dict[str, Any]] = [dict(key) for key in batch]
        for round_number in range(_MAX_UNPROCESSED_ROUNDS):
            response = client.batch_get_item(
                RequestItems={table_name: {"Keys": pending, "ConsistentRead": consistent}}
            )
            requests += 1
            found.extend(response.get("Responses", {}).get(table_name, []))
            pending = response.get("UnprocessedKeys", {}).get(table_name, {}).get("Keys", [])
            if not pending:
                break
            _backoff(round_number)
        else:
            raise UnprocessedItemsError(f"{len(pending)} keys of {table_name} stayed unprocessed")
    return found, requests


def update_expression(
    sets: Mapping[str, Any], removes: Iterable[str] = ()
) -> tuple[str, dict[str, str], dict[str, Any]]:
    """Build `SET #a = :a, ... REMOVE #b` with names/values for every attribute.

    Attributes whose value is None are REMOVEd instead of set (DynamoDB Local rejects empty
    strings and unused expression values, so None must never reach it).
    """
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    set_parts: list[str] = []
    remove_parts: list[str] = []
    for index, (attribute, value) in enumerate(sets.items()):
        names[f"#s{index}"] = attribute
        if value is None or value == "":
            remove_parts.append(f"#s{index}")
        else:
            values[f":s{index}"] = value
            set_parts.append(f"#s{index} = :s{index}")
    for index, attribute in enumerate(removes):
        names[f"#r{index}"] = attribute
        remove_parts.append(f"#r{index}")
    expression = ""
    if set_parts:
        expression += "SET " + ", ".join(set_parts)
    if remove_parts:
        expression += (" " if expression else "") + "REMOVE " + ", ".join(remove_parts)
    return expression, names, values
