"""Tune the router's scoring and thresholds on the labelled tuning sets.

    .venv/bin/python -m bench.tune_router            # the full grid, several minutes
    .venv/bin/python -m bench.tune_router --quick    # a small scoring grid, under a minute
    .venv/bin/python -m bench.tune_router --dev tests/router/eval_dev.yaml   # one set
    .venv/bin/python -m bench.tune_router --current  # the shipped values' figures only

The tuning data is tests/router/eval_dev.yaml, eval_tune_1.yaml, eval_tune_2.yaml and
eval_tune_3.yaml (earlier held-out sets, retired into tuning data once their failures had
been seen; see tests/router/README.md). Never point it at eval_holdout.yaml: that set
measures what this tuning did.

Prints the figures on the tuning set over a grid of scoring settings and thresholds:
accuracy, wrong confident answers, out-of-scope messages answered (must be 0) or
clarified (tolerated), and the values chosen, to copy into bot/router.py with the
figures.

A message counts as right as tests/router/test_eval.py counts it: a labelled message
needs that id with kind flow or answer; a human request needs kind human; an
out-of-scope one needs kind fallback.

Stage 1 tries every scoring setting, each with its best (accept, margin); stage 2
searches accept, margin, clarify and window for the best scoring setting. A point is
judged by the mean objective of its neighbours on the (accept, margin) grid as well as its
own, so a lone lucky point on 149 messages does not win; among equal points the middle
one is taken. The objective is (right - 2 x wrong answers) / messages, and any threshold
that answers an out-of-scope message is out.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bot.content import place_names
from bot.flow.loader import load_flows
from bot.index import Scoring
from bot.knowledge import load_knowledge
from bot.phrases import load_commands
from bot.router import ELSEWHERE, SCORING, Route, Router, Thresholds
from bot.safety import load_safety

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT / "tests" / "router" / "eval_dev.yaml"
TUNING = (
    DEV,
    ROOT / "tests" / "router" / "eval_tune_1.yaml",
    ROOT / "tests" / "router" / "eval_tune_2.yaml",
    ROOT / "tests" / "router" / "eval_tune_3.yaml",
)

ACCEPTS = tuple(float(a) for a in range(36, 92, 2))
MARGINS = tuple(float(m) for m in range(0, 22, 2))
CLARIFIES = tuple(float(c) for c in range(20, 72, 2))
WINDOWS = (5.0, 10.0, 15.0, 20.0, 30.0)
# A confident wrong answer costs this many right ones: the bot must not answer wrongly.
WRONG_COST = 2.0


@dataclass(frozen=True)
class Labelled:
    text: str
    want: str | None  # an id, "human", or None for out of scope


@dataclass(frozen=True)
class Case:
    """One message as the router saw it before thresholds."""

    want: str | None
    early: Route | None  # decided before the index: no threshold changes it
    top: str | None = None  # the best target's id (None: no hit)
    elsewhere: bool = False  # the best target is "about something else"
    score: float = 0.0
    runner_up: float = 0.0
    offers: tuple[tuple[str, float], ...] = ()  # the best 3 real targets


@dataclass(frozen=True)
class Figures:
    right: int
    wrong: int  # answered (flow/answer) with the wrong id, or answered when out of scope
    oos_answered: int
    oos_clarified: int
    clarified: int  # in-scope messages sent to clarify
    clarify_has_right: int  # ... with the right id among the buttons
    total: int

    @property
    def accuracy(self) -> float:
        return self.right / self.total

    @property
    def objective(self) -> float:
        if self.oos_answered:
            return -1.0
        return (self.right - WRONG_COST * self.wrong) / self.total


def read_labelled(path: Path) -> list[Labelled]:
    """The messages of an eval file: {text, id} / {text, kind: human} / {text, id: null}."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    out = []
    for item in data["messages"]:
        want = "human" if item.get("kind") == "human" else item.get("id")
        out.append(Labelled(str(item["text"]), want))
    return out


