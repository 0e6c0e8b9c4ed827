"""template.yaml as the local runner reads it (cli/miro_sync_cli/local): the hardening of the deployed
template must not break `miro-sync demo` / `invoke`, which run it against an http emulator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from miro_sync_cli.local.stack import LocalStack
from miro_sync_cli.local.template import Template

TEMPLATE_PATH = Path(__file__).resolve().parents[2] / "template.yaml"
EMULATOR = {"MiroApiUrl": "http://127.0.0.1:8900", "MiroScimUrl": "http://127.0.0.1:8900/scim"}


@pytest.fixture
def template() -> Template:
    loaded = Template.load(TEMPLATE_PATH, parameter_overrides={"OrgId": "3458764500000000001", **EMULATOR})
    # every resource gets a stand-in name, as LocalStack._name_everything_else does after provisioning
    for logical_id in loaded.resources:
        loaded.physical_ids.setdefault(logical_id, f"local-{logical_id}")
    return loaded


@pytest.mark.parametrize(
    "function_id", ["MembersSyncFunction", "AuditLogSyncFunction", "OffboardingFunction"]
)
def test_local_runner_points_functions_at_an_http_emulator(template: Template, function_id: str) -> None:
    # The deployed template only takes https:// URLs (AllowedPattern); the local runner resolves the
    # parameters itself (connect_miro sets them as overrides) and never applies AllowedPattern.
    environment = template.resolved_environment(template.function(function_id))
    assert environment["MIRO_API_URL"] == EMULATOR["MiroApiUrl"]
    assert environment["MIRO_SCIM_URL"] == EMULATOR["MiroScimUrl"]


def test_local_offboarding_copies_refused_messages_to_the_refused_queue(template: Template) -> None:
    environment = template.resolved_environment(template.function("OffboardingFunction"))
    assert environment["OFFBOARDING_DLQ_URL"] == "local-OffboardingRefusedQueue"
    assert environment["OFFBOARDING_QUEUE_URL"] == "local-OffboardingQueue"


def test_local_stack_dlq_url_is_where_the_worker_copies_refused_messages() -> None:
    # LocalStack.dlq_url (read by the integration tests for refused copies) is the first queue without
    # a RedrivePolicy in provisioning order (dead-letter queues first, then template order).
    stack: Any = LocalStack(servers=None, template_path=TEMPLATE_PATH)  # type: ignore[arg-type]
    queues = stack.template.resources_of_type("AWS::SQS::Queue")
    order = sorted(queues, key=lambda name: "RedrivePolicy" in queues[name].get("Properties", {}))
    stack.queues = {name: f"url-{name}" for name in order}
    assert stack.queue_url == "url-OffboardingQueue"
    assert stack.dlq_url == "url-OffboardingRefusedQueue"
