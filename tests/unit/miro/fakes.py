"""Fakes for the Miro client unit tests: a virtual clock and a scripted httpx transport."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import httpx

Handler = Callable[[httpx.Request], httpx.Response]


class FakeTime:
    """Virtual clock: ``sleep`` advances ``now`` and records each wait."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class ScriptedMiro:
    """Answers requests from a queue of responses (or handlers); records every request it saw."""

    def __init__(self, script: Iterable[httpx.Response | Handler | Exception]) -> None:
        self.script = list(script)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if not self.script:
            raise AssertionError(f"unexpected request {request.method} {request.url}")
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        if isinstance(step, httpx.Response):
            return step
        return step(request)

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self))


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(
        status,
        content=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def member(index: int, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": f"30744573{index:08d}",
        "email": f"user{index}@example.com",
        "role": "organization_internal_user",
        "license": "full",
        "active": True,
        "lastActivityAt": "2024-05-01T10:00:00.000Z",
        "licenseAssignedAt": "2023-01-01T00:00:00.000Z",
        "type": "organization-member",
        "adminRoles": [],
    }
    body.update(overrides)
    return body


def members_page(indices: Iterable[int], cursor: str | None, limit: int = 100) -> dict[str, Any]:
    data = [member(i) for i in indices]
    page: dict[str, Any] = {"type": "cursor-list", "limit": limit, "size": len(data), "data": data}
    if cursor is not None:
        page["cursor"] = cursor
    return page
