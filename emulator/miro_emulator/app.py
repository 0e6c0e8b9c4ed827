"""The emulator core: routing, auth, rate limits, faults and stats around the REST/SCIM handlers.

Transport-neutral: `Emulator.handle(request)` returns a Response (or RESET); server.py puts it on a socket,
and unit tests can call it directly."""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import unquote

from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, RequestRedirect, Rule

from miro_emulator import introspection, oauth, rest, scim
from miro_emulator.config import Clock, EmulatorConfig
from miro_emulator.faults import PROFILES, FaultDecision, FaultKind, FaultProfile, decide
from miro_emulator.generator import build_org
from miro_emulator.http import ApiError, Request, Response, ScimError
from miro_emulator.ratelimit import LEVEL_COSTS, SCIM_LIMITS, Verdict, WindowBudget
from miro_emulator.record import RequestLog, RequestRecord, listing_of
from miro_emulator.state import OrgState, StateError
from miro_emulator.webhooks import DeliveryWorker

SCIM_PREFIX: Final = "/api/v1/scim"
INTERNAL_PREFIX: Final = "/_emulator"
RESET: Final = object()  # close the connection without a response

Handler = Callable[["Emulator", Request], Response]
# StateError kinds that are not a 400 (status, error code); the others answer 400 with the kind as code.
_STATE_ERROR_STATUS: Final = {"conflict": (409, "conflict"), "not_found": (404, "notFound")}


# The scope each REST operation needs, as Miro's spec states it per operation ("Required scope" in the
# description; the webhooks spec for the experimental subscriptions). Operations not listed need none:
# token information, the OAuth token endpoint, SCIM (its own token) and /_emulator introspection.
# tests/unit/emulator/test_token_info.py checks this table against the spec and the served routes.
ORG_READ: Final = "organizations:read"
TEAMS_READ: Final = "organizations:teams:read"
TEAMS_WRITE: Final = "organizations:teams:write"
BOARDS_READ: Final = "boards:read"
BOARDS_WRITE: Final = "boards:write"
REQUIRED_SCOPES: Final[dict[str, str]] = {
    "enterprise-get-organization": ORG_READ,
    "enterprise-get-organization-members": ORG_READ,
    "enterprise-get-organization-member": ORG_READ,
    "enterprise-get-teams": TEAMS_READ,
    "enterprise-get-team-members": TEAMS_READ,
    "enterprise-get-team-member": TEAMS_READ,
    "enterprise-invite-team-member": TEAMS_WRITE,
    "enterprise-update-team-member": TEAMS_WRITE,
    "enterprise-delete-team-member": TEAMS_WRITE,
    "enterprise-post-user-sessions-reset": "sessions:delete",
    "get-boards": BOARDS_READ,
    "get-board-members": BOARDS_READ,
    "get-specific-board-member": BOARDS_READ,
    "share-board": BOARDS_WRITE,
    "update-board-member": BOARDS_WRITE,
    "remove-board-member": BOARDS_WRITE,
    "enterprise-get-audit-logs": "auditlogs:read",
    "create-board-subscription": BOARDS_READ,
    "update-board-subscription": BOARDS_READ,
    "get-user-subscriptions": BOARDS_READ,
    "get-subscription-by-id": BOARDS_READ,
    "delete-subscription-by-id": BOARDS_READ,
}


@dataclass(frozen=True)
class Operation:
    operation_id: str
    api: str  # rest | scim | internal | oauth
    handler: Handler
    level: int = 0

    @property
    def scope(self) -> str | None:
        """The REST scope the token needs for this operation (None: no scope check)."""
        return REQUIRED_SCOPES.get(self.operation_id) if self.api == "rest" else None


