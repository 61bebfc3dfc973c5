"""Answers from knowledge/: short, sourced replies to what citizens ask.

One YAML file holds a list of entries under `entries:` (knowledge/answers/*.yaml):

    entries:
      - id: vneid_forgot_password
        title: {vi: "Quên mật khẩu VNeID", en: "Forgot the VNeID password"}
        examples:                      # how citizens ask; the router learns from these
          vi: ["quên mật khẩu vneid", "quen mat khau vneid"]
          en: ["forgot my vneid password"]
        answer:
          vi: "1. Mở ứng dụng VNeID.\\n2. Bấm \\"Quên mật khẩu\\"..."
          en: "1. Open the VNeID app.\\n2. ..."
        buttons:                       # optional, at most 3
          - {label: {vi: "Kích hoạt tài khoản", en: "Activate"}, flow: vneid_activate}
          - {label: {vi: "Cần người giúp", en: "Talk to a person"}, human: true}
          - {label: {vi: "Trang chính thức", en: "Official page"}, url: "https://vneid.gov.vn"}
        sources:                       # at least one: official page, date checked
          - {url: "https://…", checked: 2026-11-30, title: "…"}

    load_knowledge(directory, flows=…) -> (entries by id, problems)   every file, then lint
    read_answer_file(path) -> AnswerFile      one file; problems as file:line, never raised
    lint_knowledge(files, flows=…)            across files: ids, flow buttons, examples
    answer_files(directory)                   the files, at any depth ("_" and "." skipped)

The index that finds an answer for a message is bot/index.py; the router (bot/router.py)
feeds it every example and title.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, model_validator

from bot.errors import FlowLoadError, Problem
from bot.flow.loader import SourceMap, load_yaml_model
from bot.flow.model import Flow, FlowId, LocalText, Source, _Model
from bot.text import fold

ENTRY_ID = r"^[a-z][a-z0-9_]*$"
SUFFIXES = (".yaml", ".yml")


class AnswerButton(_Model):
    """A button under an answer: start a flow, call a volunteer, or open a page."""

    label: LocalText
    flow: FlowId | None = None
    human: bool = False
    url: str | None = Field(default=None, pattern=r"^https?://")

    @model_validator(mode="after")
    def _one_target(self) -> AnswerButton:
        if sum((self.flow is not None, self.human, self.url is not None)) != 1:
            raise ValueError("a button needs exactly one of: flow, human, url")
        return self


class Entry(_Model):
    """One answer the bot can give."""

    id: str = Field(pattern=ENTRY_ID, max_length=40)
    title: LocalText
    examples: dict[str, tuple[str, ...]]
    answer: LocalText
    buttons: tuple[AnswerButton, ...] = Field(default=(), max_length=3)
    sources: tuple[Source, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _has_vietnamese_examples(self) -> Entry:
        if not self.examples.get("vi"):
            raise ValueError("'examples' needs Vietnamese questions under 'vi'")
        return self


class KnowledgeFile(_Model):
    entries: tuple[Entry, ...] = Field(min_length=1)


# ---------------------------------------------------------------- loading and lint


@dataclass(frozen=True)
class AnswerFile:
    """One answers file as read: its entries (none when it failed) and their lines."""

    file: str
    entries: tuple[Entry, ...]
    source: SourceMap
    problems: tuple[Problem, ...] = ()


def answer_files(directory: Path) -> list[Path]:
    """The answers files under `directory` (any depth), sorted; none if it is missing.
    Files and folders whose name starts with "_" or "." are skipped, as in flows/."""
    if not directory.is_dir():
        return []
    found = []
    for path in directory.rglob("*"):
        parts = path.relative_to(directory).parts
        if any(part.startswith(("_", ".")) for part in parts):
            continue
        if path.suffix in SUFFIXES and path.is_file():
            found.append(path)
    return sorted(found, key=str)


def read_answer_file(path: Path) -> AnswerFile:
    """Read one answers file; its problems (file:line) are in the result, never raised."""
    try:
        loaded = load_yaml_model(path, KnowledgeFile)
        source = source_map(str(path), path.read_text(encoding="utf-8-sig"))
    except FlowLoadError as exc:
        return AnswerFile(str(path), (), SourceMap(str(path)), exc.problems)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:  # changed between reads
        return AnswerFile(str(path), (), SourceMap(str(path)), (Problem(str(path), 1, str(exc)),))
    return AnswerFile(str(path), loaded.entries, source)


def load_knowledge(
    directory: Path, *, flows: Mapping[str, Flow] | None = None
) -> tuple[dict[str, Entry], tuple[Problem, ...]]:
    """Every answer under `directory` by id, and every problem as file:line. `flows` (by
    id), when given, lets the lint check flow buttons and ids shared with flows."""
    files = [read_answer_file(path) for path in answer_files(directory)]
    entries, across = lint_knowledge(files, flows=flows)
    problems = [p for f in files for p in f.problems] + list(across)
    return entries, tuple(sorted(problems))


def lint_knowledge(
    files: Sequence[AnswerFile], *, flows: Mapping[str, Flow] | None = None
) -> tuple[dict[str, Entry], tuple[Problem, ...]]:
    """Checks across answers files, and the entries to use.

    Errors: an id used twice (the first one is kept), an id that is also a flow's (the
    flow is kept), a button starting a flow that does not exist (the button is dropped).
    Warnings: an example that two answers (or an answer and a flow trigger) share."""
    out: list[Problem] = []
    entries: dict[str, Entry] = {}
    where: dict[str, str] = {}
    # Folded example → (whose, where): citizens' words must lead to one place.
    examples: dict[str, tuple[str, str]] = {}
    for flow in (flows or {}).values():
        for phrases in flow.triggers.values():
            for phrase in phrases:
                examples.setdefault(fold(phrase), (f"flow '{flow.id}'", f"flow {flow.id}"))
    for item in sorted(files, key=lambda f: f.file):
        for index, entry in enumerate(item.entries):
            at = _At(item.file, item.source, ("entries", index))
            if entry.id in entries:
                message = f"the answer id '{entry.id}' is already used at {where[entry.id]};"
                out.append(at.problem(("id",), message + " give each answer its own id"))
                continue
            if flows is not None and entry.id in flows:
                message = f"the answer id '{entry.id}' is also the id of a flow: a button or"
                out.append(at.problem(("id",), message + " the router could mean either"))
                continue
            entry, dropped = _usable_buttons(entry, at, flows)
            out += dropped
            entries[entry.id] = entry
            where[entry.id] = f"{item.file}:{at.line('id')}"
            out += _shared_examples(entry, at, examples)
    return entries, tuple(sorted(out))


@dataclass(frozen=True)
class _At:
    """Where one entry is, to name lines in its problems."""

    file: str
    source: SourceMap
    entry: tuple[Any, ...]

    def line(self, *path: Any) -> int:
        return self.source.line(*self.entry, *path)

    def problem(self, path: tuple[Any, ...], message: str, severity: str = "error") -> Problem:
        return Problem(self.file, self.line(*path), message, severity)


def _usable_buttons(
    entry: Entry, at: _At, flows: Mapping[str, Flow] | None
) -> tuple[Entry, list[Problem]]:
    """The entry without buttons that start a flow that does not exist, and why."""
    if flows is None:
        return entry, []
    problems = []
    keep = []
    for number, button in enumerate(entry.buttons):
        if button.flow is not None and button.flow not in flows:
            message = f"button {number + 1} starts flow '{button.flow}', which is not in the"
            message += " flows folder" + _did_you_mean(button.flow, flows)
            problems.append(at.problem(("buttons", number, "flow"), message))
        else:
            keep.append(button)
    if problems:
        entry = entry.model_copy(update={"buttons": tuple(keep)})
    return entry, problems


def _shared_examples(entry: Entry, at: _At, examples: dict[str, tuple[str, str]]) -> list[Problem]:
    out = []
    mine = f"answer '{entry.id}'"
    for lang, phrases in entry.examples.items():
        for number, phrase in enumerate(phrases):
            key = fold(phrase)
            path = ("examples", lang, number)
            owner, first = examples.setdefault(key, (mine, f"{at.file}:{at.line(*path)}"))
            if key and owner != mine:
                message = f"the example '{phrase}' is also an example of {owner} ({first});"
                message += " the router cannot tell them apart"
                out.append(at.problem(path, message, "warning"))
    return out


def _did_you_mean(name: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(options), n=1, cutoff=0.75)
    return f"; did you mean '{close[0]}'?" if close else ""


def source_map(file: str, text: str) -> SourceMap:
    """The line of every key and list item of a YAML text (text already known valid)."""
    lines: dict[tuple[Any, ...], int] = {}
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    stack: list[tuple[yaml.Node, tuple[Any, ...]]] = [(root, ())] if root is not None else []
    while stack:
        node, path = stack.pop()
        lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    lines[(*path, key.value)] = key.start_mark.line + 1
                    stack.append((value, (*path, key.value)))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, (*path, index)) for index, item in enumerate(node.value))
    return SourceMap(file, lines)
