"""Telegram end to end: the app under a real server, updates POSTed to its webhook with
httpx, replies delivered by the outbox sender through the real python-telegram-bot
client to a fake Bot API server, which records them. Both databases (`store`)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from telegram import Bot as PtbBot

from bot.config import Settings
from bot.content import ContentLibrary
from bot.conversation import ConversationService, Handled
from bot.errors import ConfigError
from bot.messages import Button, Incoming, Outgoing
from bot.store import ConversationStatus, OutboxStatus, Store
from tests.fakes.telegram import Citizen, FakeBotApi, Sent, served
from tests.live import LiveServer
from webhook.app import create_app

ROOT = Path(__file__).resolve().parents[2]
SECRET = "test-secret_0123456789"
PUBLIC = "https://bot.example.org"
HEADER = "X-Telegram-Bot-Api-Secret-Token"
CHANNEL = "telegram"
LANGUAGE_CHANGED = ("I will speak English.", "Mình sẽ nói tiếng Việt.")
# A database that cannot be reached: nothing listens on port 9.
DOWN_DATABASE = "postgresql+psycopg://postgres@127.0.0.1:9/none?connect_timeout=2"


def telegram_settings(api: FakeBotApi, **overrides: Any) -> Settings:
    """Webhook mode against the fake, with fast sender timings for tests."""
    values: dict[str, Any] = {
        "telegram_bot_token": api.token,
        "telegram_api_base_url": api.base_url,
        "telegram_webhook_secret": SECRET,
        "public_base_url": PUBLIC,
        "telegram_timeout_seconds": 5.0,
        "telegram_poll_seconds": 1,
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


class Bot:
    """The running app as a citizen's Telegram would reach it."""

    def __init__(self, server: LiveServer, api: FakeBotApi, service: ConversationService) -> None:
        self.url = server.url
        self.api = api
        self.service = service
        self.store: Store = service.store
        self.client = httpx.Client(base_url=server.url, timeout=30)

    def post(self, update: object, secret: str | None = SECRET, **kwargs: Any) -> httpx.Response:
        headers = {} if secret is None else {HEADER: secret}
        if "content" in kwargs:
            return self.client.post("/telegram/webhook", headers=headers, **kwargs)
        return self.client.post("/telegram/webhook", headers=headers, json=update)

    def send(self, update: dict[str, Any], citizen: Citizen) -> list[Sent]:
        """POST `update` and return the replies it produced, once all are delivered."""
        before = len(self.api.messages(citizen.id))
        response = self.post(update)
        assert response.status_code == 200, response.text
        self.delivered(citizen)
        return self.api.messages(citizen.id)[before:]

    def delivered(self, citizen: Citizen, timeout: float = 15) -> list[Sent]:
        """Wait until no message to this chat is waiting in the outbox."""
        wait_until(lambda: not self.undelivered(citizen), timeout, "outbox to drain")
        return self.api.messages(citizen.id)

    def undelivered(self, citizen: Citizen) -> list[int]:
        items = self.store.outbox_after(channel=CHANNEL, chat_id=citizen.chat_id)
        waiting = (OutboxStatus.PENDING, OutboxStatus.SENDING)
        return [i.id for i in items if i.status in waiting]

    def status(self, citizen: Citizen) -> ConversationStatus:
        with self.store.conversation(channel=CHANNEL, chat_id=citizen.chat_id) as tx:
            return tx.status

    def inbound(self, citizen: Citizen) -> int:
        records = self.store.transcript(channel=CHANNEL, chat_id=citizen.chat_id, limit=500)
        return sum(1 for r in records if r.direction == "in")


