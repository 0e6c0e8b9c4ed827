"""Token information and scopes over real HTTP: `GET /v1/oauth-token` answers the spec's body for the
token user, needs a valid REST token, and a token without a scope gets Miro's 403 on the calls needing it."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from miro_emulator import RunningEmulator
from miro_emulator.config import ALL_SCOPES
from tests.fixtures.emulator import MiroSpec
from tests.integration.emulator.conftest_helpers import rest

pytestmark = pytest.mark.integration


def test_token_info_over_http_matches_the_spec(emulator: RunningEmulator, miro_spec: MiroSpec) -> None:
    with rest(emulator) as client:
        response = client.get("/v1/oauth-token")
    assert response.status_code == 200
    body = response.json()
    miro_spec.validate("token-info", 200, body)
    user = emulator.emulator.state.token_user()
    assert body["user"]["id"] == user.id
    assert body["createdBy"]["id"] == user.id
    assert body["organization"]["id"] == emulator.org_id
    assert body["team"]["id"] in emulator.emulator.state.teams_by_id
    assert body["scopes"] == list(ALL_SCOPES)
    assert "X-RateLimit-Remaining" in response.headers


def test_token_info_refuses_a_missing_or_wrong_token(emulator: RunningEmulator) -> None:
    with httpx.Client(base_url=emulator.base_url, timeout=10) as client:
        assert client.get("/v1/oauth-token").status_code == 401
    with rest(emulator, "not-the-token") as client:
        refused = client.get("/v1/oauth-token")
    assert refused.status_code == 401
    assert refused.json()["code"] == "tokenNotFound"
    with rest(emulator, emulator.scim_token) as client:
        assert client.get("/v1/oauth-token").status_code == 403


# One call per scope, as the stack makes it: (scope, method, path, operation id when the spec documents
# its 403 body; the board operations document none).
CALLS = [
    ("organizations:read", "GET", "/v2/orgs/{org}/members", "enterprise-get-organization-members"),
    ("organizations:teams:read", "GET", "/v2/orgs/{org}/teams", "enterprise-get-teams"),
    (
        "organizations:teams:write",
        "DELETE",
        "/v2/orgs/{org}/teams/1/members/1",
        "enterprise-delete-team-member",
    ),
    ("boards:read", "GET", "/v2/boards", None),
    ("boards:write", "POST", "/v2/boards/1/members", None),
    ("auditlogs:read", "GET", "/v2/audit/logs", "enterprise-get-audit-logs"),
    ("sessions:delete", "POST", "/v2/sessions/reset_all?email=a@b.c", "enterprise-post-user-sessions-reset"),
]


@pytest.mark.parametrize(("scope", "method", "path", "operation_id"), CALLS, ids=[c[0] for c in CALLS])
def test_a_missing_scope_answers_403_naming_it(
    emulator_factory: Callable[..., RunningEmulator],
    miro_spec: MiroSpec,
    scope: str,
    method: str,
    path: str,
    operation_id: str | None,
) -> None:
    running = emulator_factory(scopes=[other for other in ALL_SCOPES if other != scope])
    with rest(running) as client:
        refused = client.request(method, path.format(org=running.org_id))
        info = client.get("/v1/oauth-token").json()
    assert refused.status_code == 403
    assert refused.json()["code"] == "insufficientPermissions"
    assert refused.json()["message"] == f"Missing scope {scope}"
    if operation_id is not None:
        miro_spec.validate(operation_id, 403, refused.json())
    assert scope not in info["scopes"]
    assert len(info["scopes"]) == len(ALL_SCOPES) - 1


def test_other_scopes_keep_working_without_auditlogs_read(
    emulator_factory: Callable[..., RunningEmulator],
) -> None:
    running = emulator_factory(scopes=["organizations:read", "boards:read"])
    with rest(running) as client:
        assert client.get(f"/v2/orgs/{running.org_id}").status_code == 200
        assert client.get("/v2/boards", params={"limit": 1}).status_code == 200
        assert client.get("/v2/audit/logs").status_code == 403
        assert client.get(f"/v2/orgs/{running.org_id}/teams").status_code == 403
