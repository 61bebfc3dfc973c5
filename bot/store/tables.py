"""The tables. Only bot/store/ imports this module; others get records.

Times are timezone-aware UTC (`UTCDateTime`). JSON columns hold plain dicts and lists.
Message text and event data are redacted before they are written; outbox text is the
real text until it is delivered, then redacted too.
"""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from bot.store.records import ConversationStatus, OutboxStatus
from bot.store.types import UTCDateTime, utcnow

_CONVERSATION_FK = "conversation.id"


class ConversationRow(SQLModel, table=True):
    """One chat on one channel; the row a conversation transaction locks."""

    __tablename__ = "conversation"
    __table_args__ = (UniqueConstraint("channel", "chat_id", name="uq_conversation_chat"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=32)
    chat_id: str = Field(max_length=128)
    user_id: str | None = Field(default=None, max_length=128)
    lang: str | None = Field(default=None, max_length=16)
    status: str = Field(default=ConversationStatus.ACTIVE, max_length=16)
    # The last outbox seq handed out; kept here so it keeps growing after `forget`.
    outbox_seq: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_message_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)


class SessionRow(SQLModel, table=True):
    """The engine's session of one conversation, with where it stands for queries."""

    __tablename__ = "conversation_session"
    __table_args__ = (Index("ix_conversation_session_step", "flow_id", "step_id"),)

    conversation_id: int = Field(primary_key=True, foreign_key=_CONVERSATION_FK, ondelete="CASCADE")
    data: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    flow_id: str | None = Field(default=None, max_length=64)
    flow_rev: str | None = Field(default=None, max_length=64)
    step_id: str | None = Field(default=None, max_length=64)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class MessageRow(SQLModel, table=True):
    """A message in or out, text redacted."""

    __tablename__ = "message"
    __table_args__ = (
        # The final guard against handling one update twice (invariant 3).
        Index(
            "ux_message_inbound",
            "channel",
            "external_id",
            unique=True,
            sqlite_where=text("direction = 'in' AND external_id IS NOT NULL"),
            postgresql_where=text("direction = 'in' AND external_id IS NOT NULL"),
        ),
        Index("ix_message_conversation", "conversation_id", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key=_CONVERSATION_FK, ondelete="CASCADE")
    direction: str = Field(max_length=3)
    channel: str = Field(max_length=32)
    external_id: str | None = Field(default=None, max_length=128)
    text: str = Field(default="", sa_type=Text)
    payload: str | None = Field(default=None, max_length=256)
    media_kind: str | None = Field(default=None, max_length=16)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class EventRow(SQLModel, table=True):
    """An engine event; `data` redacted and emptied by `forget`, the rest kept for stats."""

    __tablename__ = "event"
    __table_args__ = (
        Index("ix_event_kind_step", "kind", "flow_id", "step_id"),
        Index("ix_event_conversation", "conversation_id", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key=_CONVERSATION_FK, ondelete="CASCADE")
    kind: str = Field(max_length=48)
    flow_id: str | None = Field(default=None, max_length=64)
    step_id: str | None = Field(default=None, max_length=64)
    # FlowEnded.completed, kept out of `data` so it survives `forget`.
    completed: bool | None = None
    data: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)


class OutboxRow(SQLModel, table=True):
    """A message to deliver; `seq` orders the messages of one conversation."""

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("conversation_id", "seq", name="uq_outbox_seq"),
        Index("ix_outbox_due", "channel", "status", "next_attempt_at"),
        Index("ix_outbox_chat", "channel", "chat_id", "id"),
        Index("ix_outbox_head", "conversation_id", "status", "seq"),
    )

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key=_CONVERSATION_FK, ondelete="CASCADE")
    channel: str = Field(max_length=32)
    chat_id: str = Field(max_length=128)
    seq: int
    text: str = Field(sa_type=Text)
    buttons: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    status: str = Field(default=OutboxStatus.PENDING, max_length=16)
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, sa_type=Text)
    external_id: str | None = Field(default=None, max_length=128)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class FlowSnapshotRow(SQLModel, table=True):
    """A flow as it was at one revision, so running conversations can keep it."""

    __tablename__ = "flow_snapshot"

    flow_id: str = Field(primary_key=True, max_length=64)
    rev: str = Field(primary_key=True, max_length=64)
    version: int
    data: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
