"""The shipped content (flows/, knowledge/) as citizens need it (issue 7): every route id
of the router's list is a flow or an answer, every procedure of issue 7 is a flow whose
every button and branch some conversation test takes, every answer is sourced and dated,
no step collects a secret, and the scam warning says what to do once it is too late."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot.content import ContentLibrary
from bot.conversation import ConversationService
from bot.flow import engine
from bot.flow.model import Flow, Step
from bot.flow.testing import run_dir
from bot.messages import Incoming
from bot.store import Store

ROOT = Path(__file__).resolve().parents[1]

# Issue 3, item 4: ids that must exist as a flow or a knowledge answer.
ROUTE_IDS = (
    "greeting vneid_install vneid_register_level1 vneid_level2_register vneid_activate "
    "vneid_login_new_device vneid_forgot_password vneid_forgot_passcode vneid_change_phone "
    "vneid_nfc_fail vneid_face_fail vneid_otp_not_received vneid_system_error "
    "vneid_documents residence_notification id_card_update birth_registration "
    "death_registration permanent_residence temporary_residence judicial_record "
    "driving_licence_renewal marriage_status certified_copy online_payment "
    "public_service_account application_status service_centre admin_reform_info "
    "scam_warning digital_skills_class"
).split()
# Issue 7, item 1: the procedures that must be step-by-step flows.
PROCEDURE_FLOWS = (
    "vneid_install vneid_register_level1 vneid_level2_register vneid_activate "
    "vneid_login_new_device vneid_forgot_password vneid_forgot_passcode vneid_change_phone "
    "vneid_nfc_fail vneid_face_fail vneid_otp_not_received vneid_documents "
    "residence_notification birth_registration death_registration permanent_residence "
    "temporary_residence judicial_record driving_licence_renewal marriage_status "
    "certified_copy online_payment public_service_account application_status"
).split()
CHECKED = dt.date(2026, 11, 30)
SECRET = re.compile(r"mật khẩu|passcode|otp|số định danh|số căn cước|cccd|password|id number")


def _flows(library: ContentLibrary) -> dict[str, Flow]:
    flows = library.content().flows
    found = {fid: flows.get(fid) for fid in [*ROUTE_IDS, "menu"]}
    return {fid: flow for fid, flow in found.items() if flow is not None}


def test_every_route_id_is_a_flow_or_an_answer(library: ContentLibrary) -> None:
    content = library.content()
    flows = _flows(library)
    missing = [i for i in ROUTE_IDS if i not in flows and i not in content.knowledge]
    assert missing == []
    assert [i for i in PROCEDURE_FLOWS if i not in flows] == []


def test_every_answer_has_a_dated_source_and_both_languages(library: ContentLibrary) -> None:
    for entry_id, entry in library.content().knowledge.items():
        assert entry.answer.get("vi") and entry.answer.get("en"), entry_id
        assert entry.sources, entry_id
        for source in entry.sources:
            assert source.url.startswith("http"), entry_id
            assert source.checked == CHECKED, (entry_id, source.url)


def test_the_scam_warning_says_what_to_do_after_a_fake_app_or_a_given_code(
    library: ContentLibrary,
) -> None:
    entry = library.content().knowledge["scam_warning"]
    vi, en = entry.answer["vi"], entry.answer["en"]
    # Before: official stores only, never share a code, nothing to update or pay.
    for part in ("App Store", "CH Play", "mã OTP", "passcode", "không phải nộp tiền"):
        assert part in vi
    # After: a code given or money lost; an app installed or a link tapped; report it.
    assert re.search(r"Lỡ đưa mã[^\n]*ngân hàng", vi)
    assert re.search(r"Lỡ cài app lạ[^\n]*(chế độ máy bay|tắt nguồn)[^\n]*ngân hàng", vi)
    assert "Công an xã" in vi
    assert re.search(r"Gave a code[^\n]*bank", en)
    assert re.search(r"Installed a strange app[^\n]*airplane mode[^\n]*bank", en)
    urls = " ".join(s.url for s in entry.sources)
    assert "baolamdong.vn" in urls  # the page that says: call the bank, cut the phone off


def _collects_secret(step: Step) -> bool:
    """True when the step takes a typed value (not yes/no) and talks of a secret or an ID
    number, or saves the value under such a name."""
    if step.ask is None or (step.expect is not None and step.expect.type == "yes_no"):
        return False
    named = step.save is not None and re.search(r"pass|otp|pin|cccd|id_number", step.save)
    return bool(named) or any(SECRET.search(text.lower()) for text in step.ask.values())


def test_no_step_collects_a_secret(library: ContentLibrary) -> None:
    """Typed answers are never passwords, passcodes, OTP codes or ID numbers."""
    flows = _flows(library)
    found = [
        f"{fid}:{sid}"
        for fid, flow in flows.items()
        for sid, step in flow.steps.items()
        if _collects_secret(step)
    ]
    assert found == []
    # The check itself: a yes/no about the OTP is fine, typing the code is not.
    otp_wait = flows["vneid_activate"].step("otp_wait")
    assert otp_wait is not None and otp_wait.ask is not None and not _collects_secret(otp_wait)
    typed = Step.model_validate({"ask": {"vi": "Bạn gõ mã OTP vào đây."}, "next": "x"})
    assert _collects_secret(typed)


def test_every_button_and_branch_is_taken_by_a_conversation_test(
    library: ContentLibrary, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Runs flows/tests/ through the real engine and records which choice of which step,
    and which rule of which branch, each conversation takes."""
    taken: set[tuple[str, str, str]] = set()
    choose: Callable[..., Any] = engine._Run.choose
    perform: Callable[..., Any] = engine._Run.perform

    def recording_choose(run: Any, flow: Flow, step: Step, index: int) -> Any:
        taken.add((flow.id, run.session.current.step_id, f"choice {index}"))
        return choose(run, flow, step, index)

    def recording_perform(run: Any, flow: Flow, step: Step, step_id: str) -> Any:
        for i, rule in enumerate(step.branch or ()):
            if rule.if_ is None or engine._holds(rule.if_, run.session.variables):
                taken.add((flow.id, step_id, f"rule {i}"))
                break
        return perform(run, flow, step, step_id)

    monkeypatch.setattr(engine._Run, "choose", recording_choose)
    monkeypatch.setattr(engine._Run, "perform", recording_perform)
    results = run_dir(ROOT / "flows" / "tests", library.content())
    assert results and all(r.passed for r in results)

    missing = []
    for fid, flow in _flows(library).items():
        for sid, step in flow.steps.items():
            edges = [f"choice {i}" for i in range(len(step.choices or ()))]
            edges += [f"rule {i}" for i in range(len(step.branch or ()))]
            missing += [f"{fid}:{sid}: {e}" for e in edges if (fid, sid, e) not in taken]
    assert missing == []


