"""A citizen on Telegram helped from the console: the console's reply and close reach the
citizen through the outbox and the real python-telegram-bot client, at the fake Bot API,
exactly as a Telegram volunteer's would. Both databases (`store`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bot.conversation import ConversationService
from bot.store import TicketStatus
from tests.fakes.telegram import Citizen, FakeBotApi, Sent, served
from tests.live import LiveServer
from tests.webhook.console.test_console_http import post, sign_in
from tests.webhook.console.world import GROUP, World
from tests.webhook.test_telegram import SECRET, telegram_settings, wait_until
from webhook.app import create_app
from webhook.console.settings import ConsoleSettings

HEADER = "X-Telegram-Bot-Api-Secret-Token"


@pytest.fixture(scope="module")
def served_api() -> Iterator[FakeBotApi]:
    with served() as fake:
        yield fake


@pytest.fixture
def api(served_api: FakeBotApi) -> FakeBotApi:
    served_api.reset()
    return served_api


@pytest.fixture
def server(api: FakeBotApi, service: ConversationService) -> Iterator[LiveServer]:
    app = create_app(service, settings=telegram_settings(api, volunteer_chat_id=str(GROUP)))
    app.state.console_settings = ConsoleSettings(_env_file=None, public_base_url=None)
    with LiveServer(app) as live:
        yield live


def _messages(api: FakeBotApi, chat_id: int, count: int) -> list[Sent]:
    wait_until(lambda: len(api.messages(chat_id)) >= count, 15, f"{count} messages to {chat_id}")
    return api.messages(chat_id)


def _edit(api: FakeBotApi, sent: Sent, count: int) -> dict[str, Any]:
    def made() -> bool:
        return len(api.edited(GROUP, sent.message_id)) >= count

    wait_until(made, 15, f"edit {count} of the group post")
    return api.edited(GROUP, sent.message_id)[count - 1]


def test_reply_and_close_from_the_console_reach_the_citizen_on_telegram(
    api: FakeBotApi, server: LiveServer, world: World
) -> None:
    citizen = Citizen(1001, "Tư")
    with (
        httpx.Client(base_url=server.url, timeout=30) as telegram,
        httpx.Client(base_url=server.url, timeout=30) as console,
    ):
        sent = telegram.post(
            "/telegram/webhook", headers={HEADER: SECRET}, json=citizen.text("gặp người thật")
        )
        assert sent.status_code == 200
        told = len(_messages(api, citizen.id, 1))
        group_post = _messages(api, GROUP, 1)[0]
        assert group_post.text.startswith("🆘")
        tickets = world.handoff.list_tickets(statuses=(TicketStatus.WAITING,))
        assert len(tickets) == 1
        ticket = tickets[0]

        csrf = sign_in(console, "Lan")
        assert f"Yêu cầu #{ticket.id}<" in console.get("/console/queue").text
        assert post(console, f"/console/tickets/{ticket.id}/claim", csrf=csrf).status_code == 303
        joined = _messages(api, citizen.id, told + 1)[told]
        assert joined.text.startswith("Bạn Lan, tình nguyện viên, đã vào trò chuyện")
        # The group's post says who took it, as after a press in Telegram.
        assert "Lan đã nhận hỗ trợ" in _edit(api, group_post, 1)["text"]

        reply = "Bác mở ứng dụng VNeID, bấm Đăng nhập."
        post(console, f"/console/tickets/{ticket.id}/reply", csrf=csrf, text=reply)
        relayed = _messages(api, citizen.id, told + 2)[told + 1]
        assert relayed.text == f"🙋 Lan: {reply}"

        post(console, f"/console/tickets/{ticket.id}/close", csrf=csrf)
        rate = _messages(api, citizen.id, told + 3)[told + 2]
        assert rate.text.startswith("Bạn Lan đã kết thúc hỗ trợ")
        assert rate.labels == ["1", "2", "3", "4", "5"]
        assert "Người đóng: Lan" in _edit(api, group_post, 2)["text"]

        # The citizen rates, as after /done; the rating is kept on the ticket.
        pressed = telegram.post(
            "/telegram/webhook", headers={HEADER: SECRET}, json=citizen.press(rate, "5")
        )
        assert pressed.status_code == 200
        thanks = _messages(api, citizen.id, told + 4)[told + 3]
        assert thanks.text.startswith("Cảm ơn bạn đã chấm điểm")
    closed = world.handoff.get_ticket(ticket.id)
    assert closed is not None and closed.status == TicketStatus.CLOSED and closed.rating == 5
    # Lan's own Telegram chat was told she took it (her messages there relay too).
    assert any(f"#{ticket.id}" in m.text for m in api.messages(int(world.lan.user_id)))
