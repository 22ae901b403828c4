"""State of the app: param.Parameterized classes with derived values, and services (loaders, training).

Nothing here builds a widget; views live in ``app.components``. Import from the defining module
(``from app.state.migration import MigrationState``) to keep imports cheap and free of cycles.
"""

__all__: list[str] = []
