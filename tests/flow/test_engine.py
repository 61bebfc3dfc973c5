"""The engine, as plain data in and events out: no database, no network."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from bot.flow.engine import Content, Turn, resume
from bot.flow.events import (
    AnswerRejected,
    Asked,
    Event,
    FlowEnded,
    FlowRestarted,
    FlowStarted,
    ForgetRequested,
    HandoffOffered,
    HandoffRequested,
    LanguageChanged,
    MediaReceived,
    NotUnderstood,
    Said,
    StaleButtonPressed,
)
from bot.flow.model import Flow
from bot.flow.session import Session
from bot.messages import Incoming, Media, MediaKind
from bot.phrases import load_commands, load_phrases
from bot.router import Router

KNOWLEDGE = Path(__file__).resolve().parents[2] / "knowledge"

DEMO = """
id: demo
version: 1
title: {vi: "Thử nghiệm", en: "Demo"}
triggers: {vi: ["hướng dẫn thử nghiệm"], en: ["demo guide"]}
start: phone
steps:
  phone:
    say: {vi: "Bạn dùng điện thoại gì?", en: "Which phone do you use?"}
    save: phone_type
    choices:
      - {label: {vi: "iPhone"}, goto: year, value: iphone}
      - {label: {vi: "Điện thoại Android", en: "Android phone"}, goto: year, value: android}
  year:
    ask: {vi: "Bạn sinh năm nào?", en: "What year were you born?"}
    expect: {type: number, min: 1900, max: 2026}
    save: birth_year
    invalid: {vi: "Bạn nhập năm sinh bằng số, ví dụ 1965.", en: "Type the year, like 1965."}
    next: check
  check:
    branch:
      - if: {var: birth_year, below: 1960}
        goto: elder
      - goto: sub
  elder:
    say: {vi: "Bạn sinh năm {birth_year}, dùng {phone_type}."}
    next: sub
  sub:
    flow: child
    next: confirm
  confirm:
    ask: {vi: "Bạn làm được chưa?", en: "Did it work?"}
    expect: {type: yes_no}
    save: worked
    next: result
  result:
    branch:
      - if: {var: worked, equals: true}
        goto: done
      - goto: help
  help:
    say: {vi: "Không sao."}
    handoff: {reason: demo_stuck}
  done:
    say: {vi: "Xong rồi. Chúc bạn thành công.", en: "Done."}
    end: true
"""

CHILD = """
id: child
version: 1
title: {vi: "Mở ứng dụng"}
start: intro
steps:
  intro:
    say: {vi: "Đây là hướng dẫn mở ứng dụng."}
    next: opened
  opened:
    say: {vi: "Bạn đã mở ứng dụng chưa?"}
    choices:
      - {label: {vi: "Rồi"}, goto: fine}
      - {label: {vi: "Chưa"}, goto: intro}
  fine:
    say: {vi: "Tốt lắm."}
    end: true
"""


# A flow that asks for free text.
NAME = """
id: name
version: 1
title: {vi: "Tên"}
triggers: {vi: ["hỏi tên"]}
start: ask
steps:
  ask:
    ask: {vi: "Bạn tên gì?"}
    save: name
    next: hi
  hi:
    say: {vi: "Chào {name}."}
    end: true
