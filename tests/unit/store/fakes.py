"""Stand-ins for a DynamoDB table and its client, handed to the repositories in place of boto3's.

`PagedTable` answers `query` with scripted pages and records every request; its writes raise the
scripted errors in order (then succeed). It serves both calling conventions the repositories use: the
table's own methods (`table.query(...)`) and its client's (`table.meta.client.query(TableName=...)`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from botocore.exceptions import ClientError


def client_error(code: str, operation: str = "UpdateItem") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}}, operation)


CONDITION_FAILED = client_error("ConditionalCheckFailedException")
THROTTLED = client_error("ProvisionedThroughputExceededException")


def page(items: Sequence[Mapping[str, Any]], last_key: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One Query answer: its items, Count, and LastEvaluatedKey when more follow."""
    answer: dict[str, Any] = {"Items": [dict(item) for item in items], "Count": len(items)}
    if last_key is not None:
        answer["LastEvaluatedKey"] = dict(last_key)
    return answer


@dataclass
class PagedTable:
    pages: list[dict[str, Any]] = field(default_factory=list)
    write_errors: list[Exception] = field(default_factory=list)
    name: str = "fake-table"
    queries: list[dict[str, Any]] = field(default_factory=list)
    writes: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    @property
    def meta(self) -> SimpleNamespace:
        return SimpleNamespace(client=self)

    def query(self, **request: Any) -> dict[str, Any]:
        self.queries.append(request)
        return self.pages[len(self.queries) - 1]

    def put_item(self, **request: Any) -> dict[str, Any]:
        return self._write("put_item", request)

    def update_item(self, **request: Any) -> dict[str, Any]:
        return self._write("update_item", request)

    def get_item(self, **request: Any) -> dict[str, Any]:
        return {}

    def delete_item(self, **request: Any) -> dict[str, Any]:
        return self._write("delete_item", request)

    def _write(self, operation: str, request: dict[str, Any]) -> dict[str, Any]:
        self.writes.append((operation, request))
        if self.write_errors:
            raise self.write_errors.pop(0)
        return {"Attributes": {}}

    def start_keys(self) -> list[Any]:
        """The ExclusiveStartKey of each query made (None for the first of a listing)."""
        return [request.get("ExclusiveStartKey") for request in self.queries]
