"""Editorial warnings (bot.flow.editorial) and `citizen-bot validate` printing them:
long messages, fees and deadlines without a source, old sources; each with file:line,
none of them failing the run unless --strict."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from bot.config import get_settings
from bot.errors import Problem
from bot.flow.editorial import DEADLINE, FEE, Rules, editorial_warnings

ROOT = Path(__file__).resolve().parents[2]
TODAY = dt.date(2026, 11, 30)
runner = CliRunner()

LONG = "Dòng chữ rất dài. " * 40  # 720 characters on one line

FLOW = f"""\
id: thu_canh_bao
version: 1
title: {{vi: "Thử cảnh báo"}}
start: long
steps:
  long:
    say: {{vi: "{LONG}"}}
    next: lines
  lines:
    say: {{vi: "1\\n2\\n3\\n4\\n5\\n6\\n7\\n8\\n9\\n10\\n11\\n12\\n13"}}
    next: fee
  fee:
    say: {{vi: "Lệ phí là 50.000 đồng.", en: "The fee is 50,000 dong."}}
    next: deadline
  deadline:
    say: {{vi: "Bạn nộp trong 30 ngày."}}
    next: sourced
  sourced:
    say: {{vi: "Kết quả có sau 03 ngày làm việc."}}
    source: {{url: "https://example.org/a", checked: 2026-01-10}}
    next: fine
  fine:
    say: {{vi: "Sau 15 giờ thì sang ngày hôm sau. Hết."}}
    end: true
"""

SOURCED_FLOW = """\
id: thu_co_nguon
version: 1
title: {vi: "Thử có nguồn"}
start: fee
sources:
  - {url: "https://example.org/b", checked: 2026-11-01}
steps:
  fee:
    say: {vi: "Miễn phí."}
    end: true
"""

ANSWERS = f"""\
entries:
  - id: thu_tra_loi
    title: {{vi: "Thử"}}
    examples: {{vi: ["câu hỏi thử nghiệm cảnh báo"]}}
    answer: {{vi: "{LONG}"}}
    sources:
      - {{url: "https://example.org/c", checked: 2025-01-01}}
      - {{url: "https://example.org/d", checked: 2027-01-01}}
"""


def _lines(problems: list[Problem]) -> list[str]:
    """The problems as printed, with the file's name only."""
    return [str(p).removeprefix(f"{Path(p.file).parent}/") for p in problems]


@pytest.fixture
def content(tmp_path: Path) -> tuple[Path, Path]:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "thu_canh_bao.yaml").write_text(FLOW, encoding="utf-8")
    (flows / "thu_co_nguon.yaml").write_text(SOURCED_FLOW, encoding="utf-8")
    knowledge = tmp_path / "knowledge"
    (knowledge / "answers").mkdir(parents=True)
    (knowledge / "answers" / "thu.yaml").write_text(ANSWERS, encoding="utf-8")
    return flows, knowledge


def test_each_warning_names_its_file_and_line(content: tuple[Path, Path]) -> None:
    found = _lines(editorial_warnings(*content, Rules(today=TODAY)))
    assert found == [
        "thu_canh_bao.yaml:7: warning: step 'long' say (vi) is 720 characters in 1 line,"
        " longer than a phone screen (600 characters, 12 lines): split it in two steps, or"
        " cut it",
        "thu_canh_bao.yaml:10: warning: step 'lines' say (vi) is 29 characters in 13 lines,"
        " longer than a phone screen (600 characters, 12 lines): split it in two steps, or"
        " cut it",
        "thu_canh_bao.yaml:13: warning: step 'fee' say (en) states a fee ('fee is 50,000 dong') but"
        " has no source: add 'source: {url: …, checked: …}' to the step, or 'sources:' to"
        " the flow",
        "thu_canh_bao.yaml:13: warning: step 'fee' say (vi) states a fee"
        " ('Lệ phí là 50.000 đồng') but has no source: add 'source: {url: …, checked: …}'"
        " to the step, or 'sources:' to the flow",
        "thu_canh_bao.yaml:16: warning: step 'deadline' say (vi) states a deadline"
        " ('trong 30 ngày') but has no source: add 'source: {url: …, checked: …}' to the"
        " step, or 'sources:' to the flow",
        "thu_canh_bao.yaml:20: warning: the source https://example.org/a was checked 324"
        " days ago (2026-01-10), more than 180: check it again and update 'checked'",
        "thu.yaml:5: warning: answer 'thu_tra_loi' (vi) is 720 characters in 1 line, longer"
        " than a phone screen (600 characters, 12 lines): split it in two steps, or cut it",
        "thu.yaml:7: warning: the source https://example.org/c was checked 698 days ago"
        " (2025-01-01), more than 180: check it again and update 'checked'",
        "thu.yaml:8: warning: the source https://example.org/d says it was checked on"
        " 2027-01-01, after today (2026-11-30): a typo?",
    ]


def test_the_limits_are_settings(content: tuple[Path, Path]) -> None:
    loose = Rules(max_chars=1000, max_lines=20, max_age_days=1000, today=TODAY)
    found = " ".join(_lines(editorial_warnings(*content, loose)))
    assert "phone screen" not in found and "days ago" not in found
    assert "after today" in found and "states a fee" in found


