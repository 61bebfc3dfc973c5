"""The `citizen-bot` command as an editor or operator runs it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.channels.console import run_console
from bot.cli import app
from bot.config import get_settings
from bot.content import ContentLibrary
from bot.conversation import ConversationService
from bot.store import Store

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()

GOOD = """\
id: demo
version: 1
title: {vi: "Thử"}
triggers: {vi: ["bắt đầu thử"]}
start: first
steps:
  first:
    say: {vi: "Bạn xong chưa?"}
    choices:
      - {label: {vi: "Xong"}, goto: last}
  last:
    say: {vi: "Hết."}
    end: true
"""


@pytest.fixture
def content(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    flows = tmp_path / "flows"
    (flows / "tests").mkdir(parents=True)
    # The shipped flows too: the shipped answers have buttons that start them.
    for shipped in (ROOT / "flows").glob("*.yaml"):
        shutil.copy(shipped, flows / shipped.name)
    (flows / "demo.yaml").write_text(GOOD, encoding="utf-8")
    knowledge = tmp_path / "knowledge"
    shutil.copytree(ROOT / "knowledge", knowledge)
    yield flows, knowledge


def _args(content: tuple[Path, Path]) -> list[str]:
    return ["--flows", str(content[0]), "--knowledge", str(content[1])]


def test_validate_the_shipped_content() -> None:
    result = runner.invoke(
        app, ["validate", "--flows", str(ROOT / "flows"), "--knowledge", str(ROOT / "knowledge")]
    )
    assert result.exit_code == 0, result.output
    # Editorial warnings (long texts, old sources) may come first; they do not fail.
    assert result.output.splitlines()[-1].startswith("OK:")


@pytest.mark.parametrize(
    ("broken", "expected"),
    [
        (GOOD.replace('    say: {vi: "Hết."}', '\tsay: {vi: "Hết."}'), "demo.yaml:12: "),
        (GOOD.replace("goto: last", "gooto: last"), "demo.yaml:10: "),
        (GOOD.replace("goto: last", "goto: nowhere"), "demo.yaml:10: "),
    ],
    ids=["tab", "typo-key", "goto-nowhere"],
)
def test_validate_names_file_and_line(
    content: tuple[Path, Path], broken: str, expected: str
) -> None:
    (content[0] / "demo.yaml").write_text(broken, encoding="utf-8")
    result = runner.invoke(app, ["validate", *_args(content)])
    assert result.exit_code == 1
    assert expected in result.output, result.output


def test_validate_reports_a_broken_knowledge_file(content: tuple[Path, Path]) -> None:
    (content[1] / "messages.yaml").write_text("messages: [oops\n", encoding="utf-8")
    result = runner.invoke(app, ["validate", *_args(content)])
    assert result.exit_code == 1
    assert "messages.yaml:" in result.output


def test_test_flows_passes_and_fails_readably(content: tuple[Path, Path]) -> None:
    tests = content[0] / "tests" / "demo.yaml"
    tests.write_text(
        'flow: demo\nsteps:\n  - user: "bat dau thu"\n  - bot: {contains: "xong chưa"}\n'
        '  - press: "Xong"\n  - ended: demo\n',
        encoding="utf-8",
    )
    ok = runner.invoke(app, ["test-flows", *_args(content)])
    assert ok.exit_code == 0, ok.output
    assert "1 passed, 0 failed" in ok.output
    tests.write_text(
        'flow: demo\nsteps:\n  - user: "bat dau thu"\n  - bot: {contains: "Tạm biệt"}\n',
        encoding="utf-8",
    )
    failed = runner.invoke(app, ["test-flows", *_args(content)])
    assert failed.exit_code == 1
    assert f"FAILED {tests}:4:" in failed.output
    assert "Tạm biệt" in failed.output and "bot> Bạn xong chưa?" in failed.output


def test_route_json(content: tuple[Path, Path]) -> None:
    result = runner.invoke(
        app, ["route", "--json", *_args(content)], input="bat dau thu\n\ngap nguoi that\n"
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [(r["kind"], r["id"]) for r in lines] == [
        ("flow", "demo"),
        ("fallback", None),
        ("human", "human"),
    ]
    assert set(lines[0]) == {"text", "kind", "id", "score"}


def test_route_json_names_the_candidates_of_a_question(content: tuple[Path, Path]) -> None:
    result = runner.invoke(
        app, ["route", "--json", *_args(content)], input="quên vneid\nCó người đòi passcode\n"
    )
    assert result.exit_code == 0, result.output
    clarify, scam = (json.loads(line) for line in result.output.splitlines())
    assert clarify["kind"] == "clarify" and clarify["id"] is None
    assert {"vneid_forgot_password", "vneid_forgot_passcode"} <= set(clarify["candidates"])
    assert (scam["kind"], scam["id"]) == ("answer", "scam_warning")
    assert "candidates" not in scam


def test_graph(content: tuple[Path, Path]) -> None:
    result = runner.invoke(app, ["graph", "demo", *_args(content)])
    assert result.exit_code == 0
    assert result.output.startswith("flowchart TD")
    assert 'first -- "Xong" --> last' in result.output
    missing = runner.invoke(app, ["graph", "nope", *_args(content)])
    assert missing.exit_code == 1


def test_terminal_chat(content: tuple[Path, Path], tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'chat.db'}")
    store.create_all()
    service = ConversationService(
        store=store, library=ContentLibrary(flows_dir=content[0], knowledge_dir=content[1])
    )
    typed = iter(["bat dau thu", "1"])
    shown: list[str] = []

    def read(prompt: str) -> str:
        try:
            return next(typed)
        except StopIteration:
            raise EOFError from None

    run_console(user="t", service=service, read=read, write=shown.append)
    screen = "\n".join(shown)
    assert "bot> Bạn xong chưa?\n     1. Xong\n     2. Cần người giúp" in screen
    assert "bot> Hết." in screen
    assert all(
        o.status == "sent" for o in store.outbox_after(channel="console", chat_id="console-t")
    )


def test_stats(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'stats.db'}")
    get_settings.cache_clear()
    try:
        result = runner.invoke(app, ["stats"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["conversations"] == 0


def test_the_installed_command_runs() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0
    for command in ("serve", "chat", "validate", "test-flows", "route", "stats", "graph"):
        assert command in result.stdout
