"""A search index over short phrases (flow triggers, knowledge examples) for the router.

    PhraseIndex(docs, scoring, skip=…)  docs: (target, phrase) pairs; a target is any
                                        hashable key; `skip` drops filler words
    index.search(text, limit)           the best targets for a message, best first, 0-100
    index.correct(text)                 the message's words as the index understood them

How a message is scored:

1. It is folded (bot.text.fold: no diacritics, teencode expanded) into words, English
   ones by their stem (bot.text.stem: "failed", "fails" → "fail"); filler ("cho hỏi",
   "ạ") is dropped, from phrases and messages alike.
2. Each word is looked up in the vocabulary of the phrases (lookups are memoised per
   word). A word that is not there may be a typo ("vnied",
   "haot", "kichs" typed with Telex and no input method): the vocabulary word one or two
   edits away is found through a deletion index (SymSpell:
   every word with one or two letters deleted points back to the word), which also
   catches swapped letters, unlike character trigrams on words this short. A word that is
   two vocabulary words glued together ("kichhoat") is split; two words that are one
   vocabulary word ("pass code") are joined.
3. Features are the words and the pairs of words in a row: Vietnamese words are
   syllables, and meaning often lives in a pair ("khai sinh"; "dang nhap" is not "nhap
   khau"). Features count by IDF over targets: one many targets use ("vneid", "toi",
   "lam") says little; one a single target uses ("passcode", "nfc") says a lot. A word
   the index does not know counts as `Scoring.unknown` of the rarest feature's weight
   (n of them: n ** `Scoring.unknown_power` times that), so a message about something
   else stays far from every phrase.
4. Candidate phrases come from an inverted index (feature → phrases), rarest features
   first, within a budget; the most common features only add to candidates found
   already. Each candidate gets an F-score of two IDF-weighted coverages: how much of the
   phrase the message says, and how much of the message the phrase explains.
5. The best phrases are re-ranked with rapidfuzz on the corrected message; a target's
   score is its best phrase's, plus a share for how much of the message all of the
   target's phrases explain together (from "target postings": feature → targets). Once
   no later phrase can reach the `limit`-th best target, re-ranking stops.

Flat arrays, filled with C-level passes (map, accumulate, compress) where a Python loop
per slot would be slow: 10 000 answers (60 000 phrases) build in about 0.8 s and 40 MB
(bench/router.py). Immutable after construction but for the per-word lookup memo;
`search` allocates only small temporaries.
"""

from __future__ import annotations

import heapq
import itertools
import math
from array import array
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from operator import add, itemgetter, ne, sub, truediv
from typing import Any, Generic, TypeVar, cast

from rapidfuzz import fuzz
from rapidfuzz.distance import OSA

from bot.text import fold, fold_word, phrase_starts, stem

T = TypeVar("T", bound=Hashable)

# Words shorter than this are never corrected: short Vietnamese syllables are too close
# to each other ("toi", "tai", "lai") for an edit to mean a typo.
MIN_TYPO_LENGTH = 4
# From this length a word may be two edits away from the word meant.
TWO_EDITS_LENGTH = 8
# Postings read in full before the rest of the words only score candidates already found.
POSTINGS_BUDGET = 1000
# Postings a feature may have and still bring candidates (or an eighth of the phrases).
COMMON = 64
# Candidates kept after reading postings (the most said first): enough for any real
# knowledge base, and a bound on the work for a very large one.
KEEP = 200
# Message words whose lookup is kept (then the memo starts again).
LOOKED_UP = 20_000
# Phrases re-ranked with rapidfuzz.
RERANK = 16

# Marks a word that `fold` may join with its neighbours ("vn eid" → "vneid").
_WHOLE = "\0"
_FUZZERS: dict[str, Callable[..., float]] = {
    "token_set_ratio": fuzz.token_set_ratio,
    "token_sort_ratio": fuzz.token_sort_ratio,
    "partial_token_set_ratio": fuzz.partial_token_set_ratio,
    "WRatio": fuzz.WRatio,
    "ratio": fuzz.ratio,
}


