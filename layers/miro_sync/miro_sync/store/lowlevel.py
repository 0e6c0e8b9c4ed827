"""DynamoDB without boto3: a botocore low-level client and a small attribute-value codec.

For the import-light functions (the board webhook's cold start is benchmarked): `import boto3` loads
s3transfer and boto3's resource layer, which a function that only does GetItem/PutItem/UpdateItem
never uses. `botocore.session` is what boto3 itself builds clients from, so the client here resolves
region, credentials and endpoint exactly as `boto3.client("dynamodb")` does: `AWS_DEFAULT_REGION`,
the standard credential chain, and `AWS_ENDPOINT_URL_DYNAMODB` / `AWS_ENDPOINT_URL` (botocore reads
those itself since 1.31).

`LowLevelTable` speaks the same dialect as the subset of boto3's `Table` resource the repositories
use (`get_item`, `put_item`, `delete_item`, `update_item`, `query`; plain Python values in and out,
string expressions only), so a repository works over either: the webhook hands in a `LowLevelTable`,
the CLI still hands in a boto3 `Table`.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

import botocore.session
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table as ResourceTable

# Parameters of the table operations that carry items, keys or values (converted to attribute values),
# and response fields that carry them back (converted to plain values).
_ITEM_PARAMETERS = ("Item", "Key", "ExclusiveStartKey")
_RESPONSE_ITEMS = ("Item", "Attributes", "LastEvaluatedKey")


class TableLike(Protocol):
    """What the repositories need from a table: a `LowLevelTable` or a boto3 `Table` resource."""

    def get_item(self, **kwargs: Any) -> Mapping[str, Any]: ...
    def put_item(self, **kwargs: Any) -> Mapping[str, Any]: ...
    def delete_item(self, **kwargs: Any) -> Mapping[str, Any]: ...
    def update_item(self, **kwargs: Any) -> Mapping[str, Any]: ...
    def query(self, **kwargs: Any) -> Mapping[str, Any]: ...


# What a repository accepts: anything table-like (a `LowLevelTable`, a test fake) or a boto3 `Table`
# resource (whose typed signatures are narrower than the protocol's).
AnyTable: TypeAlias = "TableLike | ResourceTable"


# The configuration of the bulk writer clients (audit page writes, new members' batch puts), which are
# sent only items this module typed. botocore's parameter validation walks every attribute of every item
# again on the calling thread, under the GIL: 12% of the GIL-holding samples of a 200,000-event audit
# sync (py-spy --gil). DynamoDB validates every request itself, and refuses a malformed one the same way.
BULK_WRITER_CONFIG = Config(parameter_validation=False)


def dynamodb_client(**overrides: Any) -> Any:
    """A low-level DynamoDB client from a fresh botocore session (thread-safe; build once per
    container). `overrides` go to `create_client` (region_name, endpoint_url, credentials)."""
    return botocore.session.get_session().create_client("dynamodb", **overrides)


def to_attribute(value: Any) -> dict[str, Any]:
    """A plain Python value as a DynamoDB attribute value (S, N, BOOL, NULL, B, L, M and string sets).

    Floats are refused, as boto3 refuses them: a float has no exact decimal form."""
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, bool):  # before int: bool is an int
        return {"BOOL": value}
    if isinstance(value, int | Decimal):
        return {"N": _number(value)}
    if value is None:
        return {"NULL": True}
    if isinstance(value, bytes | bytearray):
        return {"B": bytes(value)}
    if isinstance(value, Mapping):
        return {"M": {str(key): to_attribute(item) for key, item in value.items()}}
    if isinstance(value, list | tuple):
        return {"L": [to_attribute(item) for item in value]}
    if isinstance(value, set | frozenset) and value and all(isinstance(item, str) for item in value):
        return {"SS": sorted(value)}
    raise TypeError(f"cannot store a {type(value).__name__} in DynamoDB")


def _number(value: int | Decimal) -> str:
    if isinstance(value, Decimal) and not value.is_finite():
        raise TypeError("cannot store NaN or Infinity in DynamoDB")
    return str(value)


def from_attribute(attribute: Mapping[str, Any]) -> Any:
    """A DynamoDB attribute value as plain Python, the way boto3 returns it (numbers as Decimal)."""
    ((kind, value),) = attribute.items()
    if kind == "S":
        return value
    if kind == "N":
        return Decimal(value)
    if kind == "BOOL":
        return bool(value)
    if kind == "NULL":
        return None
    if kind == "B":
        return bytes(value)
    if kind == "M":
        return {key: from_attribute(item) for key, item in value.items()}
    if kind == "L":
        return [from_attribute(item) for item in value]
    if kind == "SS":
        return set(value)
    if kind == "NS":
        return {Decimal(item) for item in value}
    if kind == "BS":
        return {bytes(item) for item in value}
    raise TypeError(f"unknown DynamoDB attribute type {kind}")


def to_item(values: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: to_attribute(value) for name, value in values.items()}


def from_item(item: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    return {name: from_attribute(value) for name, value in item.items()}


class LowLevelTable:
    """One table over a low-level client, with boto3 `Table`'s plain-value calling convention.

    Conditions and key conditions are expression strings (not `boto3.dynamodb.conditions`, whose
    import is what this module exists to avoid). Thread-safe as long as the client is."""

    def __init__(self, client: Any, name: str) -> None:
        self.client = client
        self.name = name

    def get_item(self, **kwargs: Any) -> dict[str, Any]:
        return self._call(self.client.get_item, kwargs)

    def put_item(self, **kwargs: Any) -> dict[str, Any]:
        return self._call(self.client.put_item, kwargs)

    def delete_item(self, **kwargs: Any) -> dict[str, Any]:
        return self._call(self.client.delete_item, kwargs)

    def update_item(self, **kwargs: Any) -> dict[str, Any]:
        return self._call(self.client.update_item, kwargs)

    def query(self, **kwargs: Any) -> dict[str, Any]:
        return self._call(self.client.query, kwargs)

    def _call(self, operation: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        request = dict(kwargs, TableName=self.name)
        for parameter in _ITEM_PARAMETERS:
            if parameter in request:
                request[parameter] = to_item(request[parameter])
        if "ExpressionAttributeValues" in request:
            request["ExpressionAttributeValues"] = to_item(request["ExpressionAttributeValues"])
        response: dict[str, Any] = operation(**request)
        for field in _RESPONSE_ITEMS:
            if field in response:
                response[field] = from_item(response[field])
        if "Items" in response:
            response["Items"] = [from_item(item) for item in response["Items"]]
        return response
