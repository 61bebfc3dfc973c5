"""What one conversation step costs, with and without the engine, in memory and on SQLite.

Four loops replay one scripted conversation, alternating in rounds so machine noise hits
them alike; each figure is the median over rounds:

    engine          build Incoming → resume() → session to JSON and back → read events
    baseline        the same loop with a pre-recorded turn instead of resume()
    store           ConversationService.handle(): the engine and the store write, one tx
    store baseline  the same transaction with the pre-recorded session, events, outbox

Run with `make bench` (`python -m bench.engine --help`); bench/README.md explains each
figure. Nothing here asserts on speed.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import math
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

from bot.content import ContentLibrary
from bot.conversation import ConversationService
from bot.errors import FlowLoadError
from bot.flow.engine import Content, Turn, flow_payload, resume
from bot.flow.events import (
    AnswerAccepted,
    Asked,
    FlowEnded,
    FlowStarted,
    HandoffRequested,
    outgoing_text,
)
from bot.flow.model import Expect, Flow
from bot.flow.session import EMPTY, Session
from bot.messages import Button, Incoming, Outgoing
from bot.store import Store
from bot.text import fold

ROOT = Path(__file__).resolve().parents[1]
FLOW_ID = "vneid_activate"
CHANNEL = "bench"
LOOPS = ("engine", "baseline", "store", "store_baseline")
# A walk longer than this is taken for a loop in the content.
MAX_MESSAGES = 150
# A step in memory is ~20x cheaper than one with the store: the in-memory loops run
# more conversations a round, so each loop runs long enough to time well.
ENGINE_FACTOR = 20
# About 40 s on 2 cores (the store loops take ~70 ms a conversation); --quick about 5 s.
DEFAULT_ROUNDS = 7
DEFAULT_CONVERSATIONS = 24
QUICK_ROUNDS = 3
QUICK_CONVERSATIONS = 6

# Used when the flow asked for does not load or cannot be walked to its end.
DEMO_FLOW_ID = "bench_demo"
DEMO_FLOW = """\
id: bench_demo
version: 1
title: {vi: "Thử cài ứng dụng", en: "Try installing the app"}
triggers: {vi: ["thử cài ứng dụng"], en: ["try installing the app"]}
start: intro
steps:
  intro:
    say: {vi: "Mình hướng dẫn bạn từng bước một."}
    next: phone
  phone:
    say: {vi: "Bạn dùng điện thoại gì?"}
    save: phone_type
    choices:
      - {label: {vi: "iPhone"}, goto: year, value: iphone}
      - {label: {vi: "Điện thoại Android"}, goto: year, value: android}
      - {label: {vi: "Cần người giúp"}, handoff: asked_human}
  year:
    ask: {vi: "Bạn sinh năm nào?"}
    expect: {type: number, min: 1900, max: 2026}
    save: birth_year
    invalid: {vi: "Bạn nhập năm sinh bằng số, ví dụ 1965."}
    next: store
  store:
    say: {vi: "Bạn mở kho ứng dụng, tìm chữ VNeID."}
    choices:
      - {label: {vi: "Đã thấy"}, goto: install}
      - {label: {vi: "Không thấy"}, goto: help}
  install:
    say: {vi: "Bạn bấm Cài đặt và chờ một chút."}
    choices:
      - {label: {vi: "Đã cài xong"}, goto: confirm}
      - {label: {vi: "Bị lỗi"}, goto: help}
  confirm:
    ask: {vi: "Bạn đã mở được ứng dụng chưa?"}
    expect: {type: yes_no}
    save: opened
    next: result
  result:
    branch:
      - if: {var: opened, equals: true}
        goto: done
      - goto: help
  help:
    say: {vi: "Không sao, mình nhờ tình nguyện viên giúp bạn."}
    handoff: {reason: install_fail}
  done:
    say: {vi: "Xong rồi. Chúc bạn thành công."}
    end: true
"""


class BenchError(Exception):
    """The benchmark cannot run as set up (no flow to walk, a replay that diverged)."""


@dataclass(frozen=True)
class Message:
    """One scripted message: typed `text`, or a pressed button's `payload`."""

    text: str = ""
    payload: str | None = None


@dataclass(frozen=True)
class Recorded:
    """A scripted message and the turn the engine answered it with."""

    message: Message
    turn: Turn
    outgoing: tuple[tuple[str, tuple[Button, ...]], ...]


