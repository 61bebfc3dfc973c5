"""Cues that come before any topic: knowledge/safety.yaml, read into matchers.

    load_safety(path) -> Safety         raises FlowLoadError with file:line problems
    safety.scam.match(words)            the scam rule a folded message matches, or None
    safety.human.match(words)           the "I want a person" rule it matches, or None
    safety.offtopic.match(words)        the "about something else" rule it matches, or None
    safety.elsewhere                    messages about other things, by language
    safety.without_filler(words)        the words without politeness ("cho hỏi", "ạ")
    safety.places                       names of places other than the communes

A rule is a list of word lists (`match`); a message matches it when it holds a phrase of
each list, in that order, with at most `gap` other words between two of them. Phrases
are compared as the router compares everything: folded, whole words. Phrases under
`ignore` are masked first, so they never take part in a match ("hồ sơ" is not "họ").
A rule with `unless` lists does not hold when the message has a phrase of any of them:
"Zalo" is another app's topic unless the message also names a public service.
The file also lists messages each rule must catch (`examples`) and messages no rule may
catch (`never`); the loader checks both, so an edit that makes the cues too loose or too
tight is reported at its line before it reaches a citizen.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import Field

from bot.errors import FlowLoadError, Problem
from bot.flow.loader import SourceMap, load_yaml_model
from bot.flow.model import _Model
from bot.knowledge import ENTRY_ID, source_map
from bot.text import fold, stem

Phrase = tuple[str, ...]


class _Rule(_Model):
    match: tuple[str, ...] = Field(min_length=1)
    unless: tuple[str, ...] = ()
    gap: int = Field(default=4, ge=0, le=20)
    examples: tuple[str, ...] = ()


class _Section(_Model):
    answer: str | None = Field(default=None, pattern=ENTRY_ID)
    lists: dict[str, tuple[str, ...]]
    rules: dict[str, _Rule] = Field(min_length=1)
    ignore: tuple[str, ...] = ()
    never: tuple[str, ...] = ()


class _SafetyFile(_Model):
    scam: _Section
    human: _Section
    offtopic: _Section | None = None
    elsewhere: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    filler: tuple[str, ...] = ()
    places: tuple[str, ...] = ()


@dataclass(frozen=True)
class Rule:
    name: str
    parts: tuple[str, ...]  # list names, in order
    gap: int
    unless: tuple[str, ...] = ()  # list names that, when found, cancel the rule


@dataclass(frozen=True)
class Cues:
    """One section's rules, compiled. `answer` is the knowledge entry it leads to."""

    answer: str | None = None
    rules: tuple[Rule, ...] = ()
    # First folded word → the phrases starting with it, each with the list it is in.
    starts: Mapping[str, tuple[tuple[Phrase, str], ...]] = field(default_factory=dict)
    ignore: Mapping[str, tuple[Phrase, ...]] = field(default_factory=dict)

    def mentions(self, words: Sequence[str], name: str) -> bool:
        """True when the folded `words` hold a phrase of the list `name`."""
        masked = _mask(words, self.ignore) if self.ignore else words
        for i, word in enumerate(masked):
            for phrase, list_name in self.starts.get(word, ()):
                if list_name == name and tuple(masked[i : i + len(phrase)]) == phrase:
                    return True
        return False

    def match(self, words: Sequence[str]) -> str | None:
        """The name of the first rule the folded `words` match, or None."""
        if not self.rules:
            return None
        masked = _mask(words, self.ignore) if self.ignore else words
        found: dict[str, list[tuple[int, int]]] = {}
        for i, word in enumerate(masked):
            for phrase, name in self.starts.get(word, ()):
                end = i + len(phrase)
                if tuple(masked[i:end]) == phrase:
                    found.setdefault(name, []).append((i, end))
        if found:
            for rule in self.rules:
                if _holds(rule, found) and not any(name in found for name in rule.unless):
                    return rule.name
        return None


@dataclass(frozen=True)
class Safety:
    """The scam cues, the cues of a request for a person, the cues and examples (by
    language) of messages about other things, which the router must not answer."""

    scam: Cues = field(default_factory=Cues)
    human: Cues = field(default_factory=Cues)
    offtopic: Cues = field(default_factory=Cues)
    elsewhere: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    filler: Mapping[str, tuple[Phrase, ...]] = field(default_factory=dict)
    places: tuple[str, ...] = ()  # place names besides the communes (bot.router)

    def without_filler(self, words: Sequence[str]) -> list[str]:
        """The folded, stemmed `words` (bot.text.stem) without the filler phrases ("cho
        hỏi", "ạ", "please")."""
        if not self.filler:
            return list(words)
        return [w for w in _mask(words, self.filler) if w]


