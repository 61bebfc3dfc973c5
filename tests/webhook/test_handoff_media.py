"""The handoff on Telegram, beyond text: photos, voice notes, stickers and videos relayed
as themselves; the volunteer group's post edited as the ticket moves; a citizen who
blocks the bot mid-handoff; invite codes that no longer work. Real app, real client,
fake Bot API (the harness of test_handoff_telegram). Both databases (`store`)."""

from __future__ import annotations

from datetime import timedelta

from bot.store import CloseReason, TicketStatus
from tests.fakes.telegram import Citizen, Sent
from tests.webhook import test_handoff_telegram as harness
from tests.webhook.test_handoff_telegram import CLAIM, GROUP, NO_TICKET, Desk, _ask_for_help
from tests.webhook.test_telegram import wait_until

# The fixtures of the Telegram handoff tests: one fake Bot API, the app with a desk.
served_api, api = harness.served_api, harness.api
service, app = harness.service, harness.app

HUMAN = "Cần người giúp"


def _claimed(app: Desk, citizen: Citizen, volunteer: Citizen) -> Sent:
    """`volunteer` joins and takes `citizen`'s new ticket; the group post."""
    app.join(volunteer)
    post = _ask_for_help(app, citizen)
    app.post(app.press_in_group(volunteer, post))
    app.settle(citizen.id)
    app.settle(volunteer.id)
    return post


def _media(app: Desk, chat_id: int) -> list[tuple[str, str]]:
    return [m.media for m in app.api.messages(chat_id) if m.media is not None]


def test_a_photo_before_the_claim_is_kept_and_shown_to_the_volunteer(app: Desk) -> None:
    citizen, lan = Citizen(1001, "Tư"), Citizen(2001, "Lan")
    app.join(lan)
    app.post(citizen.photo())  # a screenshot of an error, no words
    ack = app.last(citizen.id, 1)
    # Acknowledged kindly, and a volunteer called at once: the bot cannot read it
    # (issues 4.5 and 5.1).
    assert ack.text.startswith("Mình đã nhận được ảnh") and ack.labels == []
    assert "Mình đang tìm một bạn tình nguyện viên" in app.last(citizen.id, 2).text
    records = app.service.store.transcript(channel="telegram", chat_id=citizen.chat_id)
    inbound = [r for r in records if r.direction == "in"]
    assert inbound[-1].media_kind == "photo" and inbound[-1].text == ""

    post = app.last(GROUP, 1)
    assert "👤 Người dân: [ảnh]" in post.text  # the masked context
    app.post(citizen.voice())  # while waiting: kept on the ticket too
    app.settle(citizen.id)
    app.post(app.press_in_group(lan, post))
    briefing = app.last(lan.id, 2).text
    assert briefing.startswith("Bạn đã nhận hỗ trợ") and "[tin nhắn thoại]" in briefing
    # The photo and the voice note themselves follow the briefing.
    wait_until(lambda: len(_media(app, lan.id)) == 2, 15, "the kept media")
    assert _media(app, lan.id) == [("photo", "AgAC-large"), ("voice", "AwAC-voice")]
    first = next(m for m in app.api.messages(lan.id) if m.media is not None)
    assert first.text == f"👤 Người dân #{app.handoff.list_tickets()[0].id}: [ảnh]"


def test_attachments_are_relayed_both_ways_as_themselves(app: Desk) -> None:
    citizen, lan = Citizen(1001, "Tư"), Citizen(2001, "Lan")
    _claimed(app, citizen, lan)
    told = len(app.api.messages(citizen.id))
    for update in (citizen.photo("Đây ạ"), citizen.voice(), citizen.video(), citizen.document()):
        app.post(update)
    app.post(citizen.sticker())
    wait_until(lambda: len(_media(app, lan.id)) == 5, 15, "five attachments relayed")
    assert _media(app, lan.id) == [
        ("photo", "AgAC-large"),
        ("voice", "AwAC-voice"),
        ("video", "BAAC-video"),
        ("document", "BQAC-doc"),
        ("sticker", "CAAC-sticker"),
    ]
    captions = [m.text for m in app.api.messages(lan.id) if m.media is not None]
    number = app.handoff.list_tickets()[0].id
    assert captions[0] == f"👤 Người dân #{number}: [ảnh] Đây ạ"
    # A sticker takes no caption: its words go just before it.
    assert app.api.messages(lan.id)[-2].text == f"👤 Người dân #{number}: [nhãn dán]"
    assert len(app.api.messages(citizen.id)) == told  # the bot keeps quiet

    app.post(lan.photo("Bác bấm vào nút này"))
    wait_until(lambda: _media(app, citizen.id), 15, "the volunteer's photo")
    back = app.api.messages(citizen.id)[-1]
    assert back.media == ("photo", "AgAC-large")
    assert back.text == "🙋 Lan: [ảnh] Bác bấm vào nút này"
    # The transcript keeps the placeholder, not the file.
    records = app.service.store.transcript(channel="telegram", chat_id=citizen.chat_id)
    assert any(r.direction == "out" and r.text == back.text for r in records)


