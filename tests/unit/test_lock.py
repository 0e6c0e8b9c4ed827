"""The hash-pinned requirement files `make lock` writes: the lock satisfies pyproject (so `make install`
installs what pyproject asks for), and the layer's requirements pin exactly what the lock pins."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements" / "lock.txt"
LAYER_REQUIREMENTS = ROOT / "layers" / "miro_sync" / "requirements.txt"
CHECKOV_LOCK = ROOT / "requirements" / "checkov.txt"
CHECKOV_INPUT = ROOT / "requirements" / "checkov.in"
# The Lambda runtime brings these; a copy in the layer would shadow the runtime's own.
RUNTIME_PROVIDED = {"boto3", "botocore", "s3transfer"}

# One entry: "name==version ; marker \" followed by its "--hash=sha256:..." lines.
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", re.MULTILINE)
HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})")

Pins = dict[str, dict[str, set[str]]]  # name -> version -> hashes


def read_pins(path: Path) -> Pins:
    pins: Pins = {}
    entries = re.split(r"\n(?=[A-Za-z0-9])", path.read_text())
    for entry in entries:
        match = PIN.match(entry)
        if match is None:
            continue
        name, version = canonicalize_name(match[1]), match[2]
        pins.setdefault(name, {})[version] = set(HASH.findall(entry))
    return pins


def pyproject() -> dict[str, Any]:
    with (ROOT / "pyproject.toml").open("rb") as stream:
        return tomllib.load(stream)


def runtime_requirements() -> list[Requirement]:
    return [Requirement(text) for text in pyproject()["project"]["dependencies"]]


def locked_requirements() -> list[Requirement]:
    """What `make install` takes from the lock: runtime, dev, and the build backend (no build isolation)."""
    document = pyproject()
    texts = document["project"]["optional-dependencies"]["dev"] + document["build-system"]["requires"]
    return runtime_requirements() + [Requirement(text) for text in texts]


def test_every_entry_is_pinned_with_hashes() -> None:
    for path in (LOCK, LAYER_REQUIREMENTS, CHECKOV_LOCK):
        pins = read_pins(path)
        assert pins, path
        assert all(hashes for versions in pins.values() for hashes in versions.values()), path


@pytest.mark.parametrize("requirement", locked_requirements(), ids=str)
def test_the_lock_satisfies_every_requirement_of_pyproject(requirement: Requirement) -> None:
    # Fails after a dependency is added or narrowed in pyproject without `make lock`.
    locked = read_pins(LOCK).get(canonicalize_name(requirement.name), {})
    assert locked, f"{requirement.name} is not in {LOCK.name}: run make lock"
    assert all(requirement.specifier.contains(version, prereleases=True) for version in locked), locked


def test_the_layer_pins_exactly_what_the_lock_pins() -> None:
    lock, layer = read_pins(LOCK), read_pins(LAYER_REQUIREMENTS)
    for name, versions in layer.items():
        assert lock.get(name) is not None, f"{name} is in the layer but not in the lock"
        for version, hashes in versions.items():
            assert version in lock[name], f"layer {name}=={version}, lock {sorted(lock[name])}"
            assert hashes == lock[name][version], name


def test_the_layer_has_the_runtime_dependencies_and_not_what_lambda_brings() -> None:
    layer = read_pins(LAYER_REQUIREMENTS)
    wanted = {canonicalize_name(r.name) for r in runtime_requirements()} - RUNTIME_PROVIDED
    assert wanted <= set(layer)
    assert not RUNTIME_PROVIDED & set(layer)
    # Nothing of the dev tools: the layer is what Lambda loads.
    assert not {"pytest", "moto", "ruff", "mypy", "bandit", "cfn-lint"} & set(layer)


def test_checkov_lock_satisfies_its_input() -> None:
    lines = [line.strip() for line in CHECKOV_INPUT.read_text().splitlines()]
    (requirement,) = [Requirement(line) for line in lines if line and not line.startswith("#")]
    locked = read_pins(CHECKOV_LOCK)[canonicalize_name(requirement.name)]
    assert all(requirement.specifier.contains(version) for version in locked)
