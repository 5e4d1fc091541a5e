"""Unit tests of the store's URL handling, time type and public surface (no server needed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy.dialects import postgresql, sqlite

from morningstar import store
from morningstar.errors import ConfigError
from morningstar.store.db import default_database_url, normalize_url
from morningstar.store.models import UTCDateTime
from morningstar.store.repositories import _jsonable


def test_exported_names_are_pinned() -> None:
    assert sorted(store.__all__) == [
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
    for name in store.__all__:
        assert getattr(store, name) is not None


@pytest.mark.parametrize(
    ("given", "driver"),
    [
        ("postgresql://u:p@h:5432/db", "postgresql+psycopg"),
        ("postgres://u:p@h/db", "postgresql+psycopg"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg"),
        ("sqlite:///x.sqlite", "sqlite"),
        ("sqlite://", "sqlite"),
    ],
)
def test_normalize_url_picks_psycopg3(given: str, driver: str) -> None:
    assert normalize_url(given).drivername == driver


@pytest.mark.parametrize("bad", ["mysql://u:secret@h/db", "not a url"])
def test_bad_or_unsupported_url_is_a_config_error(bad: str) -> None:
    with pytest.raises(ConfigError) as info:
        normalize_url(bad)
    assert "database.url" in str(info.value)
    assert "secret" not in str(info.value)
    assert "\n" not in str(info.value)


def test_default_url_is_a_sqlite_file_in_the_user_data_dir() -> None:
    url = normalize_url(default_database_url())
    assert url.get_backend_name() == "sqlite"
    path = Path(url.database or "")
    assert path.is_absolute()
    assert path.name == "morningstar.sqlite"
    assert "morningstar" in path.parent.as_posix()


def test_utc_datetime_binds_utc_and_reads_aware() -> None:
    kind = UTCDateTime()
    paris = datetime(2024, 3, 1, 13, 30, 0, 123456, tzinfo=timezone(timedelta(hours=1)))
    on_sqlite = kind.process_bind_param(paris, sqlite.dialect())
    assert on_sqlite == datetime(2024, 3, 1, 12, 30, 0, 123456)  # naive UTC text on SQLite
    on_pg = kind.process_bind_param(paris, postgresql.dialect())
    assert on_pg is not None and on_pg.tzinfo is UTC and on_pg == paris
    back = kind.process_result_value(on_sqlite, sqlite.dialect())
    assert back == paris and back is not None and back.tzinfo is UTC
    assert kind.process_bind_param(None, sqlite.dialect()) is None


def test_utc_datetime_refuses_naive_values() -> None:
    with pytest.raises(ValueError, match="naive"):
        UTCDateTime().process_bind_param(datetime(2024, 1, 1), sqlite.dialect())


def test_examples_are_made_json_safe() -> None:
    np = pytest.importorskip("numpy")
    pd = pytest.importorskip("pandas")
    examples = [
        {"ts": pd.Timestamp("2024-01-01", tz="UTC"), "close": np.float64(1.5), "n": np.int64(3)},
        {"when": datetime(2024, 1, 2, tzinfo=UTC), "other": Path("x")},
    ]
    assert _jsonable(examples) == [
        {"ts": "2024-01-01T00:00:00+00:00", "close": 1.5, "n": 3},
        {"when": "2024-01-02T00:00:00+00:00", "other": "x"},
    ]
