"""The README's configuration table lists every template parameter with its real default."""

import re
from pathlib import Path

from miro_sync_cli.local.template import load_template

ROOT = Path(__file__).resolve().parents[2]


def test_every_template_parameter_is_documented_with_its_default() -> None:
    parameters = load_template(ROOT / "template.yaml")["Parameters"]
    readme = (ROOT / "README.md").read_text()
    rows = dict(re.findall(r"^\| `(\w+)` \| ([^|]+) \|", readme, flags=re.MULTILINE))
    for name, parameter in parameters.items():
        assert name in rows, f"README's configuration table lacks {name}"
        default = parameter.get("Default")
        expected = "(required)" if default is None else (f"`{default}`" if str(default) else "(empty)")
        assert rows[name].strip() == expected, f"README says {name} defaults to {rows[name].strip()}"


def test_readme_shows_the_two_commands_and_deploy() -> None:
    readme = (ROOT / "README.md").read_text()
    for command in ("make demo", "make test", "sam build && sam deploy --guided"):
        assert command in readme


def test_the_scopes_table_is_the_one_doctor_checks() -> None:
    from miro_sync.miro.scopes import markdown_table

    assert markdown_table().strip() in (ROOT / "README.md").read_text()
