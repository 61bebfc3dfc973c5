"""Hot reload: edits are picked up; a broken edit keeps the last good version."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from bot import content as content_module
from bot.communes import Communes, load_communes
from bot.content import ContentLibrary
from bot.errors import FlowLoadError

ROOT = Path(__file__).resolve().parents[1]

FLOW = """\
id: demo
version: 1
title: {vi: "Thử"}
triggers: {vi: ["bắt đầu thử"]}
start: only
steps:
  only:
    say: {vi: "Phiên bản một."}
    end: true
"""


@pytest.fixture
def library(tmp_path: Path) -> ContentLibrary:
    flows = tmp_path / "flows"
    flows.mkdir()
    # The shipped flows too: the shipped answers have buttons that start them.
    for shipped in (ROOT / "flows").glob("*.yaml"):
        shutil.copy(shipped, flows / shipped.name)
    (flows / "demo.yaml").write_text(FLOW, encoding="utf-8")
    shutil.copytree(ROOT / "knowledge", tmp_path / "knowledge")
    return ContentLibrary(flows_dir=flows, knowledge_dir=tmp_path / "knowledge")


def _touch_later(path: Path, text: str) -> None:
    """Write `text` with a newer mtime, as an editor saving a file a moment later would."""
    path.write_text(text, encoding="utf-8")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))


def _say(library: ContentLibrary) -> str:
    flow = library.content().flows.get("demo")
    assert flow is not None and flow.steps["only"].say is not None
    return flow.steps["only"].say["vi"]


def test_an_edited_flow_is_picked_up(library: ContentLibrary) -> None:
    _touch_later(library.flows_dir / "demo.yaml", FLOW.replace("một", "hai"))
    assert library.reload() == ()
    assert _say(library) == "Phiên bản hai."


def test_a_broken_flow_edit_keeps_the_last_good_version(
    library: ContentLibrary, caplog: pytest.LogCaptureFixture
) -> None:
    _touch_later(library.flows_dir / "demo.yaml", FLOW.replace("    end: true", "\tend: true"))
    problems = library.reload()
    assert [p.line for p in problems] == [9]
    assert _say(library) == "Phiên bản một."
    assert "demo.yaml:9: a tab is used for indentation" in caplog.text


def test_a_broken_messages_file_keeps_the_last_good_phrases(
    library: ContentLibrary, caplog: pytest.LogCaptureFixture
) -> None:
    before = library.content().phrases
    path = library.knowledge_dir / "messages.yaml"
    good = path.read_text(encoding="utf-8")
    _touch_later(path, good.replace("  welcome:\n", "  welcom:\n", 1))
    problems = library.reload()
    assert any("messages.yaml" in p.file and "welcome" in p.message for p in problems)
    assert library.content().phrases is before
    assert "messages.yaml" in caplog.text
    _touch_later(path, good.replace("Xin chào!", "Chào bạn!"))
    assert library.reload() == ()
    assert library.content().phrases.text("welcome", "vi").startswith("Chào bạn!")


def test_nothing_changes_when_nothing_was_edited(library: ContentLibrary) -> None:
    content = library.content()
    library.reload()
    assert library.content() is content


def test_starting_with_broken_knowledge_fails_with_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    shutil.copytree(ROOT / "knowledge", tmp_path / "knowledge")
    (tmp_path / "knowledge" / "commands.yaml").write_text("commands: {menu: [oops\n")
    with pytest.raises(FlowLoadError) as caught:
        ContentLibrary(flows_dir=tmp_path / "flows", knowledge_dir=tmp_path / "knowledge")
    assert "commands.yaml:" in str(caught.value)


def _break_safety(path: Path) -> str:
    """A safety.yaml whose rule catches a message it lists under `never`; returns the
    good text."""
    good = path.read_text(encoding="utf-8")
    broken = good.replace("  never:\n", '  never:\n    - "có người đòi mã passcode của tôi"\n', 1)
    assert broken != good
    _touch_later(path, broken)
    return good


def test_starting_with_a_broken_safety_file_fails_rather_than_run_without_scam_cues(
    tmp_path: Path,
) -> None:
    shutil.copytree(ROOT / "flows", tmp_path / "flows")
    shutil.copytree(ROOT / "knowledge", tmp_path / "knowledge")
    _break_safety(tmp_path / "knowledge" / "safety.yaml")
    with pytest.raises(FlowLoadError) as caught:
        ContentLibrary(flows_dir=tmp_path / "flows", knowledge_dir=tmp_path / "knowledge")
    assert "safety.yaml:" in str(caught.value) and "never" in str(caught.value)


def test_a_broken_safety_edit_keeps_warning_about_scams(library: ContentLibrary) -> None:
    scam = "có người gọi xưng công an đòi mã otp"
    assert library.content().router.route(scam).id == "scam_warning"
    good = _break_safety(library.knowledge_dir / "safety.yaml")
    assert any("safety.yaml" in p.file for p in library.reload())
    assert library.content().router.route(scam).id == "scam_warning"
    _touch_later(library.knowledge_dir / "safety.yaml", good)
    assert library.reload() == ()


def test_a_flow_edit_does_not_read_communes_yaml_again_but_a_communes_edit_is_read(
    library: ContentLibrary, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[Path] = []

    def counted(path: Path) -> Communes:
        reads.append(path)
        return load_communes(path)

    monkeypatch.setattr(content_module, "load_communes", counted)
    _touch_later(library.flows_dir / "demo.yaml", FLOW.replace("một", "hai"))
    assert library.reload() == ()
    assert _say(library) == "Phiên bản hai."
    assert reads == []  # the router was rebuilt with the names it had
    communes = library.knowledge_dir / "communes.yaml"
    _touch_later(communes, communes.read_text(encoding="utf-8"))
    _touch_later(library.flows_dir / "demo.yaml", FLOW.replace("một", "ba"))
    assert library.reload() == ()
    assert reads == [communes]
