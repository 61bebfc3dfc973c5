"""Flow files → `Flow` models, every problem reported as `file:line: message`.

    load_flow_file(path)       one file → Flow, or FlowLoadError with all of its problems
    load_flows(directory)      every flow of a folder → LoadResult (good flows + problems)
    lint(flows, sources)       what the schema cannot check: targets, reachability, triggers…
    FlowCatalog(directory)     the server's flows, reloaded when files change; every
                               revision seen stays reachable for conversations running on it
    format_problems(problems)  the report the CLI prints
    load_yaml_model(path, M)   any other YAML content file → a pydantic model, same errors

A file is read once: composed into YAML nodes (line numbers, duplicate keys), constructed
into plain data, validated by `Flow`, then linted. In a flows folder, files and folders
whose name starts with "_" or ".", and the `tests/` subfolder, are not flows.
"""

from __future__ import annotations

import difflib
import hashlib
import logging
import re
import threading
import time
import types
import typing
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from bot.errors import ContentError, FlowLoadError, Problem
from bot.flow.model import ID_PATTERN, Flow, Step, pick

# Triggers and labels are compared as the router matches them: without case, diacritics
# (đ→d), punctuation or extra spaces, teencode expanded.
from bot.text import fold

logger = logging.getLogger(__name__)

NodePath = tuple[Any, ...]
M = TypeVar("M", bound=BaseModel)
REV_LENGTH = 12
# Telegram allows 64 bytes of callback data; the engine sends f"c:{flow}:{step}:{n}".
CALLBACK_LIMIT = 64
FLOW_SUFFIXES = (".yaml", ".yml")
# A file modified this recently may change again within the same mtime tick and size,
# so it is hashed again on the next reload (git's "racy clean" problem).
_RACY_NS = 2_000_000_000

_TEXT_KEYS = frozenset({"title", "description", "say", "ask", "invalid", "label"})
_SCALAR_TAGS = frozenset({"str", "int", "float", "bool", "none", "date", "datetime"})
_LISTS = {"choices": "choice", "branch": "rule", "sources": "source", "source": "source"}
_TYPE_WORDS = {
    "string_type": "text",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
}
_PLACEHOLDER = re.compile(r"\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}")
_BOOL_HINT = " (YAML reads yes, no, on and off as true or false: put the word in quotes, like 'no')"


@dataclass(frozen=True)
class SourceMap:
    """Where each key and list item of one flow file is: path → 1-based line."""

    file: str
    lines: Mapping[NodePath, int] = field(default_factory=dict)
    # Keys as written, where YAML turned them into something else (`no:` → False).
    names: Mapping[NodePath, str] = field(default_factory=dict)

    def line(self, *path: Any) -> int:
        """The line of `path`, or of its nearest ancestor present in the file."""
        for end in range(len(path), -1, -1):
            found = self.lines.get(path[:end])
            if found is not None:
                return found
        return 1


@dataclass(frozen=True)
class LoadResult:
    """The flows of a folder that loaded without errors, and every problem found."""

    flows: dict[str, Flow]
    problems: tuple[Problem, ...]

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity == "error")


@dataclass(frozen=True)
class _Parsed:
    """One file's content after the per-file checks."""

    file: str
    sha: str
    problems: tuple[Problem, ...]
    flow: Flow | None = None
    source: SourceMap | None = None
    raw_id: str | None = None  # the `id` written in the file, even if the flow is invalid

    @property
    def failed(self) -> bool:
        return _has_error(self.problems)


# ---------------------------------------------------------------- public API


