"""The `miro-sync` command. Each sub-command lives in its own `*_cmd.py` module; those modules keep
heavy imports (boto3, the emulator, the local stack) inside the command functions so that
`miro-sync --help` and every command start fast. A command whose module is not there yet is left out."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="miro-sync",
    help="Self-hosted Miro Enterprise inventory, license reports and guarded offboarding.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """Keeps `miro-sync` a command group even while only one command is installed."""


# command name -> (module, attribute, help). A module exposes either a typer.Typer (a command group)
# or a plain function (a single command).
COMMANDS: dict[str, tuple[str, str, str]] = {
    "emulator": (
        "miro_sync_cli.emulator_cmd",
        "emulator",
        "Serve a local Miro Enterprise org (REST, SCIM, webhooks).",
    ),
    "invoke": (
        "miro_sync_cli.invoke_cmd",
        "invoke",
        "Run one function's handler locally, exactly as Lambda would.",
    ),
    "demo": ("miro_sync_cli.demo_cmd", "demo", "Run the whole system locally on an emulated org."),
    "offboard": ("miro_sync_cli.offboard_cmd", "app", "Enqueue and follow offboarding actions."),
    "report": ("miro_sync_cli.report_cmd", "app", "Inactive-seat and license reports."),
    "subscribe": ("miro_sync_cli.subscribe_cmd", "app", "Manage Miro board webhook subscriptions."),
    "doctor": ("miro_sync_cli.doctor_cmd", "doctor", "Check tokens, scopes and roles the stack needs."),
}


def _register() -> None:
    for name, (module_name, attribute, help_text) in COMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as missing:
            if missing.name != module_name:
                raise
            continue
        target = getattr(module, attribute)
        if isinstance(target, typer.Typer):
            app.add_typer(target, name=name, help=help_text)
        else:
            app.command(name=name, help=help_text)(target)


def main() -> None:
    _register()
    app()


if __name__ == "__main__":
    main()
