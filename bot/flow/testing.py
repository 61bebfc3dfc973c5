"""Conversation tests that content editors write in YAML (flows/tests/*.yaml).

    flow: vneid_activate
    conversations:
      - name: "đã nhận SMS"
        lang: vi
        steps:
          - user: "kich hoat vneid"          # the citizen types
          - bot: {contains: "tin nhắn"}       # the next bot message contains this
          - bot: {buttons: ["Đã nhận", "Chưa nhận"]}   # exact labels; has_buttons: a subset
          - press: "Đã nhận"                # press a button of the latest messages
          - handoff: nfc_fail               # the last turn asked for a volunteer, this reason
          - ended: vneid_activate           # the last turn completed this flow

A file may also be one conversation: `flow`, `lang`, `steps` at the top. The tests run
the real engine on the real content, with no database and no network.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from bot.flow.engine import Content, resume
from bot.flow.events import Event, FlowEnded, HandoffRequested, outgoing_text
from bot.flow.session import Session
from bot.messages import Button, Incoming


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BotCheck(_Strict):
    contains: str | list[str] | None = None
    not_contains: str | list[str] | None = None
    buttons: list[str] | None = None
    has_buttons: list[str] | None = None


class TestStep(_Strict):
    user: str | None = None
    press: str | None = None
    bot: BotCheck | None = None
    handoff: str | None = None
    ended: str | None = None

    @model_validator(mode="after")
    def _one(self) -> TestStep:
        given = [k for k in ("user", "press", "bot", "handoff", "ended") if getattr(self, k)]
        if len(given) != 1 and not (self.user == "" and not given):
            raise ValueError("each test step has exactly one of: user, press, bot, handoff, ended")
        return self


class Conversation(_Strict):
    name: str = "conversation"
    lang: str = "vi"
    steps: list[TestStep] = Field(min_length=1)


class TestFile(_Strict):
    flow: str | None = None
    lang: str = "vi"
    name: str | None = None
    steps: list[TestStep] | None = None
    conversations: list[Conversation] | None = None

    def all(self) -> list[Conversation]:
        out = list(self.conversations or [])
        if self.steps:
            out.append(
                Conversation(
                    name=self.name or self.flow or "conversation", lang=self.lang, steps=self.steps
                )
            )
        return out


@dataclass
class Result:
    """One conversation's outcome; `failure` explains, with the transcript, what differed."""

    file: str
    name: str
    line: int
    failure: str | None = None

    @property
    def passed(self) -> bool:
        return self.failure is None


@dataclass
class _Transcript:
    lines: list[str] = field(default_factory=list)

    def user(self, text: str) -> None:
        self.lines.append(f"  người dùng> {text}")

    def bot(self, text: str, buttons: tuple[Button, ...]) -> None:
        for i, line in enumerate(text.splitlines() or [""]):
            self.lines.append(("  bot> " if i == 0 else "       ") + line)
        if buttons:
            self.lines.append("       [" + "] [".join(b.label for b in buttons) + "]")

    def __str__(self) -> str:
        return "\n".join(self.lines[-30:])


class _Failed(Exception):
    pass


def run_file(path: Path, content: Content) -> list[Result]:
    """Run every conversation of one test file."""
    try:
        text = path.read_text(encoding="utf-8")
        data = yaml.safe_load(text)
        lines = _step_lines(text)
        spec = TestFile.model_validate(data)
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        return [Result(str(path), "(file)", _error_line(exc), _short(exc))]
    results = []
    for index, convo in enumerate(spec.all()):
        step_lines = lines[index] if index < len(lines) else []
        results.append(_run(path, convo, step_lines, content))
    return results


def run_dir(directory: Path, content: Content) -> list[Result]:
    """Run every `*.yaml` test file under `directory`, in name order."""
    results: list[Result] = []
    for path in sorted(directory.glob("*.yaml")) + sorted(directory.glob("*.yml")):
        results += run_file(path, content)
    return results


