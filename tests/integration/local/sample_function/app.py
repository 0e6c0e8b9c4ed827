"""A function used only by the local-stack tests: counts its invocations in a table and continues
itself asynchronously until it has run `rounds` times, the way the sync functions continue."""

import json
import os
from typing import Any

import boto3


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    table = boto3.resource("dynamodb").Table(os.environ["COUNTER_TABLE"])
    round_number = int(event.get("round", 1))
    table.put_item(
        Item={
            "pk": "run",
            "sk": f"round#{round_number:03d}",
            "remainingMs": context.get_remaining_time_in_millis(),
        }
    )
    secret = boto3.client("secretsmanager").get_secret_value(SecretId=os.environ["TOKEN_SECRET"])[
        "SecretString"
    ]
    if round_number < int(event.get("rounds", 1)):
        boto3.client("lambda").invoke(
            FunctionName=os.environ["AWS_LAMBDA_FUNCTION_NAME"],
            InvocationType="Event",
            Payload=json.dumps({**event, "round": round_number + 1}).encode(),
        )
    if event.get("fail"):
        raise ValueError("asked to fail")
    return {"round": round_number, "tokenLength": len(secret), "function": context.function_name}
