"""Studies: one physics question wired end to end (source, default models, evaluation products)."""

__all__: list[str] = []
