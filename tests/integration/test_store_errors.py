"""Database failures become one-line StorageErrors that never show the password."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest

from morningstar.errors import StorageError
from morningstar.store import open_database

PASSWORD = "s3cret-Pa55"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _assert_one_line(err: StorageError) -> str:
    message = str(err)
    assert message and "\n" not in message
    assert PASSWORD not in message
    return message


def test_unreachable_postgres_is_a_one_line_storage_error(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    port = _closed_port()
    with pytest.raises(StorageError) as info:
        open_database(f"postgresql://trader:{PASSWORD}@127.0.0.1:{port}/test")
    message = _assert_one_line(info.value)
    assert f"postgresql+psycopg://trader:***@127.0.0.1:{port}/test" in message
    assert "refused" in message.lower()
    assert "is PostgreSQL running" in message and "database.url" in message
    assert PASSWORD not in caplog.text
    assert isinstance(info.value.__cause__, Exception)  # raised "from" the driver's error


@pytest.mark.postgres
def test_missing_postgres_database_names_the_fix(pg_base_url: str) -> None:
    url = pg_base_url.rsplit("/", 1)[0] + "/ms_no_such_database"
    url = url.replace("postgresql+psycopg://postgres@", f"postgresql://postgres:{PASSWORD}@")
    with pytest.raises(StorageError) as info:
        open_database(url)
    message = _assert_one_line(info.value)
    assert "ms_no_such_database" in message and "postgres:***@" in message


def test_sqlite_path_under_a_file_is_a_storage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    with pytest.raises(StorageError) as info:
        open_database(f"sqlite:///{blocker / 'sub' / 'ms.sqlite'}")
    message = _assert_one_line(info.value)
    assert "cannot create the directory" in message and "writable" in message


def test_sqlite_path_that_is_a_directory_is_a_storage_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError) as info:
        open_database(f"sqlite:///{tmp_path}")
    message = _assert_one_line(info.value)
    assert "unable to open database file" in message and "writable" in message


def test_sqlite_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "garbage.sqlite"
    path.write_bytes(b"this is not a SQLite database at all" * 100)
    with pytest.raises(StorageError) as info:
        open_database(f"sqlite:///{path}")
    message = _assert_one_line(info.value)
    assert "not a database" in message