def test_the_group_post_says_who_took_it_who_closed_it_and_the_rating(app: Desk) -> None:
    citizen, lan = Citizen(1001, "Tư"), Citizen(2001, "Lan")
    app.join(lan)
    post = _ask_for_help(app, citizen)
    ticket = app.posted()
    app.post(app.press_in_group(lan, post))
    claimed = app.wait_edit(GROUP, post.message_id)
    assert claimed["text"].startswith(f"✋ Yêu cầu #{ticket.id}: Lan đã nhận hỗ trợ lúc")
    assert not (claimed.get("reply_markup") or {}).get("inline_keyboard")

    app.settle(citizen.id)
    app.post(lan.text("/done"))
    closed = app.wait_edit(GROUP, post.message_id, 2)
    assert closed["text"].startswith(f"✅ Yêu cầu #{ticket.id} đã đóng lúc")
    assert "đã giúp xong" in closed["text"] and closed["text"].endswith("Người đóng: Lan.")
    rate = app.last(citizen.id, 3)
    app.post(citizen.press(rate, "4"))
    rated = app.wait_edit(GROUP, post.message_id, 3)
    assert rated["text"] == closed["text"] + " Người dân chấm 4/5."


def test_a_post_sent_after_the_ticket_was_taken_loses_its_button(app: Desk) -> None:
    citizen, lan = Citizen(1001, "Tư"), Citizen(2001, "Lan")
    _claimed(app, citizen, lan)
    app.post(lan.text("/done"))
    app.post(citizen.press(app.last(citizen.id, 3), "5"))
    app.settle(GROUP)
    app.settle(citizen.id)
    # The next group post is held up (429 for 2 s); meanwhile Lan, who helped before,
    # takes the new ticket from the private offer.
    app.api.fail_chat(GROUP, 1, status=429, retry_after=2)
    posts = len(app.api.messages(GROUP))
    app.post(citizen.text("/human"))
    offer = app.last(lan.id, 4)
    assert offer.labels == [CLAIM]
    app.post(lan.press(offer, CLAIM))
    new = app.handoff.list_tickets()[0]
    assert new.status == TicketStatus.CLAIMED
    late = app.last(GROUP, posts + 1)
    assert late.labels == [CLAIM]  # sent as it was queued, then edited at once
    edit = app.wait_edit(GROUP, late.message_id)
    assert edit["text"].startswith(f"✋ Yêu cầu #{new.id}: Lan đã nhận hỗ trợ")
    assert not (edit.get("reply_markup") or {}).get("inline_keyboard")


def test_a_citizen_who_blocks_the_bot_mid_handoff_closes_the_ticket(app: Desk) -> None:
    citizen, lan = Citizen(1001, "Tư"), Citizen(2001, "Lan")
    post = _claimed(app, citizen, lan)
    told = len(app.api.messages(lan.id))
    app.post(citizen.blocked_bot())
    warning = app.last(lan.id, told + 1).text
    assert warning.startswith("⛔ Người dân ở yêu cầu #") and "đã chặn bot" in warning
    ticket = app.handoff.list_tickets()[0]
    assert ticket.status == TicketStatus.CLOSED and ticket.close_reason == CloseReason.BLOCKED
    app.post(lan.text("Bác ơi?"))
    assert app.last(lan.id, told + 2).text == NO_TICKET
    closed = app.wait_edit(GROUP, post.message_id, 2)
    assert "người dân đã chặn bot" in closed["text"]


