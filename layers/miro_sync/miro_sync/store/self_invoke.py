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


class LazyLambdaClient:
    """boto3's Lambda client, created on the first `invoke` (a hand-over), not with the container:
    its service model is ~3.5 MB of RSS and most invocations never hand over."""

    def __init__(self) -> None:
        self._client: Any = None

    def invoke(self, **kwargs: Any) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("lambda")
        return self._client.invoke(**kwargs)
