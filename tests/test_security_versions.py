"""The installed web and model-loading stack carries the known security fixes, and the declared floors say so.

hepml serves a Bokeh/Panel app on Tornado to a whole collaboration and loads models and ONNX files a
colleague may have sent. Each row below names the first release that fixes a published advisory; the
installed version must be at least that, and the floor in pyproject.toml (and, through
tests/test_environment.py, environment.yml) must be at least the highest minimum of its package.
"""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]

#: (package, first fixed version, advisory, why it matters here)
ADVISORIES = [
    ("bokeh", "3.8.2", "CVE-2026-21883 / GHSA-793v-589g-574v",
     "WebSocket Origin allow-list matched host prefixes: a look-alike site could drive a session"),
    ("panel", "1.8.0", "holoviz/panel#8016 (fix #8043)",
     "reflected XSS through the OAuth login error page"),
    ("tornado", "6.5.0", "CVE-2025-47287 / GHSA-7cx3-6m66-7c5m",
     "malformed multipart bodies flood the synchronous log: denial of service"),
    ("tornado", "6.5.3", "CVE-2025-67725 / GHSA-c98p-7wgm-6p64",
     "repeated headers concatenate quadratically: one request stalls the event loop"),
    ("tornado", "6.5.3", "CVE-2025-67726 / GHSA-jhmp-mqwm-3gq8",
     "quadratic parsing of Content-Disposition parameters: denial of service"),
    ("tornado", "6.5.5", "CVE-2026-31958 / GHSA-qjxf-f2mg-c6mc",
     "no limit on multipart parts: denial of service"),
    ("tornado", "6.5.5", "CVE-2026-35536",
     "cookie attribute injection through set_cookie (the session cookie is set with it)"),
    ("tornado", "6.5.8", "GHSA-mpf4-983q-p7j4",
     "urlencoded bodies (the login form) parsed without a field limit: denial of service"),
    ("torch", "2.6.0", "CVE-2025-32434",
     "torch.load(weights_only=True) could still run code from a crafted checkpoint"),
    ("torch", "2.10.0", "CVE-2026-24747",
     "memory corruption in the weights_only unpickler: code execution from a crafted checkpoint"),
    ("onnx", "1.17.0", "CVE-2024-5187",
     "path traversal when extracting model archives"),
    ("onnx", "1.21.0", "CVE-2026-27489 / CVE-2026-34446 / CVE-2026-34447",
     "external-data paths escape the model folder through symlinks and hardlinks: arbitrary file read"),
]


def _floors() -> dict[str, Version]:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    floors = {}
    for dep in deps:
        match = re.match(r"^([A-Za-z0-9_.\-]+)\s*>=\s*([0-9][^,;\s]*)", dep)
        if match:
            floors[match.group(1).lower()] = Version(match.group(2))
    return floors


@pytest.mark.parametrize("package,minimum,advisory,why", ADVISORIES, ids=[f"{a[0]}-{a[2]}" for a in ADVISORIES])
def test_installed_version_carries_the_fix(package, minimum, advisory, why):
    installed = Version(version(package))
    assert installed.release >= Version(minimum).release, (
        f"{package} {installed} is older than {minimum}, which fixes {advisory} ({why}); "
        f"upgrade with: pip install -U '{package}>={minimum}'")


def test_declared_floors_are_at_least_the_fixed_versions():
    floors = _floors()
    needed: dict[str, Version] = {}
    for package, minimum, _, _ in ADVISORIES:
        needed[package] = max(needed.get(package, Version("0")), Version(minimum))
    too_low = {p: f"{floors.get(p)} < {v}" for p, v in needed.items() if p not in floors or floors[p] < v}
    assert not too_low, f"raise these floors in pyproject.toml and environment.yml: {too_low}"
