"""One conversation, locked, inside one transaction: what the message handler writes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Insert, Table, delete, insert, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session as DbSession
from sqlmodel import col

from bot.flow.events import Event
from bot.flow.session import EMPTY, Session
from bot.messages import Incoming, Outgoing
from bot.redact import redact
from bot.store.records import ConversationStatus, Direction, OutboxStatus
from bot.store.tables import ConversationRow, EventRow, MessageRow, OutboxRow, SessionRow
from bot.store.types import utcnow

_EVENT: Table = EventRow.__table__  # type: ignore[attr-defined]
_OUTBOX: Table = OutboxRow.__table__  # type: ignore[attr-defined]
_MESSAGE: Table = MessageRow.__table__  # type: ignore[attr-defined]

# The predicate of the unique index `ux_message_inbound` (bot/store/tables.py): ON
# CONFLICT must name it for the database to use a partial index as the arbiter.
_INBOUND_UNIQUE = text("direction = 'in' AND external_id IS NOT NULL")

# Event data keys that hold identifiers, not words: never redacted ("step123456" is a name).
_ID_KEYS = frozenset({"rev", "old_rev", "new_rev", "version"})


class ConversationTx:
    """The locked conversation of `Store.conversation()`. Everything done through it
    commits together when the `with` block ends, or not at all."""

    def __init__(self, db: DbSession, row: ConversationRow) -> None:
        assert row.id is not None  # the row was read back from the database
        self._db = db
        self._row = row
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
        row = self._db.get(SessionRow, self.conversation_id)
        return EMPTY if row is None else Session.from_json(row.data)

    def save_session(self, session: Session) -> None:
        now = utcnow()
        frame = session.current
        row = self._db.get(SessionRow, self.conversation_id)
        if row is None:
            row = SessionRow(conversation_id=self.conversation_id)
        row.data = session.to_json()
        row.flow_id = frame.flow_id if frame else None
        row.flow_rev = frame.rev if frame else None
        row.step_id = frame.step_id if frame else None
        row.updated_at = now
        self._db.add(row)
        self._touch(now)

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
            "payload": redact(incoming.payload) if incoming.payload is not None else None,
            "media_kind": incoming.media.kind.value if incoming.media else None,
            "created_at": now,
        }
        # One statement: the unique inbound index decides what is a duplicate, so a
        # retried update costs no extra query and no savepoint.
        inserted = self._db.connection().execute(
            self._insert_inbound(values).returning(_MESSAGE.c.id)
        )
        if inserted.first() is None:
            return False
        if self._row.status != ConversationStatus.ACTIVE:
            self._row.status = ConversationStatus.ACTIVE  # they wrote again: welcome back
        self._row.last_message_at = now
        self._touch(now)
        return True

    def _insert_inbound(self, values: dict[str, Any]) -> Insert:
        if values["external_id"] is None:
            return insert(_MESSAGE).values(values)
        dialect = self._db.get_bind().dialect.name
        upsert = pg_insert if dialect == "postgresql" else sqlite_insert
        return (
            upsert(_MESSAGE)
            .values(values)
            .on_conflict_do_nothing(
                index_elements=["channel", "external_id"], index_where=_INBOUND_UNIQUE
            )
        )

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
        self._db.connection().execute(insert(_EVENT), rows)

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
                "text": redact(message.text),
                "created_at": now,
            }
            for message in messages
        ]
        connection = self._db.connection()
        # RETURNING in parameter order (SQLAlchemy's "insertmanyvalues"): one statement,
        # and the ids still follow the order of `messages`.
        ids = connection.execute(
            insert(_OUTBOX).returning(_OUTBOX.c.id, sort_by_parameter_order=True), outbox
        )
        result = [int(row_id) for row_id in ids.scalars()]
        connection.execute(insert(_MESSAGE), transcript)
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
        self._db.exec(delete(MessageRow).where(col(MessageRow.conversation_id) == cid))
        self._db.exec(delete(SessionRow).where(col(SessionRow.conversation_id) == cid))
        self._db.exec(
            delete(OutboxRow).where(
                col(OutboxRow.conversation_id) == cid,
                col(OutboxRow.status) != OutboxStatus.SENDING,
            )
        )
        self._db.exec(update(EventRow).where(col(EventRow.conversation_id) == cid).values(data={}))
        self._row.status = ConversationStatus.FORGOTTEN
        self._touch(utcnow())

    def _touch(self, now: datetime) -> None:
        self._row.updated_at = now
        self._db.add(self._row)


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _redact_data(value: Any, key: str = "") -> Any:
    """`value` with every string redacted, except identifiers (`*_id`, revisions)."""
    if isinstance(value, dict):
        return {str(k): _redact_data(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_data(v, key) for v in value]
    if isinstance(value, str) and not (key.endswith("_id") or key in _ID_KEYS):
        return redact(value)
    return value
