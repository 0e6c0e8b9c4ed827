"""The reports, end to end: MembersSyncFunction syncs an emulated org into the local stack, then
`miro-sync report` reads the tables; its numbers must match the emulator's truth."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from miro_emulator import EmulatorConfig, RunningEmulator, start_emulator
from miro_sync.reports.prices import default_prices
from miro_sync_cli.local.stack import LocalStack
from miro_sync_cli.report_cmd import app
from tests.fixtures.sync import sync_members

pytestmark = pytest.mark.integration

NOT_ACTIONABLE = {"organization_external_user", "organization_team_guest_user"}
runner = CliRunner()


@pytest.fixture
def emulator() -> Iterator[RunningEmulator]:
    with start_emulator(EmulatorConfig(members=240, seed=11), port=0) as running:
        yield running


@pytest.fixture
def synced(local_stack: LocalStack, emulator: RunningEmulator) -> LocalStack:
    return sync_members(local_stack, emulator)


def truly_inactive(emulator: RunningEmulator, cutoff: datetime) -> dict[str, dict[str, Any]]:
    """Who is an idle paid seat by the emulator's own records, at the report's cutoff."""
    prices = default_prices()
    cutoff_ms = int(cutoff.timestamp() * 1000)
    idle = {}
    for m in emulator.state.all_members:
        if m.deleted or not m.active or not prices.is_paid(m.license):
            continue
        # Miro renders lastActivityAt to the second; the sync stores what Miro says.
        seen_ms = None if m.last_activity_ms is None else m.last_activity_ms // 1000 * 1000
        if seen_ms is None or seen_ms < cutoff_ms:
            idle[m.id] = {"license": m.license, "role": m.role, "email": m.email.lower()}
    return idle


def run(stack: LocalStack, *args: str) -> Any:
    result = runner.invoke(app, list(args), env=stack.env)
    assert result.exit_code == 0, result.output
    return result


def test_inactive_report_matches_the_emulators_truth(synced: LocalStack, emulator: RunningEmulator) -> None:
    report = json.loads(run(synced, "inactive", "--days", "90", "--format", "json").stdout)

    cutoff = datetime.fromisoformat(report["cutoff"].replace("Z", "+00:00"))
    truth = truly_inactive(emulator, cutoff)
    billable = {k: v for k, v in truth.items() if v["role"] not in NOT_ACTIONABLE}
    external = {k: v for k, v in truth.items() if v["role"] in NOT_ACTIONABLE}
    assert billable, "the emulated org should have idle paid seats"
    assert {seat["memberId"] for seat in report["seats"]} == set(billable)
    assert {seat["memberId"] for seat in report["external"]} == set(external)
    prices = default_prices()
    expected_cost = sum((prices.price(v["license"]) for v in billable.values()), Decimal("0"))
    assert Decimal(str(report["totals"]["reclaimableMonthly"])) == expected_cost
    assert report["totals"]["inactiveSeats"] == len(billable)
    paid_active = [
        m for m in emulator.state.all_members if not m.deleted and m.active and prices.is_paid(m.license)
    ]
    assert report["totals"]["paidSeats"] == len(paid_active)
    never = {m.id for m in emulator.state.all_members if m.last_activity_ms is None}
    for seat in report["seats"]:
        assert (seat["lastSeenSource"] == "never") == (seat["memberId"] in never)


class Figures(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.figures: dict[str, str] = {}
        self.emails: set[str] = set()
        self._open: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self._open = values.get("data-figure")
        if values.get("data-email"):
            self.emails.add(values["data-email"] or "")

    def handle_data(self, data: str) -> None:
        if self._open:
            self.figures[self._open] = data
            self._open = None


def test_html_report_holds_the_true_figures(
    synced: LocalStack, emulator: RunningEmulator, tmp_path: Path
) -> None:
    target = tmp_path / "report.html"
    run(synced, "inactive", "--days", "60", "--format", "html", "--output", str(target))
    again = json.loads(run(synced, "inactive", "--days", "60", "--format", "json").stdout)

    page = Figures()
    page.feed(target.read_text(encoding="utf-8"))
    truth = truly_inactive(emulator, datetime.fromisoformat(again["cutoff"].replace("Z", "+00:00")))
    billable = {k: v for k, v in truth.items() if v["role"] not in NOT_ACTIONABLE}
    cost = sum((default_prices().price(v["license"]) for v in billable.values()), Decimal("0"))
    assert page.figures["inactive-seats"] == str(len(billable))
    assert page.figures["reclaimable-monthly"] == f"${cost:,.2f}"
    assert page.emails == {v["email"] for v in truth.values()}


def test_license_report_counts_seats_by_license_and_status(
    synced: LocalStack, emulator: RunningEmulator
) -> None:
    report = json.loads(run(synced, "licenses", "--format", "json").stdout)

    expected: dict[str, dict[str, int]] = {}
    for m in emulator.state.all_members:
        row = expected.setdefault(m.license, {"active": 0, "suspended": 0})
        row["active" if m.active else "suspended"] += 1
    observed = {
        row["license"]: {"active": row["active"], "suspended": row["suspended"]} for row in report["licenses"]
    }
    assert observed == expected
    assert report["totals"]["members"] == len(emulator.state.all_members)
    assert len(report["history"]) == 1  # one complete sync, one usage snapshot
    assert report["history"][0]["members"] == len(emulator.state.all_members)


def _sent(stack: LocalStack) -> list[dict[str, Any]]:
    sqs = stack.client("sqs")
    bodies = []
    while True:
        received = sqs.receive_message(QueueUrl=stack.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        messages = received.get("Messages", [])
        if not messages:
            break
        bodies.extend(json.loads(message["Body"]) for message in messages)
    return bodies


OFFBOARD_180 = ["inactive", "--days", "180", "--format", "json", "--output", "/dev/null"]


def test_offboard_suspend_plans_then_enqueues_the_selection(
    synced: LocalStack, emulator: RunningEmulator
) -> None:
    planned = runner.invoke(app, ["inactive", "--days", "180", "--offboard", "suspend"], env=synced.env)
    assert planned.exit_code == 1, planned.output
    assert "Nothing enqueued" in planned.output

    enqueued = runner.invoke(
        app,
        [*OFFBOARD_180, "--offboard", "suspend", "--dry-run", "--yes", "--queue-url", synced.queue_url],
        env=synced.env,
    )
    assert enqueued.exit_code == 0, enqueued.output
    report = json.loads(run(synced, "inactive", "--days", "180", "--format", "json").stdout)
    bodies = _sent(synced)
    assert bodies, "an org of 240 members has seats idle for 180 days"
    # Only seats idle for the whole window: not those whose licence was assigned inside it, nor those
    # first seen (by this first sync) inside it without any activity on record.
    cutoff = datetime.fromisoformat(report["cutoff"].replace("Z", "+00:00"))
    assigned = {m.id: m.license_assigned_ms for m in emulator.state.all_members}
    expected = sorted(
        seat["email"]
        for seat in report["seats"]
        if seat["lastSeenSource"] != "never" and assigned[seat["memberId"]] < cutoff.timestamp() * 1000
    )
    assert expected, "the emulated org has long-idle seats"
    assert len(expected) < len(report["seats"]), "and seats that are only new"
    assert sorted(body["email"] for body in bodies) == expected
    assert "left out" in enqueued.output
    assert all(body["action"] == "suspend" and body["dryRun"] is True for body in bodies)
    # each request carries the report's cutoff for the worker to re-check against Miro
    [shown] = re.findall(r"carries inactiveSince (\S+):", enqueued.output)
    assert {body["inactiveSince"] for body in bodies} == {
        datetime.fromisoformat(shown).astimezone(UTC).isoformat().replace("+00:00", "Z")
    }


def _age_the_last_sync(stack: LocalStack, hours: float) -> None:
    """Make the members sync's checkpoint say its last complete run ended `hours` ago."""
    dynamodb = stack.client("dynamodb")
    key = {"pk": {"S": "sync#members"}, "sk": {"S": "checkpoint"}}
    table = stack.tables["StateTable"]
    item = dynamodb.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]
    state = json.loads(item["state"]["S"])
    ended = datetime.now(UTC) - timedelta(hours=hours)
    state["lastCompleteAt"] = ended.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    dynamodb.update_item(
        TableName=table,
        Key=key,
        UpdateExpression="SET #s = :s",
        ExpressionAttributeNames={"#s": "state"},
        ExpressionAttributeValues={":s": {"S": json.dumps(state, sort_keys=True)}},
    )


