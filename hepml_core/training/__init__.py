"""Training: the one loop (:mod:`.trainer`), its data feed (:mod:`.data`), weighted losses
(:mod:`.losses`) and the callbacks that watch it (:mod:`.callbacks`).

Import from the defining module (``from hepml_core.training.trainer import Trainer``); this package
re-exports nothing, which keeps ``import hepml_core.training`` cheap and free of import cycles.
"""

__all__: list[str] = []