def _mask(words: Sequence[str], ignore: Mapping[str, tuple[Phrase, ...]]) -> list[str]:
    out = list(words)
    for i, word in enumerate(words):
        for phrase in ignore.get(word, ()):
            end = i + len(phrase)
            if tuple(words[i:end]) == phrase:
                out[i:end] = [""] * len(phrase)
    return out


def _holds(rule: Rule, found: Mapping[str, list[tuple[int, int]]]) -> bool:
    ends = {end for _, end in found.get(rule.parts[0], ())}
    for part in rule.parts[1:]:
        ends = {
            end
            for start, end in found.get(part, ())
            if any(0 <= start - before <= rule.gap for before in ends)
        }
        if not ends:
            return False
    return bool(ends)


def load_safety(path: Path) -> Safety:
    """Read safety.yaml; raise FlowLoadError naming file:line for each problem, including
    a rule that misses one of its examples and a `never` message that a rule matches."""
    data = load_yaml_model(path, _SafetyFile)
    file = str(path)
    src = source_map(file, path.read_text(encoding="utf-8-sig"))
    problems: list[Problem] = []
    sections: dict[str, Cues] = {}
    for key in ("scam", "human", "offtopic"):
        section: _Section | None = getattr(data, key)
        if section is None:
            continue
        found = _check(file, src, key, section)
        if not found:
            sections[key] = _compile(section)
            found = _verify(file, src, key, section, sections[key])
        problems += found
    if problems:
        raise FlowLoadError(sorted(problems))
    return Safety(
        scam=sections["scam"],
        human=sections["human"],
        offtopic=sections.get("offtopic", Cues()),
        elsewhere=data.elsewhere,
        filler=_phrases(data.filler, stemmed=True),
        places=data.places,
    )


def _check(file: str, src: SourceMap, key: str, section: _Section) -> list[Problem]:
    out = []
    for name, rule in section.rules.items():
        for field_name in ("match", "unless"):
            for index, part in enumerate(getattr(rule, field_name)):
                if part not in section.lists:
                    message = f"rule '{name}' uses the list '{part}', which is not under 'lists'"
                    line = src.line(key, "rules", name, field_name, index)
                    out.append(Problem(file, line, message))
    for name, phrases in section.lists.items():
        for index, phrase in enumerate(phrases):
            if not fold(phrase):
                message = f"list '{name}': the phrase '{phrase}' has no letters or digits"
                out.append(Problem(file, src.line(key, "lists", name, index), message))
    return out


def _verify(file: str, src: SourceMap, key: str, section: _Section, cues: Cues) -> list[Problem]:
    out = []
    for name, rule in section.rules.items():
        alone = Cues(cues.answer, tuple(r for r in cues.rules if r.name == name), cues.starts)
        alone = Cues(alone.answer, alone.rules, alone.starts, cues.ignore)
        for index, example in enumerate(rule.examples):
            if alone.match(fold(example).split()) is None:
                message = f"rule '{name}' does not match its example '{example}'"
                out.append(Problem(file, src.line(key, "rules", name, "examples", index), message))
    for index, text in enumerate(section.never):
        matched = cues.match(fold(text).split())
        if matched is not None:
            message = f"rule '{matched}' matches '{text}', which is listed under 'never'"
            out.append(Problem(file, src.line(key, "never", index), message))
    return out


def _compile(section: _Section) -> Cues:
    starts: dict[str, list[tuple[Phrase, str]]] = {}
    for name, phrases in section.lists.items():
        for phrase in phrases:
            words = tuple(fold(phrase).split())
            if (words, name) not in starts.setdefault(words[0], []):
                starts[words[0]].append((words, name))
    rules = tuple(
        Rule(name, rule.match, rule.gap, rule.unless) for name, rule in section.rules.items()
    )
    return Cues(
        answer=section.answer,
        rules=rules,
        starts={k: tuple(v) for k, v in starts.items()},
        ignore=_phrases(section.ignore),
    )


def _phrases(texts: Sequence[str], *, stemmed: bool = False) -> dict[str, tuple[Phrase, ...]]:
    """Folded phrases by their first word, longest first; `stemmed`: English words by
    their stem, as the phrase index reads messages."""
    out: dict[str, list[Phrase]] = {}
    for text in texts:
        words = tuple(fold(text).split())
        if stemmed:
            words = tuple(map(stem, words))
        if words:
            out.setdefault(words[0], []).append(words)
    return {k: tuple(sorted(v, key=len, reverse=True)) for k, v in out.items()}
