"""The rate of an ideal batch writer on the benchmark's own DynamoDB stand-in, measured in the same run.

Locally the stand-in (DynamoDB Local, or moto server), not Miro, can be what binds; real DynamoDB on demand
scales. So a bench's floor is the larger of its API floor and `items written / this rate`: BatchWriteItem of
25 items, from several threads, into a scratch table, nothing else. With `like_table` the scratch table has
that table's keys and indexes and every item is a copy of one of its items (under a new key): the ideal writer
writes what the sync wrote, index writes included. Without it, items of about a member item's size into a
table without indexes (a faster writer: a lower floor).
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from miro_sync.store.lowlevel import BULK_WRITER_CONFIG
from miro_sync_cli.local.servers import LOCAL_CREDENTIALS

ITEM_PAYLOAD_BYTES = 400  # about a member item (email, name, role, license, teams, timestamps)
BATCH = 25
# The local stack's own placeholder credentials: DynamoDB Local keeps one database per access key, and
# `like_table` must be found in the stack's.
_LOCAL_STACK_CREDENTIALS = {
    "aws_access_key_id": LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
    "aws_secret_access_key": LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
}


def ideal_batch_write_rate(
    endpoint_url: str,
    *,
    items: int = 20_000,
    threads: int = 8,
    region: str = "us-east-1",
    like_table: str | None = None,
) -> float:
    """Items per second an ideal batch writer reaches on `endpoint_url` (the table is dropped after)."""
    import boto3

    client: Any = boto3.client(
        "dynamodb",
        endpoint_url=endpoint_url,
        region_name=region,
        **_LOCAL_STACK_CREDENTIALS,
    )
    table = f"bench-store-rate-{uuid.uuid4().hex[:8]}"
    make_item = _copies_of(client, like_table) if like_table else _payload_items()
    if like_table:
        shape = client.describe_table(TableName=like_table)["Table"]
        indexes = [
            {
                "IndexName": index["IndexName"],
                "KeySchema": index["KeySchema"],
                "Projection": index["Projection"],
            }
            for index in shape.get("GlobalSecondaryIndexes", [])
        ]
        client.create_table(
            TableName=table,
            AttributeDefinitions=shape["AttributeDefinitions"],
            KeySchema=shape["KeySchema"],
            BillingMode="PAY_PER_REQUEST",
            **({"GlobalSecondaryIndexes": indexes} if indexes else {}),
        )
    else:
        client.create_table(
            TableName=table,
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
    client.get_waiter("table_exists").wait(TableName=table)
    per_thread = items // threads
    errors: list[BaseException] = []

    def write(offset: int) -> None:
        try:
            # The syncs' bulk writers' configuration: the ideal writer is never the heavier client.
            own: Any = boto3.client(
                "dynamodb",
                endpoint_url=endpoint_url,
                region_name=region,
                config=BULK_WRITER_CONFIG,
                **_LOCAL_STACK_CREDENTIALS,
            )
            for start in range(0, per_thread, BATCH):
                batch = [
                    {"PutRequest": {"Item": make_item(offset + start + k)}}
                    for k in range(min(BATCH, per_thread - start))
                ]
                pending: dict[str, Any] = {table: batch}
                while pending:
                    pending = own.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
        except BaseException as error:  # reported by the caller
            errors.append(error)

    workers = [threading.Thread(target=write, args=(n * per_thread,)) for n in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    # A scratch table left behind in a throwaway server is harmless.
    with contextlib.suppress(Exception):
        client.delete_table(TableName=table)
    if errors:
        raise RuntimeError(f"ideal batch writer failed: {errors[0]!r}")
    return per_thread * threads / elapsed


def _payload_items() -> Callable[[int], dict[str, Any]]:
    payload = {"S": "x" * ITEM_PAYLOAD_BYTES}
    return lambda n: {"pk": {"S": f"m#{n}"}, "p": payload}


def _copies_of(client: Any, table: str) -> Callable[[int], dict[str, Any]]:
    """Copies of one item of `table` under new primary keys (index keys kept: the same index writes)."""
    sample = client.scan(TableName=table, Limit=1).get("Items") or []
    if not sample:
        raise RuntimeError(f"{table} is empty: nothing to copy for the ideal batch writer")
    item = sample[0]
    keys = [key["AttributeName"] for key in client.describe_table(TableName=table)["Table"]["KeySchema"]]

    def copy(n: int) -> dict[str, Any]:
        fresh = dict(item)
        for name in keys:
            ((kind, value),) = item[name].items()
            fresh[name] = {"N": str(n)} if kind == "N" else {kind: f"{value}#ideal{n}"}
        return fresh

    return copy
