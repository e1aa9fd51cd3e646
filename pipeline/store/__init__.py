"""Parameter store: versioned SØM parameter sets, evaluation runs and their evidence.

SQLite by default (``<workdir>/som.db``), PostgreSQL via ``SOM_DATABASE_URL``;
the schema is managed by the Alembic migrations in ``migrations/``.
"""

from pipeline.store.repository import (
    ConflictError,
    ParameterStore,
    RunRecord,
    StoreError,
    VersionRecord,
    database_url,
)

__all__ = [
    "ConflictError",
    "ParameterStore",
    "RunRecord",
    "StoreError",
    "VersionRecord",
    "database_url",
]
