"""The rate of an ideal batch writer on the benchmark's own DynamoDB stand-in, measured in the same run.

Locally the stand-in (DynamoDB Local, or moto server), not Miro, can be what binds; real DynamoDB on demand
scales. So a bench's floor is the larger of its API floor and `items written / this rate`: BatchWriteItem of
25 items, from several threads, into a scratch table, nothing else. Items are the size of a member item.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from typing import Any

ITEM_PAYLOAD_BYTES = 400  # about a member item (email, name, role, license, teams, timestamps)
BATCH = 25


def ideal_batch_write_rate(
    endpoint_url: str,
    *,
    items: int = 20_000,
    threads: int = 8,
    region: str = "us-east-1",
) -> float:
    """Items per second an ideal batch writer reaches on `endpoint_url` (the table is dropped after)."""
    import boto3

    client: Any = boto3.client(
        "dynamodb",
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
    )
    table = f"bench-store-rate-{uuid.uuid4().hex[:8]}"
    client.create_table(
        TableName=table,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    client.get_waiter("table_exists").wait(TableName=table)
    payload = "x" * ITEM_PAYLOAD_BYTES
    per_thread = items // threads
    errors: list[BaseException] = []

    def write(offset: int) -> None:
        try:
            own: Any = boto3.client(
                "dynamodb",
                endpoint_url=endpoint_url,
                region_name=region,
                aws_access_key_id="bench",
                aws_secret_access_key="bench",
            )
            for start in range(0, per_thread, BATCH):
                batch = [
                    {"PutRequest": {"Item": {"pk": {"S": f"m#{offset + start + k}"}, "p": {"S": payload}}}}
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