def load_flow_file(path: Path) -> Flow:
    """Load one flow file with the checks that need no other flow (not `flow:` targets,
    duplicate ids or triggers); raise FlowLoadError listing every error in it."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FlowLoadError(
            [Problem(str(path), 1, f"cannot read the file: {exc.strerror}")]
        ) from exc
    parsed = _parse(str(path), data)
    if parsed.failed or parsed.flow is None:
        raise FlowLoadError([p for p in parsed.problems if p.severity == "error"])
    return parsed.flow


def flow_with_lines(path: Path) -> tuple[Flow, SourceMap] | None:
    """One flow file and the line of each of its keys, for editorial checks
    (bot.flow.editorial); None when the file does not load (`validate` says why)."""
    try:
        parsed = _parse(str(path), path.read_bytes())
    except OSError:
        return None
    if parsed.failed or parsed.flow is None or parsed.source is None:
        return None
    return parsed.flow, parsed.source


def load_yaml_model(
    path: Path, model: type[M], *, required: Mapping[str, Iterable[str]] | None = None
) -> M:
    """Read one YAML content file (not a flow) into `model`, with the same file:line
    problems as flows; `required` lists keys each top-level mapping must hold
    (`{"messages": ("welcome", …)}`). Raise FlowLoadError with every error."""
    file = str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FlowLoadError([Problem(file, 1, f"cannot read the file: {exc.strerror}")]) from exc
    raw, source, problems = _read_yaml(file, data)
    if source is not None and not isinstance(raw, dict):
        problems.append(Problem(file, source.line(), "the file must be a set of keys"))
    elif source is not None:
        problems += _missing_required(file, raw, source, required or {})
        try:
            loaded = model.model_validate(raw)
        except ValidationError as exc:
            problems += _schema_problems(file, exc, raw, source, model)
        else:
            if not _has_error(problems):
                return loaded
    raise FlowLoadError(sorted(p for p in problems if p.severity == "error"))


def load_flows(directory: Path) -> LoadResult:
    """Load every flow of `directory`: per-file checks, then checks across flows."""
    parsed = []
    for path in flow_files(directory):
        try:
            parsed.append(_parse(str(path), path.read_bytes()))
        except OSError as exc:
            parsed.append(_unreadable(str(path), exc))
    problems, good = _evaluate(parsed, extra_ids=())
    return LoadResult({flow.id: flow for flow in good.values()}, problems)


def flow_files(directory: Path) -> list[Path]:
    """The flow files of a folder, sorted; raise ContentError when it does not exist."""
    if not directory.is_dir():
        raise ContentError(f"the flows folder '{directory}' does not exist (FLOWS_DIR)")
    found = []
    for path in directory.rglob("*"):
        parts = path.relative_to(directory).parts
        if parts[0] == "tests" or any(part.startswith(("_", ".")) for part in parts):
            continue
        if path.suffix in FLOW_SUFFIXES and path.is_file():
            found.append(path)
    return sorted(found, key=str)


def lint(
    flows: Mapping[str, Flow],
    sources: Mapping[str, SourceMap] | None = None,
    *,
    known_ids: Collection[str] | None = None,
) -> list[Problem]:
    """Check valid flows for what the schema cannot see. `sources` (by flow id) gives
    file and lines; `known_ids` are the flows `flow:` may name (default: `flows`)."""
    sources = sources or {}
    items = [(flow, sources.get(fid) or SourceMap(f"<flow {fid}>")) for fid, flow in flows.items()]
    out = [p for flow, src in items for p in _lint_flow(flow, src)]
    out += _lint_across(items, set(flows) if known_ids is None else known_ids)
    return sorted(out)


def format_problems(problems: Iterable[Problem]) -> str:
    """One `file:line: message` a line, sorted, then a count; "" when there is none."""
    items = sorted(problems)
    if not items:
        return ""
    errors = sum(p.severity == "error" for p in items)
    warnings = len(items) - errors
    summary = f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}"
    return "\n".join([*map(str, items), summary])


class FlowCatalog:
    """The current good flows of a folder, and every revision loaded in this process.

    `reload()` is cheap when nothing changed (one stat a file), so a server calls it
    every few seconds. A file that stops loading keeps its last good version; a deleted
    file removes its flow. Readers never lock: each reload publishes new read-only
    mappings with a single assignment.
    """

    def __init__(self, directory: Path) -> None:
        flow_files(directory)  # a missing folder is a configuration error: fail at boot
        self.directory = directory
        self._lock = threading.Lock()  # one writer at a time; readers need none
        self._seen: dict[Path, _Seen] = {}
        self._last_good: dict[str, Flow] = {}  # file → its newest flow that loaded
        self._current: Mapping[str, Flow] = types.MappingProxyType({})
        self._revisions: Mapping[tuple[str, str], Flow] = types.MappingProxyType({})
        self._problems: tuple[Problem, ...] = ()
        self._kept: frozenset[tuple[str, str]] = frozenset()  # (file, rev) kept while broken
        self.reload()

    @property
    def problems(self) -> tuple[Problem, ...]:
        """The problems of the last change seen, sorted by file and line."""
        return self._problems

    def flows(self) -> Mapping[str, Flow]:
        """The current flows by id (a read-only snapshot)."""
        return self._current

    def get(self, flow_id: str) -> Flow | None:
        """The current version of a flow."""
        return self._current.get(flow_id)

    def revision(self, flow_id: str, rev: str) -> Flow | None:
        """Any revision of a flow loaded or added in this process."""
        return self._revisions.get((flow_id, rev))

    def add_revision(self, flow: Flow) -> None:
        """Keep an older revision (from a database snapshot) for the sessions on it."""
        if not flow.rev:
            raise ValueError(f"flow '{flow.id}' has no 'rev'; a revision needs one")
        with self._lock:
            if (flow.id, flow.rev) not in self._revisions:
                added = {**self._revisions, (flow.id, flow.rev): flow}
                self._revisions = types.MappingProxyType(added)

    def reload(self) -> tuple[Problem, ...]:
        """Load what changed since the last call; return the current problems."""
        with self._lock:
            try:
                paths = flow_files(self.directory)
            except ContentError as exc:
                logger.error("%s; keeping the flows loaded before", exc)
                return self._problems
            seen: dict[Path, _Seen] = {}
            changed = set(paths) != set(self._seen)
            for path in paths:
                old = self._seen.get(path)
                entry = _look(path, old)
                if entry is None:  # deleted while we looked
                    changed = True
                    continue
                changed |= old is None or entry.parsed is not old.parsed
                seen[path] = entry
            self._seen = seen
            if changed:
                self._rebuild()
            return self._problems

    def _rebuild(self) -> None:
        parsed = [self._seen[path].parsed for path in sorted(self._seen, key=str)]
        files = {p.file for p in parsed}
        stale = {f: flow for f, flow in self._last_good.items() if f in files}
        problems, good = _evaluate(parsed, extra_ids={flow.id for flow in stale.values()})
        current = {flow.id: flow for flow in good.values()}
        last_good = dict(good)
        kept = []
        for file, old in stale.items():
            if file not in good and old.id not in current:
                current[old.id] = old
                last_good[file] = old
                kept.append((file, old))
        before = set(self._problems)
        for problem in problems:
            if problem not in before:
                log = logger.error if problem.severity == "error" else logger.warning
                log("%s", problem)
        for file, old in kept:
            if (file, old.rev) not in self._kept:
                logger.error("%s: keeping the last good version (rev %s)", file, old.rev)
        self._kept = frozenset((file, old.rev) for file, old in kept)
        revisions = dict(self._revisions)
        for flow in current.values():
            revisions.setdefault((flow.id, flow.rev), flow)
        self._revisions = types.MappingProxyType(revisions)
        self._current = types.MappingProxyType(dict(sorted(current.items())))
        self._last_good = last_good
        self._problems = problems


@dataclass(frozen=True)
class _Seen:
    """What the catalog last saw of one file."""

    stat: tuple[int, int]  # mtime_ns, size
    settled: bool  # modified long enough ago for its stat to be trusted
    parsed: _Parsed


def _look(path: Path, old: _Seen | None) -> _Seen | None:
    """The file as it is now, parsed again only when its content changed."""
    try:
        st = path.stat()
        stat = (st.st_mtime_ns, st.st_size)
        if old is not None and old.stat == stat and old.settled:
            return old
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        unchanged = old is not None and old.parsed.sha == ""  # still unreadable
        return _Seen(
            (0, 0), False, old.parsed if old and unchanged else _unreadable(str(path), exc)
        )
    settled = time.time_ns() - st.st_mtime_ns > _RACY_NS
    sha = hashlib.sha256(data).hexdigest()
    if old is not None and old.parsed.sha == sha:
        return _Seen(stat, settled, old.parsed)
    return _Seen(stat, settled, _parse(str(path), data, sha))


# ---------------------------------------------------------------- one file


def _parse(file: str, data: bytes, sha: str | None = None) -> _Parsed:
    """Read one flow file: YAML, schema, then the checks within the flow."""
    sha = sha or hashlib.sha256(data).hexdigest()
    raw, source, problems = _read_yaml(file, data)
    if source is None:
        return _Parsed(file, sha, tuple(problems))
    if not isinstance(raw, dict):
        message = "a flow file must be a set of keys: id, version, title, start, steps…"
        return _Parsed(file, sha, (*problems, Problem(file, source.line(), message)))
    raw_id = raw.get("id") if isinstance(raw.get("id"), str) else None
    try:
        flow = Flow.model_validate(raw)
    except ValidationError as exc:
        problems += _schema_problems(file, exc, raw, source, Flow)
        return _Parsed(file, sha, tuple(sorted(problems)), source=source, raw_id=raw_id)
    flow = flow.model_copy(update={"rev": sha[:REV_LENGTH]})
    if "rev" in raw:
        message = "'rev' is set by the loader from the file's content; remove it"
        problems.append(Problem(file, source.line("rev"), message, "warning"))
    problems += _lint_flow(flow, source)
    return _Parsed(file, sha, tuple(sorted(problems)), flow, source, raw_id)


def _read_yaml(file: str, data: bytes) -> tuple[Any, SourceMap | None, list[Problem]]:
    """Plain data, where each part of it is, and the problems; no SourceMap when the
    YAML itself cannot be read."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return None, None, [Problem(file, line, "the file is not UTF-8 text")]
    loader = yaml.SafeLoader(text)
    root: yaml.Node | None = None
    try:
        root = loader.get_single_node()
        if root is None:
            return None, None, [Problem(file, 1, "the file is empty")]
        # Map lines before constructing: construction rewrites merge keys (`<<`) in place.
        source, problems = _map_nodes(file, root)
        return loader.construct_document(root), source, problems
    except yaml.MarkedYAMLError as exc:
        return None, None, [_yaml_problem(file, exc, text)]
    except yaml.reader.ReaderError as exc:
        line = text[: exc.position].count("\n") + 1
        message = f"the character {exc.character!r} is not allowed in a YAML file"
        return None, None, [Problem(file, line, message)]
    except (ValueError, TypeError) as exc:  # e.g. a date like 2025-13-01
        line = _bad_scalar_line(root) if root is not None else 1
        return None, None, [Problem(file, line, f"cannot read a value: {exc}")]
    finally:
        loader.dispose()


