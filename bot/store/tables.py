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


class MessageMediaRow(SQLModel, table=True):
    """The channel's reference to an inbound attachment (a Telegram file_id, a Zalo URL),
    so a volunteer can be shown the photo or voice itself. A table of its own, not a
    column of `message`: `create_all` adds it to an existing database."""

    __tablename__ = "message_media"

    message_id: int = Field(primary_key=True, foreign_key="message.id", ondelete="CASCADE")
    conversation_id: int = Field(foreign_key=_CONVERSATION_FK, ondelete="CASCADE", index=True)
    kind: str = Field(max_length=16)
    ref: str = Field(sa_type=Text)


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


# Handoff to volunteers (bot/store/handoff.py reads and writes these).

_TEAM_FK = "team.id"
_VOLUNTEER_FK = "volunteer.id"


class TeamRow(SQLModel, table=True):
    """A group of volunteers: a commune's youth union, a mobile team, the province."""

    __tablename__ = "team"
    __table_args__ = (UniqueConstraint("name_key", name="uq_team_name"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=128)
    # The name folded for lookups ("đoàn  phường hạ long" finds "Đoàn phường Hạ Long").
    name_key: str = Field(max_length=128)
    kind: str = Field(max_length=16)
    commune_id: str | None = Field(default=None, max_length=64, index=True)
    # The team's own volunteer group; None: the province-wide group (VOLUNTEER_CHAT_ID).
    chat_channel: str | None = Field(default=None, max_length=32)
    chat_id: str | None = Field(default=None, max_length=128)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class VolunteerRow(SQLModel, table=True):
    """A youth volunteer or coordinator, known by their messenger account."""

    __tablename__ = "volunteer"
    __table_args__ = (UniqueConstraint("channel", "user_id", name="uq_volunteer_user"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=128)
    channel: str = Field(max_length=32)
    user_id: str = Field(max_length=128)
    team_id: int = Field(foreign_key=_TEAM_FK, index=True)
    languages: str = Field(default="vi", max_length=64)  # "vi,en"
    available: bool = True
    disabled: bool = False
    role: str = Field(max_length=16)
    # hashlib.scrypt, "scrypt$n$r$p$salt$hash"; None: no console login.
    password_hash: str | None = Field(default=None, max_length=256)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_active_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class InviteRow(SQLModel, table=True):
    """A one-time code that makes a messenger account a volunteer of a team."""

    __tablename__ = "invite"

    code: str = Field(primary_key=True, max_length=32)
    team_id: int = Field(foreign_key=_TEAM_FK)
    role: str = Field(max_length=16)
    created_by: str = Field(max_length=128)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    used_by_volunteer_id: int | None = Field(default=None, foreign_key=_VOLUNTEER_FK)


class TicketRow(SQLModel, table=True):
    """A citizen waiting for, or helped by, a volunteer. `context` and notes are redacted."""

    __tablename__ = "ticket"
    __table_args__ = (
        # At most one open ticket per conversation, even when two requests race.
        Index(
            "ux_ticket_open",
            "conversation_id",
            unique=True,
            sqlite_where=text("status != 'closed'"),
            postgresql_where=text("status != 'closed'"),
        ),
        # A volunteer helps one citizen at a time: their messages go to exactly one chat.
        Index(
            "ux_ticket_volunteer_claimed",
            "volunteer_id",
            unique=True,
            sqlite_where=text("status = 'claimed'"),
            postgresql_where=text("status = 'claimed'"),
        ),
        Index("ix_ticket_status", "status", "waiting_since"),
        Index("ix_ticket_conversation", "conversation_id", "id"),
        Index("ix_ticket_team_claimed", "team_id", "claimed_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key=_CONVERSATION_FK, ondelete="CASCADE")
    # Copied from the conversation: a volunteer's reply is routed without a join.
    channel: str = Field(max_length=32)
    chat_id: str = Field(max_length=128)
    status: str = Field(max_length=16)
    reason: str = Field(max_length=64)
    flow_id: str | None = Field(default=None, max_length=64)
    step_id: str | None = Field(default=None, max_length=64)
    lang: str = Field(default="vi", max_length=16)
    commune_id: str | None = Field(default=None, max_length=64)
    # The team asked first; None: the whole province from the start.
    team_id: int | None = Field(default=None, foreign_key=_TEAM_FK)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # When the ticket last became `waiting` (opened, transferred or returned).
    waiting_since: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    claimed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # waiting_since → claimed_at of the last claim, for wait estimates.
    waited_seconds: int | None = None
    volunteer_id: int | None = Field(default=None, foreign_key=_VOLUNTEER_FK)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    close_reason: str | None = Field(default=None, max_length=16)
    last_citizen_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_volunteer_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    reposted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Where the group notifications were posted: [{"channel", "chat_id", "message_id"}].
    notified: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    rating: int | None = None
    rated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    visit_requested_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # {"flow_id", "step_id", "reason", "messages": [{"who", "text", "at"}]}, redacted.
    context: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)


class TicketNoteRow(SQLModel, table=True):
    """A volunteer's note on a ticket, or a fact the bot recorded (returned, visit)."""

    __tablename__ = "ticket_note"
    __table_args__ = (Index("ix_ticket_note_ticket", "ticket_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", ondelete="CASCADE")
    volunteer_id: int | None = Field(default=None, foreign_key=_VOLUNTEER_FK)
    kind: str = Field(default="note", max_length=16)
    text: str = Field(default="", sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class PairingRow(SQLModel, table=True):
    """The volunteer who last helped a conversation, offered first next time."""

    __tablename__ = "pairing"

    conversation_id: int = Field(primary_key=True, foreign_key=_CONVERSATION_FK, ondelete="CASCADE")
    volunteer_id: int = Field(foreign_key=_VOLUNTEER_FK, ondelete="CASCADE")
    helped_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ZaloTokenRow(SQLModel, table=True):
    """The Zalo OA access/refresh token pair in use. The refresh token is single-use:
    `version` and `refreshing_until` let one process at a time refresh it (compare and
    set), and the new pair is written as soon as Zalo returns it."""

    __tablename__ = "zalo_token"

    name: str = Field(primary_key=True, max_length=32)
    access_token: str = Field(sa_type=Text)
    refresh_token: str = Field(sa_type=Text)
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    version: int = 0
    refreshing_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


# The web console (bot/store/console.py reads and writes these).


class ConsoleSessionRow(SQLModel, table=True):
    """A signed-in console session. The cookie holds the token; only its SHA-256 is kept,
    so a copy of the database signs nobody in."""

    __tablename__ = "console_session"

    token_hash: str = Field(primary_key=True, max_length=64)
    volunteer_id: int = Field(foreign_key=_VOLUNTEER_FK, ondelete="CASCADE", index=True)
    # Every POST form of the session carries it (compared in constant time).
    csrf_token: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)


class ConsoleLoginRow(SQLModel, table=True):
    """Failed sign-ins under one login name (folded), to lock guessing out for a while.
    Keyed by the name typed, known or not, so the lock tells nobody which names exist."""

    __tablename__ = "console_login"

    login_key: str = Field(primary_key=True, max_length=128)
    failures: int = 0
    first_failed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    locked_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
