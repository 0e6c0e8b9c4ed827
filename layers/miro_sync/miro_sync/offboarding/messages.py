"""The offboarding message contract (SQS body, JSON; DESIGN.md "Contracts").

Anything that does not match exactly is refused with a precise reason, never guessed: unknown fields,
an unknown action, both or neither of email/memberId, a malformed email, a notBefore that is not an
ISO-8601 string with an explicit offset (a bare number would be read as Unix seconds: a delete that runs
at once), a dryRun that is not a JSON boolean. `parse_request` turns *any* failure while reading a body
(deep nesting, out-of-range instants, odd types, lone surrogates) into InvalidRequestError, so one
hostile record can only ever be refused on its own.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from miro_sync.offboarding.errors import InvalidRequestError, MissingRequestIdError

Action = Literal["suspend", "delete", "reactivate"]
DESTRUCTIVE_ACTIONS: frozenset[str] = frozenset({"suspend", "delete"})

# email-validator (what pydantic's EmailStr needs) would add two packages to the layer for one check;
# a strict pattern is enough here because the address is only ever compared with Miro's own records.
_DNS_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_EMAIL_PATTERN = rf"^[A-Za-z0-9.!#$%&'*+/=?^_`{{|}}~-]+@{_DNS_LABEL}(?:\.{_DNS_LABEL})+$"
EMAIL_RE = re.compile(_EMAIL_PATTERN)

Email = Annotated[
    str, StringConstraints(strip_whitespace=True, to_lower=True, max_length=254, pattern=_EMAIL_PATTERN)
]
MemberId = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[0-9A-Za-z_-]+$")
]
RequestId = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128, pattern=r"^[\w.:#@-]+$")
]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]

# SQS allows 1 MiB; a real request is a few hundred bytes. Larger bodies are refused unread.
MAX_BODY_CHARS: Final = 16_384
# How far ahead a notBefore may lie (checked by the worker and the CLI, which know the time).
MAX_NOT_BEFORE_AHEAD: Final = timedelta(days=366)
# How far in the past the worker accepts a new request's notBefore: SQS keeps a message 14 days at most,
# so an older instant is a typo (0225 for 2025), not a late delivery.
MAX_NOT_BEFORE_BEHIND: Final = timedelta(days=14)
# How far in the past the CLI accepts a notBefore (clock skew, a command typed a minute ago).
MAX_NOT_BEFORE_BEHIND_CLI: Final = timedelta(minutes=5)
_ISO_WITH_OFFSET = re.compile(
    r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|z|[+-]\d{2}:?\d{2})$", re.ASCII
)


def parse_instant(value: object, field_name: str) -> datetime:
    """An ISO-8601 string with an explicit offset (`Z` or `+01:00`), as one UTC instant. Anything else -
    a number, a date without a time, a naive time, an instant outside datetime's range once moved to UTC
    - is refused with a ValueError that says which."""
    if not isinstance(value, str):
        raise ValueError(
            f"{field_name!r} must be an ISO-8601 string with an offset (e.g. 2025-01-31T18:00:00Z), "
            f"got {type(value).__name__}"
        )
    text = value.strip()
    if not _ISO_WITH_OFFSET.match(text):
        raise ValueError(
            f"{field_name!r} must be an ISO-8601 time with an explicit offset "
            f"(e.g. 2025-01-31T18:00:00Z), got {text[:40]!r}"
        )
    try:
        parsed = datetime.fromisoformat(text.replace("z", "Z"))
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValueError(f"{field_name!r} is not a representable instant: {text[:40]!r}") from None


class OffboardingRequest(BaseModel):
    """One queued action. `requestId` is the idempotency key: derived from the action and the member
    (and notBefore, dryRun) when the sender gave none, so a double submission of the same intent is one
    effect. `miro-sync offboard` always sends an explicit, per-submission id (see `cli_request_id`);
    derived ids are for hand-written messages, which the worker deduplicates by that intent for the
    idempotency window (OFFBOARDING_IDEMPOTENCY_TTL_S) and treats as a new request after it."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    action: Action
    email: Email | None = None
    member_id: MemberId | None = Field(default=None, alias="memberId")
    requested_by: Text = Field(alias="requestedBy")
    reason: Text
    request_id: RequestId | None = Field(default=None, alias="requestId")
    not_before: datetime | None = Field(default=None, alias="notBefore")
    dry_run: bool = Field(default=False, alias="dryRun", strict=True)
    # Precondition set by `report inactive --offboard`: the member has shown no activity after this
    # instant. The worker re-reads the member from Miro just before acting and refuses if they have.
    inactive_since: datetime | None = Field(default=None, alias="inactiveSince")
    # Who takes over: co-owner of every board the leaver owns and, on delete, admin of the teams the
    # leaver is the last admin of. An active internal member with a full licence, never the leaver.
    successor: Email | None = None

    @field_validator("not_before", "inactive_since", mode="before")
    @classmethod
    def _iso_instant(cls, value: object, info: Any) -> object:
        if value is None:
            return None
        if isinstance(value, datetime):  # built in code (CLI, tests), not read from a body
            if value.utcoffset() is None:
                raise ValueError(f"{info.field_name} needs a timezone")
            return value.astimezone(UTC)
        alias = "notBefore" if info.field_name == "not_before" else "inactiveSince"
        # one instant, one form: `Z` and `+01:00` spellings of it are the same request
        return parse_instant(value, alias)

    @model_validator(mode="after")
    def _one_member_key(self) -> OffboardingRequest:
        if (self.email is None) == (self.member_id is None):
            raise ValueError("exactly one of 'email' or 'memberId' is required")
        if self.successor is not None:
            if self.action == "reactivate":
                raise ValueError("'successor' only goes with suspend or delete")
            if self.successor == self.email:
                raise ValueError("'successor' is the leaver: boards cannot be handed over to their owner")
        if self.request_id is None:
            # frozen model: set the derived key once, at validation, so every reader sees the same id
            object.__setattr__(self, "request_id", self.derived_request_id)
        return self

    @property
    def derived_request_id(self) -> str:
        """The id this request's intent gets when the sender names none."""
        return derive_request_id(
            self.action,
            self.member_key,
            self.not_before,
            dry_run=self.dry_run,
            inactive_since=self.inactive_since,
            successor=self.successor,
        )

    @property
    def member_key(self) -> str:
        """What the request names the member by: the email (lower case) or the member id."""
        return self.email if self.email is not None else f"id:{self.member_id}"

    @property
    def key(self) -> str:
        if self.request_id is None:  # the validator sets it: only a model built around it lacks one
            raise MissingRequestIdError("this OffboardingRequest was built without validation")
        return self.request_id

    @property
    def is_destructive(self) -> bool:
        return self.action in DESTRUCTIVE_ACTIONS

    @property
    def has_derived_id(self) -> bool:
        """True when the id is the intent's derived one (or a later generation of it, see
        `next_generation`), whoever wrote it into the message (re-sent bodies carry it explicitly)."""
        base = self.derived_request_id
        key = self.key
        return key == base or (key.startswith(base + ".") and key[len(base) + 1 :].isdigit())

    @property
    def fingerprint(self) -> str:
        """What a request id stands for, to tell a duplicate from a reused id. An explicit id stands for
        the whole normalised request; a derived id for the intent it was derived from, so hand-written
        duplicates with another `reason` or `requestedBy` stay duplicates. The id itself is left out:
        fingerprints are only compared under one id (or generations of one derived id)."""
        content: dict[str, Any] = {
            "action": self.action,
            "email": self.email,
            "memberId": self.member_id,
            "notBefore": self.not_before.isoformat() if self.not_before else None,
            "dryRun": self.dry_run,
        }
        if self.inactive_since is not None:
            content["inactiveSince"] = self.inactive_since.isoformat()
        if self.successor is not None:
            content["successor"] = self.successor
        if not self.has_derived_id:
            content |= {"requestedBy": self.requested_by, "reason": self.reason}
        canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:32]

    def describe(self) -> str:
        """e.g. "delete bob@example.com (notBefore 2025-03-04T10:00:00+00:00)", for refusal reasons."""
        text = f"{self.action} {self.member_key}"
        if self.successor is not None:
            text += f" (successor {self.successor})"
        if self.not_before is not None:
            text += f" (notBefore {self.not_before.isoformat()})"
        return text + (" (dry run)" if self.dry_run else "")

    def next_generation(self) -> OffboardingRequest:
        """The same hand-written intent sent again after its dedupe window: a new request, keyed
        `<derived id>.<n>` so it gets its own record next to the earlier ones."""
        base = self.derived_request_id
        generation = 1 if self.key == base else int(self.key.rsplit(".", 1)[1])
        return self.model_copy(update={"request_id": f"{base}.{generation + 1}"})

    def to_body(self) -> str:
        """The wire form (camelCase, requestId always present) for enqueueing and re-enqueueing."""
        return self.model_dump_json(by_alias=True, exclude_none=True, exclude_defaults=False)


