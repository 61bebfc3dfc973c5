"""The content library with knowledge/answers and knowledge/safety.yaml: loaded, linted,
reloaded on edit, and a broken edit keeps the last good version."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from bot.content import ContentLibrary

ROOT = Path(__file__).resolve().parents[1]

EXTRA = """\
entries:
  - id: extra_answer
    title: {vi: "Câu hỏi thêm"}
    examples:
      vi: ["câu hỏi về trồng lúa nước"]
    answer: {vi: "Phiên bản một."}
    sources:
      - {url: "https://vneid.gov.vn", checked: 2026-11-30}
"""


@pytest.fixture
def library(tmp_path: Path) -> ContentLibrary:
    shutil.copytree(ROOT / "flows", tmp_path / "flows")
    shutil.copytree(ROOT / "knowledge", tmp_path / "knowledge")
    (tmp_path / "knowledge" / "answers" / "extra.yaml").write_text(EXTRA, encoding="utf-8")
    return ContentLibrary(flows_dir=tmp_path / "flows", knowledge_dir=tmp_path / "knowledge")


def _touch_later(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))


def _answer(library: ContentLibrary) -> str:
    return library.content().knowledge["extra_answer"].answer["vi"]


def test_the_shipped_knowledge_is_loaded_and_routed(library: ContentLibrary) -> None:
    assert library.problems == ()
    content = library.content()
    assert "scam_warning" in content.knowledge and "extra_answer" in content.knowledge
    assert content.router.route("câu hỏi về trồng lúa nước").id == "extra_answer"
    assert content.router.route("Có người đòi passcode").id == "scam_warning"


def test_an_edited_answer_is_picked_up(library: ContentLibrary) -> None:
    path = library.knowledge_dir / "answers" / "extra.yaml"
    _touch_later(path, EXTRA.replace("Phiên bản một.", "Phiên bản hai."))
    assert library.reload() == ()
    assert _answer(library) == "Phiên bản hai."


def test_a_broken_answers_file_keeps_its_last_good_entries(
    library: ContentLibrary, caplog: pytest.LogCaptureFixture
) -> None:
    path = library.knowledge_dir / "answers" / "extra.yaml"
    _touch_later(path, EXTRA.replace("    answer:", "    answr:"))
    problems = library.reload()
    assert [(Path(p.file).name, p.line) for p in problems] == [("extra.yaml", 2), ("extra.yaml", 6)]
    assert _answer(library) == "Phiên bản một."
    assert "extra.yaml:6" in caplog.text and "keeping the last good version" in caplog.text
    _touch_later(path, EXTRA.replace("Phiên bản một.", "Phiên bản ba."))
    assert library.reload() == ()
    assert _answer(library) == "Phiên bản ba."


def test_a_deleted_answers_file_takes_its_entries(library: ContentLibrary) -> None:
    (library.knowledge_dir / "answers" / "extra.yaml").unlink()
    assert library.reload() == ()
    assert "extra_answer" not in library.content().knowledge


def test_lint_problems_are_reported(library: ContentLibrary) -> None:
    path = library.knowledge_dir / "answers" / "extra.yaml"
    _touch_later(path, EXTRA.replace("id: extra_answer", "id: vneid_install"))
    problems = library.reload()
    assert [(Path(p.file).name, p.line) for p in problems] == [("extra.yaml", 2)]
    assert "also the id of a flow" in problems[0].message
    assert library.content().knowledge.get("vneid_install") is None


def test_a_broken_safety_file_keeps_the_last_good_cues(library: ContentLibrary) -> None:
    path = library.knowledge_dir / "safety.yaml"
    good = path.read_text(encoding="utf-8")
    _touch_later(path, good.replace("  rules:\n", "  rulez:\n", 1))
    problems = library.reload()
    assert problems and all(Path(p.file).name == "safety.yaml" for p in problems)
    assert library.content().router.route("Có người đòi passcode").id == "scam_warning"


def test_a_scam_answer_that_is_missing_is_named(library: ContentLibrary) -> None:
    path = library.knowledge_dir / "safety.yaml"
    good = path.read_text(encoding="utf-8")
    _touch_later(path, good.replace("answer: scam_warning", "answer: scam_warn"))
    problems = library.reload()
    line = good.splitlines().index("  answer: scam_warning") + 1
    assert [(Path(p.file).name, p.line) for p in problems] == [("safety.yaml", line)]
    assert "'scam_warn'" in problems[0].message
