"""bot/channels/zalo.py: parsing events, the signature, rendering, and the OA client with
its token management against the fake Zalo over real HTTP (two processes racing to
refresh: two Stores on one database, two channels)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from bot.channels.zalo import (
    PAYLOAD_PREFIX,
    ZaloOAChannel,
    numbered,
    read_bot_update,
    read_event,
    render,
    signature,
    verify_signature,
)
from bot.channels.zalo_replies import ReplyTracker
from bot.errors import PermanentSend, RetryableSend
from bot.messages import Button, Incoming, MediaKind
from bot.store import OutboxItem, OutboxStatus, Store, ZaloTokenStore
from bot.store.replies import InboundRef, LastInbound
from bot.store.types import utcnow
from tests.fakes.zalo import APP_ID, APP_SECRET, OA_SECRET_KEY, FakeZalo, ZaloCitizen, served

# --- inbound -------------------------------------------------------------------------------


def test_the_signature_is_sha256_of_app_id_body_timestamp_and_oa_secret() -> None:
    body = b'{"event_name":"user_send_text","timestamp":"1700000000000"}'
    raw = APP_ID.encode() + body + b"1700000000000" + OA_SECRET_KEY.encode()
    expected = "mac=" + hashlib.sha256(raw).hexdigest()
    assert signature(APP_ID, body, "1700000000000", OA_SECRET_KEY) == expected
    data = {"app_id": APP_ID, "timestamp": "1700000000000"}
    assert verify_signature(expected, body, data, app_id=APP_ID, oa_secret_key=OA_SECRET_KEY)
    assert verify_signature(
        expected.removeprefix("mac="), body, data, app_id=APP_ID, oa_secret_key=OA_SECRET_KEY
    )
    assert not verify_signature(expected, body + b" ", data, app_id=APP_ID, oa_secret_key="x")
    assert not verify_signature(None, body, data, app_id=APP_ID, oa_secret_key=OA_SECRET_KEY)


def test_a_text_event_becomes_an_incoming() -> None:
    data = ZaloCitizen("42").text("kich hoat vneid")
    incoming = read_event(data).incoming
    assert incoming is not None
    assert (incoming.channel, incoming.chat_id, incoming.text) == ("zalo", "42", "kich hoat vneid")
    assert incoming.message_id == data["message"]["msg_id"]
    assert incoming.payload is None


def test_a_pressed_button_comes_back_as_its_payload() -> None:
    incoming = read_event(ZaloCitizen("42").text(PAYLOAD_PREFIX + "g:menu")).incoming
    assert incoming is not None and incoming.payload == "g:menu" and incoming.text == ""


def test_media_events_become_media() -> None:
    citizen = ZaloCitizen("42")
    photo = read_event(citizen.image()).incoming
    assert photo is not None and photo.media is not None
    assert photo.media.kind is MediaKind.PHOTO and photo.media.ref == "https://z/i.jpg"
    where = read_event(citizen.location(10.5, 106.25)).incoming
    assert where is not None and where.media is not None
    assert (where.media.latitude, where.media.longitude) == (10.5, 106.25)
    sticker = citizen.event("user_send_sticker", {"attachments": [{"payload": {"id": "s1"}}]})
    read = read_event(sticker).incoming
    assert read is not None and read.media is not None and read.media.kind is MediaKind.STICKER
    audio = citizen.event("user_send_audio", {"attachments": [{"payload": {"url": "a.aac"}}]})
    heard = read_event(audio).incoming
    assert heard is not None and heard.media is not None and heard.media.kind is MediaKind.AUDIO


def test_follow_starts_and_unfollow_blocks() -> None:
    citizen = ZaloCitizen("42")
    follow = read_event(citizen.event("follow"))
    assert follow.incoming is not None and follow.incoming.payload == "g:start"
    assert read_event(citizen.event("unfollow")).blocked_chat == "42"
    assert read_event({"event_name": "oa_send_text"}).incoming is None


def test_a_bot_api_update_is_read() -> None:
    message = {"message_id": "m1", "from": {"id": "u1"}, "chat": {"id": "u1"}, "text": "1"}
    incoming = read_bot_update({"event_name": "message.text.received", "message": message}).incoming
    assert incoming is not None and (incoming.channel, incoming.chat_id) == ("zalo_bot", "u1")


# --- rendering -----------------------------------------------------------------------------


def test_long_text_is_split_and_buttons_go_on_the_last_part() -> None:
    text = ("Một câu dài về VNeID. " * 200).strip()
    choices = (Button("Đã nhận", "c:f:s:1"), Button("Chưa nhận", "c:f:s:2"))
    messages = render(text, choices)
    assert len(messages) > 1 and all(len(m["text"]) <= 2000 for m in messages)
    assert all("attachment" not in m for m in messages[:-1])
    buttons = messages[-1]["attachment"]["payload"]["buttons"]
    assert [b["title"] for b in buttons] == ["1. Đã nhận", "2. Chưa nhận"]
    assert buttons[0] == {"title": "1. Đã nhận", "type": "oa.query.hide", "payload": "#cb:c:f:s:1"}


def test_too_many_choices_become_a_numbered_list() -> None:
    choices = tuple(Button(f"Lựa chọn {n}", f"c:f:s:{n}") for n in range(1, 8))
    messages = render("Bạn chọn gì?", choices)
    assert "attachment" not in messages[-1]
    assert "7. Lựa chọn 7" in messages[-1]["text"]
    assert numbered("A", (Button("Xem", "", url="https://x"),)) == "A\n\nXem: https://x"


# --- the OA client against the fake ----------------------------------------------------------


@pytest.fixture(scope="module")
def served_fake() -> Iterator[FakeZalo]:
    with served() as fake:
        yield fake


@pytest.fixture
def fake(served_fake: FakeZalo) -> FakeZalo:
    served_fake.reset()
    return served_fake


def channel(store: Store, fake: FakeZalo, *, replies: ReplyTracker | None = None) -> ZaloOAChannel:
    return ZaloOAChannel(
        ZaloTokenStore(store),
        app_id=APP_ID,
        app_secret=APP_SECRET,
        access_token="access-0",
        refresh_token="refresh-0",
        api_base_url=fake.base_url,
        oauth_base_url=fake.base_url,
        timeout=5.0,
        refresh_margin=300.0,
        replies=replies,
    )


def item(chat_id: str, text: str = "Xin chào", *, conversation_id: int = 1) -> OutboxItem:
    now = utcnow()
    return OutboxItem(
        id=1,
        conversation_id=conversation_id,
        channel="zalo",
        chat_id=chat_id,
        seq=1,
        text=text,
        buttons=(),
        status=OutboxStatus.SENDING,
        attempts=0,
        next_attempt_at=now,
        last_error=None,
        external_id=None,
        created_at=now,
        sent_at=None,
    )


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_two_processes_racing_refresh_once(store: Store, fake: FakeZalo) -> None:
    other = Store(store.url)  # a second process: its own engine on the same database
    try:
        first, second = channel(store, fake), channel(other, fake)
        fake.refresh_delay = 0.3  # both see the expiring token while the refresh runs

        async def main() -> list[str]:
            await first.start()
            tokens = ZaloTokenStore(store)
            # The stored token expires within the margin: both must refresh before sending.
            assert tokens.finish_refresh(
                "oa",
                version=0,
                access_token="access-0",
                refresh_token="refresh-0",
                expires_at=utcnow() + timedelta(seconds=10),
            )
            try:
                return list(await asyncio.gather(first.send(item("u1")), second.send(item("u2"))))
            finally:
                await first.close()
                await second.close()

        ids = run(main())
        assert all(ids)
        assert len(fake.refresh_calls) == 1 and fake.refused_refresh == 0
        assert {m.access_token for m in fake.sent} == {"access-1"}
        assert first.refreshes + second.refreshes == 1
        pair = ZaloTokenStore(other).current("oa")
        assert pair is not None and pair.refresh_token == "refresh-1"
    finally:
        other.dispose()


def test_a_stored_pair_wins_over_the_settings(store: Store, fake: FakeZalo) -> None:
    tokens = ZaloTokenStore(store)
    tokens.seed("oa", access_token="access-0", refresh_token="refresh-0")
    assert tokens.finish_refresh(
        "oa", version=0, access_token="access-9", refresh_token="refresh-9", expires_at=None
    )
    assert tokens.seed("oa", access_token="stale", refresh_token="stale").access_token == "access-9"


def test_replies_name_the_last_message_within_48_hours_and_8_replies(
    store: Store, fake: FakeZalo
) -> None:
    now = utcnow()
    inbound: dict[int, InboundRef | None] = {
        1: InboundRef("msg-new", now - timedelta(hours=47)),
        2: InboundRef("msg-old", now - timedelta(hours=49)),
        3: None,
    }
    oa = channel(store, fake, replies=ReplyTracker(inbound.__getitem__))

    async def main() -> None:
        await oa.start()
        try:
            for _ in range(9):
                await oa.send(item("u1", conversation_id=1))
            await oa.send(item("u2", conversation_id=2))
            await oa.send(item("u3", conversation_id=3))
        finally:
            await oa.close()

    run(main())
    assert [m.reply_to for m in fake.messages("u1")] == ["msg-new"] * 8 + [None]
    assert [m.reply_to for m in fake.messages("u2") + fake.messages("u3")] == [None, None]


def test_the_last_inbound_skips_follows_and_is_forgotten_with_the_chat(store: Store) -> None:
    def write(message_id: str | None) -> int:
        with store.conversation(channel="zalo", chat_id="u9") as tx:
            tx.record_inbound(Incoming(channel="zalo", chat_id="u9", message_id=message_id))
            return tx.conversation_id

    last = LastInbound(store)
    conversation_id = write("msg-1")
    assert (ref := last(conversation_id)) is not None and ref.message_id == "msg-1"
    write("follow:u9:1700000000000")
    write(None)  # a message without a channel id (the web chat's kind)
    assert (ref := last(conversation_id)) is not None and ref.message_id == "msg-1"
    write("msg-2")
    assert (ref := last(conversation_id)) is not None and ref.message_id == "msg-2"
    with store.conversation(channel="zalo", chat_id="u9") as tx:
        tx.forget()
    assert last(conversation_id) is None


def test_api_errors_map_to_send_errors(store: Store, fake: FakeZalo) -> None:
    oa = channel(store, fake)
    fake.rate_errors = 1
    fake.outside_window.add("late")

    async def main() -> tuple[BaseException, BaseException]:
        await oa.start()
        try:
            with pytest.raises(RetryableSend) as limited:
                await oa.send(item("u1"))
            with pytest.raises(PermanentSend) as window:
                await oa.send(item("late"))
            return limited.value, window.value
        finally:
            await oa.close()

    limited, window = run(main())
    assert isinstance(limited, RetryableSend) and limited.retry_after == 30.0
    assert "messaging window" in str(window)


def test_a_refused_refresh_token_is_retried_later_not_dropped(store: Store, fake: FakeZalo) -> None:
    oa = channel(store, fake)
    fake.refresh_token = "someone-else-used-it"
    fake.expire_access_tokens()

    async def main() -> None:
        await oa.start()
        try:
            with pytest.raises(RetryableSend, match="refresh refused"):
                await oa.send(item("u1"))
        finally:
            await oa.close()

    run(main())
    pair = ZaloTokenStore(store).current("oa")
    assert pair is not None and pair.refreshing_until is None  # the lease was given back
