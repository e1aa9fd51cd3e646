"""Parameter store: versioned SØM parameter sets, evaluations and their runs, evidence, audit log.

SQLite by default (``<workdir>/som.db``), PostgreSQL via ``SOM_DATABASE_URL``;
the schema is managed by the Alembic migrations in ``migrations/``. Versions are
append-only (proposed → approved / rejected / superseded), idempotent by content
hash; approvals use optimistic locking on the parent version (:class:`ConflictError`).
``diff.diff_documents`` compares two versions; ``testing`` gives the store's tests a
throwaway PostgreSQL database (``SOM_TEST_POSTGRES_URL``).
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
