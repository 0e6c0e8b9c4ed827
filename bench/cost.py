"""bench.cost: what the stack costs per month for 10,000, 100,000 and 500,000 members (pure arithmetic).

Inputs: the usage the syncs were measured with (`usage_runs` in bench/results/members_sync.json and
audit_sync.json, each run's AWS usage recorded by bench/_usage.py), template.yaml (schedules, memory,
architecture, secrets, alarms, retention) and bench/prices.json (public on-demand prices, us-east-1,
and every assumption, each with its reason). Output: bench/results/cost.json and a table on stderr.

A run in members_sync.json: {"members": N, "kind": "first"|"resync", "changed_fraction": f, "usage":
<UsageRecorder.snapshot()>, "lambda_duration_s_real_windows": s}; in audit_sync.json: {"events": E,
"kind": "first"|"incremental", "usage": ..., "lambda_duration_s_real_windows": s}, where E is the number
of events that run synced (for an incremental run: the new events, not the size of the org's history).
The duration is that of all the run's invocations at Miro's real 60 s windows (the benches compress them).

The model, per month at N members:
* members sync: runs per month (MembersSyncSchedule) x the usage of one re-sync at N members, plus one
  first sync spread over `first_sync_amortisation_months`;
* audit sync: runs per month (AuditLogSyncSchedule) x the usage of one incremental run over
  N x `audit_events_per_member_per_day` x the days between runs, plus the first run's backfill
  (AuditBackfillDays of events) spread the same way;
  usage at a size that was not measured comes from a least-squares line per quantity over the measured
  sizes (members, or the events a run synced): one measured size scales proportionally, a falling line
  is taken as flat (its mean) and a line is never read below zero, so more members never cost less;
* offboarding: the notBefore sweep (its schedule in the template), the SQS event source's idle long
  polling and `offboarding_requests_per_member_per_month` requests, all from assumptions (no bench
  measures them yet);
* the stack: DynamoDB storage and PITR (members, state, audit events kept for AuditRetentionDays, at
  steady state), the secrets, the alarms, the alarm topic's KMS key, CloudWatch Logs and custom metrics
  (Powertools EMF, billed per metric for the hours it is published), X-Ray traces (Tracing: Active);
* the board webhook is off by default (EnableWebhook) and costs nothing here; neither does audit
  forwarding (EnableAuditForwarding). The free tier is ignored: an upper bound for a fresh account.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench._common import PROJECT_ROOT, RESULTS_DIR, write_result

NAME = "cost"
MEMBER_COUNTS = (10_000, 100_000, 500_000)
TARGET_MEMBERS = 100_000
TARGET_USD_PER_MONTH = 5.0
PRICES_PATH = Path(__file__).resolve().parent / "prices.json"
TEMPLATE_PATH = PROJECT_ROOT / "template.yaml"
GIB = 1024**3
STACK = "Stack"  # costs of the stack as a whole (storage, secrets, alarms, key), not of one function

MEMBERS_SYNC = "MembersSyncFunction"
AUDIT_SYNC = "AuditLogSyncFunction"
OFFBOARDING = "OffboardingFunction"
WEBHOOK = "BoardWebhookFunction"

_RATE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


class CostInputError(Exception):
    """An input is missing or malformed; the message names the file and the key."""


# --- schedules -------------------------------------------------------------------------------------


def schedule_period_s(expression: str) -> float:
    """Seconds between runs of an EventBridge `rate(...)` expression."""
    match = _RATE.match(expression.strip())
    if match is None:
        raise CostInputError(
            f"schedule {expression!r}: only rate(N minute|minutes|hour|hours|day|days) is understood"
        )
    value, unit = int(match.group(1)), match.group(2)
    if value <= 0:
        raise CostInputError(f"schedule {expression!r}: the rate must be positive")
    if (value == 1) != (not unit.endswith("s")):
        raise CostInputError(
            f"schedule {expression!r}: EventBridge wants '1 {unit.rstrip('s')}', 'N {unit}s'"
        )
    return float(value * _UNIT_SECONDS[unit.rstrip("s")])


def runs_per_month(expression: str, days_per_month: float) -> float:
    return days_per_month * 86400 / schedule_period_s(expression)


# --- inputs --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stack:
    """What the template decides, with its default parameters."""

    architecture: str
    memory_mb: Mapping[str, int]
    schedules: Mapping[str, str]  # function -> rate expression (the offboarding one is the sweep)
    secrets: int
    alarms: int
    kms_keys: int
    scheduled_rules: int
    audit_retention_days: int
    audit_backfill_days: int
    audit_table_infrequent_access: bool  # AuditTable's TableClass is STANDARD_INFREQUENT_ACCESS
    log_retention_days: int
    webhook_enabled: bool
    audit_forwarding: bool


@dataclass(frozen=True)
class Run:
    """One measured run: its size (members, or audit events it synced) and its usage per quantity."""

    size: float
    quantities: Mapping[str, float]


def _require(mapping: Mapping[str, Any], key: str, where: str) -> Any:
    if not isinstance(mapping, Mapping) or key not in mapping:
        raise CostInputError(f"{where} has no {key!r}")
    return mapping[key]


def usage_quantities(run: Mapping[str, Any], where: str) -> dict[str, float]:
    """A run's usage as flat quantities: dynamodb.read_units, requests.sqs.SendMessage, lambda.*."""
    usage = _require(run, "usage", where)
    dynamodb = _require(usage, "dynamodb", f"{where}['usage']")
    requests = _require(usage, "requests", f"{where}['usage']")
    lambda_usage = _require(usage, "lambda", f"{where}['usage']")
    quantities = {
        "dynamodb.read_units": float(_require(dynamodb, "read_units", f"{where}['usage']['dynamodb']")),
        "dynamodb.write_units": float(_require(dynamodb, "write_units", f"{where}['usage']['dynamodb']")),
        # a run is at least one invocation, also when the bench did not record invocations
        "lambda.invocations": max(
            1.0, float(_require(lambda_usage, "invocations", f"{where}['usage']['lambda']"))
        ),
        # the duration at Miro's real 60 s windows: the bench compresses them
        "lambda.duration_s": float(_require(run, "lambda_duration_s_real_windows", where)),
    }
    for service, operations in requests.items():
        for operation, count in operations.items():
            quantities[f"requests.{service}.{operation}"] = float(count)
    return quantities