def _missing_required(
    file: str, raw: dict[Any, Any], source: SourceMap, required: Mapping[str, Iterable[str]]
) -> list[Problem]:
    out = []
    for section, keys in required.items():
        present = raw.get(section)
        if not isinstance(present, dict):
            continue  # the schema reports a missing or malformed section
        extra = [key for key in present if isinstance(key, str)]
        for key in keys:
            if key not in present:
                message = f"'{section}' needs the key '{key}'"
                close = _closest(key, extra)
                if close:
                    message += f"; is '{close[0]}' (line {source.line(section, close[0])}) it?"
                out.append(Problem(file, source.line(section), message))
    return out


def _unreadable(file: str, exc: OSError) -> _Parsed:
    return _Parsed(file, "", (Problem(file, 1, f"cannot read the file: {exc.strerror}"),))


def _map_nodes(file: str, root: yaml.Node) -> tuple[SourceMap, list[Problem]]:
    """Lines of every key and list item, and the keys given twice in one mapping."""
    lines: dict[NodePath, int] = {(): root.start_mark.line + 1}
    names: dict[NodePath, str] = {}
    problems: list[Problem] = []
    constructor = yaml.constructor.SafeConstructor()

    def walk(node: yaml.Node, path: NodePath, parents: frozenset[int]) -> None:
        if id(node) in parents:  # a recursive alias
            return
        parents = parents | {id(node)}
        if isinstance(node, yaml.MappingNode):
            first: dict[Any, int] = {}
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = _key_of(constructor, key_node)
                line = key_node.start_mark.line + 1
                if key in first:
                    where = _where(path, names)
                    message = f"the key '{key_node.value}' is given twice (first on line "
                    message += f"{first[key]}); YAML keeps only the last one"
                    problems.append(
                        Problem(file, line, f"{where}: {message}" if where else message)
                    )
                first[key] = line
                # The data keeps the last value, so the map points at the last one too.
                lines[(*path, key)] = line
                if isinstance(key_node, yaml.ScalarNode):
                    names[(*path, key)] = str(key_node.value)
                walk(value_node, (*path, key), parents)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                lines[(*path, index)] = item.start_mark.line + 1
                walk(item, (*path, index), parents)

    walk(root, (), frozenset())
    return SourceMap(file, lines, names), problems


