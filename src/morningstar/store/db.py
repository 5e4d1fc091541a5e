"""Engine, sessions and migrations of the Morningstar database.

One :class:`Database` wraps a SQLAlchemy engine for a URL: a SQLite file by default (see
:func:`default_database_url`), any PostgreSQL URL for scale. Entry points call
:func:`open_database` once at start; it connects, applies the Alembic migrations (under a lock, so
two processes starting together do not race) and returns the ready :class:`Database`.

SQLite connections get ``journal_mode=WAL``, ``foreign_keys=ON``, ``busy_timeout`` and
``synchronous=NORMAL`` on every connection. SQLAlchemy, not the ``sqlite3`` driver, emits ``BEGIN``:
write sessions start with ``BEGIN IMMEDIATE`` so concurrent writers queue on the busy timeout
instead of failing on a read-to-write lock upgrade, and migrations are transactional.

PostgreSQL URLs ``postgresql://`` / ``postgres://`` use the psycopg 3 driver
(``postgresql+psycopg://``), with ``pool_pre_ping``; migrations hold a transaction-level
``pg_advisory_xact_lock`` keyed on the current schema.

Every database failure leaves this module as a one-line :class:`~morningstar.errors.StorageError`
(``raise ... from exc``); URLs in messages and logs never show the password.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from platformdirs import user_data_path
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from morningstar.errors import ConfigError, StorageError

__all__ = [
    "MIGRATIONS_DIR",
    "SESSION_CLOCK_KEY",
    "SQLITE_BUSY_TIMEOUT_S",
    "Database",
    "default_database_url",
    "normalize_url",
    "open_database",
    "utc_now",
]

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_S = 30.0
PG_CONNECT_TIMEOUT_S = 10
# First key of the two-int advisory lock; the second is a hash of the current schema.
_PG_LOCK_NAMESPACE = 0x4D53  # "MS"
_PG_MIGRATION_LOCK = sa.text(
    "SELECT pg_advisory_xact_lock(:ns, hashtext(coalesce(current_schema(), '')))"
)
_BEGIN_OPTION = "morningstar_sqlite_begin"
#: Key of ``Session.info`` holding the :class:`Database` clock, read by the repositories.
SESSION_CLOCK_KEY = "morningstar_now"


def utc_now() -> datetime:
    """Return the current time as an aware UTC datetime (the default clock of :class:`Database`)."""
    return datetime.now(UTC)


def default_database_url() -> str:
    """Return the default URL: a SQLite file ``morningstar.sqlite`` in the user data directory."""
    return f"sqlite:///{user_data_path('morningstar', appauthor=False) / 'morningstar.sqlite'}"


def normalize_url(url: str | URL) -> URL:
    """Parse a database URL and pick Morningstar's driver for it.

    ``postgresql://`` and ``postgres://`` become ``postgresql+psycopg://`` (psycopg 3); ``sqlite``
    stays on the standard ``sqlite3`` driver. Other back-ends are refused.

    Raises:
        ConfigError: the URL cannot be parsed or names an unsupported database.
    """
    text = str(url) if isinstance(url, URL) else url.strip()
    if text.startswith("postgres://"):
        text = "postgresql://" + text[len("postgres://") :]
    try:
        parsed = url if isinstance(url, URL) else make_url(text)
    except (sa.exc.ArgumentError, ValueError) as exc:
        raise ConfigError(
            "invalid database URL",
            where="database.url",
            hint="use sqlite:///path/to/file.sqlite or postgresql://user:password@host:5432/db",
        ) from exc
    if isinstance(url, URL) and parsed.drivername == "postgres":  # pragma: no cover - rare
        parsed = parsed.set(drivername="postgresql")
    backend = parsed.get_backend_name()
    if backend == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if backend not in {"sqlite", "postgresql"}:
        raise ConfigError(
            f"unsupported database {backend!r} in {parsed.render_as_string(hide_password=True)}",
            where="database.url",
            hint="Morningstar supports sqlite:///... and postgresql://...",
        )
    return parsed


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return " ".join(text.splitlines()[0].split()) if text else type(exc).__name__


def _hint_for(reason: str, backend: str) -> str:
    low = reason.lower()
    if "locked" in low or "lock timeout" in low:
        return "another process kept the database busy; retry, or look for a stuck process"
    if backend == "sqlite":
        if "unable to open" in low or "readonly" in low or "read-only" in low:
            return "check that the file's directory exists and is writable, or change database.url"
        if "not a database" in low or "malformed" in low:
            return "the file is not a healthy SQLite database; restore it or change database.url"
        return "check the SQLite file named in database.url"
    if any(
        word in low
        for word in ("connection refused", "could not connect", "connection failed", "timeout")
    ):
        return "is PostgreSQL running and reachable? check database.url"
    if "password authentication" in low or ("role" in low and "does not exist" in low):
        return "check the user and password in database.url"
    if "database" in low and "does not exist" in low:
        return "create the database or fix its name in database.url"
    return "check database.url and the database server's log"


class Database:
    """A database reached through one SQLAlchemy engine.

    Args:
        url: SQLAlchemy URL (``sqlite:///file``, ``sqlite://`` for memory, ``postgresql://...``).
        now: the clock handed to repositories; returns aware UTC datetimes.
        echo: log every SQL statement (debugging).

    Raises:
        ConfigError: the URL is malformed or names an unsupported database.
        StorageError: the SQLite directory cannot be created or the driver is missing.
    """

    def __init__(
        self, url: str | URL, *, now: Callable[[], datetime] = utc_now, echo: bool = False
    ) -> None:
        self.url: URL = normalize_url(url)
        self.now = now
        self.safe_url = self.url.render_as_string(hide_password=True)
        self.engine: Engine = self._create_engine(echo)
        self._sessions = sessionmaker(
            bind=self.engine.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"}),
            expire_on_commit=False,
            info={SESSION_CLOCK_KEY: now},
        )
        self._read_sessions = sessionmaker(
            bind=self.engine, expire_on_commit=False, info={SESSION_CLOCK_KEY: now}
        )

    # -- construction -------------------------------------------------------------------------

    @property
    def backend(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self.url.get_backend_name()

    def _create_engine(self, echo: bool) -> Engine:
        kwargs: dict[str, Any] = {"echo": echo}
        if self.backend == "sqlite":
            database = self.url.database or ""
            memory = database in {"", ":memory:"} or "mode=memory" in database
            if memory:
                kwargs["poolclass"] = StaticPool
                kwargs["connect_args"] = {"check_same_thread": False}
            else:
                self._ensure_directory(Path(database).expanduser())
                kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_S}
        else:
            kwargs["pool_pre_ping"] = True
            if "connect_timeout" not in self.url.query:
                kwargs["connect_args"] = {"connect_timeout": PG_CONNECT_TIMEOUT_S}
        try:
            engine = sa.create_engine(self.url, **kwargs)
        except ImportError as exc:
            raise StorageError(
                f"the database driver for {self.safe_url} is not installed ({exc.name})",
                hint="pip install 'morningstar[postgres]'",
            ) from exc
        if self.backend == "sqlite":
            event.listen(engine, "connect", _sqlite_on_connect)
            event.listen(engine, "begin", _sqlite_on_begin)
        return engine

    def _ensure_directory(self, path: Path) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(
                f"cannot create the directory of {self.safe_url}: "
                f"{exc.strerror or type(exc).__name__}",
                hint="choose a writable location in database.url",
            ) from exc

    # -- errors -------------------------------------------------------------------------------

    def storage_error(self, exc: BaseException, action: str) -> StorageError:
        """Build the one-line :class:`StorageError` for ``exc`` raised while doing ``action``.

        The message names the action, the URL with its password hidden, the driver's reason and
        how to fix it. The password is also scrubbed from the driver's text.
        """
        reason = _first_line(exc)
        if self.url.password:
            reason = reason.replace(str(self.url.password), "***")
        if isinstance(exc, sa.exc.IntegrityError):
            hint = (
                "the row breaks a rule of the schema (missing referenced row, duplicate key or "
                "value not allowed); this is a bug in the caller"
            )
        else:
            hint = _hint_for(reason, self.backend)
        return StorageError(f"{action} {self.safe_url} failed: {reason}", hint=hint)

    # -- sessions -----------------------------------------------------------------------------

    @contextmanager
    def session(self, *, readonly: bool = False) -> Iterator[Session]:
        """Open a session that is one transaction: commit on success, rollback on any error.

        Args:
            readonly: roll back instead of committing, and on SQLite start with a plain (deferred)
                ``BEGIN`` so readers never wait for writers. Write sessions start with
                ``BEGIN IMMEDIATE`` on SQLite.

        Raises:
            StorageError: the database failed (SQLAlchemy errors are translated here). Other
                exceptions raised in the block propagate unchanged after the rollback.
        """
        factory = self._read_sessions if readonly else self._sessions
        session = factory()
        try:
            yield session
            if readonly:
                session.rollback()
            else:
                session.commit()
        except sa.exc.SQLAlchemyError as exc:
            self._safe_rollback(session)
            raise self.storage_error(exc, "transaction on") from exc
        except BaseException:
            self._safe_rollback(session)
            raise
        finally:
            session.close()

    @staticmethod
    def _safe_rollback(session: Session) -> None:
        try:
            session.rollback()
        except sa.exc.SQLAlchemyError:  # pragma: no cover - the connection is already gone
            logger.debug("rollback after a failure failed too", exc_info=True)

    def ping(self) -> None:
        """Connect once and run ``SELECT 1``.

        Raises:
            StorageError: the database cannot be reached or opened.
        """
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except sa.exc.SQLAlchemyError as exc:
            raise self.storage_error(exc, "connecting to") from exc

    # -- migrations ---------------------------------------------------------------------------

    def alembic_config(self) -> Config:
        """Return an Alembic :class:`~alembic.config.Config` for this database's migrations.

        Useful to run Alembic commands programmatically, e.g.
        ``command.revision(db.alembic_config(), "add orders", autogenerate=True, rev_id="0002")``
        (see :mod:`morningstar.store.migrations`).
        """
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        config.set_main_option("path_separator", "os")
        # Escape % for ConfigParser interpolation; env.py reads the URL only in offline mode.
        config.set_main_option(
            "sqlalchemy.url", self.url.render_as_string(hide_password=False).replace("%", "%%")
        )
        return config

    def head_revision(self) -> str | None:
        """Return the newest revision shipped with this version of Morningstar."""
        return ScriptDirectory.from_config(self.alembic_config()).get_current_head()

    def current_revision(self) -> str | None:
        """Return the revision the database is at (``None`` for an empty database).

        Raises:
            StorageError: the database cannot be read.
        """
        try:
            with self.engine.connect() as conn:
                return MigrationContext.configure(conn).get_current_revision()
        except sa.exc.SQLAlchemyError as exc:
            raise self.storage_error(exc, "reading the schema revision of") from exc

    def migrate(self, revision: str = "head") -> None:
        """Upgrade the schema to ``revision`` (default: the newest), under a migration lock.

        Safe to call from several processes at once: PostgreSQL serialises on an advisory lock,
        SQLite on its write lock (``BEGIN IMMEDIATE``); the later process finds the schema at head
        and does nothing. The whole upgrade is one transaction on both engines.

        Raises:
            StorageError: the database failed or is at a revision this version does not know.
        """
        self._run_alembic("upgrade", revision)

    def downgrade(self, revision: str = "base") -> None:
        """Downgrade the schema to ``revision`` (default: empty), under the migration lock.

        Raises:
            StorageError: the database failed or the revision is unknown.
        """
        self._run_alembic("downgrade", revision)

    def _run_alembic(self, direction: str, revision: str) -> None:
        config = self.alembic_config()
        before = self.current_revision()
        try:
            with self._migration_connection() as conn:
                config.attributes["connection"] = conn
                if direction == "upgrade":
                    command.upgrade(config, revision)
                else:
                    command.downgrade(config, revision)
        except CommandError as exc:
            raise StorageError(
                f"cannot {direction} {self.safe_url} to {revision}: {_first_line(exc)}",
                hint="the database may have been migrated by a newer Morningstar; upgrade "
                "Morningstar or point database.url at another database",
            ) from exc
        except sa.exc.SQLAlchemyError as exc:
            raise self.storage_error(exc, f"migrating ({direction} to {revision})") from exc
        after = self.current_revision()
        if after != before:
            logger.info("database %s migrated from %s to %s", self.safe_url, before, after)
        else:
            logger.debug("database %s already at %s", self.safe_url, after)

    @contextmanager
    def _migration_connection(self) -> Iterator[Connection]:
        engine = self.engine.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})
        with engine.begin() as conn:
            if self.backend == "postgresql":
                conn.execute(_PG_MIGRATION_LOCK, {"ns": _PG_LOCK_NAMESPACE})
            yield conn

    def dispose(self) -> None:
        """Close every pooled connection (call at exit, or in a child process after fork)."""
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"Database({self.safe_url!r})"


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy emit BEGIN (see _sqlite_on_begin): transactional DDL and BEGIN IMMEDIATE.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA synchronous = NORMAL")
    finally:
        cursor.close()


_BEGIN_MODES = re.compile(r"^(DEFERRED|IMMEDIATE|EXCLUSIVE)$")


def _sqlite_on_begin(conn: Connection) -> None:
    mode = str(conn.get_execution_options().get(_BEGIN_OPTION, "DEFERRED")).upper()
    if not _BEGIN_MODES.match(mode):  # pragma: no cover - internal option
        raise ValueError(f"invalid SQLite BEGIN mode {mode!r}")
    conn.exec_driver_sql(f"BEGIN {mode}")


def open_database(
    url: str | URL | None = None,
    *,
    migrate: bool = True,
    now: Callable[[], datetime] = utc_now,
) -> Database:
    """Open the database at start: connect, apply the migrations, return it ready.

    Args:
        url: the configured ``database.url``; ``None`` means :func:`default_database_url`.
        migrate: upgrade the schema to head (default). With ``False`` only connect.
        now: the clock repositories use for ``created_at`` / ``started_at``.

    Raises:
        ConfigError: the URL is malformed or names an unsupported database.
        StorageError: the database cannot be reached, opened or migrated (one line, password
            hidden, with a hint).
    """
    db = Database(url if url is not None else default_database_url(), now=now)
    try:
        db.ping()
        if migrate:
            db.migrate()
    except BaseException:
        db.dispose()
        raise
    logger.debug("database %s ready (%s)", db.safe_url, db.backend)
    return db