def measured_runs(
    result: Mapping[str, Any], source: str, size_key: str, kinds: Sequence[str]
) -> dict[str, list[Run]]:
    """The `usage_runs` of one results file, by kind."""
    if not isinstance(result, Mapping) or "usage_runs" not in result:
        bench = Path(source).stem
        raise CostInputError(
            f"{source} has no 'usage_runs' (the AWS usage per run that bench.{bench} records with"
            f" bench/_usage.py): re-run python -m bench.{bench}"
        )
    runs = result["usage_runs"]
    if not isinstance(runs, list) or not runs:
        raise CostInputError(f"{source} 'usage_runs' is empty: the bench recorded no usage")
    by_kind: dict[str, list[Run]] = {kind: [] for kind in kinds}
    for index, run in enumerate(runs):
        where = f"{source} usage_runs[{index}]"
        kind = _require(run, "kind", where)
        if kind not in by_kind:
            raise CostInputError(f"{where} has kind {kind!r}; expected one of {', '.join(kinds)}")
        by_kind[kind].append(Run(float(_require(run, size_key, where)), usage_quantities(run, where)))
    return by_kind


def read_result(path: Path) -> dict[str, Any]:
    try:
        result: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        raise CostInputError(f"{path} does not exist: run python -m bench.{path.stem} first") from None
    except json.JSONDecodeError as error:
        raise CostInputError(f"{path} is not JSON: {error}") from None
    return result


