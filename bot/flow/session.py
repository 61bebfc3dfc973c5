"""The state of one conversation between messages: plain, immutable, JSON-safe.

Only `engine.resume()` makes a new Session from an old one. The store keeps it as JSON
(`to_json`/`from_json`), together with the flow id and revision it runs on.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from bot.flow.model import DEFAULT_LANG

# How many waiting steps `back` can return through.
HISTORY_LIMIT = 20

Value = str | int | float | bool


@dataclass(frozen=True)
class Frame:
    """A flow being run: which revision, which step. `resume_at` is the step of this
    flow to go on with when a flow entered from it ends (None: this flow ends too)."""

    flow_id: str
    rev: str
    step_id: str
    resume_at: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "flow": self.flow_id,
            "rev": self.rev,
            "step": self.step_id,
            "resume": self.resume_at,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Frame:
        return cls(str(data["flow"]), str(data["rev"]), str(data["step"]), data.get("resume"))


@dataclass(frozen=True)
class Session:
    """`stack` is empty when no flow runs; its last frame waits at its step."""

    lang: str = DEFAULT_LANG
    stack: tuple[Frame, ...] = ()
    vars: tuple[tuple[str, Value], ...] = ()
    failures: int = 0  # invalid answers at the current step
    misses: int = 0  # messages in a row that nothing understood
    history: tuple[tuple[Frame, ...], ...] = ()  # earlier waiting stacks, for `back`
    offered_human: bool = False  # a volunteer was offered for the current trouble
    buttons: tuple[str, ...] = ()  # payloads of the last buttons shown, for typed numbers

    @property
    def current(self) -> Frame | None:
        return self.stack[-1] if self.stack else None

    @property
    def variables(self) -> dict[str, Value]:
        return dict(self.vars)

    def with_var(self, name: str, value: Value) -> Session:
        merged = dict(self.vars)
        merged[name] = value
        return replace(self, vars=tuple(sorted(merged.items())))

    def to_json(self) -> dict[str, Any]:
        return {
            "lang": self.lang,
            "stack": [f.to_json() for f in self.stack],
            "vars": dict(self.vars),
            "failures": self.failures,
            "misses": self.misses,
            "history": [[f.to_json() for f in stack] for stack in self.history],
            "offered_human": self.offered_human,
            "buttons": list(self.buttons),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Session:
        return cls(
            lang=str(data.get("lang", DEFAULT_LANG)),
            stack=tuple(Frame.from_json(f) for f in data.get("stack", [])),
            vars=tuple(sorted(dict(data.get("vars", {})).items())),
            failures=int(data.get("failures", 0)),
            misses=int(data.get("misses", 0)),
            history=tuple(
                tuple(Frame.from_json(f) for f in stack) for stack in data.get("history", [])
            ),
            offered_human=bool(data.get("offered_human", False)),
            buttons=tuple(str(b) for b in data.get("buttons", [])),
        )


EMPTY = Session()
__all__ = ["EMPTY", "HISTORY_LIMIT", "Frame", "Session", "Value"]
