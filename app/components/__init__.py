"""View components: ``pn.viewable.Viewer`` classes built on ``app.state`` objects.

Each displays inline in Jupyter (``RocCurves(state)`` as a cell's last expression) and composes into
the served pages. Widgets are created per component instance, never as class attributes.
"""

from app.components.anomaly import AnomalyScores
from app.components.distributions import DiscriminantDistributions
from app.components.efficiency import CutEfficiency
from app.components.fractions import ClassFractionsEditor
from app.components.migration import MigrationMatrix
from app.components.overtraining import OvertrainingCheck
from app.components.roc import RocCurves
from app.components.runs import RunSelector
from app.components.train import TrainPanel

__all__ = [
    "AnomalyScores",
    "ClassFractionsEditor",
    "CutEfficiency",
    "DiscriminantDistributions",
    "MigrationMatrix",
    "OvertrainingCheck",
    "RocCurves",
    "RunSelector",
    "TrainPanel",
]