def load_prices(path: Path = PRICES_PATH) -> tuple[dict[str, float], dict[str, float], dict[str, Any]]:
    """(prices in USD, assumption values, the whole document) from prices.json."""
    document: dict[str, Any] = json.loads(path.read_text())
    prices = {
        name: float(_require(entry, "usd", f"{path} prices.{name}"))
        for name, entry in document["prices"].items()
    }
    assumptions = {
        name: float(_require(entry, "value", f"{path} assumptions.{name}"))
        for name, entry in document["assumptions"].items()
    }
    return prices, assumptions, document


def load_stack(path: Path = TEMPLATE_PATH) -> Stack:
    """The template's functions, schedules and fixed-cost resources, with default parameters."""
    from miro_sync_cli.local.template import Template

    template = Template.load(path)
    functions = template.functions()
    schedules: dict[str, str] = {}
    rules = 0
    for logical_id in functions:
        resource = template.resources[logical_id]
        if not template.condition_holds(resource.get("Condition")):
            continue
        for event in resource.get("Properties", {}).get("Events", {}).values():
            if event.get("Type") == "Schedule":  # SAM: an EventBridge rule on the default bus
                schedules[logical_id] = str(template.resolve(event["Properties"]["Schedule"]))
                rules += 1
    architectures = template.document.get("Globals", {}).get("Function", {}).get("Architectures", ["x86_64"])
    return Stack(
        architecture=str(architectures[0]),
        memory_mb={logical_id: spec.memory_mb for logical_id, spec in functions.items()},
        schedules=schedules,
        secrets=len(template.resources_of_type("AWS::SecretsManager::Secret")),
        alarms=len(template.resources_of_type("AWS::CloudWatch::Alarm")),
        kms_keys=len(template.resources_of_type("AWS::KMS::Key")),
        scheduled_rules=rules,
        audit_retention_days=int(template.parameter_value("AuditRetentionDays")),
        audit_backfill_days=int(template.parameter_value("AuditBackfillDays")),
        audit_table_infrequent_access=template.resources["AuditTable"]["Properties"].get("TableClass")
        == "STANDARD_INFREQUENT_ACCESS",
        log_retention_days=int(template.parameter_value("LogRetentionDays")),
        webhook_enabled=template.condition_holds("EnableWebhook"),
        audit_forwarding=template.condition_holds("ForwardAuditEvents"),
    )


# --- scaling measured runs -----------------------------------------------------------------------


def fit_quantities(runs: Sequence[Run], size: float) -> dict[str, float]:
    """Each quantity at `size`, from a least-squares line over the runs' sizes (see the module doc)."""
    if not runs:
        raise CostInputError("no measured run to scale from")
    names = sorted({name for run in runs for name in run.quantities})
    xs = [run.size for run in runs]
    mean_x = sum(xs) / len(xs)
    spread = sum((x - mean_x) ** 2 for x in xs)
    fitted: dict[str, float] = {}
    for name in names:
        ys = [run.quantities.get(name, 0.0) for run in runs]
        mean_y = sum(ys) / len(ys)
        if spread == 0:  # one measured size: proportional
            fitted[name] = mean_y * size / mean_x if mean_x > 0 else mean_y
            continue
        slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread
        if slope <= 0:
            fitted[name] = mean_y
        else:
            fitted[name] = max(0.0, mean_y + slope * (size - mean_x))
    return fitted


# --- the bill --------------------------------------------------------------------------------------


@dataclass
class Bill:
    lines: list[dict[str, Any]] = field(default_factory=list)

    def add(
        self, function: str, service: str, item: str, quantity: float, unit: str, unit_usd: float
    ) -> None:
        self.lines.append(
            {
                "function": function,
                "service": service,
                "item": item,
                "quantity": quantity,
                "unit": unit,
                "unit_usd": unit_usd,
                "usd": quantity * unit_usd,
            }
        )

    def total(self) -> float:
        return sum(line["usd"] for line in self.lines)

    def by(self, key: str) -> dict[str, float]:
        sums: defaultdict[str, float] = defaultdict(float)
        for line in self.lines:
            sums[line[key]] += line["usd"]
        return {name: round(usd, 4) for name, usd in sorted(sums.items(), key=lambda pair: -pair[1])}


