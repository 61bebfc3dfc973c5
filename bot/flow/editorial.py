"""Editorial warnings for content editors: what loads fine but a citizen should not read.

    editorial_warnings(flows_dir, knowledge_dir, rules) -> list[Problem]   all of them

Three checks, each a warning (`citizen-bot validate` prints them; they fail the run only
with --strict), each naming file:line:
  1. a message longer than a phone screen: more than `rules.max_chars` characters or
     `rules.max_lines` lines (steps' say/ask/invalid, answers);
  2. a text that states a fee ("50.000 đồng", "miễn phí", "lệ phí") or a deadline
     ("trong 30 ngày", "03 ngày làm việc") with no source: a flow step needs its own
     `source` or the flow's `sources`; an answer its `sources`;
  3. a source whose `checked` date is older than `rules.max_age_days` (or in the
     future: a typo), in flows, answers and communes.yaml;
  4. a handoff reason (`handoff: {reason: …}`, a choice's `handoff: …`) that
     knowledge/handoff.yaml does not word under `reasons:`: volunteers would read
     the bare code.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from bot.communes import COMMUNES_FILE
from bot.errors import FlowLoadError, Problem
from bot.flow.loader import SourceMap, flow_files, flow_with_lines
from bot.flow.model import Flow, Source
from bot.knowledge import answer_files, read_answer_file, source_map
from bot.text import nfc

ANSWERS_DIR = "answers"
HANDOFF_FILE = "handoff.yaml"

# A phone screen, as a citizen on a small Android phone sees a chat: about 12 short
# lines, or 600 characters once long lines wrap. Settings can change both.
MAX_CHARS = 600
MAX_LINES = 12
MAX_AGE_DAYS = 180

_UNIT = r"(?:ngày|tháng|năm|giờ|tuần)"
# Numbers of money: "50.000 đồng", "200.000đ", "10,000 dong", "VND 20.000".
_MONEY = r"\d[\d.,]*\s*(?:đồng|đ|vnđ|vnd|dong)\b|\bvn[dđ]\s*\d"
# A fee is stated when there is an amount, or when it is said to be free; the bare word
# ("nộp phí trực tuyến", "pay a fee") names a task, not a fact to source.
FEE = re.compile(
    rf"(?:(?:lệ phí|phí|fees?)\s*(?:là|is|:)?\s*)?(?:{_MONEY})"
    r"|\b(?:miễn phí|không mất phí|không thu phí|free of charge)\b|\bis free\b|\bfor free\b",
    re.IGNORECASE,
)
DEADLINE = re.compile(
    rf"\b(?:trong|trong vòng|chậm nhất|tối đa|quá)\s+\d+\s+{_UNIT}"
    # "sau 3 ngày" is a wait; "sau 15 giờ" is a time of day (after 3 pm).
    r"|\bsau\s+\d+\s+(?:ngày|tháng|năm|tuần)\b"
    rf"|(?<!ngày )\b\d+\s+ngày làm việc\b"
    r"|\bthời hạn\b|\bhạn chót\b"
    r"|\bwithin \d+ (?:working )?(?:days?|weeks?|months?|hours?)\b"
    r"|\b\d+ working days?\b|\bdeadline\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Rules:
    """The limits of the checks; `today` is fixed in tests."""

    max_chars: int = MAX_CHARS
    max_lines: int = MAX_LINES
    max_age_days: int = MAX_AGE_DAYS
    today: dt.date = field(default_factory=dt.date.today)


def editorial_warnings(flows_dir: Path, knowledge_dir: Path, rules: Rules) -> list[Problem]:
    """Every editorial warning of the content folders, sorted by file and line. Files that
    do not load are skipped: `validate` reports their errors already."""
    out: list[Problem] = []
    worded = _worded_reasons(knowledge_dir / HANDOFF_FILE)
    for path in flow_files(flows_dir):
        loaded = flow_with_lines(path)
        if loaded is not None:
            out += flow_warnings(*loaded, rules)
            if worded is not None:
                out += reason_warnings(*loaded, worded)
    for path in answer_files(knowledge_dir / ANSWERS_DIR):
        out += answer_warnings(path, rules)
    communes = knowledge_dir / COMMUNES_FILE
    if communes.is_file():
        out += communes_warnings(communes, rules)
    return sorted(out)


def flow_warnings(flow: Flow, src: SourceMap, rules: Rules) -> list[Problem]:
    """The three checks on one flow."""
    out: list[Problem] = []
    for index, source in enumerate(flow.sources):
        out += _stale(src.file, src.line("sources", index, "checked"), source, rules)
    for sid, step in flow.steps.items():
        here = ("steps", sid)
        sourced = bool(step.sources or flow.sources)
        for key in ("say", "ask", "invalid"):
            for lang, text in (getattr(step, key) or {}).items():
                line = src.line(*here, key, lang)
                out += _too_long(src.file, line, f"step '{sid}' {key} ({lang})", text, rules)
                if not sourced:
                    out += _unsourced(src.file, line, f"step '{sid}' {key} ({lang})", text)
        own = step.source
        sources = own if isinstance(own, tuple) else (own,) if own is not None else ()
        for index, source in enumerate(sources):
            path = (*here, "source", index) if isinstance(own, tuple) else (*here, "source")
            out += _stale(src.file, src.line(*path, "checked"), source, rules)
    return out


def reason_warnings(flow: Flow, src: SourceMap, worded: frozenset[str]) -> list[Problem]:
    """Handoff reasons of `flow` that handoff.yaml does not put in words."""
    out: list[Problem] = []
    for sid, step in flow.steps.items():
        found: list[tuple[str, tuple[str | int, ...]]] = []
        if step.handoff is not None:
            found.append((step.handoff.reason, ("steps", sid, "handoff", "reason")))
        for index, choice in enumerate(step.choices or ()):
            if choice.handoff is not None:
                found.append((choice.handoff, ("steps", sid, "choices", index, "handoff")))
        for reason, path in found:
            if reason not in worded:
                message = (
                    f"handoff reason '{reason}' has no words in knowledge/{HANDOFF_FILE}"
                    f" (under reasons:, vi and en): volunteers would see the bare code"
                )
                out.append(Problem(src.file, src.line(*path), message, "warning"))
    return out


def _worded_reasons(path: Path) -> frozenset[str] | None:
    """The reason codes handoff.yaml words, or None when it is missing or unreadable
    (`validate` reports that file on its own)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    reasons = data.get("reasons") if isinstance(data, dict) else None
    return frozenset(str(k) for k in reasons) if isinstance(reasons, dict) else None


