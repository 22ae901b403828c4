"""Every notebook in notebooks/ runs top to bottom on a small sample (HEPML_NOTEBOOK_SMALL=1).

The notebooks use the same API and app components as the dashboard; a notebook that no longer runs
is a broken promise to the analyst who opens it.
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/ has no notebook"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_on_a_small_sample(path, tmp_path, monkeypatch):
    monkeypatch.setenv("HEPML_NOTEBOOK_SMALL", "1")
    monkeypatch.setenv("HEPML_RUNS_DIR", str(tmp_path / "runs"))
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    errors = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.get("outputs", [])
              if out.get("output_type") == "error"]
    assert not errors
    # Every code cell ran (no cell was skipped by an early stop).
    assert all(cell.get("execution_count") for cell in nb.cells if cell.cell_type == "code" and cell.source.strip())
