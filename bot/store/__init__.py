"""Persistence: SQLModel tables and the only code that speaks SQL.

Store                the database (SQLite by default, PostgreSQL by URL)
ConversationTx       one locked conversation inside one transaction
OutboxItem, MessageRecord, StoreStats   plain values handed out
"""

from bot.store.conversation import ConversationTx
from bot.store.engine import database_url, make_engine
from bot.store.records import (
    ConversationStatus,
    Direction,
    FlowFigures,
    MessageRecord,
    OutboxItem,
    OutboxStatus,
    RejectedStep,
    StoreStats,
)
from bot.store.store import Store

__all__ = [
    "ConversationStatus",
    "ConversationTx",
    "Direction",
    "FlowFigures",
    "MessageRecord",
    "OutboxItem",
    "OutboxStatus",
    "RejectedStep",
    "Store",
    "StoreStats",
    "database_url",
    "make_engine",
]
