-- Runs once, when the PostgreSQL volume is first initialised (docker-entrypoint-initdb.d).
-- Dagster's instance uses the database named by POSTGRES_DB (default "dagster"); the parameter store
-- gets a database of its own ("som_store"): both keep Alembic migration state in a table named alembic_version.
CREATE DATABASE som_store;
