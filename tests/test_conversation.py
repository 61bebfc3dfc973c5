"""The conversation service on each store: exactly once, persisted, survives edits and restarts."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

import bot.conversation
from bot.content import ContentLibrary
from bot.conversation import ConversationService
from bot.flow.events import FlowRestarted, HandoffRequested
from bot.messages import Incoming
from bot.store import Store

ROOT = Path(__file__).resolve().parents[1]

FLOW = """
id: demo
version: 1
title: {vi: "Thử"}
triggers: {vi: ["bắt đầu thử"]}
start: first
steps:
  first:
    say: {vi: "Bước một. Bạn xong chưa?"}
    choices:
      - {label: {vi: "Xong"}, goto: second}
  second:
    say: {vi: "Bước hai. Bạn xong chưa?"}
    choices:
      - {label: {vi: "Xong"}, goto: last}
      - {label: {vi: "Lỗi"}, handoff: demo_error}
  last:
    say: {vi: "Hết."}
    end: true
"""


@pytest.fixture
def content_dirs(tmp_path: Path) -> tuple[Path, Path]:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "demo.yaml").write_text(FLOW, encoding="utf-8")
    knowledge = tmp_path / "knowledge"
    shutil.copytree(ROOT / "knowledge", knowledge)
    return flows, knowledge


def _service(store: Store, dirs: tuple[Path, Path]) -> ConversationService:
    library = ContentLibrary(flows_dir=dirs[0], knowledge_dir=dirs[1])
    return ConversationService(store=store, library=library)


def _msg(text: str, n: int, chat: str = "c1") -> Incoming:
    return Incoming(channel="web", chat_id=chat, text=text, message_id=f"m{n}")


def test_a_message_is_handled_once(store: Store, content_dirs: tuple[Path, Path]) -> None:
    service = _service(store, content_dirs)
    first = service.handle(_msg("bat dau thu", 1))
    assert not first.duplicate and first.outgoing
    again = service.handle(_msg("bat dau thu", 1))
    assert again.duplicate and not again.outgoing
    outbox = store.outbox_after(channel="web", chat_id="c1")
    assert [o.id for o in outbox] == list(first.outbox_ids)


def test_the_conversation_survives_a_restart(store: Store, content_dirs: tuple[Path, Path]) -> None:
    _service(store, content_dirs).handle(_msg("bat dau thu", 1))
    restarted = _service(store, content_dirs)  # a new process: nothing in memory
    handled = restarted.handle(_msg("xong", 2))
    assert handled.outgoing[0].text == "Bước hai. Bạn xong chưa?"


def test_an_edit_keeps_running_conversations_on_their_revision_across_restarts(
    store: Store, content_dirs: tuple[Path, Path]
) -> None:
    _service(store, content_dirs).handle(_msg("bat dau thu", 1))
    edited = FLOW.replace("Bước hai.", "Bước 2 mới.")
    (content_dirs[0] / "demo.yaml").write_text(edited, encoding="utf-8")
    restarted = _service(store, content_dirs)  # knows only the new revision on disk
    assert restarted.handle(_msg("xong", 2)).outgoing[0].text == "Bước hai. Bạn xong chưa?"
    # A new conversation gets the new text.
    restarted.handle(_msg("bat dau thu", 3, chat="c2"))
    assert restarted.handle(_msg("xong", 4, chat="c2")).outgoing[0].text.startswith("Bước 2 mới.")


def test_a_vanished_step_restarts_politely_after_a_restart(
    store: Store, content_dirs: tuple[Path, Path]
) -> None:
    service = _service(store, content_dirs)
    service.handle(_msg("bat dau thu", 1))
    service.handle(_msg("xong", 2))
    # The snapshot of the old revision is gone too (as on a fresh database copy).
    edited = FLOW.replace("  second:", "  middle:").replace("goto: second", "goto: middle")
    (content_dirs[0] / "demo.yaml").write_text(edited, encoding="utf-8")
    restarted = _service(store, content_dirs)
    with store.conversation(channel="web", chat_id="c1") as tx:
        session = tx.load_session()
        frame = session.current
        assert frame is not None
        # Point the session at a revision nobody knows any more.
        tx.save_session(replace(session, stack=(replace(frame, rev="gone"),)))
    handled = restarted.handle(_msg("xong", 3))
    assert any(isinstance(e, FlowRestarted) for e in handled.events)
    assert "vừa được cập nhật" in handled.outgoing[0].text
    assert handled.outgoing[-1].text == "Bước một. Bạn xong chưa?"


def test_personal_data_is_masked_in_the_transcript(
    store: Store, content_dirs: tuple[Path, Path]
) -> None:
    service = _service(store, content_dirs)
    service.handle(_msg("số căn cước của tôi là 001234567890, sđt 0912345678", 1))
    stored = " ".join(m.text for m in store.transcript(channel="web", chat_id="c1"))
    assert "001234567890" not in stored and "0912345678" not in stored


def test_forget_deletes_the_transcript(store: Store, content_dirs: tuple[Path, Path]) -> None:
    service = _service(store, content_dirs)
    service.handle(_msg("bat dau thu", 1))
    handled = service.handle(_msg("xóa dữ liệu của tôi", 2))
    assert "xóa" in handled.outgoing[0].text
    kept = store.transcript(channel="web", chat_id="c1")
    # Only the confirmation, sent after the deletion, remains.
    assert [(m.direction, m.text) for m in kept] == [("out", handled.outgoing[0].text)]


def test_handoff_is_recorded_for_coordinators(
    store: Store, content_dirs: tuple[Path, Path]
) -> None:
    service = _service(store, content_dirs)
    service.handle(_msg("bat dau thu", 1))
    service.handle(_msg("xong", 2))
    handled = service.handle(_msg("lỗi", 3))
    assert HandoffRequested("demo_error", "demo", "second") in handled.events
    assert store.stats()["handoffs_requested"] == 1


def test_an_engine_failure_still_answers_and_keeps_the_message(
    store: Store, content_dirs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    service = _service(store, content_dirs)

    def broken(*_: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(bot.conversation, "resume", broken)
    handled = service.handle(_msg("bat dau thu", 1))
    assert "trục trặc" in handled.outgoing[0].text
    assert [b.label for b in handled.outgoing[0].buttons] == ["Cần người giúp"]
    inbound = [m for m in store.transcript(channel="web", chat_id="c1") if m.direction == "in"]
    assert len(inbound) == 1
