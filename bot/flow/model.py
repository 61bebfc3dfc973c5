"""Immutable models of a flow: the YAML schema, one file a flow.

A flow is a graph of named steps. Each step does one thing for the citizen:

    say      text to send (with `next`, the bot goes straight on)
    choices  buttons; answerable by pressing, typing the number, or typing the label
    ask      a question with a typed `expect` (text, number, date, phone, yes_no),
             the answer kept in `save`, `invalid` said when it does not fit
    branch   go to the first rule whose `if` holds on saved values
    flow     enter another flow; come back to `next` when it ends
    handoff  ask for a human volunteer (`reason`), then `next` or end
    end      the flow is finished

Every text is a `LocalText`: a mapping from language code to text, `vi` required;
a missing language falls back to `vi`. Texts may use saved values as `{name}`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

DEFAULT_LANG = "vi"
ID_PATTERN = r"^[a-z][a-z0-9_]*$"


def _check_local_text(value: dict[str, str]) -> dict[str, str]:
    if not value.get(DEFAULT_LANG, "").strip():
        raise ValueError(f"a Vietnamese text ('{DEFAULT_LANG}') is required")
    for lang, text in value.items():
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"the '{lang}' text is empty")
    return value


LocalText = Annotated[dict[str, str], AfterValidator(_check_local_text)]
StepId = Annotated[str, Field(pattern=ID_PATTERN, max_length=32)]
FlowId = Annotated[str, Field(pattern=ID_PATTERN, max_length=32)]


def pick(text: Mapping[str, str], lang: str) -> str:
    """The text in `lang`, falling back to Vietnamese."""
    return text.get(lang) or text[DEFAULT_LANG]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Source(_Model):
    """Where a fact comes from, and when a person last checked it."""

    url: str = Field(pattern=r"^https?://")
    checked: dt.date
    title: str | None = None


class Choice(_Model):
    """One button. Exactly one of `goto`, `flow`, `handoff`, `end` says where it leads;
    with `flow`, `goto` is where to come back to when that flow ends."""

    label: LocalText
    goto: StepId | None = None
    flow: FlowId | None = None
    handoff: str | None = None  # the reason given to the volunteer
    end: bool = False
    value: str | None = None  # saved under the step's `save` when chosen

    @model_validator(mode="after")
    def _one_target(self) -> Choice:
        targets = [self.goto is not None and self.flow is None, self.flow is not None]
        targets += [self.handoff is not None, self.end]
        if sum(targets) != 1:
            raise ValueError("a choice needs exactly one of: goto, flow, handoff, end")
        return self


ExpectType = Literal["text", "number", "date", "phone", "yes_no"]


class Expect(_Model):
    """What an `ask` step accepts. `min`/`max` bound numbers, years of dates and text length."""

    type: ExpectType = "text"
    min: float | None = None
    max: float | None = None


class Condition(_Model):
    """A test on a saved value; all given tests must hold."""

    var: str = Field(pattern=ID_PATTERN)
    equals: str | int | float | bool | None = None
    not_equals: str | int | float | bool | None = None
    in_: tuple[str | int | float, ...] | None = Field(default=None, alias="in")
    below: float | None = None
    at_least: float | None = None
    is_set: bool | None = None


class Rule(_Model):
    """A branch rule: go to `goto` when `if` holds; a rule without `if` always holds."""

    if_: Condition | None = Field(default=None, alias="if")
    goto: StepId


class Handoff(_Model):
    """Ask for a volunteer; `reason` is a short code shown to them (nfc_fail, no_sms...)."""

    reason: str = Field(pattern=ID_PATTERN)


class Step(_Model):
    """One step of a flow; see the module docstring for what each key does."""

    say: LocalText | None = None
    ask: LocalText | None = None
    choices: tuple[Choice, ...] | None = Field(default=None, min_length=1, max_length=10)
    expect: Expect | None = None
    save: str | None = Field(default=None, pattern=ID_PATTERN)
    invalid: LocalText | None = None
    branch: tuple[Rule, ...] | None = Field(default=None, min_length=1)
    flow: FlowId | None = None
    handoff: Handoff | None = None
    next: StepId | None = None
    end: bool = False
    source: Source | tuple[Source, ...] | None = None

    @model_validator(mode="after")
    def _coherent(self) -> Step:
        if self.ask is not None and self.say is not None:
            raise ValueError("use either 'say' or 'ask' in one step, not both")
        if self.ask is not None and self.choices is not None:
            raise ValueError("a step with choices uses 'say' for its question, not 'ask'")
        if self.ask is not None and self.next is None:
            raise ValueError("an 'ask' step needs 'next': where to go with the answer")
        if self.expect is not None and self.ask is None:
            raise ValueError("'expect' belongs to an 'ask' step")
        if self.invalid is not None and self.ask is None and self.choices is None:
            raise ValueError("'invalid' belongs to an 'ask' step or a step with choices")
        if self.choices is not None and self.next is not None:
            raise ValueError("a step with choices goes where each choice says; remove 'next'")
        if self.branch is not None and (self.next is not None or self.choices is not None):
            raise ValueError("a 'branch' step goes where its rules say; remove 'next'/'choices'")
        if self.end and (self.next is not None or self.choices is not None or self.ask):
            raise ValueError("an 'end' step cannot also go on ('next', 'choices', 'ask')")
        if self.flow is not None and (self.choices is not None or self.ask is not None):
            raise ValueError("a 'flow' step enters another flow; it cannot also ask")
        if self.handoff is not None and (self.choices is not None or self.ask is not None):
            raise ValueError("a 'handoff' step cannot also ask")
        if not any((self.say, self.ask, self.choices, self.branch, self.flow, self.handoff)):
            if not self.end:
                raise ValueError("a step needs one of: say, ask, choices, branch, flow, handoff")
        return self

    @property
    def waits(self) -> bool:
        """True when the step waits for the citizen's answer."""
        return self.ask is not None or self.choices is not None

    @property
    def sources(self) -> tuple[Source, ...]:
        if self.source is None:
            return ()
        return self.source if isinstance(self.source, tuple) else (self.source,)

    def targets(self) -> list[str]:
        """The steps of the same flow this step can lead to."""
        out = [self.next] if self.next else []
        out += [c.goto for c in self.choices or () if c.goto]
        out += [r.goto for r in self.branch or ()]
        return out


class Flow(_Model):
    """One flow file. `rev` is set by the loader: a hash of the file's content."""

    id: FlowId
    version: int = Field(ge=1)
    title: LocalText
    description: LocalText | None = None
    triggers: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    start: StepId
    steps: dict[StepId, Step] = Field(min_length=1)
    sources: tuple[Source, ...] = ()
    # Where it sits in the main menu (lower first); flows without it are not listed.
    menu: int | None = None
    rev: str = ""

    @model_validator(mode="after")
    def _start_exists(self) -> Flow:
        if self.start not in self.steps:
            raise ValueError(f"'start' names step '{self.start}', which is not in 'steps'")
        return self

    def step(self, step_id: str) -> Step | None:
        return self.steps.get(step_id)


def dump(flow: Flow) -> dict[str, Any]:
    """The flow as plain data (YAML aliases restored), for snapshots."""
    return flow.model_dump(mode="json", by_alias=True, exclude_none=True)