def _lambda_gb_second(prices: Mapping[str, float], architecture: str) -> float:
    return prices["lambda_gb_second_arm64" if architecture == "arm64" else "lambda_gb_second_x86_64"]


@dataclass
class _Month:
    """Puts one month of usage on the bill at the stack's prices."""

    bill: Bill
    stack: Stack
    prices: Mapping[str, float]
    assumptions: Mapping[str, float]

    def usage(
        self, function: str, label: str, per_run: Mapping[str, float], runs: float, log_bytes: float
    ) -> None:
        """`runs` times the usage of one run of `function` (log_bytes: logged per invocation)."""
        price = self.prices
        invocations = per_run.get("lambda.invocations", 1.0) * runs
        gb = self.stack.memory_mb[function] / 1024
        gb_second = _lambda_gb_second(price, self.stack.architecture)
        init_s = self.assumptions["lambda_init_s_per_cold_invocation"]
        events = (
            per_run.get("requests.events.PutEvents", 0.0)
            * self.assumptions["eventbridge_entries_per_put_events"]
        )
        per_million = 1e-6
        # The audit sync writes mostly into AuditTable: with Standard-IA all its request units are priced
        # at IA rates (an upper bound: its few state and member writes go to Standard tables).
        ia = function == AUDIT_SYNC and self.stack.audit_table_infrequent_access
        class_note = " (Standard-IA prices)" if ia else ""
        read_price = price[
            "dynamodb_ia_read_request_unit_per_million" if ia else "dynamodb_read_request_unit_per_million"
        ]
        write_price = price[
            "dynamodb_ia_write_request_unit_per_million" if ia else "dynamodb_write_request_unit_per_million"
        ]
        lines = [
            ("DynamoDB", f"read request units{class_note}", per_run.get("dynamodb.read_units", 0.0) * runs,
             "RRU", read_price * per_million),
            ("DynamoDB", f"write request units{class_note}", per_run.get("dynamodb.write_units", 0.0) * runs,
             "WRU", write_price * per_million),
            ("Lambda", "requests", invocations, "invocation",
             price["lambda_requests_per_million"] * per_million),
            ("Lambda", "duration", per_run.get("lambda.duration_s", 0.0) * runs * gb, "GB-s", gb_second),
            ("Lambda", "INIT of a cold container", invocations * init_s * gb, "GB-s", gb_second),
            ("Secrets Manager", "API calls", _requests_of(per_run, "secretsmanager") * runs, "call",
             price["secrets_manager_api_calls_per_10000"] / 1e4),
            ("SQS", "requests", _requests_of(per_run, "sqs") * runs, "request",
             price["sqs_standard_requests_per_million"] * per_million),
            ("EventBridge", "custom events", events * runs, "event",
             price["eventbridge_custom_events_per_million"] * per_million),
            ("CloudWatch", "log ingestion", invocations * log_bytes / GIB, "GB",
             price["cloudwatch_logs_ingestion_gb"]),
            ("X-Ray", "traces", invocations, "trace",
             price["xray_traces_recorded_per_million"] * per_million),
        ]  # fmt: skip
        for service, item, quantity, unit, unit_usd in lines:
            self.bill.add(function, service, f"{item} ({label})", quantity, unit, unit_usd)

    def metrics(self, function: str, metrics: float, hours_with_data: float) -> None:
        # Custom metrics are billed per metric, prorated by the hours in which the metric is published.
        hours = self.assumptions["days_per_month"] * 24
        metric_months = metrics * min(hours_with_data, hours) / hours
        price = self.prices["cloudwatch_custom_metric_month"]
        self.bill.add(
            function, "CloudWatch", "custom metrics (Powertools EMF)", metric_months, "metric-month", price
        )


def _requests_of(per_run: Mapping[str, float], service: str) -> float:
    return sum(value for name, value in per_run.items() if name.startswith(f"requests.{service}."))


