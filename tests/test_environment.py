"""The two ways to install hepml (pip/pyproject and conda/environment.yml) ask for the same things."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
# conda-forge spells a few packages differently from PyPI.
CONDA_NAME = {"torch": "pytorch"}


def _split(requirement: str) -> tuple[str, str]:
    match = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", requirement)
    assert match, requirement
    return match.group(1).lower(), match.group(2).replace(" ", "")


def _pyproject() -> dict[str, str]:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return dict(_split(d) for d in deps)


def _conda() -> dict[str, str]:
    """conda packages plus the pip-only ones of the environment's pip section."""
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pairs = [_split(d) for d in env["dependencies"] if isinstance(d, str)]
    for part in env["dependencies"]:
        if isinstance(part, dict) and "pip" in part:
            pairs += [_split(d) for d in part["pip"] if not d.startswith("-")]
    return {name: spec for name, spec in pairs if name not in {"python", "pip"}}


def test_environment_yml_lists_the_runtime_dependencies_of_pyproject():
    expected = {CONDA_NAME.get(name, name): spec for name, spec in _pyproject().items()}
    assert _conda() == expected


def test_environment_yml_installs_hepml_itself_so_the_hepml_command_exists():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_parts = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert pip_parts and "-e ." in pip_parts[0]


def test_lock_file_pins_torch_to_the_cpu_build_version_and_every_runtime_dependency():
    lock = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            lock[name.lower().replace("_", "-")] = version
    assert lock["torch"] == "2.13.0"
    missing = [name for name in _pyproject() if name.replace("_", "-") not in lock]
    assert not missing, f"runtime dependencies without a locked version: {missing}"
