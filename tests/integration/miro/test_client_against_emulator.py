"""The Miro clients over real HTTP (127.0.0.1) against the project's Miro emulator, incl. fault profiles."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from miro_sync.miro import (
    MiroAuthError,
    MiroNotFound,
    MiroRestClient,
    MiroScimClient,
)
from miro_sync.miro.http import RateLimitPacer

emulator = pytest.importorskip("miro_emulator")
if not hasattr(emulator, "start_emulator"):  # the emulator is being written in parallel
    pytest.skip("miro_emulator.start_emulator is not available yet", allow_module_level=True)

EmulatorConfig = emulator.EmulatorConfig
start_emulator = emulator.start_emulator

pytestmark = pytest.mark.integration

# A fixed "now" makes the generated org identical across emulator starts, so listings compare exactly.
FIXED_NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
REFERENCE_ORG: dict[str, Any] = {"members": 200, "seed": 1, "now": FIXED_NOW}


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    # A private pool per test: the module-level shared pool is for Lambda containers.
    with httpx.Client(timeout=httpx.Timeout(10.0, connect=2.0)) as client:
        yield client


def rest_client(emu: Any, http: httpx.Client, **kwargs: Any) -> MiroRestClient:
    options: dict[str, Any] = {"max_attempts": 6, "rate_limit_jitter": 0.0}
    options.update(kwargs)
    return MiroRestClient(emu.base_url, emu.token, emu.org_id, http=http, **options)


def scim_client(emu: Any, http: httpx.Client, **kwargs: Any) -> MiroScimClient:
    return MiroScimClient(emu.scim_url, emu.scim_token, http=http, rate_limit_jitter=0.0, **kwargs)


def all_members(client: MiroRestClient, limit: int = 100) -> list[dict[str, Any]]:
    return [m.model_dump(by_alias=True) for page in client.iter_member_pages(limit=limit) for m in page.data]


@pytest.fixture(scope="module")
def clean_listing() -> list[dict[str, Any]]:
    """The reference listing of the seed-1 org, fetched without faults."""
    with (
        start_emulator(EmulatorConfig(**REFERENCE_ORG), port=0) as emu,
        httpx.Client() as http,
    ):
        return all_members(rest_client(emu, http), limit=100)


# --- happy path -----------------------------------------------------------------------------------


def test_members_listing_is_complete_and_consistent(clean_listing: list[dict[str, Any]]) -> None:
    with (
        start_emulator(EmulatorConfig(**REFERENCE_ORG), port=0) as emu,
        httpx.Client() as http,
    ):
        client = rest_client(emu, http)
        small_pages = all_members(client, limit=37)
        organization = client.get_organization()
        sample = [m["email"] for m in clean_listing[:12]]
        by_email = client.find_members_by_email([*sample, "nobody@nowhere.invalid"])
        first = client.get_member(clean_listing[0]["id"])
    ids = [m["id"] for m in clean_listing]
    assert len(ids) == 200
    assert len(set(ids)) == 200
    assert small_pages == clean_listing
    assert organization.id == emu.org_id
    assert sorted(m.email for m in by_email) == sorted(sample)
    assert first.model_dump(by_alias=True) == clean_listing[0]
    assert client.stats.http_429 == 0


def test_teams_boards_and_audit_pages(http: httpx.Client) -> None:
    with start_emulator(EmulatorConfig(members=200, seed=1), port=0) as emu:
        client = rest_client(emu, http)
        teams = [team for page in client.iter_team_pages(limit=5) for team in page.data]
        team_members = [
            tm for page in client.iter_team_member_pages(teams[0].id, limit=7) for tm in page.data
        ]
        boards = [board for page in client.iter_board_pages(limit=20) for board in page.data]
        owner = next(board.owner.id for board in boards if board.owner is not None)
        owned = [board for page in client.iter_board_pages(owner=owner, limit=3) for board in page.data]
        now = datetime.now(UTC)
        events = [
            event
            for page in client.iter_audit_pages(now - timedelta(days=89), now, limit=50)
            for event in page.data
        ]
    assert teams
    assert len({team.id for team in teams}) == len(teams)
    assert team_members
    assert all(tm.team_id in (None, teams[0].id) for tm in team_members)
    assert len({board.id for board in boards}) == len(boards)
    assert owned
    assert all(board.owner is not None and board.owner.id == owner for board in owned)
    assert events
    # Audit pages carry raw events: the sync validates each one, so one bad event cannot sink a page.
    created = [datetime.fromisoformat(e["createdAt"].replace("Z", "+00:00")) for e in events]
    assert created == sorted(created)
    assert len({e["id"] for e in events}) == len(events)


@contextmanager
def challenge_echo_server() -> Iterator[str]:
    """A loopback webhook receiver answering Miro's verification challenge; stops when the block ends."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            reply = json.dumps({"challenge": body.get("challenge")} if "challenge" in body else {}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/board-events/secret"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_board_subscription_lifecycle(http: httpx.Client) -> None:
    with (
        start_emulator(EmulatorConfig(members=50, seed=2), port=0) as emu,
        challenge_echo_server() as callback,
    ):
        client = rest_client(emu, http)
        board = next(iter(next(client.iter_board_pages(limit=1)).data))
        created = client.create_board_subscription(board.id, callback)
        assert created.status == "enabled"
        assert created.data is not None
        assert created.data.board_id == board.id
        assert client.get_board_subscription(created.id).callback_url == callback
        assert client.update_board_subscription(created.id, status="disabled").status == "disabled"
        assert created.id in {s.id for s in client.iter_subscriptions()}
        client.delete_board_subscription(created.id)
        with pytest.raises(MiroNotFound):
            client.get_board_subscription(created.id)


