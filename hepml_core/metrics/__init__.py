"""Pure, weight-aware numpy metrics: ROC, migration matrices, threshold scans, efficiencies, KS tests.

Every function takes per-event arrays plus optional ``sample_weight`` (MC weights, possibly negative)
and returns plain arrays, floats or frozen NamedTuples. Nothing here imports torch or panel, so the
app, the notebooks and the CLI can all call these on scores that were computed once.

Import from the defining module, e.g. ``from hepml_core.metrics.roc import roc_curve``; this package
re-exports nothing so that importing one metric never drags in the others (and no cycles can form).
"""

__all__: list[str] = []
