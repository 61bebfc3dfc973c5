"""One conversation, locked, inside one transaction: what the message handler writes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Executable,
    Table,
    bindparam,
    delete,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session as DbSession
from sqlmodel import col

from bot.flow.events import Event
from bot.flow.session import EMPTY, Session
from bot.messages import Incoming, Outgoing
from bot.redact import redact, redact_repeated
from bot.store.prepared import Prepared
from bot.store.records import ConversationStatus, Direction, OutboxStatus
from bot.store.tables import ConversationRow, EventRow, MessageRow, OutboxRow, SessionRow
from bot.store.types import utcnow

_EVENT: Table = EventRow.__table__  # type: ignore[attr-defined]
_OUTBOX: Table = OutboxRow.__table__  # type: ignore[attr-defined]
_MESSAGE: Table = MessageRow.__table__  # type: ignore[attr-defined]
_SESSION: Table = SessionRow.__table__  # type: ignore[attr-defined]
_CONVERSATION: Table = ConversationRow.__table__  # type: ignore[attr-defined]

# The predicate of the unique index `ux_message_inbound` (bot/store/tables.py): ON
# CONFLICT must name it for the database to use a partial index as the arbiter.
_INBOUND_UNIQUE = text("direction = 'in' AND external_id IS NOT NULL")

# The statements of every message, built once and run as `Prepared` (on SQLite, on the
# driver's cursor: bot/store/prepared.py). Parameters are bound at execution.
_LOAD_SESSION = Prepared(
    select(_SESSION.c.data).where(_SESSION.c.conversation_id == bindparam("conversation_id"))
)
_WRITE_BACK = Prepared(
    update(_CONVERSATION)
    .where(_CONVERSATION.c.id == bindparam("row_id"))
    .values(
        {
            name: bindparam(name)
            for name in ("user_id", "lang", "status", "outbox_seq", "last_message_at", "updated_at")
        }
    )
)
_SESSION_FIELDS = ("data", "flow_id", "flow_rev", "step_id", "updated_at")


def _save_session(postgres: bool) -> Executable:
    # One upsert: the conversation is locked, so nobody else writes this row now.
    if postgres:
        pg = pg_insert(_SESSION)
        return pg.on_conflict_do_update(
            index_elements=["conversation_id"],
            set_={name: pg.excluded[name] for name in _SESSION_FIELDS},
        )
    lite = sqlite_insert(_SESSION)
    return lite.on_conflict_do_update(
        index_elements=["conversation_id"],
        set_={name: lite.excluded[name] for name in _SESSION_FIELDS},
    )


_INBOUND_KEYS = (
    "conversation_id",
    "direction",
    "channel",
    "external_id",
    "text",
    "payload",
    "media_kind",
    "created_at",
)


def _insert_inbound(postgres: bool) -> Executable:
    upsert = pg_insert(_MESSAGE) if postgres else sqlite_insert(_MESSAGE)
    return upsert.on_conflict_do_nothing(
        index_elements=["channel", "external_id"], index_where=_INBOUND_UNIQUE
    ).returning(_MESSAGE.c.id)


_SAVE_SESSION = {
    "sqlite": Prepared(_save_session(False), ("conversation_id", *_SESSION_FIELDS)),
    "postgresql": Prepared(_save_session(True), ("conversation_id", *_SESSION_FIELDS)),
}
_INSERT_INBOUND = {
    "sqlite": Prepared(_insert_inbound(False), _INBOUND_KEYS),
    "postgresql": Prepared(_insert_inbound(True), _INBOUND_KEYS),
}
_INSERT_INBOUND_NO_ID = Prepared(insert(_MESSAGE).returning(_MESSAGE.c.id), _INBOUND_KEYS)
_INSERT_EVENTS = Prepared(
    insert(_EVENT),
    ("conversation_id", "kind", "flow_id", "step_id", "completed", "data", "created_at"),
)
_OUTBOX_KEYS = (
    "conversation_id",
    "channel",
    "chat_id",
    "seq",
    "text",
    "buttons",
    "status",
    "attempts",
    "next_attempt_at",
    "created_at",
)
_INSERT_OUTBOX = Prepared(
    insert(_OUTBOX).returning(_OUTBOX.c.id, sort_by_parameter_order=True), _OUTBOX_KEYS
)
_INSERT_TRANSCRIPT = Prepared(
    insert(_MESSAGE), ("conversation_id", "direction", "channel", "text", "created_at")
)

# Event data keys that hold identifiers, not words: never redacted ("step123456" is a name).
_ID_KEYS = frozenset({"rev", "old_rev", "new_rev", "version"})


@dataclass
class ConversationState:
    """The locked conversation row, read once with Core: the transaction changes these
    fields and `Store.conversation()` writes them back in one UPDATE before it commits
    (an ORM row and its flush cost more than the rest of a conversation's statements)."""

    id: int
    channel: str
    chat_id: str
    user_id: str | None
    lang: str | None
    status: str
    outbox_seq: int
    last_message_at: datetime | None
    updated_at: datetime
    dirty: bool = False

    @classmethod
    def of(cls, row: Sequence[Any]) -> ConversationState:
        """From the columns `CONVERSATION_STATE` names, in that order."""
        return cls(*row)


# The conversation's columns a transaction reads, in `ConversationState`'s order.
CONVERSATION_STATE = (
    "id",
    "channel",
    "chat_id",
    "user_id",
    "lang",
    "status",
    "outbox_seq",
    "last_message_at",
    "updated_at",
)


class ConversationTx:
    """The locked conversation of `Store.conversation()`. Everything done through it
    commits together when the `with` block ends, or not at all."""

    def __init__(self, connection: Connection, row: ConversationState) -> None:
        # A Core connection, not an ORM Session: nothing here uses the ORM's unit of
        # work, and opening and committing a Session cost a tenth of a message's CPU.
        self.connection = connection
        self._orm: DbSession | None = None
        self._row = row
        self._dialect = connection.dialect.name
        self.conversation_id: int = row.id
        self.channel: str = row.channel
        self.chat_id: str = row.chat_id

    @property
    def lang(self) -> str | None:
        return self._row.lang

    @property
    def status(self) -> ConversationStatus:
        return ConversationStatus(self._row.status)

    def load_session(self) -> Session:
        """The saved session, or `EMPTY` when there is none."""
        data = _LOAD_SESSION.scalar(self.connection, {"conversation_id": self.conversation_id})
        return EMPTY if data is None else Session.from_json(data)

    def save_session(self, session: Session) -> None:
        now = utcnow()
        frame = session.current
        values = {
            "conversation_id": self.conversation_id,
            "data": session.to_json(),
            "flow_id": frame.flow_id if frame else None,
            "flow_rev": frame.rev if frame else None,
            "step_id": frame.step_id if frame else None,
            "updated_at": now,
        }
        _SAVE_SESSION[self._dialect].rows(self.connection, values)
        self._touch(now)

    def orm(self) -> DbSession:
        """An ORM session inside this transaction, for the help desk's tables; made when
        first asked. It never commits or ends the transaction itself."""
        if self._orm is None:
            self._orm = DbSession(
                bind=self.connection,
                expire_on_commit=False,
                join_transaction_mode="rollback_only",
            )
        return self._orm

    def flushed_connection(self) -> Connection:
        """The connection, once what the ORM session changed is written (Core queries
        then see it)."""
        if self._orm is not None:
            self._orm.flush()
        return self.connection

    def write_back(self) -> None:
        """Write the conversation row's changed fields and what the ORM session holds
        (`Store.conversation()` calls it at the end of the block, in the transaction)."""
        connection = self.flushed_connection()
        row = self._row
        if not row.dirty:
            return
        values = {
            "row_id": row.id,
            "user_id": row.user_id,
            "lang": row.lang,
            "status": row.status,
            "outbox_seq": row.outbox_seq,
            "last_message_at": row.last_message_at,
            "updated_at": row.updated_at,
        }
        _WRITE_BACK.rows(connection, values)
        row.dirty = False

    def close(self) -> None:
        """Let go of the ORM session, if one was made (the transaction ends apart)."""
        if self._orm is not None:
            self._orm.close()
            self._orm = None

    def record_inbound(self, incoming: Incoming) -> bool:
        """Store the citizen's message, redacted. False when this channel's message id
        was stored before: a duplicate update, which the caller must then ignore."""
        now = utcnow()
        values = {
            "conversation_id": self.conversation_id,
            "direction": Direction.IN.value,
            "channel": self.channel,
            "external_id": incoming.message_id,
            "text": redact(incoming.text),
            "payload": redact_repeated(incoming.payload) if incoming.payload is not None else None,
            "media_kind": incoming.media.kind.value if incoming.media else None,
            "created_at": now,
        }
        # One statement: the unique inbound index decides what is a duplicate, so a
        # retried update costs no extra query and no savepoint.
        statement = _INSERT_INBOUND_NO_ID
        if incoming.message_id is not None:
            statement = _INSERT_INBOUND[self._dialect]
        if statement.first(self.connection, values) is None:
            return False
        if self._row.status != ConversationStatus.ACTIVE:
            self._row.status = ConversationStatus.ACTIVE.value  # they wrote again: welcome back
        self._row.last_message_at = now
        self._touch(now)
        return True

    def record_events(self, events: Sequence[Event]) -> None:
        if not events:
            return
        now = utcnow()
        rows: list[dict[str, Any]] = []
        for event in events:
            data = _redact_data(event.data())
            completed = data.get("completed")
            rows.append(
                {
                    "conversation_id": self.conversation_id,
                    "kind": event.kind,
                    "flow_id": _str_or_none(data.get("flow_id")),
                    "step_id": _str_or_none(data.get("step_id")),
                    "completed": completed if isinstance(completed, bool) else None,
                    "data": data,
                    "created_at": now,
                }
            )
        # One Core executemany, not an ORM flush a row: the rows are never read back
        # here, and the ORM's unit of work was most of a stored step's cost.
        _INSERT_EVENTS.many(self.connection, rows)

    def queue_outgoing(self, messages: Sequence[Outgoing]) -> list[int]:
        """Put `messages` in the outbox, in order, and in the transcript (redacted).
        Returns the outbox ids."""
        if not messages:
            return []
        now = utcnow()
        first_seq = self._row.outbox_seq + 1
        self._row.outbox_seq += len(messages)
        outbox = [
            {
                "conversation_id": self.conversation_id,
                "channel": self.channel,
                "chat_id": message.chat_id,
                "seq": first_seq + i,
                "text": message.text,
                "buttons": [
                    {"label": b.label, "payload": b.payload, "url": b.url} for b in message.buttons
                ],
                "status": OutboxStatus.PENDING.value,
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for i, message in enumerate(messages)
        ]
        transcript = [
            {
                "conversation_id": self.conversation_id,
                "direction": Direction.OUT.value,
                "channel": self.channel,
                "text": redact_repeated(message.text),
                "created_at": now,
            }
            for message in messages
        ]
        connection = self.connection
        # The ids in the order of `messages`.
        result = [int(row_id) for (row_id,) in _INSERT_OUTBOX.returning_many(connection, outbox)]
        _INSERT_TRANSCRIPT.many(connection, transcript)
        self._row.last_message_at = now
        self._touch(now)
        return result

    def set_lang(self, lang: str) -> None:
        self._row.lang = lang
        self._touch(utcnow())

    def forget(self) -> None:
        """Delete what the citizen said and what the bot knows of them: messages,
        session, undelivered and delivered outbox rows, event data. Events keep their
        kind, flow, step and time, so the figures stay right. A message being sent
        right now (`sending`) is left to its sender."""
        cid = self.conversation_id
        self.connection.execute(delete(MessageRow).where(col(MessageRow.conversation_id) == cid))
        self.connection.execute(delete(SessionRow).where(col(SessionRow.conversation_id) == cid))
        self.connection.execute(
            delete(OutboxRow).where(
                col(OutboxRow.conversation_id) == cid,
                col(OutboxRow.status) != OutboxStatus.SENDING,
            )
        )
        self.connection.execute(
            update(EventRow).where(col(EventRow.conversation_id) == cid).values(data={})
        )
        self._row.status = ConversationStatus.FORGOTTEN.value
        self._touch(utcnow())

    def _touch(self, now: datetime) -> None:
        self._row.updated_at = now
        self._row.dirty = True


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _redact_data(value: Any, key: str = "") -> Any:
    """`value` with every string redacted, except identifiers (`*_id`, revisions)."""
    if isinstance(value, dict):
        return {str(k): _redact_data(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_data(v, key) for v in value]
    if isinstance(value, str) and not (key.endswith("_id") or key in _ID_KEYS):
        return redact_repeated(value)
    return value