def test_scim_listing_lookup_suspend_and_delete(http: httpx.Client) -> None:
    with start_emulator(EmulatorConfig(members=120, seed=3), port=0) as emu:
        rest = rest_client(emu, http)
        scim = scim_client(emu, http)
        members = {m["email"].casefold(): m for m in all_members(rest)}
        users = list(scim.iter_users(count=25))
        assert users
        assert len({u.id for u in users}) == len(users)
        assert {u.user_name.casefold() for u in users} <= set(members)
        # Guests and external users are invisible to SCIM.
        hidden = [
            m
            for m in members.values()
            if m["role"] in ("organization_team_guest_user", "organization_external_user")
        ]
        if hidden:
            assert scim.find_user_by_username(hidden[0]["email"]) is None

        target = next(u for u in users if u.active)
        found = scim.find_user_by_username(target.user_name)
        assert found is not None
        assert found.id == target.id
        assert scim.set_active(target.id, False).active is False
        assert scim.get_user(target.id).active is False
        assert rest.get_member(members[target.user_name.casefold()]["id"]).active is False

        scim.delete_user(target.id)
        with pytest.raises(MiroNotFound):
            scim.get_user(target.id)


# --- pacing and fault profiles --------------------------------------------------------------------


def test_pacer_keeps_a_tight_budget_free_of_429s(http: httpx.Client) -> None:
    # 2,000 credits per 1 s window; a members page costs 500: bursting 6 pages would hit a 429.
    config = EmulatorConfig(members=60, seed=4, credits_per_window=2000, window_s=1.0)
    with start_emulator(config, port=0) as emu:
        client = rest_client(emu, http, pacer=RateLimitPacer(reserve_fraction=0.1, burst_fraction=0.5))
        members = all_members(client, limit=10)
    assert len(members) == 60
    assert client.stats.http_429 == 0
    assert client.stats.paced_seconds > 0


def served_stats(emu: Any, http: httpx.Client) -> dict[str, Any]:
    stats: dict[str, Any] = http.get(f"{emu.base_url}/_emulator/stats").json()
    return stats


@pytest.mark.parametrize("faults", ["flaky", "truncated"])
def test_faulty_transport_still_yields_the_exact_listing(
    faults: str, clean_listing: list[dict[str, Any]], http: httpx.Client
) -> None:
    with start_emulator(EmulatorConfig(**REFERENCE_ORG, faults=faults), port=0) as emu:
        client = rest_client(emu, http, max_attempts=8)
        listing = all_members(client, limit=5)
        injected = sum(served_stats(emu, http)["faultsInjected"].values())
    assert listing == clean_listing
    assert injected > 0
    # Every injected 5xx/reset/truncated body cost exactly one retry, nothing was silently accepted.
    assert client.stats.retries == injected


def test_429_storm_is_ridden_out(clean_listing: list[dict[str, Any]], http: httpx.Client) -> None:
    # Emulated storms end when their (short) window does and say so in Retry-After/X-RateLimit-Reset:
    # a client with its default retry budget that waits as told meets exactly one 429 per storm.
    with start_emulator(EmulatorConfig(**REFERENCE_ORG, faults="429-storm", window_s=0.2), port=0) as emu:
        client = MiroRestClient(emu.base_url, emu.token, emu.org_id, http=http)
        listing = all_members(client, limit=25)
        served = served_stats(emu, http)
    assert listing == clean_listing
    assert client.stats.http_429 > 0
    assert client.stats.http_429 == served["totalRateLimited"]
    assert client.stats.http_429 == served["faultsInjected"]["too_many_requests"]
    assert client.stats.retries == client.stats.http_429


def test_expired_token_fails_fast_with_auth_error(http: httpx.Client) -> None:
    with start_emulator(EmulatorConfig(members=200, seed=1, faults="expired-token"), port=0) as emu:
        client = rest_client(emu, http)
        with pytest.raises(MiroAuthError) as caught:
            all_members(client, limit=1)
    assert caught.value.status == 401
    assert emu.token not in str(caught.value)
    # It stopped at the first 401: no retry storm against a dead token.
    assert client.stats.retries == 0
