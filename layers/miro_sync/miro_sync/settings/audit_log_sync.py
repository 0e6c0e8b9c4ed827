"""Settings of AuditLogSyncFunction."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, field_validator

from miro_sync.settings import MiroSettings

# Miro keeps audit logs for 90 days; a backfill can never reach further.
MIRO_AUDIT_RETENTION_DAYS = 90


class AuditLogSyncSettings(MiroSettings):
    required_env: ClassVar[tuple[str, ...]] = (
        *MiroSettings.required_env,
        "AUDIT_TABLE",
        "STATE_TABLE",
        "MEMBERS_TABLE",
    )

    audit_table: str = Field(alias="AUDIT_TABLE", min_length=3)
    state_table: str = Field(alias="STATE_TABLE", min_length=3)
    members_table: str = Field(alias="MEMBERS_TABLE", min_length=3)
    # The function's own name, set by Lambda; needed to continue in a new invocation.
    function_name: str | None = Field(default=None, alias="AWS_LAMBDA_FUNCTION_NAME")
    backfill_days: int = Field(default=MIRO_AUDIT_RETENTION_DAYS, alias="AUDIT_BACKFILL_DAYS", ge=1, le=90)
    retention_days: int = Field(default=400, alias="AUDIT_RETENTION_DAYS", ge=1, le=3650)
    # Empty = no forwarding (the template passes "" when EnableAuditForwarding is false).
    event_bus: str | None = Field(default=None, alias="AUDIT_EVENT_BUS")
    # Re-read this much before the watermark on every run, for events Miro makes visible late.
    overlap_minutes: int = Field(default=10, alias="AUDIT_OVERLAP_MINUTES", ge=0, le=24 * 60)
    # Windows the run range is split into; a refused window is halved from here.
    window_hours: int = Field(default=24, alias="AUDIT_WINDOW_HOURS", ge=1, le=24 * 90)
    page_size: int = Field(default=100, alias="AUDIT_PAGE_SIZE", ge=1, le=100)
    # Parallel BatchWriteItem calls, shared by the pages being written (a page of 100 events is 4 of
    # them; up to 3 pages are written at once). 8: 200k events in 91.9 / 92.7 / 95.6 s against
    # 95.2 / 95.7 s with 4 (bench.audit_sync, quiet machine, 2026-12-07): a small gain, near the noise.
    write_workers: int = Field(default=8, alias="AUDIT_WRITE_WORKERS", ge=1, le=16)
    # Windows paged concurrently (each its own cursor chain; stored strictly in order).
    prefetch_windows: int = Field(default=3, alias="AUDIT_PREFETCH_WINDOWS", ge=1, le=16)
    # Stop fetching and hand over to a new invocation when less than this remains.
    min_remaining_ms: int = Field(default=60_000, alias="SYNC_MIN_REMAINING_MS", ge=1_000)
    # Share of the per-minute credit budget left for other users of the token (webhook, CLI).
    rate_reserve_fraction: float = Field(default=0.1, alias="AUDIT_RATE_RESERVE_FRACTION", ge=0.0, lt=1.0)

    @field_validator("audit_table", "state_table", "members_table")
    @classmethod
    def _no_spaces(cls, value: str) -> str:
        if any(ch.isspace() for ch in value):
            raise ValueError("table names contain no whitespace")
        return value