def wait_until(condition: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@pytest.fixture(scope="module")
def served_api() -> Iterator[FakeBotApi]:
    with served() as fake:
        yield fake


@pytest.fixture
def api(served_api: FakeBotApi) -> FakeBotApi:
    served_api.reset()
    return served_api


@pytest.fixture
def service(store: Store, library: ContentLibrary) -> ConversationService:
    return ConversationService(store=store, library=library)


@pytest.fixture
def bot(api: FakeBotApi, service: ConversationService) -> Iterator[Bot]:
    with LiveServer(create_app(service, settings=telegram_settings(api))) as server:
        harness = Bot(server, api, service)
        yield harness
        harness.client.close()


def flow_text(service: ConversationService, flow_id: str, step_id: str) -> str:
    flow = service.library.catalog.get(flow_id)
    assert flow is not None
    say = flow.steps[step_id].say
    assert say is not None
    return say["vi"]


# --- a conversation ------------------------------------------------------------------------


def test_webhook_is_registered_with_the_secret(bot: Bot) -> None:
    assert bot.api.webhook is not None
    assert bot.api.webhook["url"] == PUBLIC + "/telegram/webhook"
    assert bot.api.webhook["secret_token"] == SECRET
    assert set(bot.api.webhook["allowed_updates"]) >= {"message", "callback_query"}


def test_the_command_menu_is_registered_in_vietnamese_and_english(bot: Bot) -> None:
    expected = ["start", "menu", "help", "human", "lang", "stop"]
    for language in ("", "vi", "en"):
        assert [c["command"] for c in bot.api.commands[language]] == expected, language
    vi = {c["command"]: c["description"] for c in bot.api.commands["vi"]}
    en = {c["command"]: c["description"] for c in bot.api.commands["en"]}
    assert vi["human"] == "Gặp tình nguyện viên" and en["human"] == "Talk to a volunteer"
    assert bot.api.commands[""] == bot.api.commands["vi"]  # the default is Vietnamese
    # Read back through the real client, as Telegram's apps would see it.
    read = asyncio.run(_my_commands(bot.api, "en"))
    assert read == [(c["command"], c["description"]) for c in bot.api.commands["en"]]


def test_every_command_in_the_menu_is_answered(bot: Bot) -> None:
    for n, command in enumerate(c["command"] for c in bot.api.commands["vi"]):
        citizen = Citizen(3100 + n)
        text = "/lang en" if command == "lang" else f"/{command}"
        replies = bot.send(citizen.text(text), citizen)
        assert replies and all(r.text.strip() for r in replies), command


def test_a_failed_command_menu_does_not_stop_the_start(
    api: FakeBotApi, service: ConversationService
) -> None:
    api.fail("setMyCommands", times=3, status=500)
    citizen = Citizen(3200)
    with LiveServer(create_app(service, settings=telegram_settings(api))) as server:
        harness = Bot(server, api, service)
        assert api.webhook is not None
        assert harness.send(citizen.text("/start"), citizen)
        harness.client.close()
    assert [c.status for c in api.calls_of("setMyCommands")][0] == 500


async def _my_commands(api: FakeBotApi, language: str) -> list[tuple[str, str]]:
    async with PtbBot(api.token, base_url=api.base_url) as client:
        commands = await client.get_my_commands(language_code=language)
    return [(c.command, c.description) for c in commands]


def test_a_full_vneid_activation_by_buttons_and_typed_numbers(bot: Bot) -> None:
    lan = Citizen(1001)
    greeting = bot.send(lan.text("/start"), lan)
    assert "Xin chào" in greeting[0].text
    menu = greeting[-1]
    assert menu.labels[:2] == ["1. Cài ứng dụng VNeID", "2. Kích hoạt tài khoản VNeID"]

    replies = bot.send(lan.press(menu, "Kích hoạt tài khoản VNeID"), lan)
    assert "hướng dẫn bạn kích hoạt" in replies[0].text
    assert replies[-1].text == flow_text(bot.service, "vneid_activate", "got_sms")
    assert replies[-1].labels == ["1. Đã nhận", "2. Chưa nhận", "3. Cần người giúp"]

    # Pressing and typing the number work alike, step after step.
    path = [
        ("1", "đã cài ứng dụng VNeID chưa?"),
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
    last = replies[-1]
    for answer, expected in path:
        pressing = any(label.partition(". ")[2] == answer for label in last.labels)
        update = lan.press(last, answer) if pressing else lan.text(answer)
        replies = bot.send(update, lan)
        assert any(expected in m.text for m in replies), (answer, [m.text for m in replies])
        last = next((m for m in reversed(replies) if m.buttons), replies[-1])

    sent = bot.api.messages(lan.id)
    assert all(len(m.text) <= 4096 for m in sent)
    assert not any("mật khẩu của bạn là" in m.text.lower() for m in sent)
    # Every button press was answered, and its keyboard now shows the choice made.
    presses = bot.api.calls_of("answerCallbackQuery")
    assert len(presses) == 6 and all(c.status == 200 for c in presses)
    ticked = [b["text"] for e in bot.api.edits for b in keyboard(e)]
    assert "✓ 1. Đã cài" in ticked and "✓ 1. Vào được rồi" in ticked


def keyboard(params: dict[str, Any]) -> list[dict[str, Any]]:
    markup = params.get("reply_markup") or {}
    return [button for row in markup.get("inline_keyboard", []) for button in row]


def test_typed_label_without_diacritics_works_like_the_button(bot: Bot) -> None:
    lan = Citizen(1002)
    bot.send(lan.text("kich hoat vneid"), lan)
    replies = bot.send(lan.text("chua nhan"), lan)
    assert replies[0].text == flow_text(bot.service, "vneid_activate", "no_sms")


def test_deep_link_opens_a_flow(bot: Bot) -> None:
    lan = Citizen(1003)
    replies = bot.send(lan.text("/start vneid_activate"), lan)
    assert "hướng dẫn bạn kích hoạt" in replies[0].text
    assert replies[-1].labels == ["1. Đã nhận", "2. Chưa nhận", "3. Cần người giúp"]
    # A parameter that is no flow id is a plain start.
    other = Citizen(1004)
    assert "Xin chào" in bot.send(other.text("/start from-a-poster"), other)[0].text


def test_lang_switches_to_english_and_back(bot: Bot) -> None:
    lan = Citizen(1005)
    bot.send(lan.text("/start"), lan)
    assert bot.send(lan.text("/lang en"), lan)[0].text == "I will speak English."
    assert bot.send(lan.text("/menu"), lan)[-1].labels[0] == "1. Install VNeID"
    assert bot.send(lan.text("/lang vi"), lan)[0].text == "Mình sẽ nói tiếng Việt."


def test_english_speakers_are_greeted_in_english(bot: Bot) -> None:
    john = Citizen(1006, first_name="John", language_code="en-GB")
    replies = bot.send(john.text("/start"), john)
    assert replies[0].text.startswith("Hello!")


def test_help_and_human_commands(bot: Bot) -> None:
    lan = Citizen(1007)
    assert bot.send(lan.text("/help"), lan)[0].text.startswith("Bạn có thể gõ:")
    assert any("tình nguyện viên" in m.text for m in bot.send(lan.text("/human"), lan))


def test_stop_forgets_the_citizen(bot: Bot) -> None:
    lan = Citizen(1008)
    bot.send(lan.text("kich hoat vneid"), lan)
    bot.send(lan.text("1"), lan)
    replies = bot.send(lan.text("/stop"), lan)
    assert [m.text for m in replies] == [
        "Mình đã xóa tin nhắn và câu trả lời của bạn. Khi cần, bạn gõ menu."
    ]
    transcript = bot.store.transcript(channel=CHANNEL, chat_id=lan.chat_id)
    assert [(r.direction, r.text) for r in transcript] == [("out", replies[0].text)]


@pytest.mark.parametrize("kind", ["photo", "voice", "video"])
def test_a_photo_voice_or_video_is_acknowledged_and_a_volunteer_called(bot: Bot, kind: str) -> None:
    """The bot cannot read them; a volunteer can (issue 5.1): a ticket opens at once."""
    lan = Citizen(1100)
    replies = bot.send(getattr(lan, kind)(), lan)
    assert replies[0].text.startswith("Mình đã nhận được"), kind
    assert "Mình gửi cho tình nguyện viên xem giúp bạn." in replies[0].text
    assert "Mình đã báo cho tình nguyện viên" in replies[1].text  # no desk in this app
    record = bot.store.transcript(channel=CHANNEL, chat_id=lan.chat_id)[0]
    assert (record.direction, record.media_kind) == ("in", kind)


def test_a_sticker_is_acknowledged_and_a_volunteer_offered(bot: Bot) -> None:
    lan = Citizen(1103)
    replies = bot.send(lan.sticker(), lan)
    assert replies[0].text.startswith("Mình đã nhận được")
    assert replies[0].labels == ["1. Cần người giúp"]
    assert not any("Mình đang tìm" in r.text for r in replies)


def test_a_location_is_acknowledged(bot: Bot) -> None:
    lan = Citizen(1110)
    replies = bot.send(lan.location(21.0278, 105.8342), lan)
    assert replies[0].text.startswith("Mình đã nhận được")


def test_a_photo_with_a_caption_is_read_as_text(bot: Bot) -> None:
    lan = Citizen(1111)
    replies = bot.send(lan.photo(caption="kich hoat vneid"), lan)
    assert "hướng dẫn bạn kích hoạt" in replies[0].text


def test_a_stale_button_gets_a_polite_answer(bot: Bot) -> None:
    lan = Citizen(1200)
    menu = bot.send(lan.text("/start"), lan)[-1]
    question = bot.send(lan.press(menu, "Kích hoạt tài khoản VNeID"), lan)[-1]
    bot.send(lan.press(question, "Đã nhận"), lan)
    # The same old question's other button, pressed later.
    replies = bot.send(lan.press(question, "Chưa nhận"), lan)
    assert replies[0].text == "Nút này đã cũ. Bạn dùng các nút ở tin nhắn mới nhất nhé."
    assert len(bot.api.answered) == 3
    # The old message loses its buttons instead of showing a choice that was not made.
    assert bot.api.edits[-1].get("reply_markup") is None
    # Made-up button data is no error either.
    forged = bot.send(lan.callback(question, "zz:nothing"), lan)
    assert forged[0].text.startswith("Nút này đã cũ")


def test_long_text_is_split_in_order_under_the_limit(bot: Bot) -> None:
    lan = Citizen(1300)
    # 8 paragraphs of about 1,450 characters: two fit in one message, three do not.
    sentence = "Bạn mở ứng dụng VNeID rồi bấm tiếp. "
    paragraphs = [(f"Đoạn {n}. " + sentence * 40).strip() for n in range(1, 9)]
    text = "\n\n".join(paragraphs)
    assert len(text) > 2 * 4096
    buttons = (Button("Đã xong", "g:menu"),)
    with bot.store.conversation(channel=CHANNEL, chat_id=lan.chat_id) as tx:
        tx.queue_outgoing([Outgoing(chat_id=lan.chat_id, text=text, buttons=buttons)])
    parts = bot.delivered(lan)
    assert [p.text[:7] for p in parts] == ["Đoạn 1.", "Đoạn 3.", "Đoạn 5.", "Đoạn 7."]
    assert all(len(p.text) <= 4096 for p in parts)
    assert "\n\n".join(p.text for p in parts) == text  # cut at paragraph breaks only
    assert [bool(p.buttons) for p in parts] == [False, False, False, True]


def test_personal_data_is_masked_and_typed_words_forget_it(bot: Bot) -> None:
    lan = Citizen(1400)
    said = "CCCD của tôi 001234567890, số điện thoại 0912345678, mã OTP 482913"
    assert bot.send(lan.text(said), lan)
    stored = [r.text for r in bot.store.transcript(channel=CHANNEL, chat_id=lan.chat_id)]
    inbound = stored[0]
    for secret in ("001234567890", "0912345678", "482913"):
        assert secret not in inbound, inbound
    assert "*********890" in inbound
    replies = bot.send(lan.text("xóa dữ liệu của tôi"), lan)
    transcript = bot.store.transcript(channel=CHANNEL, chat_id=lan.chat_id)
    assert [(r.direction, r.text) for r in transcript] == [("out", replies[0].text)]
    assert "xóa" in replies[0].text


# --- exactly once ---------------------------------------------------------------------------


def test_a_duplicate_update_is_handled_once(bot: Bot) -> None:
    lan = Citizen(2000)
    update = lan.text("kich hoat vneid")
    first = bot.send(update, lan)
    again = bot.send(update, lan)
    assert first and again == []
    assert bot.inbound(lan) == 1


def test_a_duplicate_delivered_concurrently_is_handled_once(bot: Bot) -> None:
    lan = Citizen(2001)
    update = lan.text("/start")
    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = list(pool.map(lambda _: bot.post(update).status_code, range(4)))
    assert statuses == [200] * 4
    sent = bot.delivered(lan)
    assert len(sent) == 2 and bot.inbound(lan) == 1


def test_replies_survive_a_restart_before_delivery(
    api: FakeBotApi, service: ConversationService
) -> None:
    lan = Citizen(2002)
    api.fail("sendMessage", 1000, status=500)  # Telegram is down: nothing goes out
    with LiveServer(create_app(service, settings=telegram_settings(api))) as server:
        response = httpx.post(
            server.url + "/telegram/webhook", json=lan.text("/start"), headers={HEADER: SECRET}
        )
        assert response.status_code == 200
        wait_until(lambda: api.calls_of("sendMessage"), 10, "a first try")
    assert api.messages(lan.id) == []
    api.reset()  # Telegram is back; so is the server
    with LiveServer(create_app(service, settings=telegram_settings(api))) as server:
        harness = Bot(server, api, service)
        sent = harness.delivered(lan)
        harness.client.close()
    assert len(sent) == 2 and "Xin chào" in sent[0].text


def test_a_button_still_works_after_a_restart(
    api: FakeBotApi, store: Store, library: ContentLibrary
) -> None:
    lan = Citizen(2003)
    first = ConversationService(store=store, library=library)
    with LiveServer(create_app(first, settings=telegram_settings(api))) as server:
        harness = Bot(server, api, first)
        menu = harness.send(lan.text("/start"), lan)[-1]
        harness.client.close()
    # A new process: nothing in memory, the button's data alone says what it means.
    second = ConversationService(store=store, library=library)
    with LiveServer(create_app(second, settings=telegram_settings(api))) as server:
        harness = Bot(server, api, second)
        replies = harness.send(lan.press(menu, "Kích hoạt tài khoản VNeID"), lan)
        harness.client.close()
    assert "hướng dẫn bạn kích hoạt" in replies[0].text


# --- refusals --------------------------------------------------------------------------------


def test_a_wrong_or_missing_secret_is_refused_and_nothing_stored(bot: Bot) -> None:
    lan = Citizen(3000)
    for secret in (None, "", "wrong-secret", SECRET + "x", SECRET[:-1]):
        response = bot.post(lan.text("/start"), secret=secret)
        assert response.status_code == 401, secret
    assert bot.store.stats()["conversations"] == 0
    assert bot.api.calls_of("sendMessage") == []


def test_a_body_that_is_no_update_is_a_400(bot: Bot) -> None:
    bodies = [
        b"{oops",
        b"",
        b"\xff\xfe",
        b"[1, 2]",
        b'"text"',
        b'{"message": {"text": "hi"}}',
        b'{"update_id": "7"}',
        b'{"update_id": 9, "message": {"text": "no chat, no date"}}',
    ]
    for body in bodies:
        response = bot.post(None, content=body)
        assert response.status_code == 400, body
    assert bot.store.stats()["conversations"] == 0


def test_an_update_of_another_kind_is_a_200_and_nothing_stored(bot: Bot) -> None:
    updates = [
        Citizen(3001).edited("sửa tin nhắn"),
        {"update_id": 9001, "poll": {"id": "1", "question": "?", "options": []}},
        {"update_id": 9002, "some_future_update": {"x": 1}},
        {"update_id": 9003},
    ]
    for update in updates:
        assert bot.post(update).status_code == 200, update
    assert bot.store.stats()["conversations"] == 0


def test_group_messages_are_not_conversations(bot: Bot) -> None:
    update = Citizen(3002).text("menu")
    update["message"]["chat"] = {"id": -100123, "type": "supergroup", "title": "Tình nguyện viên"}
    assert bot.post(update).status_code == 200
    assert bot.store.stats()["conversations"] == 0


class _BrokenService(ConversationService):
    """A service with a bug: every message raises (our own code, not a mock of HTTP)."""

    def handle(self, incoming: Incoming) -> Handled:
        raise RuntimeError("a bug")


def test_a_database_outage_is_a_503_and_nothing_is_lost(
    api: FakeBotApi, library: ContentLibrary
) -> None:
    # PostgreSQL on a port where nothing listens: every query fails to connect.
    down = ConversationService(store=Store(DOWN_DATABASE), library=library)
    lan = Citizen(3100)
    with LiveServer(create_app(down, settings=telegram_settings(api))) as server:
        response = httpx.post(
            server.url + "/telegram/webhook", json=lan.text("/start"), headers={HEADER: SECRET}
        )
        health = httpx.get(server.url + "/healthz")
    # Telegram delivers the update again later; a 200 would have lost it.
    assert response.status_code == 503
    assert health.status_code == 503 and health.json()["status"] == "database unreachable"
    assert api.calls_of("sendMessage") == []


def test_a_bug_while_handling_is_a_logged_200_not_a_retry_loop(
    api: FakeBotApi, store: Store, library: ContentLibrary, caplog: pytest.LogCaptureFixture
) -> None:
    broken = _BrokenService(store=store, library=library)
    lan = Citizen(3101)
    with LiveServer(create_app(broken, settings=telegram_settings(api))) as server:
        update = lan.text("/start")
        response = httpx.post(
            server.url + "/telegram/webhook", json=update, headers={HEADER: SECRET}
        )
    assert response.status_code == 200
    failed = [r for r in caplog.records if r.getMessage().startswith("telegram: update")]
    assert failed and str(update["update_id"]) in failed[0].getMessage()
    assert failed[0].exc_info is not None


# --- delivery -----------------------------------------------------------------------------


def assert_in_order(bot: Bot, citizen: Citizen) -> None:
    """What the fake received for this chat is the outbox of the chat, in order, once."""
    items = bot.store.outbox_after(channel=CHANNEL, chat_id=citizen.chat_id)
    assert all(i.status == OutboxStatus.SENT for i in items)
    received = [str(m.message_id) for m in bot.api.messages(citizen.id)]
    assert [i.external_id for i in sorted(items, key=lambda i: i.seq)] == received


def test_a_429_storm_is_waited_out_per_chat(bot: Bot) -> None:
    citizens = [Citizen(4000 + n) for n in range(3)]
    bot.api.fail("sendMessage", 4, status=429, retry_after=1)
    for citizen in citizens:
        assert bot.post(citizen.text("/start")).status_code == 200
    for citizen in citizens:
        assert len(bot.delivered(citizen)) == 2
        assert_in_order(bot, citizen)
    calls = bot.api.calls_of("sendMessage")
    limited = [c for c in calls if c.status == 429]
    assert len(limited) == 4
    for refused in limited:
        chat = refused.params["chat_id"]
        after = [c for c in calls if c.params["chat_id"] == chat and c.at > refused.at]
        assert after, "the chat was tried again"
        assert after[0].at - refused.at >= 1.0  # not before retry_after


def test_a_500_storm_then_recovery(bot: Bot) -> None:
    citizens = [Citizen(4100 + n) for n in range(3)]
    bot.api.fail("sendMessage", 8, status=500)
    for citizen in citizens:
        assert bot.post(citizen.text("/start")).status_code == 200
    for citizen in citizens:
        assert len(bot.delivered(citizen)) == 2
        assert_in_order(bot, citizen)
    assert sum(c.status == 500 for c in bot.api.calls_of("sendMessage")) == 8


def test_timeouts_then_recovery(api: FakeBotApi, service: ConversationService) -> None:
    # A short client timeout here only: elsewhere a busy test machine must not time out.
    settings = telegram_settings(api, telegram_timeout_seconds=0.3, outbox_lease_seconds=1)
    lan = Citizen(4200)
    api.hang("sendMessage", 2)
    with LiveServer(create_app(service, settings=settings)) as server:
        harness = Bot(server, api, service)
        assert harness.post(lan.text("/start")).status_code == 200
        sent = harness.delivered(lan)
        assert_in_order(harness, lan)
        harness.client.close()
    assert len(sent) == 2 and sent[0].text.startswith("Xin chào")
    assert [c.status for c in api.calls_of("sendMessage")][:2] == [0, 0]  # two hangs


def test_a_citizen_who_blocked_the_bot_gets_nothing_more(bot: Bot) -> None:
    lan = Citizen(4300)
    bot.api.block(lan.id)
    assert bot.post(lan.text("/start")).status_code == 200
    bot.delivered(lan)
    assert bot.status(lan) == ConversationStatus.BLOCKED
    assert bot.api.messages(lan.id) == []
    # One refused try; the rest of the chat's messages were dropped without trying.
    assert len(bot.api.calls_of("sendMessage")) == 1
    items = bot.store.outbox_after(channel=CHANNEL, chat_id=lan.chat_id)
    assert len(items) == 2 and all(i.status == OutboxStatus.FAILED for i in items)


def test_blocking_is_noticed_from_telegram_too(bot: Bot) -> None:
    lan = Citizen(4301)
    bot.send(lan.text("/start"), lan)
    assert bot.post(lan.blocked_bot()).status_code == 200
    assert bot.status(lan) == ConversationStatus.BLOCKED
    # Writing again unblocks.
    bot.send(lan.text("/help"), lan)
    assert bot.status(lan) == ConversationStatus.ACTIVE


def test_each_chat_gets_its_replies_in_order_under_concurrent_load(bot: Bot) -> None:
    chats = [Citizen(5000 + n) for n in range(20)]
    script = ["/start", "/lang en", "/help", "/lang vi", "/lang en", "/lang vi"]
    errors: list[str] = []

    def talk(citizen: Citizen) -> None:
        for text in script:
            response = bot.post(citizen.text(text))
            if response.status_code != 200:
                errors.append(response.text)

    with ThreadPoolExecutor(max_workers=len(chats)) as pool:
        list(pool.map(talk, chats))
    assert errors == []
    for citizen in chats:
        sent = bot.delivered(citizen, timeout=60)
        assert_in_order(bot, citizen)
        switches = [m.text for m in sent if m.text in LANGUAGE_CHANGED]
        assert switches == list(LANGUAGE_CHANGED) * 2


def test_messages_to_one_chat_are_spaced(api: FakeBotApi, service: ConversationService) -> None:
    settings = telegram_settings(api, outbox_chat_interval_seconds=0.6)
    lan = Citizen(6000)
    with LiveServer(create_app(service, settings=settings)) as server:
        harness = Bot(server, api, service)
        sent = harness.send(lan.text("/start"), lan)
        harness.client.close()
    assert len(sent) == 2
    assert sent[1].at - sent[0].at >= 0.6


# --- modes --------------------------------------------------------------------------------


def test_without_a_public_url_the_bot_long_polls(
    api: FakeBotApi, service: ConversationService
) -> None:
    settings = telegram_settings(api, public_base_url=None, telegram_webhook_secret=None)
    lan = Citizen(7000)
    with LiveServer(create_app(service, settings=settings)) as server:
        harness = Bot(server, api, service)
        assert api.calls_of("deleteWebhook")
        api.queue_update(lan.text("/start"))
        wait_until(lambda: len(api.messages(lan.id)) == 2, 10, "the greeting")
        menu = api.messages(lan.id)[-1]
        api.queue_update(lan.press(menu, "Kích hoạt tài khoản VNeID"))
        wait_until(lambda: api.answered, 10, "the button to be answered")
        harness.delivered(lan)
        api.queue_update(lan.text("2"))
        wait_until(
            lambda: any(
                flow_text(service, "vneid_activate", "no_sms") == t for t in api.texts(lan.id)
            ),
            10,
            "the answer to the typed number",
        )
        assert [c["command"] for c in api.commands["en"]][0] == "start"  # menu set too
        # No webhook in this mode: the route is not there.
        assert harness.post(lan.text("/start")).status_code == 404
        harness.client.close()
    assert harness.inbound(lan) == 3


def test_without_a_token_only_the_web_chat_runs(service: ConversationService) -> None:
    settings = Settings(_env_file=None, telegram_bot_token=None, content_reload_seconds=60)
    with LiveServer(create_app(service, settings=settings)) as server:
        response = httpx.post(server.url + "/telegram/webhook", json={"update_id": 1})
        assert response.status_code == 404
        assert httpx.get(server.url + "/healthz").status_code == 200


def start_error(app_settings: Settings, service: ConversationService) -> str:
    app = create_app(service, settings=app_settings)

    async def start() -> None:
        async with app.router.lifespan_context(app):
            pass

    with pytest.raises(ConfigError) as caught:
        asyncio.run(start())
    return str(caught.value)


def test_a_rejected_token_stops_the_start(api: FakeBotApi, service: ConversationService) -> None:
    message = start_error(telegram_settings(api, telegram_bot_token="42:revoked"), service)
    assert message.startswith("TELEGRAM_BOT_TOKEN was rejected by the Bot API")
    assert "42:revoked" not in message


def test_a_public_url_without_a_secret_stops_the_start(
    api: FakeBotApi, service: ConversationService
) -> None:
    message = start_error(telegram_settings(api, telegram_webhook_secret=None), service)
    assert message.startswith("TELEGRAM_WEBHOOK_SECRET is missing")
    assert api.calls_of("getMe") == []  # refused before any call


def test_an_unreachable_api_stops_the_start(service: ConversationService) -> None:
    api = FakeBotApi(base_url="http://127.0.0.1:9/bot")
    message = start_error(telegram_settings(api), service)
    assert "cannot be reached" in message


def test_the_server_says_what_is_wrong_in_one_line(api: FakeBotApi, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "TELEGRAM_BOT_TOKEN": "42:revoked",
        "TELEGRAM_API_BASE_URL": api.base_url,
        "TELEGRAM_WEBHOOK_SECRET": SECRET,
        "PUBLIC_BASE_URL": PUBLIC,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}",
    }
    result = subprocess.run(
        [sys.executable, "-m", "uvicorn", "webhook.app:create_app", "--factory", "--port", "0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "cannot start: TELEGRAM_BOT_TOKEN was rejected by the Bot API" in result.stderr
    assert "Traceback" not in result.stderr
    assert "42:revoked" not in result.stderr


def test_a_lease_shorter_than_a_slow_send_stops_the_start(
    api: FakeBotApi, service: ConversationService
) -> None:
    settings = telegram_settings(api, outbox_lease_seconds=5, telegram_timeout_seconds=10)
    assert start_error(settings, service).startswith("OUTBOX_LEASE_SECONDS (5) must be")