def test_offboard_refuses_to_act_on_a_stale_members_sync(synced: LocalStack) -> None:
    _age_the_last_sync(synced, hours=13)  # the default allows twice rate(6 hours)
    offboard = [*OFFBOARD_180, "--offboard", "suspend", "--yes", "--queue-url", synced.queue_url]

    refused = runner.invoke(app, offboard, env=synced.env)

    assert refused.exit_code == 2, refused.output
    assert "more than --max-sync-age" in " ".join(refused.output.split())
    assert _sent(synced) == []
    # a deployment with a slower schedule says so
    accepted = runner.invoke(app, [*offboard, "--max-sync-age", "26"], env=synced.env)
    assert accepted.exit_code == 0, accepted.output
    assert _sent(synced)


def test_offboard_needs_the_state_table_to_check_the_sync(synced: LocalStack) -> None:
    env = {**synced.env, "STATE_TABLE": ""}
    refused = runner.invoke(
        app, [*OFFBOARD_180, "--offboard", "suspend", "--yes", "--queue-url", synced.queue_url], env=env
    )

    assert refused.exit_code == 2, refused.output
    assert "needs the state table" in " ".join(refused.output.split())
    assert _sent(synced) == []


def unsynced_env(stack: LocalStack) -> dict[str, str]:
    # LocalStack.env needs a Miro connection (template parameter OrgId); the report needs none.
    return {
        **stack.servers.endpoint_environment(),
        "MEMBERS_TABLE": stack.tables["MembersTable"],
        "STATE_TABLE": stack.tables["StateTable"],
    }


def test_empty_tables_say_no_sync_has_run(local_stack: LocalStack) -> None:
    result = runner.invoke(app, ["inactive"], env=unsynced_env(local_stack))

    assert result.exit_code == 2
    assert "no sync has run yet" in " ".join(result.output.split())


def test_a_missing_table_is_named(local_stack: LocalStack) -> None:
    result = runner.invoke(
        app, ["licenses", "--members-table", "no-such-table"], env=unsynced_env(local_stack)
    )

    assert result.exit_code == 2
    assert "'no-such-table' does not exist" in result.output
