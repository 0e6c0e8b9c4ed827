"""The cost calculator on synthetic measurements: a small case worked out by hand, the scaling rules, the
schedule parser, and clear errors for missing inputs."""

from __future__ import annotations

import re
from typing import Any

import pytest

from bench.cost import (
    AUDIT_SYNC,
    MEMBERS_SYNC,
    OFFBOARDING,
    WEBHOOK,
    CostInputError,
    Run,
    Stack,
    estimate,
    fit_quantities,
    load_prices,
    load_stack,
    monthly_bill,
    runs_per_month,
    schedule_period_s,
)

MIB = 1024 * 1024

# Round prices, so that every line below is easy to check by hand.
PRICES = {
    "dynamodb_read_request_unit_per_million": 1.0,
    "dynamodb_write_request_unit_per_million": 2.0,
    "dynamodb_storage_gb_month": 0.5,
    "dynamodb_pitr_gb_month": 0.25,
    "dynamodb_ia_write_request_unit_per_million": 2.5,
    "dynamodb_ia_read_request_unit_per_million": 1.25,
    "dynamodb_ia_storage_gb_month": 0.2,
    "lambda_gb_second_arm64": 0.00001,
    "lambda_gb_second_x86_64": 0.00002,
    "lambda_requests_per_million": 1.0,
    "sqs_standard_requests_per_million": 1.0,
    "secrets_manager_secret_month": 0.5,
    "secrets_manager_api_calls_per_10000": 0.1,
    "eventbridge_scheduled_rule_invocation": 0.0,
    "eventbridge_scheduler_invocations_per_million": 1.0,
    "eventbridge_custom_events_per_million": 1.0,
    "cloudwatch_logs_ingestion_gb": 1.0,
    "cloudwatch_logs_storage_gb_month": 0.1,
    "cloudwatch_custom_metric_month": 0.72,  # 0.001 per metric-hour in a 720-hour month
    "cloudwatch_alarm_month": 0.2,
    "xray_traces_recorded_per_million": 10.0,
    "kms_customer_managed_key_month": 1.0,
}
ASSUMPTIONS = {
    "days_per_month": 30.0,
    "audit_events_per_member_per_day": 0.5,
    "first_sync_amortisation_months": 10.0,
    "member_item_bytes": 1024.0,
    "state_bytes_per_member": 0.0,
    "audit_event_bytes": 256.0,
    "log_bytes_per_members_sync_invocation": float(MIB),
    "log_bytes_per_audit_sync_invocation": 0.0,
    "lambda_init_s_per_cold_invocation": 0.5,
    "custom_metrics_per_members_sync_run": 10.0,
    "custom_metrics_per_audit_sync_run": 20.0,
    "custom_metrics_per_offboarding_request": 3.0,
    "offboarding_sweep_duration_s": 2.0,
    "offboarding_sweep_read_units": 4.0,
    "log_bytes_per_offboarding_sweep": 0.0,
    "sqs_event_source_pollers": 2.0,
    "sqs_long_poll_wait_s": 20.0,
    "offboarding_requests_per_member_per_month": 1 / 128,
    "offboarding_request_duration_s": 4.0,
    "offboarding_request_read_units": 8.0,
    "offboarding_request_write_units": 16.0,
    "offboarding_request_sqs_requests": 3.0,
    "log_bytes_per_offboarding_request": 0.0,
    "eventbridge_entries_per_put_events": 10.0,
}
STACK = Stack(
    architecture="arm64",
    memory_mb={MEMBERS_SYNC: 1024, AUDIT_SYNC: 512, OFFBOARDING: 256, WEBHOOK: 256},
    schedules={MEMBERS_SYNC: "rate(1 day)", AUDIT_SYNC: "rate(1 day)", OFFBOARDING: "rate(1 day)"},
    secrets=2,
    alarms=3,
    kms_keys=1,
    scheduled_rules=3,
    audit_retention_days=8,
    audit_backfill_days=5,
    audit_table_infrequent_access=False,
    log_retention_days=30,
    webhook_enabled=False,
    audit_forwarding=False,
)


def usage(read: float, write: float, invocations: int, requests: dict[str, dict[str, int]]) -> dict[str, Any]:
    return {
        "dynamodb": {"read_units": read, "write_units": write, "by_table": {}},
        "requests": requests,
        "lambda": {"invocations": invocations, "duration_s": 0.0, "gb_seconds": 0.0},
    }


