"""Alembic environment of Morningstar: run by :class:`morningstar.store.Database`, not by hand.

:meth:`Database.migrate` builds the Alembic ``Config`` in code (``script_location`` is this folder,
shipped inside the wheel), opens one transaction under the migration lock and passes its
connection as ``config.attributes["connection"]``; this script only runs the migrations on it.
Offline mode (``--sql``) renders the SQL for the URL in ``sqlalchemy.url``.

Adding a table or column (later issues):

1. Add or change the model in ``morningstar/store/models.py``.
2. Write ``versions/NNNN_<slug>.py`` with ``revision = "NNNN"`` and ``down_revision`` the previous
   number, by copying ``script.py.mako`` or with autogenerate against a database at head::

       from alembic import command
       from morningstar.store import open_database
       db = open_database("sqlite:////tmp/dev.sqlite")
       command.revision(db.alembic_config(), "add orders", autogenerate=True, rev_id="0002")

   then review it: use ``sa.DateTime(timezone=True)`` for timestamps, name constraints with the
   naming convention of ``models.NAMING_CONVENTION``, and alter existing tables inside
   ``with op.batch_alter_table(...)`` so SQLite works too.
3. Run ``pytest -k store``: the schema-drift test compares models and migrations on SQLite and
   PostgreSQL, and the downgrade/upgrade round trip exercises your ``downgrade()``.
"""

from __future__ import annotations

from typing import Any

from alembic import context
from alembic.autogenerate.api import AutogenContext

from morningstar.store.models import Base, UTCDateTime

target_metadata = Base.metadata


def _render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | bool:
    """Render the project's UTCDateTime as the plain column type it stores."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _options(dialect_name: str) -> dict[str, Any]:
    return {
        "target_metadata": target_metadata,
        "render_item": _render_item,
        "render_as_batch": dialect_name == "sqlite",
        "compare_type": True,
        # SQLite: BEGIN is emitted by SQLAlchemy (see db.py), so its DDL is transactional.
        "transactional_ddl": True,
    }


def run_migrations_offline() -> None:
    """Render the migrations as SQL for ``sqlalchemy.url`` (``alembic upgrade --sql``)."""
    url = context.config.get_main_option("sqlalchemy.url")
    dialect = (url or "sqlite").split(":", 1)[0].split("+", 1)[0]
    context.configure(
        url=url, literal_binds=True, dialect_opts={"paramstyle": "named"}, **_options(dialect)
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run the migrations on the connection given by :meth:`Database.migrate`."""
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError(
            "run Morningstar migrations through morningstar.store.open_database() or "
            "Database.migrate(), which pass the connection and hold the migration lock"
        )
    context.configure(connection=connection, **_options(connection.dialect.name))
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