@dataclass(frozen=True)
class Script:
    """A conversation that walks `flow_id` from its trigger to its end."""

    flow_id: str
    rev: str
    steps: tuple[Recorded, ...]

    @property
    def presses(self) -> int:
        return sum(1 for r in self.steps if r.message.payload is not None)


@dataclass(frozen=True)
class Options:
    rounds: int
    conversations: int  # a round, for each store loop
    engine_conversations: int  # a round, for each in-memory loop
    flow_id: str
    flows_dir: Path
    knowledge_dir: Path


# -- the scripted citizen ---------------------------------------------------------------


def walk(content: Content, flow_id: str) -> Script:
    """Drive `flow_id` from its trigger to its end, answering each turn from the buttons
    the engine just showed: so the script follows the content as it is today.

    The citizen alternates pressing a button and typing its label without diacritics
    (as many do), picks the first choice that does not call a volunteer, and answers
    typed questions with a value of the expected type.
    """
    flow = content.flows.get(flow_id)
    if flow is None:
        raise BenchError(f"flow '{flow_id}' is not loaded")
    message = _opening(flow)
    session = EMPTY
    steps: list[Recorded] = []
    for _ in range(MAX_MESSAGES):
        turn = resume(content, session, _incoming(message, "walk"))
        steps.append(Recorded(message, turn, _rendered(turn)))
        session = turn.session
        if len(steps) == 1 and not any(
            isinstance(e, FlowStarted) and e.flow_id == flow_id for e in turn.events
        ):
            raise BenchError(f"'{message.text or message.payload}' did not start '{flow_id}'")
        if any(isinstance(e, HandoffRequested) for e in turn.events):
            raise BenchError(f"the walk of '{flow_id}' reached a volunteer handoff")
        if any(
            isinstance(e, FlowEnded) and e.flow_id == flow_id and e.completed for e in turn.events
        ):
            return Script(flow_id, flow.rev, tuple(steps))
        message = _reply(content, turn, typed=_typed_next(message, turn))
    raise BenchError(f"the walk of '{flow_id}' did not end within {MAX_MESSAGES} messages")


def _opening(flow: Flow) -> Message:
    triggers = flow.triggers.get("vi") or ()
    if triggers:
        return Message(text=fold(triggers[0]))
    return Message(payload=flow_payload(flow.id))


def _typed_next(previous: Message | None, turn: Turn) -> bool:
    # Type after a press that was understood; press after typing (or after a typed
    # label the engine did not take), so a misread label cannot derail the walk.
    if previous is None or previous.payload is None:
        return False
    return any(isinstance(e, AnswerAccepted) for e in turn.events)


def _reply(content: Content, turn: Turn, *, typed: bool) -> Message:
    asked = next((e for e in reversed(turn.events) if isinstance(e, Asked)), None)
    frame = turn.session.current
    if asked is None or frame is None:
        raise BenchError("the engine stopped asking before the flow ended")
    flow = content.flows.revision(frame.flow_id, frame.rev) or content.flows.get(frame.flow_id)
    step = flow.step(frame.step_id) if flow else None
    if flow is None or step is None:
        raise BenchError(f"step '{frame.flow_id}.{frame.step_id}' vanished")
    if step.choices is None:
        return Message(text=_answer(step.expect))
    prefix = f"c:{flow.id}:{frame.step_id}:"
    for button in asked.buttons:
        index = button.payload.removeprefix(prefix)
        if index == button.payload or not index.isdigit():
            continue  # a volunteer or menu button
        if step.choices[int(index)].handoff is None:
            return Message(text=fold(button.label)) if typed else Message(payload=button.payload)
    raise BenchError(f"step '{flow.id}.{frame.step_id}' offers only a volunteer")


def _answer(expect: Expect | None) -> str:
    """A plausible typed answer, as an elderly citizen types it (no diacritics)."""
    kind = expect.type if expect else "text"
    low = expect.min if expect else None
    high = expect.max if expect else None
    if kind == "yes_no":
        return "co roi"
    if kind == "phone":
        return "0912345678"
    if kind in ("number", "date"):
        lo, hi = low if low is not None else 1940, high if high is not None else 1990
        middle = int((lo + hi) / 2)
        return f"15/8/{middle}" if kind == "date" else str(middle)
    return "Nguyen Van An"


def _incoming(message: Message, chat_id: str, message_id: str | None = None) -> Incoming:
    return Incoming(
        channel=CHANNEL,
        chat_id=chat_id,
        text=message.text,
        payload=message.payload,
        message_id=message_id,
        user_id=chat_id,
    )