def members_run(
    kind: str,
    members: int,
    read: float,
    write: float,
    invocations: int,
    duration_s: float,
    secrets_calls: int,
) -> dict[str, Any]:
    return {
        "members": members,
        "kind": kind,
        "changed_fraction": 0.01,
        "usage": usage(read, write, invocations, {"secretsmanager": {"GetSecretValue": secrets_calls}}),
        "lambda_duration_s_real_windows": duration_s,
    }


def audit_run(kind: str, events: int, read: float, write: float, duration_s: float) -> dict[str, Any]:
    return {
        "events": events,
        "kind": kind,
        "usage": usage(read, write, 1, {"secretsmanager": {"GetSecretValue": 1}}),
        "lambda_duration_s_real_windows": duration_s,
    }


MEMBERS_RESULT = {
    "usage_runs": [
        members_run("first", 1024, read=0, write=3000, invocations=1, duration_s=50, secrets_calls=3),
        members_run("resync", 1024, read=1000, write=100, invocations=2, duration_s=100, secrets_calls=2),
    ]
}
# 1,024 members x 0.5 events a day, one run a day: 512 events per run, the size measured
AUDIT_RESULT = {"usage_runs": [audit_run("incremental", 512, read=10, write=1500, duration_s=10)]}


def test_a_small_stack_costs_what_the_hand_computation_says() -> None:
    lines = {
        # members sync, 30 re-syncs (rate(1 day), 30-day month) at 1 GB
        "re-sync reads: 30 x 1,000 RRU at $1/M": 0.03,
        "re-sync writes: 30 x 100 WRU at $2/M": 0.006,
        "re-sync invocations: 60 at $1/M": 0.00006,
        "re-sync duration: 30 x 100 s x 1 GB at $0.00001": 0.03,
        "re-sync INIT: 60 x 0.5 s x 1 GB": 0.0003,
        "re-sync secrets calls: 60 at $0.1/10k": 0.0006,
        "re-sync logs: 60 x 1 MiB = 60/1024 GB at $1": 0.05859375,
        "re-sync traces: 60 at $10/M": 0.0006,
        # the first sync over 10 months: a tenth of one run
        "first sync writes: 300 WRU": 0.0006,
        "first sync invocations: 0.1": 0.0000001,
        "first sync duration: 5 GB-s": 0.00005,
        "first sync INIT: 0.05 GB-s": 0.0000005,
        "first sync secrets calls: 0.3": 0.000003,
        "first sync logs: 0.1/1024 GB": 0.00009765625,
        "first sync traces: 0.1": 0.000001,
        "members metrics: 10 metrics x 30 of 720 hours x $0.72": 0.3,
        # audit sync: 30 runs of 512 events (the measured run), 0.5 GB
        "audit reads: 300 RRU": 0.0003,
        "audit writes: 45,000 WRU": 0.09,
        "audit invocations: 30": 0.00003,
        "audit duration: 30 x 10 s x 0.5 GB": 0.0015,
        "audit INIT: 30 x 0.5 s x 0.5 GB": 0.000075,
        "audit secrets calls: 30": 0.0003,
        "audit traces: 30": 0.0003,
        "audit metrics: 20 x 30/720 x $0.72": 0.6,
        # offboarding at 0.25 GB: 30 sweeps, idle polling, 1,024/128 = 8 requests
        "sweep reads: 120 RRU": 0.00012,
        "sweep invocations: 30": 0.00003,
        "sweep duration: 30 x 2 s x 0.25 GB": 0.00015,
        "sweep INIT: 30 x 0.5 s x 0.25 GB": 0.0000375,
        "sweep traces: 30": 0.0003,
        "idle polls: 2 pollers x 2,592,000 s / 20 s": 0.2592,
        "request reads: 64 RRU": 0.000064,
        "request writes: 128 WRU": 0.000256,
        "request invocations: 8": 0.000008,
        "request duration: 8 x 4 s x 0.25 GB": 0.00008,
        "request INIT: 8 x 0.5 s x 0.25 GB": 0.00001,
        "request SQS: 24": 0.000024,
        "request traces: 8": 0.00008,
        "offboarding metrics: 3 x 8/720 x $0.72": 0.024,
        # the stack: 1 MiB of members + 1,024 x 0.5 x 8 days x 256 B = 1 MiB of audit events = 2/1024 GB
        "storage: 2/1024 GB at $0.5": 0.0009765625,
        "PITR: 2/1024 GB at $0.25": 0.00048828125,
        "secrets: 2 at $0.5": 1.0,
        "KMS key": 1.0,
        "alarms: 3 at $0.2": 0.6,
        "log storage: 60.1/1024 GB kept 30 of 30 days at $0.1": 0.005869140625,
    }
    expected = 4.011104490625
    assert sum(lines.values()) == pytest.approx(expected)

    result = estimate(MEMBERS_RESULT, AUDIT_RESULT, STACK, PRICES, ASSUMPTIONS, member_counts=(1024,))

    assert result["usd_per_month"] == {"1024": 4.01}
    breakdown = result["breakdown"]["1024"]
    assert sum(breakdown["by_function"].values()) == pytest.approx(expected, abs=1e-3)
    assert breakdown["by_function"]["Stack"] == pytest.approx(2.6073, abs=1e-4)
    assert breakdown["by_service"]["Secrets Manager"] == pytest.approx(1.0009, abs=1e-4)
    bill = monthly_bill(1024, *_runs(), STACK, PRICES, ASSUMPTIONS)
    assert bill.total() == pytest.approx(expected, rel=1e-12)