def answer_warnings(path: Path, rules: Rules) -> list[Problem]:
    """The three checks on one answers file (knowledge/answers/*.yaml)."""
    read = read_answer_file(path)
    out: list[Problem] = []
    for number, entry in enumerate(read.entries):
        at = ("entries", number)
        for lang, text in entry.answer.items():
            line = read.source.line(*at, "answer", lang)
            what = f"answer '{entry.id}' ({lang})"
            out += _too_long(read.file, line, what, text, rules)
            if not entry.sources:  # the schema requires them; kept for older files
                out += _unsourced(read.file, line, what, text)
        for index, source in enumerate(entry.sources):
            line = read.source.line(*at, "sources", index, "checked")
            out += _stale(read.file, line, source, rules)
    return out


def communes_warnings(path: Path, rules: Rules) -> list[Problem]:
    """Stale sources in communes.yaml (the file's and each unit's)."""
    from bot.communes import load_communes

    try:
        communes = load_communes(path)
        src = source_map(str(path), path.read_text(encoding="utf-8-sig"))
    except (FlowLoadError, OSError, yaml.YAMLError):
        return []  # validate reports why it does not load
    out: list[Problem] = []
    if communes.source is not None:
        out += _stale(str(path), src.line("source", "checked"), communes.source, rules)
    for number, unit in enumerate(communes.units):
        for index, source in enumerate(unit.sources):
            line = src.line("units", number, "sources", index, "checked")
            out += _stale(str(path), line, source, rules)
    return out


def _too_long(file: str, line: int, what: str, text: str, rules: Rules) -> list[Problem]:
    chars, lines = len(nfc(text)), len(text.strip().splitlines())
    if chars <= rules.max_chars and lines <= rules.max_lines:
        return []
    plural = "" if lines == 1 else "s"
    message = f"{what} is {chars} characters in {lines} line{plural}, longer than a phone screen"
    message += f" ({rules.max_chars} characters, {rules.max_lines} lines): split it in two"
    message += " steps, or cut it"
    return [Problem(file, line, message, "warning")]


def _unsourced(file: str, line: int, what: str, text: str) -> list[Problem]:
    found = []
    for kind, pattern in (("fee", FEE), ("deadline", DEADLINE)):
        match = pattern.search(text)
        if match is not None:
            found.append((kind, match.group()))
    if not found:
        return []
    stated = " and ".join(f"a {kind} ('{words}')" for kind, words in found)
    message = f"{what} states {stated} but has no source: add 'source:"
    message += " {url: …, checked: …}' to the step, or 'sources:' to the flow"
    return [Problem(file, line, message, "warning")]


def _stale(file: str, line: int, source: Source, rules: Rules) -> list[Problem]:
    age = (rules.today - source.checked).days
    if age < 0:
        message = f"the source {source.url} says it was checked on {source.checked},"
        message += f" after today ({rules.today}): a typo?"
        return [Problem(file, line, message, "warning")]
    if age <= rules.max_age_days:
        return []
    message = f"the source {source.url} was checked {age} days ago ({source.checked}), more"
    message += f" than {rules.max_age_days}: check it again and update 'checked'"
    return [Problem(file, line, message, "warning")]
