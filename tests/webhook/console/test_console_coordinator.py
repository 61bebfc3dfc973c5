"""A coordinator at the console, a volunteer on Telegram, a citizen on Telegram: what a
coordinator does to someone else's ticket (close, transfer, close one still waiting)
reaches the citizen, the volunteer and the group post, through the outbox and the real
python-telegram-bot client at the fake Bot API. Also the console's /on, /off and
/visit, and what a console-only account is (not) sent. Both databases (`store`)."""

from __future__ import annotations

import httpx

from bot.conversation import ConversationService
from bot.store import CloseReason, NoteKind, OutboxStatus, Ticket, TicketStatus
from tests.fakes.telegram import Citizen, FakeBotApi, Sent
from tests.live import LiveServer
from tests.webhook.console import test_console_telegram as harness
from tests.webhook.console.test_console_http import post, sign_in
from tests.webhook.console.world import GROUP, World
from tests.webhook.test_telegram import SECRET

# The fixtures of the console's Telegram test: one fake Bot API, the app under a server.
served_api, api, server = harness.served_api, harness.api, harness.server
_messages, _edit = harness._messages, harness._edit
HEADER = "X-Telegram-Bot-Api-Secret-Token"


def _asks(api: FakeBotApi, telegram: httpx.Client, world: World, citizen: Citizen) -> Ticket:
    """`citizen` asks for a person; the ticket, once its group post is known."""
    sent = telegram.post(
        "/telegram/webhook", headers={HEADER: SECRET}, json=citizen.text("gặp người thật")
    )
    assert sent.status_code == 200
    _messages(api, GROUP, 1)
    harness.wait_until(
        lambda: bool(world.handoff.list_tickets()[0].notified), 15, "the post recorded"
    )
    return world.handoff.list_tickets()[0]


def _lan_claims(service: ConversationService, ticket: Ticket) -> None:
    """Lan presses "Nhận hỗ trợ" in Telegram."""
    assert service.desk is not None
    assert service.desk.claim(ticket.id, channel="telegram", user_id="2001").marked


def test_a_coordinator_closes_someone_elses_ticket_and_the_post_says_so(
    api: FakeBotApi, server: LiveServer, world: World, service: ConversationService
) -> None:
    citizen, lan_chat = Citizen(1001, "Tư"), int(world.lan.user_id)
    with (
        httpx.Client(base_url=server.url, timeout=30) as telegram,
        httpx.Client(base_url=server.url, timeout=30) as console,
    ):
        ticket = _asks(api, telegram, world, citizen)
        group_post: Sent = _messages(api, GROUP, 1)[0]
        _lan_claims(service, ticket)
        assert "Lan đã nhận hỗ trợ" in _edit(api, group_post, 1)["text"]
        told = len(_messages(api, citizen.id, 2))  # the wait, Lan joined
        lan_told = len(_messages(api, lan_chat, 1))

        csrf = sign_in(console, "Điều Phối")
        page = console.get(f"/console/tickets/{ticket.id}").text
        assert "Kết thúc hỗ trợ" in page and "Trả về hàng chờ" in page
        done = post(console, f"/console/tickets/{ticket.id}/close", csrf=csrf)
        assert done.headers["location"].endswith("?m=closed")

        rate = _messages(api, citizen.id, told + 1)[told]
        assert rate.text.startswith("Bạn Lan đã kết thúc hỗ trợ")
        assert rate.labels == ["1", "2", "3", "4", "5"]
        # Lan learns it from the bot; the post names who closed it.
        notice = _messages(api, lan_chat, lan_told + 1)[lan_told].text
        assert notice.startswith(f"✅ Yêu cầu #{ticket.id} đã đóng")
        edited = _edit(api, group_post, 2)["text"]
        assert edited.startswith(f"✅ Yêu cầu #{ticket.id} đã đóng lúc")
        assert edited.endswith("Người đóng: Điều Phối.")
        assert not (_edit(api, group_post, 2).get("reply_markup") or {}).get("inline_keyboard")
    closed = world.handoff.get_ticket(ticket.id)
    assert closed is not None and closed.status == TicketStatus.CLOSED
    notes = world.handoff.notes(ticket.id)
    assert [(n.kind, n.volunteer_id) for n in notes] == [(NoteKind.CLOSED, world.coordinator.id)]


