"""What the bot says outside flows, and its global words: knowledge/messages.yaml and
knowledge/commands.yaml, as immutable objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import Field

from bot.flow.loader import load_yaml_model
from bot.flow.model import LocalText, _Model, pick

MESSAGE_KEYS = (
    "welcome",
    "menu_fallback",
    "help",
    "not_understood",
    "empty_message",
    "too_long",
    "invalid_choice",
    "invalid_text",
    "invalid_number",
    "invalid_date",
    "invalid_phone",
    "invalid_yes_no",
    "offer_human",
    "step_hard",
    "handoff_started",
    "back_at_start",
    "stopped",
    "forgotten",
    "stale_button",
    "flow_updated",
    "flow_gone",
    "media_received",
    "media_offer",
    "did_you_mean",
    "language_changed",
    "internal_error",
    "done",
)
BUTTON_KEYS = ("human", "menu", "retry")
COMMANDS = (
    "start",
    "menu",
    "back",
    "restart",
    "help",
    "human",
    "stop",
    "forget",
    "lang_vi",
    "lang_en",
)


class _MessagesFile(_Model):
    messages: dict[str, LocalText]
    buttons: dict[str, LocalText]
    media: dict[str, LocalText] = Field(default_factory=dict)


class _CommandsFile(_Model):
    commands: dict[str, dict[str, tuple[str, ...]]]
    stuck: dict[str, tuple[str, ...]] = Field(default_factory=dict)


class _SafeDict(dict[str, object]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def fill(template: str, values: Mapping[str, object]) -> str:
    """`template` with `{name}` replaced from `values`; unknown names stay as they are."""
    try:
        return template.format_map(_SafeDict(values))
    except (ValueError, IndexError, AttributeError):
        return template  # a stray brace in content must not crash a conversation


@dataclass(frozen=True)
class Phrases:
    """The bot's own texts, in every language the file has."""

    messages: Mapping[str, Mapping[str, str]]
    buttons: Mapping[str, Mapping[str, str]]
    media: Mapping[str, Mapping[str, str]]

    def text(self, key: str, lang: str, **values: object) -> str:
        return fill(pick(self.messages[key], lang), values)

    def button(self, key: str, lang: str) -> str:
        return pick(self.buttons[key], lang)

    def media_name(self, kind: str, lang: str) -> str:
        names = self.media.get(kind) or self.media.get("other")
        return pick(names, lang) if names else kind


@dataclass(frozen=True)
class CommandWords:
    """Global words by command name, and the phrases that say "I'm stuck"."""

    commands: Mapping[str, tuple[str, ...]]
    stuck: tuple[str, ...]


def load_phrases(path: Path) -> Phrases:
    """Read messages.yaml; raises FlowLoadError naming file:line for each problem."""
    data = load_yaml_model(
        path, _MessagesFile, required={"messages": MESSAGE_KEYS, "buttons": BUTTON_KEYS}
    )
    return Phrases(messages=data.messages, buttons=data.buttons, media=data.media)


def load_commands(path: Path) -> CommandWords:
    """Read commands.yaml; raises FlowLoadError naming file:line for each problem."""
    data = load_yaml_model(path, _CommandsFile, required={"commands": COMMANDS})
    commands = {
        name: tuple(p for ps in by_lang.values() for p in ps)
        for name, by_lang in data.commands.items()
    }
    stuck = tuple(p for ps in data.stuck.values() for p in ps)
    return CommandWords(commands=commands, stuck=stuck)