def _ops() -> list[tuple[str, list[str], Operation]]:
    org = "/v2/orgs/<org_id>"
    hooks = "/v2-experimental/webhooks"
    return [
        # Authenticated by the client credentials in the request, not a bearer token.
        ("/v1/oauth/token", ["POST"], Operation("oauth-token", "oauth", oauth.token)),
        # Any valid REST token, no scope; Miro publishes no rate-limit level for it: level 1.
        ("/v1/oauth-token", ["GET"], Operation("token-info", "rest", oauth.token_info, 1)),
        (org, ["GET"], Operation("enterprise-get-organization", "rest", rest.get_organization, 3)),
        (
            f"{org}/members",
            ["GET"],
            Operation("enterprise-get-organization-members", "rest", rest.get_members, 3),
        ),
        (
            f"{org}/members/<member_id>",
            ["GET"],
            Operation("enterprise-get-organization-member", "rest", rest.get_member, 3),
        ),
        (f"{org}/teams", ["GET"], Operation("enterprise-get-teams", "rest", rest.get_teams, 1)),
        (
            f"{org}/teams/<team_id>/members",
            ["GET"],
            Operation("enterprise-get-team-members", "rest", rest.get_team_members, 2),
        ),
        (
            f"{org}/teams/<team_id>/members",
            ["POST"],
            Operation("enterprise-invite-team-member", "rest", rest.invite_team_member, 2),
        ),
        (
            f"{org}/teams/<team_id>/members/<member_id>",
            ["GET"],
            Operation("enterprise-get-team-member", "rest", rest.get_team_member, 1),
        ),
        (
            f"{org}/teams/<team_id>/members/<member_id>",
            ["PATCH"],
            Operation("enterprise-update-team-member", "rest", rest.update_team_member, 2),
        ),
        (
            f"{org}/teams/<team_id>/members/<member_id>",
            ["DELETE"],
            Operation("enterprise-delete-team-member", "rest", rest.delete_team_member, 1),
        ),
        (
            "/v2/sessions/reset_all",
            ["POST"],
            Operation("enterprise-post-user-sessions-reset", "rest", rest.reset_user_sessions, 3),
        ),
        ("/v2/boards", ["GET"], Operation("get-boards", "rest", rest.get_boards, 1)),
        (
            "/v2/boards/<board_id>/members",
            ["GET"],
            Operation("get-board-members", "rest", rest.get_board_members, 1),
        ),
        ("/v2/boards/<board_id>/members", ["POST"], Operation("share-board", "rest", rest.share_board, 3)),
        (
            "/v2/boards/<board_id>/members/<board_member_id>",
            ["GET"],
            Operation("get-specific-board-member", "rest", rest.get_board_member, 1),
        ),
        (
            "/v2/boards/<board_id>/members/<board_member_id>",
            ["PATCH"],
            Operation("update-board-member", "rest", rest.update_board_member, 2),
        ),
        (
            "/v2/boards/<board_id>/members/<board_member_id>",
            ["DELETE"],
            Operation("remove-board-member", "rest", rest.remove_board_member, 2),
        ),
        ("/v2/audit/logs", ["GET"], Operation("enterprise-get-audit-logs", "rest", rest.get_audit_logs, 2)),
        (
            f"{hooks}/board_subscriptions",
            ["POST"],
            Operation("create-board-subscription", "rest", rest.create_board_subscription, 2),
        ),
        (
            f"{hooks}/board_subscriptions/<subscription_id>",
            ["PATCH"],
            Operation("update-board-subscription", "rest", rest.update_board_subscription, 2),
        ),
        (
            f"{hooks}/subscriptions",
            ["GET"],
            Operation("get-user-subscriptions", "rest", rest.get_user_subscriptions, 4),
        ),
        (
            f"{hooks}/subscriptions/<subscription_id>",
            ["GET"],
            Operation("get-subscription-by-id", "rest", rest.get_subscription, 2),
        ),
        (
            f"{hooks}/subscriptions/<subscription_id>",
            ["DELETE"],
            Operation("delete-subscription-by-id", "rest", rest.delete_subscription, 2),
        ),
        (f"{SCIM_PREFIX}/Users", ["GET"], Operation("listUsers", "scim", scim.list_users)),
        (f"{SCIM_PREFIX}/Users/<id>", ["GET"], Operation("getUser", "scim", scim.get_user)),
        (f"{SCIM_PREFIX}/Users/<id>", ["PATCH"], Operation("patchUser", "scim", scim.patch_user)),
        (f"{SCIM_PREFIX}/Users/<id>", ["DELETE"], Operation("deleteUser", "scim", scim.delete_user)),
        (f"{INTERNAL_PREFIX}/stats", ["GET"], Operation("_stats", "internal", introspection.stats)),
        (
            f"{INTERNAL_PREFIX}/reset-stats",
            ["POST"],
            Operation("_reset_stats", "internal", introspection.reset_stats),
        ),
        (
            f"{INTERNAL_PREFIX}/requests",
            ["GET"],
            Operation("_requests", "internal", introspection.requests_record),
        ),
        (
            f"{INTERNAL_PREFIX}/ratelimits",
            ["GET"],
            Operation("_ratelimits", "internal", introspection.rate_limits),
        ),
        (
            f"{INTERNAL_PREFIX}/state/members",
            ["GET"],
            Operation("_state_members", "internal", introspection.state_members),
        ),
        (
            f"{INTERNAL_PREFIX}/state/boards",
            ["GET"],
            Operation("_state_boards", "internal", introspection.state_boards),
        ),
        (
            f"{INTERNAL_PREFIX}/state/org",
            ["GET"],
            Operation("_state_org", "internal", introspection.state_org),
        ),
        (
            f"{INTERNAL_PREFIX}/deliveries",
            ["GET"],
            Operation("_deliveries", "internal", introspection.deliveries),
        ),
        (f"{INTERNAL_PREFIX}/faults", ["POST"], Operation("_faults", "internal", introspection.set_faults)),
        (
            f"{INTERNAL_PREFIX}/audit-events",
            ["POST"],
            Operation("_add_audit_events", "internal", introspection.add_audit_events),
        ),
        (
            f"{INTERNAL_PREFIX}/boards/<board_id>",
            ["DELETE"],
            Operation("_delete_board", "internal", introspection.delete_board),
        ),
        (
            f"{INTERNAL_PREFIX}/boards/<board_id>/items",
            ["POST"],
            Operation("_create_item", "internal", introspection.create_item),
        ),
        (
            f"{INTERNAL_PREFIX}/boards/<board_id>/items/<item_id>",
            ["PATCH"],
            Operation("_update_item", "internal", introspection.update_item),
        ),
        (
            f"{INTERNAL_PREFIX}/boards/<board_id>/items/<item_id>",
            ["DELETE"],
            Operation("_delete_item", "internal", introspection.delete_item),
        ),
        (
            f"{INTERNAL_PREFIX}/subscriptions/<subscription_id>/lose-access",
            ["POST"],
            Operation("_lose_access", "internal", introspection.lose_access),
        ),
    ]


