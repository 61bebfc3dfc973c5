"""Zalo end to end: the app under a real server, signed OA events POSTed to /zalo/webhook
with httpx, replies delivered by the outbox sender through our httpx client to a fake
Zalo (OA API, OAuth, Bot API) over real HTTP. Both databases (`store`)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlmodel import select

from bot.channels.zalo import RATE_LIMIT_WAIT, ZaloBotChannel, read_event, signature
from bot.config import Settings
from bot.content import ContentLibrary
from bot.conversation import ConversationService
from bot.errors import PermanentSend, RetryableSend
from bot.store import OutboxItem, OutboxStatus, Store, ZaloTokenStore
from bot.store.tables import ConversationRow, MessageRow
from bot.store.types import utcnow
from tests.fakes.zalo import (
    APP_ID,
    APP_SECRET,
    BOT_TOKEN,
    OA_SECRET_KEY,
    FakeZalo,
    ZaloCitizen,
    ZaloSent,
    served,
    signed,
)
from tests.live import LiveServer
from webhook.app import create_app

CHANNEL = "zalo"
PUBLIC = "https://bot.example.org"
BOT_SECRET = "zalo-bot-secret-123"


def zalo_settings(fake: FakeZalo, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "zalo_mode": "oa",
        "zalo_app_id": APP_ID,
        "zalo_app_secret": APP_SECRET,
        "zalo_oa_secret_key": OA_SECRET_KEY,
        "zalo_oa_access_token": "access-0",
        "zalo_oa_refresh_token": "refresh-0",
        "zalo_oa_api_base_url": fake.base_url,
        "zalo_oauth_base_url": fake.base_url,
        "zalo_bot_api_base_url": fake.base_url,
        "zalo_timeout_seconds": 5.0,
        "outbox_rate_per_second": 1000.0,
        "outbox_burst": 100,
        "outbox_chat_interval_seconds": 0.0,
        "outbox_backoff_seconds": 0.05,
        "outbox_backoff_cap_seconds": 0.2,
        "outbox_lease_seconds": 15.0,
        "outbox_idle_seconds": 0.05,
        "content_reload_seconds": 60.0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


def wait_until(condition: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class OA:
    """The running app as Zalo would reach it."""

    def __init__(self, server: LiveServer, fake: FakeZalo, service: ConversationService) -> None:
        self.fake = fake
        self.service = service
        self.store: Store = service.store
        self.client = httpx.Client(base_url=server.url, timeout=30)

    def post(self, data: dict[str, Any], headers: dict[str, str] | None = None) -> httpx.Response:
        body, signed_headers = signed(data)
        return self.client.post("/zalo/webhook", content=body, headers=headers or signed_headers)

    def send(self, data: dict[str, Any], citizen: ZaloCitizen) -> list[ZaloSent]:
        before = len(self.fake.messages(citizen.user_id))
        response = self.post(data)
        assert response.status_code == 200, response.text
        self.delivered(citizen)
        return self.fake.messages(citizen.user_id)[before:]

    def delivered(self, citizen: ZaloCitizen) -> None:
        wait_until(lambda: not self.waiting(citizen), 15, "outbox to drain")

    def waiting(self, citizen: ZaloCitizen) -> list[int]:
        items = self.store.outbox_after(channel=CHANNEL, chat_id=citizen.user_id)
        return [i.id for i in items if i.status in (OutboxStatus.PENDING, OutboxStatus.SENDING)]

    def inbound(self, citizen: ZaloCitizen) -> int:
        records = self.store.transcript(channel=CHANNEL, chat_id=citizen.user_id, limit=500)
        return sum(1 for r in records if r.direction == "in")


@pytest.fixture(scope="module")
def served_fake() -> Iterator[FakeZalo]:
    with served() as fake:
        yield fake


@pytest.fixture
def fake(served_fake: FakeZalo) -> FakeZalo:
    # A fresh fake state for each test, on the same server.
    served_fake.reset()
    return served_fake


@pytest.fixture
def service(store: Store, library: ContentLibrary) -> ConversationService:
    return ConversationService(store=store, library=library)


@pytest.fixture
def oa(fake: FakeZalo, service: ConversationService) -> Iterator[OA]:
    with LiveServer(create_app(service, settings=zalo_settings(fake))) as server:
        harness = OA(server, fake, service)
        yield harness
        harness.client.close()


def answer(last: ZaloSent, reply: str, citizen: ZaloCitizen) -> dict[str, Any]:
    pressing = any(label.partition(". ")[2] == reply for label in last.labels)
    return citizen.press(last, reply) if pressing else citizen.text(reply)


# --- signature --------------------------------------------------------------------------------


def test_a_signed_event_is_handled_and_answered(oa: OA) -> None:
    lan = ZaloCitizen("1001")
    replies = oa.send(lan.text("xin chào"), lan)
    assert replies and all(r.access_token == "access-0" for r in replies)
    assert oa.inbound(lan) == 1


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-ZEvent-Signature": "mac=" + "0" * 64},
        {"X-ZEvent-Signature": "not a mac"},
    ],
)
def test_a_bad_or_missing_signature_is_refused_and_nothing_stored(
    oa: OA, headers: dict[str, str]
) -> None:
    lan = ZaloCitizen("1002")
    response = oa.post(
        lan.text("xin chào"), headers={"Content-Type": "application/json", **headers}
    )
    assert response.status_code == 401
    assert oa.inbound(lan) == 0
    assert oa.fake.messages("1002") == []


def test_a_body_changed_after_signing_is_refused(oa: OA) -> None:
    lan = ZaloCitizen("1003")
    body, headers = signed(lan.text("xin chào"))
    tampered = body.replace(b"1003", b"1004")
    response = oa.client.post("/zalo/webhook", content=tampered, headers=headers)
    assert response.status_code == 401
    assert oa.inbound(ZaloCitizen("1004")) == 0


def test_another_apps_event_is_refused(oa: OA) -> None:
    data = ZaloCitizen("1005").text("xin chào")
    data["app_id"] = "999"
    assert oa.post(data).status_code == 401


def test_a_signature_over_the_header_timestamp_is_accepted(oa: OA) -> None:
    # Some implementations sign with an X-ZEvent-Timestamp header's value: accepted too.
    lan = ZaloCitizen("1006")
    data = lan.text("xin chào")
    body = json.dumps(data, ensure_ascii=False).encode("utf-8")
    stamp = "1764480000000"
    headers = {
        "X-ZEvent-Signature": signature(APP_ID, body, stamp, OA_SECRET_KEY),
        "X-ZEvent-Timestamp": stamp,
        "Content-Type": "application/json",
    }
    assert oa.client.post("/zalo/webhook", content=body, headers=headers).status_code == 200
    oa.delivered(lan)
    assert oa.inbound(lan) == 1
    # The same header timestamp does not make a wrong key's signature good.
    forged = {**headers, "X-ZEvent-Signature": signature(APP_ID, body, stamp, "guess")}
    other = ZaloCitizen("1007")
    body = body.replace(b"1006", b"1007")
    assert oa.client.post("/zalo/webhook", content=body, headers=forged).status_code == 401
    assert oa.inbound(other) == 0


@pytest.mark.parametrize(
    ("body", "signed_it", "status"),
    [
        (b"not json", False, 401),
        (b"[1, 2]", False, 401),
        (b'{"event_name": "user_send_text"}', False, 401),
        (b'{"app_id": "%s", "timestamp": "1", "hello": 1}' % APP_ID.encode(), True, 400),
        (
            b'{"app_id": "%s", "timestamp": "1", "event_name": "user_send_text",'
            b' "sender": {"id": "1008"}, "message": {"text": "no msg_id"}}' % APP_ID.encode(),
            True,
            400,
        ),
    ],
)
def test_bodies_that_are_no_event_store_nothing(
    oa: OA, body: bytes, signed_it: bool, status: int
) -> None:
    headers = {"Content-Type": "application/json"}
    if signed_it:
        stamp = str(json.loads(body)["timestamp"])
        headers["X-ZEvent-Signature"] = signature(APP_ID, body, stamp, OA_SECRET_KEY)
    assert oa.client.post("/zalo/webhook", content=body, headers=headers).status_code == status
    assert oa.inbound(ZaloCitizen("1008")) == 0


def test_the_consoles_url_checks_get_200_and_change_nothing(oa: OA) -> None:
    # One source: an unsigned POST of {}; others: a GET. Neither holds an event.
    empty = oa.client.post("/zalo/webhook", content=b"{}", headers={})
    assert empty.status_code == 200
    assert oa.client.get("/zalo/webhook").status_code == 200
    assert oa.fake.sent == []
    with oa.store._session(write=False) as db:  # nothing at all was stored
        assert db.exec(select(ConversationRow)).all() == []
        assert db.exec(select(MessageRow)).all() == []


# --- exactly once -----------------------------------------------------------------------------


def test_a_redelivered_event_is_handled_once(oa: OA) -> None:
    lan = ZaloCitizen("1010")
    event = lan.text("kich hoat vneid")
    first = oa.send(event, lan)
    assert first
    for _ in range(3):
        assert oa.post(event).status_code == 200
    oa.delivered(lan)
    assert oa.inbound(lan) == 1
    assert len(oa.fake.messages(lan.user_id)) == len(first)


def test_follow_greets_and_unfollow_blocks(oa: OA) -> None:
    mai = ZaloCitizen("1011")
    greeting = oa.send(mai.event("follow"), mai)
    assert any("Xin chào" in m.text for m in greeting)
    assert oa.post(mai.event("unfollow")).status_code == 200
    with oa.store.conversation(channel=CHANNEL, chat_id=mai.user_id) as tx:
        assert tx.status == "blocked"


def test_media_and_location_are_read(oa: OA) -> None:
    lan = ZaloCitizen("1012")
    assert oa.send(lan.image(), lan)
    assert oa.send(lan.location(21.0285, 105.8542), lan)
    kinds = [
        r.media_kind
        for r in oa.store.transcript(channel=CHANNEL, chat_id=lan.user_id)
        if r.direction == "in"
    ]
    assert kinds == ["photo", "location"]


# --- a full conversation ----------------------------------------------------------------------


def test_a_full_vneid_activation_by_buttons_and_typed_numbers(oa: OA) -> None:
    lan = ZaloCitizen("1020")
    replies = oa.send(lan.text("kich hoat vneid"), lan)
    last = next(m for m in reversed(replies) if m.buttons)
    assert last.labels[:2] == ["1. Đã nhận", "2. Chưa nhận"]
    assert all(b["type"] == "oa.query.hide" for b in last.buttons)

    path = [
        ("Đã nhận", "đã cài ứng dụng VNeID chưa?"),
        ("Đã cài", "2. Bấm nút Kích hoạt tài khoản"),
        ("1", "Bấm Gửi yêu cầu"),
        ("Màn hình nhập OTP", "Bạn đã nhận được mã chưa?"),
        ("có", "Nhập mã OTP vào ứng dụng VNeID"),
        ("Đã nhập", "6. Đặt mật khẩu"),
        ("1", "7. Đặt passcode"),
        ("Đã đặt xong", "2 câu hỏi bảo mật"),
        ("1", "Bạn đã vào được ứng dụng chưa?"),
        ("Vào được rồi", "Tài khoản của bạn đã được kích hoạt"),
    ]
    for reply, expected in path:
        replies = oa.send(answer(last, reply, lan), lan)
        assert any(expected in m.text for m in replies), (reply, [m.text for m in replies])
        last = next((m for m in reversed(replies) if m.buttons), replies[-1])

    sent = oa.fake.messages(lan.user_id)
    assert all(len(m.text) <= 2000 for m in sent)
    assert all(len(m.buttons) <= 5 for m in sent)
    assert all(len(b["title"]) <= 100 for m in sent for b in m.buttons)


def test_each_reply_carries_the_msg_id_of_the_message_it_answers(oa: OA) -> None:
    lan = ZaloCitizen("1021")
    first = lan.text("kich hoat vneid")
    replies = oa.send(first, lan)
    assert replies and {r.reply_to for r in replies} == {first["message"]["msg_id"]}
    last = next(m for m in reversed(replies) if m.buttons)
    second = answer(last, "Đã nhận", lan)
    replies = oa.send(second, lan)
    assert replies and {r.reply_to for r in replies} == {second["message"]["msg_id"]}


def test_a_reply_zalo_refuses_as_a_reply_goes_as_a_plain_message(oa: OA) -> None:
    lan = ZaloCitizen("1022")
    event = lan.text("xin chào")
    oa.fake.refused_replies.add(event["message"]["msg_id"])
    replies = oa.send(event, lan)
    assert replies and all(r.reply_to is None for r in replies)
    rows = oa.store.outbox_after(channel=CHANNEL, chat_id=lan.user_id)
    assert rows and all(row.status == OutboxStatus.SENT for row in rows)


# --- tokens -----------------------------------------------------------------------------------


def test_an_expired_token_is_refreshed_mid_conversation_and_the_pair_stored(oa: OA) -> None:
    lan = ZaloCitizen("1030")
    assert oa.send(lan.text("kich hoat vneid"), lan)
    oa.fake.expire_access_tokens()
    replies = oa.send(lan.text("1"), lan)
    assert replies and all(r.access_token == "access-1" for r in replies)
    assert len(oa.fake.refresh_calls) == 1 and oa.fake.refused_refresh == 0
    pair = ZaloTokenStore(oa.store).current("oa")
    assert pair is not None
    assert (pair.access_token, pair.refresh_token, pair.version) == ("access-1", "refresh-1", 1)
    assert pair.expires_at is not None
    # Again later: the stored (second) refresh token is the one used.
    oa.fake.expire_access_tokens()
    assert oa.send(lan.text("1"), lan)
    assert [c["refresh_token"] for c in oa.fake.refresh_calls] == ["refresh-0", "refresh-1"]
    assert oa.fake.refused_refresh == 0


# --- API errors -------------------------------------------------------------------------------


def test_outside_the_window_fails_with_a_clear_error(oa: OA) -> None:
    lan = ZaloCitizen("1040")
    oa.fake.outside_window.add(lan.user_id)
    assert oa.post(lan.text("xin chào")).status_code == 200
    oa.delivered(lan)
    items = oa.store.outbox_after(channel=CHANNEL, chat_id=lan.user_id)
    assert items and items[0].status == OutboxStatus.FAILED
    assert "messaging window" in (items[0].last_error or "")


def test_an_expired_token_error_220_is_refreshed_and_retried(oa: OA) -> None:
    lan = ZaloCitizen("1031")
    assert oa.send(lan.text("kich hoat vneid"), lan)
    oa.fake.token_code = -220  # "access_token is expired or removed"
    oa.fake.expire_access_tokens()
    replies = oa.send(lan.text("1"), lan)
    assert replies and all(r.access_token == "access-1" for r in replies)
    assert len(oa.fake.refresh_calls) == 1 and oa.fake.refused_refresh == 0


@pytest.mark.parametrize("code", [-213, -232])
def test_other_window_errors_fail_with_the_same_clear_error(oa: OA, code: int) -> None:
    lan = ZaloCitizen(f"1042{-code}")
    oa.fake.outside_window.add(lan.user_id)
    oa.fake.window_code = code
    assert oa.post(lan.text("xin chào")).status_code == 200
    oa.delivered(lan)
    items = oa.store.outbox_after(channel=CHANNEL, chat_id=lan.user_id)
    assert items and items[0].status == OutboxStatus.FAILED and items[0].attempts <= 1
    assert "messaging window" in (items[0].last_error or "")


def test_a_bad_parameter_201_fails_as_itself_not_as_the_window(oa: OA) -> None:
    lan = ZaloCitizen("1043")
    oa.fake.bad_params = 2  # refused as a reply, then again as a plain message
    assert oa.post(lan.text("xin chào")).status_code == 200
    oa.delivered(lan)
    items = oa.store.outbox_after(channel=CHANNEL, chat_id=lan.user_id)
    assert items[0].status == OutboxStatus.FAILED
    assert "-201" in (items[0].last_error or "")
    assert "messaging window" not in (items[0].last_error or "")


def test_rate_limits_are_waited_out_and_nothing_dropped(oa: OA) -> None:
    lan = ZaloCitizen("1041")
    oa.fake.rate_limits = 1  # error -32 (waits 30 s) is in tests/channels/test_zalo.py
    start = time.monotonic()
    replies = oa.send(lan.text("kich hoat vneid"), lan)
    assert replies
    items = oa.store.outbox_after(channel=CHANNEL, chat_id=lan.user_id)
    assert all(i.status == OutboxStatus.SENT for i in items)
    assert time.monotonic() - start >= 1.0  # the 429's Retry-After was honoured


# --- the Zalo Bot API mode --------------------------------------------------------------------


def test_the_bot_api_mode_registers_its_webhook_and_answers(
    fake: FakeZalo, service: ConversationService
) -> None:
    settings = zalo_settings(
        fake,
        zalo_mode="bot",
        zalo_bot_token=BOT_TOKEN,
        zalo_bot_webhook_secret=BOT_SECRET,
        public_base_url=PUBLIC,
    )
    update = {
        "ok": True,
        "result": {
            "event_name": "message.text.received",
            "message": {
                "message_id": "m-1",
                "from": {"id": "u-77", "display_name": "Lan"},
                "chat": {"id": "u-77", "chat_type": "PRIVATE"},
                "date": 1750316131602,
                "text": "kich hoat vneid",
            },
        },
    }
    with (
        LiveServer(create_app(service, settings=settings)) as server,
        httpx.Client(base_url=server.url) as client,
    ):
        assert fake.bot_webhook == {"url": PUBLIC + "/zalo/bot/webhook", "secret_token": BOT_SECRET}
        refused = client.post("/zalo/bot/webhook", json=update)
        assert refused.status_code == 401
        headers = {"X-Bot-Api-Secret-Token": BOT_SECRET}
        for _ in range(2):  # the second is a redelivery
            assert client.post("/zalo/bot/webhook", json=update, headers=headers).status_code == 200
        wait_until(lambda: fake.bot_sent, 15, "a reply")
        wait_until(
            lambda: (
                not [
                    i
                    for i in service.store.outbox_after(channel="zalo_bot", chat_id="u-77")
                    if i.status in (OutboxStatus.PENDING, OutboxStatus.SENDING)
                ]
            ),
            15,
            "outbox to drain",
        )
    texts = [m["text"] for m in fake.bot_sent]
    assert all(m["chat_id"] == "u-77" for m in fake.bot_sent)
    assert any("1. Đã nhận" in t and "2. Chưa nhận" in t for t in texts)
    records = service.store.transcript(channel="zalo_bot", chat_id="u-77")
    assert sum(1 for r in records if r.direction == "in") == 1


def test_the_bot_webhook_takes_what_it_cannot_read_with_200_and_stores_nothing(
    fake: FakeZalo, service: ConversationService
) -> None:
    # setWebhook's own test call has an undocumented body: a refusal would fail it.
    settings = zalo_settings(
        fake,
        zalo_mode="bot",
        zalo_bot_token=BOT_TOKEN,
        zalo_bot_webhook_secret=BOT_SECRET,
        public_base_url=PUBLIC,
    )
    headers = {"X-Bot-Api-Secret-Token": BOT_SECRET, "Content-Type": "application/json"}
    with (
        LiveServer(create_app(service, settings=settings)) as server,
        httpx.Client(base_url=server.url) as client,
    ):
        for body in (b"", b"not json", b"{}", b'{"ok": true, "result": {"event_name": "x"}}'):
            assert (
                client.post("/zalo/bot/webhook", content=body, headers=headers).status_code == 200
            )
        wrong = {**headers, "X-Bot-Api-Secret-Token": "not-the-secret"}
        assert client.post("/zalo/bot/webhook", content=b"{}", headers=wrong).status_code == 401
    assert fake.bot_sent == []
    with service.store._session(write=False) as db:
        assert db.exec(select(ConversationRow)).all() == []


def test_bot_api_errors_map_to_retry_or_give_up(fake: FakeZalo) -> None:
    # Through our httpx client to the fake Bot API: 429 waits RATE_LIMIT_WAIT, 408 backs
    # off, another error_code (400) is not retried.
    now = utcnow()
    item = OutboxItem(
        id=1, conversation_id=1, channel="zalo_bot", chat_id="u-1", seq=1, text="Xin chào",
        buttons=(), status=OutboxStatus.SENDING, attempts=0, next_attempt_at=now,
        last_error=None, external_id=None, created_at=now, sent_at=None,
    )  # fmt: skip
    fake.bot_errors.extend([429, 408, 400])

    async def main() -> list[BaseException]:
        bot = ZaloBotChannel(BOT_TOKEN, base_url=fake.base_url, timeout=5.0)
        errors: list[BaseException] = []
        try:
            for _ in range(3):
                try:
                    await bot.send(item)
                except (RetryableSend, PermanentSend) as exc:
                    errors.append(exc)
            assert await bot.send(item)  # and then it goes through
        finally:
            await bot.close()
        return errors

    limited, timed_out, refused = asyncio.run(main())
    assert isinstance(limited, RetryableSend) and limited.retry_after == RATE_LIMIT_WAIT
    assert isinstance(timed_out, RetryableSend) and timed_out.retry_after is None
    assert isinstance(refused, PermanentSend)
    assert [m["text"] for m in fake.bot_sent] == ["Xin chào"]


def test_a_location_is_read_from_either_documented_place() -> None:
    lan = ZaloCitizen("1013")
    attached = read_event(lan.location(20.95, 107.08)).incoming
    inline = lan.event(
        "user_send_location", {"location": {"latitude": "20.95", "longitude": "107.08"}}
    )
    for incoming in (attached, read_event(inline).incoming):
        assert incoming is not None and incoming.media is not None
        assert (incoming.media.latitude, incoming.media.longitude) == (20.95, 107.08)