def test_an_infrequent_access_audit_table_stores_cheaper_and_prices_the_audit_syncs_requests_higher() -> None:
    from dataclasses import replace

    standard = estimate(MEMBERS_RESULT, AUDIT_RESULT, STACK, PRICES, ASSUMPTIONS, member_counts=(1024,))
    ia_stack = replace(STACK, audit_table_infrequent_access=True)
    ia = estimate(MEMBERS_RESULT, AUDIT_RESULT, ia_stack, PRICES, ASSUMPTIONS, member_counts=(1024,))
    # Every request unit of the audit sync at the IA price:
    # WRU $2.5/M instead of $2/M, RRU $1.25/M instead of $1/M; the 1 MiB of audit events at $0.2 instead of
    # $0.5 a GB-month; PITR, the members' storage and the other functions unchanged.
    audit_units = {"WRU": 0.0, "RRU": 0.0}
    for line in standard["breakdown"]["1024"]["lines"]:
        if line["function"] == AUDIT_SYNC and line["unit"] in audit_units:
            audit_units[line["unit"]] += line["quantity"]
    assert audit_units["WRU"] == 45_000
    delta = audit_units["WRU"] * 0.5e-6 + audit_units["RRU"] * 0.25e-6 - (0.5 - 0.2) / 1024
    totals = [sum(result["breakdown"]["1024"]["by_function"].values()) for result in (standard, ia)]
    assert totals[1] - totals[0] == pytest.approx(delta, abs=2e-4)  # the breakdown is rounded to 1e-4
    items = {line["item"] for line in ia["breakdown"]["1024"]["lines"]}
    assert "storage (audit events kept for AuditRetentionDays, Standard-IA table class)" in items


def _runs() -> tuple[dict[str, list[Run]], dict[str, list[Run]]]:
    from bench.cost import measured_runs

    return (
        measured_runs(MEMBERS_RESULT, "members", "members", ("first", "resync")),
        measured_runs(AUDIT_RESULT, "audit", "events", ("first", "incremental")),
    )


def test_more_members_never_cost_less_with_the_real_prices_and_template() -> None:
    prices, assumptions, _ = load_prices()
    stack = load_stack()
    # two sizes per kind, one quantity falling with size (noise): it is read flat, never decreasing
    members = {
        "usage_runs": [
            members_run("resync", 2000, read=2000, write=80, invocations=1, duration_s=14, secrets_calls=3),
            members_run(
                "resync", 20000, read=20000, write=60, invocations=1, duration_s=130, secrets_calls=3
            ),
            members_run("first", 2000, read=0, write=6000, invocations=1, duration_s=15, secrets_calls=3),
            members_run("first", 20000, read=0, write=60000, invocations=2, duration_s=140, secrets_calls=3),
        ]
    }
    audit = {
        "usage_runs": [
            audit_run("incremental", 1000, read=4, write=3000, duration_s=2.0),
            audit_run("incremental", 5000, read=2, write=15000, duration_s=6.0),
            audit_run("first", 5000, read=1, write=15000, duration_s=5.0),
        ]
    }
    counts = (1, 1000, 10_000, 100_000, 250_000, 500_000, 1_000_000)
    result = estimate(members, audit, stack, prices, assumptions, member_counts=counts)
    totals = [result["usd_per_month"][str(count)] for count in counts]
    assert totals == sorted(totals)
    assert totals[0] < totals[-1]
    for service in ("DynamoDB", "Lambda", "CloudWatch"):
        by_service = [result["breakdown"][str(count)]["by_service"][service] for count in counts]
        assert by_service == sorted(by_service), service
    assert result["target_met"] is (result["usd_per_month"]["100000"] <= 5)


