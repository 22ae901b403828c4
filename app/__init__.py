"""hepml's web app: Panel state classes, view components and pages on top of ``hepml_core``.

Layers (see ``DESIGN.md``): ``app.state`` holds param.Parameterized state and services (no widgets),
``app.components`` holds ``pn.viewable.Viewer`` views built from that state, ``app.pages`` composes
components into one page per study, and ``app.serve`` serves the pages with one factory per page so
each browser session gets its own state. Every component also displays inline in Jupyter:
``RocCurves(state)`` as the last expression of a cell.
"""

__all__: list[str] = []