def _run(path: Path, convo: Conversation, lines: list[int], content: Content) -> Result:
    session = Session(lang=convo.lang)
    said: list[tuple[str, tuple[Button, ...]]] = []
    events: tuple[Event, ...] = ()
    cursor = 0
    transcript = _Transcript()
    first_line = lines[0] if lines else 1
    for n, step in enumerate(convo.steps):
        line = lines[n] if n < len(lines) else first_line
        try:
            if step.user is not None or step.press is not None:
                incoming = _incoming(step, said, convo.lang)
                transcript.user(step.user if step.user is not None else f"[{step.press}]")
                turn = resume(content, session, incoming)
                session, events = turn.session, turn.events
                said = [r for r in map(outgoing_text, events) if r is not None]
                for text, buttons in said:
                    transcript.bot(text, buttons)
                cursor = 0
            elif step.bot is not None:
                if cursor >= len(said):
                    raise _Failed("expected another bot message, but the bot said nothing more")
                _check(step.bot, *said[cursor])
                cursor += 1
            elif step.handoff is not None:
                reasons = [e.reason for e in events if isinstance(e, HandoffRequested)]
                if step.handoff not in reasons:
                    raise _Failed(
                        f"expected a handoff with reason '{step.handoff}', got {reasons or 'none'}"
                    )
            elif step.ended is not None:
                ended = [e.flow_id for e in events if isinstance(e, FlowEnded) and e.completed]
                if step.ended not in ended:
                    raise _Failed(
                        f"expected flow '{step.ended}' to end here, ended: {ended or 'none'}"
                    )
        except _Failed as exc:
            return Result(
                str(path), convo.name, line, f"{exc}\n\nthe conversation so far:\n{transcript}"
            )
    return Result(str(path), convo.name, first_line)


def _incoming(step: TestStep, said: list[tuple[str, tuple[Button, ...]]], lang: str) -> Incoming:
    if step.user is not None:
        return Incoming(channel="test", chat_id="test", text=step.user)
    for _, buttons in reversed(said):
        for button in buttons:
            if button.label == step.press:
                return Incoming(channel="test", chat_id="test", payload=button.payload)
    offered = [b.label for _, bs in said for b in bs]
    raise _Failed(f"no button '{step.press}' in the last bot messages; buttons were: {offered}")


def _check(check: BotCheck, text: str, buttons: tuple[Button, ...]) -> None:
    labels = [b.label for b in buttons]
    for needle in _as_list(check.contains):
        if needle not in text:
            raise _Failed(
                f"expected the bot message to contain:\n    {needle}\nbut it was:\n    {text}"
            )
    for needle in _as_list(check.not_contains):
        if needle in text:
            raise _Failed(
                f"expected the bot message NOT to contain:\n    {needle}\nbut it was:\n    {text}"
            )
    if check.buttons is not None and labels != check.buttons:
        raise _Failed(f"expected buttons {check.buttons}\n      but got {labels}")
    missing = [b for b in check.has_buttons or [] if b not in labels]
    if missing:
        raise _Failed(f"expected buttons to include {missing}\n      but got {labels}")


def _as_list(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else value


def _step_lines(text: str) -> list[list[int]]:
    """Line numbers of each test step, per conversation, for error messages."""
    root = yaml.compose(text)
    out: list[list[int]] = []
    if not isinstance(root, yaml.MappingNode):
        return out
    for key, value in root.value:
        if key.value == "conversations" and isinstance(value, yaml.SequenceNode):
            for convo in value.value:
                out.append(list(_steps_of(convo)))
    for key, value in root.value:
        if key.value == "steps" and isinstance(value, yaml.SequenceNode):
            out.append([node.start_mark.line + 1 for node in value.value])
    return out


def _steps_of(node: Any) -> Iterator[int]:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.value == "steps" and isinstance(value, yaml.SequenceNode):
                yield from (n.start_mark.line + 1 for n in value.value)


def _error_line(exc: Exception) -> int:
    mark = getattr(exc, "problem_mark", None)
    return int(mark.line) + 1 if mark is not None else 1


def _short(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
    return str(exc)


def report(results: list[Result]) -> str:
    """A readable summary: each failure with file:line and the conversation, then totals."""
    lines = []
    for r in results:
        if not r.passed:
            lines.append(f"FAILED {r.file}:{r.line}: {r.name}\n{r.failure}\n")
    passed = sum(r.passed for r in results)
    lines.append(f"{passed} passed, {len(results) - passed} failed")
    return "\n".join(lines)
