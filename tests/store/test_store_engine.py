"""Engines by URL: bot/store/engine.py."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from bot.errors import ConfigError
from bot.store import database_url, make_engine
from bot.store.engine import (
    BUSY_TIMEOUT_MS,
    WriterBusy,
    _writer_lock,
    read_only,
    without_waiting,
)


@pytest.mark.parametrize(
    ("url", "driver"),
    [
        ("postgres://u:p@db:5432/bot", "postgresql+psycopg"),
        ("postgresql://u@db/bot", "postgresql+psycopg"),
        ("postgresql+psycopg://u@db/bot", "postgresql+psycopg"),
        ("sqlite:///data/bot.db", "sqlite"),
    ],
)
def test_database_url_maps_postgres_to_psycopg(url: str, driver: str) -> None:
    parsed = database_url(url)
    assert parsed.drivername == driver
    assert parsed.database in ("bot", "data/bot.db")


def test_other_databases_are_refused_without_showing_the_password() -> None:
    with pytest.raises(ConfigError, match="only sqlite and postgresql") as raised:
        make_engine("mysql://root:hunter2@db/bot")
    assert "hunter2" not in str(raised.value)


def test_garbage_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not a database URL"):
        make_engine("not a url")


def test_sqlite_creates_its_folder_and_is_tuned(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "bot.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as connection:
            pragma = connection.exec_driver_sql
            assert pragma("PRAGMA journal_mode").scalar() == "wal"
            assert pragma("PRAGMA busy_timeout").scalar() == BUSY_TIMEOUT_MS
            assert pragma("PRAGMA foreign_keys").scalar() == 1
        assert path.exists()
    finally:
        engine.dispose()


def test_sqlite_writers_take_the_lock_at_begin_and_readers_do_not(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    engine = make_engine(f"sqlite:///{path}")
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        with engine.begin() as connection:
            connection.execute(text("SELECT 1"))
            # BEGIN IMMEDIATE already holds the write lock, before anything was written.
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        with read_only(engine).begin() as connection:
            connection.execute(text("SELECT 1"))
            other.execute("BEGIN IMMEDIATE")  # a reader leaves writers be
            other.execute("ROLLBACK")
    finally:
        other.close()
        engine.dispose()


def test_writers_of_one_process_queue_on_the_writer_lock(tmp_path: Path) -> None:
    """Eight threads, twenty increments each, on one file: every write lands, and the
    lock is free again afterwards (commit gives it back)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'bot.db'}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE counter (n INTEGER)"))
        connection.execute(text("INSERT INTO counter VALUES (0)"))

    def bump() -> None:
        for _ in range(20):
            with engine.begin() as connection:
                n = connection.execute(text("SELECT n FROM counter")).scalar_one()
                connection.execute(text("UPDATE counter SET n = :n"), {"n": n + 1})

    threads = [threading.Thread(target=bump) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with read_only(engine).connect() as connection:
        assert connection.execute(text("SELECT n FROM counter")).scalar_one() == 160
    lock = _writer_lock(str(tmp_path / "bot.db"))
    assert lock is not None and not lock.locked()


def test_a_failed_write_gives_the_writer_lock_back(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'bot.db'}")
    with pytest.raises(OperationalError), engine.begin() as connection:
        connection.execute(text("INSERT INTO missing VALUES (1)"))
    lock = _writer_lock(str(tmp_path / "bot.db"))
    assert lock is not None and not lock.locked()
    with engine.begin() as connection:  # and the next writer gets in
        connection.execute(text("CREATE TABLE t (x INTEGER)"))


def test_memory_databases_have_no_writer_lock() -> None:
    assert _writer_lock(":memory:") is None
    assert _writer_lock("file:shared?mode=memory") is None


def _counter_engine(tmp_path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'bot.db'}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE counter (n INTEGER)"))
        connection.execute(text("INSERT INTO counter VALUES (0)"))
    return engine


def _bump(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(text("UPDATE counter SET n = n + 1"))


def _count(engine: Engine) -> int:
    with read_only(engine).connect() as connection:
        return int(connection.execute(text("SELECT n FROM counter")).scalar_one())


def test_without_waiting_the_first_begin_refuses_a_lock_another_thread_holds(
    tmp_path: Path,
) -> None:
    engine = _counter_engine(tmp_path)
    lock = _writer_lock(str(tmp_path / "bot.db"))
    assert lock is not None
    with lock:  # a console thread, say, in the middle of its transaction
        with pytest.raises(WriterBusy), without_waiting():
            _bump(engine)
    assert _count(engine) == 0 and not lock.locked()
    with without_waiting():
        _bump(engine)  # free now: it goes ahead
    assert _count(engine) == 1


def test_without_waiting_the_first_begin_refuses_another_process_s_write(tmp_path: Path) -> None:
    engine = _counter_engine(tmp_path)
    other = sqlite3.connect(tmp_path / "bot.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(WriterBusy), without_waiting():
            _bump(engine)
    finally:
        other.execute("ROLLBACK")
        other.close()
    lock = _writer_lock(str(tmp_path / "bot.db"))
    assert lock is not None and not lock.locked()
    with engine.connect() as connection:  # the busy timeout is back to normal
        timeout = connection.exec_driver_sql("PRAGMA busy_timeout").scalar_one()
        assert timeout == BUSY_TIMEOUT_MS


def test_without_waiting_later_transactions_wait_once_something_was_written(
    tmp_path: Path,
) -> None:
    """A call that wrote once must not be retried elsewhere: its next BEGIN waits."""
    engine = _counter_engine(tmp_path)
    # Another process's connection, used from the thread that releases it.
    other = sqlite3.connect(tmp_path / "bot.db", isolation_level=None, check_same_thread=False)
    release = threading.Timer(0.2, lambda: other.execute("COMMIT"))
    with without_waiting():
        _bump(engine)
        other.execute("BEGIN IMMEDIATE")
        release.start()
        _bump(engine)  # waits for the other writer instead of raising
    release.join()
    other.close()
    assert _count(engine) == 2