class Stats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.requests: Counter[str] = Counter()
            # Fault ordinals: like `requests`, minus the requests a running 429 storm answered.
            self.ordinals: Counter[str] = Counter()
            self.statuses: Counter[str] = Counter()
            self.by_operation_status: Counter[str] = Counter()
            self.rate_limited: Counter[str] = Counter()
            self.faults: Counter[str] = Counter()
            self.credits_spent = 0
            self.internal_errors = 0
            self.token_refreshes = 0

    def count_token_refresh(self) -> None:
        with self._lock:
            self.token_refreshes += 1

    def count_request(self, operation_id: str) -> None:
        with self._lock:
            self.requests[operation_id] += 1

    def next_ordinals(self, operation_id: str) -> tuple[int, int]:
        """(this operation's ordinal, all faultable requests' ordinal), both counted from 0."""
        with self._lock:
            ordinal = self.ordinals[operation_id]
            total = sum(self.ordinals.values())
            self.ordinals[operation_id] += 1
            return ordinal, total

    def record(self, operation_id: str, status: int | None, fault: FaultKind, credits: int) -> None:
        with self._lock:
            label = "reset" if status is None else str(status)
            self.statuses[label] += 1
            self.by_operation_status[f"{operation_id} {label}"] += 1
            if status == 429:
                self.rate_limited[operation_id] += 1
            if fault is not FaultKind.NONE:
                self.faults[fault.value] += 1
            self.credits_spent += credits

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": dict(self.requests),
                "totalRequests": sum(self.requests.values()),
                "statuses": dict(self.statuses),
                "byOperationStatus": dict(self.by_operation_status),
                "rateLimited": dict(self.rate_limited),
                "totalRateLimited": sum(self.rate_limited.values()),
                "faultsInjected": dict(self.faults),
                "creditsSpent": self.credits_spent,
                "internalErrors": self.internal_errors,
                "tokenRefreshes": self.token_refreshes,
            }


