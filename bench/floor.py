"""The floor of a run: when an ideal client, facing the same fixed rate-limit windows, would have finished.

Pure calculation, no I/O. Miro's limits are fixed windows (X-RateLimit-Reset): a budget grants `limit` units
in every window `[phase + k * window_s, phase + (k + 1) * window_s)`. A client that starts late in a window
may spend that window's budget and the next one's in little more than one window, so `units / limit x
window` overstates the minimum. Here the floor is computed from the run's own record instead:

* `Budget`: name, units per window, window length, the window phase (the instant a window starts, e.g. the
  first X-RateLimit-Reset minus the window, epoch seconds) and what was already spent in the start window;
* the run's start instant (epoch seconds);
* `Request`s: each one's cost per budget, its latency, the request it must follow (a cursor chain: it is
  sent only once its predecessor's answer has arrived; the predecessor must come earlier in the list), and
  optionally when within its round trip the budget is charged (the emulator charges after its injected
  latency, i.e. about when it answers).

`api_floor` runs two ideal clients and keeps the earlier finish (both schedules are feasible, so the better
one is still a schedule some client could have run):

1. earliest fit (offline): requests in priority order -- the longest latency chain still behind a request
   first (critical path), then chain position, then input order; each goes into the earliest instant its
   predecessor's answer allows whose window still has room in every budget it spends (backfilling windows
   earlier requests left room in). Keeps a budget for a chain's next step instead of spending it on
   independent requests first.
2. non-delay (time ordered): at each instant every ready request that fits in the current windows is sent
   (same priority order when they compete); a request that does not fit waits for the next window start of
   the binding budget. Supports `max_concurrency`; when it is set only this client runs.

Optimality, and where it is an approximation:

* one chain (audit pages), any budgets: both clients send each step at the earliest feasible instant, and
  sending a step earlier never delays a later one (windows are fixed, budgets only refill), so it is optimal;
* independent requests of equal cost sharing one budget, plus at most one chain: earliest fit gives the chain
  every step as early as possible and backfills every window to the limit, so it finishes at the larger of
  the chain's own minimum and the window the last unit needs -- both are lower bounds, so it is optimal;
* otherwise (several chains competing for a scarce window, mixed costs in one budget, latency comparable to
  the window, a concurrency cap) it is list scheduling, a heuristic: an upper bound on the true minimum.
  `lower_bound_s` is a provable lower bound (longest chain; per budget, the window its last unit needs); when
  `floor_s == lower_bound_s` the floor is exact, otherwise the true minimum lies in between, and an
  efficiency above 1.0 is possible only by that gap (check `lower_bound_s / wall`).

Also `store_floor` (items over an ideal batch writer's measured rate), `pipeline_floor` (the store floor
once the pages carrying the items cannot all be there at the start), `combined_floor` (the larger, and
which bound) and `efficiency` (floor / wall, never clamped).

The pipeline floor: an item can be written only once the page that carries it has been answered, and the
store writes at most `rate` items a second. If A_k is a lower bound on when the k-th such page (0-based, in
the order they are answered, whoever the client) can be answered, at most k x M items (M: items per page at
most) can have been written before A_k, so no client finishes before A_k + (items - k x M) / rate, for every
k. `page_arrival_bounds` gives A_k from the pages' budget alone (the k-th charge needs the units of k charges
in the windows up to its own, cheapest pages first; an answer comes no earlier than its charge) and, for one
cursor chain, from the sum of the chain's first k latencies. Both ignore every other request, so A_k stays a
lower bound; the pipeline floor is therefore one too, and never below the store floor (k = 0).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

LATENCY = "latency"
API = "api"
STORE = "store"


@dataclass(frozen=True, slots=True)
class Budget:
    """A fixed-window budget: `limit` units per window; windows start at `phase_s + k * window_s`."""

    name: str
    limit: int
    window_s: float
    phase_s: float
    spent_at_start: int = 0  # units already spent in the window the run starts in

    def __post_init__(self) -> None:
        if self.limit <= 0 or self.window_s <= 0:
            raise ValueError(f"budget {self.name!r}: limit and window_s must be positive")
        if not 0 <= self.spent_at_start <= self.limit:
            raise ValueError(f"budget {self.name!r}: spent_at_start must be within 0..limit")


@dataclass(frozen=True, slots=True)
class Request:
    """One request of the ideal client.

    costs: (budget name, units) pairs, e.g. (("rest", 100),) or (("scim_PATCH", 1),); share one tuple
    between requests of the same kind. after: index of the request whose answer it needs (an earlier one).
    charge_offset_s: when the budget is charged, after the request is sent (0 = on sending; the emulator
    charges after its injected latency, so about `latency_s`).
    """

    costs: tuple[tuple[str, int], ...]
    latency_s: float
    after: int | None = None
    charge_offset_s: float = 0.0


@dataclass(frozen=True, slots=True)
class ApiFloor:
    floor_s: float  # the ideal client's finish (last answer) minus the start
    lower_bound_s: float  # no client can finish earlier; == floor_s means the floor is exact
    binding: str  # "latency" or the name of the budget whose lower bound is the largest
    bounds_s: dict[str, float]  # each lower bound: "latency" (longest chain) and one per budget
    client: str  # "earliest_fit" or "non_delay": the ideal client that finished first
    send_times_s: tuple[float, ...] = field(default=())  # per request, relative to start (keep_schedule)


def cursor_chain(
    count: int,
    costs: tuple[tuple[str, int], ...],
    latency_s: float,
    first_index: int = 0,
    charge_offset_s: float = 0.0,
) -> list[Request]:
    """`count` requests, each following the previous one (a cursor chain); `first_index` is the position of
    the first one in the final request list."""
    return [
        Request(costs, latency_s, None if k == 0 else first_index + k - 1, charge_offset_s)
        for k in range(count)
    ]


class _Windows:
    """Window arithmetic of one budget on times relative to the start; consistent at the boundaries."""

    __slots__ = ("first", "limit", "phase", "window")

    def __init__(self, budget: Budget, start_s: float) -> None:
        self.limit = budget.limit
        self.window = budget.window_s
        self.phase = budget.phase_s - start_s
        self.first = self.index(0.0)

    def start(self, w: int) -> float:
        return self.phase + w * self.window

    def index(self, t: float) -> int:
        w = math.floor((t - self.phase) / self.window)
        if self.start(w + 1) <= t:
            return w + 1
        if self.start(w) > t:
            return w - 1
        return w


@dataclass
class _Prepared:
    n: int
    pred: list[int]
    lat: list[float]
    off: list[float]
    cls: list[int]
    class_costs: list[list[tuple[int, int]]]
    children: dict[int, list[int]]
    order: list[int]  # priority order (a topological order)
    wins: list[_Windows]
    budgets: list[Budget]
    bounds: dict[str, float]


def _prepare(budgets: Sequence[Budget], start_s: float, requests: Sequence[Request]) -> _Prepared:
    names = {b.name: k for k, b in enumerate(budgets)}
    if len(names) != len(budgets):
        raise ValueError("budget names must be unique")
    n = len(requests)
    pred = [-1] * n
    lat = [0.0] * n
    off = [0.0] * n
    cls = [0] * n
    class_of: dict[tuple[tuple[str, int], ...], int] = {}
    class_costs: list[list[tuple[int, int]]] = []
    children: dict[int, list[int]] = {}
    for i, r in enumerate(requests):
        if r.latency_s < 0 or r.charge_offset_s < 0:
            raise ValueError(f"request {i}: negative latency or charge offset")
        lat[i] = r.latency_s
        off[i] = r.charge_offset_s
        if r.after is not None:
            if not 0 <= r.after < i:
                raise ValueError(f"request {i}: after={r.after} must be an earlier request")
            pred[i] = r.after
            children.setdefault(r.after, []).append(i)
        c = class_of.get(r.costs)
        if c is None:
            costs: dict[int, int] = {}
            for name, units in r.costs:
                if name not in names:
                    raise ValueError(f"request {i}: unknown budget {name!r}")
                if units < 0:
                    raise ValueError(f"request {i}: negative cost")
                if units > budgets[names[name]].limit:
                    raise ValueError(f"request {i}: costs {units} of {name!r}, more than a window grants")
                costs[names[name]] = costs.get(names[name], 0) + units
            c = class_of[r.costs] = len(class_costs)
            class_costs.append(sorted((b, u) for b, u in costs.items() if u > 0))
        cls[i] = c

    # Critical path: tail[i] = the longest latency chain from i's sending to the end.
    tail = lat[:]
    for i in range(n - 1, -1, -1):
        p = pred[i]
        if p >= 0 and lat[p] + tail[i] > tail[p]:
            tail[p] = lat[p] + tail[i]
    depth = [0] * n
    earliest = [0.0] * n  # answer instant ignoring every budget
    for i in range(n):
        p = pred[i]
        if p >= 0:
            depth[i] = depth[p] + 1
            earliest[i] = earliest[p] + lat[i]
        else:
            earliest[i] = lat[i]
    # tail strictly drops along a chain unless a latency is 0; then depth keeps it topological.
    order = sorted(range(n), key=lambda i: (-tail[i], depth[i], i))

    wins = [_Windows(b, start_s) for b in budgets]
    bounds = {LATENCY: max(earliest, default=0.0)}
    total = [0] * len(budgets)
    quickest = [math.inf] * len(budgets)  # min(latency - charge offset) of a request spending the budget
    for i in range(n):
        for b, u in class_costs[cls[i]]:
            total[b] += u
            quickest[b] = min(quickest[b], lat[i] - off[i])
    for b, budget in enumerate(budgets):
        if total[b] == 0:
            bounds[budget.name] = 0.0
            continue
        first_room = budget.limit - budget.spent_at_start
        extra = 0 if total[b] <= first_room else math.ceil((total[b] - first_room) / budget.limit)
        last_charge = 0.0 if extra == 0 else wins[b].start(wins[b].first + extra)
        bounds[budget.name] = max(0.0, last_charge + quickest[b])
    return _Prepared(n, pred, lat, off, cls, class_costs, children, order, wins, list(budgets), bounds)


def _earliest_fit(p: _Prepared) -> tuple[float, list[float]]:
    """Offline list scheduling with backfilling, in priority order."""
    wins = p.wins
    spent: list[dict[int, int]] = [
        {ws.first: bd.spent_at_start} for ws, bd in zip(wins, p.budgets, strict=True)
    ]
    # full[b][u]: union-find "next window that may still have room for u units" (a window too full for u
    # stays too full: spending only grows).
    full: list[dict[int, dict[int, int]]] = [{} for _ in wins]
    costs_of: list[set[int]] = [set() for _ in wins]
    for cc in p.class_costs:
        for b, u in cc:
            costs_of[b].add(u)
    for b, ws in enumerate(wins):
        for u in costs_of[b]:
            full[b][u] = {}
            if p.budgets[b].spent_at_start + u > ws.limit:
                full[b][u][ws.first] = ws.first + 1

    def find(nxt: dict[int, int], w: int) -> int:
        root = w
        while root in nxt:
            root = nxt[root]
        while w in nxt and nxt[w] != root:
            nxt[w], w = root, nxt[w]
        return root

    answer = [0.0] * p.n
    send = [0.0] * p.n
    finish = 0.0
    pred, lat, off, cls, class_costs = p.pred, p.lat, p.off, p.cls, p.class_costs
    for i in p.order:
        q = pred[i]
        t = (answer[q] if q >= 0 else 0.0) + off[i]  # the charge instant
        cc = class_costs[cls[i]]
        moved = True
        while moved:
            moved = False
            for b, u in cc:
                win = wins[b]
                w = win.index(t)
                w2 = find(full[b][u], w)
                if w2 != w:
                    t = win.start(w2)
                    moved = True
        for b, u in cc:
            win = wins[b]
            w = win.index(t)
            s = spent[b].get(w, 0) + u
            spent[b][w] = s
            for v in costs_of[b]:
                if s + v > win.limit and w not in full[b][v]:
                    full[b][v][w] = w + 1
        send[i] = t - off[i]
        answer[i] = a = send[i] + lat[i]
        if a > finish:
            finish = a
    return finish, send


def _non_delay(p: _Prepared, max_concurrency: int | None) -> tuple[float, list[float]]:
    """Time-ordered greedy: send whatever is ready and fits now; otherwise wait for the next event."""
    wins = p.wins
    nb = len(wins)
    rank = [0] * p.n
    for r, i in enumerate(p.order):
        rank[i] = r
    order, pred, lat, off, cls, class_costs, children = (
        p.order,
        p.pred,
        p.lat,
        p.off,
        p.cls,
        p.class_costs,
        p.children,
    )
    nclasses = len(class_costs)
    ready: list[list[int]] = [[] for _ in range(nclasses)]
    pending: list[tuple[float, int]] = []
    for i in range(p.n):
        if pred[i] < 0:
            if off[i] <= 0.0:
                ready[cls[i]].append(rank[i])
            else:
                pending.append((off[i], i))
    for h in ready:
        heapq.heapify(h)
    heapq.heapify(pending)
    inflight: list[float] = []
    cur = [w.first for w in wins]
    spent = [b.spent_at_start for b in p.budgets]
    limit = [w.limit for w in wins]
    send = [0.0] * p.n
    finish = 0.0
    sent = 0
    now = 0.0
    while sent < p.n:
        while pending and pending[0][0] <= now:
            i = heapq.heappop(pending)[1]
            heapq.heappush(ready[cls[i]], rank[i])
        if max_concurrency is not None:
            while inflight and inflight[0] <= now:
                heapq.heappop(inflight)
        for b in range(nb):
            w = wins[b].index(now)
            if w != cur[b]:
                cur[b] = w
                spent[b] = 0
        while max_concurrency is None or len(inflight) < max_concurrency:
            best = -1
            best_rank = p.n
            for c in range(nclasses):
                h = ready[c]
                if h and h[0] < best_rank and all(spent[b] + u <= limit[b] for b, u in class_costs[c]):
                    best, best_rank = c, h[0]
            if best < 0:
                break
            i = order[heapq.heappop(ready[best])]
            for b, u in class_costs[best]:
                spent[b] += u
            send[i] = now - off[i]
            a = send[i] + lat[i]
            if a > finish:
                finish = a
            sent += 1
            for child in children.get(i, ()):
                tc = a + off[child]
                if tc <= now:
                    heapq.heappush(ready[cls[child]], rank[child])
                else:
                    heapq.heappush(pending, (tc, child))
            if max_concurrency is not None:
                heapq.heappush(inflight, a)
        if sent == p.n:
            break
        nxt = pending[0][0] if pending else math.inf
        waiting = [c for c in range(nclasses) if ready[c]]
        if waiting and max_concurrency is not None and len(inflight) >= max_concurrency:
            nxt = min(nxt, inflight[0])
        for c in waiting:
            for b, u in class_costs[c]:
                if spent[b] + u > limit[b]:
                    nxt = min(nxt, wins[b].start(cur[b] + 1))
        if nxt == math.inf:  # pragma: no cover - costs above a window's limit are rejected up front
            raise RuntimeError("ideal client stuck")
        now = nxt
    return finish, send


def api_floor(
    budgets: Sequence[Budget],
    start_s: float,
    requests: Sequence[Request],
    *,
    max_concurrency: int | None = None,
    keep_schedule: bool = False,
) -> ApiFloor:
    """The API floor of a run started at `start_s` (epoch seconds) that makes `requests`."""
    if max_concurrency is not None and max_concurrency < 1:
        raise ValueError("max_concurrency must be at least 1")
    p = _prepare(budgets, start_s, requests)
    results: list[tuple[float, str, list[float]]] = []
    if max_concurrency is None:
        fit, fit_send = _earliest_fit(p)
        results.append((fit, "earliest_fit", fit_send))
    nd, nd_send = _non_delay(p, max_concurrency)
    results.append((nd, "non_delay", nd_send))
    floor, client, send = min(results, key=lambda r: r[0])
    lower = max(p.bounds.values())
    binding = max(p.bounds, key=lambda k: (p.bounds[k], k == LATENCY))
    return ApiFloor(
        floor_s=floor,
        lower_bound_s=lower,
        binding=binding,
        bounds_s=dict(p.bounds),
        client=client,
        send_times_s=tuple(send) if keep_schedule else (),
    )


def store_floor(items: int, rate_items_per_s: float) -> float:
    """The time an ideal batch writer, measured at `rate_items_per_s` on the same store, needs for `items`."""
    if items < 0:
        raise ValueError("items must not be negative")
    if rate_items_per_s <= 0:
        raise ValueError("rate_items_per_s must be positive")
    return items / rate_items_per_s


def page_arrival_bounds(
    budget: Budget,
    start_s: float,
    costs: Sequence[int],
    chain_latencies_s: Sequence[float] | None = None,
) -> list[float]:
    """Lower bounds, relative to `start_s`, on when the k-th of these pages can be answered (k = 0, 1, ...;
    in the order they are answered): the start of the window in which the units of k + 1 of them (the
    cheapest first) are available, and with `chain_latencies_s` (one cursor chain, in chain order) the sum
    of the first k + 1 latencies. See the module docstring."""
    if any(cost > budget.limit for cost in costs):
        raise ValueError(f"a page costs more than budget {budget.name!r} grants in a window")
    if chain_latencies_s is not None and len(chain_latencies_s) != len(costs):
        raise ValueError("chain_latencies_s needs one latency per page")
    windows = _Windows(budget, start_s)
    w = windows.first
    room = budget.limit - budget.spent_at_start
    bounds: list[float] = []
    chain_s = 0.0
    for k, cost in enumerate(sorted(costs)):
        while cost > room:
            w += 1
            room = budget.limit
        room -= cost
        bound = max(0.0, windows.start(w))
        if chain_latencies_s is not None:
            chain_s += chain_latencies_s[k]
            bound = max(bound, chain_s)
        bounds.append(bound)
    return bounds


def pipeline_floor(
    arrivals_s: Sequence[float], items: int, max_items_per_page: int, rate_items_per_s: float
) -> float:
    """max over k of arrivals_s[k] + (items - k x max_items_per_page) / rate (see the module docstring);
    the store floor when there are no pages."""
    if max_items_per_page <= 0:
        raise ValueError("max_items_per_page must be positive")
    floor_s = store_floor(items, rate_items_per_s)
    for k, arrival in enumerate(sorted(arrivals_s)):
        left = items - k * max_items_per_page
        if left <= 0:
            break
        floor_s = max(floor_s, arrival + left / rate_items_per_s)
    return floor_s


def combined_floor(api_s: float, store_s: float) -> tuple[float, str]:
    """The larger of the two floors and which one bound ("api" on a tie). Pass the pipeline floor as
    `store_s` when it is known: it is the store floor with the pages' arrival taken into account."""
    return (api_s, API) if api_s >= store_s else (store_s, STORE)


class FloorAboveWallError(ValueError):
    """The floor exceeds the wall time: the floor (or its inputs) is wrong."""


def efficiency(floor_s: float, wall_s: float, *, strict: bool = False, tolerance: float = 0.0) -> float:
    """floor / wall, never clamped. Above 1.0 means the floor is wrong: returned as is for the bench to
    assert on, or raised as FloorAboveWallError with `strict` (beyond `tolerance`, e.g. clock jitter)."""
    if wall_s <= 0:
        raise ValueError("wall_s must be positive")
    value = floor_s / wall_s
    if strict and value > 1.0 + tolerance:
        raise FloorAboveWallError(f"floor {floor_s:.6g}s exceeds wall {wall_s:.6g}s (efficiency {value:.4f})")
    return value
