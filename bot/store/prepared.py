"""The message path's statements, run straight on SQLite's cursor.

A citizen's message runs about ten statements in one transaction. Through
`Connection.execute`, each cost some 15-20 µs of Python around the driver's 2-8 µs
(an execution context, result metadata, events), and on SQLite that transaction runs
on the event loop (bench/README.md, session 6, has the webhook's figures). A `Prepared`
statement is compiled by SQLAlchemy once per dialect, and on SQLite runs on the
connection's own cursor, inside the transaction SQLAlchemy began: parameters and
results go through the columns' own type processors, so values are stored and read
exactly as `Connection.execute` stores and reads them, and a driver error is raised as
SQLAlchemy's `DBAPIError`. On PostgreSQL, where a statement is a network round trip
and SQLAlchemy's handling of lost connections matters, it is `Connection.execute`.

Every parameter of a prepared statement must be given (a column default SQLAlchemy
would fill in is not): a missing one raises `KeyError` at once.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Executable
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement

Row = tuple[Any, ...]
_Processor = Callable[[Any], Any] | None


@dataclass(frozen=True)
class _Compiled:
    sql: str
    # (name, given by the caller, else this fixed value, bind processor), in
    # placeholder order
    binds: tuple[tuple[str, bool, Any, _Processor], ...]
    results: tuple[_Processor, ...]  # one per selected or returned column


class Prepared:
    """One statement for the message path; see the module."""

    def __init__(self, statement: Executable, keys: Sequence[str] | None = None) -> None:
        """`keys`: for an INSERT, the columns every parameter set gives."""
        self.statement = statement
        self.keys = None if keys is None else list(keys)
        self._compiled: dict[str, _Compiled] = {}

    def rows(self, connection: Connection, params: Mapping[str, Any]) -> list[Row]:
        """Run once; the rows it selects or returns (empty for none)."""
        if connection.dialect.name != "sqlite":
            result = connection.execute(self.statement, self._given(params))
            return [tuple(row) for row in result] if result.returns_rows else []
        compiled = self._for(connection.dialect)
        values = _values(compiled, params)
        with _cursor(connection, compiled.sql) as cursor:
            cursor.execute(compiled.sql, values)
            fetched = cursor.fetchall() if compiled.results else []
        return [_processed(compiled.results, row) for row in fetched]

    def first(self, connection: Connection, params: Mapping[str, Any]) -> Row | None:
        found = self.rows(connection, params)
        return found[0] if found else None

    def scalar(self, connection: Connection, params: Mapping[str, Any]) -> Any:
        found = self.first(connection, params)
        return None if found is None else found[0]

    def returning_many(
        self, connection: Connection, params: Sequence[Mapping[str, Any]]
    ) -> list[Row]:
        """An INSERT … RETURNING of several rows: what each returned, in their order
        (give the statement `sort_by_parameter_order=True`, for PostgreSQL's one
        statement for all)."""
        if connection.dialect.name != "sqlite":
            result = connection.execute(self.statement, [self._given(p) for p in params])
            return [tuple(row) for row in result]
        returned = []
        for one in params:
            found = self.first(connection, one)
            assert found is not None, "an INSERT … RETURNING returned nothing"
            returned.append(found)
        return returned

    def many(self, connection: Connection, params: Sequence[Mapping[str, Any]]) -> None:
        """Run once for each parameter set (no rows come back)."""
        if not params:
            return
        if connection.dialect.name != "sqlite":
            connection.execute(self.statement, [self._given(p) for p in params])
            return
        compiled = self._for(connection.dialect)
        values = [_values(compiled, p) for p in params]
        with _cursor(connection, compiled.sql) as cursor:
            cursor.executemany(compiled.sql, values)

    def _given(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """`params` for `Connection.execute`, with every key of an INSERT there (as
        the cursor path requires)."""
        for key in self.keys or ():
            params[key]  # noqa: B018 (a KeyError, like the cursor path's)
        return dict(params)

    def _for(self, dialect: Dialect) -> _Compiled:
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            compiled = _compile(self.statement, dialect, self.keys)
            self._compiled[dialect.name] = compiled
        return compiled


def _compile(statement: Executable, dialect: Dialect, keys: list[str] | None) -> _Compiled:
    assert isinstance(statement, ClauseElement)
    compiled = statement.compile(dialect=dialect, column_keys=keys)
    assert isinstance(compiled, SQLCompiler) and compiled.positional
    binds = []
    for name in compiled.positiontup or ():
        bind = compiled.binds[name]
        processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if bind.callable is not None:
            raise ValueError(f"{name}: a bind with a callable value cannot be prepared")
        binds.append((name, bind.required, bind.value, processor))
    results = tuple(
        column.type.dialect_impl(dialect).result_processor(dialect, None)
        for column in getattr(statement, "exported_columns", ())
    )
    return _Compiled(compiled.string, tuple(binds), results)


@contextmanager
def _cursor(connection: Connection, sql: str) -> Iterator[sqlite3.Cursor]:
    """A cursor inside the connection's transaction, closed after; a driver error in
    the block is raised as SQLAlchemy's. Like `Connection.execute`, it begins a
    transaction when none is open (the caller commits it, or it rolls back)."""
    if not connection.in_transaction():
        connection.begin()
    driver = connection.connection.driver_connection
    assert isinstance(driver, sqlite3.Connection)
    cursor = driver.cursor()
    try:
        yield cursor
    except sqlite3.Error as exc:
        raise _wrapped(sql, exc) from exc
    finally:
        cursor.close()


def _values(compiled: _Compiled, params: Mapping[str, Any]) -> list[Any]:
    out = []
    for name, given, fixed, processor in compiled.binds:
        value = params[name] if given else fixed
        # Called with None too, as SQLAlchemy does (JSON stores None as 'null').
        out.append(value if processor is None else processor(value))
    return out


def _processed(processors: tuple[_Processor, ...], row: Row) -> Row:
    return tuple(
        value if processor is None else processor(value)
        for processor, value in zip(processors, row, strict=True)
    )


def _wrapped(sql: str, exc: sqlite3.Error) -> StatementError:
    """The driver's error as SQLAlchemy raises it (IntegrityError, OperationalError…)."""
    return DBAPIError.instance(sql, None, exc, sqlite3.Error, hide_parameters=True)
