"""bot.flow.graph.to_svg and `citizen-bot graph --format svg`: a picture that parses as
XML, with one box a step and one arrow a way on, laid out top to bottom from the start."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from bot.cli import app
from bot.flow.graph import to_svg
from bot.flow.model import Flow

ROOT = Path(__file__).resolve().parents[2]
SVG = "{http://www.w3.org/2000/svg}"
runner = CliRunner()

# Every kind of step and way on: choices to a step, a flow (and back), a volunteer and
# the end; a typed answer; a branch with a fallback rule; a loop back; a handoff step.
FLOW = """\
id: ve_thu
version: 1
title: {vi: "Vẽ <thử> & \\"xem\\"", en: "Draw test"}
start: hello
steps:
  hello:
    say: {vi: "Chào <b>bạn</b> & người thân!", en: "Hello!"}
    next: pick
  pick:
    say: {vi: "Bạn chọn gì?", en: "Pick one"}
    choices:
      - {label: {vi: "Hỏi năm", en: "Year"}, goto: year}
      - {label: {vi: "Cài app", en: "Install"}, flow: cai_app, goto: pick}
      - {label: {vi: "Nhờ người", en: "Help"}, handoff: asked}
      - {label: {vi: "Thôi", en: "Stop"}, end: true}
  year:
    ask: {vi: "Bạn sinh năm nào?", en: "Year of birth?"}
    expect: {type: number, min: 1900, max: 2026}
    save: year
    next: old
  old:
    branch:
      - {if: {var: year, below: 1960}, goto: stuck}
      - {if: {var: year, equals: true}, goto: pick}
      - goto: done
  stuck:
    handoff: {reason: old_age}
  done:
    say: {vi: "Xong.", en: "Done."}
    end: true
"""


def _flow(text: str = FLOW) -> Flow:
    return Flow.model_validate(yaml.safe_load(text))


def _transitions(flow: Flow) -> int:
    """Ways on, counted from the model: the start, each next, rule and choice (a choice
    into another flow that comes back counts twice: there and back)."""
    count = 1
    for step in flow.steps.values():
        count += bool(step.next) + len(step.branch or ())
        count += sum(1 + (c.flow is not None and c.goto is not None) for c in step.choices or ())
    return count


def _parse(svg: str) -> ET.Element:
    return ET.fromstring(svg.encode("utf-8"))


def _groups(root: ET.Element, kind: str) -> list[ET.Element]:
    return [g for g in root.iter(f"{SVG}g") if kind in (g.get("class") or "").split()]


def test_the_svg_parses_with_a_node_per_step_and_an_edge_per_transition() -> None:
    flow = _flow()
    root = _parse(to_svg(flow))
    assert root.tag == f"{SVG}svg" and root.get("data-flow") == "ve_thu"
    steps = [g.get("data-step") or "" for g in _groups(root, "node") if g.get("data-step")]
    assert sorted(steps) == sorted(flow.steps)
    edges = _groups(root, "edge")
    assert len(edges) == _transitions(flow) == 11
    pairs = {(e.get("data-from"), e.get("data-to")) for e in edges}
    assert {("hello", "pick"), ("pick", "year"), ("year", "old"), ("old", "done")} <= pairs
    assert ("old", "pick") in pairs  # a loop back is drawn too
    labels = [t.text for e in edges for t in e.iter(f"{SVG}text")]
    assert {"Hỏi năm", "Cài app", "Nhờ người", "Thôi", "year < 1960", "còn lại"} <= set(labels)
    assert "year = có" in labels  # booleans in words


def test_text_is_escaped_and_comes_back_unchanged() -> None:
    root = _parse(to_svg(_flow()))
    texts = [t.text or "" for t in root.iter(f"{SVG}text")]
    assert "Chào <b>bạn</b> & người thân!" in texts
    title = root.find(f"{SVG}title")
    assert title is not None and title.text == 'Vẽ <thử> & "xem" (ve_thu)'


def test_kinds_are_coloured_and_ends_are_their_own_boxes() -> None:
    root = _parse(to_svg(_flow()))
    kinds = {g.get("data-step"): (g.get("class") or "").split()[1] for g in _groups(root, "node")}
    assert kinds["pick"] == kinds["year"] == "ask"
    assert (kinds["hello"], kinds["old"], kinds["stuck"], kinds["done"]) == (
        "say",
        "branch",
        "handoff",
        "end",
    )
    ends = sorted(g.get("data-end") or "" for g in _groups(root, "node") if g.get("data-end"))
    assert ends == ["__start__", "end:pick", "flow:pick:cai_app", "human:pick"]
    fills = {
        g.get("data-step"): g.find(f"{SVG}rect").get("fill")  # type: ignore[union-attr]
        for g in _groups(root, "node")
    }
    assert len({fills["pick"], fills["hello"], fills["stuck"], fills["done"]}) == 4


def test_layers_go_down_from_the_start() -> None:
    root = _parse(to_svg(_flow()))
    top = {}
    for g in _groups(root, "node"):
        rect = g.find(f"{SVG}rect")
        assert rect is not None
        top[g.get("data-step") or g.get("data-end")] = float(rect.get("y") or 0)
    path = ["__start__", "hello", "pick", "year", "old", "done"]
    assert [top[key] for key in path] == sorted(top[key] for key in path)
    assert top["pick"] < top["human:pick"]
    width = float(root.get("width") or 0)
    assert all(
        0 <= float(r.get("x") or 0) <= width
        for g in _groups(root, "node")
        for r in g.iter(f"{SVG}rect")
    )


def test_english_labels() -> None:
    root = _parse(to_svg(_flow(), lang="en"))
    texts = {t.text for t in root.iter(f"{SVG}text")}
    assert {"Year", "Install", "otherwise", "Start", "Volunteer", "Hello!"} <= texts


def test_a_shipped_flow_draws() -> None:
    text = (ROOT / "flows" / "vneid_activate.yaml").read_text(encoding="utf-8")
    flow = _flow(text)
    root = _parse(to_svg(flow))
    assert len([g for g in _groups(root, "node") if g.get("data-step")]) == len(flow.steps)
    assert len(_groups(root, "edge")) == _transitions(flow)


# ------------------------------------------------------------------ the command


@pytest.fixture
def dirs(tmp_path: Path) -> list[str]:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "ve_thu.yaml").write_text(FLOW.replace("flow: cai_app, ", ""), encoding="utf-8")
    return ["--flows", str(flows), "--knowledge", str(ROOT / "knowledge")]


def test_graph_writes_an_svg_file(dirs: list[str], tmp_path: Path) -> None:
    out = tmp_path / "ve.svg"
    result = runner.invoke(app, ["graph", "ve_thu", "--format", "svg", "-o", str(out), *dirs])
    assert result.exit_code == 0, result.output
    assert "svg of flow 've_thu'" in result.output
    root = ET.parse(out).getroot()
    assert len([g for g in _groups(root, "node") if g.get("data-step")]) == 6


def test_graph_prints_mermaid_by_default_and_svg_on_request(dirs: list[str]) -> None:
    mermaid = runner.invoke(app, ["graph", "ve_thu", *dirs])
    assert mermaid.exit_code == 0 and mermaid.output.startswith("flowchart TD")
    svg = runner.invoke(app, ["graph", "ve_thu", "-f", "svg", "--lang", "en", *dirs])
    assert svg.exit_code == 0
    assert _parse(svg.output).get("data-flow") == "ve_thu"
    bad = runner.invoke(app, ["graph", "ve_thu", "--format", "png", *dirs])
    assert bad.exit_code != 0