"""


def _flow(text: str, rev: str = "r1") -> Flow:
    return Flow.model_validate(yaml.safe_load(text)).model_copy(update={"rev": rev})


class MemoryFlows:
    """A FlowSource over a dict, with every revision ever added."""

    def __init__(self, *flows: Flow) -> None:
        self.current: dict[str, Flow] = {}
        self.revisions: dict[tuple[str, str], Flow] = {}
        for flow in flows:
            self.put(flow)

    def put(self, flow: Flow) -> None:
        self.current[flow.id] = flow
        self.revisions[(flow.id, flow.rev)] = flow

    def get(self, flow_id: str) -> Flow | None:
        return self.current.get(flow_id)

    def revision(self, flow_id: str, rev: str) -> Flow | None:
        return self.revisions.get((flow_id, rev))

    def flows(self) -> Mapping[str, Flow]:
        return self.current


def _content(flows: MemoryFlows) -> Content:
    words = load_commands(KNOWLEDGE / "commands.yaml")
    return Content(
        flows=flows,
        phrases=load_phrases(KNOWLEDGE / "messages.yaml"),
        router=Router(flows=flows.flows(), words=words),
    )


class Chat:
    """Drives the engine like a channel would, checking the session stays JSON-safe."""

    def __init__(self, content: Content, session: Session | None = None) -> None:
        self.content = content
        self.session = session or Session()
        self.turn = Turn(self.session, ())

    def send(
        self, text: str = "", *, payload: str | None = None, media: Media | None = None
    ) -> Turn:
        incoming = Incoming(channel="test", chat_id="1", text=text, payload=payload, media=media)
        self.turn = resume(self.content, self.session, incoming)
        # What the store will keep must survive JSON and come back equal.
        stored = json.loads(json.dumps(self.turn.session.to_json()))
        assert Session.from_json(stored) == self.turn.session
        self.session = self.turn.session
        return self.turn

    def press(self, label: str) -> Turn:
        for event in reversed(self.turn.events):
            if isinstance(event, Said | Asked):
                for button in event.buttons:
                    if button.label == label:
                        return self.send(payload=button.payload)
        raise AssertionError(f"no button {label!r} in {self.texts()}")

    def texts(self) -> list[str]:
        return [e.text for e in self.turn.events if isinstance(e, Said | Asked)]

    def said(self) -> str:
        return "\n".join(self.texts())

    def events(self, kind: type[Event]) -> list[Event]:
        return [e for e in self.turn.events if isinstance(e, kind)]

    def buttons(self) -> list[str]:
        for event in reversed(self.turn.events):
            if isinstance(event, Said | Asked) and event.buttons:
                return [b.label for b in event.buttons]
        return []

    @property
    def step(self) -> str | None:
        frame = self.session.current
        return frame.step_id if frame else None


@pytest.fixture
def flows() -> MemoryFlows:
    return MemoryFlows(_flow(DEMO), _flow(CHILD))


@pytest.fixture
def chat(flows: MemoryFlows) -> Chat:
    return Chat(_content(flows))


def test_trigger_without_diacritics_starts_the_flow(chat: Chat) -> None:
    chat.send("huong dan thu nghiem")
    assert chat.events(FlowStarted) == [FlowStarted("demo", 1, "r1")]
    assert "Bạn dùng điện thoại gì?" in chat.said()
    assert chat.buttons() == ["iPhone", "Điện thoại Android", "Cần người giúp"]


@pytest.mark.parametrize(
    "answer", ["2", "số 2", "android", "dien thoai android", "Điện thoại Android"]
)
def test_choice_by_number_or_label(chat: Chat, answer: str) -> None:
    chat.send("huong dan thu nghiem")
    chat.send(answer)
    assert chat.step == "year"
    assert chat.session.variables["phone_type"] == "android"


def test_full_run_branches_enters_a_flow_and_comes_back(chat: Chat) -> None:
    chat.send("huong dan thu nghiem")
    chat.press("iPhone")
    chat.send("năm 1950")
    said = chat.said()
    assert "Bạn sinh năm 1950, dùng iphone." in said
    assert "Đây là hướng dẫn mở ứng dụng." in said
    assert chat.step == "opened"
    assert [f.flow_id for f in chat.session.stack] == ["demo", "child"]
    chat.send("roi")
    assert chat.events(FlowEnded) == [FlowEnded("child", completed=True)]
    assert "Bạn làm được chưa?" in chat.said()
    chat.send("có rồi")
    assert "Xong rồi." in chat.said()
    assert FlowEnded("demo", completed=True) in chat.turn.events
    assert chat.session.stack == ()


def test_young_citizen_skips_the_elder_step(chat: Chat) -> None:
    chat.send("huong dan thu nghiem")
    chat.send("1")
    chat.send("1990")
    assert "Bạn sinh năm" not in chat.said()
    assert chat.step == "opened"


def test_no_leads_to_handoff_with_reason(chat: Chat) -> None:
    chat.send("huong dan thu nghiem")
    chat.send("1")
    chat.send("1990")
    chat.send("rồi")
    chat.send("ko")
    assert chat.events(HandoffRequested) == [HandoffRequested("demo_stuck", "demo", "help")]
    assert "Không sao." in chat.said()


def test_invalid_answer_twice_calls_a_volunteer_and_keeps_the_step(chat: Chat) -> None:
    chat.send("huong dan thu nghiem")
    chat.send("1")
    chat.send("khong nho")
    assert chat.events(AnswerRejected) == [AnswerRejected("demo", "year", 1)]
    assert "Bạn nhập năm sinh bằng số, ví dụ 1965." in chat.said()
    assert not chat.events(HandoffRequested)
    chat.send("1800")  # a number, but out of bounds
    assert chat.events(HandoffRequested) == [HandoffRequested("step_failed", "demo", "year")]
    assert "Có vẻ bước này khó. Mình nhờ một bạn tình nguyện viên giúp bạn." in chat.said()
    assert chat.step == "year"  # the question is asked again; the citizen may go on
    chat.send("1850")  # a third miss calls nobody else
    assert not chat.events(HandoffRequested)
    chat.send("1970")
    assert chat.step == "opened"


def test_saying_it_does_not_work_offers_a_volunteer(chat: Chat) -> None:
    chat.send("huong dan thu nghiem")
    chat.send("ko dc")
    assert chat.events(HandoffOffered) == [HandoffOffered("stuck", "demo", "phone")]
    assert chat.step == "phone"


@pytest.mark.parametrize("word", ["quay lại", "quay lai", "QUAY LAI", "back", "/back"])
def test_back_goes_one_waiting_step_back(chat: Chat, word: str) -> None:
    chat.send("huong dan thu nghiem")
    chat.send("1")
    assert chat.step == "year"
    chat.send(word)
    assert chat.step == "phone"
    assert "Bạn dùng điện thoại gì?" in chat.said()
    chat.send(word)
    assert "Bạn đang ở bước đầu tiên rồi." in chat.said()


@pytest.mark.parametrize("word", ["bắt đầu lại", "bat dau lai", "restart"])
def test_restart(chat: Chat, word: str) -> None:
    chat.send("huong dan thu nghiem")
    chat.send("1")
    chat.send(word)
    assert chat.step == "phone"
    assert FlowEnded("demo", completed=False, reason="restarted") in chat.turn.events


@pytest.mark.parametrize("word", ["gặp người thật", "gap nguoi that", "talk to a person", "/human"])
def test_human_anywhere(chat: Chat, word: str) -> None:
    chat.send("huong dan thu nghiem")
    chat.send(word)
    assert chat.events(HandoffRequested) == [HandoffRequested("asked_human", "demo", "phone")]


def test_pressing_the_added_volunteer_button(chat: Chat) -> None:
    chat.send("huong dan thu nghiem")
    chat.press("Cần người giúp")
    assert chat.events(HandoffRequested)
    chat.send("huong dan thu nghiem")
    chat.send("3")  # the volunteer button's number
    assert chat.events(HandoffRequested)


@pytest.mark.parametrize("word", ["dừng", "dung", "stop", "thoát"])
def test_stop_leaves_the_flow(chat: Chat, word: str) -> None:
    chat.send("huong dan thu nghiem")
    chat.send(word)
    assert chat.session.stack == ()
    assert FlowEnded("demo", completed=False, reason="stopped") in chat.turn.events


def test_help_explains_and_reasks(chat: Chat) -> None:
    chat.send("huong dan thu nghiem")
    chat.send("giúp")
    assert "quay lại" in chat.said()
    assert chat.texts()[-1] == "Bạn dùng điện thoại gì?"


def test_menu_without_a_menu_flow_lists_nothing_but_a_volunteer(chat: Chat) -> None:
    chat.send("menu")
    assert chat.buttons() == ["Cần người giúp"]


def test_language_switch_and_fallback_to_vietnamese(chat: Chat) -> None:
    chat.send("huong dan thu nghiem")
    chat.send("english")
    assert chat.events(LanguageChanged) == [LanguageChanged("en")]
    assert chat.texts()[-1] == "Which phone do you use?"
    assert chat.buttons() == ["iPhone", "Android phone", "Talk to a person"]
    chat.send("android phone")
    chat.send("1990")
    # The child flow has no English text: Vietnamese is used.
    assert "Đây là hướng dẫn mở ứng dụng." in chat.said()


@pytest.mark.parametrize("text", ["", "   ", "😀😀", "!!!"])
def test_empty_or_emoji_only(chat: Chat, text: str) -> None:
    chat.send("huong dan thu nghiem")
    chat.send(text)
    assert "Mình chưa nhận được chữ nào." in chat.said()
    assert chat.step == "phone"


def test_ten_thousand_characters(chat: Chat) -> None:
    chat.send("huong dan thu nghiem")
    chat.send("1")
    chat.send("a" * 10_000)
    assert "Tin nhắn của bạn rất dài." in chat.said()
    assert chat.events(AnswerRejected)


def test_number_where_text_is_expected_is_accepted_as_text() -> None:
    chat = Chat(_content(MemoryFlows(_flow(NAME))))
    chat.send("hoi ten")
    chat.send("12345")
    assert "Chào 12345." in chat.said()


def test_stale_button(chat: Chat) -> None:
    chat.send("huong dan thu nghiem")
    old = chat.turn
    chat.send("1")
    stale = next(e for e in old.events if isinstance(e, Asked)).buttons[0].payload
    chat.send(payload=stale)
    assert chat.events(StaleButtonPressed) == [StaleButtonPressed(stale)]
    assert "Nút này đã cũ." in chat.said()
    assert chat.step == "year"
    chat.send(payload="nonsense")
    assert chat.events(StaleButtonPressed)


def test_voice_note_is_acknowledged_and_a_volunteer_called(chat: Chat) -> None:
    chat.send(media=Media(MediaKind.VOICE, "file-1"))
    assert chat.events(MediaReceived) == [MediaReceived("voice")]
    assert chat.events(HandoffRequested) == [HandoffRequested("media")]
    assert "tin nhắn thoại" in chat.said()


def test_two_misses_outside_a_flow_hand_off(chat: Chat) -> None:
    chat.send("thời tiết hôm nay thế nào")
    assert chat.events(NotUnderstood) == [NotUnderstood(1)]
    assert not chat.events(HandoffRequested)
    chat.send("đội tuyển bóng đá thắng không")
    assert chat.events(HandoffRequested) == [HandoffRequested("not_understood")]


def test_edited_flow_keeps_the_revision_it_started_on(flows: MemoryFlows) -> None:
    chat = Chat(_content(flows))
    chat.send("huong dan thu nghiem")
    edited = DEMO.replace("Bạn sinh năm nào?", "Năm sinh của bạn?")
    flows.put(_flow(edited, rev="r2"))
    chat.send("1")
    assert "Bạn sinh năm nào?" in chat.said()  # still on r1
    chat.send("/restart")
    assert chat.session.current is not None and chat.session.current.rev == "r2"


def test_edited_flow_whose_step_vanished_restarts_politely(flows: MemoryFlows) -> None:
    chat = Chat(_content(flows))
    chat.send("huong dan thu nghiem")
    chat.send("1")
    assert chat.step == "year"
    flows.revisions.clear()  # as after a restart of the server: r1 is not known any more
    edited = DEMO.replace("  year:", "  birth:").replace("goto: year", "goto: birth")
    flows.put(_flow(edited, rev="r2"))
    chat.send("1970")
    assert chat.events(FlowRestarted) == [FlowRestarted("demo", "r1", "r2", "year")]
    assert "hướng dẫn này vừa được cập nhật" in chat.said()
    assert chat.step == "phone"


def test_edited_flow_with_the_same_step_continues_on_the_new_revision(flows: MemoryFlows) -> None:
    chat = Chat(_content(flows))
    chat.send("huong dan thu nghiem")
    chat.send("1")
    flows.revisions.clear()
    flows.put(_flow(DEMO.replace("Tốt lắm.", "Rất tốt."), rev="r2"))
    chat.send("1970")
    assert not chat.events(FlowRestarted)
    assert chat.session.stack[0].rev == "r2"


def test_removed_flow_says_so(flows: MemoryFlows) -> None:
    chat = Chat(_content(flows))
    chat.send("huong dan thu nghiem")
    flows.current.pop("demo")
    flows.revisions.clear()
    chat.send("1")
    assert "hướng dẫn này không còn nữa" in chat.said()
    assert chat.session.stack == ()


def test_forget_clears_the_session(chat: Chat) -> None:
    chat.send("huong dan thu nghiem")
    chat.send("1")
    chat.send("xóa dữ liệu của tôi")
    assert chat.events(ForgetRequested)
    assert chat.session.vars == () and chat.session.stack == ()


def test_a_content_loop_does_not_hang() -> None:
    loop = _flow(
        """
id: loop
version: 1
title: {vi: "Vòng"}
triggers: {vi: ["vòng lặp"]}
start: a
steps:
  a: {say: {vi: "A"}, next: b}
  b: {say: {vi: "B"}, next: a}
"""
    )
    chat = Chat(_content(MemoryFlows(loop)))
    chat.send("vong lap")
    assert chat.session.stack == ()
    assert "hướng dẫn này không còn nữa" in chat.said()


def test_session_from_an_older_version_of_the_bot_still_loads() -> None:
    session = Session.from_json({"lang": "en", "stack": [], "vars": {"a": 1}})
    assert session.lang == "en" and session.variables == {"a": 1}
    assert replace(session, misses=1).to_json()["misses"] == 1
