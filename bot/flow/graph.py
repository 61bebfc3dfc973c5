"""A flow drawn as a Mermaid flowchart, for editors to read."""

from __future__ import annotations

from bot.flow.model import Flow, Step, pick


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
