"""The Miro REST scopes each function of the stack needs: one table, shared by `miro-sync doctor` and the
README (tests/unit/cli/test_doctor_scopes.py keeps it in step with the clients' AuthHints).

Derived from what each function calls (`miro_sync.miro.client` AuthHints, Miro's spec per operation):

* MembersSyncFunction: members (`GET /v2/orgs/{org}/members`: organizations:read), teams and team members
  (organizations:teams:read), boards owned (`GET /v2/boards?owner=`: boards:read); SCIM ids (SCIM token).
* AuditLogSyncFunction: `GET /v2/audit/logs` (auditlogs:read).
* BoardWebhookFunction: receives deliveries only; its subscriptions (`miro-sync subscribe`,
  `/v2-experimental/webhooks/...`) need boards:read.
* OffboardingFunction: member lookup (organizations:read), team admins (organizations:teams:read and
  :write), the leaver's boards listed and shared with the successor (boards:read, boards:write), sign-out
  (`POST /v2/sessions/reset_all`: sessions:delete, only with ResetSessions=true); SCIM deactivate/delete.

Every Enterprise endpoint (org, members, teams, audit logs, sessions) also needs the token's user to be a
Company Admin; listing every board needs Content Admin on top.
"""

from __future__ import annotations

from dataclasses import dataclass

ORG_READ = "organizations:read"
TEAMS_READ = "organizations:teams:read"
TEAMS_WRITE = "organizations:teams:write"
BOARDS_READ = "boards:read"
BOARDS_WRITE = "boards:write"
AUDITLOGS_READ = "auditlogs:read"
SESSIONS_DELETE = "sessions:delete"


@dataclass(frozen=True)
class FunctionScopes:
    function: str  # logical id in template.yaml
    short_name: str  # what `miro-sync doctor` prints
    scopes: tuple[str, ...]
    scim: bool  # needs the SCIM token too
    why: str
    # Scopes only needed when a template parameter turns the feature on: scope -> parameter.
    conditional: tuple[tuple[str, str], ...] = ()


FUNCTION_SCOPES: tuple[FunctionScopes, ...] = (
    FunctionScopes(
        "MembersSyncFunction",
        "members sync",
        (ORG_READ, TEAMS_READ, BOARDS_READ),
        scim=True,
        why="members, teams and team members, boards owned; SCIM ids",
    ),
    FunctionScopes(
        "AuditLogSyncFunction",
        "audit log sync",
        (AUDITLOGS_READ,),
        scim=False,
        why="Enterprise audit logs",
    ),
    FunctionScopes(
        "BoardWebhookFunction",
        "board webhook",
        (BOARDS_READ,),
        scim=False,
        why="board subscriptions (`miro-sync subscribe`); only with EnableWebhook=true",
    ),
    FunctionScopes(
        "OffboardingFunction",
        "offboarding",
        (ORG_READ, TEAMS_READ, TEAMS_WRITE, BOARDS_READ, BOARDS_WRITE, SESSIONS_DELETE),
        scim=True,
        why="member lookup, team admins, boards handed over, sign-out; SCIM deactivate/delete",
        conditional=((SESSIONS_DELETE, "ResetSessions"),),
    ),
)


def all_scopes() -> tuple[str, ...]:
    """Every scope the whole stack needs, in a stable order (what to tick when installing the app)."""
    seen: dict[str, None] = {}
    for entry in FUNCTION_SCOPES:
        seen.update(dict.fromkeys(entry.scopes))
    return tuple(seen)


def markdown_table() -> str:
    """The README's table of scopes per function."""
    lines = ["| function | REST token scopes | SCIM token | what for |", "|---|---|---|---|"]
    for entry in FUNCTION_SCOPES:
        scopes = []
        for scope in entry.scopes:
            condition = dict(entry.conditional).get(scope)
            scopes.append(f"`{scope}`" + (f" ({condition}=true)" if condition else ""))
        lines.append(
            f"| {entry.function} | {', '.join(scopes)} | {'yes' if entry.scim else 'no'} | {entry.why} |"
        )
    return "\n".join(lines)