def _rendered(turn: Turn) -> tuple[tuple[str, tuple[Button, ...]], ...]:
    return tuple(r for r in map(outgoing_text, turn.events) if r is not None)


# -- the measured loops ---------------------------------------------------------------


@dataclass
class Timing:
    """What one loop measured in one round."""

    ns: int = 0
    steps: int = 0
    samples: list[int] = field(default_factory=list)  # ns of each step (store loops)

    @property
    def us_per_step(self) -> float:
        return self.ns / self.steps / 1000


# Runs one conversation of a loop, adding what it measured to the Timing.
Conversation = Callable[[Timing], None]


class Bench:
    """The content, the store and the script shared by the four loops."""

    def __init__(self, options: Options, library: ContentLibrary, script: Script, db: Path) -> None:
        self.options = options
        self.content = library.content()
        self.script = script
        self.store = Store(f"sqlite:///{db}")
        self.store.create_all()
        self.service = ConversationService(store=self.store, library=library)
        self._chats = itertools.count()

    def close(self) -> None:
        self.store.dispose()

    def _chat_id(self, tag: str) -> str:
        return f"{tag}{next(self._chats)}"

    def engine(self, timing: Timing) -> None:
        self._in_memory(timing, use_engine=True)

    def baseline(self, timing: Timing) -> None:
        self._in_memory(timing, use_engine=False)

    def _in_memory(self, timing: Timing, *, use_engine: bool) -> None:
        content, steps = self.content, self.script.steps
        chat_id = self._chat_id("m")
        session = EMPTY
        start = time.perf_counter_ns()
        for recorded in steps:
            incoming = _incoming(recorded.message, chat_id)
            turn = resume(content, session, incoming) if use_engine else recorded.turn
            # What the store does with a session: JSON out, JSON back next message.
            session = Session.from_json(json.loads(json.dumps(turn.session.to_json())))
            for event in turn.events:
                outgoing_text(event)
        timing.ns += time.perf_counter_ns() - start
        timing.steps += len(steps)

    def stored(self, timing: Timing) -> None:
        self._stored(timing, self._handle)

    def stored_baseline(self, timing: Timing) -> None:
        self._stored(timing, self._write_recorded)

    def _stored(self, timing: Timing, step: Callable[[Recorded, str, str], None]) -> None:
        clock = time.perf_counter_ns
        chat_id = self._chat_id("s")  # a new conversation row, as a new citizen makes
        for n, recorded in enumerate(self.script.steps):
            start = clock()
            step(recorded, chat_id, f"{chat_id}:{n}")
            took = clock() - start
            timing.samples.append(took)
            timing.ns += took
        timing.steps += len(self.script.steps)

    def _handle(self, recorded: Recorded, chat_id: str, message_id: str) -> None:
        handled = self.service.handle(_incoming(recorded.message, chat_id, message_id))
        if handled.duplicate:
            raise BenchError(f"message {message_id} was taken for a duplicate")

    def _write_recorded(self, recorded: Recorded, chat_id: str, message_id: str) -> None:
        """`ConversationService.handle()` without the engine: the same transaction."""
        incoming = _incoming(recorded.message, chat_id, message_id)
        session = recorded.turn.session
        with self.store.conversation(
            channel=incoming.channel, chat_id=incoming.chat_id, user_id=incoming.user_id
        ) as tx:
            if not tx.record_inbound(incoming):
                raise BenchError(f"message {message_id} was taken for a duplicate")
            tx.load_session()
            if session.lang != tx.lang:
                tx.set_lang(session.lang)
            tx.save_session(session)
            tx.record_events(recorded.turn.events)
            tx.queue_outgoing(
                tuple(Outgoing(chat_id=chat_id, text=t, buttons=b) for t, b in recorded.outgoing)
            )

    def check_replay(self) -> None:
        """Warm every path once (flow snapshots, statement caches) and check that a
        replay through resume() and through handle() answers as the walk recorded."""
        session = EMPTY
        for recorded in self.script.steps:
            turn = resume(self.content, session, _incoming(recorded.message, "check"))
            if turn.events != recorded.turn.events:
                raise BenchError("a replay through resume() diverged from the walk")
            session = turn.session
        chat_id = self._chat_id("w")
        for n, recorded in enumerate(self.script.steps):
            message = _incoming(recorded.message, chat_id, f"{chat_id}:{n}")
            if self.service.handle(message).events != recorded.turn.events:
                raise BenchError("a replay through handle() diverged from the walk")
        self.stored_baseline(Timing())


# -- running and reporting ------------------------------------------------------------


