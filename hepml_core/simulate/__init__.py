"""Seeded toy event generators, one module per study (``ams_he``, ...), and a registry by name.

Each simulator returns a pandas DataFrame of feature columns, ``label`` and ``weight``; use
``hepml_core.simulate.registry.simulate(name, n, seed=...)`` or import the module directly.
"""

__all__: list[str] = []
