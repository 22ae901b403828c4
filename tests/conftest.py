"""Shared pytest fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The read-only real data folder ``../shared/data`` next to the repository (skips if absent)."""
    path = (Path(__file__).parents[1] / ".." / "shared" / "data").resolve()
    if not path.is_dir():
        pytest.skip(f"real-data folder {path} is absent (it sits next to the repository as ../shared/data)")
    return path
