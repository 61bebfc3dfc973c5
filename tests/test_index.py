"""The phrase index: folding, typo-tolerant lookup, IDF weights, ranking."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from bot.index import PhraseIndex, Scoring, _deletions, _Explained, _Folder, stem
from bot.knowledge import load_knowledge
from bot.text import fold

ROOT = Path(__file__).resolve().parents[1]

DOCS = [
    ("password", "quên mật khẩu vneid"),
    ("password", "quen mat khau vneid"),  # folds like the one above: indexed once
    ("password", "không nhớ mật khẩu đăng nhập"),
    ("passcode", "quên passcode vneid"),
    ("passcode", "passcode là gì"),
    ("activate", "kích hoạt tài khoản vneid"),
    ("activate", "kích hoạt vneid"),
    ("nfc", "máy không có nfc"),
    ("residence", "nhập hộ khẩu cho con"),
]


@pytest.fixture(scope="module")
def index() -> PhraseIndex[str]:
    return PhraseIndex(DOCS)


def test_phrases_are_folded_and_deduplicated(index: PhraseIndex[str]) -> None:
    assert len(index) == len(DOCS) - 1
    assert "mat" in index.vocabulary and "mật" not in index.vocabulary
    assert index.targets == ["password", "passcode", "activate", "nfc", "residence"]


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("kich haot vnied", "kich hoat vneid"),  # swapped letters
        ("kichs hoatj vneid", "kich hoat vneid"),  # Telex marks left in
        ("kich hoat vnid", "kich hoat vneid"),  # a letter missing
        ("kichhoat vneid", "kich hoat vneid"),  # no space
        ("pass code", "passcod"),  # a space too many (English words are kept by stem)
        ("quen mat khua", "quen mat khau"),
        ("toi quen", "toi quen"),  # short words are never "corrected"
        ("thoi tiet", "thoi tiet"),  # unknown words stay
    ],
)
def test_correct(index: PhraseIndex[str], typed: str, meant: str) -> None:
    assert index.correct(typed) == meant


def test_common_words_weigh_less_than_distinctive_ones(index: PhraseIndex[str]) -> None:
    # "vneid" is in three targets' phrases, "passcode" in one.
    both = index.search("vneid passcode")
    assert both[0].target == "passcode"
    alone = index.search("vneid")
    assert alone[0].score < both[0].score


def test_pairs_of_words_tell_compounds_apart(index: PhraseIndex[str]) -> None:
    # "nhap" is in both; "dang nhap" is only a password phrase.
    assert index.search("loi dang nhap")[0].target == "password"
    assert index.search("nhap ho khau")[0].target == "residence"


def test_search_ranks_one_hit_per_target(index: PhraseIndex[str]) -> None:
    hits = index.search("tôi quên mật khẩu vneid rồi", limit=3)
    assert [h.target for h in hits][0] == "password"
    assert len({h.target for h in hits}) == len(hits) <= 3
    assert hits[0].phrase == "quen mat khau vneid"
    assert all(0 <= h.score <= 100 for h in hits)
    assert hits == sorted(hits, key=lambda h: -h.score)


def test_unknown_words_lower_the_score(index: PhraseIndex[str]) -> None:
    plain = index.search("quên mật khẩu vneid")[0].score
    other = index.search("quên mật khẩu vneid gmail facebook tiktok")[0].score
    assert other < plain


def test_knows_the_words_of_its_phrases(index: PhraseIndex[str]) -> None:
    assert index.knows("nfc") and index.knows("khau")
    assert index.knows("passcod")  # English words by their stem, as messages are read
    assert not index.knows("gmail")
    assert not index.knows("quen mat")  # single words only


@pytest.mark.parametrize("text", ["", "😀", "thời tiết hôm nay", "123"])
def test_nothing_known_finds_nothing(index: PhraseIndex[str], text: str) -> None:
    assert index.search(text) == []


def test_scoring_settings() -> None:
    with pytest.raises(ValueError, match="unknown fuzzer"):
        Scoring(fuzzer="nope")
    plain = PhraseIndex(DOCS, Scoring(rerank=0.0, pool=0.0, pairs=0.0))
    assert plain.search("quên mật khẩu vneid")[0].score == pytest.approx(100.0)


def test_deletions() -> None:
    assert _deletions("abc", 1) == {"bc", "ac", "ab"}
    assert "a" in _deletions("abc", 2) and "abc" not in _deletions("abc", 2)


def test_the_fast_fold_equals_fold() -> None:
    folder = _Folder()
    entries, _ = load_knowledge(ROOT / "knowledge" / "answers")
    texts = [t for e in entries.values() for ts in e.examples.values() for t in ts]
    tricky = ["vn eid la gi", "Thank you ban", "VN-EID", "cccd moi", "e muon hoi", "okkk", "k dc"]
    rng = random.Random(7)
    words = [w for t in texts for w in t.split()]
    shuffled = [" ".join(rng.choices(words, k=6)) for _ in range(300)]
    for text in texts + tricky + shuffled:
        assert folder(text) == " ".join(map(stem, fold(text).split())), text


def test_what_a_target_explains_agrees_with_its_phrases() -> None:
    # _Explained reads "target postings"; here it is worked out from the phrases.
    index = PhraseIndex(DOCS)
    for text in ["quên mật khẩu passcode vneid", "kích hoạt tài khoản nfc", "nhập hộ khẩu"]:
        query = index._query(fold(text).split())
        explained = _Explained(index, query.matches)
        for tid, target in enumerate(index.targets):
            said = set()
            for pid in range(index._first[tid], index._first[tid + 1]):
                words = index._texts[pid].split()
                ids = [index._words[w] for w in words]
                keys = [a * index._width + b for a, b in zip(ids, ids[1:], strict=False)]
                pairs = [index._pairs.get(k) for k in keys]
                said |= set(ids) | {p for p in pairs if p is not None}
            want = sum(index._idf[f] * c for f, c in query.matches.items() if f in said)
            assert explained(tid) == pytest.approx(want), (text, target)


def test_english_words_are_found_by_their_stem() -> None:
    index = PhraseIndex([("fail", "nfc scan failed"), ("install", "install the app")])
    assert index.search("scanning keeps failing")[0].target == "fail"
    assert index.search("installed apps")[0].target == "install"
    assert index.correct("installing") == "install"
