"""The Store: every read and write of citizen-bot's database goes through it."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from functools import partial
from typing import Any, ParamSpec, TypeVar

import anyio.to_thread
from sqlalchemy import (
    Connection,
    Engine,
    Exists,
    Insert,
    Row,
    Select,
    Table,
    bindparam,
    exists,
    func,
    inspect,
    text,
    update,
)
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlmodel import Session as DbSession
from sqlmodel import SQLModel, col, select

from bot.errors import ConfigError, StoreError
from bot.messages import Button
from bot.redact import redact, redact_repeated
from bot.store.conversation import CONVERSATION_STATE, ConversationState, ConversationTx
from bot.store.engine import WriterBusy, checkpoint, make_engine, read_only, without_waiting
from bot.store.prepared import Prepared
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
from bot.store.tables import (
    ConversationRow,
    EventRow,
    FlowSnapshotRow,
    MessageRow,
    OutboxRow,
)
from bot.store.types import utcnow
from bot.store.writer import NORMAL, URGENT, WriterThread

log = logging.getLogger(__name__)

_P = ParamSpec("_P")
_T = TypeVar("_T")

_CONVERSATION: Table = ConversationRow.__table__  # type: ignore[attr-defined]
_OUTBOX: Table = OutboxRow.__table__  # type: ignore[attr-defined]
_UNDELIVERED = (OutboxStatus.PENDING.value, OutboxStatus.SENDING.value)

# Errors from a messenger can be long (HTML pages); the start says enough.
_ERROR_CHARS = 1000
_TOP_REJECTED = 10
# SQLite: checkpoint the WAL after this many writes through `run` (a few pages each;
# SQLite's own default is every 1,000 pages).
_CHECKPOINT_EVERY = 200


class Store:
    """citizen-bot's database: SQLite (a file, the default) or PostgreSQL, by URL.

    `conversation()` is the only way to change a conversation: one transaction with
    the conversation locked, so one chat is handled one message at a time across
    threads and processes (invariant 2). The rest serves the outbox sender, the web
    chat, the console and the figures. Database failures raise `StoreError`.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine = make_engine(url)
        self._reader = read_only(self._engine)
        self._postgres = self._engine.dialect.name == "postgresql"
        # SQLite writes of this process go one at a time: on the loop, or on this
        # thread when they must wait (bot/store/writer.py). PostgreSQL ones side by
        # side on the shared thread pool.
        self._writer = None if self._postgres else WriterThread()
        self._writes = 0  # through `run` on SQLite, since the last checkpoint
        self._checkpointing: asyncio.Future[None] | None = None

    async def run(self, func: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """`func(*args, **kwargs)`: blocking store work that writes. On PostgreSQL on the
        shared thread pool (as `run_in_threadpool`). On SQLite, one call after another:
        on the event loop itself when nothing else writes, else on the store's writer
        thread. (A write is a millisecond of CPU; handing it to a thread cost the
        webhook a third more CPU an update, in GIL hand-overs.) The caller's context
        variables (the log's conversation id) go with it."""
        return await self._run(NORMAL, partial(func, *args, **kwargs))

    async def run_urgent(
        self, func: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs
    ) -> _T:
        """`run()` ahead of the queued normal work: for the outbox sender's claims and
        records, short statements that hold deliveries in flight."""
        return await self._run(URGENT, partial(func, *args, **kwargs))

    async def _run(self, priority: int, call: Callable[[], _T]) -> _T:
        if self._writer is None:
            return await anyio.to_thread.run_sync(call)  # it carries the context itself
        self._count_write()
        if self._writer.idle:
            # Nothing queued could be overtaken. The call's first BEGIN takes the
            # database at once or raises WriterBusy: the loop never waits for a lock.
            try:
                with without_waiting():
                    return call()
            except WriterBusy:
                pass  # another thread or process writes: wait on the writer thread
        context = contextvars.copy_context()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[_T] = loop.create_future()

        def unless_cancelled() -> _T | None:
            # A caller that gave up (a stopping sender) before its turn: skip the work.
            return None if future.cancelled() else context.run(call)

        def done(error: BaseException | None, result: Any) -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits
                loop.call_soon_threadsafe(_settle, future, error, result)

        self._writer.submit(unless_cancelled, done, priority=priority)
        return await future

    def _count_write(self) -> None:
        """Every `_CHECKPOINT_EVERY` writes, checkpoint the WAL on a worker thread."""
        self._writes += 1
        if self._writes < _CHECKPOINT_EVERY:
            return
        if self._checkpointing is not None and not self._checkpointing.done():
            return
        self._writes = 0
        loop = asyncio.get_running_loop()
        self._checkpointing = loop.run_in_executor(None, self._checkpoint)

    def _checkpoint(self) -> None:
        try:
            checkpoint(self._engine)
        except Exception:  # the next one may succeed; the WAL only grows meanwhile
            log.exception("database: WAL checkpoint failed")

    def create_all(self) -> None:
        """Create missing tables and indexes, and add missing nullable columns to tables
        an older version created; safe to call on every start, from several processes."""
        with _errors():
            SQLModel.metadata.create_all(self._engine)
            for table, column in add_missing_columns(self._engine):
                log.warning("database: added column %s.%s (a newer version)", table, column)

    def dispose(self) -> None:
        """Close every pooled connection (and end the writer thread once its queue is
        done; `run()` starts another)."""
        if self._writer is not None:
            self._writer.stop()
        self._engine.dispose()

    def healthy(self) -> bool:
        """True when the database answers."""
        try:
            with self._reader.connect() as connection:
                connection.execute(text("SELECT 1"))
        except SQLAlchemyError:
            return False
        return True

    @contextmanager
    def conversation(
        self, *, channel: str, chat_id: str, user_id: str | None = None
    ) -> Iterator[ConversationTx]:
        """The conversation of this chat, created when new, locked until the block ends.

        Commits when the block ends normally, rolls everything back on an exception.
        PostgreSQL locks the conversation row (FOR NO KEY UPDATE: other conversations
        and plain reads go on); SQLite's BEGIN IMMEDIATE lets one writer in at a time.
        """
        with _errors(), self._engine.begin() as connection:
            state = self._lock_conversation(connection, channel=channel, chat_id=chat_id)
            if user_id is not None and state.user_id != user_id:
                state.user_id = user_id
                state.dirty = True
            tx = ConversationTx(connection, state)
            try:
                yield tx
                tx.write_back()
            finally:
                tx.close()

    def mark_blocked(self, *, channel: str, chat_id: str) -> None:
        """The citizen blocked the bot; their next message makes the conversation active."""
        with self._session(write=True) as db:
            db.exec(
                update(ConversationRow)
                .where(
                    col(ConversationRow.channel) == channel,
                    col(ConversationRow.chat_id) == chat_id,
                )
                .values(status=ConversationStatus.BLOCKED, updated_at=utcnow())
            )

    # Flow snapshots

    def save_flow_snapshot(
        self, *, flow_id: str, rev: str, version: int, data: dict[str, Any]
    ) -> None:
        """Keep `data` as flow `flow_id` at revision `rev`; a second save changes nothing."""
        values = {
            "flow_id": flow_id,
            "rev": rev,
            "version": version,
            "data": data,
            "created_at": utcnow(),
        }
        with self._session(write=True) as db:
            db.exec(_insert_ignore(FlowSnapshotRow, values, ["flow_id", "rev"], self._postgres))

    def load_flow_snapshot(self, *, flow_id: str, rev: str) -> dict[str, Any] | None:
        with self._session(write=False) as db:
            row = db.get(FlowSnapshotRow, (flow_id, rev))
            return None if row is None else dict(row.data)

    # Outbox

    def outbox_depth(self, channel: str | None = None) -> int:
        """Messages not delivered yet (pending or being sent), of one channel or all:
        one indexed count, cheap enough for every /metrics scrape."""
        query = select(func.count(col(OutboxRow.id))).where(
            col(OutboxRow.status).in_([OutboxStatus.PENDING, OutboxStatus.SENDING])
        )
        if channel is not None:
            query = query.where(OutboxRow.channel == channel)
        with self._session(write=False) as db:
            return int(db.exec(query).one())

    def due_outbox(self, *, channel: str, now: datetime, limit: int = 50) -> list[OutboxItem]:
        """Messages to send now, oldest first: only the first undelivered message of
        each conversation, so every chat gets its messages in order."""
        not_first = _earlier_undelivered()
        query = (
            select(OutboxRow)
            .where(
                OutboxRow.channel == channel,
                OutboxRow.status == OutboxStatus.PENDING,
                col(OutboxRow.next_attempt_at) <= now,
                ~not_first,
            )
            .order_by(col(OutboxRow.id))
            .limit(limit)
        )
        with self._session(write=False) as db:
            return [_outbox_item(row) for row in db.exec(query)]

    def claim_due(
        self, *, channel: str, now: datetime, lease_seconds: float, limit: int = 50
    ) -> list[OutboxItem]:
        """Take up to `limit` messages to send now, longest due first, one per chat (the
        first undelivered message of each), and lease them to the caller: they become
        `sending` until `now + lease_seconds`. A `sending` message whose lease ran out
        (its sender died) is due again, so a crash repeats at most that message.

        Safe with several senders at once: PostgreSQL skips rows another sender has
        locked (FOR UPDATE SKIP LOCKED); SQLite lets one writer in at a time.
        """
        if limit <= 0:
            return []
        until = now + timedelta(seconds=lease_seconds)
        # Core on one connection: the sender claims many times a second, and the ORM's
        # session and row objects were most of a claim's cost.
        with _errors(), self._engine.begin() as connection:
            due = {"channel": channel, "now": now, "room": limit}
            ids = list(connection.execute(_CLAIM_PENDING, due).scalars())
            if len(ids) < limit:
                # Leases that ran out (their sender died): rare, one short index range.
                due["room"] = limit - len(ids)
                ids += connection.execute(_CLAIM_EXPIRED, due).scalars()
            if not ids:
                return []
            connection.execute(_LEASE, {"ids": ids, "until": until})
            rows = connection.execute(_CLAIMED, {"ids": ids})
            return [_outbox_item(row) for row in rows]

    def block_chat(self, *, channel: str, chat_id: str, error: str) -> int:
        """The citizen blocked the bot: the conversation is marked blocked and every
        undelivered message of the chat failed (redacted), including the one being sent
        (its attempt counted), in one transaction, so no sender picks up the next one in
        between. Their next message makes the conversation active again. Returns the
        messages failed."""
        with self._session(write=True) as db:
            db.exec(
                update(ConversationRow)
                .where(
                    col(ConversationRow.channel) == channel,
                    col(ConversationRow.chat_id) == chat_id,
                )
                .values(status=ConversationStatus.BLOCKED, updated_at=utcnow())
            )
            rows = db.exec(
                select(OutboxRow).where(
                    OutboxRow.channel == channel,
                    OutboxRow.chat_id == chat_id,
                    col(OutboxRow.status).in_([OutboxStatus.PENDING, OutboxStatus.SENDING]),
                )
            ).all()
            for row in rows:
                if row.status == OutboxStatus.SENDING:
                    row.attempts += 1
                row.status = OutboxStatus.FAILED
                row.last_error = error[:_ERROR_CHARS]
                row.text = redact(row.text)
                db.add(row)
            return len(rows)

    def mark_sent(self, item_id: int, *, external_id: str | None = None) -> None:
        """Delivered; the text is kept redacted from now on."""
        with self._session(write=True) as db:
            row = db.get(OutboxRow, item_id)
            if row is None:
                return  # forgotten meanwhile
            row.status = OutboxStatus.SENT
            row.external_id = external_id
            row.attempts += 1
            row.sent_at = utcnow()
            row.last_error = None
            row.text = redact(row.text)
            db.add(row)

    def mark_sent_many(self, sent: Sequence[tuple[int, str | None]]) -> None:
        """`mark_sent` for several (id, external id) pairs in one transaction: the
        sender records the sends that finished together at once."""
        if not sent:
            return
        external = dict(sent)
        now = utcnow()
        # Core, one UPDATE a row in one executemany: rows forgotten meanwhile are simply
        # not there to read.
        with _errors(), self._engine.begin() as connection:
            texts = connection.execute(_SENT_TEXTS, {"ids": list(external)}).all()
            if not texts:
                return
            _MARK_SENT.many(
                connection,
                [
                    {
                        "row_id": row_id,
                        "row_external_id": external[row_id],
                        "row_text": redact_repeated(text),
                        "row_sent_at": now,
                    }
                    for row_id, text in texts
                ],
            )

    def mark_retry(self, item_id: int, *, at: datetime, error: str) -> None:
        """Not delivered this time; try again at `at` (later messages of the chat wait)."""
        with self._session(write=True) as db:
            row = db.get(OutboxRow, item_id)
            if row is None:
                return
            row.status = OutboxStatus.PENDING
            row.attempts += 1
            row.next_attempt_at = at
            row.last_error = error[:_ERROR_CHARS]
            db.add(row)

    def mark_failed(self, item_id: int, *, error: str) -> None:
        """Never deliverable; later messages of the chat go on. The text is redacted."""
        with self._session(write=True) as db:
            row = db.get(OutboxRow, item_id)
            if row is None:
                return
            row.status = OutboxStatus.FAILED
            row.attempts += 1
            row.last_error = error[:_ERROR_CHARS]
            row.text = redact(row.text)
            db.add(row)

    def outbox_after(self, *, channel: str, chat_id: str, after_id: int = 0) -> list[OutboxItem]:
        """Every outbox row of this chat with an id above `after_id`, in order."""
        query = (
            select(OutboxRow)
            .where(
                OutboxRow.channel == channel,
                OutboxRow.chat_id == chat_id,
                col(OutboxRow.id) > after_id,
            )
            .order_by(col(OutboxRow.id))
        )
        with self._session(write=False) as db:
            return [_outbox_item(row) for row in db.exec(query)]

    # Reading

    def transcript(self, *, channel: str, chat_id: str, limit: int = 50) -> list[MessageRecord]:
        """The last `limit` messages of this chat, oldest first, redacted."""
        query = (
            select(MessageRow)
            .join(ConversationRow, col(ConversationRow.id) == col(MessageRow.conversation_id))
            .where(ConversationRow.channel == channel, ConversationRow.chat_id == chat_id)
            .order_by(col(MessageRow.id).desc())
            .limit(limit)
        )
        with self._session(write=False) as db:
            rows = list(db.exec(query))
            return [_message_record(row) for row in reversed(rows)]

    def stats(self) -> StoreStats:
        """Counts for coordinators: conversations, messages, flows started and completed,
        volunteers asked for, and the steps where answers were refused most."""
        event_count = func.count(col(EventRow.id))
        with self._session(write=False) as db:
            conversations = db.exec(select(func.count(col(ConversationRow.id)))).one()
            by_direction = dict(
                db.exec(
                    select(MessageRow.direction, func.count(col(MessageRow.id))).group_by(
                        col(MessageRow.direction)
                    )
                ).all()
            )
            flows: dict[str, FlowFigures] = {}
            started = select(EventRow.flow_id, event_count).where(
                EventRow.kind == "FlowStarted", col(EventRow.flow_id).is_not(None)
            )
            for flow_id, count in db.exec(started.group_by(col(EventRow.flow_id))):
                flows.setdefault(str(flow_id), {"started": 0, "completed": 0})["started"] = count
            completed = select(EventRow.flow_id, event_count).where(
                EventRow.kind == "FlowEnded",
                col(EventRow.completed).is_(True),
                col(EventRow.flow_id).is_not(None),
            )
            for flow_id, count in db.exec(completed.group_by(col(EventRow.flow_id))):
                figures = flows.setdefault(str(flow_id), {"started": 0, "completed": 0})
                figures["completed"] = count
            handoffs = db.exec(select(event_count).where(EventRow.kind == "HandoffRequested")).one()
            rejected = db.exec(
                select(EventRow.flow_id, EventRow.step_id, event_count)
                .where(
                    EventRow.kind == "AnswerRejected",
                    col(EventRow.flow_id).is_not(None),
                    col(EventRow.step_id).is_not(None),
                )
                .group_by(col(EventRow.flow_id), col(EventRow.step_id))
                .order_by(event_count.desc(), col(EventRow.flow_id), col(EventRow.step_id))
                .limit(_TOP_REJECTED)
            ).all()
        return {
            "conversations": conversations,
            "messages_in": by_direction.get(Direction.IN, 0),
            "messages_out": by_direction.get(Direction.OUT, 0),
            "flows": dict(sorted(flows.items())),
            "handoffs_requested": handoffs,
            "rejected_steps": [
                RejectedStep(flow_id=str(flow_id), step_id=str(step_id), count=count)
                for flow_id, step_id, count in rejected
            ],
        }

    # Helpers

    @contextmanager
    def _session(self, *, write: bool) -> Iterator[DbSession]:
        engine = self._engine if write else self._reader
        with _errors(), DbSession(engine, expire_on_commit=False) as db, db.begin():
            yield db

    def _lock_conversation(
        self, connection: Connection, *, channel: str, chat_id: str
    ) -> ConversationState:
        chat = {"channel": channel, "chat_id": chat_id}
        row = _LOCK_CONVERSATION.first(connection, chat)
        if row is not None:
            return ConversationState.of(row)
        # Two first messages of a new chat may race here: one insert wins, both lock it.
        now = utcnow()
        values = {
            "channel": channel,
            "chat_id": chat_id,
            "status": ConversationStatus.ACTIVE,
            "outbox_seq": 0,
            "created_at": now,
            "updated_at": now,
        }
        connection.execute(
            _insert_ignore(ConversationRow, values, ["channel", "chat_id"], self._postgres)
        )
        row = _LOCK_CONVERSATION.first(connection, chat)
        assert row is not None, "the conversation was inserted in this transaction"
        return ConversationState.of(row)


@contextmanager
def _errors() -> Iterator[None]:
    """Database failures as `StoreError`, without the statement's parameters."""
    try:
        yield
    except DBAPIError as exc:
        raise StoreError(f"database error: {exc.orig}") from exc
    except SQLAlchemyError as exc:
        raise StoreError(f"database error: {type(exc).__name__}: {exc}") from exc


def _settle(future: asyncio.Future[Any], error: BaseException | None, result: Any) -> None:
    """Hand a writer-thread call's outcome to its waiting task (in the event loop)."""
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def _insert_ignore(
    table: type[SQLModel], values: dict[str, Any], keys: list[str], postgres: bool
) -> Insert:
    """INSERT … ON CONFLICT (keys) DO NOTHING."""
    if postgres:
        return pg_insert(table).values(values).on_conflict_do_nothing(index_elements=keys)
    return sqlite_insert(table).values(values).on_conflict_do_nothing(index_elements=keys)


def _earlier_undelivered() -> Exists:
    """True for an outbox row with an undelivered row before it in its conversation:
    only a chat's first undelivered message may go out, so each chat stays in order."""
    earlier = _OUTBOX.alias("earlier")
    return (
        exists()
        .where(
            earlier.c.conversation_id == _OUTBOX.c.conversation_id,
            earlier.c.status.in_(_UNDELIVERED),
            earlier.c.seq < _OUTBOX.c.seq,
        )
        .correlate(_OUTBOX)
    )


def _claim_heads(status: OutboxStatus) -> Select[tuple[int]]:
    """Heads of chats due now, longest due first, in the order of ix_outbox_due: the
    scan stops after `room` heads instead of checking and sorting every undelivered row
    (a backlog made each claim cost milliseconds)."""
    return (
        sa_select(_OUTBOX.c.id)
        .where(
            _OUTBOX.c.channel == bindparam("channel"),
            _OUTBOX.c.status == status.value,
            _OUTBOX.c.next_attempt_at <= bindparam("now"),
            ~_earlier_undelivered(),
        )
        .order_by(_OUTBOX.c.next_attempt_at, _OUTBOX.c.id)
        .limit(bindparam("room"))
        .with_for_update(skip_locked=True)  # ignored by SQLite
    )


# The statements of every message and every claim, built once: building one (and its
# cache key) cost more than running it. Parameters are bound at execution.
_LOCK_CONVERSATION = Prepared(
    sa_select(*(_CONVERSATION.c[name] for name in CONVERSATION_STATE))
    .where(
        _CONVERSATION.c.channel == bindparam("channel"),
        _CONVERSATION.c.chat_id == bindparam("chat_id"),
    )
    .with_for_update(key_share=True)  # ignored by SQLite, which has no row locks
)
_CLAIM_PENDING = _claim_heads(OutboxStatus.PENDING)
_CLAIM_EXPIRED = _claim_heads(OutboxStatus.SENDING)
_LEASE = (
    update(_OUTBOX)
    .where(_OUTBOX.c.id.in_(bindparam("ids", expanding=True)))
    .values(status=OutboxStatus.SENDING.value, next_attempt_at=bindparam("until"))
)
_CLAIMED = (
    sa_select(_OUTBOX)
    .where(_OUTBOX.c.id.in_(bindparam("ids", expanding=True)))
    .order_by(_OUTBOX.c.id)
)
_SENT_TEXTS = sa_select(_OUTBOX.c.id, _OUTBOX.c.text).where(
    _OUTBOX.c.id.in_(bindparam("ids", expanding=True))
)
_MARK_SENT = Prepared(
    update(_OUTBOX)
    .where(_OUTBOX.c.id == bindparam("row_id"))
    .values(
        status=OutboxStatus.SENT.value,
        external_id=bindparam("row_external_id"),
        attempts=_OUTBOX.c.attempts + 1,
        sent_at=bindparam("row_sent_at"),
        last_error=None,
        text=bindparam("row_text"),
    )
)


def _outbox_item(row: OutboxRow | Row[Any]) -> OutboxItem:
    assert row.id is not None
    return OutboxItem(
        id=row.id,
        conversation_id=row.conversation_id,
        channel=row.channel,
        chat_id=row.chat_id,
        seq=row.seq,
        text=row.text,
        buttons=tuple(
            Button(label=str(b["label"]), payload=str(b["payload"]), url=b.get("url"))
            for b in row.buttons
        ),
        status=OutboxStatus(row.status),
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
        external_id=row.external_id,
        created_at=row.created_at,
        sent_at=row.sent_at,
    )


def _message_record(row: MessageRow) -> MessageRecord:
    assert row.id is not None
    return MessageRecord(
        id=row.id,
        conversation_id=row.conversation_id,
        direction=Direction(row.direction),
        channel=row.channel,
        external_id=row.external_id,
        text=row.text,
        payload=row.payload,
        media_kind=row.media_kind,
        created_at=row.created_at,
    )


def add_missing_columns(engine: Engine) -> list[tuple[str, str]]:
    """ALTER TABLE … ADD COLUMN for each nullable column of our tables that the database
    lacks: `create_all` creates missing tables, never missing columns, so a database
    made by an older version would fail on its first SELECT. A new column that cannot be
    NULL and has no server default needs a real migration: refused with one line."""
    added: list[tuple[str, str]] = []
    inspector = inspect(engine)
    for table in SQLModel.metadata.sorted_tables:
        if not inspector.has_table(table.name):
            continue
        present = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in present:
                continue
            if not column.nullable and column.server_default is None:
                raise ConfigError(
                    f"the database's table {table.name} lacks the column {column.name},"
                    " which cannot be added by itself: migrate it by hand"
                )
            kind = column.type.compile(dialect=engine.dialect)
            preparer = engine.dialect.identifier_preparer
            ddl = (
                f"ALTER TABLE {preparer.format_table(table)}"
                f" ADD COLUMN {preparer.format_column(column)} {kind}"
            )
            try:
                with engine.begin() as connection:
                    connection.execute(text(ddl))
            except SQLAlchemyError:
                # Another process starting at the same time added it first.
                if column.name not in {c["name"] for c in inspect(engine).get_columns(table.name)}:
                    raise
                continue
            added.append((table.name, column.name))
    return added
