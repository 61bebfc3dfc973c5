"""A flow drawn for editors to read: Mermaid text, or a self-contained SVG picture.

    mermaid(flow) -> str            `flowchart TD` text (paste into any Mermaid viewer)
    to_svg(flow, lang="vi") -> str  an SVG document drawn here, in pure Python: no
                                    browser, binary or network needed (the web console
                                    shows it as it is)

The SVG is laid out in layers: a step's layer is its distance from the start step
(breadth first), so a citizen's path reads top to bottom. Each step is a box with its
id and a short label of what it does, coloured by kind (question, message, branch,
handoff, end); arrows carry the choice or branch condition that takes them. Steps that
leave the flow (another flow, a volunteer, the end) point to small shared end boxes.
Every box is a `<g class="node" data-step="…">` and every arrow a `<g class="edge"
data-from="…" data-to="…">`, so tests and the console can find them.
"""

from __future__ import annotations

import textwrap
from collections import deque
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

from bot.flow.model import Condition, Flow, Step, pick


def _label(text: str, limit: int = 40) -> str:
    first = text.strip().splitlines()[0] if text.strip() else ""
    if len(first) > limit:
        first = first[: limit - 1] + "…"
    return first.replace('"', "'")


def _node(step_id: str, step: Step) -> str:
    text = step.say or step.ask
    body = _label(pick(text, "vi")) if text else ""
    if step.handoff:
        body = f"Cần người giúp: {step.handoff.reason}"
    elif step.flow:
        body = f"→ {step.flow}"
    title = f"{step_id}<br/>{body}" if body else step_id
    shape = ("{{", "}}") if step.branch else ("([", "])") if step.end else ('["', '"]')
    if shape[0] == '["':
        return f'  {step_id}["{title}"]'
    return f'  {step_id}{shape[0]}"{title}"{shape[1]}'


