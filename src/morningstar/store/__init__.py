"""Storage: the SQL database of runs, imports, validation reports (and later orders, fills...).

SQLAlchemy 2 over a SQLite file by default (WAL, foreign keys on, in the user data directory) or
any PostgreSQL URL for scale; same code, the URL decides. Alembic migrations ship inside the
package and are applied at start. Market data itself lives in Parquet files, not here.

Open the database once per process, at the entry point::

    from morningstar import __version__
    from morningstar.store import open_database, record_cli_run, DataImportRepository

    db = open_database(settings.database.url)   # connect + migrate; StorageError on failure
    with record_cli_run(db, "data import", argv, __version__) as run_id:
        with db.session() as s:                  # one transaction
            DataImportRepository(s, now=db.now).record(kind="csv", ..., run_id=run_id)
    db.dispose()

Modules:
    db: :class:`Database` (engine, :meth:`~Database.session`, :meth:`~Database.migrate`) and
        :func:`open_database`.
    models: the ORM tables (internal to the store; repositories return dataclasses).
    repositories: :class:`RunRepository`, :class:`DataImportRepository`,
        :class:`ValidationRepository` and their record types.
    migrations: the Alembic environment and ``versions/NNNN_<slug>.py`` scripts.

Adding tables in a later issue: add the models to ``models.py``, then a migration
``migrations/versions/NNNN_<slug>.py`` whose ``down_revision`` is the previous ``NNNN`` (copy
``script.py.mako`` or autogenerate; the steps are in the docstring of ``migrations/env.py``), then a
repository returning dataclasses. The tests in ``tests/integration/test_store_migrations.py`` check
on SQLite and PostgreSQL that the migrations build exactly the models' schema and downgrade cleanly.
"""

from __future__ import annotations

from morningstar.store.db import Database, default_database_url, open_database, utc_now
from morningstar.store.repositories import (
    CliRun,
    DataImport,
    DataImportRepository,
    IssueRecord,
    RunRepository,
    StoredValidationReport,
    ValidationRecord,
    ValidationRepository,
    record_cli_run,
)

__all__ = [
    "CliRun",
    "DataImport",
    "DataImportRepository",
    "Database",
    "IssueRecord",
    "RunRepository",
    "StoredValidationReport",
    "ValidationRecord",
    "ValidationRepository",
    "default_database_url",
    "open_database",
    "record_cli_run",
    "utc_now",
]