def test_a_reply_refused_with_403_closes_the_ticket_too(app: Desk) -> None:
    citizen, lan = Citizen(1001, "Tư"), Citizen(2001, "Lan")
    _claimed(app, citizen, lan)
    app.api.block(citizen.id)  # no my_chat_member update arrives: the send finds out
    told = len(app.api.messages(lan.id))
    app.post(lan.text("Bác còn đó không?"))
    warning = app.last(lan.id, told + 1).text
    assert "đã chặn bot" in warning
    ticket = app.handoff.list_tickets()[0]
    assert ticket.status == TicketStatus.CLOSED and ticket.close_reason == CloseReason.BLOCKED


def test_an_expired_or_unknown_invite_gets_a_clear_answer(app: Desk) -> None:
    lan = Citizen(2001, "Lan")
    team = app.handoff.create_team("Đội thanh niên xã An Hòa")
    old = app.handoff.create_invite(team.id, created_by="test", ttl=timedelta(seconds=-1))
    app.post(lan.text(f"/join {old.code}"))
    assert app.last(lan.id, 1).text.startswith("Mã mời này đã hết hạn")
    app.post(lan.text("/join KHONGCOMA"))
    assert app.last(lan.id, 2).text.startswith("Mã mời không đúng")
    assert app.handoff.find_volunteer(channel="telegram", user_id=lan.chat_id) is None
    # The bot still serves them as a citizen: no ticket, nothing stuck.
    assert app.handoff.list_tickets() == []


def test_a_change_made_elsewhere_is_shown_on_the_post(app: Desk) -> None:
    citizen, lan = Citizen(1001, "Tư"), Citizen(2001, "Lan")
    app.join(lan)
    post = _ask_for_help(app, citizen)
    ticket = app.posted()
    assert app.desk.refresh_posts(ticket.id) == 0  # waiting: the claim button stays
    volunteer = app.handoff.find_volunteer(channel="telegram", user_id=lan.chat_id)
    assert volunteer is not None
    assert app.handoff.claim(ticket.id, volunteer_id=volunteer.id).ok  # as the console does
    assert app.desk.refresh_posts(ticket.id) == 1
    edit = app.wait_edit(GROUP, post.message_id)
    assert edit["text"].startswith(f"✋ Yêu cầu #{ticket.id}: Lan đã nhận hỗ trợ")


def test_stop_removes_the_citizens_words_and_photos_from_the_volunteers_chat(
    app: Desk,
) -> None:
    citizen, lan = Citizen(1001, "Tư"), Citizen(2001, "Lan")
    app.join(lan)
    app.post(citizen.photo())  # opens the ticket; kept on it, sent to whoever claims it
    post = app.last(GROUP, 1)
    app.post(app.press_in_group(lan, post))
    wait_until(lambda: len(_media(app, lan.id)) == 1, 15, "the kept photo")
    app.post(citizen.voice())
    app.post(citizen.text("Nhà tôi ở xóm Đông"))
    wait_until(lambda: len(_media(app, lan.id)) == 2, 15, "the relayed voice note")
    app.last(lan.id, 5)  # welcome, briefing, photo, voice, words
    app.settle(lan.id)
    store = app.service.store
    before = store.outbox_after(channel="telegram", chat_id=lan.chat_id)
    assert any(b.payload.find("AgAC-large") >= 0 for i in before for b in i.buttons)

    app.post(citizen.text("/stop"))
    assert app.last(lan.id, 6).text.startswith("✅ Yêu cầu")
    app.settle(lan.id)
    forgotten = "[Đã xóa: người dân yêu cầu xóa dữ liệu]"
    for chat in (lan.chat_id, str(GROUP)):
        for item in store.outbox_after(channel="telegram", chat_id=chat):
            payloads = " ".join(b.payload for b in item.buttons)
            for ref in ("AgAC", "AwAC"):
                assert ref not in payloads and ref not in item.text, (chat, item)
            assert "xóm Đông" not in item.text and "[ảnh]" not in item.text, (chat, item)
    lan_rows = [i.text for i in store.outbox_after(channel="telegram", chat_id=lan.chat_id)]
    # The briefing, the kept photo, the voice note and the words; the welcome and the
    # "closed" notice stay as they were.
    assert lan_rows.count(forgotten) == 4
    assert lan_rows[0].startswith("Chào mừng") and lan_rows[-1].startswith("✅ Yêu cầu")
    group_rows = [i.text for i in store.outbox_after(channel="telegram", chat_id=str(GROUP))]
    assert group_rows[0] == forgotten  # the post that quoted the citizen
