"""The built-in web chat over real HTTP: the page, the JSON API, bad input."""

from __future__ import annotations

import uuid

import httpx

from bot.conversation import ConversationService
from tests.live import LiveServer


def _id() -> str:
    return uuid.uuid4().hex


def _send(
    client: httpx.Client, chat: str, after: int = 0, **body: object
) -> list[dict[str, object]]:
    response = client.post(
        "/api/chat", json={"chat_id": chat, "message_id": _id(), "after": after, **body}
    )
    assert response.status_code == 200, response.text
    messages: list[dict[str, object]] = response.json()["messages"]
    return messages


def _last_id(messages: list[dict[str, object]]) -> int:
    value = messages[-1]["id"]
    assert isinstance(value, int)
    return value


def test_page_is_served(live: LiveServer) -> None:
    page = httpx.get(live.url + "/")
    assert page.status_code == 200
    assert 'name="viewport"' in page.text and "/api/chat" in page.text
    assert "Không bao giờ gửi mật khẩu, passcode hay mã OTP" in page.text


def test_a_conversation_with_buttons_and_typed_answers(
    live: LiveServer, service: ConversationService
) -> None:
    chat = _id()
    with httpx.Client(base_url=live.url) as client:
        greeting = _send(client, chat, text="/start")
        assert "Xin chào" in str(greeting[0]["text"])
        menu = greeting[-1]
        labels = [b["label"] for b in menu["buttons"]]  # type: ignore[union-attr]
        assert "Kích hoạt tài khoản VNeID" in labels
        activate = next(b for b in menu["buttons"] if b["label"] == "Kích hoạt tài khoản VNeID")  # type: ignore[union-attr]
        after = _last_id(greeting)
        replies = _send(client, chat, after, payload=activate["payload"])
        assert replies and all(int(m["id"]) > after for m in replies)  # type: ignore[call-overload]
        # Typing the label without diacritics works like pressing the button.
        after = _last_id(replies)
        typed = _send(client, chat, after, text="chua nhan")
        flow = service.library.catalog.get("vneid_activate")
        assert flow is not None
        no_sms = flow.steps["no_sms"].say
        assert no_sms is not None and typed[0]["text"] == no_sms["vi"]
        polled = client.get(f"/api/chat/{chat}", params={"after": 0}).json()["messages"]
        assert len(polled) == len(greeting) + len(replies) + len(typed)


def test_a_retried_send_is_handled_once(live: LiveServer, service: ConversationService) -> None:
    chat, message = _id(), _id()
    body = {"chat_id": chat, "message_id": message, "text": "kich hoat vneid"}
    with httpx.Client(base_url=live.url) as client:
        first = client.post("/api/chat", json=body).json()["messages"]
        second = client.post("/api/chat", json=body).json()["messages"]
    assert first and second == first  # the same replies, not new ones
    inbound = [
        m for m in service.store.transcript(channel="web", chat_id=chat) if m.direction == "in"
    ]
    assert len(inbound) == 1


def test_ten_thousand_characters_get_a_clear_answer(live: LiveServer) -> None:
    with httpx.Client(base_url=live.url) as client:
        replies = _send(client, _id(), text="vneid " * 1700)
    assert "Tin nhắn của bạn rất dài." in str(replies[0]["text"])


def test_bad_requests_are_refused_clearly(live: LiveServer) -> None:
    with httpx.Client(base_url=live.url) as client:
        too_long = client.post("/api/chat", json={"chat_id": _id(), "text": "a" * 20_001})
        bad_chat = client.post("/api/chat", json={"chat_id": "../etc", "text": "hi"})
        not_json = client.post(
            "/api/chat", content=b"{oops", headers={"content-type": "application/json"}
        )
        bad_poll = client.get("/api/chat/x")
    for response in (too_long, bad_chat, not_json, bad_poll):
        assert response.status_code == 422
    assert "text" in too_long.text and "chat_id" in bad_chat.text


def test_health_and_metrics(live: LiveServer) -> None:
    health = httpx.get(live.url + "/healthz")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    metrics = httpx.get(live.url + "/metrics")
    assert "citizen_bot_flows_loaded" in metrics.text
