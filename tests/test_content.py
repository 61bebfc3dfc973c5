"""The shipped content: every flow loads clean, has conversation tests, and passes them."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.content import ContentLibrary
from bot.flow.model import DEFAULT_LANG
from bot.flow.testing import run_file

ROOT = Path(__file__).resolve().parents[1]
FLOWS = ROOT / "flows"
LIBRARY = ContentLibrary(flows_dir=FLOWS, knowledge_dir=ROOT / "knowledge")
TEST_FILES = sorted((FLOWS / "tests").glob("*.yaml"))


def test_content_loads_without_problems() -> None:
    assert [str(p) for p in LIBRARY.problems] == []
    on_disk = {p.stem for p in FLOWS.glob("*.yaml")}
    assert set(LIBRARY.catalog.flows()) == on_disk


@pytest.mark.parametrize("flow_id", sorted(p.stem for p in FLOWS.glob("*.yaml")))
def test_every_flow_has_conversation_tests(flow_id: str) -> None:
    assert (FLOWS / "tests" / f"{flow_id}.yaml").exists(), f"flows/tests/{flow_id}.yaml is missing"


@pytest.mark.parametrize("path", TEST_FILES, ids=lambda p: p.name)
def test_conversations_pass(path: Path) -> None:
    results = run_file(path, LIBRARY.content())
    assert results
    failures = [f"{r.file}:{r.line}: {r.name}\n{r.failure}" for r in results if not r.passed]
    assert not failures, "\n\n".join(failures)


@pytest.mark.parametrize("flow_id", sorted(LIBRARY.catalog.flows()))
def test_every_text_has_english(flow_id: str) -> None:
    flow = LIBRARY.catalog.get(flow_id)
    assert flow is not None
    missing = [
        step_id
        for step_id, step in flow.steps.items()
        for text in (step.say, step.ask, step.invalid)
        if text is not None and "en" not in text
    ]
    assert DEFAULT_LANG in flow.title and not missing, f"steps without English: {missing}"
