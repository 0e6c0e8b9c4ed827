"""HTTP helpers shared by the emulator integration tests."""

from __future__ import annotations

import httpx

from miro_emulator import RunningEmulator


def rest(emulator: RunningEmulator, token: str | None = None) -> httpx.Client:
    return httpx.Client(
        base_url=emulator.base_url, headers={"Authorization": f"Bearer {token or emulator.token}"}, timeout=10
    )


def scim(emulator: RunningEmulator, token: str | None = None) -> httpx.Client:
    return httpx.Client(
        base_url=emulator.scim_url,
        headers={
            "Authorization": f"Bearer {token or emulator.scim_token}",
            "Content-Type": "application/scim+json",
        },
        timeout=10,
    )


def body_of(response: httpx.Response) -> object:
    return response.json() if response.content else None
