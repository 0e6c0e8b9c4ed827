"""Asynchronous self-invocation through the Lambda Invoke API (lives here: store/ owns boto3)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


class LambdaAsyncInvoker:
    def __init__(self, lambda_client: Any) -> None:
        self._client = lambda_client

    def invoke_async(self, function_name: str, payload: Mapping[str, Any]) -> None:
        self._client.invoke(
            FunctionName=function_name,
            InvocationType="Event",
            Payload=json.dumps(payload).encode(),
        )
