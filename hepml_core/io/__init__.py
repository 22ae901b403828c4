"""Readers and writers for event files: ROOT (uproot), Parquet (pyarrow) and CSV (pandas).

This subpackage is the only place in hepml_core that imports uproot or the pyarrow readers. Import
from the defining modules, e.g. ``from hepml_core.io.source import read_frame``.
"""

__all__: list[str] = []
