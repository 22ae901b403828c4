"""Pages: one per study, each a factory of a Panel template composed of ``app.components``."""

__all__: list[str] = []