def _key_of(constructor: yaml.constructor.SafeConstructor, node: yaml.Node) -> Any:
    """The Python value YAML gives a key (`no` → False), hashable."""
    if not isinstance(node, yaml.ScalarNode):
        return ("<complex key>", id(node))
    try:
        return constructor.construct_object(node)
    except (yaml.YAMLError, ValueError, TypeError):
        return node.value


def _bad_scalar_line(root: yaml.Node) -> int:
    """The line of the first scalar YAML cannot turn into a value."""
    constructor = yaml.constructor.SafeConstructor()
    stack = [root]
    while stack:
        node = stack.pop(0)
        if isinstance(node, yaml.ScalarNode):
            try:
                constructor.construct_object(node)
            except (yaml.YAMLError, ValueError, TypeError):
                return node.start_mark.line + 1
        elif isinstance(node, yaml.MappingNode):
            stack = [n for pair in node.value for n in pair] + stack
        elif isinstance(node, yaml.SequenceNode):
            stack = list(node.value) + stack
    return 1


_YAML_HINTS = (
    ("mapping values are not allowed", "a ':' is not allowed here: put the text in quotes"),
    ("expected <block end>", "the indentation does not match the lines above"),
    ("could not find expected ':'", "a ':' is missing after a key, or a text needs quotes"),
    ("expected ',' or ']'", "a [ ] list is not closed with ], or a text in it needs quotes"),
    ("expected ',' or '}'", "a { } is not closed with }, or a text in it needs quotes"),
    ("found unexpected end of stream", "a quoted text is not closed"),
    ("could not determine a constructor", "YAML tags (!!…) are not allowed in a flow file"),
)