class Emulator:
    def __init__(
        self,
        config: EmulatorConfig,
        *,
        sleep: Callable[[float], None] = time.sleep,
        state: OrgState | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        if config.faults not in PROFILES:
            raise ValueError(f"unknown fault profile {config.faults!r}; known: {', '.join(PROFILES)}")
        self.config = config
        self.clock = Clock(config.now)
        self.state = state if state is not None else build_org(config, self.clock)
        self.app_id = "3458764599999999999"
        self.fault_profile: FaultProfile = PROFILES[config.faults]
        self._monotonic = monotonic
        self._wall = wall
        self.credits = WindowBudget(config.credits_per_window, config.window_s, monotonic, wall)
        self.scim_budgets = {
            method: WindowBudget(limit, config.scim_window_s, monotonic, wall)
            for method, limit in SCIM_LIMITS.items()
        }
        # Running 429 storms: token -> monotonic time the storm ends.
        self._storms: dict[str, float] = {}
        self._storms_lock = threading.Lock()
        self.stats_counter = Stats()
        self.requests_log = RequestLog()
        self.oauth = oauth.TokenIssuer(config, monotonic)
        self.deliveries = DeliveryWorker(config.callback_timeout_s)
        self.scim_base_for_links = SCIM_PREFIX
        self._sleep = sleep
        self._routes = Map(strict_slashes=False, merge_slashes=False)
        self._operations: dict[str, Operation] = {}
        for index, (rule, methods, operation) in enumerate(_ops()):
            endpoint = f"{operation.operation_id}#{index}"
            self._routes.add(Rule(rule, endpoint=endpoint, methods=methods))
            self._operations[endpoint] = operation
        self._adapter = self._routes.bind("emulator", "/")

    # ---- public helpers ----------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        return self.stats_counter.snapshot()

    def reset_stats(self) -> None:
        self.stats_counter.reset()
        self.requests_log.clear()

    def rate_limits(self, token: str | None = None) -> dict[str, Any]:
        """Each budget's limit, window and phase (when its windows start), and what `token` (default: the
        configured REST/SCIM token) has spent in the current window."""
        budgets = {"rest": (self.credits, token or self.config.token)}
        for method, budget in self.scim_budgets.items():
            budgets[f"scim_{method}"] = (budget, token or self.config.scim_token)
        return {name: budget.describe(key) for name, (budget, key) in budgets.items()}

    def set_fault_profile(self, name: str) -> None:
        self.fault_profile = PROFILES[name]
        with self._storms_lock:
            self._storms.clear()

    def public_base(self, request: Request) -> str:
        host = request.headers.get("host", "127.0.0.1")
        return f"http://{host}"

    def close(self) -> None:
        self.deliveries.stop()

    # ---- dispatch ----------------------------------------------------------------------------
    def handle(self, request: Request) -> Response | object:
        is_scim = request.path.startswith(SCIM_PREFIX)
        try:
            endpoint, arguments = self._adapter.match(unquote(request.path), request.method)
        except MethodNotAllowed as refused:
            allowed = ", ".join(sorted(refused.valid_methods or []))
            error = self._error(
                is_scim, 405, "methodNotAllowed", f"Method {request.method} is not allowed here"
            )
            error.headers["Allow"] = allowed
            return error
        except (NotFound, RequestRedirect):
            return self._error(is_scim, 404, "notFound", "Not found")
        operation = self._operations[endpoint]
        request.path_params = {key: str(value) for key, value in arguments.items()}
        if operation.api == "internal":
            return self._run(operation, request)
        if operation.api == "oauth":
            # Counted like an API call; no bearer token, rate limit or injected fault.
            self.stats_counter.count_request(operation.operation_id)
            response = self._run(operation, request)
            self.stats_counter.record(operation.operation_id, response.status, FaultKind.NONE, 0)
            return response
        return self._handle_api(operation, request)

    def _handle_api(self, operation: Operation, request: Request) -> Response | object:
        listing, position = listing_of(request.path, request.query)
        record = RequestRecord(operation.operation_id, request.method, listing, position, self._wall())
        self.requests_log.add(record)
        answer = self._answer_api(operation, request, record)
        record.answered_s = self._wall()
        if isinstance(answer, Response):
            record.status = answer.status
            body = answer.body
            if answer.status < 300 and isinstance(body, dict) and isinstance(body.get("cursor"), str):
                record.next_position = body["cursor"]
        return answer

    def _answer_api(self, operation: Operation, request: Request, record: RequestRecord) -> Response | object:
        self.stats_counter.count_request(operation.operation_id)
        is_scim = operation.api == "scim"
        token = self._limit_key(request.bearer_token() or "")
        storm_left = self._storm_left(token)
        if storm_left is not None:
            # A running storm answers before anything else and draws no fault ordinal.
            if self.config.latency_ms > 0:
                self._sleep(self.config.latency_ms / 1000)
            self.stats_counter.record(operation.operation_id, 429, FaultKind.TOO_MANY_REQUESTS, 0)
            return self._storm_response(is_scim, request, storm_left)
        ordinal, total = self.stats_counter.next_ordinals(operation.operation_id)
        decision = decide(self.fault_profile, self.config.seed, operation.operation_id, ordinal, total)
        delay_ms = self.config.latency_ms + decision.latency_ms
        if delay_ms > 0:
            self._sleep(delay_ms / 1000)
        if decision.kind is FaultKind.RESET:
            self.stats_counter.record(operation.operation_id, None, decision.kind, 0)
            return RESET
        faulted = self._fault_response(decision, is_scim, request)
        if faulted is not None:
            self.stats_counter.record(operation.operation_id, faulted.status, decision.kind, 0)
            return faulted
        denied = self._authenticate(request, is_scim) or self._authorize(operation)
        if denied is not None:
            self.stats_counter.record(operation.operation_id, denied.status, FaultKind.NONE, 0)
            return denied
        if is_scim:
            method = request.method if request.method in self.scim_budgets else "GET"
            verdict = self.scim_budgets[method].charge(token, 1)
            cost = 0
            budget, units = f"scim_{method}", 1
        else:
            cost = LEVEL_COSTS[operation.level]
            verdict = self.credits.charge(token, cost)
            budget, units = "rest", cost
        if verdict.allowed:
            record.budget, record.cost, record.charged_s = budget, units, self._wall()
        if not verdict.allowed:
            response = self._too_many(is_scim, verdict)
            self.stats_counter.record(operation.operation_id, 429, FaultKind.NONE, 0)
            return response
        response = self._run(operation, request)
        response.headers.update(verdict.headers())
        if decision.kind is FaultKind.TRUNCATED and response.status < 300 and response.body is not None:
            encoded = response.encoded()
            response.raw = encoded[: max(1, len(encoded) // 2)]
        else:
            decision = FaultDecision(FaultKind.NONE) if decision.kind is FaultKind.TRUNCATED else decision
        self.stats_counter.record(operation.operation_id, response.status, decision.kind, cost)
        return response

    def _run(self, operation: Operation, request: Request) -> Response:
        try:
            return operation.handler(self, request)
        except ApiError as error:
            return error.response()
        except StateError as refused:
            status, code = _STATE_ERROR_STATUS.get(refused.kind, (400, refused.kind))
            return self._error(operation.api == "scim", status, code, refused.message)
        except Exception as error:
            with self.stats_counter._lock:
                self.stats_counter.internal_errors += 1
            return self._error(
                operation.api == "scim", 500, "internalError", f"Internal error: {type(error).__name__}"
            )

    def _limit_key(self, token: str) -> str:
        """Rate limits and storms are per user and app: every REST access token issued by a refresh
        shares the first token's budget."""
        return self.config.token if self.oauth.is_issued(token) else token

    def _authenticate(self, request: Request, is_scim: bool) -> Response | None:
        token = request.bearer_token()
        if token is None:
            return self._error(is_scim, 401, "tokenNotProvided", "No access token was provided")
        if is_scim:
            if token == self.config.scim_token:
                return None
            if self.oauth.is_issued(token):
                return self._error(
                    is_scim, 403, "insufficientPermissions", "This token cannot be used for this API"
                )
            return self._error(is_scim, 401, "tokenNotFound", "The access token is invalid")
        check = self.oauth.check(token)
        if check == "valid":
            return None
        if check == "expired":
            return self._error(is_scim, 401, "tokenExpired", "The access token has expired")
        if token == self.config.scim_token:
            return self._error(
                is_scim, 403, "insufficientPermissions", "This token cannot be used for this API"
            )
        return self._error(is_scim, 401, "tokenNotFound", "The access token is invalid")

    def _authorize(self, operation: Operation) -> Response | None:
        """403 when the (authenticated) REST token lacks the operation's scope, before any credits."""
        scope = operation.scope
        if scope is None or scope in self.config.scopes:
            return None
        return self._error(False, 403, "insufficientPermissions", f"Missing scope {scope}")

    def _fault_response(self, decision: FaultDecision, is_scim: bool, request: Request) -> Response | None:
        if decision.kind is FaultKind.SERVER_ERROR:
            if decision.status == 500:
                return self._error(is_scim, 500, "internalError", "Unexpected error")
            reason = {502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}[decision.status]
            # Load balancers answer these, not the API: HTML, not JSON.
            page = f"<html><body><h1>{decision.status} {reason}</h1></body></html>".encode()
            return Response(decision.status, content_type="text/html", raw=page)
        if decision.kind is FaultKind.TOO_MANY_REQUESTS:
            duration = self.fault_profile.storm_duration_s(
                self.config.scim_window_s if is_scim else self.config.window_s
            )
            with self._storms_lock:
                self._storms[self._limit_key(request.bearer_token() or "")] = self._monotonic() + duration
            return self._storm_response(is_scim, request, duration)
        if decision.kind is FaultKind.EXPIRED_TOKEN:
            return self._error(is_scim, 401, "tokenExpired", "The access token has expired")
        return None

    def _storm_left(self, token: str) -> float | None:
        """Seconds left of this token's running 429 storm; None when there is none."""
        with self._storms_lock:
            end = self._storms.get(token)
            if end is None:
                return None
            left = end - self._monotonic()
            if left <= 0:
                del self._storms[token]
                return None
            return left

    def _storm_response(self, is_scim: bool, request: Request, left_s: float) -> Response:
        budget = self.scim_budgets.get(request.method, self.scim_budgets["GET"]) if is_scim else self.credits
        # Reset and Retry-After both round up, so a client that waits for either is past the storm.
        reset = math.ceil(self._wall() + left_s)
        response = self._too_many(is_scim, Verdict(False, budget.limit, 0, reset))
        response.headers["Retry-After"] = str(max(1, math.ceil(left_s)))
        return response

    def _too_many(self, is_scim: bool, verdict: Verdict) -> Response:
        response = self._error(is_scim, 429, "tooManyRequests", "Too many requests")
        response.headers.update(verdict.headers())
        return response

    @staticmethod
    def _error(is_scim: bool, status: int, code: str, message: str) -> Response:
        if is_scim:
            return ScimError(status, message).response()
        return ApiError(status, code, message).response()