def monthly_bill(
    members: int,
    members_runs: Mapping[str, Sequence[Run]],
    audit_runs: Mapping[str, Sequence[Run]],
    stack: Stack,
    prices: Mapping[str, float],
    assumptions: Mapping[str, float],
) -> Bill:
    days = assumptions["days_per_month"]
    amortised = 1 / assumptions["first_sync_amortisation_months"]
    month = _Month(Bill(), stack, prices, assumptions)

    # members sync
    runs = runs_per_month(stack.schedules[MEMBERS_SYNC], days)
    log_bytes = assumptions["log_bytes_per_members_sync_invocation"]
    month.usage(MEMBERS_SYNC, "re-syncs", fit_quantities(members_runs["resync"], members), runs, log_bytes)
    if members_runs.get("first"):
        first = fit_quantities(members_runs["first"], members)
        month.usage(MEMBERS_SYNC, "first sync, amortised", first, amortised, log_bytes)
    month.metrics(MEMBERS_SYNC, assumptions["custom_metrics_per_members_sync_run"], runs)

    # audit log sync
    rate = assumptions["audit_events_per_member_per_day"]
    runs = runs_per_month(stack.schedules[AUDIT_SYNC], days)
    log_bytes = assumptions["log_bytes_per_audit_sync_invocation"]
    incremental = fit_quantities(audit_runs["incremental"], members * rate * days / runs)
    month.usage(AUDIT_SYNC, "incremental runs", incremental, runs, log_bytes)
    if audit_runs.get("first"):
        first = fit_quantities(audit_runs["first"], members * rate * stack.audit_backfill_days)
        month.usage(AUDIT_SYNC, "first run's backfill, amortised", first, amortised, log_bytes)
    month.metrics(AUDIT_SYNC, assumptions["custom_metrics_per_audit_sync_run"], runs)

    # offboarding: the notBefore sweep, the queue's idle polling, the requests themselves
    sweep = {
        "lambda.invocations": 1.0,
        "lambda.duration_s": assumptions["offboarding_sweep_duration_s"],
        "dynamodb.read_units": assumptions["offboarding_sweep_read_units"],
    }
    sweeps = runs_per_month(stack.schedules[OFFBOARDING], days)
    month.usage(
        OFFBOARDING, "notBefore sweeps", sweep, sweeps, assumptions["log_bytes_per_offboarding_sweep"]
    )
    receives = assumptions["sqs_event_source_pollers"] * days * 86400 / assumptions["sqs_long_poll_wait_s"]
    month.bill.add(
        OFFBOARDING,
        "SQS",
        "idle long polls of the event source mapping",
        receives,
        "request",
        prices["sqs_standard_requests_per_million"] / 1e6,
    )
    request = {
        "lambda.invocations": 1.0,
        "lambda.duration_s": assumptions["offboarding_request_duration_s"],
        "dynamodb.read_units": assumptions["offboarding_request_read_units"],
        "dynamodb.write_units": assumptions["offboarding_request_write_units"],
        "requests.sqs.all": assumptions["offboarding_request_sqs_requests"],
    }
    requests = members * assumptions["offboarding_requests_per_member_per_month"]
    month.usage(
        OFFBOARDING,
        "offboarding requests",
        request,
        requests,
        assumptions["log_bytes_per_offboarding_request"],
    )
    month.metrics(OFFBOARDING, assumptions["custom_metrics_per_offboarding_request"], requests)

    # board webhook: not deployed with the default parameters (EnableWebhook); when deployed its cost
    # follows board activity, which no bench measures
    month.bill.add(
        WEBHOOK,
        "Lambda",
        "deliveries (EnableWebhook is false by default: not deployed)",
        0.0,
        "delivery",
        0.0,
    )

    # the stack as a whole
    stored_events = members * rate * stack.audit_retention_days
    members_gb = members * (assumptions["member_item_bytes"] + assumptions["state_bytes_per_member"]) / GIB
    audit_gb = stored_events * assumptions["audit_event_bytes"] / GIB
    stored_gb = members_gb + audit_gb
    audit_storage_price = prices[
        "dynamodb_ia_storage_gb_month" if stack.audit_table_infrequent_access else "dynamodb_storage_gb_month"
    ]
    rule_runs = sum(runs_per_month(expression, days) for expression in stack.schedules.values())
    ingested_gb = sum(
        line["quantity"] for line in month.bill.lines if line["item"].startswith("log ingestion")
    )
    kept_gb = ingested_gb * min(1.0, stack.log_retention_days / days)
    lines = [
        ("DynamoDB", "storage (members, state)", members_gb, "GB-month", prices["dynamodb_storage_gb_month"]),
        ("DynamoDB", "storage (audit events kept for AuditRetentionDays"
         + (", Standard-IA table class)" if stack.audit_table_infrequent_access else ")"),
         audit_gb, "GB-month", audit_storage_price),
        ("DynamoDB", "point-in-time recovery of that storage", stored_gb, "GB-month",
         prices["dynamodb_pitr_gb_month"]),
        ("Secrets Manager", "secrets", stack.secrets, "secret-month", prices["secrets_manager_secret_month"]),
        ("KMS", "customer managed key of the alarm topic", stack.kms_keys, "key-month",
         prices["kms_customer_managed_key_month"]),
        ("CloudWatch", "alarms (standard resolution)", stack.alarms, "alarm-month",
         prices["cloudwatch_alarm_month"]),
        ("EventBridge", "scheduled rule invocations (default bus)", rule_runs, "invocation",
         prices["eventbridge_scheduled_rule_invocation"]),
        ("CloudWatch", "log storage (LogRetentionDays of logs)", kept_gb, "GB-month",
         prices["cloudwatch_logs_storage_gb_month"]),
    ]  # fmt: skip
    for service, item, quantity, unit, unit_usd in lines:
        month.bill.add(STACK, service, item, quantity, unit, unit_usd)
    return month.bill


