"""The content a running bot reads (flows/ and knowledge/), reloaded when files change.

A broken edit never replaces what worked: each part keeps its last good version and the
problem is logged as `file:line: message`.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from bot.errors import FlowLoadError, Problem
from bot.flow.engine import Content
from bot.flow.loader import FlowCatalog
from bot.phrases import CommandWords, Phrases, load_commands, load_phrases
from bot.router import Router

log = logging.getLogger(__name__)

MESSAGES_FILE = "messages.yaml"
COMMANDS_FILE = "commands.yaml"


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
        self._seen: dict[Path, tuple[tuple[int, int] | None, tuple[Problem, ...]]] = {}
        self._phrases: Phrases | None = None
        self._words: CommandWords | None = None
        self._content: Content | None = None
        self._flows_seen: object = None
        self.reload()
        if self._content is None:
            raise FlowLoadError(self.problems)

    @property
    def problems(self) -> tuple[Problem, ...]:
        knowledge = [p for _, problems in self._seen.values() for p in problems]
        return tuple(sorted(set(knowledge) | set(self.catalog.problems)))

    def content(self) -> Content:
        """The content to use for one turn; immutable, safe to share across threads."""
        assert self._content is not None
        return self._content

    def reload(self) -> tuple[Problem, ...]:
        """Pick up edited files; cheap when nothing changed. Returns current problems."""
        with self._lock:
            knowledge_changed = self._reload_knowledge()
            self.catalog.reload()
            flows = self.catalog.flows()
            ready = self._phrases is not None and self._words is not None
            if ready and (knowledge_changed or flows is not self._flows_seen):
                self._flows_seen = flows
                self._rebuild()
            return self.problems

    def _rebuild(self) -> None:
        assert self._phrases is not None and self._words is not None
        self._content = Content(
            flows=self.catalog,
            phrases=self._phrases,
            router=Router(flows=self.catalog.flows(), words=self._words),
            max_failures=self._max_failures,
            max_chars=self._max_chars,
        )

    def _reload_knowledge(self) -> bool:
        changed = False
        for name, loader, attr in (
            (MESSAGES_FILE, load_phrases, "_phrases"),
            (COMMANDS_FILE, load_commands, "_words"),
        ):
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


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)
