"""Prepared statements (bot/store/prepared.py) store and read values exactly as
`Connection.execute` does, on SQLite (the driver's cursor) and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from bot.errors import StoreError
from bot.store import Store
from bot.store.prepared import Prepared
from bot.store.tables import ConversationRow, OutboxRow

_CONVERSATION = ConversationRow.__table__  # type: ignore[attr-defined]
_OUTBOX = OutboxRow.__table__  # type: ignore[attr-defined]
WHEN = datetime(2026, 11, 30, 9, 15, 1, 250, tzinfo=UTC)

_NEW_CONVERSATION = Prepared(
    insert(_CONVERSATION).returning(_CONVERSATION.c.id),
    ("channel", "chat_id", "status", "outbox_seq", "created_at", "updated_at"),
)
# Every column but the id and those only a send sets.
_OUTBOX_KEYS = tuple(
    c.name for c in _OUTBOX.c if c.name not in {"id", "last_error", "external_id", "sent_at"}
)
_NEW_OUTBOX = Prepared(
    insert(_OUTBOX).returning(_OUTBOX.c.id, sort_by_parameter_order=True), _OUTBOX_KEYS
)
_READ_OUTBOX = Prepared(
    select(_OUTBOX.c.id, _OUTBOX.c.buttons, _OUTBOX.c.next_attempt_at, _OUTBOX.c.sent_at)
    .where(_OUTBOX.c.conversation_id == bindparam("cid"), _OUTBOX.c.status != "sent")
    .order_by(_OUTBOX.c.seq)
    .limit(2)
)
_SEND = Prepared(
    update(_OUTBOX)
    .where(_OUTBOX.c.id == bindparam("row_id"))
    .values(status="sent", attempts=_OUTBOX.c.attempts + 1, last_error=None)
)


def _conversation(store: Store, chat_id: str = "c1") -> int:
    values = {
        "channel": "telegram",
        "chat_id": chat_id,
        "status": "active",
        "outbox_seq": 0,
        "created_at": WHEN,
        "updated_at": WHEN,
    }
    with store._engine.begin() as connection:
        return int(_NEW_CONVERSATION.scalar(connection, values))


def _outbox(cid: int, seq: int) -> dict[str, object]:
    return {
        "conversation_id": cid,
        "channel": "telegram",
        "chat_id": "c1",
        "seq": seq,
        "text": f"tin {seq}",
        "buttons": [{"label": "Có", "payload": f"c:f:s:{seq}", "url": None}],
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": WHEN,
        "created_at": WHEN,
    }


def test_values_round_trip_like_sqlalchemy(store: Store) -> None:
    cid = _conversation(store)
    with store._engine.begin() as connection:
        ids = [
            row_id
            for (row_id,) in _NEW_OUTBOX.returning_many(
                connection, [_outbox(cid, 1), _outbox(cid, 2), _outbox(cid, 3)]
            )
        ]
        assert ids == sorted(ids) and len(set(ids)) == 3  # in the order given
        _SEND.rows(connection, {"row_id": ids[0]})
        read = _READ_OUTBOX.rows(connection, {"cid": cid})
        # What SQLAlchemy itself reads back is the same.
        plain = connection.execute(
            select(_OUTBOX.c.id, _OUTBOX.c.buttons, _OUTBOX.c.next_attempt_at, _OUTBOX.c.sent_at)
            .where(_OUTBOX.c.id.in_(ids[1:]))
            .order_by(_OUTBOX.c.seq)
        ).all()
        sent = connection.execute(
            select(_OUTBOX.c.status, _OUTBOX.c.attempts, _OUTBOX.c.last_error).where(
                _OUTBOX.c.id == ids[0]
            )
        ).one()
    # Fixed values (the literal status, LIMIT) and JSON, aware datetimes, NULL.
    assert read == [tuple(row) for row in plain]
    assert read == [
        (ids[1], [{"label": "Có", "payload": "c:f:s:2", "url": None}], WHEN, None),
        (ids[2], [{"label": "Có", "payload": "c:f:s:3", "url": None}], WHEN, None),
    ]
    assert tuple(sent) == ("sent", 1, None)


def test_many_inserts_every_row(store: Store) -> None:
    cid = _conversation(store)
    with store._engine.begin() as connection:
        Prepared(insert(_OUTBOX), _OUTBOX_KEYS).many(connection, [_outbox(cid, n) for n in (1, 2)])
        Prepared(insert(_OUTBOX), _OUTBOX_KEYS).many(connection, [])
    assert store.outbox_depth() == 2


def test_a_missing_parameter_is_an_error_not_a_default(store: Store) -> None:
    cid = _conversation(store)
    row = _outbox(cid, 1)
    del row["attempts"]
    with store._engine.begin() as connection, pytest.raises(KeyError, match="attempts"):
        _NEW_OUTBOX.rows(connection, row)


def test_a_driver_error_is_sqlalchemy_s(store: Store) -> None:
    """A broken constraint raises SQLAlchemy's IntegrityError (the store's callers turn
    it into StoreError) and the transaction rolls back."""
    cid = _conversation(store)
    with pytest.raises(IntegrityError), store._engine.begin() as connection:
        _NEW_OUTBOX.rows(connection, _outbox(cid, 1))
        _NEW_OUTBOX.rows(connection, _outbox(cid, 1))  # the same seq twice
    assert store.outbox_depth() == 0


def test_the_store_reports_a_driver_error_as_store_error(store: Store) -> None:
    _conversation(store, "c1")
    with pytest.raises(StoreError), store.conversation(channel="telegram", chat_id="c1") as tx:
        _NEW_CONVERSATION.rows(
            tx.connection,
            {
                "channel": "telegram",
                "chat_id": "c1",  # taken: uq_conversation_chat
                "status": "active",
                "outbox_seq": 0,
                "created_at": WHEN,
                "updated_at": WHEN,
            },
        )


def test_it_begins_a_transaction_when_none_is_open(store: Store) -> None:
    """Like `Connection.execute`: the write is in a transaction, gone unless committed."""
    values = {
        "channel": "telegram",
        "chat_id": "c9",
        "status": "active",
        "outbox_seq": 0,
        "created_at": WHEN,
        "updated_at": WHEN,
    }
    with store._engine.connect() as connection:
        _NEW_CONVERSATION.rows(connection, values)
        assert connection.in_transaction()
    with store._engine.connect() as connection:
        assert connection.execute(select(_CONVERSATION.c.id)).all() == []
        _NEW_CONVERSATION.rows(connection, values)
        connection.commit()
    with store._engine.connect() as connection:
        assert len(connection.execute(select(_CONVERSATION.c.id)).all()) == 1