def test_a_coordinator_transfers_someone_elses_ticket(
    api: FakeBotApi, server: LiveServer, world: World, service: ConversationService
) -> None:
    citizen, lan_chat = Citizen(1001, "Tư"), int(world.lan.user_id)
    with (
        httpx.Client(base_url=server.url, timeout=30) as telegram,
        httpx.Client(base_url=server.url, timeout=30) as console,
    ):
        ticket = _asks(api, telegram, world, citizen)
        group_post = _messages(api, GROUP, 1)[0]
        _lan_claims(service, ticket)
        _edit(api, group_post, 1)
        told = len(_messages(api, citizen.id, 2))
        lan_told = len(_messages(api, lan_chat, 1))

        csrf = sign_in(console, "Điều Phối")
        moved = post(
            console, f"/console/tickets/{ticket.id}/transfer", csrf=csrf, text="Lan nghỉ ốm"
        )
        assert moved.headers["location"].endswith("?m=transferred")
        assert "tìm bạn khác" in _messages(api, citizen.id, told + 1)[told].text
        notice = _messages(api, lan_chat, lan_told + 1)[lan_told].text
        assert notice.startswith(f"Điều phối viên Điều Phối đã trả yêu cầu #{ticket.id}")
        # The old post points to the new one, which has the claim button again.
        assert _edit(api, group_post, 2)["text"].startswith(
            f"➡️ Yêu cầu #{ticket.id} đã được đăng lại"
        )
        again = _messages(api, GROUP, 2)[1]
        assert again.text.startswith(f"↩️ Yêu cầu #{ticket.id}") and again.labels == ["Nhận hỗ trợ"]
    back = world.handoff.get_ticket(ticket.id)
    assert back is not None and back.status == TicketStatus.WAITING and back.volunteer_id is None
    notes = world.handoff.notes(ticket.id)
    assert [(n.kind, n.text) for n in notes] == [(NoteKind.TRANSFER, "Lan nghỉ ốm")]


def test_a_coordinator_closes_a_ticket_nobody_took(
    api: FakeBotApi, server: LiveServer, world: World
) -> None:
    citizen = Citizen(1001, "Tư")
    with (
        httpx.Client(base_url=server.url, timeout=30) as telegram,
        httpx.Client(base_url=server.url, timeout=30) as lan,
        httpx.Client(base_url=server.url, timeout=30) as console,
    ):
        ticket = _asks(api, telegram, world, citizen)
        group_post = _messages(api, GROUP, 1)[0]
        told = len(_messages(api, citizen.id, 1))

        # A volunteer may only claim a waiting ticket, not close it.
        lan_csrf = sign_in(lan, "Lan")
        assert "Đóng yêu cầu" not in lan.get(f"/console/tickets/{ticket.id}").text
        refused = post(lan, f"/console/tickets/{ticket.id}/close", csrf=lan_csrf)
        assert refused.headers["location"].endswith("?m=not_yours")
        still = world.handoff.get_ticket(ticket.id)
        assert still is not None and still.status == TicketStatus.WAITING

        csrf = sign_in(console, "Điều Phối")
        assert "Đóng yêu cầu" in console.get(f"/console/tickets/{ticket.id}").text
        done = post(console, f"/console/tickets/{ticket.id}/close", csrf=csrf)
        assert done.headers["location"].endswith("?m=closed_waiting")
        assert (
            "Đã đóng yêu cầu. Người dân đã được báo." in console.get(done.headers["location"]).text
        )
        closed_text = _messages(api, citizen.id, told + 1)[told].text
        assert closed_text.startswith("Yêu cầu gặp tình nguyện viên của bạn đã được đóng")
        edited = _edit(api, group_post, 1)
        assert edited["text"].startswith(f"✅ Yêu cầu #{ticket.id} đã đóng lúc")
        assert edited["text"].endswith("Người đóng: Điều Phối.")
        assert not (edited.get("reply_markup") or {}).get("inline_keyboard")
    closed = world.handoff.get_ticket(ticket.id)
    assert closed is not None and closed.status == TicketStatus.CLOSED
    assert closed.close_reason == CloseReason.TRANSFERRED and closed.volunteer_id is None