def _round_cents(usd: float) -> float:
    return math.floor(usd * 100 + 0.5) / 100


def estimate(
    members_result: Mapping[str, Any],
    audit_result: Mapping[str, Any],
    stack: Stack,
    prices: Mapping[str, float],
    assumptions: Mapping[str, float],
    member_counts: Sequence[int] = MEMBER_COUNTS,
) -> dict[str, Any]:
    """The whole result: dollars per month per member count, breakdowns and the assumptions used."""
    members_runs = measured_runs(
        members_result, "bench/results/members_sync.json", "members", ("first", "resync")
    )
    audit_runs = measured_runs(
        audit_result, "bench/results/audit_sync.json", "events", ("first", "incremental")
    )
    if not members_runs["resync"]:
        raise CostInputError("members_sync.json usage_runs has no run of kind 'resync'")
    if not audit_runs["incremental"]:
        raise CostInputError("audit_sync.json usage_runs has no run of kind 'incremental'")
    bills = {
        count: monthly_bill(count, members_runs, audit_runs, stack, prices, assumptions)
        for count in member_counts
    }
    usd = {str(count): _round_cents(bill.total()) for count, bill in bills.items()}
    result: dict[str, Any] = {
        "usd_per_month": usd,
        "breakdown": {
            str(count): {
                "by_service": bill.by("service"),
                "by_function": bill.by("function"),
                "lines": [
                    {**line, "quantity": round(line["quantity"], 6), "usd": round(line["usd"], 4)}
                    for line in sorted(bill.lines, key=lambda line: -line["usd"])
                    if line["usd"] > 0 or line["unit_usd"] == 0
                ],
            }
            for count, bill in bills.items()
        },
        "assumptions": {
            **assumptions,
            "members_sync_runs_per_month": runs_per_month(
                stack.schedules[MEMBERS_SYNC], assumptions["days_per_month"]
            ),
            "audit_sync_runs_per_month": runs_per_month(
                stack.schedules[AUDIT_SYNC], assumptions["days_per_month"]
            ),
            "offboarding_sweeps_per_month": runs_per_month(
                stack.schedules[OFFBOARDING], assumptions["days_per_month"]
            ),
            "schedules": dict(stack.schedules),
            "memory_mb": dict(stack.memory_mb),
            "architecture": stack.architecture,
            "secrets": stack.secrets,
            "alarms": stack.alarms,
            "kms_keys": stack.kms_keys,
            "audit_retention_days": stack.audit_retention_days,
            "audit_backfill_days": stack.audit_backfill_days,
            "log_retention_days": stack.log_retention_days,
            "webhook_enabled": stack.webhook_enabled,
            "audit_forwarding": stack.audit_forwarding,
            "free_tier": "ignored: an upper bound for a fresh account",
            "scaling": "least-squares line per quantity over the measured sizes; one size: proportional; "
            "a falling line: flat at its mean; never below zero",
            "members_sync_measured": [
                {"kind": kind, "members": run.size} for kind, runs in members_runs.items() for run in runs
            ],
            "audit_sync_measured": [
                {"kind": kind, "events": run.size} for kind, runs in audit_runs.items() for run in runs
            ],
        },
    }
    if TARGET_MEMBERS in bills:
        bump = dict(
            assumptions, audit_events_per_member_per_day=assumptions["audit_events_per_member_per_day"] + 0.1
        )
        bumped = monthly_bill(TARGET_MEMBERS, members_runs, audit_runs, stack, prices, bump).total()
        result["target"] = {"members": TARGET_MEMBERS, "usd_per_month_at_most": TARGET_USD_PER_MONTH}
        result["target_met"] = usd[str(TARGET_MEMBERS)] <= TARGET_USD_PER_MONTH
        result["sensitivity"] = {
            "usd_per_month_per_0.1_more_audit_events_per_member_per_day_at_100000": round(
                bumped - bills[TARGET_MEMBERS].total(), 4
            )
        }
    return result


