"""Plain values the store hands out: no ORM objects leave bot/store/."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TypedDict

from bot.messages import Button


class ConversationStatus(StrEnum):
    ACTIVE = "active"
    BLOCKED = "blocked"  # the citizen blocked the bot; cleared by their next message
    FORGOTTEN = "forgotten"  # the citizen asked to be forgotten; cleared likewise


class Direction(StrEnum):
    IN = "in"
    OUT = "out"


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


@dataclass(frozen=True)
class OutboxItem:
    """One message waiting for (or past) delivery. `text` is the real text until it is
    sent or failed; after that it is kept redacted."""

    id: int
    conversation_id: int
    channel: str
    chat_id: str
    seq: int
    text: str
    buttons: tuple[Button, ...]
    status: OutboxStatus
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    external_id: str | None
    created_at: datetime
    sent_at: datetime | None


@dataclass(frozen=True)
class MessageRecord:
    """One stored message of a transcript, text already redacted."""

    id: int
    conversation_id: int
    direction: Direction
    channel: str
    external_id: str | None
    text: str
    payload: str | None
    media_kind: str | None
    created_at: datetime


class FlowFigures(TypedDict):
    started: int
    completed: int


class RejectedStep(TypedDict):
    flow_id: str
    step_id: str
    count: int


class StoreStats(TypedDict):
    """Impact figures; JSON-ready."""

    conversations: int
    messages_in: int
    messages_out: int
    flows: dict[str, FlowFigures]  # by flow id
    handoffs_requested: int
    rejected_steps: list[RejectedStep]  # where answers were refused most, top 10
