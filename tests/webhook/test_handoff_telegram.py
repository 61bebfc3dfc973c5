"""The handoff end to end ("1 youth with 1 citizen"): a citizen and two volunteers as
separate Telegram users, the app under a real server, replies delivered through the
real python-telegram-bot client to the fake Bot API. Both databases (`store`)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.content import ContentLibrary
from bot.conversation import ConversationService
from bot.handoff import HANDOFF_FILE, Handoff, HandoffPolicy, VolunteerHours, load_handoff_texts
from bot.helpdesk import HelpDesk
from bot.store import HandoffStore, OutboxStatus, Store, Ticket, TicketStatus
from bot.store.types import utcnow
from tests.fakes.telegram import Citizen, FakeBotApi, Sent, served
from tests.live import LiveServer
from tests.webhook.test_telegram import SECRET, telegram_settings, wait_until
from webhook.app import create_app

ROOT = Path(__file__).resolve().parents[2]
HEADER = "X-Telegram-Bot-Api-Secret-Token"
GROUP = -1005001
CLAIM = "Nhận hỗ trợ"
NO_TICKET = "Bạn chưa nhận hỗ trợ ai."


@pytest.fixture(scope="module")
def served_api() -> Iterator[FakeBotApi]:
    with served() as fake:
        yield fake


@pytest.fixture
def api(served_api: FakeBotApi) -> FakeBotApi:
    served_api.reset()
    return served_api


class Desk:
    """The running app, as citizens and volunteers on Telegram (and the web) reach it."""

    def __init__(self, server: LiveServer, api: FakeBotApi, service: ConversationService) -> None:
        assert service.desk is not None
        self.api = api
        self.service = service
        self.desk: HelpDesk = service.desk
        self.handoff: Handoff = service.desk.handoff
        self.client = httpx.Client(base_url=server.url, timeout=30)

    def post(self, update: dict[str, Any]) -> None:
        response = self.client.post("/telegram/webhook", headers={HEADER: SECRET}, json=update)
        assert response.status_code == 200, response.text

    def wait(self, chat_id: int, count: int) -> list[Sent]:
        """The messages to `chat_id`, once there are at least `count`."""
        wait_until(lambda: len(self.api.messages(chat_id)) >= count, 15, f"{count} to {chat_id}")
        return self.api.messages(chat_id)

    def settle(self, chat_id: int) -> None:
        """Wait until nothing for `chat_id` is waiting in the outbox."""
        waiting = (OutboxStatus.PENDING, OutboxStatus.SENDING)

        def drained() -> bool:
            items = self.service.store.outbox_after(channel="telegram", chat_id=str(chat_id))
            return not [i for i in items if i.status in waiting]

        wait_until(drained, 15, f"the outbox of {chat_id} to drain")

    def last(self, chat_id: int, count: int) -> Sent:
        return self.wait(chat_id, count)[count - 1]

    def invite(self) -> str:
        team = self.handoff.create_team("Đội thanh niên xã An Hòa")
        return self.handoff.create_invite(team.id, created_by="test").code

    def join(self, volunteer: Citizen) -> None:
        before = len(self.api.messages(volunteer.id))
        self.post(volunteer.text(f"/join {self.invite()}"))
        assert "Chào mừng" in self.last(volunteer.id, before + 1).text

    def press_in_group(self, volunteer: Citizen, post: Sent) -> dict[str, Any]:
        update = volunteer.press(post, CLAIM)
        update["callback_query"]["message"]["chat"] = {
            "id": GROUP,
            "type": "supergroup",
            "title": "Tình nguyện viên",
        }
        return update

    def posted(self, count: int = 1) -> Ticket:
        """The only ticket, once `count` posts about it are known (their message ids
        come back from the sender after delivery)."""

        def known() -> bool:
            tickets = self.handoff.list_tickets()
            return len(tickets) == 1 and len(tickets[0].notified) >= count

        wait_until(known, 15, f"{count} posts of the ticket recorded")
        return self.handoff.list_tickets()[0]

    def wait_edit(self, chat_id: int, message_id: int, count: int = 1) -> dict[str, Any]:
        """The `count`-th editMessageText of a message, once it has been made."""
        wait_until(
            lambda: len(self.api.edited(chat_id, message_id)) >= count,
            15,
            f"edit {count} of message {message_id}",
        )
        return self.api.edited(chat_id, message_id)[count - 1]

    def answers(self) -> list[str]:
        return [str(c.params.get("text", "")) for c in self.api.calls_of("answerCallbackQuery")]


def on_duty_service(store: Store, library: ContentLibrary) -> ConversationService:
    """The service with a desk whose volunteers group is GROUP on Telegram, always on
    duty, so what the citizen is told does not depend on the hour the tests run."""
    texts = load_handoff_texts(ROOT / "knowledge" / HANDOFF_FILE)
    policy = HandoffPolicy(hours=VolunteerHours(start=0, end=0))
    desk = HelpDesk(
        store=store,
        handoff=Handoff(HandoffStore(store), policy=policy),
        texts=texts,
        province=("telegram", str(GROUP)),
    )
    return ConversationService(store=store, library=library, desk=desk)


@pytest.fixture
def service(store: Store, library: ContentLibrary) -> ConversationService:
    return on_duty_service(store, library)


@pytest.fixture
def app(api: FakeBotApi, service: ConversationService) -> Iterator[Desk]:
    settings = telegram_settings(api, volunteer_chat_id=str(GROUP))
    with LiveServer(create_app(service, settings=settings)) as server:
        harness = Desk(server, api, service)
        yield harness
        harness.client.close()


def _ask_for_help(app: Desk, citizen: Citizen, text: str = "gặp người thật") -> Sent:
    """The citizen asks for a person; the group post about it."""
    app.settle(citizen.id)
    told_before, posts_before = len(app.api.messages(citizen.id)), len(app.api.messages(GROUP))
    app.post(citizen.text(text))
    told = app.last(citizen.id, told_before + 1).text
    # The wait (or the hours of duty), instead of the engine's generic text.
    assert told.startswith(("Mình đang tìm một bạn tình nguyện viên", "Các bạn tình nguyện"))
    post = app.last(GROUP, posts_before + 1)
    assert post.text.startswith("🆘")
    assert post.labels == [CLAIM]
    return post


def test_a_citizen_is_helped_by_the_volunteer_who_wins_the_claim(app: Desk) -> None:
    citizen, lan, minh = Citizen(1001, "Tư"), Citizen(2001, "Lan"), Citizen(2002, "Minh")
    app.join(lan)
    app.join(minh)
    post = _ask_for_help(app, citizen)
    assert "gặp người thật" in post.text  # the context: the citizen's last messages

    # Both press at once: one wins, the post is marked once, the other is told.
    updates = [app.press_in_group(lan, post), app.press_in_group(minh, post)]
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(app.post, updates))
    wait_until(lambda: len(app.answers()) == 2, 15, "both claims answered")
    assert len(_group_edits(app)) == 1
    assert _group_edits(app)[0]["reply_markup"]["inline_keyboard"][0][0]["text"].endswith(
        "đã nhận hỗ trợ"
    )
    tickets = app.handoff.list_tickets()
    assert len(tickets) == 1 and tickets[0].status == TicketStatus.CLAIMED
    winner, loser = (lan, minh) if tickets[0].volunteer_id == _vid(app, lan) else (minh, lan)
    assert any("đã nhận yêu cầu này rồi" in a for a in app.answers())
    briefing = app.last(winner.id, 2).text
    assert briefing.startswith(f"Bạn đã nhận hỗ trợ #{tickets[0].id}")
    assert "gặp người thật" in briefing
    assert len(app.api.messages(loser.id)) == 1  # only the welcome
    joined = app.last(citizen.id, 2).text
    assert winner.first_name in joined and "OTP" in joined

    # Relay both ways; the bot keeps quiet in between.
    app.post(citizen.text("Tôi không quét được chip"))
    relayed = app.last(winner.id, 3).text
    assert relayed.endswith("Tôi không quét được chip") and relayed.startswith("👤")
    app.post(winner.text("Bác áp thẻ vào mặt sau điện thoại nhé"))
    assert (
        app.last(citizen.id, 3).text
        == f"🙋 {winner.first_name}: Bác áp thẻ vào mặt sau điện thoại nhé"
    )
    app.post(citizen.photo())
    assert "[ảnh]" in app.last(winner.id, 4).text
    assert len(app.api.messages(citizen.id)) == 3

    # Done: the citizen rates, is thanked, and the bot is back.
    app.post(winner.text("/done"))
    assert app.last(winner.id, 5).text.startswith(f"Đã đóng yêu cầu #{tickets[0].id}")
    rate = app.last(citizen.id, 4)
    assert "chấm điểm" in rate.text
    assert rate.labels == ["1", "2", "3", "4", "5"]
    app.post(citizen.press(rate, "5"))
    assert app.last(citizen.id, 5).text.startswith("Cảm ơn bạn đã chấm điểm")
    closed = app.handoff.get_ticket(tickets[0].id)
    assert closed is not None and closed.rating == 5 and closed.status == TicketStatus.CLOSED
    app.post(citizen.text("menu"))
    menu = app.last(citizen.id, 6)
    assert "Cài ứng dụng VNeID" in " ".join(menu.labels)

    # The claim button of a closed ticket gets a clear answer and changes nothing.
    answered = len(app.answers())
    app.post(app.press_in_group(loser, post))
    wait_until(lambda: len(app.answers()) > answered, 15, "the late claim answered")
    assert app.answers()[-1] == "Yêu cầu này đã đóng."
    assert len(_group_edits(app)) == 1


def test_stuck_in_a_guide_the_citizen_resumes_there_after_the_help(app: Desk) -> None:
    citizen, lan = Citizen(1001, "Tư"), Citizen(2001, "Lan")
    app.join(lan)
    app.post(citizen.text("/start"))
    menu = app.last(citizen.id, 2)
    app.post(citizen.press(menu, "Kích hoạt tài khoản VNeID"))
    app.settle(citizen.id)
    step = app.api.messages(citizen.id)[-1]
    post = _ask_for_help(app, citizen, "3")
    assert "vneid_activate" in post.text
    app.post(app.press_in_group(lan, post))
    app.settle(citizen.id)
    count = len(app.api.messages(citizen.id))
    app.post(lan.text("/done"))
    rate = app.last(citizen.id, count + 1)
    app.post(citizen.press(rate, "4"))
    assert app.last(citizen.id, count + 2).text.startswith("Cảm ơn bạn đã chấm điểm")
    # The bot takes over where the volunteer came in: the same step, its buttons.
    again = app.last(citizen.id, count + 3)
    assert (again.text, again.labels) == (step.text, step.labels)
    app.post(citizen.text("1"))  # a typed number answers the buttons just shown
    after = app.last(citizen.id, count + 4)
    assert after.text != step.text and "Cần người giúp" not in after.text


def test_volunteer_commands_without_a_ticket_get_a_clear_answer(app: Desk) -> None:
    lan = Citizen(2001, "Lan")
    app.join(lan)
    app.post(lan.text("/done"))
    assert app.last(lan.id, 2).text == NO_TICKET
    app.post(lan.text("Chào bác"))
    assert app.last(lan.id, 3).text == NO_TICKET
    app.post(lan.text("/off"))
    assert "tạm nghỉ" in app.last(lan.id, 4).text


def test_an_invite_works_once(app: Desk) -> None:
    lan, minh = Citizen(2001, "Lan"), Citizen(2002, "Minh")
    code = app.invite()
    app.post(lan.text(f"/join {code}"))
    assert "Chào mừng Lan" in app.last(lan.id, 1).text
    app.post(minh.text(f"/join {code}"))
    assert app.last(minh.id, 1).text.startswith("Mã mời này đã được dùng")
    assert app.handoff.find_volunteer(channel="telegram", user_id=minh.chat_id) is None


def test_stop_during_a_handoff_closes_the_ticket(app: Desk) -> None:
    citizen, lan = Citizen(1001, "Tư"), Citizen(2001, "Lan")
    app.join(lan)
    post = _ask_for_help(app, citizen)
    app.post(app.press_in_group(lan, post))
    app.wait(citizen.id, 2)
    app.post(citizen.text("/stop"))
    assert app.last(lan.id, 3).text.startswith("✅ Yêu cầu")
    assert app.handoff.list_tickets()[0].status == TicketStatus.CLOSED
    app.post(lan.text("Bác còn đó không?"))
    assert app.last(lan.id, 4).text == NO_TICKET


def test_a_web_chat_citizen_is_helped_by_a_telegram_volunteer(app: Desk) -> None:
    lan = Citizen(2001, "Lan")
    app.join(lan)
    chat = {"chat_id": "web-citizen-1"}
    first = app.client.post("/api/chat", json={**chat, "text": "gặp người thật"}).json()
    assert "tình nguyện viên" in first["messages"][-1]["text"]
    seen = first["messages"][-1]["id"]
    post = app.last(GROUP, 1)
    app.post(app.press_in_group(lan, post))
    app.wait(lan.id, 2)
    app.client.post("/api/chat", json={**chat, "text": "Cháu ơi giúp bác", "after": seen})
    assert app.last(lan.id, 3).text.endswith("Cháu ơi giúp bác")
    app.post(lan.text("Bác mở ứng dụng VNeID ra nhé"))
    polled = app.client.get(f"/api/chat/{chat['chat_id']}", params={"after": seen}).json()
    texts = [m["text"] for m in polled["messages"]]
    assert any("Lan" in t and "OTP" in t for t in texts)  # joined
    assert texts[-1] == "🙋 Lan: Bác mở ứng dụng VNeID ra nhé"


def test_a_long_wait_is_posted_again(app: Desk) -> None:
    citizen = Citizen(1001, "Tư")
    first = _ask_for_help(app, citizen)
    ticket = app.posted()
    assert app.desk.run_timers(utcnow() + timedelta(minutes=1)) == 0
    told = len(app.api.messages(citizen.id))
    # The old post edited, a new one to the province, the citizen told.
    assert app.desk.run_timers(utcnow() + timedelta(minutes=11)) == 3
    again = app.last(GROUP, 2)
    assert again.text.startswith("⏰") and len(again.buttons) == 1
    # Still waiting: they can keep using the bot, and may go to their centre.
    waiting = app.last(citizen.id, told + 1).text
    assert "vẫn hỏi bot được" in waiting and "Trung tâm phục vụ hành chính công" in waiting
    # The old post says it moved, and its button is gone.
    moved = app.wait_edit(GROUP, first.message_id)
    assert moved["text"].startswith(f"➡️ Yêu cầu #{ticket.id} đã được đăng lại")
    assert not (moved.get("reply_markup") or {}).get("inline_keyboard")
    assert app.desk.run_timers(utcnow() + timedelta(minutes=12)) == 0  # once


def test_a_silent_volunteer_hands_the_citizen_back(app: Desk) -> None:
    citizen, lan = Citizen(1001, "Tư"), Citizen(2001, "Lan")
    app.join(lan)
    post = _ask_for_help(app, citizen)
    app.post(app.press_in_group(lan, post))
    app.wait(citizen.id, 2)
    app.desk.run_timers(utcnow() + timedelta(minutes=16))
    assert "lâu không có trả lời" in app.last(lan.id, 3).text
    assert "tìm bạn khác" in app.last(citizen.id, 3).text
    assert app.last(GROUP, 2).text.startswith("↩️")
    assert app.handoff.list_tickets()[0].status == TicketStatus.WAITING


def test_the_volunteer_who_helped_before_is_asked_first(app: Desk) -> None:
    citizen, lan = Citizen(1001, "Tư"), Citizen(2001, "Lan")
    app.join(lan)
    post = _ask_for_help(app, citizen)
    app.post(app.press_in_group(lan, post))
    app.wait(citizen.id, 2)
    app.post(lan.text("/done"))
    app.wait(citizen.id, 3)
    _ask_for_help(app, citizen, "/human")
    offer = app.last(lan.id, 4)
    assert offer.text.startswith("🆘") and offer.labels == [CLAIM]
    app.post(lan.press(offer, CLAIM))  # in the private chat this time
    assert app.last(lan.id, 5).text.startswith("Bạn đã nhận hỗ trợ")
    assert app.handoff.list_tickets()[0].status == TicketStatus.CLAIMED


def _vid(app: Desk, who: Citizen) -> int:
    volunteer = app.handoff.find_volunteer(channel="telegram", user_id=who.chat_id)
    assert volunteer is not None
    return volunteer.id


def _group_edits(app: Desk) -> list[dict[str, Any]]:
    return [e for e in app.api.edits if str(e["chat_id"]) == str(GROUP)]


def test_availability_is_set_with_on_and_off(app: Desk) -> None:
    lan = Citizen(2001, "Lan")
    app.join(lan)

    def available() -> bool:
        volunteer = app.handoff.find_volunteer(channel="telegram", user_id=lan.chat_id)
        assert volunteer is not None
        return volunteer.available

    app.post(lan.text("/off"))
    assert app.last(lan.id, 2).text == "Bạn đã tạm nghỉ. Gõ /on khi sẵn sàng."
    assert not available()
    app.post(lan.text("/on"))
    assert app.last(lan.id, 3).text.startswith("Bạn đang trực.")
    assert available()


def test_done_from_a_volunteer_who_does_not_hold_the_ticket_changes_nothing(app: Desk) -> None:
    citizen, lan, minh = Citizen(1001, "Tư"), Citizen(2001, "Lan"), Citizen(2002, "Minh")
    app.join(lan)
    app.join(minh)
    post = _ask_for_help(app, citizen)
    app.post(app.press_in_group(lan, post))
    app.settle(citizen.id)
    told = len(app.api.messages(citizen.id))
    for command in ("/done", "/transfer", "/visit", "/note Bác ở xa"):
        app.post(minh.text(command))
    wait_until(lambda: len(app.api.messages(minh.id)) == 5, 15, "four answers to Minh")
    assert [m.text for m in app.api.messages(minh.id)[1:]] == [NO_TICKET] * 4
    ticket = app.handoff.list_tickets()[0]
    assert ticket.status == TicketStatus.CLAIMED and ticket.volunteer_id == _vid(app, lan)
    assert app.handoff.notes(ticket.id) == []
    app.settle(citizen.id)
    assert len(app.api.messages(citizen.id)) == told  # the citizen heard nothing of it