@dataclass(frozen=True)
class Scoring:
    """How phrases are scored; bench/tune_router.py picks the values router.py uses."""

    beta: float = 2.0  # >1: saying the phrase counts more than explaining the message
    rerank: float = 0.3  # share of the rapidfuzz score in the final score
    fuzzer: str = "token_set_ratio"
    unknown: float = 0.5  # weight of an unknown word, as a share of the rarest word's
    # n unknown words weigh unknown * n ** unknown_power: below 1, a long story with some
    # names in it is not drowned by them, while a message of only unknown words still is
    unknown_power: float = 1.0
    typo: float = 0.8  # credit for a word one edit away (two edits: squared)
    pairs: float = 1.0  # weight of two words in a row ("khai sinh"), against one word's
    pool: float = 0.0  # share of "how much of the message all the target's phrases explain"
    idf_power: float = 1.0

    def __post_init__(self) -> None:
        if self.fuzzer not in _FUZZERS:
            raise ValueError(f"unknown fuzzer '{self.fuzzer}'; one of {sorted(_FUZZERS)}")


@dataclass(frozen=True)
class Hit(Generic[T]):
    """One target found for a message: its score (0-100) and the phrase that won."""

    target: T
    score: float
    phrase: str


@dataclass(frozen=True)
class _Query:
    words: tuple[str, ...]  # the corrected words, unknown ones kept
    matches: dict[int, float]  # feature id → credit (1.0 exact, less for typos)
    weight: float  # the message's total weight


