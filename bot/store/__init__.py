"""Persistence: SQLModel tables and the only code that speaks SQL.

Store                the database (SQLite by default, PostgreSQL by URL)
ConversationTx       one locked conversation inside one transaction
HandoffStore         tickets, volunteers, teams, invites (bot/handoff.py has the rules)
OutboxItem, MessageRecord, StoreStats   plain values handed out
ZaloTokenStore       the Zalo OA token pair, refreshed by one process at a time
"""

from bot.store.conversation import ConversationTx
from bot.store.engine import database_url, make_engine
from bot.store.handoff import (
    CloseReason,
    ContextLine,
    HandoffStore,
    HandoffTx,
    Invite,
    NewTicket,
    Note,
    NoteKind,
    NotifiedPost,
    Pairing,
    Role,
    Team,
    TeamKind,
    Ticket,
    TicketStatus,
    Volunteer,
)
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
from bot.store.zalo_tokens import TokenPair, ZaloTokenStore

__all__ = [
    "CloseReason",
    "ContextLine",
    "ConversationStatus",
    "ConversationTx",
    "Direction",
    "FlowFigures",
    "HandoffStore",
    "HandoffTx",
    "Invite",
    "MessageRecord",
    "NewTicket",
    "Note",
    "NoteKind",
    "NotifiedPost",
    "OutboxItem",
    "OutboxStatus",
    "Pairing",
    "RejectedStep",
    "Role",
    "Store",
    "StoreStats",
    "Team",
    "TeamKind",
    "Ticket",
    "TicketStatus",
    "TokenPair",
    "Volunteer",
    "ZaloTokenStore",
    "database_url",
    "make_engine",
]
