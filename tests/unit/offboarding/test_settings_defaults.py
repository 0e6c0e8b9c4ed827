"""The offboarding settings' defaults match the template's."""

from __future__ import annotations

import re
from pathlib import Path

from miro_sync.settings.offboarding import OffboardingSettings

REPO = Path(__file__).resolve().parents[3]


def test_the_blast_radius_default_matches_the_template() -> None:
    template = (REPO / "template.yaml").read_text()
    match = re.search(r"^  MaxActionsPerHour:\n(?:    .*\n)*?    Default: (\d+)", template, re.MULTILINE)
    assert match is not None
    settings = OffboardingSettings.from_env(
        {
            "MIRO_API_URL": "http://127.0.0.1:1",
            "MIRO_SCIM_URL": "http://127.0.0.1:1/scim",
            "MIRO_ORG_ID": "org",
            "MIRO_TOKEN_SECRET": "token",
            "MIRO_SCIM_TOKEN_SECRET": "scim-token",
            "MEMBERS_TABLE": "members",
            "ACTIONS_TABLE": "actions",
            "STATE_TABLE": "state",
            "IDEMPOTENCY_TABLE": "idempotency",
            "OFFBOARDING_QUEUE_URL": "http://127.0.0.1:1/queue",
        }
    )
    assert settings.max_actions_per_hour == int(match.group(1)) == 25
