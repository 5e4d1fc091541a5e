"""Composition root: build the application's parts from the typed settings, once per entry point.

Every interface (CLI, API, dashboard, workers) calls :func:`build_app` and gets the same wiring:
settings → logging → Parquet market-data store → SQL database (migrated at start).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from morningstar.config import Settings, iter_secrets, load_settings
from morningstar.data.parquet_store import OHLCVStore
from morningstar.errors import ConfigError
from morningstar.logs import setup_logging
from morningstar.store import Database, open_database

__all__ = ["AppContext", "build_app"]

log = logging.getLogger(__name__)


@dataclass
class AppContext:
    """The wired application parts. The database is opened (and migrated) on first use."""

    settings: Settings
    config_path: Path | None = None
    _db: Database | None = field(default=None, repr=False)

    @cached_property
    def market_data(self) -> OHLCVStore:
        """Parquet store of bars under ``settings.data.dir``."""
        return OHLCVStore(self.settings.data.dir)

    @property
    def db(self) -> Database:
        """The SQL database, migrated to the latest schema."""
        if self._db is None:
            self._db = open_database(self.settings.database_url, migrate=True)
        return self._db

    def close(self) -> None:
        """Release the database connections."""
        if self._db is not None:
            self._db.dispose()
            self._db = None


def build_app(
    config_path: str | Path | None = None,
    *,
    console_level: str | None = None,
    log_to_file: bool = True,
) -> AppContext:
    """Load the settings and set up logging; the database opens lazily.

    Args:
        config_path: the config file (None: ``MORNINGSTAR_CONFIG`` or ``config/config.yaml``).
        console_level: overrides ``logging.level`` (e.g. DEBUG for ``--debug``).
        log_to_file: write the JSON-lines log file.

    Raises:
        ConfigError: the configuration is invalid.
    """
    settings = load_settings(config_path)
    try:
        settings.data.dir.mkdir(parents=True, exist_ok=True)
        setup_logging(
            level=console_level or settings.logging.level,
            file=settings.log_file if log_to_file else None,
            file_level=settings.logging.file_level,
            secrets=iter_secrets(settings),
        )
    except OSError as exc:
        raise ConfigError(
            f"cannot create {exc.filename or settings.data.dir} ({exc.strerror or exc})",
            where="data.dir / logging.file",
            hint="choose a writable folder (data.dir in the config or MORNINGSTAR_DATA__DIR)",
        ) from None
    path = Path(config_path) if config_path is not None else None
    return AppContext(settings=settings, config_path=path)
