"""Fixtures of the app's logic tests (no browser): hand-built frames and small state objects."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

# The repository root holds the ``app`` package; make it importable when hepml is not pip-installed.
_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from app_frames import make_run_scores, make_study_frame  # noqa: E402


@pytest.fixture
def study_frame() -> pd.DataFrame:
    """A He-study-shaped frame: 4000 MC and 2000 data rows."""
    return make_study_frame()


@pytest.fixture
def run_scores() -> pd.DataFrame:
    """A ``Run.scores``-shaped frame of a two-class run."""
    return make_run_scores()


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory):
    """A runs folder with a tiny real He study and a user classifier run (trained once per session)."""
    from app_frames import build_tiny_runs

    runs_dir = tmp_path_factory.mktemp("app") / "runs"
    ids = build_tiny_runs(runs_dir)
    return runs_dir, ids
