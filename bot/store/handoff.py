"""Storage of the handoff to volunteers: teams, volunteers, invites, tickets, notes, pairing.

    HandoffStore(store)          on the Store's engine; Store's own API is unchanged
      .begin()                   a transaction of its own → HandoffTx (commits at the end)
      .begin(write=False)        a read-only one (never waits for a writer)
      .within(conversation_tx)   a HandoffTx inside a `Store.conversation()` transaction,
                                 so a ticket and the outbox rows it causes commit together

HandoffTx holds the SQL; bot/handoff.py holds the rules (who may claim, close, …). The
changes that may race are compare-and-set UPDATEs (`claim`: … WHERE status = 'waiting')
or inserts guarded by a unique index, so the first of two wins on SQLite and PostgreSQL
alike. Text that people wrote (ticket context, notes) is redacted before it is written.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Connection, Table, and_, bindparam, delete, or_, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session as DbSession
from sqlmodel import SQLModel, col, select

from bot.errors import StoreError
from bot.redact import redact
from bot.store.conversation import ConversationTx
from bot.store.prepared import Prepared
from bot.store.records import Direction, OutboxStatus
from bot.store.store import Store, _errors, _insert_ignore
from bot.store.tables import (
    ConversationRow,
    InviteRow,
    MessageMediaRow,
    MessageRow,
    OutboxRow,
    PairingRow,
    TeamRow,
    TicketNoteRow,
    TicketRow,
    VolunteerRow,
)

__all__ = [
    "CloseReason",
    "ContextLine",
    "HandoffStore",
    "HandoffTx",
    "Invite",
    "NewTicket",
    "Note",
    "NoteKind",
    "NotifiedPost",
    "Pairing",
    "Role",
    "Team",
    "TeamKind",
    "Ticket",
    "TicketStatus",
    "Volunteer",
]


class TeamKind(StrEnum):
    COMMUNE = "commune"  # a commune or ward's youth union, at its service centre
    MOBILE = "mobile"  # a mobile team (islands, border villages)
    PROVINCE = "province"


class Role(StrEnum):
    VOLUNTEER = "volunteer"
    COORDINATOR = "coordinator"  # may claim, close and transfer any ticket


class TicketStatus(StrEnum):
    WAITING = "waiting"
    CLAIMED = "claimed"
    CLOSED = "closed"


class CloseReason(StrEnum):
    DONE = "done"  # the volunteer helped
    TRANSFERRED = "transferred"  # handed on outside the bot (service centre, phone)
    BLOCKED = "blocked"  # the citizen blocked the bot
    ABANDONED = "abandoned"  # the citizen cancelled, or both sides went quiet
    EXPIRED = "expired"  # nobody claimed it in time


class NoteKind(StrEnum):
    NOTE = "note"  # written by a volunteer
    TRANSFER = "transfer"  # a volunteer handed the ticket back
    RETURNED = "returned"  # the bot handed it back: the volunteer went silent
    VISIT = "visit"  # a visit in person was asked for
    UNDELIVERED = "undelivered"  # a reply could not reach the citizen (Zalo's window)
    CLOSED = "closed"


@dataclass(frozen=True)
class Team:
    id: int
    name: str
    kind: TeamKind
    commune_id: str | None
    chat_channel: str | None  # None: post to the province-wide group
    chat_id: str | None
    created_at: datetime


@dataclass(frozen=True)
class Volunteer:
    id: int
    name: str
    channel: str
    user_id: str
    team_id: int
    languages: tuple[str, ...]
    available: bool
    disabled: bool
    role: Role
    has_password: bool
    created_at: datetime
    last_active_at: datetime | None

    @property
    def is_coordinator(self) -> bool:
        return self.role == Role.COORDINATOR


@dataclass(frozen=True)
class Invite:
    code: str
    team_id: int
    role: Role
    created_by: str
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None
    used_by_volunteer_id: int | None


@dataclass(frozen=True)
class NotifiedPost:
    """A message about a ticket in a volunteer group, to edit when the ticket changes."""

    channel: str
    chat_id: str
    message_id: str


@dataclass(frozen=True)
class ContextLine:
    """One message of what happened before the handoff; `who`: citizen, bot or volunteer."""

    who: str
    text: str
    at: datetime | None = None
    # An attachment: its kind ("photo") and the channel's reference (file_id, URL).
    media_kind: str | None = None
    media_ref: str | None = None


@dataclass(frozen=True)
class Ticket:
    """A citizen's request for a volunteer. `context` is redacted."""

    id: int
    conversation_id: int
    channel: str
    chat_id: str
    status: TicketStatus
    reason: str
    flow_id: str | None
    step_id: str | None
    lang: str
    commune_id: str | None
    team_id: int | None
    created_at: datetime
    waiting_since: datetime
    claimed_at: datetime | None
    waited_seconds: int | None
    volunteer_id: int | None
    closed_at: datetime | None
    close_reason: CloseReason | None
    last_citizen_at: datetime | None
    last_volunteer_at: datetime | None
    reposted_at: datetime | None
    notified: tuple[NotifiedPost, ...]
    rating: int | None
    rated_at: datetime | None
    visit_requested_at: datetime | None
    context: tuple[ContextLine, ...]

    @property
    def is_open(self) -> bool:
        return self.status != TicketStatus.CLOSED


