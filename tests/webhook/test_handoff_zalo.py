"""Cross-channel handoff: a citizen on Zalo (signed events to /zalo/webhook, replies to
the fake Zalo OA server) helped by a volunteer on Telegram (updates to
/telegram/webhook, replies to the fake Bot API), both through the real clients, in one
app; and a web chat citizen. Both databases (`store`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bot.config import Settings
from bot.content import ContentLibrary
from bot.conversation import ConversationService
from bot.handoff import Handoff
from bot.store import NoteKind, OutboxStatus, Store, TicketStatus
from tests.fakes import zalo as fake_zalo
from tests.fakes.telegram import Citizen, FakeBotApi, Sent
from tests.fakes.zalo import FakeZalo, ZaloCitizen, ZaloSent, signed
from tests.live import LiveServer
from tests.webhook import test_handoff_telegram as harness
from tests.webhook.test_handoff_telegram import CLAIM, GROUP
from tests.webhook.test_telegram import SECRET, telegram_settings, wait_until
from tests.webhook.test_zalo import zalo_settings
from webhook.app import create_app

HEADER = "X-Telegram-Bot-Api-Secret-Token"
# The fake Bot API and the content of the Telegram handoff tests.
served_api, api = harness.served_api, harness.api


@pytest.fixture(scope="module")
def served_zalo() -> Iterator[FakeZalo]:
    with fake_zalo.served() as fake:
        yield fake


@pytest.fixture
def zalo(served_zalo: FakeZalo) -> FakeZalo:
    fake = served_zalo
    with fake._lock:
        fake.sent.clear()
        fake.uploads.clear()
        fake.upload_errors = 0
        fake.outside_window.clear()
        fake.access_tokens = {"access-0"}
        fake.refresh_token = "refresh-0"
    return fake


class Both:
    """The running app, reached by Zalo citizens, Telegram volunteers and the web."""

    def __init__(
        self, server: LiveServer, api: FakeBotApi, zalo: FakeZalo, service: ConversationService
    ) -> None:
        assert service.desk is not None
        self.api, self.zalo, self.service = api, zalo, service
        self.handoff: Handoff = service.desk.handoff
        self.client = httpx.Client(base_url=server.url, timeout=30)

    def telegram(self, update: dict[str, Any]) -> None:
        response = self.client.post("/telegram/webhook", headers={HEADER: SECRET}, json=update)
        assert response.status_code == 200, response.text

    def oa(self, data: dict[str, Any]) -> None:
        body, headers = signed(data)
        response = self.client.post("/zalo/webhook", content=body, headers=headers)
        assert response.status_code == 200, response.text

    def on_zalo(self, citizen: ZaloCitizen, count: int) -> list[ZaloSent]:
        wait_until(
            lambda: len(self.zalo.messages(citizen.user_id)) >= count, 15, f"{count} on Zalo"
        )
        return self.zalo.messages(citizen.user_id)

    def on_telegram(self, chat_id: int, count: int) -> list[Sent]:
        wait_until(lambda: len(self.api.messages(chat_id)) >= count, 15, f"{count} to {chat_id}")
        return self.api.messages(chat_id)

    def settled(self, channel: str, chat_id: str) -> None:
        waiting = (OutboxStatus.PENDING, OutboxStatus.SENDING)

        def drained() -> bool:
            items = self.service.store.outbox_after(channel=channel, chat_id=chat_id)
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


@pytest.fixture
def service(store: Store, library: ContentLibrary) -> ConversationService:
    return harness.on_duty_service(store, library)


@pytest.fixture
def both(api: FakeBotApi, zalo: FakeZalo, service: ConversationService) -> Iterator[Both]:
    values = telegram_settings(api, volunteer_chat_id=str(GROUP)).model_dump()
    values.update(
        {k: v for k, v in zalo_settings(zalo).model_dump().items() if k.startswith("zalo_")}
    )
    settings = Settings(_env_file=None, **values)
    with LiveServer(create_app(service, settings=settings)) as server:
        harness = Both(server, api, zalo, service)
        yield harness
        harness.client.close()


def test_a_zalo_citizen_is_helped_by_a_telegram_volunteer(both: Both) -> None:
    citizen, lan = ZaloCitizen("zalo-user-77"), Citizen(2001, "Lan")
    both.join(lan)
    both.oa(citizen.text("gặp người thật"))
    assert both.on_zalo(citizen, 1)[-1].text.startswith("Mình đang tìm một bạn tình nguyện")
    post = both.on_telegram(GROUP, 1)[-1]
    assert post.text.startswith("🆘") and "gặp người thật" in post.text
    both.claim(lan, post)
    assert both.on_telegram(lan.id, 2)[1].text.startswith("Bạn đã nhận hỗ trợ")
    joined = both.on_zalo(citizen, 2)[-1].text
    assert "Lan" in joined and "OTP" in joined

    # Citizen → volunteer: text, then the photo itself (Zalo's URL, fetched by Telegram),
    # then a voice note Telegram cannot take by URL: a link.
    both.oa(citizen.text("Tôi bị lỗi khi quét chip"))
    assert both.on_telegram(lan.id, 3)[-1].text.endswith("Tôi bị lỗi khi quét chip")
    both.oa(citizen.image("https://zalo.example/anh-loi.jpg"))
    photo = both.on_telegram(lan.id, 4)[-1]
    assert photo.media == ("photo", "https://zalo.example/anh-loi.jpg")
    assert photo.text.endswith("[ảnh]")
    both.oa(citizen.audio("https://zalo.example/giong-noi.aac"))
    voice = both.on_telegram(lan.id, 5)[-1]
    assert voice.media is None and "[âm thanh]" in voice.text
    assert voice.text.endswith("https://zalo.example/giong-noi.aac")
    # A photo Telegram cannot download (400) still arrives, as a link.
    both.api.unfetchable.add("https://zalo.example/het-han.jpg")
    both.oa(citizen.image("https://zalo.example/het-han.jpg"))
    link = both.on_telegram(lan.id, 6)[-1]
    assert link.media is None and link.text.endswith("[ảnh]\nhttps://zalo.example/het-han.jpg")

    # Volunteer → citizen: text as it is; a photo is fetched from Telegram and uploaded
    # to Zalo (tests/webhook/test_zalo_photo_relay.py: its failures).
    both.telegram(lan.text("Bác chụp lại mặt sau thẻ giúp cháu"))
    assert both.on_zalo(citizen, 3)[-1].text == "🙋 Lan: Bác chụp lại mặt sau thẻ giúp cháu"
    both.api.files["AgAC-large"] = b"\xff\xd8 the back of the card"
    both.telegram(lan.photo("Bác bấm nút này"))
    shown = both.on_zalo(citizen, 4)[-1]
    assert shown.text == "🙋 Lan: [ảnh] Bác bấm nút này"
    assert shown.image == b"\xff\xd8 the back of the card"
    both.settled("zalo", citizen.user_id)
    assert len(both.api.messages(lan.id)) == 6  # nothing to tell the volunteer
    assert len(both.zalo.messages(citizen.user_id)) == 4  # the bot kept quiet

    # /done: the citizen rates with a Zalo button, is thanked, and the bot is back.
    both.telegram(lan.text("/done"))
    rate = both.on_zalo(citizen, 5)[-1]
    assert rate.labels == ["1. 1", "2. 2", "3. 3", "4. 4", "5. 5"]
    both.oa(citizen.press(rate, "5"))
    after = both.on_zalo(citizen, 7)
    assert after[5].text.startswith("Cảm ơn bạn đã chấm điểm")
    # The menu, where the citizen was before asking (over 5 choices: a numbered list).
    assert "Cần người giúp" in after[6].text
    ticket = both.handoff.list_tickets()[0]
    assert ticket.status == TicketStatus.CLOSED and ticket.rating == 5


def test_outside_zalos_window_the_volunteer_is_told_once(both: Both) -> None:
    citizen, lan = ZaloCitizen("zalo-user-88"), Citizen(2001, "Lan")
    both.join(lan)
    both.oa(citizen.text("gặp người thật"))
    both.claim(lan, both.on_telegram(GROUP, 1)[-1])
    both.on_zalo(citizen, 2)
    both.settled("telegram", lan.chat_id)
    told = len(both.api.messages(lan.id))

    both.zalo.outside_window.add(citizen.user_id)  # days pass; Zalo now refuses
    both.telegram(lan.text("Bác ơi, bác làm được chưa?"))
    warning = both.on_telegram(lan.id, told + 1)[-1].text
    assert warning.startswith("⚠️ Tin của bạn chưa tới người dân")
    assert "Người dân cần nhắn trước" in warning
    both.telegram(lan.text("Bác nhắn lại cho cháu nhé"))
    both.settled("zalo", citizen.user_id)
    both.settled("telegram", lan.chat_id)
    assert len(both.api.messages(lan.id)) == told + 1  # told once, not at every reply
    failed = both.service.store.outbox_after(channel="zalo", chat_id=citizen.user_id)[-2:]
    assert [i.status for i in failed] == [OutboxStatus.FAILED, OutboxStatus.FAILED]
    assert all(i.attempts <= 1 for i in failed)  # not retried
    ticket = both.handoff.list_tickets()[0]
    assert [n.kind for n in both.handoff.notes(ticket.id)] == [NoteKind.UNDELIVERED]
    assert ticket.status == TicketStatus.CLAIMED  # still Lan's: the citizen may write

    # The citizen writes again: the window opens, replies go through.
    both.zalo.outside_window.clear()
    both.oa(citizen.text("Cháu ơi bác đây"))
    assert both.on_telegram(lan.id, told + 2)[-1].text.endswith("Cháu ơi bác đây")
    before = len(both.zalo.messages(citizen.user_id))
    both.telegram(lan.text("Dạ cháu đây ạ"))
    assert both.on_zalo(citizen, before + 1)[-1].text == "🙋 Lan: Dạ cháu đây ạ"


def test_a_zalo_citizen_who_unfollows_mid_handoff_closes_the_ticket(both: Both) -> None:
    citizen, lan = ZaloCitizen("zalo-user-99"), Citizen(2001, "Lan")
    both.join(lan)
    both.oa(citizen.text("gặp người thật"))
    both.claim(lan, both.on_telegram(GROUP, 1)[-1])
    both.on_zalo(citizen, 2)
    both.settled("telegram", lan.chat_id)
    told = len(both.api.messages(lan.id))
    both.oa(citizen.unfollow())
    assert "đã chặn bot" in both.on_telegram(lan.id, told + 1)[-1].text
    assert both.handoff.list_tickets()[0].status == TicketStatus.CLOSED


def test_a_web_chat_citizen_gets_photos_in_words_and_resumes_after_rating(both: Both) -> None:
    lan = Citizen(2001, "Lan")
    both.join(lan)
    chat = {"chat_id": "web-citizen-9"}
    first = both.client.post("/api/chat", json={**chat, "text": "gặp người thật"}).json()
    seen = first["messages"][-1]["id"]
    both.claim(lan, both.on_telegram(GROUP, 1)[-1])
    both.on_telegram(lan.id, 2)
    both.telegram(lan.photo())
    assert "web" in both.on_telegram(lan.id, 3)[-1].text
    both.telegram(lan.text("/done"))

    def unread() -> list[dict[str, Any]]:
        url = f"/api/chat/{chat['chat_id']}"
        messages: list[dict[str, Any]] = both.client.get(url, params={"after": seen}).json()[
            "messages"
        ]
        return messages

    wait_until(lambda: any("chấm điểm" in m["text"] for m in unread()), 15, "the rating")
    polled = {"messages": unread()}
    texts = [m["text"] for m in polled["messages"]]
    assert any(t.startswith("🙋 Lan: [ảnh]") and "nói lại bằng lời" in t for t in texts)
    rate = polled["messages"][-1]
    assert [b["label"] for b in rate["buttons"]] == ["1", "2", "3", "4", "5"]
    payload = rate["buttons"][4]["payload"]
    after = {"after": rate["id"]}
    rated = both.client.post("/api/chat", json={**chat, **after, "payload": payload}).json()
    answers = rated["messages"]
    assert answers[0]["text"].startswith("Cảm ơn bạn đã chấm điểm")
    assert len(answers) >= 2 and answers[-1]["buttons"]  # the menu again