def test_availability_and_a_visit_from_the_console(
    api: FakeBotApi, server: LiveServer, world: World
) -> None:
    citizen = Citizen(1001, "Tư")
    with (
        httpx.Client(base_url=server.url, timeout=30) as telegram,
        httpx.Client(base_url=server.url, timeout=30) as lan,
    ):
        csrf = sign_in(lan, "Lan")
        assert "Bạn đang trực." in lan.get("/console/queue").text
        off = post(lan, "/console/availability", csrf=csrf, available="0")
        assert off.headers["location"] == "/console/queue?m=off"
        assert "Bạn đang tạm nghỉ." in lan.get("/console/queue").text
        volunteer = world.handoff.get_volunteer(world.lan.id)
        assert volunteer is not None and not volunteer.available
        post(lan, "/console/availability", csrf=csrf, available="1")
        volunteer = world.handoff.get_volunteer(world.lan.id)
        assert volunteer is not None and volunteer.available

        ticket = _asks(api, telegram, world, citizen)
        told = len(_messages(api, citizen.id, 1))
        post(lan, f"/console/tickets/{ticket.id}/claim", csrf=csrf)
        asked = post(lan, f"/console/tickets/{ticket.id}/visit", csrf=csrf, text="Bác ở một mình")
        assert asked.headers["location"].endswith("?m=visit")
        # Lan joined, then the visit.
        assert "tận nơi" in _messages(api, citizen.id, told + 2)[told + 1].text
        request = _messages(api, GROUP, 2)[1].text
        assert request.startswith(f"🏠 Yêu cầu #{ticket.id} cần hỗ trợ tận nơi")
        assert request.endswith("Ghi chú: Bác ở một mình")
    visited = world.handoff.get_ticket(ticket.id)
    assert visited is not None and visited.visit_requested_at is not None


def test_a_console_only_account_is_not_sent_telegram_commands(
    api: FakeBotApi, server: LiveServer, world: World
) -> None:
    citizen, other = Citizen(1001, "Tư"), Citizen(1002, "Hoa")
    with (
        httpx.Client(base_url=server.url, timeout=30) as telegram,
        httpx.Client(base_url=server.url, timeout=30) as console,
    ):
        first = _asks(api, telegram, world, citizen)
        telegram.post(
            "/telegram/webhook", headers={HEADER: SECRET}, json=other.text("gặp người thật")
        )
        harness.wait_until(lambda: len(world.handoff.list_tickets()) == 2, 15, "two tickets")
        second = next(t for t in world.handoff.list_tickets() if t.id != first.id)

        csrf = sign_in(console, "Điều Phối")
        post(console, f"/console/tickets/{first.id}/claim", csrf=csrf)
        telegram.post("/telegram/webhook", headers={HEADER: SECRET}, json=citizen.text("Cháu ơi"))
        # Busy with the first: the refusal says what to do in the console.
        busy = post(console, f"/console/tickets/{second.id}/claim", csrf=csrf)
        page = console.get(busy.headers["location"]).text
        assert f"Bạn đang hỗ trợ yêu cầu #{first.id}" in page
        assert "/done" not in page and "/transfer" not in page
        post(console, f"/console/tickets/{first.id}/close", csrf=csrf)
    rows = world.store.outbox_after(channel="console", chat_id=world.coordinator.user_id)
    # What they were sent: the citizen's words, relayed; no briefing naming /done.
    assert [r.text for r in rows] == [f"👤 Người dân #{first.id}: Cháu ơi"]
    assert all(r.status != OutboxStatus.FAILED for r in rows)


def test_disabling_a_volunteer_hands_their_citizen_back(
    api: FakeBotApi, server: LiveServer, world: World, service: ConversationService
) -> None:
    citizen = Citizen(1001, "Tư")
    with (
        httpx.Client(base_url=server.url, timeout=30) as telegram,
        httpx.Client(base_url=server.url, timeout=30) as console,
    ):
        ticket = _asks(api, telegram, world, citizen)
        group_post = _messages(api, GROUP, 1)[0]
        _lan_claims(service, ticket)
        _edit(api, group_post, 1)
        told = len(_messages(api, citizen.id, 2))

        csrf = sign_in(console, "Điều Phối")
        done = post(console, f"/console/volunteers/{world.lan.id}/disable", csrf=csrf)
        assert done.headers["location"] == "/console/volunteers?m=disabled"
        assert "tìm bạn khác" in _messages(api, citizen.id, told + 1)[told].text
        assert _edit(api, group_post, 2)["text"].startswith(f"➡️ Yêu cầu #{ticket.id}")
        assert _messages(api, GROUP, 2)[1].text.startswith(f"↩️ Yêu cầu #{ticket.id}")
    back = world.handoff.get_ticket(ticket.id)
    assert back is not None and back.status == TicketStatus.WAITING
