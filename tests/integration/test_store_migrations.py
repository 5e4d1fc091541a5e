"""Migrations and connection settings, on SQLite and on the real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from morningstar.errors import StorageError
from morningstar.store import Database, RunRepository, open_database
from morningstar.store.models import Base

TABLES = {
    "cli_runs",
    "data_imports",
    "validation_reports",
    "validation_issues",
    "llm_calls",
    "llm_cache",
}


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = open_database(db_url)
    yield database
    database.dispose()


def _tables(database: Database) -> set[str]:
    return set(sa.inspect(database.engine).get_table_names())


def test_migrate_on_empty_database_creates_all_tables_at_head(db_url: str) -> None:
    database = open_database(db_url, migrate=False)
    try:
        assert database.current_revision() is None
        assert _tables(database) & TABLES == set()
        database.migrate()
        assert _tables(database) >= TABLES | {"alembic_version"}
        assert database.current_revision() == database.head_revision() == "0005"
    finally:
        database.dispose()


def test_migrate_twice_is_a_no_op(db: Database) -> None:
    with db.session() as s:
        run_id = RunRepository(s).start("keep", [], "0")
    db.migrate()
    open_database(str(db.url.render_as_string(hide_password=False))).dispose()
    assert db.current_revision() == db.head_revision()
    with db.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM alembic_version")).scalar_one() == 1
    with db.session(readonly=True) as s:
        assert RunRepository(s).get(run_id) is not None


def test_downgrade_to_base_and_upgrade_again(db: Database) -> None:
    db.downgrade("base")
    assert db.current_revision() is None
    assert _tables(db) & TABLES == set()
    db.migrate()
    assert db.current_revision() == db.head_revision()
    assert _tables(db) >= TABLES


def test_migrations_build_exactly_the_models_schema(db: Database) -> None:
    """Schema drift guard: a model changed without a migration fails here."""
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_unknown_revision_in_database_is_a_storage_error(db: Database) -> None:
    with db.engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(StorageError) as info:
        db.migrate()
    message = str(info.value)
    assert "9999" in message and "newer Morningstar" in message
    assert "\n" not in message


def test_sqlite_connections_get_wal_foreign_keys_and_busy_timeout(sqlite_url: str) -> None:
    database = open_database(sqlite_url)
    try:
        for _ in range(2):  # every pooled connection, not only the first one
            with database.engine.connect() as conn:
                pragma = {
                    name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                    for name in ("journal_mode", "foreign_keys", "busy_timeout", "synchronous")
                }
                assert pragma == {
                    "journal_mode": "wal",
                    "foreign_keys": 1,
                    "busy_timeout": 30000,
                    "synchronous": 1,  # NORMAL
                }
        database.dispose()
        with database.engine.connect() as conn:  # a fresh connection after dispose
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        database.dispose()


def test_sqlite_parent_directory_is_created(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "ms.sqlite"
    database = open_database(f"sqlite:///{target}")
    try:
        assert target.is_file()
    finally:
        database.dispose()


def test_in_memory_sqlite_works() -> None:
    database = open_database("sqlite://")
    try:
        with database.session() as s:
            run_id = RunRepository(s).start("mem", ["x"], "0")
        with database.session(readonly=True) as s:
            assert RunRepository(s).get(run_id) is not None
    finally:
        database.dispose()


@pytest.mark.postgres
def test_postgres_url_without_driver_uses_psycopg3(pg_url: str) -> None:
    plain = pg_url.replace("postgresql+psycopg://", "postgresql://")
    database = open_database(plain)
    try:
        assert database.engine.dialect.driver == "psycopg"
        assert database.current_revision() == "0005"
    finally:
        database.dispose()
