"""The citizen's message a reply answers: the newest inbound message of a conversation
with the channel's own id (Zalo's OA API wants it on replies; see bot/channels/zalo.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, select

from bot.store.records import Direction
from bot.store.store import Store
from bot.store.tables import MessageRow

# Ids we make up for events that carry none (a Zalo follow): nothing to reply to.
_SYNTHETIC_PREFIXES = ("follow:",)


@dataclass(frozen=True)
class InboundRef:
    """The channel's id of a citizen's message and when we received it."""

    message_id: str
    received_at: datetime


class LastInbound:
    """`last_inbound(conversation_id)`: the newest inbound message that has a channel id,
    or None (none yet, or forgotten after /stop). Sync; call it from a thread."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def __call__(self, conversation_id: int) -> InboundRef | None:
        query = (
            select(MessageRow.external_id, MessageRow.created_at)
            .where(
                MessageRow.conversation_id == conversation_id,
                MessageRow.direction == Direction.IN.value,
                col(MessageRow.external_id).is_not(None),
            )
            .order_by(col(MessageRow.id).desc())
            .limit(5)  # a follow or two may sit on top of the last real message
        )
        with self._store._session(write=False) as db:
            for external_id, created_at in db.exec(query):
                if external_id and not external_id.startswith(_SYNTHETIC_PREFIXES):
                    return InboundRef(external_id, created_at)
        return None
