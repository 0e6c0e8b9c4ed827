"""A local, spec-following emulator of Miro's Enterprise REST, SCIM and webhook APIs (dev/test only)."""

from miro_emulator.app import Emulator
from miro_emulator.config import EmulatorConfig
from miro_emulator.faults import PROFILES as FAULT_PROFILES
from miro_emulator.server import RunningEmulator, start_emulator
from miro_emulator.state import OrgState

__all__ = ["FAULT_PROFILES", "Emulator", "EmulatorConfig", "OrgState", "RunningEmulator", "start_emulator"]