def _table(result: Mapping[str, Any]) -> str:
    counts = list(result["usd_per_month"])
    services = sorted(
        {service for count in counts for service in result["breakdown"][count]["by_service"]},
        key=lambda service: -result["breakdown"][counts[-1]]["by_service"].get(service, 0.0),
    )
    width = 18
    rows = [f"{'USD per month':<{width}}" + "".join(f"{int(count):>12,}" for count in counts)]
    for service in services:
        cells = "".join(
            f"{result['breakdown'][count]['by_service'].get(service, 0.0):>12.2f}" for count in counts
        )
        rows.append(f"{service:<{width}}{cells}")
    rows.append(
        f"{'total':<{width}}" + "".join(f"{result['usd_per_month'][count]:>12.2f}" for count in counts)
    )
    if "target_met" in result:
        verdict = "met" if result["target_met"] else "NOT met"
        rows.append(f"target <= {TARGET_USD_PER_MONTH:.2f} USD at {TARGET_MEMBERS:,} members: {verdict}")
    largest = result["breakdown"][str(TARGET_MEMBERS)]["lines"][:6] if str(TARGET_MEMBERS) in counts else []
    for line in largest:
        rows.append(f"  {line['usd']:>8.2f}  {line['function']}: {line['service']} {line['item']}")
    return "\n".join(rows)


def main() -> None:
    try:
        prices, assumptions, document = load_prices()
        stack = load_stack()
        result = estimate(
            read_result(RESULTS_DIR / "members_sync.json"),
            read_result(RESULTS_DIR / "audit_sync.json"),
            stack,
            prices,
            assumptions,
        )
    except CostInputError as error:
        print(f"bench.cost: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    result["prices"] = document["prices"]
    result["assumption_reasons"] = {name: entry["why"] for name, entry in document["assumptions"].items()}
    result["free_tier"] = document["free_tier"]
    print(_table(result), file=sys.stderr)
    write_result(NAME, result)


if __name__ == "__main__":
    main()