def is_right(route: Route, want: str | None) -> bool:
    """The eval's rule: the labelled id as a flow or answer; human; fallback."""
    if want == "human":
        return route.kind == "human"
    if want is None:
        return route.kind == "fallback"
    return route.kind in ("flow", "answer") and route.id == want


def shipped_parts(root: Path = ROOT) -> dict[str, Any]:
    """The keyword arguments of Router for the content in `root`."""
    flows = load_flows(root / "flows").flows
    knowledge, _ = load_knowledge(root / "knowledge" / "answers", flows=flows)
    return {
        "flows": flows,
        "words": load_commands(root / "knowledge" / "commands.yaml"),
        "knowledge": knowledge,
        "safety": load_safety(root / "knowledge" / "safety.yaml"),
        "places": place_names(root / "knowledge"),
    }


def cases(router: Router, messages: Sequence[Labelled]) -> list[Case]:
    out = []
    for message in messages:
        early = router.early(message.text)
        if early is not None:
            out.append(Case(message.want, early))
            continue
        hits = router.rank(message.text)
        if not hits:
            out.append(Case(message.want, None))
            continue
        offers = tuple((h.target[1], h.score) for h in hits if h.target != ELSEWHERE)[:3]
        out.append(
            Case(
                message.want,
                None,
                top=hits[0].target[1],
                elsewhere=hits[0].target == ELSEWHERE,
                score=hits[0].score,
                runner_up=hits[1].score if len(hits) > 1 else 0.0,
                offers=offers,
            )
        )
    return out


def decided(case: Case, limits: Thresholds) -> tuple[str, str | None, tuple[str, ...]]:
    """(kind, id, ids offered) as Router.decide would give them; fast, for the grid."""
    if case.early is not None:
        return case.early.kind, case.early.id, ()
    if case.top is None or case.elsewhere:
        return "fallback", None, ()
    if case.score >= limits.accept and case.score - case.runner_up >= limits.margin:
        return "answer", case.top, ()
    if case.score >= limits.clarify:
        window = max(limits.window, limits.margin)
        close = tuple(t for t, s in case.offers if s >= limits.clarify and case.score - s <= window)
        return "clarify", None, close
    return "fallback", None, ()


def figures(all_cases: Sequence[Case], limits: Thresholds) -> Figures:
    right = wrong = oos_answered = oos_clarified = clarified = has_right = 0
    for case in all_cases:
        kind, target, offered = decided(case, limits)
        want = case.want
        answered = kind in ("flow", "answer")
        if want == "human":
            right += kind == "human"
        elif want is None:
            right += kind == "fallback"
        else:
            right += answered and target == want
        wrong += answered and target != want
        if want is None:
            oos_answered += answered
            oos_clarified += kind == "clarify"
        elif kind == "clarify":
            clarified += 1
            has_right += want in offered
    return Figures(right, wrong, oos_answered, oos_clarified, clarified, has_right, len(all_cases))


def accept_margin_grid(
    all_cases: Sequence[Case], clarify: float, window: float
) -> dict[tuple[int, int], Figures]:
    return {
        (i, j): figures(all_cases, Thresholds(accept, min(clarify, accept), margin, window))
        for (i, accept), (j, margin) in itertools.product(enumerate(ACCEPTS), enumerate(MARGINS))
    }


