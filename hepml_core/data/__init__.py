"""Event tables, their schema, validation, train/validation/test splits and feature scaling.

Import from the defining modules, e.g. ``from hepml_core.data.table import EventTable``.
"""

__all__: list[str] = []
