"""The Store contract, run on SQLite and PostgreSQL alike (the `store` fixture)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from datetime import datetime, timedelta
from multiprocessing import get_context
from typing import Any

import pytest
from sqlmodel import Session as DbSession
from sqlmodel import select

from bot.errors import ConfigError, StoreError
from bot.flow.events import (
    AnswerAccepted,
    AnswerRejected,
    FlowEnded,
    FlowStarted,
    HandoffRequested,
    Said,
)
from bot.flow.session import EMPTY, Frame, Session
from bot.messages import Button, Incoming, Media, MediaKind, Outgoing
from bot.store import ConversationStatus, Direction, OutboxStatus, Store, make_engine
from bot.store.tables import EventRow, OutboxRow, SessionRow
from bot.store.types import utcnow

CHANNEL = "test"
CCCD = "001234567890"
PHONE = "0912345678"


def incoming(
    chat_id: str = "c1", text: str = "xin chào", message_id: str | None = None
) -> Incoming:
    return Incoming(channel=CHANNEL, chat_id=chat_id, text=text, message_id=message_id)


def later(seconds: float = 1) -> datetime:
    return utcnow() + timedelta(seconds=seconds)


def rows(store: Store, model: type[Any]) -> list[Any]:
    """Raw rows, to check what is really written (tests only)."""
    engine = make_engine(store.url)
    try:
        with DbSession(engine) as db:
            return list(db.exec(select(model)))
    finally:
        engine.dispose()


def say(chat_id: str, *texts: str) -> list[Outgoing]:
    return [Outgoing(chat_id=chat_id, text=t) for t in texts]


def queue(store: Store, chat_id: str, *texts: str) -> list[int]:
    with store.conversation(channel=CHANNEL, chat_id=chat_id) as tx:
        return tx.queue_outgoing(say(chat_id, *texts))


# --- conversations and sessions ----------------------------------------------------------


def test_new_conversation_starts_empty(store: Store) -> None:
    with store.conversation(channel=CHANNEL, chat_id="c1", user_id="u1") as tx:
        assert tx.load_session() == EMPTY
        assert (tx.channel, tx.chat_id, tx.lang) == (CHANNEL, "c1", None)
        assert tx.status is ConversationStatus.ACTIVE
        first_id = tx.conversation_id
    with store.conversation(channel=CHANNEL, chat_id="c1") as tx:
        assert tx.conversation_id == first_id
    with store.conversation(channel="other", chat_id="c1") as tx:
        assert tx.conversation_id != first_id


def test_session_round_trip(store: Store) -> None:
    session = Session(
        lang="en",
        stack=(
            Frame("vneid_activate", "r1", "open_app", resume_at="done"),
            Frame("nfc_help", "r7", "ask_phone"),
        ),
        vars=(("birth_year", 1965), ("name", "Bà Năm"), ("ok", True), ("score", 0.5)),
        failures=1,
        misses=2,
        history=((Frame("vneid_activate", "r1", "got_sms"),),),
        offered_human=True,
    )
    with store.conversation(channel=CHANNEL, chat_id="c1") as tx:
        tx.save_session(session)
    with store.conversation(channel=CHANNEL, chat_id="c1") as tx:
        assert tx.load_session() == session
        tx.save_session(EMPTY)
    with store.conversation(channel=CHANNEL, chat_id="c1") as tx:
        assert tx.load_session() == EMPTY


def test_session_row_says_where_the_citizen_waits(store: Store) -> None:
    waiting = Session(stack=(Frame("vneid_activate", "r1", "got_sms"), Frame("nfc", "r2", "tap")))
    with store.conversation(channel=CHANNEL, chat_id="c1") as tx:
        tx.save_session(waiting)
    [row] = rows(store, SessionRow)
    assert (row.flow_id, row.flow_rev, row.step_id) == ("nfc", "r2", "tap")
    assert row.updated_at.tzinfo is not None


def test_exception_rolls_everything_back(store: Store) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        with store.conversation(channel=CHANNEL, chat_id="c1") as tx:
            tx.record_inbound(incoming(message_id="1"))
            tx.save_session(EMPTY.with_var("x", 1))
            tx.queue_outgoing(say("c1", "Chào bạn"))
            raise RuntimeError("boom")
    assert store.transcript(channel=CHANNEL, chat_id="c1") == []
    assert store.outbox_after(channel=CHANNEL, chat_id="c1") == []
    with store.conversation(channel=CHANNEL, chat_id="c1") as tx:
        assert tx.load_session() == EMPTY
        assert tx.record_inbound(incoming(message_id="1")) is True


def test_lang_is_kept(store: Store) -> None:
    with store.conversation(channel=CHANNEL, chat_id="c1") as tx:
        tx.set_lang("en")
        assert tx.lang == "en"
    with store.conversation(channel=CHANNEL, chat_id="c1") as tx:
        assert tx.lang == "en"


# --- inbound messages --------------------------------------------------------------------


def test_duplicate_inbound_is_stored_once(store: Store) -> None:
    with store.conversation(channel=CHANNEL, chat_id="c1") as tx:
        assert tx.record_inbound(incoming(text="một", message_id="100")) is True
        assert tx.record_inbound(incoming(text="một", message_id="100")) is False
    with store.conversation(channel=CHANNEL, chat_id="c1") as tx:
        assert tx.record_inbound(incoming(text="một", message_id="100")) is False
    transcript = store.transcript(channel=CHANNEL, chat_id="c1")
    assert [(m.direction, m.text, m.external_id) for m in transcript] == [
        (Direction.IN, "một", "100")
    ]


def test_inbound_ids_are_unique_per_channel_only(store: Store) -> None:
    with store.conversation(channel=CHANNEL, chat_id="c1") as tx:
        assert tx.record_inbound(incoming(message_id="7")) is True
        # Messages without an id cannot be deduplicated: each one is new.
        assert tx.record_inbound(incoming(message_id=None)) is True
        assert tx.record_inbound(incoming(message_id=None)) is True
    with store.conversation(channel="web", chat_id="c1") as tx:
        assert tx.record_inbound(Incoming(channel="web", chat_id="c1", message_id="7")) is True
    assert len(store.transcript(channel=CHANNEL, chat_id="c1")) == 3


def test_inbound_keeps_payload_and_media_kind(store: Store) -> None:
    photo = Incoming(
        channel=CHANNEL,
        chat_id="c1",
        payload="c:vneid_activate:got_sms:1",
        media=Media(kind=MediaKind.PHOTO, ref="file-1"),
        message_id="9",
    )
    with store.conversation(channel=CHANNEL, chat_id="c1") as tx:
        tx.record_inbound(photo)
    [record] = store.transcript(channel=CHANNEL, chat_id="c1")
    assert (record.payload, record.media_kind, record.text) == (
        "c:vneid_activate:got_sms:1",
        "photo",
        "",
    )
    assert record.created_at.tzinfo is not None


def test_duplicate_racing_in_from_another_chat_is_refused(store: Store) -> None:
    """The unique index is the last guard: a duplicate id that passes the first check
    while the other transaction is still open is refused, and the rest still commits."""
    inside = threading.Event()
    go_on = threading.Event()

    def first() -> None:
        with store.conversation(channel=CHANNEL, chat_id="a") as tx:
            assert tx.record_inbound(incoming(chat_id="a", message_id="42")) is True
            inside.set()
            go_on.wait(10)

    with ThreadPoolExecutor(max_workers=1) as pool:
        holder = pool.submit(first)
        assert inside.wait(10)
        # On SQLite the second writer waits for the first; on PostgreSQL it blocks on
        # the unique index. Either way it must come back False once the first commits.
        threading.Timer(0.3, go_on.set).start()
        with store.conversation(channel=CHANNEL, chat_id="b") as tx:
            assert tx.record_inbound(incoming(chat_id="b", message_id="42")) is False
            tx.save_session(EMPTY.with_var("still", "saved"))
        holder.result(timeout=10)
    with store.conversation(channel=CHANNEL, chat_id="b") as tx:
        assert tx.load_session().variables == {"still": "saved"}
    assert len(store.transcript(channel=CHANNEL, chat_id="a")) == 1
    assert store.transcript(channel=CHANNEL, chat_id="b") == []


# --- redaction ---------------------------------------------------------------------------


def test_stored_text_is_redacted(store: Store) -> None:
    with store.conversation(channel=CHANNEL, chat_id="c1") as tx:
        tx.record_inbound(incoming(text=f"CCCD {CCCD}, sdt {PHONE}, OTP 123456", message_id="1"))
        [out_id] = tx.queue_outgoing(say("c1", f"Số CCCD của bạn là {CCCD}, đúng không?"))
    texts = [m.text for m in store.transcript(channel=CHANNEL, chat_id="c1")]
    assert texts == [
        "CCCD *********890, sdt 09******78, OTP ******",
        "Số CCCD của bạn là *********890, đúng không?",
    ]
    # The outbox must deliver the real text, and keeps it only until it is delivered.
    [item] = store.outbox_after(channel=CHANNEL, chat_id="c1")
    assert item.text == f"Số CCCD của bạn là {CCCD}, đúng không?"
    store.mark_sent(out_id, external_id="m1")
    [item] = store.outbox_after(channel=CHANNEL, chat_id="c1")
    assert item.text == "Số CCCD của bạn là *********890, đúng không?"


def test_event_data_is_redacted_and_indexed(store: Store) -> None:
    with store.conversation(channel=CHANNEL, chat_id="c1") as tx:
        tx.record_events(
            [
                Said(text=f"Bạn gọi {PHONE} nhé", buttons=(Button("Gọi 0912345678", "g:call"),)),
                AnswerAccepted(flow_id="flow123456", step_id="step123456", var="phone"),
            ]
        )
    said, accepted = sorted(rows(store, EventRow), key=lambda r: r.id)
    assert said.kind == "Said"
    assert said.data["text"] == "Bạn gọi 09******78 nhé"
    assert said.data["buttons"] == [{"label": "Gọi 09******78", "payload": "g:call", "url": None}]
    assert (said.flow_id, said.step_id) == (None, None)
    # Identifiers are names, never masked.
    assert (accepted.flow_id, accepted.step_id) == ("flow123456", "step123456")
    assert accepted.data == {"flow_id": "flow123456", "step_id": "step123456", "var": "phone"}


# --- outbox ------------------------------------------------------------------------------


def test_outbox_keeps_order_and_gives_one_message_per_chat(store: Store) -> None:
    a = queue(store, "a", "a1", "a2", "a3")
    b = queue(store, "b", "b1")
    b += queue(store, "b", "b2")
    assert a == sorted(a) and b == sorted(b)

    def due() -> list[str]:
        return [i.text for i in store.due_outbox(channel=CHANNEL, now=later())]

    assert due() == ["a1", "b1"]
    assert store.due_outbox(channel="elsewhere", now=later()) == []
    store.mark_sent(a[0], external_id="tg-1")
    assert due() == ["a2", "b1"]  # oldest first
    store.mark_sent(b[0])
    store.mark_sent(a[1])
    assert due() == ["a3", "b2"]
    assert [i.text for i in store.due_outbox(channel=CHANNEL, now=later(), limit=1)] == ["a3"]
    store.mark_sent(a[2])
    store.mark_sent(b[1])
    assert due() == []

    items = store.outbox_after(channel=CHANNEL, chat_id="a")
    assert [(i.seq, i.status, i.attempts) for i in items] == [
        (1, OutboxStatus.SENT, 1),
        (2, OutboxStatus.SENT, 1),
        (3, OutboxStatus.SENT, 1),
    ]
    assert items[0].external_id == "tg-1"
    assert all(i.sent_at is not None and i.sent_at >= i.created_at for i in items)


def test_outbox_item_carries_buttons(store: Store) -> None:
    buttons = (Button("Đã nhận", "c:f:s:1"), Button("Mở trang", "u:1", url="https://vneid.gov.vn"))
    with store.conversation(channel=CHANNEL, chat_id="c1") as tx:
        [item_id] = tx.queue_outgoing([Outgoing(chat_id="c1", text="Chọn một", buttons=buttons)])
    [item] = store.due_outbox(channel=CHANNEL, now=later())
    assert (item.id, item.chat_id, item.channel, item.buttons) == (item_id, "c1", CHANNEL, buttons)
    assert item.status is OutboxStatus.PENDING and item.attempts == 0


def test_outbox_after_returns_the_rest_of_the_chat(store: Store) -> None:
    ids = queue(store, "c1", "một", "hai", "ba")
    queue(store, "c2", "khác")
    assert [i.text for i in store.outbox_after(channel=CHANNEL, chat_id="c1")] == [
        "một",
        "hai",
        "ba",
    ]
    after = store.outbox_after(channel=CHANNEL, chat_id="c1", after_id=ids[0])
    assert [i.id for i in after] == ids[1:]
    assert store.outbox_after(channel=CHANNEL, chat_id="c1", after_id=ids[-1]) == []


def test_mark_retry_delays_the_chat(store: Store) -> None:
    first, _second = queue(store, "c1", "một", "hai")
    queue(store, "c2", "khác")
    now = utcnow()
    store.mark_retry(first, at=now + timedelta(seconds=60), error="429 Too Many Requests")
    # The chat waits behind its first message; other chats go on.
    assert [i.text for i in store.due_outbox(channel=CHANNEL, now=now)] == ["khác"]
    later_items = store.due_outbox(channel=CHANNEL, now=now + timedelta(seconds=61))
    assert [i.text for i in later_items] == ["một", "khác"]
    retried = later_items[0]
    assert (retried.attempts, retried.last_error) == (1, "429 Too Many Requests")
    assert retried.next_attempt_at == now + timedelta(seconds=60)


def test_mark_failed_lets_the_chat_go_on(store: Store) -> None:
    first, _second = queue(store, "c1", f"Số {PHONE}", "hai")
    store.mark_failed(first, error="403 Forbidden: bot was blocked by the user")
    assert [i.text for i in store.due_outbox(channel=CHANNEL, now=later())] == ["hai"]
    failed = store.outbox_after(channel=CHANNEL, chat_id="c1")[0]
    assert (failed.status, failed.attempts, failed.text) == (
        OutboxStatus.FAILED,
        1,
        "Số 09******78",
    )


def test_marking_a_missing_item_is_harmless(store: Store) -> None:
    store.mark_sent(999)
    store.mark_retry(999, at=later(), error="x")
    store.mark_failed(999, error="x")
    assert store.due_outbox(channel=CHANNEL, now=later()) == []


def test_naive_datetimes_are_refused(store: Store) -> None:
    with pytest.raises(StoreError, match="naive datetime"):
        store.due_outbox(channel=CHANNEL, now=datetime(2025, 1, 1))


# --- forget ------------------------------------------------------------------------------


def test_forget_deletes_personal_data(store: Store) -> None:
    with store.conversation(channel=CHANNEL, chat_id="c1") as tx:
        tx.record_inbound(incoming(text="tôi tên Năm", message_id="1"))
        tx.save_session(EMPTY.with_var("name", "Năm"))
        tx.record_events([FlowStarted(flow_id="f", version=1, rev="r"), Said(text="Chào Năm")])
        sent, _pending = tx.queue_outgoing(say("c1", "Chào Năm", "Bạn khỏe không?"))
    store.mark_sent(sent)
    with store.conversation(channel=CHANNEL, chat_id="c1") as tx:
        tx.load_session()  # loaded before forgetting, as the handler does
        tx.forget()
        assert tx.status is ConversationStatus.FORGOTTEN
        assert tx.load_session() == EMPTY
        tx.save_session(EMPTY.with_var("fresh", True))  # the handler saves the new one
        [goodbye] = tx.queue_outgoing(say("c1", "Đã xoá dữ liệu của bạn."))

    assert [m.text for m in store.transcript(channel=CHANNEL, chat_id="c1")] == [
        "Đã xoá dữ liệu của bạn."
    ]
    [item] = store.outbox_after(channel=CHANNEL, chat_id="c1")
    assert (item.id, item.seq) == (goodbye, 3)  # seq keeps growing
    events = rows(store, EventRow)
    assert sorted(e.kind for e in events) == ["FlowStarted", "Said"]
    assert all(e.data == {} for e in events)
    assert store.stats()["flows"] == {"f": {"started": 1, "completed": 0}}
    with store.conversation(channel=CHANNEL, chat_id="c1") as tx:
        assert tx.load_session().variables == {"fresh": True}
        assert tx.status is ConversationStatus.FORGOTTEN
        tx.record_inbound(incoming(text="xin chào", message_id="2"))
    with store.conversation(channel=CHANNEL, chat_id="c1") as tx:
        assert tx.status is ConversationStatus.ACTIVE


def test_blocked_conversation_is_active_again_when_the_citizen_writes(store: Store) -> None:
    with store.conversation(channel=CHANNEL, chat_id="c1") as tx:
        tx.record_inbound(incoming(message_id="1"))
    store.mark_blocked(channel=CHANNEL, chat_id="c1")
    with store.conversation(channel=CHANNEL, chat_id="c1") as tx:
        assert tx.status is ConversationStatus.BLOCKED
        tx.record_inbound(incoming(message_id="2"))
    with store.conversation(channel=CHANNEL, chat_id="c1") as tx:
        assert tx.status is ConversationStatus.ACTIVE


# --- figures and flow snapshots ----------------------------------------------------------


def test_stats_figures(store: Store) -> None:
    assert store.stats() == {
        "conversations": 0,
        "messages_in": 0,
        "messages_out": 0,
        "flows": {},
        "handoffs_requested": 0,
        "rejected_steps": [],
    }
    with store.conversation(channel=CHANNEL, chat_id="c1") as tx:
        tx.record_inbound(incoming(message_id="1"))
        tx.record_inbound(incoming(message_id="2"))
        tx.queue_outgoing(say("c1", "một", "hai", "ba"))
        tx.record_events(
            [
                FlowStarted(flow_id="vneid_activate", version=3, rev="r1"),
                AnswerRejected(flow_id="vneid_activate", step_id="ask_year", attempt=1),
                AnswerRejected(flow_id="vneid_activate", step_id="ask_year", attempt=2),
                AnswerRejected(flow_id="vneid_activate", step_id="ask_phone", attempt=1),
                HandoffRequested(reason="stuck", flow_id="vneid_activate", step_id="ask_year"),
                FlowEnded(flow_id="vneid_activate", completed=False, reason="handoff"),
            ]
        )
    with store.conversation(channel=CHANNEL, chat_id="c2") as tx:
        tx.record_inbound(incoming(chat_id="c2", message_id="3"))
        tx.record_events(
            [
                FlowStarted(flow_id="vneid_activate", version=3, rev="r1"),
                FlowEnded(flow_id="vneid_activate", completed=True),
                FlowStarted(flow_id="passport", version=1, rev="p1"),
                AnswerRejected(flow_id="passport", step_id="ask_date", attempt=1),
                HandoffRequested(reason="asked"),
            ]
        )
    assert store.stats() == {
        "conversations": 2,
        "messages_in": 3,
        "messages_out": 3,
        "flows": {
            "passport": {"started": 1, "completed": 0},
            "vneid_activate": {"started": 2, "completed": 1},
        },
        "handoffs_requested": 2,
        "rejected_steps": [
            {"flow_id": "vneid_activate", "step_id": "ask_year", "count": 2},
            {"flow_id": "passport", "step_id": "ask_date", "count": 1},
            {"flow_id": "vneid_activate", "step_id": "ask_phone", "count": 1},
        ],
    }


def test_rejected_steps_are_the_top_ten(store: Store) -> None:
    with store.conversation(channel=CHANNEL, chat_id="c1") as tx:
        tx.record_events(
            [
                AnswerRejected(flow_id="f", step_id=f"s{n:02d}", attempt=1)
                for n in range(12)
                for _ in range(n + 1)
            ]
        )
    top = store.stats()["rejected_steps"]
    assert [(s["step_id"], s["count"]) for s in top] == [
        (f"s{n:02d}", n + 1) for n in range(11, 1, -1)
    ]


def test_flow_snapshots_are_idempotent(store: Store) -> None:
    assert store.load_flow_snapshot(flow_id="vneid_activate", rev="r1") is None
    first = {"id": "vneid_activate", "version": 3, "steps": {"a": {"say": {"vi": "Chào bạn"}}}}
    store.save_flow_snapshot(flow_id="vneid_activate", rev="r1", version=3, data=first)
    store.save_flow_snapshot(flow_id="vneid_activate", rev="r1", version=3, data={"other": 1})
    store.save_flow_snapshot(flow_id="vneid_activate", rev="r2", version=4, data={"v": 4})
    assert store.load_flow_snapshot(flow_id="vneid_activate", rev="r1") == first
    assert store.load_flow_snapshot(flow_id="vneid_activate", rev="r2") == {"v": 4}
    assert store.load_flow_snapshot(flow_id="other", rev="r1") is None


def test_create_all_is_idempotent_and_store_is_healthy(store: Store) -> None:
    queue(store, "c1", "một")
    store.create_all()
    assert store.healthy() is True
    assert len(store.outbox_after(channel=CHANNEL, chat_id="c1")) == 1


# --- one message at a time per conversation ----------------------------------------------

MESSAGES_EACH = 50


def bump_counter(url: str, chat_id: str, tag: str, count: int = MESSAGES_EACH) -> None:
    """Handle `count` messages: read the counter from the session, add one, save.
    Lost updates would show as a final counter below the number of messages."""
    store = Store(url)
    try:
        for n in range(count):
            with store.conversation(channel=CHANNEL, chat_id=chat_id) as tx:
                assert tx.record_inbound(incoming(chat_id, f"{tag} {n}", f"{tag}-{n}"))
                session = tx.load_session()
                counter = int(session.variables.get("counter", 0))
                time.sleep(0.001)  # widen the window a race would need
                tx.save_session(session.with_var("counter", counter + 1))
                tx.queue_outgoing(say(chat_id, f"{counter + 1}"))
    finally:
        store.dispose()


def final_counter(store: Store, chat_id: str) -> object:
    with store.conversation(channel=CHANNEL, chat_id=chat_id) as tx:
        return tx.load_session().variables.get("counter")


def assert_serialized(store: Store, chat_id: str, workers: int) -> None:
    total = workers * MESSAGES_EACH
    assert final_counter(store, chat_id) == total
    assert len(store.transcript(channel=CHANNEL, chat_id=chat_id, limit=10 * total)) == 2 * total
    items = store.outbox_after(channel=CHANNEL, chat_id=chat_id)
    # Outbox rows in id order carry the counter in order: each message saw the last one.
    assert [i.text for i in items] == [str(n) for n in range(1, total + 1)]
    assert [i.seq for i in items] == list(range(1, total + 1))


def test_threads_handle_one_chat_one_message_at_a_time(store: Store) -> None:
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(bump_counter, store.url, "shared", f"t{n}") for n in range(2)]
        for future in futures:
            future.result(timeout=120)
    assert_serialized(store, "shared", workers=2)


def test_processes_handle_one_chat_one_message_at_a_time(store: Store) -> None:
    with ProcessPoolExecutor(max_workers=2, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(bump_counter, store.url, "shared", f"p{n}") for n in range(2)]
        for future in futures:
            future.result(timeout=180)
    assert_serialized(store, "shared", workers=2)


def test_other_chats_are_not_held_up(store: Store) -> None:
    holding = threading.Event()
    release = threading.Event()
    hold_seconds = 0.5

    def hold_chat_a() -> None:
        with store.conversation(channel=CHANNEL, chat_id="a") as tx:
            tx.save_session(EMPTY.with_var("busy", True))
            holding.set()
            release.wait(10)

    with ThreadPoolExecutor(max_workers=1) as pool:
        holder = pool.submit(hold_chat_a)
        assert holding.wait(10)
        timer = threading.Timer(hold_seconds, release.set)
        timer.start()
        started = time.monotonic()
        with store.conversation(channel=CHANNEL, chat_id="b") as tx:
            tx.save_session(EMPTY.with_var("done", True))
        elapsed = time.monotonic() - started
        a_still_held = not release.is_set()
        timer.join()
        holder.result(timeout=10)
    if store.url.startswith("sqlite"):
        # One writer at a time on SQLite: chat b waits only for chat a's transaction.
        assert elapsed < hold_seconds + 2
    else:
        # PostgreSQL locks the conversation row only: chat b went through meanwhile.
        assert a_still_held
        assert elapsed < hold_seconds


def test_unreachable_database_is_unhealthy_and_raises_store_error() -> None:
    store = Store("postgresql://nobody@127.0.0.1:1/none?connect_timeout=2")
    try:
        assert store.healthy() is False
        with pytest.raises(StoreError, match="database error"):
            store.create_all()
    finally:
        store.dispose()


def test_tables_hold_what_the_records_show(store: Store) -> None:
    [item_id] = queue(store, "c1", "một")
    [row] = rows(store, OutboxRow)
    assert (row.id, row.status, row.chat_id, row.seq) == (item_id, "pending", "c1", 1)
    assert row.next_attempt_at.tzinfo is not None


def test_reads_do_not_wait_for_a_busy_conversation(store: Store) -> None:
    queue(store, "b", "một")
    holding = threading.Event()
    release = threading.Event()

    def hold_chat_a() -> None:
        with store.conversation(channel=CHANNEL, chat_id="a") as tx:
            tx.record_inbound(incoming(chat_id="a", message_id="1"))
            holding.set()
            release.wait(10)

    with ThreadPoolExecutor(max_workers=1) as pool:
        holder = pool.submit(hold_chat_a)
        try:
            assert holding.wait(10)
            started = time.monotonic()
            assert len(store.due_outbox(channel=CHANNEL, now=later())) == 1
            assert store.transcript(channel=CHANNEL, chat_id="a") == []  # not committed yet
            assert store.healthy()
            assert store.stats()["conversations"] >= 1
            assert time.monotonic() - started < 2
        finally:
            release.set()
        holder.result(timeout=10)


# --- upgrades ----------------------------------------------------------------------------


def test_create_all_adds_a_column_an_older_database_lacks(store: Store) -> None:
    """A database made before `message.payload` existed: the next start adds it, and
    the stored rows and the next message work."""
    with store.conversation(channel=CHANNEL, chat_id="old") as tx:
        tx.record_inbound(incoming(text="trước", message_id="1"))
    engine = store._engine
    with engine.begin() as connection:
        connection.exec_driver_sql("ALTER TABLE message DROP COLUMN payload")
    try:
        store.create_all()
        store.create_all()  # and a second start (or a second process) changes nothing
        with store.conversation(channel=CHANNEL, chat_id="old") as tx:
            assert tx.record_inbound(incoming(text="sau", message_id="2"))
        texts = [m.text for m in store.transcript(channel=CHANNEL, chat_id="old")]
        assert texts == ["trước", "sau"]
    finally:
        store.create_all()


def test_a_missing_column_that_cannot_be_null_is_refused_in_one_line(store: Store) -> None:
    engine = store._engine
    with engine.begin() as connection:
        connection.exec_driver_sql("ALTER TABLE outbox DROP COLUMN attempts")
    try:
        with pytest.raises(ConfigError, match=r"table outbox lacks the column attempts"):
            store.create_all()
    finally:
        with engine.begin() as connection:
            connection.exec_driver_sql(
                "ALTER TABLE outbox ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0"
            )