class PhraseIndex(Generic[T]):
    """An inverted index from folded words, and pairs of words in a row, to phrases;
    with typo-tolerant lookup of words.

    Layout, kept flat so 10 000 answers fit in a few tens of MB: features (words and
    pairs) have ids; the phrases of one target have consecutive ids; the postings of all
    features sit in one array (`_positions`), feature f's in `[_start[f], _start[f+1])`,
    sorted; the targets of each feature likewise (`_tpositions`, `_tstart`), so "does
    target t use feature f" is one binary search, and IDF is a difference of offsets."""

    def __init__(
        self,
        docs: Iterable[tuple[T, str]],
        scoring: Scoring | None = None,
        *,
        skip: Callable[[Sequence[str]], list[str]] | None = None,
    ) -> None:
        """`skip` removes words that say nothing (politeness) from phrases and messages."""
        self.scoring = scoring or Scoring()
        self._fuzzer = _FUZZERS[self.scoring.fuzzer]
        self._skip = skip
        folded = _Folder()
        grouped: dict[T, dict[str, None]] = {}
        for target, phrase in docs:
            text = folded(phrase)
            if skip is not None:
                text = " ".join(skip(text.split()))
            if text:
                grouped.setdefault(target, {})[text] = None
        self.targets: list[T] = list(grouped)
        # Features: single words by their text, and pairs of words in a row by the two
        # word ids. Vietnamese words are syllables: meaning often lives in a pair ("dang
        # nhap" is not "nhap khau"). Words get ids first (in order of first use, by
        # C-level passes), then pairs; a pair's key is first id * width + second id, a
        # small int.
        phrase_lists = [list(phrases) for phrases in grouped.values()]
        del grouped
        flat = itertools.chain.from_iterable(
            map(str.split, itertools.chain.from_iterable(phrase_lists))
        )
        words: dict[str, int] = dict(zip(dict.fromkeys(flat), itertools.count()))
        width = self._width = max(len(words), 1)
        word_id = words.__getitem__
        pairs: dict[int, int] = {}
        pair_id = pairs.get
        texts: list[str] = []
        owner = array("I")
        first = array("I")  # target → its first phrase id; one more at the end
        features_of: list[tuple[int, ...]] = []
        for tid, phrases in enumerate(phrase_lists):
            first.append(len(texts))
            for text in phrases:
                ids = list(map(word_id, text.split()))
                if len(ids) > 1:
                    keys = list(map(add, map(width.__mul__, ids[:-1]), ids[1:]))
                    seen = list(map(pair_id, keys))
                    ids += (
                        cast(list[int], seen)
                        if None not in seen
                        else [_id_of(pairs, k, words, pairs) for k in keys]
                    )
                features_of.append(tuple(dict.fromkeys(ids)))
            texts += phrases
            owner.extend(itertools.repeat(tid, len(phrases)))
        first.append(len(texts))
        del phrase_lists
        total = len(words) + len(pairs)
        self._words = words
        self._pairs = pairs
        self._names = {fid: word for word, fid in words.items()}
        self._texts = texts
        self._owner = owner
        self._first = first
        # The postings: feature f's phrase ids in positions[start[f]:start[f + 1]],
        # rising (phrases are visited in order).
        counts = Counter(itertools.chain.from_iterable(features_of))
        start = array("I", itertools.accumulate(map(counts.__getitem__, range(total)), initial=0))
        del counts
        cursor = list(start)  # lists: faster to index than arrays in this hot loop
        slots = [0] * start[-1]
        for pid, unique in enumerate(features_of):
            for fid in unique:
                slots[cursor[fid]] = pid
                cursor[fid] += 1
        positions = array("I", slots)
        del cursor, slots
        # The same by target ("target postings"): a feature's phrase ids rise, and a
        # target's phrases are consecutive, so its targets come in runs; keep each run's
        # first. Their number per feature is what IDF counts.
        tags = array("I", map(owner.__getitem__, positions))
        keep = bytearray(map(ne, tags, itertools.chain((-1,), tags)))
        for low in itertools.islice(start, total):
            keep[low] = 1
        kept = array("I", itertools.accumulate(keep, initial=0))
        tstart = self._tstart = array("I", map(kept.__getitem__, start))
        self._tpositions = array("I", itertools.compress(tags, keep))
        del tags, keep, kept
        n = max(len(self.targets), 1)
        power = self.scoring.idf_power
        users = map(sub, itertools.islice(tstart, 1, None), tstart)
        weights = list(map(math.log1p, map(truediv, itertools.repeat(n), users)))
        if power != 1.0:
            weights = [w**power for w in weights]
        if self.scoring.pairs != 1.0:
            for fid in pairs.values():
                weights[fid] *= self.scoring.pairs
        self._idf = array("d", weights)
        del weights
        weight = self._idf.__getitem__
        beta2 = self.scoring.beta**2
        self._scaled_weight = array("d", (beta2 * sum(map(weight, ids)) for ids in features_of))
        del features_of
        self._start = start
        self._positions = positions
        # A feature in more phrases than this only adds to candidates other features found.
        self._common = max(COMMON, len(texts) // 8)
        self._unknown = self.scoring.unknown * (math.log(1 + n) ** power)
        self._deletes = self._deletion_table()  # a few ms, even for 10 000 answers
        self._looked: dict[str, tuple[tuple[int, float], ...]] = {}

    def _deletion_table(self) -> dict[str, array[int]]:
        """Every vocabulary word with one (long words: up to two) letters deleted → the
        words it comes from (SymSpell)."""
        table: dict[str, array[int]] = {}
        for word, fid in self._words.items():
            if len(word) >= MIN_TYPO_LENGTH - 1 and not word.isdigit():
                depth = 2 if len(word) >= TWO_EDITS_LENGTH - 1 else 1
                for variant in _deletions(word, depth):
                    table.setdefault(variant, array("I")).append(fid)
        return table

    def __len__(self) -> int:
        """The number of distinct phrases."""
        return len(self._texts)

    @property
    def vocabulary(self) -> list[str]:
        """The single words the index knows."""
        return list(self._words)

    def knows(self, word: str) -> bool:
        """True when `word` (folded, stemmed) is a word of some phrase."""
        return word in self._words

    # -- searching ---------------------------------------------------------------------

    def correct(self, text: str) -> str:
        """The folded message with each word replaced by the vocabulary word it was taken
        for ("kich haot vnied" → "kich hoat vneid")."""
        return " ".join(self._query(list(map(stem, fold(text).split()))).words)

    def search(self, text: str, limit: int = 5) -> list[Hit[T]]:
        """The best `limit` targets for a message, best first (one hit a target)."""
        return self.search_words(fold(text).split(), limit)

    def search_words(self, words: Sequence[str], limit: int = 5) -> list[Hit[T]]:
        """`search` for a message already folded and split into words."""
        words = list(map(stem, words))
        query = self._query(self._skip(words) if self._skip is not None else words)
        if not query.matches or query.weight <= 0:
            return []
        found = self._candidates(query.matches)
        # The F-score of P = said / message weight (at most 1) and R = said / phrase
        # weight is (1 + b²) · said / (b² · phrase weight + max(message weight, said)).
        beta2 = self.scoring.beta**2
        scaled = self._scaled_weight
        qweight = query.weight
        best = heapq.nlargest(
            RERANK,
            [
                (s / (scaled[pid] + (s if s > qweight else qweight)), pid)
                for pid, s in found.items()
            ],
        )
        # Final score of a target: its best phrase's (coverage, plus a `share` of the
        # rapidfuzz score) plus a `pool` share for what all its phrases explain. The
        # rapidfuzz and pooled parts add at most `bonus`: once a phrase's coverage part
        # plus `bonus` cannot reach the `limit`-th best target, nothing after it can,
        # and neither is computed (they are most of the cost of a search).
        share, pool = self.scoring.rerank, self.scoring.pool
        coverage = 100.0 * (1 - share - pool) * (1 + beta2)
        bonus = 100.0 * (share + pool)
        most = 100.0 * pool
        message = " ".join(query.words)
        texts, owner = self._texts, self._owner
        explained = _Explained(self, query.matches) if pool else None
        phrase_of: dict[int, tuple[float, int]] = {}  # target → (best phrase score, phrase)
        final: dict[int, float] = {}
        floor = -1.0  # the `limit`-th best final score so far
        for ratio, pid in best:
            score = coverage * ratio
            if score + bonus < floor:
                break
            if share:
                score += share * self._fuzzer(message, texts[pid])
            tid = owner[pid]
            if tid in phrase_of and score <= phrase_of[tid][0]:
                continue
            phrase_of[tid] = (score, pid)
            if explained is not None:
                score += most * min(explained(tid) / qweight, 1.0)
            final[tid] = score
            if len(final) >= limit and score > floor:
                floor = sorted(final.values(), reverse=True)[limit - 1]
        ranked = sorted(final.items(), key=lambda item: -item[1])[:limit]
        return [
            Hit(self.targets[tid], round(score, 2), texts[phrase_of[tid][1]])
            for tid, score in ranked
        ]

    def _uses(self, fid: int, low: int, high: int) -> bool:
        """True when feature `fid` has a phrase id in [low, high)."""
        end = self._start[fid + 1]
        at = bisect_left(self._positions, low, self._start[fid], end)
        return at < end and self._positions[at] < high

    def _candidates(self, matches: dict[int, float]) -> dict[int, float]:
        """Phrase id → the weight of its features the message says (typos at their credit).
        Rare features read their postings first; once the budget is spent, or enough
        candidates are found, the remaining (common, light) features only add to the best
        phrases found already."""
        idf, start, positions = self._idf, self._start, self._positions
        order = sorted(matches, key=lambda fid: start[fid + 1] - start[fid])
        found: dict[int, float] = {}
        read = 0
        rest: list[int] = []
        for fid in order:
            low, high = start[fid], start[fid + 1]
            common = high - low > self._common
            if read and (common or read + high - low > POSTINGS_BUDGET or len(found) >= KEEP):
                rest.append(fid)
                continue
            read += high - low
            gain = idf[fid] * matches[fid]
            get = found.get
            for pid in positions[low:high]:
                found[pid] = get(pid, 0.0) + gain
        if len(found) > KEEP:
            found = dict(heapq.nlargest(KEEP, found.items(), key=itemgetter(1)))
        for fid in rest:
            gain = idf[fid] * matches[fid]
            low, high = start[fid], start[fid + 1]
            if high - low < 8 * len(found):  # walking the postings is cheaper
                for pid in positions[low:high]:
                    if pid in found:
                        found[pid] += gain
            else:  # a binary search for each candidate is cheaper
                for pid in found:
                    if self._uses(fid, pid, pid + 1):
                        found[pid] += gain
        return found

    def _query(self, words: Sequence[str]) -> _Query:
        matches: dict[int, float] = {}
        out: list[str] = []
        weight = 0.0
        idf = self._idf
        known: list[tuple[int, float] | None] = []  # corrected words in order, for pairs
        seen: set[str] = set()
        unknown = 0
        for word in self._joined(words):
            found = self._lookup(word)
            if not found:
                known.append(None)
                if word not in seen:
                    out.append(word)
                    if not word.isdigit():
                        unknown += 1
            for fid, credit in found:
                known.append((fid, credit))
                if word not in seen:
                    out.append(self._names[fid])
                    if credit > matches.get(fid, 0.0):
                        matches[fid] = credit
            if found and word not in seen:
                weight += max(idf[fid] for fid, _ in found)
            seen.add(word)
        for left, right in zip(known, known[1:], strict=False):
            if left is None or right is None:
                continue
            pair = self._pairs.get(left[0] * self._width + right[0])
            if pair is not None and pair not in matches:
                matches[pair] = min(left[1], right[1])
                weight += idf[pair]
        if unknown:
            weight += self._unknown * unknown**self.scoring.unknown_power
        return _Query(tuple(out), matches, weight)

    def _joined(self, words: Sequence[str]) -> list[str]:
        """`words` with two in a row joined where the index knows them as one word and not
        as a pair ("pass code" → "passcode")."""
        known = self._words
        out: list[str] = []
        i = 0
        while i < len(words):
            if i + 1 < len(words):
                glued = stem(words[i] + words[i + 1])
                left, right = known.get(words[i]), known.get(words[i + 1])
                pair = None if left is None or right is None else left * self._width + right
                if glued in known and (pair is None or pair not in self._pairs):
                    out.append(glued)
                    i += 2
                    continue
            out.append(words[i])
            i += 1
        return out

    def _lookup(self, word: str) -> tuple[tuple[int, float], ...]:
        """Vocabulary words this message word may be, with their credit. Kept per word:
        citizens use a few thousand words, and typo correction is the costly part."""
        found = self._looked.get(word)
        if found is None:
            found = self._find(word)
            if len(self._looked) >= LOOKED_UP:
                self._looked.clear()
            self._looked[word] = found
        return found

    def _find(self, word: str) -> tuple[tuple[int, float], ...]:
        fid = self._words.get(word)
        if fid is not None:
            return ((fid, 1.0),)
        if len(word) < MIN_TYPO_LENGTH or word.isdigit():
            return ()
        glued = self._split(word)
        if glued:
            return tuple((f, self.scoring.typo) for f in glued)
        near = self._near(word)
        return () if near is None else (near,)

    def _near(self, word: str) -> tuple[int, float] | None:
        """The vocabulary word one edit (long words: two) away, with its credit."""
        limit = 2 if len(word) >= TWO_EDITS_LENGTH else 1
        best: dict[int, int] = {}
        deletes = self._deletes
        for variant in (word, *_deletions(word, limit)):
            # A vocabulary word with letters deleted, or the word itself ("kichs" → "kich").
            same = self._words.get(variant)
            found = deletes.get(variant, ())
            for fid in (*found, same) if same is not None else found:
                if fid not in best:
                    best[fid] = OSA.distance(word, self._names[fid], score_cutoff=limit + 1)
        near = {f: d for f, d in best.items() if d <= limit}
        if not near:
            return None
        closest = min(near.values())
        # Among equally close words, the one more phrases use is the likelier meant.
        picks = sorted((f for f, d in near.items() if d == closest), key=self._popularity)
        return picks[0], self.scoring.typo**closest

    def _popularity(self, fid: int) -> int:
        return self._start[fid] - self._start[fid + 1]

    def _split(self, word: str) -> tuple[int, int] | None:
        """Two vocabulary words written without a space ("matkhau" → "mat", "khau")."""
        known = self._words
        for cut in range(2, len(word) - 1):
            left, right = known.get(word[:cut]), known.get(word[cut:])
            if left is not None and right is not None:
                return left, right
        return None


class _Explained:
    """What all the phrases of one target explain of a message together: the weight of
    the message's features that any of them has ("tam tru" is temporary residence even
    when no single example has all the other words). Features in few targets add to all
    of them at once; for one in many, each target asked is looked up."""

    SPREAD = 64  # a feature in more targets than this is looked up target by target

    def __init__(self, index: PhraseIndex[Any], matches: dict[int, float]) -> None:
        idf, tstart, tpositions = index._idf, index._tstart, index._tpositions
        self._tpositions = tpositions
        self._by_target: dict[int, float] = {}
        self._wide: list[tuple[int, int, float]] = []
        get = self._by_target.get
        by_target = self._by_target
        for fid, credit in matches.items():
            low, high = tstart[fid], tstart[fid + 1]
            gain = idf[fid] * credit
            if high - low > self.SPREAD:
                self._wide.append((low, high, gain))
                continue
            for tid in tpositions[low:high]:
                by_target[tid] = get(tid, 0.0) + gain

    def __call__(self, tid: int) -> float:
        total = self._by_target.get(tid, 0.0)
        tpositions = self._tpositions
        for low, high, gain in self._wide:
            at = bisect_left(tpositions, tid, low, high)
            if at < high and tpositions[at] == tid:
                total += gain
        return total


def _id_of(table: dict[Any, int], key: Any, words: dict[str, int], pairs: dict[int, int]) -> int:
    """The feature id of `key` in `table`, a new one (after all given) if it has none."""
    fid = table.get(key)
    if fid is None:
        fid = table[key] = len(words) + len(pairs)
    return fid


def _stemmed(text: str) -> str:
    return " ".join(map(stem, text.split()))


def _deletions(word: str, depth: int) -> set[str]:
    """`word` with one up to `depth` letters deleted."""
    out: set[str] = set()
    layer = {word}
    for _ in range(depth):
        layer = {w[:i] + w[i + 1 :] for w in layer for i in range(len(w))} - out
        out |= layer
    out.discard(word)
    return out


class _Folder:
    """`fold`, then `stem` on each word; word by word with a cache for plain ASCII
    phrases: indexing many phrases built from the same few thousand words stays fast."""

    def __init__(self) -> None:
        self._words: dict[str, str] = {}
        self._starts = phrase_starts()

    def __call__(self, phrase: str) -> str:
        if not phrase.isascii():
            return _stemmed(fold(phrase))
        out = []
        for word in phrase.split():
            folded = self._words.get(word)
            if folded is None:
                # A word that `fold` may join with its neighbour: fold the phrase whole.
                joins = any(plain in self._starts for plain, _ in fold_word(word))
                folded = self._words[word] = _WHOLE if joins else _stemmed(fold(word))
            if folded == _WHOLE:
                return _stemmed(fold(phrase))
            if folded:
                out.append(folded)
        return " ".join(out)
