"""Answers files: loading, and the lint across files, each problem as file:line."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot.errors import Problem
from bot.flow.model import Flow
from bot.knowledge import answer_files, load_knowledge, read_answer_file

ROOT = Path(__file__).resolve().parents[1]

FORGOT = """\
entries:
  - id: forgot_password
    title: {vi: "Quên mật khẩu", en: "Forgot password"}
    examples:
      vi: ["quên mật khẩu vneid", "quen mat khau vneid"]
      en: ["forgot my password"]
    answer: {vi: "Bấm Quên mật khẩu.", en: "Press Forgot password."}
    buttons:
      - {label: {vi: "Kích hoạt"}, flow: activate}
      - {label: {vi: "Cần người giúp"}, human: true}
    sources:
      - {url: "https://vneid.gov.vn", checked: 2026-11-30}
"""

PASSCODE = """\
# Passcode questions.
entries:
  - id: forgot_passcode
    title: {vi: "Quên passcode"}
    examples:
      vi: ["quên passcode", "quên mật khẩu vneid"]
    answer: {vi: "Cài lại ứng dụng."}
    sources:
      - {url: "https://vneid.gov.vn", checked: 2026-11-30}
"""

ACTIVATE = """\
id: activate
version: 1
title: {vi: "Kích hoạt"}
triggers: {vi: ["kích hoạt vneid"]}
start: a
steps:
  a: {say: {vi: "Xong."}, end: true}
"""


def _flows(*texts: str) -> dict[str, Flow]:
    flows = [Flow.model_validate(yaml.safe_load(text)) for text in texts]
    return {flow.id: flow for flow in flows}


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _where(problems: tuple[Problem, ...]) -> list[tuple[str, int, str]]:
    return [(Path(p.file).name, p.line, p.severity) for p in problems]


def test_loads_every_file_below_the_folder(tmp_path: Path) -> None:
    _write(tmp_path, "a.yaml", FORGOT)
    _write(tmp_path, "more/b.yml", PASSCODE.replace("quên mật khẩu vneid", "đổi passcode"))
    _write(tmp_path, "_draft.yaml", "entries: [oops")
    _write(tmp_path, ".hidden/c.yaml", "entries: [oops")
    entries, problems = load_knowledge(tmp_path, flows=_flows(ACTIVATE))
    assert problems == ()
    assert list(entries) == ["forgot_password", "forgot_passcode"]
    assert entries["forgot_password"].buttons[0].flow == "activate"
    assert [p.name for p in answer_files(tmp_path)] == ["a.yaml", "b.yml"]


def test_a_missing_folder_has_no_answers_and_no_problems(tmp_path: Path) -> None:
    assert load_knowledge(tmp_path / "nowhere") == ({}, ())


def test_schema_problems_name_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "a.yaml", FORGOT.replace("    answer:", "    answr:"))
    result = read_answer_file(path)
    assert result.entries == ()
    assert any(p.line == 7 and "answr" in p.message for p in result.problems), result.problems


def test_an_entry_without_sources_is_an_error(tmp_path: Path) -> None:
    text = FORGOT.split("    sources:")[0]
    _write(tmp_path, "a.yaml", text)
    entries, problems = load_knowledge(tmp_path)
    assert entries == {}
    assert _where(problems) == [("a.yaml", 2, "error")]
    assert "sources" in problems[0].message


def test_empty_sources_is_an_error(tmp_path: Path) -> None:
    text = FORGOT.split("    sources:")[0] + "    sources: []\n"
    _write(tmp_path, "a.yaml", text)
    _, problems = load_knowledge(tmp_path)
    assert _where(problems) == [("a.yaml", 11, "error")]


def test_broken_yaml_names_its_line(tmp_path: Path) -> None:
    _write(tmp_path, "a.yaml", FORGOT.replace('"Quên mật khẩu", en', '"Quên mật khẩu, en'))
    entries, problems = load_knowledge(tmp_path)
    assert entries == {}
    assert problems and problems[0].file.endswith("a.yaml") and problems[0].line >= 3


def test_the_same_id_in_two_files_keeps_the_first(tmp_path: Path) -> None:
    _write(tmp_path, "a.yaml", FORGOT)
    _write(tmp_path, "b.yaml", PASSCODE.replace("forgot_passcode", "forgot_password"))
    entries, problems = load_knowledge(tmp_path, flows=_flows(ACTIVATE))
    errors = [p for p in problems if p.severity == "error"]
    assert _where(tuple(errors)) == [("b.yaml", 3, "error")]
    assert "already used at" in errors[0].message and "a.yaml:2" in errors[0].message
    assert entries["forgot_password"].title["vi"] == "Quên mật khẩu"


def test_an_answer_id_that_is_a_flow_id_is_ambiguous(tmp_path: Path) -> None:
    _write(tmp_path, "a.yaml", PASSCODE.replace("forgot_passcode", "activate"))
    entries, problems = load_knowledge(tmp_path, flows=_flows(ACTIVATE))
    assert _where(problems) == [("a.yaml", 3, "error")]
    assert "also the id of a flow" in problems[0].message
    assert entries == {}


def test_a_button_to_a_missing_flow_is_dropped_and_named(tmp_path: Path) -> None:
    _write(tmp_path, "a.yaml", FORGOT.replace("flow: activate", "flow: activat"))
    entries, problems = load_knowledge(tmp_path, flows=_flows(ACTIVATE))
    assert _where(problems) == [("a.yaml", 9, "error")]
    assert "'activat'" in problems[0].message and "did you mean 'activate'" in problems[0].message
    assert [b.human for b in entries["forgot_password"].buttons] == [True]


def test_an_example_shared_by_two_answers_is_a_warning(tmp_path: Path) -> None:
    _write(tmp_path, "a.yaml", FORGOT)
    _write(tmp_path, "b.yaml", PASSCODE)
    entries, problems = load_knowledge(tmp_path, flows=_flows(ACTIVATE))
    assert _where(problems) == [("b.yaml", 6, "warning")]
    assert "also an example of answer 'forgot_password'" in problems[0].message
    assert "a.yaml:5" in problems[0].message
    assert set(entries) == {"forgot_password", "forgot_passcode"}


def test_an_example_that_is_a_flow_trigger_is_a_warning(tmp_path: Path) -> None:
    _write(tmp_path, "a.yaml", PASSCODE.replace("quên passcode", "Kích hoạt VNeID"))
    _, problems = load_knowledge(tmp_path, flows=_flows(ACTIVATE))
    assert _where(problems) == [("a.yaml", 6, "warning")]
    assert "flow 'activate'" in problems[0].message


def test_the_same_example_twice_in_one_answer_is_fine(tmp_path: Path) -> None:
    # With and without diacritics is how editors are asked to write examples.
    _write(tmp_path, "a.yaml", FORGOT)
    assert load_knowledge(tmp_path)[1] == ()


@pytest.mark.parametrize("text", ["entries: []\n", "entries:\n"])
def test_a_file_without_entries_is_an_error(tmp_path: Path, text: str) -> None:
    _write(tmp_path, "a.yaml", text)
    _, problems = load_knowledge(tmp_path)
    assert _where(problems) == [("a.yaml", 1, "error")]


def test_the_shipped_answers_load_clean() -> None:
    from bot.flow.loader import load_flows

    flows = load_flows(ROOT / "flows").flows
    entries, problems = load_knowledge(ROOT / "knowledge" / "answers", flows=flows)
    assert [str(p) for p in problems] == []
    assert "scam_warning" in entries
