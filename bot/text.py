"""Vietnamese text as citizens type it on phones: NFC, folding, teencode, tokens.

    nfc            Unicode NFC, tone marks on one canonical vowel, zero-width chars gone
    normalize      nfc + lowercase + only letters/digits (diacritics kept) + single spaces
    fold           normalize + no diacritics + squeezed repeats + teencode expanded
    tokens         fold(text).split()
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
from functools import lru_cache

__all__ = [
    "PHRASES",
    "TEENCODE",
    "fold",
    "is_blank",
    "nfc",
    "normalize",
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
#   a, v, z are too ambiguous and stay as they are.
TEENCODE: dict[str, str] = {
    # không
    "ko": "khong",
    "k": "khong",
    "kg": "khong",
    "kh": "khong",
    "khg": "khong",
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
    # short words
    "j": "gi",
    "ntn": "nhu the nao",
    "mk": "minh",
    "mik": "minh",
    "mn": "moi nguoi",
    "vs": "voi",
    "ns": "noi",
    "r": "roi",
    "bn": "ban",
    "ak": "a",
    "e": "em",
    "lm": "lam",
    "bt": "biet",
    "cx": "cung",
    "trc": "truoc",
    "ng": "nguoi",
    # papers and accounts
    "sdt": "so dien thoai",
    "dt": "dien thoai",
    "cccd": "can cuoc cong dan",
    "cmnd": "chung minh nhan dan",
    "tk": "tai khoan",
    "bhyt": "bao hiem y te",
    "gplx": "giay phep lai xe",
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
# text: extend them at import time, before the first call.
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


def _expand(accented: str, plain: str) -> str:
    # As typed first ("cccd" is not emphasis), then with repeats squeezed ("dccc").
    found = _lookup(accented, plain)
    if found is None:
        accented, plain = _squeeze(accented), _squeeze(plain)
        found = _lookup(accented, plain)
    return plain if found is None else found


def _phrase_table() -> tuple[dict[tuple[str, ...], str], int]:
    table = {tuple(k.split()): v for k, v in PHRASES.items()}
    return table, max((len(k) for k in table), default=0)


def fold(text: str) -> str:
    """Plain lowercase words for matching: no diacritics, no emphasis, teencode expanded."""
    return _fold_cached(text) if len(text) <= _CACHED_CHARS else _fold(text)


@lru_cache(maxsize=16_384)
def _fold_cached(text: str) -> str:
    return _fold(text)


def _fold(text: str) -> str:
    norm = normalize(text)
    accented = norm.split()
    plain = strip_accents(norm).split()
    phrases, longest = _phrase_table()
    out: list[str] = []
    i = 0
    while i < len(plain):
        for size in range(min(longest, len(plain) - i), 0, -1):
            value = phrases.get(tuple(plain[i : i + size]))
            if value is not None:
                out.append(strip_accents(value))
                i += size
                break
        else:
            out.append(_expand(accented[i], plain[i]))
            i += 1
    return " ".join(out)


def tokens(text: str) -> list[str]:
    """The folded words of `text`."""
    return fold(text).split()


def is_blank(text: str) -> bool:
    """True when `text` has no letter or digit: empty, spaces, punctuation, emoji."""
    return _WORD_CHAR.search(text) is None
