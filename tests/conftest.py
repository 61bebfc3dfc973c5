"""Shared fixtures. `store` runs a test on SQLite and, when TEST_DATABASE_URL is set,
on PostgreSQL: the same contract for both.

PostgreSQL runs are isolated: one fresh schema with a random name for the test session
(dropped at the end), its tables emptied before every test.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine
from sqlmodel import SQLModel

from bot.content import ContentLibrary
from bot.store import Store, database_url

PG_SKIP_REASON = "TEST_DATABASE_URL not set: PostgreSQL tests skipped"


@dataclass(frozen=True)
class PostgresSchema:
    url: str  # TEST_DATABASE_URL with search_path set to the schema
    engine: Engine  # for the fixtures' own housekeeping


@pytest.fixture(scope="session")
def postgres_schema() -> Iterator[PostgresSchema]:
    """A fresh schema in the TEST_DATABASE_URL database, dropped after the session."""
    raw = os.environ.get("TEST_DATABASE_URL")
    if not raw:
        pytest.skip(PG_SKIP_REASON)
    name = f"test_{secrets.token_hex(6)}"
    scoped = database_url(raw).update_query_dict({"options": f"-csearch_path={name}"})
    url = scoped.render_as_string(hide_password=False)
    admin = create_engine(database_url(raw))
    with admin.begin() as connection:
        connection.exec_driver_sql(f'CREATE SCHEMA "{name}"')
    engine = create_engine(scoped)
    try:
        yield PostgresSchema(url=url, engine=engine)
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA "{name}" CASCADE')
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """An empty Store with its tables created, on each database."""
    if request.param == "sqlite":
        result = Store(f"sqlite:///{tmp_path / 'data' / 'store.db'}")
        result.create_all()
    else:
        schema: PostgresSchema = request.getfixturevalue("postgres_schema")
        result = Store(schema.url)
        result.create_all()
        tables = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
        with schema.engine.begin() as connection:
            connection.exec_driver_sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    try:
        yield result
    finally:
        result.dispose()


@pytest.fixture(scope="module")
def library() -> ContentLibrary:
    """The shipped flows/ and knowledge/, loaded once a module (loading takes most of a
    second; tests read it, never change it). A module or folder may define its own."""
    root = Path(__file__).resolve().parents[1]
    return ContentLibrary(flows_dir=root / "flows", knowledge_dir=root / "knowledge")