def mermaid(flow: Flow) -> str:
    """Mermaid `flowchart TD` text: one node a step, one edge a way on."""
    lines = ["flowchart TD", f'  start(("{_label(pick(flow.title, "vi"))}")) --> {flow.start}']
    for step_id, step in flow.steps.items():
        lines.append(_node(step_id, step))
        for choice in step.choices or ():
            label = _label(pick(choice.label, "vi"), 24)
            if choice.goto and not choice.flow:
                lines.append(f'  {step_id} -- "{label}" --> {choice.goto}')
            elif choice.flow:
                lines.append(f'  {step_id} -- "{label}" --> flow_{choice.flow}[["{choice.flow}"]]')
            elif choice.handoff:
                lines.append(f'  {step_id} -- "{label}" --> human(["Tình nguyện viên"])')
            elif choice.end:
                lines.append(f'  {step_id} -- "{label}" --> finish(["Kết thúc"])')
        for rule in step.branch or ():
            cond = rule.if_
            label = "còn lại" if cond is None else _label(f"{cond.var}", 24)
            lines.append(f'  {step_id} -- "{label}" --> {rule.goto}')
        if step.next:
            lines.append(f"  {step_id} --> {step.next}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- SVG

_BOX_W = 230
_GAP_X = 36
_GAP_Y = 64
_PAD = 24
_LINE_H = 15
_WRAP = 32  # characters a line in a box, at 12 px
_LABEL_LINES = 3
_LEGEND_H = 34
_LOOP_ROOM = 90
_START = "__start__"

# Fill and stroke by kind: questions stand out, handoffs are warm, ends green.
_STYLE = {
    "start": ("#1f4e79", "#1f4e79"),
    "ask": ("#dbeafe", "#2563eb"),
    "say": ("#ffffff", "#64748b"),
    "branch": ("#fef9c3", "#ca8a04"),
    "flow": ("#ede9fe", "#7c3aed"),
    "handoff": ("#ffe4e6", "#e11d48"),
    "end": ("#dcfce7", "#16a34a"),
}
_WORDS = {
    "vi": {
        "ask": "Hỏi",
        "say": "Nói",
        "branch": "Rẽ nhánh theo",
        "flow": "Vào hướng dẫn",
        "handoff": "Chuyển tình nguyện viên",
        "end": "Kết thúc",
        "human": "Tình nguyện viên",
        "start": "Bắt đầu",
        "yes": "có",
        "no": "không",
        "other": "còn lại",
        "after": "xong thì",
        "legend": "Câu hỏi · Tin nhắn · Rẽ nhánh · Hướng dẫn khác · Tình nguyện viên · Kết thúc",
    },
    "en": {
        "ask": "Asks",
        "say": "Says",
        "branch": "Branches on",
        "flow": "Enters guide",
        "handoff": "Hands over to a volunteer",
        "end": "End",
        "human": "Volunteer",
        "start": "Start",
        "yes": "yes",
        "no": "no",
        "other": "otherwise",
        "after": "then",
        "legend": "Question · Message · Branch · Other guide · Volunteer · End",
    },
}
_LEGEND_KINDS = ("ask", "say", "branch", "flow", "handoff", "end")


@dataclass
class _Node:
    key: str
    kind: str
    title: str
    lines: list[str]
    step: bool  # a step of the flow (not the start or a shared end box)
    layer: int = -1
    x: float = 0.0
    y: float = 0.0
    height: float = 0.0


@dataclass(frozen=True)
class _Edge:
    source: str
    target: str
    label: str


@dataclass
class _Graph:
    nodes: dict[str, _Node] = field(default_factory=dict)
    edges: list[_Edge] = field(default_factory=list)

    def add(self, node: _Node) -> str:
        self.nodes.setdefault(node.key, node)
        return node.key


def to_svg(flow: Flow, lang: str = "vi") -> str:
    """The flow as a standalone SVG document (UTF-8 text), labels in `lang` (vi or en;
    flow texts fall back to Vietnamese)."""
    words = _WORDS.get(lang, _WORDS["vi"])
    graph = _build(flow, lang, words)
    _layer(graph, flow)
    width, height = _place(graph)
    return _draw(graph, flow, lang, words, width, height)


def _short(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def _condition(cond: Condition | None, words: dict[str, str]) -> str:
    if cond is None:
        return words["other"]
    tests = [
        ("=", cond.equals),
        ("≠", cond.not_equals),
        ("∈", None if cond.in_ is None else ", ".join(map(str, cond.in_))),
        ("<", cond.below),
        ("≥", cond.at_least),
    ]
    said = [f"{cond.var} {op} {_value(value, words)}" for op, value in tests if value is not None]
    if cond.is_set is not None:
        said.append(f"{cond.var} {'✓' if cond.is_set else '∅'}")
    return ", ".join(said) or cond.var


def _value(value: object, words: dict[str, str]) -> str:
    if isinstance(value, bool):
        return words["yes"] if value else words["no"]
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # "1960", as the editor wrote it
    return str(value)


def _describe(step: Step, lang: str, words: dict[str, str]) -> tuple[str, str]:
    """The kind of a step and a short label of what it does."""
    text = step.say or step.ask
    said = _short(pick(text, lang), 90) if text else ""
    if step.handoff is not None:
        return "handoff", f"{words['handoff']}: {step.handoff.reason}"
    if step.flow is not None:
        return "flow", f"{words['flow']}: {step.flow}"
    if step.branch is not None:
        names = dict.fromkeys(r.if_.var for r in step.branch if r.if_ is not None)
        return "branch", f"{words['branch']}: {', '.join(names)}"
    if step.ask is not None or step.choices is not None:
        return "ask", said
    if step.end:
        return "end", said or words["end"]
    return "say", said


def _build(flow: Flow, lang: str, words: dict[str, str]) -> _Graph:
    graph = _Graph()
    heading = textwrap.wrap(pick(flow.title, lang), _WRAP)[:_LABEL_LINES]
    graph.add(_Node(_START, "start", words["start"], heading, step=False))
    graph.edges.append(_Edge(_START, flow.start, ""))
    for sid, step in flow.steps.items():
        kind, label = _describe(step, lang, words)
        lines = textwrap.wrap(label, _WRAP)[:_LABEL_LINES]
        if len(textwrap.wrap(label, _WRAP)) > _LABEL_LINES:
            lines[-1] = _short(lines[-1] + " …", _WRAP)
        graph.add(_Node(sid, kind, sid, lines, step=True))
    for sid, step in flow.steps.items():
        for choice in step.choices or ():
            label = _short(pick(choice.label, lang), 26)
            # End boxes are one per step that leads there: shared ones would pull
            # long arrows across the whole picture.
            if choice.flow is not None:
                target = graph.add(
                    _end_box(f"flow:{sid}:{choice.flow}", "flow", f"→ {choice.flow}")
                )
                graph.edges.append(_Edge(sid, target, label))
                if choice.goto is not None:
                    graph.edges.append(_Edge(target, choice.goto, words["after"]))
            elif choice.goto is not None:
                graph.edges.append(_Edge(sid, choice.goto, label))
            elif choice.handoff is not None:
                target = graph.add(_end_box(f"human:{sid}", "handoff", words["human"]))
                graph.edges.append(_Edge(sid, target, label))
            elif choice.end:
                target = graph.add(_end_box(f"end:{sid}", "end", words["end"]))
                graph.edges.append(_Edge(sid, target, label))
        for rule in step.branch or ():
            graph.edges.append(_Edge(sid, rule.goto, _short(_condition(rule.if_, words), 26)))
        if step.next:
            graph.edges.append(_Edge(sid, step.next, words["after"] if step.flow else ""))
    # Edges to steps that do not exist (the linter reports them) are not drawn.
    graph.edges = [e for e in graph.edges if e.target in graph.nodes]
    return graph


def _end_box(key: str, kind: str, title: str) -> _Node:
    return _Node(key, kind, title, [], step=False)


def _layer(graph: _Graph, flow: Flow) -> None:
    """Breadth-first distance from the start; unreachable steps go below the rest."""
    out: dict[str, list[str]] = {}
    for edge in graph.edges:
        out.setdefault(edge.source, []).append(edge.target)
    graph.nodes[_START].layer = 0
    todo = deque([_START])
    while todo:
        key = todo.popleft()
        for target in out.get(key, ()):
            node = graph.nodes[target]
            if node.layer < 0:
                node.layer = graph.nodes[key].layer + 1
                todo.append(target)
    deepest = max(n.layer for n in graph.nodes.values())
    for node in graph.nodes.values():
        if node.layer < 0:
            node.layer = deepest + 1


def _place(graph: _Graph) -> tuple[float, float]:
    """Positions: layers top to bottom; within a layer, ordered by where the boxes
    that lead to them sit (fewer crossing arrows), then centred."""
    layers: dict[int, list[_Node]] = {}
    for node in graph.nodes.values():  # insertion order: start, steps as written, ends
        layers.setdefault(node.layer, []).append(node)
    parents: dict[str, list[str]] = {}
    for edge in graph.edges:
        parents.setdefault(edge.target, []).append(edge.source)
    order: dict[str, float] = {}
    for depth in sorted(layers):
        row = layers[depth]
        written = {node.key: float(index) for index, node in enumerate(row)}

        def weight(node: _Node, written: dict[str, float] = written) -> float:
            seen = [order[p] for p in parents.get(node.key, ()) if p in order]
            return sum(seen) / len(seen) if seen else written[node.key]

        row.sort(key=weight)
        for index, node in enumerate(row):
            order[node.key] = float(index)
    widest = max(len(row) for row in layers.values())
    # Room on the right for arrows that loop back up.
    width = _PAD * 2 + widest * _BOX_W + (widest - 1) * _GAP_X + _LOOP_ROOM
    y: float = _PAD + _LEGEND_H
    for depth in sorted(layers):
        row = layers[depth]
        for node in row:
            node.height = _LINE_H * (len(node.lines) + 1) + 16
        tallest = max(node.height for node in row)
        span = len(row) * _BOX_W + (len(row) - 1) * _GAP_X
        x = (width - _LOOP_ROOM - span) / 2
        for node in row:
            node.x, node.y = x, y + (tallest - node.height) / 2
            x += _BOX_W + _GAP_X
        y += tallest + _GAP_Y
    return width, y - _GAP_Y + _PAD


def _draw(
    graph: _Graph, flow: Flow, lang: str, words: dict[str, str], width: float, height: float
) -> str:
    title = escape(pick(flow.title, lang))
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}"'
        f' viewBox="0 0 {width:.0f} {height:.0f}" font-family="DejaVu Sans, Arial, sans-serif"'
        f' font-size="12" data-flow={quoteattr(flow.id)}>',
        f"<title>{title} ({escape(flow.id)})</title>",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5"'
        ' markerWidth="8" markerHeight="8" orient="auto-start-reverse">'
        '<path d="M0,0 L10,5 L0,10 z" fill="#475569"/></marker></defs>',
        '<rect width="100%" height="100%" fill="#f8fafc"/>',
    ]
    out += _legend(words)
    # Edges first, so boxes sit on top of the lines that reach them.
    for edge in graph.edges:
        out += _edge(graph.nodes[edge.source], graph.nodes[edge.target], edge)
    for node in graph.nodes.values():
        out += _box(node)
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _legend(words: dict[str, str]) -> list[str]:
    out = ['<g class="legend">']
    x = float(_PAD)
    for kind, name in zip(_LEGEND_KINDS, words["legend"].split(" · "), strict=True):
        fill, stroke = _STYLE[kind]
        out.append(
            f'<rect x="{x:.0f}" y="{_PAD - 12}" width="14" height="14" rx="3"'
            f' fill="{fill}" stroke="{stroke}"/>'
        )
        out.append(f'<text x="{x + 19:.0f}" y="{_PAD}" fill="#334155">{escape(name)}</text>')
        x += 26 + len(name) * 7
    out.append("</g>")
    return out


