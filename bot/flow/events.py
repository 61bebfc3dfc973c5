"""What the engine decided, as plain data. The caller stores and delivers them.

Events are named in the past tense. `Said` and `Asked` carry text for the citizen,
already in their language; the others are facts kept for volunteers and coordinators.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any

from bot.messages import Button


@dataclass(frozen=True)
class Event:
    @property
    def kind(self) -> str:
        return type(self).__name__

    def data(self) -> dict[str, Any]:
        # `asdict` without its deep copy of every string: events hold immutable values,
        # and this runs for each event stored (a tenth of a stored step with asdict).
        return _plain(self)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Said(Event):
    """A message to the citizen that needs no answer."""

    text: str
    buttons: tuple[Button, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Asked(Event):
    """A message to the citizen that waits for an answer at `step`."""

    text: str
    buttons: tuple[Button, ...]
    flow_id: str
    step_id: str


@dataclass(frozen=True)
class FlowStarted(Event):
    flow_id: str
    version: int
    rev: str


@dataclass(frozen=True)
class FlowEnded(Event):
    """`completed` is False when the citizen left, switched topic, or the flow vanished."""

    flow_id: str
    completed: bool
    reason: str = ""


@dataclass(frozen=True)
class FlowRestarted(Event):
    """The flow changed under a running conversation and its step is gone."""

    flow_id: str
    old_rev: str
    new_rev: str
    step_id: str


@dataclass(frozen=True)
class AnswerAccepted(Event):
    flow_id: str
    step_id: str
    var: str | None


@dataclass(frozen=True)
class AnswerRejected(Event):
    """The citizen's answer did not fit; `attempt` counts failures at this step."""

    flow_id: str
    step_id: str
    attempt: int


@dataclass(frozen=True)
class HandoffRequested(Event):
    """A human volunteer should take over. `flow_id`/`step_id` say where the citizen was."""

    reason: str
    flow_id: str | None = None
    step_id: str | None = None


@dataclass(frozen=True)
class HandoffOffered(Event):
    """The bot offered a volunteer (the citizen has not asked yet)."""

    reason: str
    flow_id: str | None = None
    step_id: str | None = None


@dataclass(frozen=True)
class CommandUsed(Event):
    name: str


@dataclass(frozen=True)
class AnswerShown(Event):
    """A knowledge answer was shown."""

    answer_id: str
    score: float


@dataclass(frozen=True)
class NotUnderstood(Event):
    """Nothing matched; `misses` counts fallbacks in a row."""

    misses: int
    flow_id: str | None = None
    step_id: str | None = None


@dataclass(frozen=True)
class LanguageChanged(Event):
    lang: str


@dataclass(frozen=True)
class StaleButtonPressed(Event):
    payload: str


@dataclass(frozen=True)
class MediaReceived(Event):
    media_kind: str


def outgoing_text(event: Event) -> tuple[str, tuple[Button, ...]] | None:
    """Text and buttons for the citizen, if the event carries any."""
    if isinstance(event, Said | Asked):
        return event.text, event.buttons
    return None


@dataclass(frozen=True)
class ForgetRequested(Event):
    """The citizen asked to delete their data; the caller deletes it."""


def _plain(value: Any) -> Any:
    """`dataclasses.asdict` for the values events hold: dataclasses become dicts, lists
    and tuples keep their type, anything else (str, int, None) is shared, not copied."""
    names = _field_names(type(value))
    if names is not None:
        return {name: _plain(getattr(value, name)) for name in names}
    if isinstance(value, list | tuple):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


_FIELD_NAMES: dict[type, tuple[str, ...] | None] = {}


def _field_names(kind: type) -> tuple[str, ...] | None:
    """A dataclass's field names, else None; found once a type (`fields()` builds
    them again on each call, for every event stored)."""
    try:
        return _FIELD_NAMES[kind]
    except KeyError:
        names = tuple(f.name for f in fields(kind)) if is_dataclass(kind) else None
        return _FIELD_NAMES.setdefault(kind, names)
