"""The handoff desk (bot/helpdesk.py) through the conversation service, without HTTP:
what is queued for the citizen, the group and the volunteer. Both databases."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from bot.content import ContentLibrary
from bot.conversation import ConversationService
from bot.handoff import HANDOFF_FILE, Handoff, HandoffPolicy, VolunteerHours, load_handoff_texts
from bot.helpdesk import HelpDesk
from bot.messages import Incoming, Media, MediaKind
from bot.store import HandoffStore, Store, TicketStatus
from bot.store.types import utcnow

ROOT = Path(__file__).resolve().parents[1]
GROUP = "-100777"


@pytest.fixture(scope="module")
def library() -> ContentLibrary:
    return ContentLibrary(flows_dir=ROOT / "flows", knowledge_dir=ROOT / "knowledge")


@pytest.fixture
def service(store: Store, library: ContentLibrary) -> ConversationService:
    # Always on duty, so the texts do not depend on the hour the tests run at.
    policy = HandoffPolicy(hours=VolunteerHours(start=0, end=0))
    desk = HelpDesk(
        store=store,
        handoff=Handoff(HandoffStore(store), policy=policy),
        texts=load_handoff_texts(ROOT / "knowledge" / HANDOFF_FILE),
        province=("telegram", GROUP),
        content=library.content,
    )
    return ConversationService(store=store, library=library, desk=desk)


def _desk(service: ConversationService) -> HelpDesk:
    assert service.desk is not None
    return service.desk


def _say(service: ConversationService, text: str, n: int, media: Media | None = None) -> list[str]:
    incoming = Incoming(
        channel="web", chat_id="citizen-0001", text=text, media=media, message_id=f"m{n}"
    )
    handled = service.handle(incoming)
    return [o.text for o in handled.outgoing]


def _texts(store: Store, channel: str, chat_id: str) -> list[str]:
    return [i.text for i in store.outbox_after(channel=channel, chat_id=chat_id)]


def _volunteer(service: ConversationService, user_id: str = "501") -> int:
    handoff = _desk(service).handoff
    team = handoff.create_team("Đội xã Bình Minh")
    code = handoff.create_invite(team.id, created_by="test").code
    redeemed = handoff.redeem_invite(code, channel="telegram", user_id=user_id, name="Hà")
    assert redeemed.volunteer is not None
    return redeemed.volunteer.id


def test_asking_twice_opens_one_ticket(service: ConversationService) -> None:
    first = _say(service, "gặp người thật", 1)
    assert any(t.startswith("Mình đang tìm một bạn tình nguyện viên") for t in first)
    assert not any(t.startswith("Mình đã báo cho tình nguyện viên") for t in first)
    second = _say(service, "gặp người thật", 2)
    assert "Mình đã báo tình nguyện viên rồi. Bạn chờ thêm một chút nhé." in second
    assert len(_desk(service).handoff.list_tickets()) == 1
    posts = _texts(service.store, "telegram", GROUP)
    assert len(posts) == 1 and posts[0].startswith("🆘 Cần hỗ trợ #")


def test_a_claimed_citizen_is_relayed_masked_and_rates_by_typing(
    service: ConversationService,
) -> None:
    desk = _desk(service)
    volunteer_id = _volunteer(service)
    _say(service, "gặp người thật", 1)
    ticket = desk.handoff.list_tickets()[0]
    answer = desk.claim(ticket.id, channel="telegram", user_id="501")
    assert answer.marked == "Hà đã nhận hỗ trợ"
    assert _say(service, "số căn cước của tôi 001234567890", 2) == []
    voice = Media(MediaKind.VOICE, ref="AwAC-voice")
    assert _say(service, "", 3, media=voice) == []
    relayed = _texts(service.store, "telegram", "501")[-2:]
    assert "001234567890" not in relayed[0]  # personal data is masked for the volunteer
    assert relayed[1].endswith("[tin nhắn thoại]")
    closed = desk.handoff.close(None, volunteer_id=volunteer_id)
    assert closed.ok
    thanks, *resumed = _say(service, "5", 4)
    assert thanks.startswith("Cảm ơn bạn đã chấm điểm!")
    # Outside any guide before the help: the bot comes back with the menu.
    menu = service.store.outbox_after(channel="web", chat_id="citizen-0001")[-1]
    assert resumed and menu.text == resumed[-1]
    assert "Cài ứng dụng VNeID" in " ".join(b.label for b in menu.buttons)
    rated = desk.handoff.get_ticket(ticket.id)
    assert rated is not None and rated.rating == 5


def test_a_ticket_nobody_takes_expires_and_the_citizen_is_told(
    service: ConversationService,
) -> None:
    _say(service, "gặp người thật", 1)
    _desk(service).run_timers(utcnow() + timedelta(days=2))
    ticket = _desk(service).handoff.list_tickets()[0]
    assert ticket.status == TicketStatus.CLOSED
    assert _texts(service.store, "web", "citizen-0001")[-1].startswith("Xin lỗi, chưa có")


def test_a_stranger_cannot_claim(service: ConversationService) -> None:
    _say(service, "gặp người thật", 1)
    ticket = _desk(service).handoff.list_tickets()[0]
    answer = _desk(service).claim(ticket.id, channel="telegram", user_id="999")
    assert answer.marked is None and answer.notice.startswith("Bạn chưa là tình nguyện viên")
