"""What works on Telegram works on Zalo, in both Zalo modes: the OA API (signed events to
/zalo/webhook, replies through /v3.0/oa/message/cs) and the Zalo Bot API (updates to
/zalo/bot/webhook with X-Bot-Api-Secret-Token, replies through sendMessage). One app
serves Zalo, Telegram (the volunteers, on the fake Bot API) and the web chat (the
reference answers), all over real HTTP through the real clients. Both databases.

Not here, because the mode cannot do it: a location in the Bot API mode (no Bot API
event carries one in any source; the OA's location is in tests/webhook/test_location.py),
follow and unfollow in the Bot API mode (no such event)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from bot.config import Settings
from bot.content import ContentLibrary
from bot.conversation import ConversationService
from bot.handoff import Handoff
from bot.store import OutboxStatus, Store, TicketStatus
from tests.fakes import zalo as fake_zalo
from tests.fakes.telegram import Citizen, FakeBotApi, Sent
from tests.fakes.zalo import BOT_TOKEN, FakeZalo, ZaloBotUser, ZaloCitizen, signed
from tests.live import LiveServer
from tests.webhook import test_handoff_telegram as harness
from tests.webhook.test_handoff_telegram import CLAIM, GROUP
from tests.webhook.test_telegram import SECRET, telegram_settings, wait_until
from tests.webhook.test_zalo import zalo_settings
from webhook.app import create_app

TELEGRAM_HEADER = "X-Telegram-Bot-Api-Secret-Token"
BOT_SECRET = "zalo-bot-secret-123"
served_api, api = harness.served_api, harness.api


@dataclass(frozen=True)
class Reply:
    """One message the citizen got on Zalo: its text and its buttons' titles (the Bot
    API has none: its choices are numbered lines of the text)."""

    text: str
    labels: tuple[str, ...] = ()
    raw: Any = None


class ZaloSide:
    """The running app as one Zalo mode reaches it, with Telegram for the volunteers."""

    def __init__(
        self,
        mode: str,
        server: LiveServer,
        zalo: FakeZalo,
        api: FakeBotApi,
        service: ConversationService,
    ) -> None:
        assert service.desk is not None
        self.mode, self.zalo, self.api, self.service = mode, zalo, api, service
        self.store: Store = service.store
        self.handoff: Handoff = service.desk.handoff
        self.channel = "zalo" if mode == "oa" else "zalo_bot"
        self.client = httpx.Client(base_url=server.url, timeout=30)

    # -- the citizen ------------------------------------------------------------------------

    def citizen(self, user_id: str) -> ZaloCitizen | ZaloBotUser:
        return ZaloCitizen(user_id) if self.mode == "oa" else ZaloBotUser(user_id)

    def text(self, who: ZaloCitizen | ZaloBotUser, text: str) -> dict[str, Any]:
        return who.text(text)

    def photo(self, who: ZaloCitizen | ZaloBotUser, url: str) -> dict[str, Any]:
        return who.image(url) if isinstance(who, ZaloCitizen) else who.photo(url)

    def voice(self, who: ZaloCitizen | ZaloBotUser, url: str) -> dict[str, Any]:
        return who.audio(url) if isinstance(who, ZaloCitizen) else who.voice(url)

    def sticker(self, who: ZaloCitizen | ZaloBotUser) -> dict[str, Any]:
        if isinstance(who, ZaloCitizen):
            return who.event("user_send_sticker", {"attachments": [{"payload": {"id": "s1"}}]})
        return who.sticker()

    def post(self, data: dict[str, Any]) -> None:
        if self.mode == "oa":
            body, headers = signed(data)
            response = self.client.post("/zalo/webhook", content=body, headers=headers)
        else:
            headers = {"X-Bot-Api-Secret-Token": BOT_SECRET}
            response = self.client.post("/zalo/bot/webhook", json=data, headers=headers)
        assert response.status_code == 200, response.text

    def replies(self, who: ZaloCitizen | ZaloBotUser) -> list[Reply]:
        if self.mode == "oa":
            return [Reply(m.text, tuple(m.labels), m) for m in self.zalo.messages(who.user_id)]
        return [Reply(str(m["text"]), (), m) for m in self.zalo.bot_messages(who.user_id)]

    def send(self, who: ZaloCitizen | ZaloBotUser, data: dict[str, Any]) -> list[Reply]:
        """Post one event and return the replies it brought, once delivered."""
        before = len(self.replies(who))
        self.post(data)
        self.settled(self.channel, who.user_id)
        return self.replies(who)[before:]

    def say(self, who: ZaloCitizen | ZaloBotUser, text: str) -> list[Reply]:
        return self.send(who, who.text(text))

    def choose(self, who: ZaloCitizen | ZaloBotUser, last: Reply, label: str) -> list[Reply]:
        """Answer `last` with the choice `label`: a pressed button on the OA, its number
        typed on the Bot API; any other answer is typed as it is."""
        if isinstance(who, ZaloCitizen) and any(
            title.partition(". ")[2] == label for title in last.labels
        ):
            return self.send(who, who.press(last.raw, label))
        number = re.search(rf"^(\d+)\. {re.escape(label)}$", last.text, re.MULTILINE)
        return self.say(who, number.group(1) if number else label)

    def wait_for(self, who: ZaloCitizen | ZaloBotUser, count: int) -> list[Reply]:
        wait_until(lambda: len(self.replies(who)) >= count, 15, f"{count} on Zalo")
        return self.replies(who)

    # -- the web chat, Telegram and the outbox ------------------------------------------------

    def web(self, chat_id: str, text: str) -> list[str]:
        answer = self.client.post("/api/chat", json={"chat_id": chat_id, "text": text})
        assert answer.status_code == 200, answer.text
        return [str(m["text"]) for m in answer.json()["messages"]]

    def telegram(self, update: dict[str, Any]) -> None:
        headers = {TELEGRAM_HEADER: SECRET}
        response = self.client.post("/telegram/webhook", headers=headers, json=update)
        assert response.status_code == 200, response.text

    def on_telegram(self, chat_id: int, count: int) -> list[Sent]:
        wait_until(lambda: len(self.api.messages(chat_id)) >= count, 15, f"{count} to {chat_id}")
        return self.api.messages(chat_id)

    def settled(self, channel: str, chat_id: str) -> None:
        waiting = (OutboxStatus.PENDING, OutboxStatus.SENDING)

        def drained() -> bool:
            items = self.store.outbox_after(channel=channel, chat_id=chat_id)
            return not [i for i in items if i.status in waiting]

        wait_until(drained, 15, f"the outbox of {channel}:{chat_id} to drain")

    def join(self, volunteer: Citizen) -> None:
        team = self.handoff.create_team("Đội thanh niên phường Hồng Gai")
        code = self.handoff.create_invite(team.id, created_by="test").code
        self.telegram(volunteer.text(f"/join {code}"))
        assert "Chào mừng" in self.on_telegram(volunteer.id, 1)[-1].text

    def claim(self, volunteer: Citizen, post: Sent) -> None:
        update = volunteer.press(post, CLAIM)
        update["callback_query"]["message"]["chat"] = {"id": GROUP, "type": "supergroup"}
        self.telegram(update)


@pytest.fixture(scope="module")
def served_zalo() -> Iterator[FakeZalo]:
    with fake_zalo.served() as fake:
        yield fake


@pytest.fixture
def zalo(served_zalo: FakeZalo) -> FakeZalo:
    served_zalo.reset()
    return served_zalo


@pytest.fixture
def service(store: Store, library: ContentLibrary) -> ConversationService:
    return harness.on_duty_service(store, library)


@pytest.fixture(params=["oa", "bot"])
def side(
    request: pytest.FixtureRequest, api: FakeBotApi, zalo: FakeZalo, service: ConversationService
) -> Iterator[ZaloSide]:
    mode = str(request.param)
    values = telegram_settings(api, volunteer_chat_id=str(GROUP)).model_dump()
    extra: dict[str, Any] = {"zalo_mode": mode}
    if mode == "bot":
        extra.update(zalo_bot_token=BOT_TOKEN, zalo_bot_webhook_secret=BOT_SECRET)
    zalo_values = zalo_settings(zalo, **extra).model_dump()
    values.update({k: v for k, v in zalo_values.items() if k.startswith("zalo_")})
    with LiveServer(create_app(service, settings=Settings(_env_file=None, **values))) as server:
        running = ZaloSide(mode, server, zalo, api, service)
        yield running
        running.client.close()


# --- flows ----------------------------------------------------------------------------------


def test_a_full_vneid_activation(side: ZaloSide) -> None:
    lan = side.citizen("5020")
    replies = side.say(lan, "kich hoat vneid")
    last = replies[-1]
    if side.mode == "oa":
        assert last.labels[:2] == ("1. Đã nhận", "2. Chưa nhận")
    else:
        assert "1. Đã nhận\n2. Chưa nhận" in last.text
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
        replies = side.choose(lan, last, reply)
        assert any(expected in r.text for r in replies), (reply, [r.text for r in replies])
        last = replies[-1]
    assert all(len(r.text) <= 2000 for r in side.replies(lan))


# --- the router and scam warnings -------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "giờ làm việc bộ phận một cửa",  # an answer
        "quên mật khẩu vneid",  # a guide
        "làm căn cước",  # a question back, or a guide
        "xin chào",
    ],
)
def test_the_router_answers_as_on_the_web_chat(side: ZaloSide, text: str) -> None:
    lan = side.citizen("5030")
    expected = side.web("web-5030", text)
    got = [r.text for r in side.say(lan, text)]
    assert len(got) >= len(expected) and expected
    # The same words; on Zalo a choice list may follow the text (the Bot API, or more
    # than 5 choices on the OA).
    for want, have in zip(expected, got, strict=False):
        assert have.startswith(want), (want, have)


def test_a_scam_warning_comes_even_in_the_middle_of_a_guide(side: ZaloSide) -> None:
    lan = side.citizen("5031")
    warning = side.web("web-5031", "có người gọi điện đòi mã OTP")
    assert side.say(lan, "kich hoat vneid")
    got = [r.text for r in side.say(lan, "có người gọi điện đòi mã OTP")]
    assert got and got[0].startswith(warning[0])


# --- exactly once ----------------------------------------------------------------------------


def test_a_duplicate_delivered_concurrently_is_handled_once(side: ZaloSide) -> None:
    lan = side.citizen("5035")
    event = side.text(lan, "kich hoat vneid")
    with ThreadPoolExecutor(6) as pool:
        list(pool.map(lambda _: side.post(event), range(6)))
    side.settled(side.channel, lan.user_id)
    records = side.store.transcript(channel=side.channel, chat_id=lan.user_id)
    assert sum(1 for r in records if r.direction == "in") == 1
    once = side.web("web-5035", "kich hoat vneid")
    assert len(side.replies(lan)) == len(once)


# --- media, /stop ---------------------------------------------------------------------------


def test_media_is_acknowledged_and_a_volunteer_called_or_offered(side: ZaloSide) -> None:
    """As on Telegram: a photo or a voice note calls a volunteer at once (the bot cannot
    read them); a sticker is acknowledged with a volunteer offered."""
    lan = side.citizen("5040")
    replies = side.send(lan, side.photo(lan, "https://z/anh.jpg"))
    assert replies[0].text.startswith("Mình đã nhận được ảnh")
    assert "Mình gửi cho tình nguyện viên xem giúp bạn." in replies[0].text
    assert any("Mình đang tìm một bạn tình nguyện viên" in r.text for r in replies)
    # While the ticket waits, a voice note is kept on it (no second ticket).
    replies = side.send(lan, side.voice(lan, "https://z/voice.aac"))
    assert replies[0].text.startswith("Mình đã nhận được")
    other = side.citizen("5041")
    replies = side.send(other, side.sticker(other))
    assert replies[0].text.startswith("Mình đã nhận được")
    if side.mode == "oa":
        assert replies[0].labels == ("1. Cần người giúp",)
    else:
        assert replies[0].text.endswith("1. Cần người giúp")
    records = side.store.transcript(channel=side.channel, chat_id=lan.user_id)
    assert [r.media_kind for r in records if r.direction == "in"] == ["photo", "audio"]


@pytest.mark.parametrize("words", ["/stop", "xóa dữ liệu của tôi"])
def test_stop_forgets_the_citizen(side: ZaloSide, words: str) -> None:
    lan = side.citizen("5050")
    side.say(lan, "kich hoat vneid")
    side.say(lan, "1")
    replies = side.say(lan, words)
    assert [r.text for r in replies] == [
        "Mình đã xóa tin nhắn và câu trả lời của bạn. Khi cần, bạn gõ menu."
    ]
    transcript = side.store.transcript(channel=side.channel, chat_id=lan.user_id)
    assert [(r.direction, r.text) for r in transcript] == [("out", replies[0].text)]
    # The bot still answers afterwards, from the start.
    assert side.say(lan, "menu")


def test_typed_commands_mean_what_they_mean_on_telegram() -> None:
    # One table for every channel (bot/channels/common.py).
    from bot.channels.common import typed_command

    assert typed_command("/stop") == "g:forget"
    assert typed_command("/lang en") == "g:lang_en"
    assert typed_command("/start vneid_install") == "f:vneid_install"
    assert typed_command("/menu@citizen_bot") == "g:menu"
    assert typed_command("/unknown") is None
    assert typed_command("stop") is None


# --- handoff to a Telegram volunteer ------------------------------------------------------------


def test_a_zalo_citizen_is_helped_by_a_telegram_volunteer_and_rates(side: ZaloSide) -> None:
    citizen, lan = side.citizen("5060"), Citizen(2001, "Lan")
    side.join(lan)
    side.post(side.text(citizen, "gặp người thật"))
    assert side.wait_for(citizen, 1)[-1].text.startswith("Mình đang tìm một bạn tình nguyện")
    post = side.on_telegram(GROUP, 1)[-1]
    assert post.text.startswith("🆘") and "gặp người thật" in post.text
    side.claim(lan, post)
    assert side.on_telegram(lan.id, 2)[1].text.startswith("Bạn đã nhận hỗ trợ")
    joined = side.wait_for(citizen, 2)[-1].text
    assert "Lan" in joined and "OTP" in joined

    # Citizen → volunteer: text, the photo itself (Zalo's URL), a voice note as a link.
    side.post(side.text(citizen, "Tôi bị lỗi khi quét chip"))
    assert side.on_telegram(lan.id, 3)[-1].text.endswith("Tôi bị lỗi khi quét chip")
    side.post(side.photo(citizen, "https://zalo.example/anh-loi.jpg"))
    photo = side.on_telegram(lan.id, 4)[-1]
    assert photo.media == ("photo", "https://zalo.example/anh-loi.jpg")
    assert photo.text.endswith("[ảnh]")
    side.post(side.voice(citizen, "https://zalo.example/giong-noi.aac"))
    voice = side.on_telegram(lan.id, 5)[-1]
    assert voice.media is None and "[âm thanh]" in voice.text
    assert voice.text.endswith("https://zalo.example/giong-noi.aac")

    # Volunteer → citizen: text as it is; a photo cannot go to Zalo, so both are told.
    side.telegram(lan.text("Bác chụp lại mặt sau thẻ giúp cháu"))
    assert side.wait_for(citizen, 3)[-1].text == "🙋 Lan: Bác chụp lại mặt sau thẻ giúp cháu"
    side.telegram(lan.photo("Bác bấm nút này"))
    note = side.wait_for(citizen, 4)[-1].text
    assert note.startswith("🙋 Lan: [ảnh] Bác bấm nút này") and "nói lại bằng lời" in note
    assert "Zalo" in side.on_telegram(lan.id, 6)[-1].text
    side.settled(side.channel, citizen.user_id)
    assert len(side.replies(citizen)) == 4  # the bot kept quiet meanwhile

    # /done: the citizen rates (a button on the OA, a typed number on the Bot API).
    side.telegram(lan.text("/done"))
    rate = side.wait_for(citizen, 5)[-1]
    if side.mode == "oa":
        assert rate.labels == ("1. 1", "2. 2", "3. 3", "4. 4", "5. 5")
    else:
        assert rate.text.endswith("1. 1\n2. 2\n3. 3\n4. 4\n5. 5")
    side.settled(side.channel, citizen.user_id)
    thanks = side.choose(citizen, rate, "5")
    assert thanks[0].text.startswith("Cảm ơn bạn đã chấm điểm")
    assert any("Cần người giúp" in r.text for r in thanks[1:])  # the menu again
    ticket = side.handoff.list_tickets()[0]
    assert ticket.status == TicketStatus.CLOSED and ticket.rating == 5


def test_a_long_volunteer_message_is_split_under_zalos_2000_characters(side: ZaloSide) -> None:
    citizen, lan = side.citizen("5065"), Citizen(2001, "Lan")
    side.join(lan)
    side.post(side.text(citizen, "gặp người thật"))
    side.claim(lan, side.on_telegram(GROUP, 1)[-1])
    before = len(side.wait_for(citizen, 2))
    side.settled(side.channel, citizen.user_id)
    sentences = [f"Bước {n}: bác mở ứng dụng VNeID và bấm nút số {n}." for n in range(1, 80)]
    long = " ".join(sentences)
    assert 3000 < len(long) < 4096  # one Telegram message, two on Zalo
    side.telegram(lan.text(long))
    side.settled(side.channel, citizen.user_id)
    parts = [r.text for r in side.replies(citizen)[before:]]
    assert len(parts) == 2 and all(len(p) <= 2000 for p in parts)
    assert " ".join(parts) == f"🙋 Lan: {long}"  # in order, cut between sentences


def test_stop_during_a_handoff_closes_the_ticket_and_tells_the_volunteer(side: ZaloSide) -> None:
    citizen, lan = side.citizen("5070"), Citizen(2001, "Lan")
    side.join(lan)
    side.post(side.text(citizen, "gặp người thật"))
    side.claim(lan, side.on_telegram(GROUP, 1)[-1])
    side.wait_for(citizen, 2)
    side.settled("telegram", lan.chat_id)
    told = len(side.api.messages(lan.id))
    side.post(side.text(citizen, "/stop"))
    side.on_telegram(lan.id, told + 1)
    assert side.handoff.list_tickets()[0].status == TicketStatus.CLOSED
    transcript = side.store.transcript(channel=side.channel, chat_id=citizen.user_id)
    assert [r.direction for r in transcript] == ["out"]  # only the goodbye is kept


# --- the Bot API's errors ---------------------------------------------------------------------


@pytest.mark.parametrize("side", ["bot"], indirect=True)  # the OA's: tests/webhook/test_zalo.py
def test_bot_api_timeouts_are_retried_not_dropped(side: ZaloSide) -> None:
    # error_code 429 is retried the same way, after RATE_LIMIT_WAIT (30 s): too slow here.
    side.zalo.bot_errors.extend([408, 408])
    lan = side.citizen("5080")
    side.post(side.text(lan, "kich hoat vneid"))
    wait_until(lambda: side.replies(lan), 60, "a reply after the errors")
    side.settled(side.channel, lan.user_id)
    items = side.store.outbox_after(channel=side.channel, chat_id=lan.user_id)
    assert items and all(i.status == OutboxStatus.SENT for i in items)
    assert side.zalo.bot_errors == []
