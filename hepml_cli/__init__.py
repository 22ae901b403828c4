"""The ``hepml`` command line: the layer above ``hepml_core`` and ``app``."""

__all__: list[str] = []
