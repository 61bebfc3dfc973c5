"""The handoff desk (bot/helpdesk.py) through the conversation service, without HTTP:
what is queued for the citizen, the group and the volunteer. Both databases."""

from __future__ import annotations

from datetime import timedelta, timezone
from pathlib import Path

import pytest

from bot.content import ContentLibrary
from bot.conversation import ConversationService
from bot.handoff import HANDOFF_FILE, Handoff, HandoffPolicy, VolunteerHours, load_handoff_texts
from bot.helpdesk import HelpDesk
from bot.messages import Incoming, Media, MediaKind
from bot.store import HandoffStore, NoteKind, Store, TeamKind, TicketStatus
from bot.store.types import utcnow

ROOT = Path(__file__).resolve().parents[1]
GROUP = "-100777"


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


def test_outside_volunteer_hours_the_citizen_is_told_when_someone_is_back(
    store: Store, library: ContentLibrary
) -> None:
    zone = timezone(timedelta(hours=7))  # Vietnam, no daylight saving
    local = utcnow().astimezone(zone)
    # Duty starts two hours from now and lasts an hour: now is outside it.
    start, end = (local.hour + 2) % 24, (local.hour + 3) % 24
    policy = HandoffPolicy(hours=VolunteerHours(start=start, end=end))
    desk = HelpDesk(
        store=store,
        handoff=Handoff(HandoffStore(store), policy=policy),
        texts=load_handoff_texts(ROOT / "knowledge" / HANDOFF_FILE),
        province=("telegram", GROUP),
    )
    service = ConversationService(store=store, library=library, desk=desk)
    back = local.replace(hour=start, minute=0, second=0, microsecond=0)
    if back <= local:
        back += timedelta(days=1)
    said = _say(service, "gặp người thật", 1)
    assert (
        f"Các bạn tình nguyện viên trực từ {start} giờ đến {end} giờ. Mình đã ghi lại yêu cầu "
        f"của bạn. Một bạn sẽ nhắn cho bạn sau {back:%H:%M} ngày {back:%d/%m}."
    ) in said
    # The request is kept and posted, for the first volunteer on duty.
    assert [t.status for t in desk.handoff.list_tickets()] == [TicketStatus.WAITING]
    assert _texts(store, "telegram", GROUP)[0].startswith("🆘 Cần hỗ trợ #")
    # A long wait off duty: posted to the province, but the citizen keeps the hour given.
    told = _texts(store, "web", "citizen-0001")
    assert desk.run_timers(utcnow() + timedelta(minutes=11)) == 1
    assert _texts(store, "web", "citizen-0001") == told
    assert _texts(store, "telegram", GROUP)[-1].startswith("⏰ Yêu cầu #")


def test_a_long_wait_offers_the_communes_centre_and_the_bot_keeps_answering(
    service: ConversationService,
) -> None:
    desk = _desk(service)
    with service.store.conversation(channel="web", chat_id="citizen-0002") as tx:
        desk.handoff.open_ticket(
            tx.conversation_id, reason="asked_human", commune_id="quang_la", tx=tx
        )
    _say(service, "gặp người thật", 1)  # citizen-0001, commune unknown
    assert desk.run_timers(utcnow() + timedelta(minutes=11)) == 4  # a post and a word each
    known = _texts(service.store, "web", "citizen-0002")[-1]
    assert known.startswith("Các bạn tình nguyện viên gần bạn đang bận.")
    assert "Trung tâm Phục vụ hành chính công xã Quảng La" in known
    unknown = _texts(service.store, "web", "citizen-0001")[-1]
    assert unknown.endswith(
        "Bạn cũng có thể đến Trung tâm phục vụ hành chính công của xã, phường nơi bạn ở."
    )
    # Meanwhile the bot still answers: the menu, not a relay.
    menu = _say(service, "menu", 2)
    assert menu == ["Mình có thể giúp bạn các việc dưới đây. Bạn bấm một nút, hoặc gõ số thứ tự."]
    assert {t.status for t in desk.handoff.list_tickets()} == {TicketStatus.WAITING}