def _box(node: _Node) -> list[str]:
    fill, stroke = _STYLE[node.kind]
    attrs = f'class="node {node.kind}"'
    if node.step:
        attrs += f" data-step={quoteattr(node.key)}"
    else:
        attrs += f" data-end={quoteattr(node.key)}"
    rounded = 18 if node.kind in ("start", "end") and not node.step else 6
    out = [
        f"<g {attrs}>",
        f'<rect x="{node.x:.1f}" y="{node.y:.1f}" width="{_BOX_W}" height="{node.height:.1f}"'
        f' rx="{rounded}" fill="{fill}" stroke="{stroke}" stroke-width="1.6"/>',
    ]
    colour = "#ffffff" if node.kind == "start" else "#0f172a"
    cx = node.x + _BOX_W / 2
    y = node.y + 8 + _LINE_H - 3
    out.append(
        f'<text x="{cx:.1f}" y="{y:.1f}" text-anchor="middle" font-weight="bold"'
        f' fill="{colour}">{escape(_short(node.title, _WRAP))}</text>'
    )
    body = "#e2e8f0" if node.kind == "start" else "#334155"
    for line in node.lines:
        y += _LINE_H
        out.append(
            f'<text x="{cx:.1f}" y="{y:.1f}" text-anchor="middle" fill="{body}">'
            f"{escape(line)}</text>"
        )
    out.append("</g>")
    return out


