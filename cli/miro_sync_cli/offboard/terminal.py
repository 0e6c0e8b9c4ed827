"""Where `miro-sync offboard` writes: plans, tables and results to stdout, problems to stderr. One pair
for the whole command, so `report inactive --offboard` prints through the same consoles."""

from __future__ import annotations

from rich.console import Console

console = Console()
errors = Console(stderr=True)