def test_timers_come_from_stored_times_and_survive_a_restart(
    store: Store, library: ContentLibrary
) -> None:
    def start(on: Store) -> ConversationService:
        desk = HelpDesk(
            store=on,
            handoff=Handoff(
                HandoffStore(on), policy=HandoffPolicy(hours=VolunteerHours(start=0, end=0))
            ),
            texts=load_handoff_texts(ROOT / "knowledge" / HANDOFF_FILE),
            province=("telegram", GROUP),
        )
        return ConversationService(store=on, library=library, desk=desk)

    before = start(store)
    _volunteer(before)
    _say(before, "gặp người thật", 1)  # citizen-0001: will be claimed, then silence
    claimed = _desk(before).handoff.list_tickets()[0]
    assert _desk(before).claim(claimed.id, channel="telegram", user_id="501").marked
    handled = before.handle(Incoming(channel="web", chat_id="citizen-0002", text="gặp người thật"))
    assert handled.outgoing  # citizen-0002: waits, nobody claims
    waiting = next(t for t in _desk(before).handoff.list_tickets() if t.id != claimed.id)
    store.dispose()  # the process stops; nothing of it is left running

    again = Store(store.url)
    try:
        after = start(again)
        desk = _desk(after)
        assert desk.run_timers(utcnow() + timedelta(minutes=5)) == 0  # not due yet
        desk.run_timers(utcnow() + timedelta(minutes=16))
        returned = desk.handoff.get_ticket(claimed.id)
        assert returned is not None and returned.status == TicketStatus.WAITING
        assert [n.kind for n in desk.handoff.notes(claimed.id)] == [NoteKind.RETURNED]
        assert _texts(again, "telegram", "501")[-1].startswith(
            f"Yêu cầu #{claimed.id} đã được chuyển lại cho đội"
        )
        assert _texts(again, "web", "citizen-0001")[-1].startswith("Bạn tình nguyện viên vừa")
        reposted = desk.handoff.get_ticket(waiting.id)
        assert reposted is not None and reposted.reposted_at is not None
        assert _texts(again, "telegram", GROUP)[-1].startswith(f"↩️ Yêu cầu #{claimed.id}")
        assert any(
            t.startswith(f"⏰ Yêu cầu #{waiting.id}") for t in _texts(again, "telegram", GROUP)
        )
        # A day later nobody took either: both close, from the stored times alone.
        desk.run_timers(utcnow() + timedelta(days=2))
        statuses = {t.id: t.status for t in desk.handoff.list_tickets()}
        assert statuses == {claimed.id: TicketStatus.CLOSED, waiting.id: TicketStatus.CLOSED}
    finally:
        again.dispose()


def test_a_visit_is_asked_of_the_mobile_team_that_serves_the_commune(
    service: ConversationService,
) -> None:
    desk = _desk(service)
    handoff = desk.handoff
    near = handoff.create_team(
        "Đội hình lưu động Quảng La", kind=TeamKind.MOBILE, commune_id="quang_la"
    )
    far = handoff.create_team("Đội hình lưu động Cô Tô", kind=TeamKind.MOBILE, commune_id="co_to")
    handoff.set_team_chat(near.id, channel="telegram", chat_id="-100901")
    handoff.set_team_chat(far.id, channel="telegram", chat_id="-100902")
    commune = handoff.create_team("Đoàn xã Quảng La", commune_id="quang_la")
    code = handoff.create_invite(commune.id, created_by="test").code
    joined = handoff.redeem_invite(code, channel="telegram", user_id="501", name="Hà")
    assert joined.volunteer is not None
    volunteer_id = joined.volunteer.id
    with service.store.conversation(channel="web", chat_id="citizen-0003") as tx:
        ticket, _ = handoff.open_ticket(
            tx.conversation_id, reason="level2_cannot_travel", commune_id="quang_la", tx=tx
        )
    assert desk.claim(ticket.id, channel="telegram", user_id="501").marked
    volunteer = handoff.get_volunteer(volunteer_id)
    assert volunteer is not None
    result, _ = desk.request_visit(None, volunteer, note="Bác ở thôn 3, đi lại khó")
    assert result.ok
    asked = _texts(service.store, "telegram", "-100901")
    assert asked == [
        f"🏠 Yêu cầu #{ticket.id} cần hỗ trợ tận nơi. Xã/phường: quang_la. "
        "Ghi chú: Bác ở thôn 3, đi lại khó"
    ]
    assert _texts(service.store, "telegram", "-100902") == []
    assert _texts(service.store, "telegram", GROUP) == []  # not the province's group
    assert _texts(service.store, "web", "citizen-0003")[-1].startswith("Đội tình nguyện sẽ")