def best_point(grid: dict[tuple[int, int], Figures]) -> tuple[tuple[int, int], float]:
    """The grid point with the best smoothed objective (then own objective); among
    equals, the middle one."""
    scored = {}
    for (i, j), figs in grid.items():
        if figs.oos_answered:
            continue
        around = [
            grid[(a, b)].objective
            for a in (i - 1, i, i + 1)
            for b in (j - 1, j, j + 1)
            if (a, b) in grid
        ]
        scored[(i, j)] = (round(statistics.fmean(around), 6), round(figs.objective, 6))
    if not scored:
        raise SystemExit("every threshold answers an out-of-scope message")
    top = max(scored.values())
    ties = sorted(point for point, value in scored.items() if value == top)
    return ties[len(ties) // 2], top[0]


def scoring_grid(quick: bool) -> list[Scoring]:
    betas = (1.5, 2.5) if quick else (1.5, 2.5, 3.5)
    reranks = (0.0, 0.1) if quick else (0.0, 0.1, 0.2)
    fuzzers = ("token_set_ratio",)  # WRatio never won, and costs more
    unknowns = (3.0,) if quick else (1.5, 3.0, 4.5)
    unknown_powers = (1.0,) if quick else (0.5, 1.0)
    pairs = (0.5,) if quick else (0.5, 1.0)
    pools = (0.4,) if quick else (0.3, 0.4, 0.5)
    out = []
    for beta, rerank, fuzzer, unknown, unknown_power, pair, pool in itertools.product(
        betas, reranks, fuzzers, unknowns, unknown_powers, pairs, pools
    ):
        out.append(
            Scoring(
                beta=beta,
                rerank=rerank,
                fuzzer=fuzzer,
                unknown=unknown,
                unknown_power=unknown_power,
                typo=SCORING.typo,
                pairs=pair,
                pool=pool,
                idf_power=SCORING.idf_power,
            )
        )
    return out


def _describe(s: Scoring) -> str:
    return (
        f"{s.beta:4.1f} {s.rerank:6.2f} {s.fuzzer:<15} {s.unknown:4.1f} {s.unknown_power:4.2f}"
        f" {s.pairs:5.2f}"
        f" {s.pool:4.2f}"
    )


def current(parts: dict[str, Any], paths: Sequence[Path]) -> dict[str, Figures]:
    """The figures of the shipped scoring and thresholds on each set, and all together."""
    router = Router(**parts)
    by_set = {path.name: cases(router, read_labelled(path)) for path in paths}
    by_set["all"] = [case for found in by_set.values() for case in found]
    out = {}
    for name, found in by_set.items():
        figs = out[name] = figures(found, router.thresholds)
        print(
            f"{name}: accuracy {100 * figs.accuracy:.1f}% ({figs.right}/{figs.total}),"
            f" wrong answers {figs.wrong}, out-of-scope answered {figs.oos_answered},"
            f" clarified {figs.oos_clarified}; in-scope clarified {figs.clarified}"
            f" ({figs.clarify_has_right} with the right button)"
        )
    return out


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small scoring grid")
    parser.add_argument(
        "--dev",
        type=Path,
        action="append",
        help="a labelled tuning set (repeat for several; default: the three in tests/router)",
    )
    parser.add_argument("--top", type=int, default=10, help="scoring settings to print")
    parser.add_argument(
        "--current",
        action="store_true",
        help="only the figures of the shipped values (bot/router.py), set by set",
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    paths = args.dev or list(TUNING)
    messages = [m for path in paths for m in read_labelled(path)]
    parts = shipped_parts()
    base = Thresholds()
    if args.current:
        return dict(current(parts, paths))
    names = " + ".join(path.name for path in paths)
    print(f"tuning set: {names} ({len(messages)} messages)")

    # Stage 1: every scoring setting, each with its best accept and margin.
    stage1: list[tuple[float, float, Scoring, Thresholds, Figures]] = []
    for scoring in scoring_grid(args.quick):
        found = cases(Router(scoring=scoring, **parts), messages)
        grid = accept_margin_grid(found, base.clarify, base.window)
        (i, j), smooth = best_point(grid)
        limits = Thresholds(ACCEPTS[i], min(base.clarify, ACCEPTS[i]), MARGINS[j], base.window)
        stage1.append((smooth, grid[(i, j)].objective, scoring, limits, grid[(i, j)]))
    stage1.sort(key=lambda row: row[:2], reverse=True)
    print(f"\nstage 1: {len(stage1)} scoring settings, the best {args.top}:")
    print(
        "beta rerank fuzzer           unk upow pairs pool accept margin  acc% wrong oos→clar smooth"
    )
    for smooth, _, s, lim, f in stage1[: args.top]:
        print(
            f"{_describe(s)} {lim.accept:6.0f} {lim.margin:6.0f} {100 * f.accuracy:5.1f}"
            f" {f.wrong:5d} {f.oos_clarified:8d} {smooth:6.3f}"
        )
    scoring = stage1[0][2]

    # Stage 2: the thresholds for the chosen scoring, clarify and window included.
    router = Router(scoring=scoring, **parts)
    found = cases(router, messages)
    rows = []
    for clarify, window in itertools.product(CLARIFIES, WINDOWS):
        grid = accept_margin_grid(found, clarify, window)
        (i, j), smooth = best_point(grid)
        figs = grid[(i, j)]
        # Then: clarify buttons that hold the right answer; few out-of-scope clarified.
        useful = (figs.clarify_has_right - figs.oos_clarified) / len(found)
        limits = Thresholds(ACCEPTS[i], min(clarify, ACCEPTS[i]), MARGINS[j], window)
        rows.append(((round(smooth, 6), round(figs.objective, 6), round(useful, 6)), limits, figs))
    top = max(row[0] for row in rows)
    ties = sorted((row for row in rows if row[0] == top), key=lambda r: (r[1].clarify, r[1].window))
    _, chosen, figs = ties[len(ties) // 2]
    # The grid's shortcut must agree with the router itself.
    real = Router(scoring=scoring, thresholds=chosen, **parts)
    if sum(is_right(real.route(m.text), m.want) for m in messages) != figs.right:
        raise SystemExit("the grid's figures differ from Router.route(): fix decided()")

    grid = accept_margin_grid(found, chosen.clarify, chosen.window)
    print(f"\nstage 2, clarify {chosen.clarify:.0f}, window {chosen.window:.0f}:")
    print("accuracy % (and out-of-scope answered, when any) by accept (rows) and margin:")
    print("accept " + " ".join(f"{m:>6.0f}" for m in MARGINS))
    for i, accept in enumerate(ACCEPTS):
        cells = []
        for j in range(len(MARGINS)):
            f = grid[(i, j)]
            flag = f"!{f.oos_answered}" if f.oos_answered else "  "
            cells.append(f"{100 * f.accuracy:4.0f}{flag}")
        print(f"{accept:6.0f} " + " ".join(cells))
    print(
        f"\nchosen (copy into bot/router.py; {len(ties)} equal points, the middle one):"
        f"\nSCORING = Scoring(beta={scoring.beta}, rerank={scoring.rerank},"
        f' fuzzer="{scoring.fuzzer}", unknown={scoring.unknown},'
        f" unknown_power={scoring.unknown_power}, typo={scoring.typo},"
        f" pairs={scoring.pairs}, pool={scoring.pool}, idf_power={scoring.idf_power})"
        f"\nACCEPT = {chosen.accept}\nCLARIFY = {chosen.clarify}"
        f"\nMARGIN = {chosen.margin}\nWINDOW = {chosen.window}"
    )
    print(
        f"tuning set: accuracy {100 * figs.accuracy:.1f}% ({figs.right}/{figs.total}),"
        f" wrong answers {figs.wrong}, out-of-scope answered {figs.oos_answered},"
        f" out-of-scope clarified {figs.oos_clarified}, in-scope clarified {figs.clarified}"
        f" ({figs.clarify_has_right} with the right button)"
    )
    print(f"elapsed {time.perf_counter() - started:.1f} s")
    return {"scoring": scoring, "thresholds": chosen, "figures": figs}


if __name__ == "__main__":
    main(sys.argv[1:])
