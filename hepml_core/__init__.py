"""hepml_core: train, score and evaluate machine-learning models on particle-physics event tables.

Import from the defining modules (``from hepml_core.data.table import EventTable``); this package
re-exports nothing so that importing it stays cheap and free of import cycles.
"""

__version__ = "0.1.0"
