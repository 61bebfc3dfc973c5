"""The Zalo OA token pair in the database, refreshed by one process at a time.

    current() → expired? → begin_refresh(version) wins the lease (compare and set) →
    call Zalo with the refresh token → finish_refresh(version, new pair) in one UPDATE.
    Losers of the lease wait for `version` to move on and use the new access token.

Zalo's refresh token works once: two processes refreshing with the same one would leave
one of them (and, if it wrote last, everyone) with a dead pair.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, update
from sqlmodel import col, select

from bot.store.store import Store, _insert_ignore
from bot.store.tables import ZaloTokenRow
from bot.store.types import utcnow


@dataclass(frozen=True)
class TokenPair:
    """One stored pair. `expires_at` None: unknown (the first pair, from settings)."""

    name: str
    access_token: str
    refresh_token: str
    expires_at: datetime | None
    version: int
    refreshing_until: datetime | None

    def __repr__(self) -> str:  # never print the tokens
        return f"TokenPair({self.name!r}, version={self.version}, expires_at={self.expires_at})"


class ZaloTokenStore:
    """Reads and compare-and-set writes of `zalo_token` rows (sync; call from a thread)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def current(self, name: str) -> TokenPair | None:
        with self._store._session(write=True) as db:
            row = db.exec(select(ZaloTokenRow).where(ZaloTokenRow.name == name)).first()
            return None if row is None else _pair(row)

    def seed(self, name: str, *, access_token: str, refresh_token: str) -> TokenPair:
        """Store the first pair (from settings) unless a pair is stored already; the
        stored one wins, since the settings' refresh token may be used up."""
        values = {
            "name": name,
            "access_token": access_token,
            "refresh_token": refresh_token,
            "expires_at": None,
            "version": 0,
            "refreshing_until": None,
            "updated_at": utcnow(),
        }
        with self._store._session(write=True) as db:
            db.exec(_insert_ignore(ZaloTokenRow, values, ["name"], self._store._postgres))
            row = db.exec(select(ZaloTokenRow).where(ZaloTokenRow.name == name)).one()
            return _pair(row)

    def begin_refresh(self, name: str, *, version: int, lease: timedelta) -> bool:
        """Take the right to refresh `version`; False when another process has it or the
        pair has moved on."""
        now = utcnow()
        with self._store._session(write=True) as db:
            result = db.exec(
                update(ZaloTokenRow)
                .where(
                    col(ZaloTokenRow.name) == name,
                    col(ZaloTokenRow.version) == version,
                    or_(
                        col(ZaloTokenRow.refreshing_until).is_(None),
                        col(ZaloTokenRow.refreshing_until) < now,
                    ),
                )
                .values(refreshing_until=now + lease)
            )
            return bool(result.rowcount == 1)

    def finish_refresh(
        self,
        name: str,
        *,
        version: int,
        access_token: str,
        refresh_token: str,
        expires_at: datetime | None,
    ) -> bool:
        """Store the new pair in place of `version`; False if it moved on meanwhile."""
        with self._store._session(write=True) as db:
            result = db.exec(
                update(ZaloTokenRow)
                .where(col(ZaloTokenRow.name) == name, col(ZaloTokenRow.version) == version)
                .values(
                    access_token=access_token,
                    refresh_token=refresh_token,
                    expires_at=expires_at,
                    version=version + 1,
                    refreshing_until=None,
                    updated_at=utcnow(),
                )
            )
            return bool(result.rowcount == 1)

    def abandon_refresh(self, name: str, *, version: int) -> None:
        """Give the lease back after a failed refresh, so another try can start at once."""
        with self._store._session(write=True) as db:
            db.exec(
                update(ZaloTokenRow)
                .where(col(ZaloTokenRow.name) == name, col(ZaloTokenRow.version) == version)
                .values(refreshing_until=None)
            )


def _pair(row: ZaloTokenRow) -> TokenPair:
    return TokenPair(
        name=row.name,
        access_token=row.access_token,
        refresh_token=row.refresh_token,
        expires_at=row.expires_at,
        version=row.version,
        refreshing_until=row.refreshing_until,
    )
