"""One conversation, locked, inside one transaction: what the message handler writes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session as DbSession
from sqlmodel import col, select

from bot.flow.events import Event
from bot.flow.session import EMPTY, Session
from bot.messages import Incoming, Outgoing
from bot.redact import redact
from bot.store.records import ConversationStatus, Direction, OutboxStatus
from bot.store.tables import ConversationRow, EventRow, MessageRow, OutboxRow, SessionRow
from bot.store.types import utcnow

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
        if incoming.message_id is not None and self._inbound_seen(incoming.message_id):
            return False
        now = utcnow()
        row = MessageRow(
            conversation_id=self.conversation_id,
            direction=Direction.IN,
            channel=self.channel,
            external_id=incoming.message_id,
            text=redact(incoming.text),
            payload=redact(incoming.payload) if incoming.payload is not None else None,
            media_kind=incoming.media.kind.value if incoming.media else None,
            created_at=now,
        )
        try:
            # The unique index is the last word when a duplicate slipped past the check
            # (it cannot while the conversation is locked, but a bug elsewhere might).
            with self._db.begin_nested():
                self._db.add(row)
        except IntegrityError:
            return False
        if self._row.status != ConversationStatus.ACTIVE:
            self._row.status = ConversationStatus.ACTIVE  # they wrote again: welcome back
        self._row.last_message_at = now
        self._touch(now)
        return True

    def record_events(self, events: Sequence[Event]) -> None:
        now = utcnow()
        for event in events:
            data = _redact_data(event.data())
            completed = data.get("completed")
            self._db.add(
                EventRow(
                    conversation_id=self.conversation_id,
                    kind=event.kind,
                    flow_id=_str_or_none(data.get("flow_id")),
                    step_id=_str_or_none(data.get("step_id")),
                    completed=completed if isinstance(completed, bool) else None,
                    data=data,
                    created_at=now,
                )
            )
        self._db.flush()

    def queue_outgoing(self, messages: Sequence[Outgoing]) -> list[int]:
        """Put `messages` in the outbox, in order, and in the transcript (redacted).
        Returns the outbox ids."""
        now = utcnow()
        ids: list[int] = []
        for message in messages:
            self._row.outbox_seq += 1
            item = OutboxRow(
                conversation_id=self.conversation_id,
                channel=self.channel,
                chat_id=message.chat_id,
                seq=self._row.outbox_seq,
                text=message.text,
                buttons=[
                    {"label": b.label, "payload": b.payload, "url": b.url} for b in message.buttons
                ],
                status=OutboxStatus.PENDING,
                next_attempt_at=now,
                created_at=now,
            )
            self._db.add(item)
            self._db.add(
                MessageRow(
                    conversation_id=self.conversation_id,
                    direction=Direction.OUT,
                    channel=self.channel,
                    text=redact(message.text),
                    created_at=now,
                )
            )
            # One flush a message keeps outbox ids in the order of `messages`.
            self._db.flush()
            assert item.id is not None
            ids.append(item.id)
        if messages:
            self._row.last_message_at = now
            self._touch(now)
        return ids

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

    def _inbound_seen(self, external_id: str) -> bool:
        query = (
            select(MessageRow.id)
            .where(
                MessageRow.channel == self.channel,
                MessageRow.external_id == external_id,
                MessageRow.direction == Direction.IN,
            )
            .limit(1)
        )
        return self._db.exec(query).first() is not None

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
