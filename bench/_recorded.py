"""A run's floor from the emulator's own record (`/_emulator/requests`, `/_emulator/ratelimits`).

The ideal client (bench/floor.py) makes the requests our client made that Miro charged, each with the latency
the emulator recorded for it (answered - received) and charged when the emulator charged it, each page of a
listing only after the page whose answer carried its cursor (SCIM pages with a startIndex: after the
listing's first page, which says how many there are), starting at the instant our run started, in the same
fixed windows (each budget's phase and what was already spent in the open window, read just before the
start). What it leaves out is our waste: requests refused with 429 or faults, and a page of a listing asked
for again (`duplicate_pages`; also any other GET repeated with the same query, `repeated_gets`).

`real_windows_floor` re-runs the same ideal client with Miro's real 60 s windows (same limits): what the run
needs against the real Miro, which the benches compress.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from bench import floor
from bench._common import http_json

SCIM_PATH = "/api/v1/scim/"
MIRO_WINDOW_S = 60.0


def read_limits(base_url: str) -> dict[str, Any]:
    """Each budget's window phase and what the benchmark's tokens spent in the open window: read just
    before the run starts."""
    limits: dict[str, Any] = http_json("GET", f"{base_url}/_emulator/ratelimits")["budgets"]
    return limits


def read_record(base_url: str) -> list[dict[str, Any]]:
    requests: list[dict[str, Any]] = http_json("GET", f"{base_url}/_emulator/requests")["requests"]
    return requests


def recorded_budget(name: str, shape: dict[str, Any], start_s: float) -> floor.Budget:
    """A budget as `/_emulator/ratelimits` described it just before the run: its window phase, and what
    was already spent if the run starts in that same window."""
    in_open_window = shape["windowStartS"] <= start_s < shape["windowStartS"] + shape["windowS"]
    return floor.Budget(
        name,
        int(shape["limit"]),
        float(shape["windowS"]),
        float(shape["phaseS"]),
        int(shape["spent"]) if in_open_window else 0,
    )


@dataclass(frozen=True)
class IdealInputs:
    budgets: list[floor.Budget]
    requests: list[floor.Request]
    duplicate_pages: int  # a listing's page (same listing and cursor) charged again
    repeated_gets: int  # any other GET charged again with the same path and query
    refused: int  # answered without a charge (429, faults, auth): not made by the ideal client
    by_budget: dict[str, int]  # units charged per budget by the requests the ideal client makes


def ideal_inputs(
    record: list[dict[str, Any]],
    limits: dict[str, Any],
    start_s: float,
    *,
    window_s: float | None = None,
) -> IdealInputs:
    """The ideal client's budgets and requests for a recorded run started at `start_s` (epoch seconds).
    `window_s` replaces every budget's window (e.g. Miro's real 60 s); the phase is then the start."""
    charged = sorted((r for r in record if r.get("budget")), key=lambda r: r["receivedS"])
    refused = len(record) - len(charged)
    requests: list[floor.Request] = []
    seen: set[tuple[str, str, str | None]] = set()
    index_of_cursor: dict[tuple[str, str], int] = {}  # (listing, cursor an answer returned) -> request
    first_page: dict[str, int] = {}
    duplicate_pages = repeated_gets = 0
    used: Counter[str] = Counter()
    costs_cache: dict[tuple[str, int], tuple[tuple[str, int], ...]] = {}
    for r in charged:
        listing, position = r["listing"], r["position"]
        key = (r["method"], listing, position)
        if r["method"] == "GET" and key in seen:
            if position is not None or r["nextPosition"] is not None:
                duplicate_pages += 1
            else:
                repeated_gets += 1
            continue
        seen.add(key)
        after: int | None = None
        if position is not None:
            if listing.startswith(SCIM_PATH):
                after = first_page.get(listing)
            else:
                after = index_of_cursor.get((listing, position))
        index = len(requests)
        if position is None:
            first_page.setdefault(listing, index)
        if r["nextPosition"] is not None:
            index_of_cursor.setdefault((listing, r["nextPosition"]), index)
        cost_key = (r["budget"], int(r["cost"]))
        costs = costs_cache.setdefault(cost_key, (cost_key,))
        used[r["budget"]] += int(r["cost"])
        latency = max(0.0, r["answeredS"] - r["receivedS"])
        charge_offset = min(latency, max(0.0, (r["chargedS"] or r["receivedS"]) - r["receivedS"]))
        requests.append(floor.Request(costs, latency, after, charge_offset))
    budgets = [
        recorded_budget(name, limits[name], start_s)
        if window_s is None
        else floor.Budget(name, int(limits[name]["limit"]), window_s, start_s)
        for name in sorted(used)
    ]
    return IdealInputs(budgets, requests, duplicate_pages, repeated_gets, refused, dict(used))


def recorded_floor(
    record: list[dict[str, Any]],
    limits: dict[str, Any],
    start_s: float,
    *,
    window_s: float | None = None,
) -> dict[str, Any]:
    """The API floor of the recorded run, as JSON-ready figures."""
    inputs = ideal_inputs(record, limits, start_s, window_s=window_s)
    result = floor.api_floor(inputs.budgets, start_s, inputs.requests)
    return {
        "api_floor_s": round(result.floor_s, 3),
        "api_lower_bound_s": round(result.lower_bound_s, 3),
        "api_binding": result.binding,
        "api_bounds_s": {name: round(value, 3) for name, value in result.bounds_s.items()},
        "ideal_client": result.client,
        "requests_charged": len(inputs.requests),
        "units_charged": inputs.by_budget,
        "duplicate_pages": inputs.duplicate_pages,
        "repeated_gets": inputs.repeated_gets,
        "requests_refused": inputs.refused,
        "windows": {budget.name: budget.window_s for budget in inputs.budgets},
    }


def item_pages(
    record: list[dict[str, Any]], listing_pattern: str
) -> tuple[str | None, list[int], list[float]]:
    """The charged pages of the listings `listing_pattern` (a regular expression) matches from their start
    (each page once: a page asked for again brings no new item): their budget, costs, and latencies in
    the order they were received."""
    matches = re.compile(listing_pattern).match
    seen: set[tuple[str, str | None]] = set()
    budget: str | None = None
    costs: list[int] = []
    latencies: list[float] = []
    for r in sorted((r for r in record if r.get("budget")), key=lambda r: r["receivedS"]):
        key = (r["listing"], r["position"])
        if r["method"] != "GET" or not matches(r["listing"]) or key in seen:
            continue
        seen.add(key)
        if budget not in (None, r["budget"]):
            raise ValueError(f"pages of {listing_pattern} charged to two budgets")
        budget = r["budget"]
        costs.append(int(r["cost"]))
        latencies.append(max(0.0, r["answeredS"] - r["receivedS"]))
    return budget, costs, latencies


def pages_store_floor(
    record: list[dict[str, Any]],
    limits: dict[str, Any],
    start_s: float,
    *,
    items_written: int,
    store_rate_items_per_s: float,
    item_listing: str,
    items_per_page: int,
    single_chain: bool,
) -> float:
    """The store floor once the pages carrying the items have to arrive first (`floor.pipeline_floor`):
    each page's earliest answer from its budget's windows (and, for one cursor chain, the chain's
    latencies), at most `items_per_page` written items per page."""
    budget_name, costs, latencies = item_pages(record, item_listing)
    if budget_name is None:
        return floor.store_floor(items_written, store_rate_items_per_s)
    budget = recorded_budget(budget_name, limits[budget_name], start_s)
    arrivals = floor.page_arrival_bounds(budget, start_s, costs, latencies if single_chain else None)
    return floor.pipeline_floor(arrivals, items_written, items_per_page, store_rate_items_per_s)


def operation_spans(record: list[dict[str, Any]], start_s: float) -> dict[str, dict[str, float | int]]:
    """When each operation was busy, relative to the run's start: its first request received, its last
    answer, its requests and the credits charged. Where a run lost its time (a phase that had to finish
    before another could start) shows here without the whole record."""
    spans: dict[str, dict[str, float | int]] = {}
    for r in record:
        span = spans.setdefault(
            r["operation"], {"first_s": r["receivedS"] - start_s, "last_s": 0.0, "requests": 0, "credits": 0}
        )
        span["first_s"] = min(span["first_s"], r["receivedS"] - start_s)
        span["last_s"] = max(span["last_s"], r["answeredS"] - start_s)
        span["requests"] += 1
        span["credits"] += int(r.get("cost") or 0)
    return {
        name: {**span, "first_s": round(span["first_s"], 3), "last_s": round(span["last_s"], 3)}
        for name, span in sorted(spans.items(), key=lambda entry: entry[1]["first_s"])
    }


def run_floor(
    record: list[dict[str, Any]],
    limits: dict[str, Any],
    start_s: float,
    wall_s: float,
    *,
    items_written: int,
    store_rate_items_per_s: float,
    item_listing: str | None = None,
    items_per_page: int = 100,
    single_chain: bool = False,
) -> dict[str, Any]:
    """The run's floor (the larger of the API floor and the store floor, and which one bound) and
    efficiency = floor / wall, unclamped; plus the API floor at Miro's real windows. With `item_listing`
    (a regular expression for the listing whose pages carry the written items) the store floor counts
    when those pages can arrive (`pages_store_floor`; `floor_bound_by` "pages+store" when that binds)."""
    api = recorded_floor(record, limits, start_s)
    store_s = floor.store_floor(items_written, store_rate_items_per_s)
    pages_s = store_s
    if item_listing is not None:
        pages_s = pages_store_floor(
            record,
            limits,
            start_s,
            items_written=items_written,
            store_rate_items_per_s=store_rate_items_per_s,
            item_listing=item_listing,
            items_per_page=items_per_page,
            single_chain=single_chain,
        )
    floor_s, bound = floor.combined_floor(api["api_floor_s"], pages_s)
    if bound == floor.STORE and pages_s > store_s:
        bound = "pages+store"
    real = recorded_floor(record, limits, start_s, window_s=MIRO_WINDOW_S)
    return {
        **api,
        "store_floor_s": round(store_s, 3),
        "pages_store_floor_s": round(pages_s, 3),
        "store_rate_items_per_s": round(store_rate_items_per_s, 1),
        "items_written": items_written,
        "floor_s": round(floor_s, 3),
        "floor_bound_by": bound,
        "floor_method": "ideal-client",
        "efficiency": round(floor.efficiency(floor_s, wall_s), 3),
        "api_floor_s_real_windows": real["api_floor_s"],
    }