def interleave(first: Conversation, second: Conversation, count: int) -> tuple[Timing, Timing]:
    """`count` conversations of each loop, one of each in turn, the one going first
    alternating: whatever the machine does meanwhile hits both alike."""
    a, b = Timing(), Timing()
    for n in range(count):
        pair = ((first, a), (second, b)) if n % 2 == 0 else ((second, b), (first, a))
        for run, timing in pair:
            run(timing)
    return a, b


def measure(bench: Bench) -> dict[str, list[Timing]]:
    """Each round: the in-memory pair and the store pair, interleaved; which pair runs
    first flips each round. Returns each loop's Timing of every round."""
    rounds: dict[str, list[Timing]] = {name: [] for name in LOOPS}
    options = bench.options
    pairs = [
        ("engine", bench.engine, "baseline", bench.baseline, options.engine_conversations),
        ("store", bench.stored, "store_baseline", bench.stored_baseline, options.conversations),
    ]
    for n in range(options.rounds):
        for name_a, run_a, name_b, run_b, count in pairs if n % 2 == 0 else pairs[::-1]:
            gc.collect()  # each pair starts from the same heap; the collector stays on
            a, b = interleave(run_a, run_b, count)
            rounds[name_a].append(a)
            rounds[name_b].append(b)
    return rounds


def figures(rounds: dict[str, list[Timing]]) -> dict[str, float]:
    """The reported numbers, in µs unless named otherwise; ratios are medians of the
    ratios of each round, whose loops ran side by side."""
    engine, base, store, store_base = ([t.us_per_step for t in rounds[n]] for n in LOOPS)
    samples = {n: [ns for t in rounds[n] for ns in t.samples] for n in LOOPS[2:]}
    med = statistics.median
    return {
        "engine_us": med(engine),
        "baseline_us": med(base),
        "engine_ratio": med(e / b for e, b in zip(engine, base, strict=True)),
        "engine_net_us": med(e - b for e, b in zip(engine, base, strict=True)),
        "engine_steps_per_s": 1e6 / med(engine),
        "baseline_steps_per_s": 1e6 / med(base),
        "store_us": med(store),
        "store_baseline_us": med(store_base),
        "store_ratio": med(s / b for s, b in zip(store, store_base, strict=True)),
        "store_engine_share": med(1 - b / s for s, b in zip(store, store_base, strict=True)),
        "store_steps_per_s": 1e6 / med(store),
        "store_p50_us": percentile(samples["store"], 50) / 1000,
        "store_p99_us": percentile(samples["store"], 99) / 1000,
        "store_baseline_p50_us": percentile(samples["store_baseline"], 50) / 1000,
        "store_baseline_p99_us": percentile(samples["store_baseline"], 99) / 1000,
    }