@pytest.mark.parametrize(
    ("typed", "new_unit"),
    [("xã Quảng Chính", "xã Quảng Hà"), ("thị trấn Cái Rồng", "đặc khu Vân Đồn")],
)
def test_the_commune_names_the_answers_suggest_are_understood(
    store: Store, library: ContentLibrary, typed: str, new_unit: str
) -> None:
    """service_centre and admin_reform_info tell the citizen to type their commune's name,
    with these examples: the bot must then name the new unit and its service centre."""
    knowledge = library.content().knowledge
    assert (
        typed
        in knowledge["service_centre"].answer["vi"] + knowledge["admin_reform_info"].answer["vi"]
    )
    service = ConversationService(store=store, library=library)
    incoming = Incoming(channel="web", chat_id="c1", text=typed, message_id="c1-1")
    reply = service.handle(incoming).outgoing[0].text
    assert f"nay thuộc {new_unit}" in reply
    assert f"Trung tâm Phục vụ hành chính công {new_unit}" in reply


TOLD_TO_TYPE = re.compile(r"(?:[Nn]hắn(?: cho mình)?|[Ss]end(?: me)?): ([^.,\n]+)")


def test_every_phrase_a_text_tells_the_citizen_to_send_is_understood(
    library: ContentLibrary,
) -> None:
    """ "Bạn nhắn cho mình: kích hoạt vneid" must lead somewhere: a flow, an answer, a
    global word or a volunteer, never the "I did not understand" fallback."""
    content = library.content()
    texts = [
        text
        for flow in _flows(library).values()
        for step in flow.steps.values()
        for text in (step.say or {}).values()
    ]
    texts += [text for entry in content.knowledge.values() for text in entry.answer.values()]
    phrases = {m.group(1).strip() for text in texts for m in TOLD_TO_TYPE.finditer(text)}
    assert len(phrases) > 20
    lost = {p: content.router.route(p).kind for p in phrases}
    assert {p: k for p, k in lost.items() if k in ("fallback", "clarify")} == {}