def derive_request_id(
    action: str,
    member_key: str,
    not_before: datetime | None,
    *,
    dry_run: bool = False,
    inactive_since: datetime | None = None,
    successor: str | None = None,
) -> str:
    """Stable id of an intent. notBefore counts as an instant (any offset, same id); a dry run is its
    own intent, so a dry run never answers for the real request that follows it; so is a request with
    another inactivity precondition or another successor."""
    when = not_before.astimezone(UTC).isoformat() if not_before else ""
    material = f"{action}|{member_key}|{when}" + ("|dry-run" if dry_run else "")
    if inactive_since is not None:
        material += f"|inactive-since:{inactive_since.astimezone(UTC).isoformat()}"
    if successor is not None:
        material += f"|successor:{successor}"
    return "req-" + hashlib.sha256(material.encode()).hexdigest()[:32]


def cli_request_id(
    action: str,
    member_key: str,
    not_before: datetime | None,
    *,
    dry_run: bool,
    submission: str,
    successor: str | None = None,
) -> str:
    """The explicit id `miro-sync offboard` gives each request: unique per submission (one command run
    = one `submission`), stable within it, so a retried send of the same run is one request while
    running the command again later (suspend -> reactivate -> suspend) is a new one.
    `submission` is e.g. "20250303T090000Z-1a2b3c4d" (UTC time of the run + a random part)."""
    intent = derive_request_id(action, member_key, not_before, dry_run=dry_run, successor=successor)
    digest = hashlib.sha256(f"{submission}|{intent}".encode()).hexdigest()[:16]
    return f"cli-{submission.split('-', 1)[0]}-{digest}"


