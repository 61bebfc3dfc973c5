"""How fast the router is, beside a naive rapidfuzz scan, on two knowledge bases.

    .venv/bin/python -m bench.router             # about a minute
    .venv/bin/python -m bench.router --quick     # fewer queries, about 15 s
    .venv/bin/python -m bench.router --runs 3    # each figure the median of 3 runs

shipped    the content in flows/ and knowledge/; queries are the examples and triggers,
           changed the way citizens change them (a word dropped, a typo, words added)
synthetic  10 000 generated entries, ~5 examples each, 3-10 words drawn from ~2 000
           folded Vietnamese-like syllables (a fixed seed): each entry has its own pair
           of distinctive syllables among common ones, as real questions do

For each: the router's time per message (`Router.route`, everything included: folding,
cues, the index, thresholds) at p50 and p99, beside `rapidfuzz.process.extractOne(query,
all_example_strings, scorer=fuzz.WRatio)` over the same examples, in the same run, as a
ratio; how often each finds the entry a query was made from; and, for the synthetic
base, the time to build the index and the peak memory of building it (tracemalloc).
Nothing here asserts: targets are p99 under 1 ms (shipped), under 5 ms, 50 MB and 1 s
(synthetic). Each message is routed once and each run starts cold (bot.text's caches
emptied, new routers): no message-level cache flatters the figures; word-level memos
(folding, typo lookups) fill up during a run, as they do in real traffic. The router and
the scan take turns message by message, so machine noise hits both alike; times are wall
clock and, beside them, CPU time of the thread (what the code costs when other processes
share the cores).
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import math
import platform
import random
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rapidfuzz import fuzz, process

from bench.tune_router import shipped_parts
from bot.index import PhraseIndex
from bot.knowledge import Entry
from bot.router import SCORING, Router, Target, _docs
from bot.text import fold, refresh

ROOT = Path(__file__).resolve().parents[1]
SEED = 20261130
ENTRIES = 10_000
VOCABULARY = 2_000
ONSETS = "b c ch d g gh gi h k kh l m n ng nh p ph qu r s t th tr v x".split() + [""]
RIMES = (
    "a ac ach ai am an ang anh ao ap at au ay e ec em en eng eo ep et i ia ich iem ien iep"
    " iet ieu im in inh ip it iu o oa oac oai oan oang oanh oat oc oe oi om on ong op ot"
    " u ua uan uat uc ue ui um un ung uoc uoi uom uon uong uot up ut uu uy uya uyen uyet"
    " y yen yet yeu eu oong oen oet uyt uych uynh"
).split()
FILLERS = "toi ban bac chau em oi a nhe voi cho hoi lam sao the nao duoc khong roi".split()


@dataclass(frozen=True)
class Timing:
    p50_us: float
    p99_us: float
    mean_us: float
    cpu_p50_us: float  # the same, in CPU time of this thread: what the code costs
    cpu_p99_us: float  # when other processes share the machine
    found: float  # share of queries whose best match is the entry they came from


def percentile(samples: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def timed(
    queries: Sequence[tuple[str, str]],
    finders: Sequence[Callable[[str], str | None]],
    counts: Sequence[int],
) -> list[Timing]:
    """Run each finder once a query, the finders taking turns query by query so machine
    noise hits them alike; finder i sees the first counts[i] queries. `queries` are
    (text, the id it was made from)."""
    samples: list[list[float]] = [[] for _ in finders]
    cpu: list[list[float]] = [[] for _ in finders]
    hits = [0 for _ in finders]
    gc.collect()
    for at, (text, want) in enumerate(queries):
        for i, find in enumerate(finders):
            if at >= counts[i]:
                continue
            start, start_cpu = time.perf_counter_ns(), time.thread_time_ns()
            got = find(text)
            cpu[i].append((time.thread_time_ns() - start_cpu) / 1000)
            samples[i].append((time.perf_counter_ns() - start) / 1000)
            hits[i] += got == want
    return [
        Timing(
            percentile(s, 50),
            percentile(s, 99),
            sum(s) / len(s),
            percentile(c, 50),
            percentile(c, 99),
            hits[i] / max(len(s), 1),
        )
        for i, (s, c) in enumerate(zip(samples, cpu, strict=True))
    ]


# ---------------------------------------------------------------- the knowledge bases


def syllables(rng: random.Random, count: int) -> list[str]:
    """`count` distinct folded syllables, like Vietnamese written without diacritics."""
    every = sorted({o + r for o in ONSETS for r in RIMES if not (o == "qu" and r.startswith("u"))})
    if len(every) < count:
        raise ValueError(f"only {len(every)} syllables can be made, {count} asked")
    rng.shuffle(every)
    return every[:count]


def synthetic_entries(seed: int, entries: int) -> dict[str, Entry]:
    rng = random.Random(seed)
    vocab = syllables(rng, VOCABULARY)
    # Common words first: a Zipf-like weight, so a few syllables are everywhere.
    weights = list(itertools.accumulate(1 / (rank + 1) for rank in range(len(vocab))))
    out: dict[str, Entry] = {}
    for number in range(entries):
        topic = rng.sample(vocab[200:], 2)  # the entry's own pair, like "khai sinh"
        examples = []
        for _ in range(rng.randint(4, 6)):
            words = rng.choices(vocab, cum_weights=weights, k=rng.randint(1, 8))
            at = rng.randint(0, len(words))
            examples.append(" ".join(words[:at] + topic + words[at:]))
        entry_id = f"e{number:05d}"
        out[entry_id] = Entry.model_construct(
            id=entry_id,
            title={"vi": " ".join(topic)},
            examples={"vi": tuple(examples)},
            answer={"vi": "."},
            buttons=(),
            sources=(),
        )
    return out


def citizen_queries(
    docs: Sequence[tuple[Target, str]], rng: random.Random, count: int
) -> list[tuple[str, str]]:
    """Distinct examples changed as citizens change them, each with the id it came
    from (distinct: a message seen twice would be folded from a cache)."""
    out: dict[str, str] = {}
    for _ in range(count * 20):
        if len(out) == count:
            break
        (_, target), text = rng.choice(docs)
        words = fold(text).split()
        if len(words) > 2 and rng.random() < 0.5:
            del words[rng.randrange(len(words))]
        if rng.random() < 0.5:
            at = rng.randrange(len(words))
            word = words[at]
            if len(word) >= 4:
                cut = rng.randrange(len(word) - 1)
                words[at] = word[:cut] + word[cut + 1] + word[cut] + word[cut + 2 :]
        for _ in range(rng.randint(0, 3)):
            words.insert(rng.randint(0, len(words)), rng.choice(FILLERS))
        out.setdefault(" ".join(words), target)
    return list(out.items())


def _route_finder(router: Router) -> Callable[[str], str | None]:
    def find(text: str) -> str | None:
        route = router.route(text)
        return route.id or (route.candidates[0][1] if route.candidates else None)

    return find


def _baseline_finder(docs: Sequence[tuple[Target, str]]) -> Callable[[str], str | None]:
    strings = [text for _, text in docs]
    owners = [target for (_, target), _ in docs]

    def find(text: str) -> str | None:
        best = process.extractOne(text, strings, scorer=fuzz.WRatio)
        return owners[best[2]] if best else None

    return find


def measure(
    name: str, router: Router, docs: Sequence[tuple[Target, str]], queries: int, base: int
) -> dict[str, Any]:
    rng = random.Random(SEED + len(docs))
    made = citizen_queries(docs, rng, queries)
    ours, naive = timed(made, (_route_finder(router), _baseline_finder(docs)), (queries, base))
    return {
        f"{name}_examples": len(docs),
        f"{name}_queries": len(made),
        f"{name}_p50_us": round(ours.p50_us, 1),
        f"{name}_p99_us": round(ours.p99_us, 1),
        f"{name}_cpu_p50_us": round(ours.cpu_p50_us, 1),
        f"{name}_cpu_p99_us": round(ours.cpu_p99_us, 1),
        f"{name}_mean_us": round(ours.mean_us, 1),
        f"{name}_found": round(ours.found, 3),
        f"{name}_baseline_queries": min(base, len(made)),
        f"{name}_baseline_p50_us": round(naive.p50_us, 1),
        f"{name}_baseline_p99_us": round(naive.p99_us, 1),
        f"{name}_baseline_cpu_p50_us": round(naive.cpu_p50_us, 1),
        f"{name}_baseline_cpu_p99_us": round(naive.cpu_p99_us, 1),
        f"{name}_baseline_found": round(naive.found, 3),
        f"{name}_p99_ratio": round(ours.p99_us / naive.p99_us, 4),
        f"{name}_cpu_p99_ratio": round(ours.cpu_p99_us / naive.cpu_p99_us, 4),
        f"{name}_mean_ratio": round(ours.mean_us / naive.mean_us, 4),
    }


def build_figures(docs: Sequence[tuple[Target, str]]) -> dict[str, float]:
    """Seconds to build the index, and the peak memory of building it."""
    gc.collect()
    tracemalloc.start()
    start = time.perf_counter()
    index = PhraseIndex(docs, SCORING)
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del index
    gc.collect()
    start, start_cpu = time.perf_counter(), time.process_time()
    index = PhraseIndex(docs, SCORING)  # again, without tracemalloc's own cost
    plain, plain_cpu = time.perf_counter() - start, time.process_time() - start_cpu
    return {
        "synthetic_phrases": len(index),
        "synthetic_build_s": round(plain, 3),
        "synthetic_build_cpu_s": round(plain_cpu, 3),
        "synthetic_build_traced_s": round(seconds, 3),
        "synthetic_index_peak_mb": round(peak / 2**20, 1),
    }


def one_run(seed: int, entries: int, queries: int, base: int) -> dict[str, Any]:
    """All figures once, from cold: new routers, and bot.text's caches emptied (each
    message is distinct within a run; words repeat, as they do in real traffic)."""
    refresh()
    parts = shipped_parts()
    shipped = Router(**parts)
    shipped_docs = _docs(parts["flows"], parts["knowledge"])
    result: dict[str, Any] = measure("shipped", shipped, shipped_docs, queries, queries)
    knowledge = synthetic_entries(seed, entries)
    docs = _docs({}, knowledge)
    result |= build_figures(docs)
    big = Router(flows={}, words=parts["words"], knowledge=knowledge, safety=parts["safety"])
    result |= measure("synthetic", big, docs, queries, base)
    return result


def _median(values: list[Any]) -> Any:
    """The median of numbers (the lower middle one, a figure that was measured)."""
    return sorted(values)[(len(values) - 1) // 2]


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer queries")
    parser.add_argument("--entries", type=int, default=ENTRIES, help="synthetic entries")
    parser.add_argument("--seed", type=int, default=SEED, help="synthetic base's seed")
    parser.add_argument("--queries", type=int, help="messages a base (default 3000; quick 300)")
    parser.add_argument(
        "--runs", type=int, default=1, help="runs; each figure is the median over them"
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    queries = args.queries or (300 if args.quick else 3000)
    base = max(1, queries // 10)  # the naive scan of 60 000 examples is slow

    runs = [one_run(args.seed, args.entries, queries, base) for _ in range(max(args.runs, 1))]
    result = {key: _median([run[key] for run in runs]) for key in runs[0]}
    result["runs"] = len(runs)
    result["python"] = platform.python_version()
    result["elapsed_s"] = round(time.perf_counter() - started, 1)
    if len(runs) > 1:
        for number, run in enumerate(runs, 1):
            print(
                f"run {number}: shipped p99 {run['shipped_p99_us']:.1f} µs,"
                f" synthetic p99 {run['synthetic_p99_us']:.1f} µs,"
                f" build {run['synthetic_build_s']:.3f} s, peak {run['synthetic_index_peak_mb']} MB"
            )

    r = result
    runs_note = f", median of {r['runs']} runs" if r["runs"] > 1 else ""
    print(f"router benchmark (python {r['python']}, seed {args.seed}{runs_note})")
    head = f"{'':34} {'p50 µs':>9} {'p99 µs':>9} {'cpu p50':>9} {'cpu p99':>9} {'found':>6}"
    print(head)
    for name in ("shipped", "synthetic"):
        for label, key in (("router.route", name), ("extractOne(WRatio)", name + "_baseline")):
            print(
                f"{name + ': ' + label:34} {r[key + '_p50_us']:9.1f} {r[key + '_p99_us']:9.1f}"
                f" {r[key + '_cpu_p50_us']:9.1f} {r[key + '_cpu_p99_us']:9.1f}"
                f" {r[key + '_found']:6.3f}"
            )
        print(
            f"{name + ': router / extractOne':34} {'':9} {r[name + '_p99_ratio']:9.4f}"
            f" {'':9} {r[name + '_cpu_p99_ratio']:9.4f}   ({r[name + '_examples']} examples,"
            f" {r[name + '_queries']} queries, baseline on {r[name + '_baseline_queries']})"
        )
    print(
        f"synthetic index: {r['synthetic_phrases']} phrases, built in"
        f" {r['synthetic_build_s']:.3f} s ({r['synthetic_build_cpu_s']:.3f} s CPU),"
        f" peak {r['synthetic_index_peak_mb']:.1f} MB (tracemalloc)"
    )
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
