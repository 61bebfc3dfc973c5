"""The engine with knowledge answers: shown with their buttons, inside a flow then the step
asked again, "did you mean" buttons, and the scam warning before anything else."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.flow.engine import Content
from bot.flow.events import (
    AnswerAccepted,
    AnswerRejected,
    AnswerShown,
    Asked,
    FlowStarted,
    HandoffOffered,
    HandoffRequested,
    NotUnderstood,
    Said,
    StaleButtonPressed,
)
from bot.knowledge import Entry
from bot.phrases import load_commands, load_phrases
from bot.router import Router
from bot.safety import load_safety
from tests.flow.test_engine import CHILD, DEMO, KNOWLEDGE, NAME, Chat, MemoryFlows, _flow

SOURCE = {"url": "https://vneid.gov.vn", "checked": "2026-11-30"}


def _entry(answer_id: str, examples: list[str], answer: str, **extra: object) -> Entry:
    return Entry.model_validate(
        {
            "id": answer_id,
            "title": {"vi": f"Tiêu đề {answer_id}", "en": f"Title {answer_id}"},
            "examples": {"vi": examples},
            "answer": {"vi": answer, "en": f"In English: {answer_id}."},
            "sources": [SOURCE],
            **extra,
        }
    )


ENTRIES = [
    _entry(
        "forgot_password",
        ["quên mật khẩu vneid", "không nhớ mật khẩu đăng nhập"],
        "Bấm Quên mật khẩu.",
        buttons=[
            {"label": {"vi": "Hướng dẫn thử"}, "flow": "demo"},
            {"label": {"vi": "Cần người giúp"}, "human": True},
            {"label": {"vi": "Trang chính thức"}, "url": "https://vneid.gov.vn"},
        ],
    ),
    _entry("forgot_passcode", ["quên passcode vneid", "không nhớ passcode"], "Cài lại app."),
    _entry("scam_warning", ["cuộc gọi này có phải lừa đảo không"], "Cảnh báo: lừa đảo."),
]


@pytest.fixture
def chat() -> Chat:
    flows = MemoryFlows(_flow(DEMO), _flow(CHILD), _flow(NAME))
    knowledge = {e.id: e for e in ENTRIES}
    router = Router(
        flows=flows.flows(),
        words=load_commands(KNOWLEDGE / "commands.yaml"),
        knowledge=knowledge,
        safety=load_safety(KNOWLEDGE / "safety.yaml"),
    )
    content = Content(
        flows=flows,
        phrases=load_phrases(KNOWLEDGE / "messages.yaml"),
        router=router,
        knowledge=knowledge,
    )
    return Chat(content)


def _said(chat: Chat) -> list[Said]:
    return [e for e in chat.turn.events if isinstance(e, Said)]


def _shown(chat: Chat) -> list[str]:
    return [e.answer_id for e in chat.turn.events if isinstance(e, AnswerShown)]


def test_an_answer_is_shown_with_its_buttons(chat: Chat) -> None:
    chat.send("toi quen mat khau vneid roi")
    assert _shown(chat) == ["forgot_password"]
    said = _said(chat)[-1]
    assert said.text == "Bấm Quên mật khẩu."
    assert [(b.label, b.payload, b.url) for b in said.buttons] == [
        ("Hướng dẫn thử", "f:demo", None),
        ("Cần người giúp", "g:human", None),
        ("Trang chính thức", "u:forgot_password:2", "https://vneid.gov.vn"),
    ]
    # Link buttons send nothing back; the others can be typed as numbers.
    assert chat.session.buttons == ("f:demo", "g:human")
    chat.send("1")
    assert chat.events(FlowStarted)


def test_the_answer_speaks_the_citizens_language(chat: Chat) -> None:
    chat.send("english")
    chat.send("quen mat khau vneid")
    assert _said(chat)[-1].text == "In English: forgot_password."


def test_inside_a_flow_the_answer_is_shown_then_the_step_asked_again(chat: Chat) -> None:
    chat.send("huong dan thu nghiem")
    chat.send("quên mật khẩu vneid")
    assert chat.events(AnswerShown) and not chat.events(AnswerRejected)
    assert chat.texts()[-2:] == ["Bấm Quên mật khẩu.", "Bạn dùng điện thoại gì?"]
    assert isinstance(chat.turn.events[-1], Asked)
    assert chat.step == "phone"
    chat.send("2")  # the step's own buttons are the numbered ones again
    assert chat.step == "year"


def test_a_scam_interrupts_a_typed_question(chat: Chat) -> None:
    chat.send("hoi ten")
    chat.send("có người gọi xưng công an đòi mã OTP")
    assert _shown(chat) == ["scam_warning"]
    assert not chat.events(AnswerAccepted)
    assert chat.texts()[-2:] == ["Cảnh báo: lừa đảo.", "Bạn tên gì?"]
    assert chat.session.variables == {}
    chat.send("Lan")
    assert "Chào Lan." in chat.said()


def test_a_scam_interrupts_a_number_question(chat: Chat) -> None:
    chat.send("huong dan thu nghiem")
    chat.send("1")
    chat.send("họ gửi link bảo cài vneid mới")
    assert chat.events(AnswerShown) and not chat.events(AnswerRejected)
    assert chat.step == "year"


def test_not_a_scam_is_an_answer_to_the_step(chat: Chat) -> None:
    chat.send("hoi ten")
    chat.send("quên passcode")
    assert chat.session.variables == {"name": "quên passcode"}


def test_did_you_mean_offers_answers(chat: Chat) -> None:
    chat.send("quên vneid")
    said = _said(chat)[-1]
    assert "Có phải ý bạn là" in said.text
    payloads = [b.payload for b in said.buttons]
    assert set(payloads[:-1]) == {"a:forgot_password", "a:forgot_passcode"}
    assert payloads[-1] == "g:human"
    chat.press("Tiêu đề forgot_passcode")
    assert _said(chat)[-1].text == "Cài lại app."


def test_an_old_answer_button_is_stale(chat: Chat) -> None:
    chat.send(payload="a:gone")
    assert chat.events(StaleButtonPressed) == [StaleButtonPressed("a:gone")]


def test_an_answer_resets_the_misses(chat: Chat) -> None:
    chat.send("thời tiết hôm nay thế nào")
    assert chat.events(NotUnderstood) == [NotUnderstood(1)]
    chat.send("quên mật khẩu vneid")
    assert chat.session.misses == 0
    chat.send("đội bóng nào vô địch")
    assert chat.events(NotUnderstood) == [NotUnderstood(1)]
    assert not chat.events(HandoffRequested)


def test_outside_a_flow_a_topic_beats_it_does_not_work(chat: Chat) -> None:
    chat.send("quên mật khẩu vneid, làm mãi không được")
    assert chat.events(AnswerShown) and not chat.events(HandoffOffered)


def test_inside_a_flow_it_does_not_work_offers_a_volunteer(chat: Chat) -> None:
    chat.send("huong dan thu nghiem")
    chat.send("không được")
    assert chat.events(HandoffOffered)


def test_content_without_knowledge_still_works() -> None:
    flows = MemoryFlows(_flow(DEMO))
    content = Content(
        flows=flows,
        phrases=load_phrases(Path(KNOWLEDGE) / "messages.yaml"),
        router=Router(flows=flows.flows(), words=load_commands(KNOWLEDGE / "commands.yaml")),
    )
    chat = Chat(content)
    chat.send("có người đòi mã otp")
    assert not chat.events(AnswerShown)
    assert chat.events(NotUnderstood)