def describe_validation_error(error: ValidationError) -> str:
    parts: list[str] = []
    for item in error.errors(include_url=False):
        location = ".".join(str(part) for part in item["loc"]) or "message"
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown field"
        elif item["type"] == "literal_error":
            message = f"must be one of suspend, delete, reactivate (got {item.get('input')!r})"
        elif item["type"] == "string_pattern_mismatch" and location == "email":
            message = f"not a valid email address: {item.get('input')!r}"
        parts.append(f"{location}: {message}")
    return "; ".join(parts)


def parse_request(body: object) -> OffboardingRequest:
    """Parse one SQS body; raises InvalidRequestError with a precise, human-readable reason. (The worker
    also turns anything else a body could cause into that body's own refusal: see handle_message.)"""
    if not isinstance(body, str):
        raise InvalidRequestError(f"the body must be text, got {type(body).__name__}", repr(body)[:1000])
    if len(body) > MAX_BODY_CHARS:
        raise InvalidRequestError(f"the message is {len(body)} characters; at most {MAX_BODY_CHARS}", body)
    try:
        body.encode("utf-8")
    except UnicodeEncodeError as bad_text:
        raise InvalidRequestError(f"the body is not valid UTF-8 text: {bad_text.reason}", body) from None
    try:
        payload: Any = json.loads(body)
    except json.JSONDecodeError as bad_json:
        raise InvalidRequestError(
            f"malformed JSON: {bad_json.msg} at position {bad_json.pos}", body
        ) from None
    except RecursionError:
        raise InvalidRequestError("malformed JSON: nested too deeply", body) from None
    if not isinstance(payload, dict):
        raise InvalidRequestError(f"the message must be a JSON object, got {type(payload).__name__}", body)
    try:
        return OffboardingRequest.model_validate(payload)
    except ValidationError as invalid:
        raise InvalidRequestError(describe_validation_error(invalid), body) from None