@dataclass(frozen=True)
class NewTicket:
    """What `HandoffTx.add_ticket` needs; the chat comes from the conversation."""

    conversation_id: int
    reason: str
    flow_id: str | None
    step_id: str | None
    lang: str
    commune_id: str | None
    team_id: int | None
    context: Sequence[ContextLine]


@dataclass(frozen=True)
class Note:
    id: int
    ticket_id: int
    volunteer_id: int | None
    kind: NoteKind
    text: str
    created_at: datetime


@dataclass(frozen=True)
class Pairing:
    conversation_id: int
    volunteer_id: int
    helped_at: datetime


_VOLUNTEER: Table = VolunteerRow.__table__  # type: ignore[attr-defined]
_TICKET: Table = TicketRow.__table__  # type: ignore[attr-defined]
# Asked of every message, built once (building a statement cost more than running it).
_IS_VOLUNTEER = Prepared(
    sa_select(_VOLUNTEER.c.id)
    .where(
        _VOLUNTEER.c.channel == bindparam("channel"),
        _VOLUNTEER.c.user_id == bindparam("user_id"),
    )
    .limit(1)
)
_HAS_OPEN_TICKET = Prepared(
    sa_select(_TICKET.c.id)
    .where(
        _TICKET.c.conversation_id == bindparam("cid"),
        _TICKET.c.status != TicketStatus.CLOSED.value,
    )
    .limit(1)
)


class HandoffStore:
    """The handoff tables, on the same database (engine, pool) as `store`."""

    def __init__(self, store: Store) -> None:
        # Same package: the engines are shared on purpose, so SQLite keeps one writer.
        self._engine = store._engine
        self._reader = store._reader
        self._postgres = store._postgres

    @contextmanager
    def begin(self, *, write: bool = True) -> Iterator[HandoffTx]:
        """A transaction of its own: commits when the block ends, rolls back on an error.

        Do not open one inside `Store.conversation()`: SQLite has one writer, and it is
        the conversation; use `within(tx)` there."""
        engine = self._engine if write else self._reader
        with _errors(), DbSession(engine, expire_on_commit=False) as db, db.begin():
            yield HandoffTx(lambda: db, lambda: _flushed(db), postgres=self._postgres)

    def is_volunteer_account(
        self, *, channel: str, user_id: str, tx: ConversationTx | None = None
    ) -> bool:
        """Whether a messenger account is a volunteer's (disabled or not): asked of every
        private message, so one Core query, without an ORM session (inside `tx` when
        given)."""
        account = {"channel": channel, "user_id": user_id}
        if tx is not None:
            return _IS_VOLUNTEER.first(tx.connection, account) is not None
        with _errors(), self._reader.connect() as connection:
            return _IS_VOLUNTEER.first(connection, account) is not None

    def within(self, tx: ConversationTx) -> HandoffTx:
        """The handoff tables inside the conversation's transaction (and its lock)."""
        return HandoffTx(tx.orm, tx.flushed_connection, postgres=self._postgres)


def _flushed(db: DbSession) -> Connection:
    db.flush()
    return db.connection()


