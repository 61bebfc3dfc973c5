"""Engines for a database URL: SQLite (the embedded default) or PostgreSQL (psycopg).

SQLite is tuned for several processes writing one file: WAL, a 30 s busy timeout,
foreign keys on, and every writing transaction opened with BEGIN IMMEDIATE, so
writers queue at the start instead of failing half-way with "database is locked".
The pysqlite driver's own transaction handling is switched off for that, as the
SQLAlchemy docs show ("Serializable isolation / Savepoints / Transactional DDL").
Read-only work (`read_only(engine)`) opens a plain deferred BEGIN, which in WAL
never waits for a writer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from bot.errors import ConfigError

_READ_ONLY = "citizen_bot_read_only"
BUSY_TIMEOUT_MS = 30_000


def database_url(url: str) -> URL:
    """`url` parsed; `postgres://` and `postgresql://` mapped to the psycopg driver."""
    for bare in ("postgres://", "postgresql://"):
        if url.startswith(bare):
            url = "postgresql+psycopg://" + url.removeprefix(bare)
    try:
        return make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"DATABASE_URL {url!r} is not a database URL") from exc


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite gets its folder created and the settings above."""
    parsed = database_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(parsed)
    if backend == "postgresql":
        if parsed.get_driver_name() != "psycopg":
            parsed = parsed.set(drivername="postgresql+psycopg")
        return create_engine(parsed, pool_pre_ping=True, hide_parameters=True)
    shown = parsed.render_as_string(hide_password=True)
    raise ConfigError(f"DATABASE_URL {shown!r}: only sqlite and postgresql are supported")


def read_only(engine: Engine) -> Engine:
    """The same engine (pool, hooks) for work that never writes."""
    return engine.execution_options(**{_READ_ONLY: True})


def _sqlite_engine(url: URL) -> Engine:
    database = url.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000}, hide_parameters=True
    )
    event.listen(engine, "connect", _sqlite_connect)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Stop pysqlite from issuing its own BEGIN; `_sqlite_begin` does it.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")  # safe with WAL, much faster
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    if connection.get_execution_options().get(_READ_ONLY):
        connection.exec_driver_sql("BEGIN")
    else:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
