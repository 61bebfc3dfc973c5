"""Decides what one free-text message is: a global word, a flow to start, a knowledge
answer, a request for a human, or nothing we know (clarify / fallback).

The engine asks, in this order: `command()` (a global word, the whole message), then the
active step's own answer parser, then `is_stuck()`, then `route()`. Matching is done on
folded text (no diacritics, teencode expanded), so "kich hoat vneid" finds "Kích hoạt VNeID".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from rapidfuzz import fuzz, process

from bot.flow.model import Flow
from bot.phrases import CommandWords
from bot.text import fold

RouteKind = Literal["flow", "answer", "command", "clarify", "human", "fallback"]

# Scores are rapidfuzz 0-100. ACCEPT: go straight there; CLARIFY: offer as "did you mean".
ACCEPT = 82.0
CLARIFY = 62.0
# When the best two candidates are this close, ask instead of guessing.
MARGIN = 4.0


@dataclass(frozen=True)
class Route:
    kind: RouteKind
    id: str | None = None
    score: float = 0.0
    candidates: tuple[tuple[RouteKind, str, float], ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class _Phrase:
    kind: RouteKind
    id: str
    folded: str


class Router:
    """Built once per content version; `route()` is pure and cheap."""

    def __init__(self, *, flows: Mapping[str, Flow], words: CommandWords) -> None:
        self._commands: dict[str, str] = {}
        for name, spoken in words.commands.items():
            for phrase in spoken:
                self._commands[fold(phrase)] = name
        self._stuck = tuple(f" {fold(p)} " for p in words.stuck)
        self._human = tuple(f" {fold(p)} " for p in words.commands.get("human", ()))
        phrases: list[_Phrase] = []
        for flow in flows.values():
            for triggers in flow.triggers.values():
                phrases += [_Phrase("flow", flow.id, fold(t)) for t in triggers]
        self._phrases = tuple(p for p in phrases if p.folded)
        self._choices = [p.folded for p in self._phrases]

    def command(self, text: str) -> str | None:
        """The global word the whole message is, if any ("/menu", "Quay lại", "stop")."""
        return self._commands.get(fold(text.lstrip().lstrip("/")))

    def is_stuck(self, text: str) -> bool:
        """The citizen says it does not work for them ("ko dc", "bị lỗi")."""
        padded = f" {fold(text)} "
        return any(p in padded for p in self._stuck)

    def wants_human(self, text: str) -> bool:
        padded = f" {fold(text)} "
        return any(p in padded for p in self._human)

    def route(self, text: str) -> Route:
        """Where a free-text message should go, with the score that decided it."""
        folded = fold(text)
        if not folded:
            return Route("fallback")
        name = self.command(text)
        if name is not None:
            return Route("human" if name == "human" else "command", name, 100.0)
        if self.wants_human(text):
            return Route("human", "human", 100.0)
        ranked = _best_per_id(
            (self._phrases[i], score)
            for _, score, i in process.extract(
                folded, self._choices, scorer=fuzz.token_set_ratio, limit=10
            )
        )
        if not ranked:
            return Route("fallback")
        top_phrase, top = ranked[0]
        candidates = tuple((p.kind, p.id, s) for p, s in ranked[:3])
        runner_up = ranked[1][1] if len(ranked) > 1 else 0.0
        if top >= ACCEPT and top - runner_up >= MARGIN:
            return Route(top_phrase.kind, top_phrase.id, top, candidates)
        close = tuple(c for c in candidates if c[2] >= CLARIFY and top - c[2] < 2 * MARGIN + 6)
        if top >= CLARIFY and close:
            return Route("clarify", None, top, close)
        return Route("fallback", None, top, candidates)


def _best_per_id(scored: Iterable[tuple[_Phrase, float]]) -> list[tuple[_Phrase, float]]:
    best: dict[tuple[str, str], tuple[_Phrase, float]] = {}
    for phrase, score in scored:
        key = (phrase.kind, phrase.id)
        if key not in best or score > best[key][1]:
            best[key] = (phrase, float(score))
    return sorted(best.values(), key=lambda ps: -ps[1])