def _yaml_problem(file: str, exc: yaml.MarkedYAMLError, text: str) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark else 1
    problem = exc.problem or "invalid YAML"
    if "'\\t'" in problem and mark is not None:
        before = text.splitlines()[mark.line][: mark.column] if text else ""
        if not before.strip(" \t") or before.rstrip().endswith("-"):
            return Problem(file, line, "a tab is used for indentation; use spaces")
        return Problem(file, line, "a tab is not allowed here; use spaces")
    message = next((hint for start, hint in _YAML_HINTS if problem.startswith(start)), problem)
    context = exc.context or ""
    opened = exc.context_mark.line + 1 if exc.context_mark else None
    if opened is not None and ("quoted" in context or "flow" in context):
        if "end of stream" in problem or "<stream end>" in problem:
            # At the end of the file the problem's own line says nothing: show the opening.
            return Problem(file, opened, message)
        if opened != line:
            message += f" (it opens on line {opened})"
    return Problem(file, line, message)


# ---------------------------------------------------------------- schema errors


def _schema_problems(
    file: str, exc: ValidationError, raw: Any, source: SourceMap, root: type[BaseModel]
) -> list[Problem]:
    """pydantic's errors in words a content editor can act on, each on its line."""
    found: dict[tuple[NodePath, bool], Problem] = {}
    for error in _one_union_branch(exc.errors(), raw):
        loc, is_key = _data_loc(error["loc"], raw)
        # Alternatives of a union (str | int | float…) share a loc: keep the first.
        if (loc, is_key) not in found:
            line = source.line(*loc)
            named = re.match(r"'(\w+)'", error["msg"].removeprefix("Value error, "))
            if error["type"] == "value_error" and named and (*loc, named[1]) in source.lines:
                line = source.line(*loc, named[1])  # "'start' names step…": on that key
            found[(loc, is_key)] = Problem(file, line, _describe(error, loc, is_key, source, root))
    return list(found.values())


def _is_tag(elem: Any) -> bool:
    """True for the names pydantic puts in a loc for union branches and validators."""
    if not isinstance(elem, str):
        return False
    return elem[:1].isupper() or "[" in elem or "-" in elem or elem in _SCALAR_TAGS


def _data_loc(loc: tuple[int | str, ...], raw: Any) -> tuple[NodePath, bool]:
    """The loc as a path into the data, without union tags; and whether it names a key."""
    out: list[Any] = []
    current: Any = raw
    is_key = False
    for elem in loc:
        if elem == "[key]":
            is_key = True
        elif isinstance(current, dict) and elem in current:
            out.append(elem)
            current = current[elem]
        elif isinstance(current, list) and isinstance(elem, int) and 0 <= elem < len(current):
            out.append(elem)
            current = current[elem]
        elif not _is_tag(elem):
            out.append(elem)  # a missing key, or deeper than the data goes
            current = None
    return tuple(out), is_key


def _one_union_branch(errors: list[ErrorDetails], raw: Any) -> list[ErrorDetails]:
    """Where a value may be a mapping or a list (`source`), keep only the errors of the
    branch that has the shape the editor wrote."""
    branches: dict[NodePath, set[str]] = {}
    tagged: list[tuple[ErrorDetails, NodePath | None, str]] = []
    for error in errors:
        loc = error["loc"]
        at = next((i for i, elem in enumerate(loc) if _is_tag(elem)), None)
        if at is None:
            tagged.append((error, None, ""))
            continue
        prefix, _ = _data_loc(loc[:at], raw)
        branches.setdefault(prefix, set()).add(str(loc[at]))
        tagged.append((error, prefix, str(loc[at])))
    keep: list[ErrorDetails] = []
    for error, branch_at, tag in tagged:
        if error["type"] == "too_short" and any(
            other["loc"][: len(error["loc"])] == error["loc"] and other is not error
            for other in errors
        ):
            continue  # pydantic counts the items that failed as missing: say only why
        if branch_at is not None and len(branches[branch_at]) > 1:
            value = _value_at(raw, branch_at)
            is_list_tag = tag.startswith(("tuple[", "list["))
            if isinstance(value, list) != is_list_tag and isinstance(value, list | dict):
                continue
        keep.append(error)
    return keep


