"""Storage of the web console: sessions, failed sign-ins, and the reads its pages need.

    ConsoleStore(store)     on the Store's engine (SQLite keeps its one writer)
      sessions              add_session, session, delete_session, delete_expired
      failed sign-ins       login_lock, record_failure, clear_failures
      reads                 paired_conversations, ticket_messages

Session tokens are never stored: only their SHA-256 (the caller hashes). The rules
(expiry, how many failures lock a name) live in bot/console_accounts.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlmodel import col, select

from bot.store.records import MessageRecord
from bot.store.store import Store, _insert_ignore, _message_record
from bot.store.tables import ConsoleLoginRow, ConsoleSessionRow, MessageRow, PairingRow

__all__ = ["ConsoleSession", "ConsoleStore"]


@dataclass(frozen=True)
class ConsoleSession:
    volunteer_id: int
    csrf_token: str
    created_at: datetime
    expires_at: datetime


class ConsoleStore:
    """The console's tables, on the same database (engine, pool) as `store`."""

    def __init__(self, store: Store) -> None:
        self._store = store

    # Sessions

    def add_session(
        self,
        *,
        token_hash: str,
        volunteer_id: int,
        csrf_token: str,
        now: datetime,
        expires_at: datetime,
    ) -> None:
        with self._store._session(write=True) as db:
            db.add(
                ConsoleSessionRow(
                    token_hash=token_hash,
                    volunteer_id=volunteer_id,
                    csrf_token=csrf_token,
                    created_at=now,
                    expires_at=expires_at,
                )
            )

    def session(self, token_hash: str, *, now: datetime) -> ConsoleSession | None:
        """The session of that token, unless it expired."""
        with self._store._session(write=False) as db:
            row = db.get(ConsoleSessionRow, token_hash)
            if row is None or row.expires_at <= now:
                return None
            return ConsoleSession(row.volunteer_id, row.csrf_token, row.created_at, row.expires_at)

    def delete_session(self, token_hash: str) -> None:
        with self._store._session(write=True) as db:
            db.exec(
                delete(ConsoleSessionRow).where(col(ConsoleSessionRow.token_hash) == token_hash)
            )

    def delete_expired(self, *, now: datetime) -> None:
        with self._store._session(write=True) as db:
            db.exec(delete(ConsoleSessionRow).where(col(ConsoleSessionRow.expires_at) <= now))

    # Failed sign-ins

    def login_lock(self, login_key: str, *, now: datetime) -> datetime | None:
        """Until when sign-ins under this name are refused; None when they are not."""
        with self._store._session(write=False) as db:
            row = db.get(ConsoleLoginRow, login_key)
            if row is None or row.locked_until is None or row.locked_until <= now:
                return None
            return row.locked_until

    def record_failure(
        self,
        login_key: str,
        *,
        now: datetime,
        window: timedelta,
        max_failures: int,
        lock_for: timedelta,
    ) -> datetime | None:
        """Count a failed sign-in; when it is the `max_failures`-th within `window`,
        lock the name for `lock_for` and return until when."""
        with self._store._session(write=True) as db:
            db.exec(
                _insert_ignore(
                    ConsoleLoginRow,
                    {"login_key": login_key, "failures": 0},
                    ["login_key"],
                    self._store._postgres,
                )
            )
            # FOR UPDATE: two failures at once on PostgreSQL both count (SQLite has one
            # writer already).
            row = db.get(ConsoleLoginRow, login_key, with_for_update=True, populate_existing=True)
            assert row is not None
            if row.first_failed_at is None or row.first_failed_at <= now - window:
                row.failures, row.first_failed_at = 0, now
            row.failures += 1
            if row.failures >= max_failures:
                row.locked_until = now + lock_for
                row.failures, row.first_failed_at = 0, None
            db.add(row)
            return row.locked_until if row.locked_until and row.locked_until > now else None

    def clear_failures(self, login_key: str) -> None:
        with self._store._session(write=True) as db:
            db.exec(delete(ConsoleLoginRow).where(col(ConsoleLoginRow.login_key) == login_key))

    # Reads for the pages

    def paired_conversations(self, volunteer_id: int) -> set[int]:
        """Conversations this volunteer helped last: they may take their tickets."""
        with self._store._session(write=False) as db:
            query = select(PairingRow.conversation_id).where(
                PairingRow.volunteer_id == volunteer_id
            )
            return set(db.exec(query))

    def ticket_messages(
        self,
        conversation_id: int,
        *,
        since: datetime,
        until: datetime | None = None,
        limit: int = 200,
    ) -> list[MessageRecord]:
        """The conversation's messages from `since` to `until` (already redacted), oldest
        first, at most the last `limit`."""
        query = (
            select(MessageRow)
            .where(
                MessageRow.conversation_id == conversation_id,
                col(MessageRow.created_at) >= since,
            )
            .order_by(col(MessageRow.id).desc())
            .limit(limit)
        )
        if until is not None:
            query = query.where(col(MessageRow.created_at) <= until)
        with self._store._session(write=False) as db:
            rows = list(db.exec(query))
            return [_message_record(row) for row in reversed(rows)]
