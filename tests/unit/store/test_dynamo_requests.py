"""The request builders every repository shares (store.dynamo): update expressions that never send
DynamoDB an empty or unused value, batches within DynamoDB's per-request limits that re-send what it
left unprocessed, and boto3's values turned back into plain JSON-friendly ones."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from miro_sync.store.dynamo import (
    MAX_BATCH_GET_KEYS,
    MAX_BATCH_WRITE_ITEMS,
    batch_get,
    batch_write,
    chunked,
    plain,
    update_expression,
)


def test_values_are_set_and_none_or_empty_values_removed() -> None:
    expression, names, values = update_expression({"email": "a@b.c", "scimId": None, "displayName": ""})

    assert expression == "SET #s0 = :s0 REMOVE #s1, #s2"
    assert names == {"#s0": "email", "#s1": "scimId", "#s2": "displayName"}
    assert values == {":s0": "a@b.c"}  # no value for a removed attribute: DynamoDB refuses unused ones


def test_extra_removes_follow_the_removed_values() -> None:
    expression, names, values = update_expression({"count": 0}, removes=["fingerprint"])

    assert expression == "SET #s0 = :s0 REMOVE #r0"
    assert names == {"#s0": "count", "#r0": "fingerprint"}
    assert values == {":s0": 0}  # zero is a value, not an absence


def test_only_removes_make_a_remove_expression() -> None:
    assert update_expression({"a": None}) == ("REMOVE #s0", {"#s0": "a"}, {})


def test_chunks_keep_order_and_the_last_one_holds_the_rest() -> None:
    assert list(chunked(range(7), 3)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(chunked([], 3)) == []


def test_boto3_values_become_plain_values() -> None:
    stored = {"n": Decimal("3"), "f": Decimal("1.5"), "tags": {"b", "a"}, "nested": [{"x": Decimal("2")}]}

    assert plain(stored) == {"n": 3, "f": 1.5, "tags": ["a", "b"], "nested": [{"x": 2}]}


@dataclass
class BatchClient:
    """Leaves the first `unprocessed` entries of its first answer unprocessed, then takes everything."""

    unprocessed: int = 0
    writes: list[list[Any]] = field(default_factory=list)
    gets: list[dict[str, Any]] = field(default_factory=list)

    def batch_write_item(self, **request: dict[str, list[Any]]) -> dict[str, Any]:
        (requests,) = request["RequestItems"].values()
        self.writes.append(requests)
        left, self.unprocessed = requests[: self.unprocessed], 0
        return {"UnprocessedItems": {"t": left}} if left else {}

    def batch_get_item(self, **call: dict[str, dict[str, Any]]) -> dict[str, Any]:
        (request,) = call["RequestItems"].values()
        self.gets.append(request)
        keys = request["Keys"]
        left, self.unprocessed = keys[: self.unprocessed], 0
        found = [dict(key, found=True) for key in keys[len(left) :]]
        answer: dict[str, Any] = {"Responses": {"t": found}}
        if left:
            answer["UnprocessedKeys"] = {"t": {"Keys": left}}
        return answer


def test_writes_go_in_batches_of_25_and_unprocessed_items_are_sent_again() -> None:
    client = BatchClient(unprocessed=2)
    items = [{"pk": str(n)} for n in range(30)]

    requests = batch_write(client, "t", items)

    assert requests == 3
    assert [len(batch) for batch in client.writes] == [MAX_BATCH_WRITE_ITEMS, 2, 5]
    assert client.writes[1] == [{"PutRequest": {"Item": {"pk": "0"}}}, {"PutRequest": {"Item": {"pk": "1"}}}]


def test_gets_go_in_batches_of_100_and_unprocessed_keys_are_asked_again() -> None:
    client = BatchClient(unprocessed=1)
    keys = [{"pk": str(n)} for n in range(101)]

    found, requests = batch_get(client, "t", keys, consistent=False)

    assert requests == 3
    assert [len(request["Keys"]) for request in client.gets] == [MAX_BATCH_GET_KEYS, 1, 1]
    assert {request["ConsistentRead"] for request in client.gets} == {False}
    assert sorted(int(item["pk"]) for item in found) == list(range(101))