def _value_at(raw: Any, path: NodePath) -> Any:
    for elem in path:
        try:
            raw = raw[elem]
        except (KeyError, IndexError, TypeError):
            return None
    return raw


def _describe(
    error: ErrorDetails, loc: NodePath, is_key: bool, source: SourceMap, root: type[BaseModel]
) -> str:
    kind = error["type"]
    if kind in ("extra_forbidden", "missing"):
        where = _where(loc[:-1], source.names)
        name = source.names.get(loc, str(loc[-1]))
        if kind == "extra_forbidden":
            text = f"unknown key '{name}'{_suggest_key(name, root, loc[:-1])}"
        else:
            text = f"the key '{name}' is missing"
    else:
        where = _where(loc, source.names)
        text = _plain_message(error, loc)
        if is_key:
            text = f"the name {text}"
    return f"{where}: {text}" if where else text


def _plain_message(error: ErrorDetails, loc: NodePath) -> str:
    kind, value = error["type"], error.get("input")
    ctx = error.get("ctx") or {}
    last = loc[-1] if loc else None
    if kind == "value_error":
        return error["msg"].removeprefix("Value error, ")
    if kind == "string_type" and isinstance(value, bool):
        return f"should be text, not {str(value).lower()}{_BOOL_HINT}"
    if kind in _TYPE_WORDS:
        return f"should be {_TYPE_WORDS[kind]}, not {_kind(value)}"
    if kind == "dict_type" and last in _TEXT_KEYS:
        return f'should be texts by language, like {{vi: "..."}}, not {_kind(value)}'
    if kind == "dict_type" and last == "triggers":
        return f'should be phrases by language, like {{vi: ["..."]}}, not {_kind(value)}'
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"should be a set of keys (key: value), not {_kind(value)}"
    if kind in ("tuple_type", "list_type"):
        return f"should be a list (lines starting with '- '), not {_kind(value)}"
    if kind == "string_pattern_mismatch" and ctx.get("pattern") == ID_PATTERN:
        return (
            f"'{value}' is not a valid name: use lowercase letters a-z, digits and _,"
            " starting with a letter"
        )
    if kind == "string_pattern_mismatch" and str(ctx.get("pattern", "")).startswith("^http"):
        return f"'{value}' should be a web address starting with https://"
    if kind == "too_short" and ctx.get("min_length") == 1:
        return "should not be empty"
    message = re.sub(r"^(Input|String|Tuple|List|Dictionary) should", "should", error["msg"])
    return message.replace(" after validation", "")


def _kind(value: Any) -> str:
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return f"the text '{value}'" if len(value) <= 30 else "a text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a set of keys"
    return type(value).__name__


def _where(path: NodePath, names: Mapping[NodePath, str]) -> str:
    """A path in the words of the file: "step 'hello', choice 2, 'goto'"."""
    parts: list[str] = []
    start = 0
    if len(path) >= 2 and path[0] == "steps":
        parts.append(f"step '{names.get(path[:2], path[1])}'")
        start = 2
    for index in range(start, len(path)):
        elem, before = path[index], path[index - 1] if index else None
        if elem in _LISTS and index + 1 < len(path) and isinstance(path[index + 1], int):
            continue  # said by the item's noun: "choice 2"
        if isinstance(elem, int) and not isinstance(elem, bool):
            noun = _LISTS.get(str(before), "item")
            parts.append(f"{noun} {elem + 1}")
        else:
            parts.append(f"'{names.get(path[: index + 1], elem)}'")
    return ", ".join(parts)


def _suggest_key(name: str, root: type[BaseModel], parent: NodePath) -> str:
    keys = _keys_at(root, parent)
    close = difflib.get_close_matches(name, keys, n=1, cutoff=0.6)
    if close:
        return f"; did you mean '{close[0]}'?"
    return f"; the keys allowed here are: {', '.join(keys)}" if keys else ""


def _keys_at(root: type[BaseModel], path: NodePath) -> list[str]:
    """The keys the schema allows in the mapping at `path`."""
    kind: Any = root
    for elem in path:
        kind = _child_type(kind, elem)
        if kind is None:
            return []
    keys = {
        info.alias or name
        for model in _alternatives(kind)
        if isinstance(model, type) and issubclass(model, BaseModel)
        for name, info in model.model_fields.items()
    }
    return sorted(keys - {"rev"})


def _alternatives(kind: Any) -> Iterator[Any]:
    """The types a value may have: through Annotated, Optional and unions."""
    origin = typing.get_origin(kind)
    if origin is typing.Annotated:
        yield from _alternatives(typing.get_args(kind)[0])
    elif origin is typing.Union or origin is types.UnionType:
        for arg in typing.get_args(kind):
            yield from _alternatives(arg)
    else:
        yield kind