class HandoffTx:
    """Reads and writes of the handoff tables inside one transaction."""

    def __init__(
        self,
        session: Callable[[], DbSession],
        connection: Callable[[], Connection],
        *,
        postgres: bool,
    ) -> None:
        # Asked for when first used: a citizen's message mostly needs one Core query
        # (`touch_citizen`), and an ORM session costs more than that query.
        # `connection()` flushes what the ORM changed first, so Core queries see it.
        self._session = session
        self._connection = connection
        self._postgres = postgres

    @property
    def _db(self) -> DbSession:
        return self._session()

    # Teams

    def add_team(
        self, *, name: str, name_key: str, kind: TeamKind, commune_id: str | None, now: datetime
    ) -> tuple[Team, bool]:
        """Insert a team; when `name_key` is taken, the existing team and False."""
        values = {
            "name": name,
            "name_key": name_key,
            "kind": kind.value,
            "commune_id": commune_id,
            "created_at": now,
        }
        created = self._insert(TeamRow, values, ["name_key"])
        team = self.team_by_key(name_key)
        assert team is not None
        return team, created

    def team(self, team_id: int) -> Team | None:
        row = self._db.get(TeamRow, team_id)
        return None if row is None else _team(row)

    def team_by_key(self, name_key: str) -> Team | None:
        row = self._db.exec(select(TeamRow).where(TeamRow.name_key == name_key)).first()
        return None if row is None else _team(row)

    def teams(self) -> list[Team]:
        return [_team(row) for row in self._db.exec(select(TeamRow).order_by(col(TeamRow.id)))]

    def team_for_commune(self, commune_id: str) -> Team | None:
        """The team serving `commune_id`: its commune team first, then a mobile team."""
        rows = self._db.exec(
            select(TeamRow).where(TeamRow.commune_id == commune_id).order_by(col(TeamRow.id))
        ).all()
        rows = sorted(rows, key=lambda r: r.kind != TeamKind.COMMUNE)  # stable: by id within
        return _team(rows[0]) if rows else None

    def set_team_chat(self, team_id: int, *, channel: str, chat_id: str) -> Team | None:
        row = self._db.get(TeamRow, team_id)
        if row is None:
            return None
        row.chat_channel, row.chat_id = channel, chat_id
        self._db.add(row)
        self._db.flush()
        return _team(row)

    # Volunteers

    def volunteer(self, volunteer_id: int) -> Volunteer | None:
        row = self._db.get(VolunteerRow, volunteer_id)
        return None if row is None else _volunteer(row)

    def volunteer_by_user(self, *, channel: str, user_id: str) -> Volunteer | None:
        query = select(VolunteerRow).where(
            VolunteerRow.channel == channel, VolunteerRow.user_id == user_id
        )
        row = self._db.exec(query).first()
        return None if row is None else _volunteer(row)

    def volunteers(self, *, team_id: int | None = None) -> list[Volunteer]:
        query = select(VolunteerRow).order_by(col(VolunteerRow.id))
        if team_id is not None:
            query = query.where(VolunteerRow.team_id == team_id)
        return [_volunteer(row) for row in self._db.exec(query)]

    def join_volunteer(
        self,
        *,
        channel: str,
        user_id: str,
        name: str,
        team_id: int,
        role: Role,
        now: datetime,
    ) -> tuple[Volunteer, bool]:
        """A new volunteer, or (False) the account's existing one moved to `team_id` with
        `role`, renamed and enabled again: a coordinator's new invite says so."""
        values = {
            "name": name,
            "channel": channel,
            "user_id": user_id,
            "team_id": team_id,
            "languages": "vi",
            "available": True,
            "disabled": False,
            "role": role.value,
            "created_at": now,
            "last_active_at": now,
        }
        created = self._insert(VolunteerRow, values, ["channel", "user_id"])
        row = self._db.exec(
            select(VolunteerRow)
            .where(VolunteerRow.channel == channel, VolunteerRow.user_id == user_id)
            .execution_options(populate_existing=True)
        ).one()
        if not created:
            row.name, row.team_id, row.role = name, team_id, role.value
            row.disabled, row.last_active_at = False, now
            self._db.add(row)
            self._db.flush()
        return _volunteer(row), created

    def update_volunteer(
        self,
        volunteer_id: int,
        *,
        available: bool | None = None,
        disabled: bool | None = None,
        team_id: int | None = None,
        languages: Sequence[str] | None = None,
        password_hash: str | None = None,
        last_active_at: datetime | None = None,
    ) -> Volunteer | None:
        """Change the fields given (None leaves a field as it is)."""
        row = self._db.get(VolunteerRow, volunteer_id)
        if row is None:
            return None
        if available is not None:
            row.available = available
        if disabled is not None:
            row.disabled = disabled
        if team_id is not None:
            row.team_id = team_id
        if languages is not None:
            row.languages = ",".join(languages)
        if password_hash is not None:
            row.password_hash = password_hash
        if last_active_at is not None:
            row.last_active_at = last_active_at
        self._db.add(row)
        self._db.flush()
        return _volunteer(row)

    def password_hash(self, volunteer_id: int) -> str | None:
        row = self._db.get(VolunteerRow, volunteer_id)
        return None if row is None else row.password_hash

    # Invites

    def add_invite(
        self,
        *,
        code: str,
        team_id: int,
        role: Role,
        created_by: str,
        now: datetime,
        expires_at: datetime,
    ) -> Invite | None:
        """The new invite, or None when `code` exists already (pick another)."""
        values = {
            "code": code,
            "team_id": team_id,
            "role": role.value,
            "created_by": created_by,
            "created_at": now,
            "expires_at": expires_at,
        }
        if not self._insert(InviteRow, values, ["code"]):
            return None
        return self.invite(code)

    def invite(self, code: str) -> Invite | None:
        row = self._db.get(InviteRow, code, populate_existing=True)
        return None if row is None else _invite(row)

    def use_invite(self, code: str, *, now: datetime) -> bool:
        """Mark the invite used if it is unused and unexpired; False otherwise. Atomic:
        of two redeemers at once, exactly one gets True."""
        result = self._db.exec(
            update(InviteRow)
            .where(
                col(InviteRow.code) == code,
                col(InviteRow.used_at).is_(None),
                col(InviteRow.expires_at) > now,
            )
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1

    def set_invite_user(self, code: str, volunteer_id: int) -> None:
        self._db.exec(
            update(InviteRow)
            .where(col(InviteRow.code) == code)
            .values(used_by_volunteer_id=volunteer_id)
            .execution_options(synchronize_session=False)
        )

    # Tickets: reading

    def ticket(self, ticket_id: int) -> Ticket | None:
        row = self._db.exec(
            select(TicketRow)
            .where(TicketRow.id == ticket_id)
            .execution_options(populate_existing=True)
        ).first()
        return None if row is None else _ticket(row)

    def open_ticket_of(self, conversation_id: int) -> Ticket | None:
        return self._first(
            col(TicketRow.conversation_id) == conversation_id,
            col(TicketRow.status) != TicketStatus.CLOSED,
        )

    def open_ticket_of_chat(self, *, channel: str, chat_id: str) -> Ticket | None:
        return self._first(
            col(TicketRow.channel) == channel,
            col(TicketRow.chat_id) == chat_id,
            col(TicketRow.status) != TicketStatus.CLOSED,
        )

    def claimed_ticket_of(self, volunteer_id: int) -> Ticket | None:
        return self._first(
            col(TicketRow.volunteer_id) == volunteer_id,
            col(TicketRow.status) == TicketStatus.CLAIMED,
        )

    def last_closed_of(self, conversation_id: int) -> Ticket | None:
        query = (
            select(TicketRow)
            .where(
                col(TicketRow.conversation_id) == conversation_id,
                col(TicketRow.status) == TicketStatus.CLOSED,
            )
            .order_by(col(TicketRow.closed_at).desc(), col(TicketRow.id).desc())
            .limit(1)
            .execution_options(populate_existing=True)
        )
        row = self._db.exec(query).first()
        return None if row is None else _ticket(row)

    def tickets(
        self,
        *,
        statuses: Collection[TicketStatus] = (),
        team_id: int | None = None,
        limit: int = 50,
    ) -> list[Ticket]:
        """Newest first."""
        query = (
            select(TicketRow)
            .order_by(col(TicketRow.id).desc())
            .limit(limit)
            .execution_options(populate_existing=True)
        )
        if statuses:
            query = query.where(col(TicketRow.status).in_([s.value for s in statuses]))
        if team_id is not None:
            query = query.where(TicketRow.team_id == team_id)
        return [_ticket(row) for row in self._db.exec(query)]

    def waiting_since_before(self, cutoff: datetime, *, not_reposted: bool) -> list[Ticket]:
        """Waiting tickets that became waiting at or before `cutoff`, oldest first."""
        conditions = [
            col(TicketRow.status) == TicketStatus.WAITING,
            col(TicketRow.waiting_since) <= cutoff,
        ]
        if not_reposted:
            conditions.append(col(TicketRow.reposted_at).is_(None))
        return self._all(*conditions)

    def silent_claims(self, cutoff: datetime) -> list[Ticket]:
        """Claimed tickets whose volunteer has said nothing since `cutoff` while the
        citizen waits for them (no word since the claim, or the citizen spoke last)."""
        return self._all(_silent(cutoff))

    def idle_claims(self, cutoff: datetime) -> list[Ticket]:
        """Claimed tickets where nobody has written since `cutoff`."""
        return self._all(_idle(cutoff))

    def claim_waits(self, *, team_id: int | None, since: datetime, limit: int) -> list[int]:
        """How long the last `limit` claims since `since` waited, in seconds, newest first."""
        query = (
            select(TicketRow.waited_seconds)
            .where(
                col(TicketRow.waited_seconds).is_not(None),
                col(TicketRow.claimed_at) >= since,
            )
            .order_by(col(TicketRow.claimed_at).desc())
            .limit(limit)
        )
        if team_id is not None:
            query = query.where(TicketRow.team_id == team_id)
        return [int(w) for w in self._db.exec(query) if w is not None]

    def recent_messages(self, conversation_id: int, *, limit: int) -> list[ContextLine]:
        """The conversation's last `limit` messages (already redacted), oldest first."""
        query = (
            select(MessageRow, MessageMediaRow)
            .join(
                MessageMediaRow,
                col(MessageMediaRow.message_id) == col(MessageRow.id),
                isouter=True,
            )
            .where(MessageRow.conversation_id == conversation_id)
            .order_by(col(MessageRow.id).desc())
            .limit(limit)
        )
        rows = list(self._db.exec(query))
        return [
            ContextLine(
                who="citizen" if row.direction == Direction.IN else "bot",
                text=row.text,
                at=row.created_at,
                media_kind=row.media_kind,
                media_ref=media.ref if media is not None else None,
            )
            for row, media in reversed(rows)
        ]

    def keep_media(self, conversation_id: int, *, kind: str, ref: str) -> bool:
        """Attach the channel's file reference to the conversation's last inbound message
        (the one just recorded: the conversation is locked). False when there is none."""
        last = self._db.exec(
            select(MessageRow.id)
            .where(
                MessageRow.conversation_id == conversation_id,
                MessageRow.direction == Direction.IN,
            )
            .order_by(col(MessageRow.id).desc())
            .limit(1)
        ).first()
        if last is None:
            return False
        values = {"message_id": last, "conversation_id": conversation_id, "kind": kind, "ref": ref}
        return self._insert(MessageMediaRow, values, ["message_id"])

    def append_context(self, ticket_id: int, line: ContextLine, *, keep: int) -> bool:
        """Add a line to an open ticket's context (a photo sent while waiting), keeping
        the last `keep` lines."""
        row = self._db.get(TicketRow, ticket_id, with_for_update=True, populate_existing=True)
        if row is None or row.status == TicketStatus.CLOSED:
            return False
        context = dict(row.context)
        lines = [*context.get("messages", []), _line_json(line)]
        context["messages"] = lines[-keep:]
        row.context = context  # a new dict: JSON columns track assignment
        self._db.add(row)
        self._db.flush()
        return True

    def noted_since(self, ticket_id: int, kind: NoteKind, since: datetime | None) -> bool:
        """True when the ticket has a note of `kind` written after `since` (ever: None)."""
        query = select(TicketNoteRow.id).where(
            TicketNoteRow.ticket_id == ticket_id, TicketNoteRow.kind == kind.value
        )
        if since is not None:
            query = query.where(col(TicketNoteRow.created_at) > since)
        return self._db.exec(query.limit(1)).first() is not None

    # Tickets: writing

    def add_ticket(self, new: NewTicket, *, now: datetime) -> tuple[Ticket, bool]:
        """Open a ticket; when the conversation has an open one, that one and False."""
        existing = self.open_ticket_of(new.conversation_id)
        if existing is not None:
            return existing, False
        conversation = self._db.get(ConversationRow, new.conversation_id)
        if conversation is None:
            raise StoreError(f"conversation {new.conversation_id} does not exist")
        row = TicketRow(
            conversation_id=new.conversation_id,
            channel=conversation.channel,
            chat_id=conversation.chat_id,
            status=TicketStatus.WAITING,
            reason=new.reason,
            flow_id=new.flow_id,
            step_id=new.step_id,
            lang=new.lang,
            commune_id=new.commune_id,
            team_id=new.team_id,
            created_at=now,
            waiting_since=now,
            last_citizen_at=now,
            context={
                "reason": new.reason,
                "flow_id": new.flow_id,
                "step_id": new.step_id,
                "messages": [_line_json(line) for line in new.context],
            },
        )
        try:
            # The partial unique index decides a race between two requests (PostgreSQL;
            # SQLite lets one writer in at a time, so the check above already saw it).
            with self._db.begin_nested():
                self._db.add(row)
        except IntegrityError:
            existing = self.open_ticket_of(new.conversation_id)
            if existing is None:
                raise
            return existing, False
        return _ticket(row), True

    def claim(self, ticket_id: int, *, volunteer_id: int, now: datetime) -> bool:
        """waiting → claimed by `volunteer_id`. False when the ticket was not waiting, or
        the volunteer holds another claimed ticket. Of two claims at once, one wins."""
        ticket = self.ticket(ticket_id)
        if ticket is None or ticket.status != TicketStatus.WAITING:
            return False
        waited = max(0, round((now - ticket.waiting_since).total_seconds()))
        try:
            with self._db.begin_nested():
                result = self._db.exec(
                    update(TicketRow)
                    .where(
                        col(TicketRow.id) == ticket_id,
                        col(TicketRow.status) == TicketStatus.WAITING,
                    )
                    .values(
                        status=TicketStatus.CLAIMED,
                        volunteer_id=volunteer_id,
                        claimed_at=now,
                        waited_seconds=waited,
                        last_volunteer_at=None,
                    )
                    .execution_options(synchronize_session=False)
                )
        except IntegrityError:
            return False  # ux_ticket_volunteer_claimed: busy with another citizen
        return result.rowcount == 1

    def release(self, ticket_id: int, *, volunteer_id: int, now: datetime) -> bool:
        """claimed by `volunteer_id` → waiting again (transfer, silence). False when the
        ticket is no longer theirs."""
        return self._set(
            [
                col(TicketRow.id) == ticket_id,
                col(TicketRow.status) == TicketStatus.CLAIMED,
                col(TicketRow.volunteer_id) == volunteer_id,
            ],
            status=TicketStatus.WAITING,
            volunteer_id=None,
            waiting_since=now,
            last_volunteer_at=None,
        )

    def release_if_silent(self, ticket_id: int, *, cutoff: datetime, now: datetime) -> bool:
        """Like `release`, only if the volunteer is still silent since `cutoff`: a reply
        that arrived meanwhile keeps the ticket with them."""
        return self._set(
            [col(TicketRow.id) == ticket_id, _silent(cutoff)],
            status=TicketStatus.WAITING,
            volunteer_id=None,
            waiting_since=now,
            last_volunteer_at=None,
        )

    def close(
        self,
        ticket_id: int,
        *,
        reason: CloseReason,
        now: datetime,
        statuses: Collection[TicketStatus],
        volunteer_id: int | None = None,
    ) -> bool:
        """Close the ticket if its status is one of `statuses` and, when `volunteer_id`
        is given, they hold it. False when it was not."""
        conditions: list[ColumnElement[bool]] = []
        if volunteer_id is not None:
            conditions.append(col(TicketRow.volunteer_id) == volunteer_id)
        return self._close(ticket_id, reason, now, statuses, conditions)

    def close_if_idle(self, ticket_id: int, *, cutoff: datetime, now: datetime) -> bool:
        return self._close(
            ticket_id, CloseReason.ABANDONED, now, (TicketStatus.CLAIMED,), [_idle(cutoff)]
        )

    def close_if_waiting_since(self, ticket_id: int, *, cutoff: datetime, now: datetime) -> bool:
        since = col(TicketRow.waiting_since) <= cutoff
        return self._close(ticket_id, CloseReason.EXPIRED, now, (TicketStatus.WAITING,), [since])

    def mark_reposted(self, ticket_id: int, *, now: datetime) -> bool:
        """Set `reposted_at` once; False when another caller did it first."""
        return self._set(
            [
                col(TicketRow.id) == ticket_id,
                col(TicketRow.status) == TicketStatus.WAITING,
                col(TicketRow.reposted_at).is_(None),
            ],
            reposted_at=now,
        )

    def touch_citizen(self, conversation_id: int, *, now: datetime) -> Ticket | None:
        """Record that the citizen wrote; their open ticket, or None."""
        # Every citizen message asks; most have no ticket: one Core query says so
        # before the ORM's (which costs several times more).
        if _HAS_OPEN_TICKET.first(self._connection(), {"cid": conversation_id}) is None:
            return None
        ticket = self.open_ticket_of(conversation_id)
        if ticket is None:
            return None
        self._set([col(TicketRow.id) == ticket.id], last_citizen_at=now)
        return self.ticket(ticket.id)

    def touch_volunteer(self, volunteer_id: int, *, now: datetime) -> Ticket | None:
        """Record that the volunteer wrote; the ticket they hold, or None."""
        self.update_volunteer(volunteer_id, last_active_at=now)
        ticket = self.claimed_ticket_of(volunteer_id)
        if ticket is None:
            return None
        self._set([col(TicketRow.id) == ticket.id], last_volunteer_at=now)
        return self.ticket(ticket.id)

    def request_visit(self, ticket_id: int, *, now: datetime) -> bool:
        return self._set([col(TicketRow.id) == ticket_id], visit_requested_at=now)

    def rate(self, ticket_id: int, *, rating: int, now: datetime) -> bool:
        """Keep the citizen's first rating; False when rated already."""
        return self._set(
            [col(TicketRow.id) == ticket_id, col(TicketRow.rated_at).is_(None)],
            rating=rating,
            rated_at=now,
        )

    def add_notified(self, ticket_id: int, post: NotifiedPost) -> bool:
        row = self._db.get(TicketRow, ticket_id, with_for_update=True, populate_existing=True)
        if row is None:
            return False
        entry = {"channel": post.channel, "chat_id": post.chat_id, "message_id": post.message_id}
        row.notified = [*row.notified, entry]  # a new list: JSON columns track assignment
        self._db.add(row)
        self._db.flush()
        return True

    def forget_conversation(self, conversation_id: int) -> None:
        """Empty what tickets of this conversation remember of the citizen: context and
        notes. Times, reasons and ratings stay for the figures."""
        ids = list(
            self._db.exec(select(TicketRow.id).where(TicketRow.conversation_id == conversation_id))
        )
        if ids:
            self._db.exec(
                update(TicketRow)
                .where(col(TicketRow.id).in_(ids))
                .values(context={})
                .execution_options(synchronize_session=False)
            )
            self._db.exec(
                update(TicketNoteRow)
                .where(col(TicketNoteRow.ticket_id).in_(ids))
                .values(text="")
                .execution_options(synchronize_session=False)
            )
        self._db.exec(delete(PairingRow).where(col(PairingRow.conversation_id) == conversation_id))

    def tickets_of_conversation(self, conversation_id: int) -> list[Ticket]:
        """Every ticket of the conversation, oldest first."""
        found = self._all(col(TicketRow.conversation_id) == conversation_id)
        return sorted(found, key=lambda ticket: ticket.id)

    def mask_outbox(
        self,
        prefixes: Sequence[str],
        *,
        since: datetime,
        mask: str,
        exclude_conversation: int,
    ) -> int:
        """Messages in other chats (volunteers', groups) created since `since` whose text
        begins with one of `prefixes`: undelivered ones are dropped, the others keep only
        `mask` and lose their buttons (a relayed photo's file reference is one). One in
        the middle of sending is left to its sender. The number of rows changed."""
        if not prefixes:
            return 0
        query = select(OutboxRow.id, OutboxRow.status).where(
            col(OutboxRow.conversation_id) != exclude_conversation,
            col(OutboxRow.created_at) >= since,
            or_(*(col(OutboxRow.text).startswith(p, autoescape=True) for p in prefixes)),
        )
        found = self._db.exec(query).all()
        drop = [row_id for row_id, status in found if status == OutboxStatus.PENDING]
        busy = (OutboxStatus.PENDING, OutboxStatus.SENDING)
        keep = [row_id for row_id, status in found if status not in busy]
        # The status again in each statement: a sender may take a row meanwhile, and
        # PostgreSQL re-checks the condition on the row it waited for.
        if drop:
            self._db.exec(
                delete(OutboxRow).where(
                    col(OutboxRow.id).in_(drop), col(OutboxRow.status) == OutboxStatus.PENDING
                )
            )
        if keep:
            self._db.exec(
                update(OutboxRow)
                .where(col(OutboxRow.id).in_(keep), col(OutboxRow.status).not_in(busy))
                .values(text=mask, buttons=[])
                .execution_options(synchronize_session=False)
            )
        return len(drop) + len(keep)

    # Notes

    def add_note(
        self, ticket_id: int, *, volunteer_id: int | None, kind: NoteKind, text: str, now: datetime
    ) -> Note:
        row = TicketNoteRow(
            ticket_id=ticket_id,
            volunteer_id=volunteer_id,
            kind=kind.value,
            text=redact(text),
            created_at=now,
        )
        self._db.add(row)
        self._db.flush()
        return _note(row)

    def notes(self, ticket_id: int) -> list[Note]:
        query = (
            select(TicketNoteRow)
            .where(TicketNoteRow.ticket_id == ticket_id)
            .order_by(col(TicketNoteRow.id))
            .execution_options(populate_existing=True)
        )
        return [_note(row) for row in self._db.exec(query)]

    # Pairing

    def set_pairing(self, conversation_id: int, *, volunteer_id: int, now: datetime) -> None:
        values = {"conversation_id": conversation_id, "volunteer_id": volunteer_id}
        if not self._insert(PairingRow, {**values, "helped_at": now}, ["conversation_id"]):
            self._db.exec(
                update(PairingRow)
                .where(col(PairingRow.conversation_id) == conversation_id)
                .values(volunteer_id=volunteer_id, helped_at=now)
                .execution_options(synchronize_session=False)
            )

    def pairing(self, conversation_id: int) -> Pairing | None:
        row = self._db.get(PairingRow, conversation_id, populate_existing=True)
        if row is None:
            return None
        return Pairing(row.conversation_id, row.volunteer_id, row.helped_at)

    # Helpers

    def _insert(self, table: type[SQLModel], values: dict[str, Any], keys: list[str]) -> bool:
        """INSERT … ON CONFLICT DO NOTHING; True when the row was inserted. (RETURNING,
        because psycopg reports no rowcount for ORM-run inserts.)"""
        statement = _insert_ignore(table, values, keys, self._postgres)
        first = next(iter(sa_inspect(table).primary_key))
        return self._db.exec(statement.returning(first)).first() is not None

    def _first(self, *conditions: ColumnElement[bool]) -> Ticket | None:
        query = (
            select(TicketRow)
            .where(*conditions)
            .order_by(col(TicketRow.id).desc())
            .limit(1)
            .execution_options(populate_existing=True)
        )
        row = self._db.exec(query).first()
        return None if row is None else _ticket(row)

    def _all(self, *conditions: ColumnElement[bool]) -> list[Ticket]:
        query = (
            select(TicketRow)
            .where(*conditions)
            .order_by(col(TicketRow.id))
            .execution_options(populate_existing=True)
        )
        return [_ticket(row) for row in self._db.exec(query)]

    def _close(
        self,
        ticket_id: int,
        reason: CloseReason,
        now: datetime,
        statuses: Collection[TicketStatus],
        conditions: list[ColumnElement[bool]],
    ) -> bool:
        return self._set(
            [
                col(TicketRow.id) == ticket_id,
                col(TicketRow.status).in_([s.value for s in statuses]),
                *conditions,
            ],
            status=TicketStatus.CLOSED,
            closed_at=now,
            close_reason=reason.value,
        )

    def _set(self, conditions: Sequence[ColumnElement[bool]], **values: Any) -> bool:
        """UPDATE ticket SET values WHERE conditions; True when a row changed."""
        result = self._db.exec(
            update(TicketRow)
            .where(*conditions)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        # Rows read before are stale now: every read of a ticket populates afresh.
        return result.rowcount > 0


def _silent(cutoff: datetime) -> ColumnElement[bool]:
    last_volunteer = col(TicketRow.last_volunteer_at)
    return and_(
        col(TicketRow.status) == TicketStatus.CLAIMED,
        or_(
            and_(last_volunteer.is_(None), col(TicketRow.claimed_at) <= cutoff),
            and_(
                last_volunteer <= cutoff,
                col(TicketRow.last_citizen_at).is_not(None),
                col(TicketRow.last_citizen_at) > last_volunteer,
            ),
        ),
    )


def _idle(cutoff: datetime) -> ColumnElement[bool]:
    citizen, volunteer = col(TicketRow.last_citizen_at), col(TicketRow.last_volunteer_at)
    return and_(
        col(TicketRow.status) == TicketStatus.CLAIMED,
        col(TicketRow.claimed_at) <= cutoff,
        or_(citizen.is_(None), citizen <= cutoff),
        or_(volunteer.is_(None), volunteer <= cutoff),
    )


def _line_json(line: ContextLine) -> dict[str, Any]:
    data: dict[str, Any] = {
        "who": line.who,
        "text": redact(line.text),
        "at": line.at.isoformat() if line.at is not None else None,
    }
    if line.media_kind is not None:
        # The reference is the channel's id of a file, not words: never redacted.
        data.update(media_kind=line.media_kind, media_ref=line.media_ref)
    return data


def _line(data: dict[str, Any]) -> ContextLine:
    at = data.get("at")
    return ContextLine(
        who=str(data.get("who", "")),
        text=str(data.get("text", "")),
        at=datetime.fromisoformat(at) if isinstance(at, str) else None,
        media_kind=_str(data.get("media_kind")),
        media_ref=_str(data.get("media_ref")),
    )


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _team(row: TeamRow) -> Team:
    assert row.id is not None
    return Team(
        id=row.id,
        name=row.name,
        kind=TeamKind(row.kind),
        commune_id=row.commune_id,
        chat_channel=row.chat_channel,
        chat_id=row.chat_id,
        created_at=row.created_at,
    )


def _volunteer(row: VolunteerRow) -> Volunteer:
    assert row.id is not None
    return Volunteer(
        id=row.id,
        name=row.name,
        channel=row.channel,
        user_id=row.user_id,
        team_id=row.team_id,
        languages=tuple(lang for lang in row.languages.split(",") if lang),
        available=row.available,
        disabled=row.disabled,
        role=Role(row.role),
        has_password=row.password_hash is not None,
        created_at=row.created_at,
        last_active_at=row.last_active_at,
    )


def _invite(row: InviteRow) -> Invite:
    return Invite(
        code=row.code,
        team_id=row.team_id,
        role=Role(row.role),
        created_by=row.created_by,
        created_at=row.created_at,
        expires_at=row.expires_at,
        used_at=row.used_at,
        used_by_volunteer_id=row.used_by_volunteer_id,
    )


def _ticket(row: TicketRow) -> Ticket:
    assert row.id is not None
    messages = row.context.get("messages") or []
    return Ticket(
        id=row.id,
        conversation_id=row.conversation_id,
        channel=row.channel,
        chat_id=row.chat_id,
        status=TicketStatus(row.status),
        reason=row.reason,
        flow_id=row.flow_id,
        step_id=row.step_id,
        lang=row.lang,
        commune_id=row.commune_id,
        team_id=row.team_id,
        created_at=row.created_at,
        waiting_since=row.waiting_since,
        claimed_at=row.claimed_at,
        waited_seconds=row.waited_seconds,
        volunteer_id=row.volunteer_id,
        closed_at=row.closed_at,
        close_reason=CloseReason(row.close_reason) if row.close_reason else None,
        last_citizen_at=row.last_citizen_at,
        last_volunteer_at=row.last_volunteer_at,
        reposted_at=row.reposted_at,
        notified=tuple(
            NotifiedPost(str(p["channel"]), str(p["chat_id"]), str(p["message_id"]))
            for p in row.notified
        ),
        rating=row.rating,
        rated_at=row.rated_at,
        visit_requested_at=row.visit_requested_at,
        context=tuple(_line(m) for m in messages if isinstance(m, dict)),
    )


def _note(row: TicketNoteRow) -> Note:
    assert row.id is not None
    return Note(
        id=row.id,
        ticket_id=row.ticket_id,
        volunteer_id=row.volunteer_id,
        kind=NoteKind(row.kind),
        text=row.text,
        created_at=row.created_at,
    )
