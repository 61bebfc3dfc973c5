"""Vietnamese text as citizens type it on phones: NFC, folding, teencode, tokens.

    nfc            Unicode NFC, tone marks on one canonical vowel, zero-width chars gone
    normalize      nfc + lowercase + only letters/digits (diacritics kept) + single spaces
    fold           normalize + no diacritics + squeezed repeats + teencode expanded
    tokens         fold(text).split()
    stem           an English word's stem ("crashing" → "crash"); Vietnamese words as they are
    is_blank       nothing but spaces, punctuation or emoji
    strip_accents  diacritics removed from Latin letters, case kept

Canonical tone placement is the *classic* one ("kiểu cũ"), which is what Unikey
and most government pages produce: an open syllable with two vowels takes the
tone on the first vowel (hòa, thúy, khỏe, mùa); a closed one on the second
(hoàng, thuận); a vowel with a hat or horn always carries it (được, thuế);
three vowels put it on the middle one (ngoài, khuỷu). So "hoà" → "hòa" and
"thuý" → "thúy". Words that are not well-formed Vietnamese syllables are left
as they are, so "café" or "España" do not change.

Pure and fast: no I/O, no state; every message passes through here.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache

__all__ = [
    "PHRASES",
    "TEENCODE",
    "fold",
    "is_blank",
    "nfc",
    "normalize",
    "refresh",
    "stem",
    "strip_accents",
    "tokens",
]

# Teencode and abbreviations, applied to whole tokens only, as typed ("cccd") and
# then with repeats squeezed ("dccc" → "dc"). Keys are lowercase, in nfc() form
# (classic tones). A key without diacritics also matches a token whose only
# diacritic is đ ("đc" → "dc", "sđt" → "sdt"), but not one with tone marks or hats:
# "hỏng" (broken), "hồng" and "hẻm" (alley) stay plain words, only a bare "hong"/"hem"
# means "không". A key with diacritics ("hông") matches that exact spelling only.
# Values are plain folded words. Deliberate choices for this domain:
#   dk / đk → "dang ky" (đăng ký in admin speech, not "được" nor "điều kiện")
#   mk      → "minh" (not "mật khẩu", so "quên mk" folds to "quen minh")
#   dt / đt → "dien thoai" (điện thoại)
#   hk      → "khong" alone; "sổ hk", "nhập hk"… are hộ khẩu (PHRASES below)
#   cmt     → "chung minh nhan dan": chứng minh thư is the same old ID card as CMND
#   ki / kí / kì → "ky": the two spellings of one syllable (đăng kí = đăng ký)
#   a, v, z, ct, hs, ks, kt, tt are too ambiguous and stay as they are ("ct" is công
#   ty, chứng thực, con trai…; "hs" hồ sơ or học sinh; "ks" khai sinh or khách sạn).
TEENCODE: dict[str, str] = {
    # không
    "ko": "khong",
    "k": "khong",
    "kg": "khong",
    "kh": "khong",
    "khg": "khong",
    "hk": "khong",
    "hok": "khong",
    "hong": "khong",
    "hông": "khong",
    "hem": "khong",
    "kô": "khong",
    "khum": "khong",
    # được, đăng ký
    "dc": "duoc",
    "dk": "dang ky",
    "dky": "dang ky",
    "dki": "dang ky",
    # one syllable, two spellings
    "ki": "ky",
    "kí": "ky",
    "kì": "ky",
    "li": "ly",
    "lí": "ly",
    "mĩ": "my",
    "qui": "quy",
    # short words
    "j": "gi",
    "ntn": "nhu the nao",
    "mk": "minh",
    "mik": "minh",
    "mn": "moi nguoi",
    "mng": "moi nguoi",
    "ngta": "nguoi ta",
    "vs": "voi",
    "ns": "noi",
    "r": "roi",
    "oy": "roi",
    "ròi": "roi",
    "bn": "ban",
    "ak": "a",
    "ah": "a",
    "e": "em",
    "ad": "admin",
    "lm": "lam",
    "bt": "biet",
    "bik": "biet",
    "bjt": "biet",
    "bít": "biet",
    "cx": "cung",
    "trc": "truoc",
    "ng": "nguoi",
    "lun": "luon",
    "nhìu": "nhieu",
    "wa": "qua",
    "pk": "phai khong",
    "fai": "phai",
    "hnay": "hom nay",
    "hqua": "hom qua",
    "bjo": "bay gio",
    "bgio": "bay gio",
    "trl": "tra loi",
    "tn": "tin nhan",
    "wen": "quen",
    "dag": "dang",
    "đag": "dang",
    "bnhieu": "bao nhieu",
    "nx": "nua",
    "ms": "moi",
    "thui": "thoi",
    "trog": "trong",
    "tgian": "thoi gian",
    # papers, offices and accounts
    "sdt": "so dien thoai",
    "sdth": "so dien thoai",
    "dt": "dien thoai",
    "dth": "dien thoai",
    "dthoai": "dien thoai",
    "dtdd": "dien thoai di dong",
    "stk": "so tai khoan",
    "cccd": "can cuoc cong dan",
    "cmnd": "chung minh nhan dan",
    "cmt": "chung minh nhan dan",
    "cmtnd": "chung minh nhan dan",
    "tk": "tai khoan",
    "bhyt": "bao hiem y te",
    "bhxh": "bao hiem xa hoi",
    "gplx": "giay phep lai xe",
    "gks": "giay khai sinh",
    "dkks": "dang ky khai sinh",
    "dkkt": "dang ky khai tu",
    "dkkh": "dang ky ket hon",
    "tthn": "tinh trang hon nhan",
    "lltp": "ly lich tu phap",
    "gcn": "giay chung nhan",
    "xn": "xac nhan",
    "dvc": "dich vu cong",
    "dvcqg": "dich vu cong quoc gia",
    "tthc": "thu tuc hanh chinh",
    "ubnd": "uy ban nhan dan",
    "csgt": "canh sat giao thong",
    "kq": "ket qua",
    "hcc": "hanh chinh cong",
    "pvhcc": "phuc vu hanh chinh cong",
    "qlhc": "quan ly hanh chinh",
    "dvhc": "don vi hanh chinh",
    "tp": "thanh pho",
    "lv1": "muc 1",
    "lv2": "muc 2",
    # English typed into Vietnamese ("tk chưa active"): the word the examples use
    "active": "activate",
    "actived": "activate",
    # phones and their parts
    "ip": "iphone",
    "cip": "chip",
    "chíp": "chip",
    # other apps, so that their names read the same however typed
    "fb": "facebook",
    "zl": "zalo",
    "ytb": "youtube",
    # ok, thanks
    "ok": "ok",
    "okk": "ok",
    "oke": "ok",
    "oki": "ok",
    "okie": "ok",
    "thanks": "cam on",
    "thank": "cam on",
    "tks": "cam on",
    "thx": "cam on",
    "camon": "cam on",
}

# Folded token runs with one meaning; matched before TEENCODE, longest first.
PHRASES: dict[str, str] = {
    "vn eid": "vneid",
    "v neid": "vneid",
    "vne id": "vneid",
    "vn e id": "vneid",
    "v n e i d": "vneid",
    "thank you": "cam on",
    "thank u": "cam on",
    # hộ khẩu where "hk" cannot be "không"
    "so hk": "so ho khau",
    "nhap hk": "nhap ho khau",
    "tach hk": "tach ho khau",
    "chuyen hk": "chuyen ho khau",
    "cat hk": "cat ho khau",
    "hk thuong tru": "ho khau thuong tru",
    # the old ID card under its other name
    "chung minh thu": "chung minh nhan dan",
}

_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u200e\u200f\u2060\ufeff\u00ad"))

_TONES = frozenset("\u0300\u0301\u0303\u0309\u0323")  # huyền, sắc, ngã, hỏi, nặng
_HAT, _BREVE, _HORN = "\u0302", "\u0306", "\u031b"
# Base vowel → the modifiers it may carry in Vietnamese (â ê ô, ă, ơ ư).
_VOWELS: dict[str, frozenset[str]] = {
    "a": frozenset({"", _HAT, _BREVE}),
    "e": frozenset({"", _HAT}),
    "i": frozenset({""}),
    "o": frozenset({"", _HAT, _HORN}),
    "u": frozenset({"", _HORN}),
    "y": frozenset({""}),
}
_INITIALS = frozenset(
    "b c ch d đ g gh gi h k kh l m n ng ngh nh p ph q r s t th tr v x".split() + [""]
)
_FINALS = frozenset("c ch m n ng nh p t".split() + [""])

# After NFD every Vietnamese letter is ASCII + combining marks, except đ/Đ.
_NFD_WORD = re.compile(r"[A-Za-zĐđ\u0300-\u036f]+")
_TONE = re.compile("[" + "".join(sorted(_TONES)) + "]")
_LATIN_MARKS = re.compile(r"([A-Za-z])[\u0300-\u036f]+")
_NOT_WORD = re.compile(r"[\W_]+")
_WORD_CHAR = re.compile(r"[^\W_]")
_REPEATS = re.compile(r"([^\W\d_])\1{2,}")
# Letters then digits in one token ("muc2", "iphone11", "cccd12so"): two words as typed
# in a hurry. Not one letter and a number ("a1", "b2": licence classes), nor a number
# then letters ("100k", "4g").
_GLUED = re.compile(r"^([^\W\d_]{2,})(\d+)$")
_D = str.maketrans("đĐ", "dD")


def _tone_index(bases: list[str], mods: list[str]) -> int | None:
    """Where the tone goes in one syllable (lowercase bases), or None if not Vietnamese."""
    n = len(bases)
    i = 0
    while i < n and bases[i] not in _VOWELS:
        i += 1
    initial = "".join(bases[:i])
    if initial not in _INITIALS or any(mods[:i]):
        return None
    # In "qu" and in "gi" + vowel the u / i belongs to the consonant (quý, giữa; but gìn).
    if initial == "q":
        if i >= n or bases[i] != "u" or mods[i]:
            return None
        i += 1
    elif initial == "g" and i + 1 < n and bases[i] == "i" and bases[i + 1] in _VOWELS:
        i += 1
    j = i
    while j < n and bases[j] in _VOWELS:
        if mods[j] not in _VOWELS[bases[j]]:
            return None
        j += 1
    size = j - i
    if size == 0 or size > 3 or "".join(bases[j:]) not in _FINALS or any(mods[j:]):
        return None
    marked = [k for k in range(i, j) if mods[k]]
    if marked:
        return marked[-1]  # ươ → ơ
    if size == 3:
        return i + 1
    if size == 2:
        return i + 1 if j < n else i  # classic: hòa, thúy; closed: hoàng
    return i


def _place_tone(match: re.Match[str]) -> str:
    word = match.group()
    tones = [c for c in word if c in _TONES]
    if len(tones) != 1:
        return word
    bases: list[str] = []
    mods: list[str] = []
    for c in word:
        if c in _TONES:
            continue
        if unicodedata.combining(c):
            if not bases or c not in (_HAT, _BREVE, _HORN):
                return word
            mods[-1] += c
        else:
            bases.append(c)
            mods.append("")
    at = _tone_index([b.lower() for b in bases], mods)
    if at is None:
        return word
    return "".join(
        b + m + (tones[0] if k == at else "")
        for k, (b, m) in enumerate(zip(bases, mods, strict=True))
    )


# normalize() and fold() run on every message and on every choice label; short texts
# repeat a lot, so their results are kept. The tables above are read once per distinct
# text or word: extend them at import time, or call refresh() after.
_CACHED_CHARS = 256


def nfc(text: str) -> str:
    """NFC text with zero-width characters removed and tones in the classic place."""
    if text.isascii():
        return text  # most citizens type without diacritics; nothing to do
    text = unicodedata.normalize("NFD", text.translate(_ZERO_WIDTH))
    if _TONE.search(text) is not None:
        text = _NFD_WORD.sub(_place_tone, text)
    return unicodedata.normalize("NFC", text)


def _is_letter_mark(char: str) -> bool:
    # Not emoji variation selectors (U+FE0F) nor enclosing marks (the keycap in "2️⃣").
    return unicodedata.category(char) in ("Mn", "Mc") and not "\ufe00" <= char <= "\ufe0f"


def _gap(match: re.Match[str]) -> str:
    # A run of non-word characters becomes one space, but combining marks right after a
    # letter stay with it: Thai and Devanagari vowel signs are marks, not punctuation.
    run = match.group()
    k = 0
    if match.start() > 0:
        while k < len(run) and _is_letter_mark(run[k]):
            k += 1
    return run[:k] + (" " if k < len(run) else "")


def normalize(text: str) -> str:
    """Lowercase NFC words and numbers, single-spaced; diacritics kept, the rest dropped."""
    return _normalize_cached(text) if len(text) <= _CACHED_CHARS else _normalize(text)


@lru_cache(maxsize=16_384)
def _normalize_cached(text: str) -> str:
    return _normalize(text)


def _normalize(text: str) -> str:
    return _NOT_WORD.sub(_gap, nfc(text).lower()).strip()


def strip_accents(text: str) -> str:
    """Text without diacritics on Latin letters (đ → d, Ơ → O); case and other scripts kept."""
    text = _LATIN_MARKS.sub(r"\1", unicodedata.normalize("NFD", text))
    return unicodedata.normalize("NFC", text).translate(_D)


def _squeeze(text: str) -> str:
    # Vietnamese never triples a letter ("xoong" has two), so 3+ is emphasis.
    return _REPEATS.sub(r"\1", text)


def _lookup(accented: str, plain: str) -> str | None:
    if accented in TEENCODE:
        return strip_accents(TEENCODE[accented])
    if plain in TEENCODE and accented.translate(_D) == plain:
        return strip_accents(TEENCODE[plain])
    return None


@lru_cache(maxsize=65_536)
def _word(accented: str) -> tuple[str, str]:
    """One normalized word → (its plain form, for PHRASES; its folded form). Messages
    and phrases are made of a few thousand distinct words: each is worked out once."""
    plain = strip_accents(accented) if not accented.isascii() else accented
    # As typed first ("cccd" is not emphasis), then with repeats squeezed ("dccc").
    found = _lookup(accented, plain)
    if found is None:
        squeezed = _squeeze(plain)
        found = _lookup(_squeeze(accented), squeezed)
        if found is None:
            glued = _GLUED.match(accented)
            found = f"{_word(glued[1])[1]} {glued[2]}" if glued else squeezed
    return plain, found


_PhraseTable = tuple[dict[tuple[str, ...], str], int, frozenset[str], tuple[str, ...]]


def _phrase_table() -> _PhraseTable:
    table = {tuple(k.split()): strip_accents(v) for k, v in PHRASES.items()}
    starts = frozenset(k[0] for k in table)
    padded = tuple(f" {' '.join(k)} " for k in table)
    return table, max((len(k) for k in table), default=0), starts, padded


_PHRASE_TABLE = _phrase_table()


def refresh() -> None:
    """Forget cached results: after TEENCODE or PHRASES changed (tests, tools), or to
    time a cold start (bench/router.py)."""
    global _PHRASE_TABLE
    _PHRASE_TABLE = _phrase_table()
    _normalize_cached.cache_clear()
    _word.cache_clear()
    _fold_cached.cache_clear()
    stem.cache_clear()


def fold(text: str) -> str:
    """Plain lowercase words for matching: no diacritics, no emphasis, teencode expanded."""
    return _fold_cached(text) if len(text) <= _CACHED_CHARS else _fold(text)


@lru_cache(maxsize=16_384)
def _fold_cached(text: str) -> str:
    return _fold(text)


def _fold(text: str) -> str:
    return join_words([_word(w) for w in normalize(text).split()])


def fold_word(word: str) -> list[tuple[str, str]]:
    """The words `fold` sees in one whitespace-free piece of text, each as (its plain
    form, its folded form), before PHRASES join them; for callers that fold many texts
    built from the same words and cache the pieces (bot.index)."""
    return [_word(w) for w in normalize(word).split()]


def phrase_starts() -> frozenset[str]:
    """The plain words a run in PHRASES may start with."""
    return _PHRASE_TABLE[2]


def join_words(words: Sequence[tuple[str, str]]) -> str:
    """The folded text of words from `fold_word`: runs in PHRASES joined, the rest
    each in its folded form."""
    phrases, longest, starts, padded = _PHRASE_TABLE
    if not any(plain in starts for plain, _ in words):
        return " ".join(found for _, found in words if found)
    plain = [p for p, _ in words]
    text = f" {' '.join(plain)} "
    if not any(key in text for key in padded):  # a start word, but no whole run
        return " ".join(found for _, found in words if found)
    out: list[str] = []
    i = 0
    while i < len(words):
        if plain[i] in starts:
            for size in range(min(longest, len(words) - i), 0, -1):
                value = phrases.get(tuple(plain[i : i + size]))
                if value is not None:
                    out.append(value)
                    i += size
                    break
            else:
                out.append(words[i][1])
                i += 1
        else:
            out.append(words[i][1])
            i += 1
    return " ".join(w for w in out if w)


_PLAIN_INITIALS = frozenset(i.replace("đ", "d") for i in _INITIALS)
_PLAIN_VOWELS = frozenset("aeiouy")


def _vietnamese(word: str) -> bool:
    """`word` (folded) has the shape of a Vietnamese syllable: initial, 1-3 vowels, final."""
    i = 0
    while i < len(word) and word[i] not in _PLAIN_VOWELS:
        i += 1
    if word[:i] not in _PLAIN_INITIALS:
        return False
    j = i
    while j < len(word) and word[j] in _PLAIN_VOWELS:
        j += 1
    return 0 < j - i <= 3 and word[j:] in _FINALS


@lru_cache(maxsize=65_536)
def stem(word: str) -> str:
    """A folded English word without its inflection, so that "received", "receive" and
    "receiving" are one word ("receiv"), as are "crashes" and "crashing". Words shaped
    like Vietnamese syllables ("the", "tim", "sinh"), short words and digits are left
    as they are: no Vietnamese syllable ends in -s, -ed or -ing, so nothing of theirs is
    cut."""
    if len(word) < 4 or not word.isalpha() or _vietnamese(word):
        return word
    if word.endswith(("ied", "ies")) and len(word) >= 6:
        return word[:-3] + "y"
    if word.endswith("ing") and len(word) >= 6 or word.endswith("ed") and len(word) >= 6:
        word = word[: -3 if word.endswith("ing") else -2]
        if word[-1] == word[-2] and word[-1] not in "aeiouylsz":
            word = word[:-1]  # "scanned" → "scann" → "scan"
    elif word.endswith(("ches", "shes", "sses", "xes")):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    return word[:-1] if word.endswith("e") and len(word) >= 6 else word


def tokens(text: str) -> list[str]:
    """The folded words of `text`."""
    return fold(text).split()


def is_blank(text: str) -> bool:
    """True when `text` has no letter or digit: empty, spaces, punctuation, emoji."""
    return _WORD_CHAR.search(text) is None
