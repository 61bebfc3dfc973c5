"""The content a running bot reads (flows/ and knowledge/), reloaded when files change.

    knowledge/messages.yaml     what the bot says outside flows (bot.phrases)
    knowledge/commands.yaml     global words and "I'm stuck" phrases (bot.phrases)
    knowledge/safety.yaml       scam cues, "a person please" cues, other topics (bot.safety)
    knowledge/answers/**/*.yaml answers to questions (bot.knowledge)

A broken edit never replaces what worked: each file keeps its last good version and the
problem is logged as `file:line: message`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bot.communes import COMMUNES_FILE, load_communes
from bot.errors import FlowLoadError, Problem
from bot.flow.engine import Content
from bot.flow.loader import FlowCatalog
from bot.knowledge import (
    AnswerFile,
    Entry,
    answer_files,
    lint_knowledge,
    read_answer_file,
    source_map,
)
from bot.phrases import CommandWords, Phrases, load_commands, load_phrases
from bot.router import Router
from bot.safety import Safety, load_safety

log = logging.getLogger(__name__)

MESSAGES_FILE = "messages.yaml"
COMMANDS_FILE = "commands.yaml"
SAFETY_FILE = "safety.yaml"
ANSWERS_DIR = "answers"

Stamp = tuple[int, int] | None


@dataclass(frozen=True)
class _Answers:
    """One answers file: the stamp last read, what that read gave, and the last good read."""

    stamp: Stamp
    read: AnswerFile
    good: AnswerFile | None


class ContentLibrary:
    """Owns the flow catalog and the knowledge files; `content()` is the current snapshot."""

    def __init__(
        self,
        *,
        flows_dir: Path,
        knowledge_dir: Path,
        max_failures: int = 2,
        max_chars: int = 4000,
    ) -> None:
        self.flows_dir = flows_dir
        self.knowledge_dir = knowledge_dir
        self._max_failures = max_failures
        self._max_chars = max_chars
        self.catalog = FlowCatalog(flows_dir)
        self._lock = threading.Lock()
        # Per knowledge file: the stamp last read and the problems that version had.
        self._seen: dict[Path, tuple[Stamp, tuple[Problem, ...]]] = {}
        self._answers: dict[Path, _Answers] = {}
        self._phrases: Phrases | None = None
        self._words: CommandWords | None = None
        self._safety: Safety | None = None
        self._knowledge: dict[str, Entry] = {}
        self._lint: tuple[Problem, ...] = ()  # across answers, flows and safety.yaml
        self._content: Content | None = None
        self._flows_seen: object = None
        # communes.yaml's stamp and its place names, for the router.
        self._places: tuple[Stamp, tuple[str, ...]] | None = None
        self.reload()
        if self._content is None:
            raise FlowLoadError(self.problems)

    @property
    def problems(self) -> tuple[Problem, ...]:
        knowledge = {p for _, problems in self._seen.values() for p in problems}
        knowledge |= {p for item in self._answers.values() for p in item.read.problems}
        return tuple(sorted(knowledge | set(self._lint) | set(self.catalog.problems)))

    @property
    def knowledge(self) -> dict[str, Entry]:
        """The answers in use, by id."""
        return dict(self._knowledge)

    def content(self) -> Content:
        """The content to use for one turn; immutable, safe to share across threads."""
        assert self._content is not None
        return self._content

    def reload(self) -> tuple[Problem, ...]:
        """Pick up edited files; cheap when nothing changed. Returns current problems."""
        with self._lock:
            knowledge_changed = self._reload_knowledge()
            knowledge_changed |= self._reload_answers()
            self.catalog.reload()
            flows = self.catalog.flows()
            ready = self._phrases is not None and self._words is not None
            # Never start without the scam cues of a safety.yaml that is there but
            # broken (a broken edit later keeps the last good version).
            ready &= self._safety is not None or not (self.knowledge_dir / SAFETY_FILE).exists()
            if ready and (knowledge_changed or flows is not self._flows_seen):
                self._flows_seen = flows
                self._rebuild()
            return self.problems

    def _rebuild(self) -> None:
        assert self._phrases is not None and self._words is not None
        flows = self.catalog.flows()
        good = [item.good for item in self._answers.values() if item.good is not None]
        knowledge, lint = lint_knowledge(good, flows=flows)
        safety = self._safety or Safety()
        lint += self._safety_lint(safety, knowledge)
        for problem in sorted(set(lint) - set(self._lint)):
            (log.error if problem.severity == "error" else log.warning)("%s", problem)
        self._lint = lint
        self._knowledge = knowledge
        self._content = Content(
            flows=self.catalog,
            phrases=self._phrases,
            router=Router(
                flows=flows,
                words=self._words,
                knowledge=knowledge,
                safety=safety,
                places=self._place_names(),
            ),
            knowledge=knowledge,
            max_failures=self._max_failures,
            max_chars=self._max_chars,
        )

    def _place_names(self) -> tuple[str, ...]:
        """`place_names()`, read again only when communes.yaml changed: any flow or
        answer edit rebuilds the router, and reading and checking that file takes a
        tenth of a second."""
        stamp = _stamp(self.knowledge_dir / COMMUNES_FILE)
        if self._places is None or self._places[0] != stamp:
            self._places = (stamp, place_names(self.knowledge_dir))
        return self._places[1]

    def _safety_lint(self, safety: Safety, knowledge: dict[str, Entry]) -> tuple[Problem, ...]:
        answer = safety.scam.answer
        if self._safety is None or answer is None or answer in knowledge:
            return ()
        path = self.knowledge_dir / SAFETY_FILE
        message = f"'scam' shows the answer '{answer}', which is not in {ANSWERS_DIR}/;"
        message += " without it the bot cannot warn about scams"
        return (Problem(str(path), _line_of(path, ("scam", "answer")), message),)

    def _reload_knowledge(self) -> bool:
        changed = False
        files: tuple[tuple[str, Callable[[Path], Any], str], ...] = (
            (MESSAGES_FILE, load_phrases, "_phrases"),
            (COMMANDS_FILE, load_commands, "_words"),
            (SAFETY_FILE, load_safety, "_safety"),
        )
        for name, loader, attr in files:
            path = self.knowledge_dir / name
            stamp = _stamp(path)
            if path in self._seen and self._seen[path][0] == stamp:
                continue
            try:
                value = loader(path)
            except FlowLoadError as exc:
                self._seen[path] = (stamp, exc.problems)
            except OSError as exc:
                self._seen[path] = (stamp, (Problem(str(path), 1, f"cannot read: {exc.strerror}"),))
            else:
                self._seen[path] = (stamp, ())
                setattr(self, attr, value)
                changed = True
            for problem in self._seen[path][1]:
                log.error("%s", problem)
        return changed

    def _reload_answers(self) -> bool:
        """Read the answers files that changed; a file that breaks keeps its last good
        entries, a file that is deleted takes its entries with it."""
        paths = answer_files(self.knowledge_dir / ANSWERS_DIR)
        changed = set(paths) != set(self._answers)
        answers: dict[Path, _Answers] = {}
        for path in paths:
            stamp = _stamp(path)
            old = self._answers.get(path)
            if old is not None and old.stamp == stamp:
                answers[path] = old
                continue
            read = read_answer_file(path)
            for problem in read.problems:
                log.error("%s", problem)
            good = read if not read.problems else (old.good if old else None)
            if read.problems and good is not None:
                log.error("%s: keeping the last good version", path)
            answers[path] = _Answers(stamp, read, good)
            changed = True
        self._answers = answers
        return changed


def place_names(knowledge_dir: Path) -> tuple[str, ...]:
    """The commune names of knowledge/communes.yaml, old and new, for the router (a
    place named is not an unknown word); none when the file is missing or broken (the
    commune guide reports its problems)."""
    try:
        communes = load_communes(knowledge_dir / COMMUNES_FILE)
    except (FlowLoadError, OSError):
        return ()
    return tuple(name for unit in communes.units for name in (unit.name, *unit.formed_from))


def _stamp(path: Path) -> Stamp:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


def _line_of(path: Path, key: tuple[str, ...]) -> int:
    try:
        return source_map(str(path), path.read_text(encoding="utf-8-sig")).line(*key)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return 1
