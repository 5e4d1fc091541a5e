"""Shared fixtures: real services (PostgreSQL, Redis) and the real data of ../shared/data.

Outside CI a missing service or data folder skips the tests that need it, with the reason. In CI
(``CI`` set to a true value) a missing service is a failure: CI must start what the tests need.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(
    os.environ.get("MORNINGSTAR_TEST_SHARED_DATA", REPO_ROOT.parent / "shared" / "data")
)
PG_HOST = os.environ.get("MORNINGSTAR_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("MORNINGSTAR_TEST_PG_PORT", "5432"))
PG_DB = os.environ.get("MORNINGSTAR_TEST_PG_DB", "test")
PG_USER = os.environ.get("MORNINGSTAR_TEST_PG_USER", "postgres")


def in_ci() -> bool:
    """True when running under CI (``CI=true``/``1``)."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def need(condition: bool, reason: str) -> None:
    """Skip outside CI, fail in CI, when ``condition`` is false."""
    if condition:
        return
    if in_ci():
        pytest.fail(f"required in CI but missing: {reason}")
    pytest.skip(reason)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of real OHLCV CSV files (../shared/data)."""
    need(SHARED_DATA.is_dir(), f"real data folder {SHARED_DATA} is absent")
    return SHARED_DATA


@pytest.fixture(scope="session")
def pg_base_url() -> str:
    """SQLAlchemy URL of the real PostgreSQL test database (127.0.0.1:5432/test)."""
    need(port_open(PG_HOST, PG_PORT), f"PostgreSQL is not listening on {PG_HOST}:{PG_PORT}")
    return f"postgresql+psycopg://{PG_USER}@{PG_HOST}:{PG_PORT}/{PG_DB}"


@pytest.fixture
def pg_url(pg_base_url: str) -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped after the test."""
    import sqlalchemy as sa

    schema = f"ms_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(pg_base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{pg_base_url}?options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite URL in a fresh temporary file."""
    return f"sqlite:///{tmp_path / 'morningstar.sqlite'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each storage test runs against SQLite and the real PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'morningstar.sqlite'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of the real Redis on 127.0.0.1:6379."""
    need(port_open("127.0.0.1", 6379), "Redis is not listening on 127.0.0.1:6379")
    return "redis://127.0.0.1:6379/15"