@pytest.mark.parametrize(
    "text",
    ["Lệ phí 20.000 đồng", "phí 200.000đ", "Miễn phí", "It is free", "Fee: 7,000 dong"],
)
def test_fees_are_seen(text: str) -> None:
    assert FEE.search(text)


@pytest.mark.parametrize(
    "text",
    [
        "trong 30 ngày",
        "trong vòng 7 ngày",
        "03 ngày làm việc",
        "chậm nhất 60 ngày",
        "within 15 days",
        "3 working days",
    ],
)
def test_deadlines_are_seen(text: str) -> None:
    assert DEADLINE.search(text)


@pytest.mark.parametrize(
    "text",
    [
        "Từ ngày 1 tháng 7 năm 2025",
        "sau 15 giờ",
        "phi địa giới hành chính",
        "ngày 15 tháng 12",
        "1. Mở ứng dụng VNeID.",
        "Nộp hồ sơ, nộp phí trực tuyến. Bạn cần việc nào?",
        "Pay a fee",
    ],
)
def test_dates_and_look_alikes_are_not_fees_or_deadlines(text: str) -> None:
    assert not FEE.search(text) and not DEADLINE.search(text)


# ------------------------------------------------------------------ the command


# safety.yaml shows this answer; a content folder without it does not load.
SCAM = """\
entries:
  - id: scam_warning
    title: {vi: "Cảnh báo lừa đảo"}
    examples: {vi: ["có người đòi mã otp"]}
    answer: {vi: "Không đưa mã OTP cho ai."}
    sources:
      - {url: "https://example.org/e", checked: 2026-11-30}
"""


@pytest.fixture
def editor_dirs(content: tuple[Path, Path], tmp_path: Path) -> list[str]:
    """The shipped messages, commands and safety cues, with the fixture answers and flows
    (and nothing of the shipped flows and answers, which other people are editing)."""
    flows, answers = content
    knowledge = tmp_path / "full_knowledge"
    shutil.copytree(ROOT / "knowledge", knowledge, ignore=shutil.ignore_patterns("answers"))
    shutil.copytree(answers / "answers", knowledge / "answers")
    (knowledge / "answers" / "scam.yaml").write_text(SCAM, encoding="utf-8")
    return ["--flows", str(flows), "--knowledge", str(knowledge)]


def test_validate_prints_warnings_and_passes(editor_dirs: list[str]) -> None:
    result = runner.invoke(app, ["validate", *editor_dirs])
    assert result.exit_code == 0, result.output
    assert "thu_canh_bao.yaml:13: warning: step 'fee' say (vi) states a fee" in result.output
    assert "communes.yaml" not in result.output  # the shipped sources are fresh
    assert "thu.yaml:5: warning: answer 'thu_tra_loi' (vi) is 720 characters" in result.output
    assert result.output.splitlines()[-1].startswith("OK: ")


def test_validate_strict_fails_on_warnings(editor_dirs: list[str]) -> None:
    result = runner.invoke(app, ["validate", "--strict", *editor_dirs])
    assert result.exit_code == 1
    assert "(--strict)" in result.output


def test_max_age_from_option_and_environment(
    editor_dirs: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The fixture's oldest source is checked 2025-01-01: older than any sane limit today.
    age = (dt.date.today() - dt.date(2025, 1, 1)).days
    stale = "https://example.org/c was checked"
    assert (
        stale
        not in runner.invoke(app, ["validate", "--max-age", str(age + 1), *editor_dirs]).output
    )
    assert stale in runner.invoke(app, ["validate", "--max-age", str(age - 1), *editor_dirs]).output
    monkeypatch.setenv("CONTENT_SOURCE_MAX_AGE_DAYS", str(age + 1))
    get_settings.cache_clear()
    try:
        assert stale not in runner.invoke(app, ["validate", *editor_dirs]).output
    finally:
        get_settings.cache_clear()


# ------------------------------------------------------------------ handoff reasons

REASONS_FLOW = """\
id: thu_ly_do
version: 1
title: {vi: "Thử"}
start: hoi
steps:
  hoi:
    say: {vi: "Bạn cần gì?"}
    choices:
      - label: {vi: "Gọi người"}
        handoff: ly_do_moi
      - label: {vi: "Tiếp"}
        goto: het
  het:
    say: {vi: "Mình nhờ người giúp."}
    handoff: {reason: asked_human}
"""


def test_a_handoff_reason_without_words_is_named(tmp_path: Path) -> None:
    flows, knowledge = tmp_path / "flows", tmp_path / "knowledge"
    flows.mkdir()
    knowledge.mkdir()
    (flows / "thu_ly_do.yaml").write_text(REASONS_FLOW, encoding="utf-8")
    (knowledge / "handoff.yaml").write_text(
        'reasons:\n  asked_human: {vi: "muốn gặp người", en: "asked"}\n', encoding="utf-8"
    )
    found = _lines(editorial_warnings(flows, knowledge, Rules(today=TODAY)))
    assert found == [
        "thu_ly_do.yaml:10: warning: handoff reason 'ly_do_moi' has no words in"
        " knowledge/handoff.yaml (under reasons:, vi and en): volunteers would see the bare"
        " code"
    ]


def test_every_shipped_handoff_reason_has_words() -> None:
    root = Path(__file__).resolve().parents[2]
    found = editorial_warnings(root / "flows", root / "knowledge", Rules())
    assert [str(p) for p in found if "handoff reason" in p.message] == []
