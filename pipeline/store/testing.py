"""Test support: a throwaway PostgreSQL database per test, and the store URLs to run the store's tests on.

``SOM_TEST_POSTGRES_URL`` names a PostgreSQL server (any database on it, e.g.
``postgresql+psycopg2://postgres@localhost:5432/postgres``) where the connecting role may create
databases; ``.ci/run`` starts such a server and exports it. Each test gets its own database
(``CREATE DATABASE som_test_<random>``), dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

POSTGRES_ENV = "SOM_TEST_POSTGRES_URL"
SKIP_REASON = (f"{POSTGRES_ENV} is not set: no PostgreSQL server to test against "
               "(.ci/run starts one and sets it; see pipeline/store/testing.py)")


def postgres_admin_url() -> str | None:
    """The PostgreSQL URL for tests, or None when the variable is unset or empty."""
    url = os.environ.get(POSTGRES_ENV, "").strip()
    return url or None


@contextmanager
def temporary_postgres_database(admin_url: str) -> Iterator[str]:
    """Create a fresh, empty database on ``admin_url``'s server; yield its URL; drop it afterwards."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"som_test_{uuid.uuid4().hex[:16]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))  # name is generated here, never user input
        url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        try:
            yield url
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
