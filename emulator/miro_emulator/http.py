"""Transport-neutral request/response types and Miro's error bodies."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

SCIM_ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
SCIM_CONTENT_TYPE = "application/scim+json"
JSON_CONTENT_TYPE = "application/json"


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes = b""
    path_params: dict[str, str] = field(default_factory=dict)

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    def bearer_token(self) -> str | None:
        header = self.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        return token.strip() or None if scheme.lower() == "bearer" else None

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8")) if self.body else None


@dataclass
class Response:
    status: int
    body: Any = None  # JSON-able; None = empty body
    content_type: str = JSON_CONTENT_TYPE
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None  # pre-rendered body (non-JSON gateway errors, truncation)

    def encoded(self) -> bytes:
        if self.raw is not None:
            return self.raw
        if self.body is None:
            return b""
        return json.dumps(self.body, separators=(",", ":")).encode()


class ApiError(Exception):
    """Raised by handlers; rendered as Miro's REST error body."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def response(self) -> Response:
        body = {"status": self.status, "code": self.code, "message": self.message, "type": "error"}
        return Response(self.status, body, headers=dict(self.headers))


class ScimError(ApiError):
    """Raised by SCIM handlers; rendered as the SCIM error body (RFC 7644 §3.12, as Miro returns it)."""

    def __init__(self, status: int, detail: str, scim_type: str | None = None) -> None:
        super().__init__(status, scim_type or "", detail)
        self.scim_type = scim_type

    def response(self) -> Response:
        body: dict[str, Any] = {
            "schemas": [SCIM_ERROR_SCHEMA],
            "status": str(self.status),
            "detail": self.message,
        }
        if self.scim_type:
            body["scimType"] = self.scim_type
        return Response(self.status, body, content_type=SCIM_CONTENT_TYPE, headers=dict(self.headers))


def bad_request(message: str) -> ApiError:
    return ApiError(400, "invalidParameters", message)


def not_found(message: str = "Not found") -> ApiError:
    return ApiError(404, "notFound", message)