def test_scaling_is_a_least_squares_line_proportional_from_one_size_and_flat_when_falling() -> None:
    runs = [
        Run(1000, {"a": 10.0, "b": 5.0}),
        Run(2000, {"a": 30.0, "b": 4.0}),
        Run(3000, {"a": 50.0, "b": 3.0}),
    ]
    fitted = fit_quantities(runs, 5000)
    assert fitted["a"] == pytest.approx(90.0)  # exactly on the line a = 0.02 x - 10
    assert fitted["b"] == pytest.approx(4.0)  # falling: flat at its mean
    assert fit_quantities(runs, 100)["a"] == 0.0  # the line would be negative there
    assert fit_quantities([Run(2000, {"a": 7.0})], 6000)["a"] == pytest.approx(21.0)


@pytest.mark.parametrize(
    ("expression", "seconds", "per_month"),
    [
        ("rate(6 hours)", 21600, 121.76),
        ("rate(1 hour)", 3600, 730.56),
        ("rate(5 minutes)", 300, 8766.72),
        ("rate(1 day)", 86400, 30.44),
    ],
)
def test_the_schedule_parser_reads_rate_expressions(
    expression: str, seconds: float, per_month: float
) -> None:
    assert schedule_period_s(expression) == seconds
    assert runs_per_month(expression, 30.44) == pytest.approx(per_month)


@pytest.mark.parametrize(
    "expression", ["rate(1 hours)", "rate(5 minute)", "rate(0 days)", "cron(0 * * * ? *)"]
)
def test_the_schedule_parser_refuses_what_eventbridge_refuses_or_it_cannot_count(expression: str) -> None:
    with pytest.raises(CostInputError, match=re.escape(expression)):
        schedule_period_s(expression)


def test_a_results_file_without_usage_runs_is_named_with_the_bench_to_rerun() -> None:
    with pytest.raises(
        CostInputError,
        match=r"bench/results/members_sync\.json has no 'usage_runs'.*python -m bench\.members_sync",
    ):
        estimate({"members": 20000}, AUDIT_RESULT, STACK, PRICES, ASSUMPTIONS)


def test_a_run_missing_a_key_is_named_by_file_index_and_key() -> None:
    run = audit_run("incremental", 512, read=1, write=1, duration_s=1)
    del run["lambda_duration_s_real_windows"]
    with pytest.raises(
        CostInputError,
        match=re.escape(
            "bench/results/audit_sync.json usage_runs[0] has no 'lambda_duration_s_real_windows'"
        ),
    ):
        estimate(MEMBERS_RESULT, {"usage_runs": [run]}, STACK, PRICES, ASSUMPTIONS)
    no_resync = {"usage_runs": [MEMBERS_RESULT["usage_runs"][0]]}
    with pytest.raises(CostInputError, match="no run of kind 'resync'"):
        estimate(no_resync, AUDIT_RESULT, STACK, PRICES, ASSUMPTIONS)


def test_every_price_has_its_source_and_date_and_every_assumption_its_reason() -> None:
    prices, assumptions, document = load_prices()
    assert set(prices) == set(PRICES)
    assert set(assumptions) == set(ASSUMPTIONS)
    for name, entry in document["prices"].items():
        assert entry["source"].startswith("https://aws.amazon.com/"), name
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", entry["as_of"]), name
    for name, entry in document["assumptions"].items():
        assert entry["why"].strip(), name


def test_the_template_gives_schedules_memory_and_the_fixed_resources() -> None:
    stack = load_stack()
    assert stack.schedules == {
        MEMBERS_SYNC: "rate(6 hours)",
        AUDIT_SYNC: "rate(1 hour)",
        OFFBOARDING: "rate(5 minutes)",
    }
    assert stack.memory_mb[MEMBERS_SYNC] == 512
    assert stack.architecture == "arm64"
    assert stack.secrets == 2
    assert stack.audit_retention_days == 400
    assert stack.audit_table_infrequent_access
    assert not stack.webhook_enabled