def _child_type(kind: Any, elem: Any) -> Any:
    for alt in _alternatives(kind):
        if isinstance(alt, type) and issubclass(alt, BaseModel) and isinstance(elem, str):
            for name, info in alt.model_fields.items():
                if elem in (name, info.alias):
                    return info.annotation
        origin, args = typing.get_origin(alt), typing.get_args(alt)
        if origin is dict and len(args) == 2:
            return args[1]
        if origin is tuple and args and isinstance(elem, int):
            return args[0]
    return None


# ---------------------------------------------------------------- lint


def _lint_flow(flow: Flow, src: SourceMap) -> list[Problem]:
    """Checks within one valid flow: targets, reachability, exits, labels, placeholders."""
    out: list[Problem] = []

    def add(path: NodePath, message: str, severity: str = "error") -> None:
        out.append(Problem(src.file, src.line(*path), message, severity))

    steps = flow.steps
    # A mistyped target is taken to lead to the step it was meant for, so the typo is
    # reported once, not again as an unreachable step.
    meant: dict[str, str] = {}
    for sid, step in steps.items():
        here = ("steps", sid)
        for path, target in _step_targets(sid, step):
            if target not in steps:
                message = f"step '{sid}' goes to '{target}', which does not exist"
                add(path, message + _did_you_mean(target, steps))
                meant.update((target, close) for close in _closest(target, steps))
        # Choices always lead somewhere (the model checks each has a target).
        if not (step.end or step.targets() or step.choices or step.flow or step.handoff):
            add(here, f"step '{sid}' has no way out: add next: or end: true")
        if step.branch and all(rule.if_ is not None for rule in step.branch):
            message = f"step '{sid}': every branch rule has an 'if', so none may hold;"
            add((*here, "branch"), message + " add a last rule with only 'goto'", "warning")
        out += _duplicate_labels(src, sid, step)
        if _asks_for_a_secret(step):
            message = f"step '{sid}' asks the citizen to type a passcode, password or OTP;"
            add((*here, "ask"), message + " never ask for one: say to type it in the app only")
        last = len(step.choices) - 1 if step.choices else 0
        payload = f"c:{flow.id}:{sid}:{last}"
        if len(payload.encode()) > CALLBACK_LIMIT:
            message = f"step '{sid}': the button data '{payload}' is {len(payload.encode())}"
            add(here, message + f" bytes, over Telegram's {CALLBACK_LIMIT}; use shorter ids")
    for sid in steps.keys() - _reachable(flow, meant):
        add(("steps", sid), f"step '{sid}' is never reached from the start step '{flow.start}'")
    saved = {step.save for step in steps.values() if step.save}
    for path, text in _texts(flow):
        for name in dict.fromkeys(_PLACEHOLDER.findall(text)):
            if name not in saved:
                message = f"{_where(path[:-1], src.names)}: '{{{name}}}' is never saved in this"
                message += f" flow; add 'save: {name}' to the step that asks for it"
                add(path, message, "warning")
    return out


# Words that name a secret. An `ask` step whose answer is free text or a number and whose
# question names one of these would collect a secret in the chat: never allowed.
_SECRETS = ("passcode", "mat khau", "password", "otp", "ma xac thuc", "ma xac nhan", "ma pin")


def _asks_for_a_secret(step: Step) -> bool:
    if step.ask is None or (step.expect is not None and step.expect.type not in ("text", "number")):
        return False
    padded = [f" {fold(text)} " for text in step.ask.values()]
    return any(f" {word} " in text for text in padded for word in _SECRETS)


def _step_targets(sid: str, step: Step) -> Iterator[tuple[NodePath, str]]:
    here = ("steps", sid)
    if step.next:
        yield (*here, "next"), step.next
    for index, choice in enumerate(step.choices or ()):
        if choice.goto:
            yield (*here, "choices", index, "goto"), choice.goto
    for index, rule in enumerate(step.branch or ()):
        yield (*here, "branch", index, "goto"), rule.goto


def _flow_refs(flow: Flow) -> Iterator[tuple[NodePath, str]]:
    for sid, step in flow.steps.items():
        if step.flow:
            yield ("steps", sid, "flow"), step.flow
        for index, choice in enumerate(step.choices or ()):
            if choice.flow:
                yield ("steps", sid, "choices", index, "flow"), choice.flow