def percentile(samples: Sequence[int], p: float) -> float:
    """Nearest-rank percentile: the smallest sample with at least p% at or below it."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    return float(ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1])


def report(
    options: Options,
    script: Script,
    rounds: dict[str, list[Timing]],
    figs: dict[str, float],
    *,
    journal: str,
    note: str,
) -> str:
    """The table printed above the JSON line."""
    steps = len(script.steps)
    cpus = os.cpu_count() or 0
    lines = [
        f"citizen-bot engine benchmark: {options.rounds} rounds, medians over rounds",
        f"flow      {script.flow_id} rev {script.rev}: {steps} messages a conversation "
        f"({script.presses} button presses, {steps - script.presses} typed)",
        f"machine   {platform.system()} {platform.machine()}, {cpus} CPUs, "
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version} "
        f"(temp file, journal_mode={journal})",
        f"per round in memory {options.engine_conversations} conversations "
        f"({options.engine_conversations * steps} steps) a loop; with the store "
        f"{options.conversations} ({options.conversations * steps} steps) a loop",
    ]
    if note:
        lines.append(f"note      {note}")
    head = (
        f"{'loop':<38}{'µs/step':>9}{'rounds min-max':>17}{'steps/s':>9}{'p50 µs':>9}{'p99 µs':>9}"
    )
    lines += ["", head, "-" * len(head)]
    rows = [
        ("engine: resume() in memory", "engine", None),
        ("baseline: same loop, no resume()", "baseline", None),
        ("store: handle(), engine + SQLite tx", "store", "store"),
        ("store baseline: same tx, no engine", "store_baseline", "store_baseline"),
    ]
    for label, key, pct in rows:
        us = figs[f"{key}_us"]
        each = [t.us_per_step for t in rounds[key]]
        spread = f"{min(each):.1f}-{max(each):.1f}"
        line = f"{label:<38}{us:>9.1f}{spread:>17}{1e6 / us:>9,.0f}"
        if pct is not None:
            line += f"{figs[f'{pct}_p50_us']:>9.0f}{figs[f'{pct}_p99_us']:>9.0f}"
        lines.append(line)
    lines += [
        "",
        f"engine / baseline             {figs['engine_ratio']:6.1f}x   "
        f"(engine's own cost {figs['engine_net_us']:.1f} µs/step)",
        f"store / store baseline        {figs['store_ratio']:6.2f}x",
        f"engine share of a stored step {figs['store_engine_share'] * 100:6.1f}%   "
        f"(1 - store baseline / store; the engine's own cost in memory is "
        f"{figs['engine_net_us'] / figs['store_us'] * 100:.1f}% of a stored step)",
    ]
    return "\n".join(lines)


def load_script(options: Options, scratch: Path) -> tuple[ContentLibrary, Script, str]:
    """The library and a walk of the flow asked for, or of the demo flow when that flow
    is missing, broken or cannot be walked to its end (the note says why)."""
    try:
        library = ContentLibrary(flows_dir=options.flows_dir, knowledge_dir=options.knowledge_dir)
        return library, walk(library.content(), options.flow_id), ""
    except (FlowLoadError, BenchError) as exc:
        note = f"{options.flow_id} not usable ({exc}); walked the built-in demo flow instead"
    flows = scratch / "flows"
    flows.mkdir()
    (flows / f"{DEMO_FLOW_ID}.yaml").write_text(DEMO_FLOW, encoding="utf-8")
    library = ContentLibrary(flows_dir=flows, knowledge_dir=options.knowledge_dir)
    return library, walk(library.content(), DEMO_FLOW_ID), note


def parse_options(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.engine",
        description="Cost of one conversation step, with and without the engine.",
    )
    parser.add_argument("--quick", action="store_true", help="a ~5 s run, for a first look")
    parser.add_argument("--rounds", type=int, help=f"rounds (default {DEFAULT_ROUNDS})")
    parser.add_argument(
        "--conversations",
        type=int,
        help=f"conversations a round for each store loop (default {DEFAULT_CONVERSATIONS}); "
        f"the in-memory loops run {ENGINE_FACTOR}x as many",
    )
    parser.add_argument("--flow", default=FLOW_ID, help=f"flow to walk (default {FLOW_ID})")
    parser.add_argument("--flows-dir", type=Path, default=ROOT / "flows")
    parser.add_argument("--knowledge-dir", type=Path, default=ROOT / "knowledge")
    args = parser.parse_args(argv)
    rounds = args.rounds or (QUICK_ROUNDS if args.quick else DEFAULT_ROUNDS)
    conversations = args.conversations or (
        QUICK_CONVERSATIONS if args.quick else DEFAULT_CONVERSATIONS
    )
    if rounds < 1 or conversations < 1:
        parser.error("--rounds and --conversations must be at least 1")
    return Options(
        rounds=rounds,
        conversations=conversations,
        engine_conversations=conversations * ENGINE_FACTOR,
        flow_id=args.flow,
        flows_dir=args.flows_dir,
        knowledge_dir=args.knowledge_dir,
    )


def main(argv: Sequence[str] | None = None) -> dict[str, float | int | str]:
    """Run the benchmark, print the table and a JSON line; return what the line holds."""
    options = parse_options(argv)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="citizen-bot-bench-") as scratch:
        library, script, note = load_script(options, Path(scratch))
        db = Path(scratch) / "bench.db"
        bench = Bench(options, library, script, db)
        try:
            bench.check_replay()
            rounds = measure(bench)
        finally:
            bench.close()
        with closing(sqlite3.connect(db)) as connection:  # WAL is kept in the file
            journal = str(connection.execute("PRAGMA journal_mode").fetchone()[0])
    figs = figures(rounds)
    print(report(options, script, rounds, figs, journal=journal, note=note))
    result: dict[str, float | int | str] = {k: round(v, 4) for k, v in figs.items()}
    result |= {
        "rounds": options.rounds,
        "conversations": options.conversations,
        "engine_conversations": options.engine_conversations,
        "steps_per_conversation": len(script.steps),
        "flow": f"{script.flow_id}@{script.rev}",
        "journal_mode": journal,
        "elapsed_s": round(time.perf_counter() - started, 2),
    }
    print(json.dumps(result, ensure_ascii=False))
    sys.stdout.flush()
    return result


if __name__ == "__main__":
    main()
