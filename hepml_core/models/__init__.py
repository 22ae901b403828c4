"""Neural-network models for hepml: plain ``torch.nn.Module`` classes built by name.

Models hold no training loop (the Trainer in :mod:`hepml_core.training.trainer` owns it), never import
pandas or any I/O library, and describe themselves with two attributes so a run directory can rebuild
them from weights alone:

- ``task``: ``"classifier"`` (forward returns logits) or ``"autoencoder"`` (forward returns a
  reconstruction in [0, 1]); the Trainer picks its loss from it.
- ``hparams``: the constructor settings, JSON/YAML-able.

Build one with :func:`hepml_core.models.registry.build_model`; import from the defining module, not
from this package (this file deliberately re-exports nothing, which keeps import cycles away).
"""

__all__: list[str] = []