def _edge(source: _Node, target: _Node, edge: _Edge) -> list[str]:
    attrs = f"data-from={quoteattr(edge.source)} data-to={quoteattr(edge.target)}"
    if target.layer > source.layer:
        # Down: bottom centre to top centre, a smooth S.
        x1, y1 = source.x + _BOX_W / 2, source.y + source.height
        x2, y2 = target.x + _BOX_W / 2, target.y
        bend = max((y2 - y1) / 2, 20)
        points = ((x1, y1), (x1, y1 + bend), (x2, y2 - bend), (x2, y2))
        path = _curve(*points)
        # Labels past the middle: arrows fanning out of one box start together.
        lx, ly = _at(points, 0.62)
    else:
        # Back up (a loop, "try again"), or sideways: out of the right side and round.
        x1, y1 = source.x + _BOX_W, source.y + source.height / 2
        x2, y2 = target.x + _BOX_W, target.y + target.height / 2
        reach = 40 + 12 * max(source.layer - target.layer, 0)
        if source is target:
            y1, y2 = source.y + source.height * 0.3, source.y + source.height * 0.7
        path = _curve((x1, y1), (x1 + reach, y1), (x2 + reach, y2), (x2, y2))
        lx, ly = max(x1, x2) + reach * 0.75, (y1 + y2) / 2
    dashed = ' stroke-dasharray="5,4"' if target.layer <= source.layer else ""
    out = [
        f'<g class="edge" {attrs}>',
        f'<path d="{path}" fill="none" stroke="#475569" stroke-width="1.3"{dashed}'
        ' marker-end="url(#arrow)"/>',
    ]
    if edge.label:
        w = 8 + 6.6 * len(edge.label)
        out.append(
            f'<rect x="{lx - w / 2:.1f}" y="{ly - 9:.1f}" width="{w:.1f}" height="16" rx="3"'
            ' fill="#ffffff" stroke="#cbd5e1" stroke-width="0.8" opacity="0.95"/>'
        )
        out.append(
            f'<text x="{lx:.1f}" y="{ly + 3:.1f}" text-anchor="middle" font-size="11"'
            f' fill="#1e293b">{escape(edge.label)}</text>'
        )
    out.append("</g>")
    return out


def _curve(*points: tuple[float, float]) -> str:
    """An SVG cubic Bézier path through four points."""
    (x1, y1), *rest = points
    return f"M{x1:.1f},{y1:.1f} C" + " ".join(f"{x:.1f},{y:.1f}" for x, y in rest)


def _at(points: tuple[tuple[float, float], ...], t: float) -> tuple[float, float]:
    """The point of a cubic Bézier at `t` (0 start, 1 end)."""
    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = points
    a, b, c, d = (1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t**2, t**3
    return a * x0 + b * x1 + c * x2 + d * x3, a * y0 + b * y1 + c * y2 + d * y3