def _reachable(flow: Flow, meant: Mapping[str, str]) -> set[str]:
    seen, todo = {flow.start}, [flow.start]
    while todo:
        step = flow.steps.get(todo.pop())
        for written in step.targets() if step else ():
            target = meant.get(written, written)
            if target in flow.steps and target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def _duplicate_labels(src: SourceMap, sid: str, step: Step) -> list[Problem]:
    """Citizens type labels, so two labels that fold alike cannot be told apart."""
    out: list[Problem] = []
    choices = step.choices or ()
    langs = sorted({lang for choice in choices for lang in choice.label})
    reported: set[int] = set()
    for lang in langs:
        first: dict[str, int] = {}
        for index, choice in enumerate(choices):
            label = pick(choice.label, lang)
            other = first.setdefault(fold(label), index)
            if other != index and index not in reported:
                reported.add(index)
                line = src.line("steps", sid, "choices", index, "label")
                message = f"step '{sid}': choices {other + 1} and {index + 1} have the same"
                message += f" label '{label}'; citizens type labels, so make them differ"
                out.append(Problem(src.file, line, message))
    return out


def _texts(flow: Flow) -> Iterator[tuple[NodePath, str]]:
    """Every text of a flow with its path."""
    for key in ("title", "description"):
        for lang, text in (getattr(flow, key) or {}).items():
            yield (key, lang), text
    for sid, step in flow.steps.items():
        for key in ("say", "ask", "invalid"):
            for lang, text in (getattr(step, key) or {}).items():
                yield ("steps", sid, key, lang), text
        for index, choice in enumerate(step.choices or ()):
            for lang, text in choice.label.items():
                yield ("steps", sid, "choices", index, "label", lang), text


def _closest(name: str, options: Iterable[str]) -> list[str]:
    # 0.75 keeps 'doen' → 'done' but not 'nowhere' → 'other'.
    return difflib.get_close_matches(name, list(options), n=1, cutoff=0.75)


def _did_you_mean(name: str, options: Iterable[str]) -> str:
    close = _closest(name, options)
    return f"; did you mean '{close[0]}'?" if close else ""


def _lint_across(
    items: Sequence[tuple[Flow, SourceMap]], known_ids: Collection[str]
) -> list[Problem]:
    """Checks between flows: `flow:` targets exist, no trigger leads to two flows."""
    out: list[Problem] = []
    owners: dict[str, tuple[str, int, str]] = {}  # folded trigger → file, line, flow id
    for flow, src in sorted(items, key=lambda item: item[1].file):
        for lang, phrases in flow.triggers.items():
            for index, phrase in enumerate(phrases):
                key = fold(phrase)
                line = src.line("triggers", lang, index)
                file, first_line, owner = owners.setdefault(key, (src.file, line, flow.id))
                if key and owner != flow.id:
                    message = f"the trigger '{phrase}' is also a trigger of flow '{owner}'"
                    message += f" ({file}:{first_line}); a trigger must lead to one flow"
                    out.append(Problem(src.file, line, message))
        for path, target in _flow_refs(flow):
            if target not in known_ids:
                message = f"step '{path[1]}' enters flow '{target}', which is not in the folder"
                out.append(
                    Problem(src.file, src.line(*path), message + _did_you_mean(target, known_ids))
                )
    return out


def _evaluate(
    parsed: Sequence[_Parsed], extra_ids: Collection[str]
) -> tuple[tuple[Problem, ...], dict[str, Flow]]:
    """All problems of a folder, and its flows without errors (by file)."""
    problems = [p for item in parsed for p in item.problems]
    bad = {item.file for item in parsed if item.failed}
    owners: dict[str, _Parsed] = {}
    duplicates: set[str] = set()
    for item in sorted(parsed, key=lambda p: p.file):
        if item.raw_id is None:
            continue
        first = owners.setdefault(item.raw_id, item)
        if first is not item:
            line = item.source.line("id") if item.source else 1
            message = f"the flow id '{item.raw_id}' is already used by {first.file}"
            problems.append(Problem(item.file, line, message + "; give each flow its own id"))
            duplicates.add(item.file)
    # Flows with other errors are checked too, so one run reports everything.
    candidates = [
        (item.flow, item.source)
        for item in parsed
        if item.flow is not None and item.source is not None and item.file not in duplicates
    ]
    known = {item.raw_id for item in parsed if item.raw_id} | set(extra_ids)
    across = _lint_across(candidates, known)
    problems += across
    bad |= duplicates | {p.file for p in across if p.severity == "error"}
    good = {
        item.file: item.flow for item in parsed if item.flow is not None and item.file not in bad
    }
    return tuple(sorted(problems)), good


def _has_error(problems: Iterable[Problem]) -> bool:
    return any(p.severity == "error" for p in problems)
