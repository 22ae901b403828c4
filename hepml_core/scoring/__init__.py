"""Per-event outputs of trained models: class probabilities, discriminants and anomaly scores."""

__all__: list[str] = []
