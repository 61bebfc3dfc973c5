"""Engines for a database URL: SQLite (the embedded default) or PostgreSQL (psycopg).

SQLite is tuned for several processes writing one file: WAL, a 30 s busy timeout,
foreign keys on, and every writing transaction opened with BEGIN IMMEDIATE, so
writers queue at the start instead of failing half-way with "database is locked".
The pysqlite driver's own transaction handling is switched off for that, as the
SQLAlchemy docs show ("Serializable isolation / Savepoints / Transactional DDL").
Read-only work (`read_only(engine)`) opens a plain deferred BEGIN, which in WAL
never waits for a writer.

Writers of one process also queue on a lock of their own before BEGIN IMMEDIATE:
SQLite's busy handler polls with sleeps of up to 100 ms, so threads of one server that
met inside it waited far longer than the transaction they waited for (the webhook's
p99 was seconds). The lock hands the database over at once; other processes still
meet at BEGIN IMMEDIATE and its busy timeout. (The server's hot writes already go
one at a time through `Store.run`; the lock covers the rest: the console, the CLI,
tests.)

`Store.run` runs a write on the event loop itself when nothing else writes
(`without_waiting()`): its first BEGIN then takes the lock and the database at once or
raises `WriterBusy`, so the loop never waits for another writer; the call then goes
to the writer thread. And connections do not checkpoint the WAL on their own commit
(that copies pages and syncs the file, tens of milliseconds on a slow disk): `Store`
checkpoints on a worker thread every so many writes (`checkpoint()`).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, OperationalError

from bot.errors import ConfigError

_READ_ONLY = "citizen_bot_read_only"
BUSY_TIMEOUT_MS = 30_000

# True while a write runs on the event loop (`without_waiting`), until its first BEGIN.
_NO_WAIT: ContextVar[bool] = ContextVar("citizen_bot_no_wait", default=False)


class WriterBusy(BaseException):  # noqa: N818 (a signal, like GeneratorExit, not an error)
    """Another thread or process holds the database's writer lock: raised by the first
    BEGIN of a `without_waiting()` block instead of waiting. A BaseException, so that
    no `except Exception` on the way swallows it; nothing was written before it."""


@contextmanager
def without_waiting() -> Iterator[None]:
    """The first writing transaction begun in this block raises `WriterBusy` instead of
    waiting for the writer lock; later ones (once something is written) wait as usual."""
    token = _NO_WAIT.set(True)
    try:
        yield
    finally:
        _NO_WAIT.reset(token)


def checkpoint(engine: Engine) -> None:
    """Copy the WAL's committed pages into the database file (PASSIVE: it never waits
    for readers or writers, and writers go on meanwhile). Blocking."""
    raw = engine.raw_connection()
    try:
        raw.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)").close()  # type: ignore[union-attr]
    finally:
        raw.close()


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


class _WriterConnection(sqlite3.Connection):
    """A pysqlite connection that gives its process's writer lock back when its
    transaction ends, however it ends (commit, rollback, the pool's reset, close)."""

    writer_lock: threading.Lock | None = None
    holds_lock = False

    def take_writer_lock(self, *, wait: bool = True) -> None:
        lock = self.writer_lock
        if lock is None or self.holds_lock:
            return
        if not wait:
            if not lock.acquire(blocking=False):
                raise WriterBusy
        elif not lock.acquire(timeout=BUSY_TIMEOUT_MS / 1000):
            raise sqlite3.OperationalError("database is locked (writer lock timeout)")
        self.holds_lock = True

    def give_writer_lock(self) -> None:
        if self.holds_lock and self.writer_lock is not None:
            self.holds_lock = False
            self.writer_lock.release()

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self.give_writer_lock()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.give_writer_lock()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.give_writer_lock()


# One writer lock per database file and process.
_WRITER_LOCKS: dict[str, threading.Lock] = {}
_WRITER_LOCKS_GUARD = threading.Lock()


def _writer_lock(database: str) -> threading.Lock | None:
    if not database or database == ":memory:" or database.startswith("file:"):
        return None  # private or URI databases: nothing to share within the process
    key = str(Path(database).resolve())
    with _WRITER_LOCKS_GUARD:
        return _WRITER_LOCKS.setdefault(key, threading.Lock())


def _sqlite_engine(url: URL) -> Engine:
    database = url.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        connect_args={"timeout": BUSY_TIMEOUT_MS / 1000, "factory": _WriterConnection},
        hide_parameters=True,
        # The connection used last goes out first: the writer thread keeps one, and
        # with it SQLite's page cache (a connection that another one wrote behind
        # reads its pages again).
        pool_use_lifo=True,
    )
    lock = _writer_lock(database)
    if lock is not None:
        event.listen(engine, "connect", lambda conn, _r: setattr(conn, "writer_lock", lock))
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
        cursor.execute("PRAGMA wal_autocheckpoint = 0")  # `checkpoint()`, off the loop
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    if connection.get_execution_options().get(_READ_ONLY):
        connection.exec_driver_sql("BEGIN")
        return
    dbapi = connection.connection.dbapi_connection
    if not isinstance(dbapi, _WriterConnection):
        connection.exec_driver_sql("BEGIN IMMEDIATE")
        return
    wait = not _NO_WAIT.get()
    dbapi.take_writer_lock(wait=wait)
    try:
        if wait:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            _begin_at_once(connection, dbapi)
    except BaseException:
        dbapi.give_writer_lock()
        raise
    if not wait:
        _NO_WAIT.set(False)  # something may be written now: a retry would repeat it


def _begin_at_once(connection: Connection, dbapi: _WriterConnection) -> None:
    """BEGIN IMMEDIATE with no busy wait: `WriterBusy` when another process's write
    holds the database."""
    dbapi.execute("PRAGMA busy_timeout = 0").close()
    try:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    except OperationalError as exc:
        if getattr(exc.orig, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY:
            raise WriterBusy from None
        raise
    finally:
        dbapi.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}").close()
