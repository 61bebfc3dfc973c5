"""Read a citizen's typed answer to an `ask` step or a step with choices.

Every function is pure and returns the parsed value, or None when the text does
not clearly fit (the engine then says the step's `invalid` text and asks again).
Guessing wrong is worse than asking again, so "unsure" is always None.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache

from rapidfuzz import fuzz

from bot.text import fold, nfc, normalize

__all__ = ["match_choice", "parse_date", "parse_number", "parse_phone", "parse_yes_no"]

# A message longer than this is a story, not an answer to a yes/no question or buttons.
_MAX_WORDS = 60

# --- numbers -----------------------------------------------------------------------------

# Words and numbers with what is glued to them ("50k", "1.965,5"); found in one pass.
_CHUNK = re.compile(r"[\w.,\-]+")
_CLEAN_NUMBER = re.compile(r"-?\d+(?:[.,]\d+)*")
_MAX_NUMBER_CHARS = 30  # no answer needs more; int() of thousands of digits is refused
_THOUSANDS_DOT = re.compile(r"\d{1,3}(?:\.\d{3})+")
_THOUSANDS_COMMA = re.compile(r"\d{1,3}(?:,\d{3}){2,}")
_DECIMAL = re.compile(r"\d+[.,]\d+")
_GROUPED_DECIMAL = re.compile(r"\d{1,3}(?:\.\d{3})+,\d+")


def _readings(token: str) -> list[int | float]:
    """The values a number token can mean, the likelier first."""
    sign = -1 if token.startswith("-") else 1
    digits = token.lstrip("-")
    if digits.isdigit():
        return [sign * int(digits)]
    if _THOUSANDS_DOT.fullmatch(digits):
        whole = [sign * int(digits.replace(".", ""))]
        # "1.965" is 1965 in Vietnamese, but 1.965 if only that fits the bounds.
        return whole + ([sign * float(digits)] if digits.count(".") == 1 else [])
    if _THOUSANDS_COMMA.fullmatch(digits):
        return [sign * int(digits.replace(",", ""))]
    if _GROUPED_DECIMAL.fullmatch(digits):
        return [sign * float(digits.replace(".", "").replace(",", "."))]
    if _DECIMAL.fullmatch(digits):
        return [sign * float(digits.replace(",", "."))]
    return []


def _within(value: float, low: float | None, high: float | None) -> bool:
    return (low is None or value >= low) and (high is None or value <= high)


def parse_number(
    text: str, min: float | None = None, max: float | None = None
) -> int | float | None:
    """The one number in `text`, within [min, max]; int unless a decimal was typed.

    "1965", "năm 1965 ạ" → 1965; "12,5" and "12.5" → 12.5 (a comma is the decimal
    mark). A dot followed by exactly three digits groups thousands: "1.500.000" →
    1500000, and "1.965" → 1965, unless only the decimal reading 1.965 is within
    the bounds; so do two or more commas ("1,000,000"). Text with two numbers, or a
    number glued to letters ("50k"), is None.
    """
    chunks = _CHUNK.findall(unicodedata.normalize("NFKC", text))
    found = [chunk for chunk in chunks if any(c.isdigit() for c in chunk)]
    if len(found) != 1:
        return None
    token = found[0].strip(".,")  # "1965." at the end of a sentence
    if len(token) > _MAX_NUMBER_CHARS or not _CLEAN_NUMBER.fullmatch(token):
        return None
    for value in _readings(token):
        if _within(value, min, max):
            return value
    return None


# --- dates -------------------------------------------------------------------------------

_DATE_NUMBER = re.compile(r"\d+")


def _year(digits: str, today: dt.date) -> int | None:
    if len(digits) == 4:
        return int(digits)
    if len(digits) == 2:
        short = int(digits)
        return 2000 + short if short <= today.year % 100 else 1900 + short
    return None


def parse_date(
    text: str,
    min_year: float | None = None,
    max_year: float | None = None,
    *,
    today: dt.date | None = None,
) -> dt.date | None:
    """The date in `text`, day first, with its year within [min_year, max_year].

    Accepts "15/3/1965", "15-03-1965", "15.3.1965", "15 3 1965", "15031965",
    "ngày 15 tháng 3 năm 1965", "15 thang 3 nam 1965" and "1965-03-15" (a four-digit
    first number is a year). A two-digit year is 20yy up to this year's yy
    ("15/3/05" → 2005), otherwise 19yy ("15/3/65" → 1965); `today` fixes "this
    year" for tests. Impossible dates (31/2) and texts with more numbers are None.
    """
    today = today or dt.date.today()
    numbers = _DATE_NUMBER.findall(fold(unicodedata.normalize("NFKC", text)))
    if len(numbers) == 1 and len(numbers[0]) == 8:
        only = numbers[0]
        numbers = [only[:2], only[2:4], only[4:]]
    if len(numbers) != 3:
        return None
    if len(numbers[0]) == 4:
        year_digits, month_digits, day_digits = numbers
    else:
        day_digits, month_digits, year_digits = numbers
    year = _year(year_digits, today)
    if year is None or len(day_digits) > 2 or len(month_digits) > 2:
        return None
    if not _within(year, min_year, max_year):
        return None
    try:
        return dt.date(year, int(month_digits), int(day_digits))
    except ValueError:
        return None


# --- phone numbers -----------------------------------------------------------------------

# Digits with the separators people type between groups.
_PHONE = re.compile(r"\+?\d(?:[\d .\-()]*\d)?")
_MOBILE = re.compile(r"0[35789]\d{8}")
_LANDLINE = re.compile(r"02\d{9}")  # area code 02x or 02xx, then the number: 11 digits


def parse_phone(text: str) -> str | None:
    """A Vietnamese phone number as 10 or 11 digits starting with 0, or None.

    "0912 345 678", "0912.345.678", "+84912345678", "84 912 345 678" → "0912345678".
    Mobiles are 10 digits (03, 05, 07, 08, 09); landlines are 11 digits starting 02
    ("0203 3835 123", Quảng Ninh). Two numbers, letters inside, wrong length: None.
    """
    text = unicodedata.normalize("NFKC", text)
    found = list(_PHONE.finditer(text))
    if len(found) != 1:
        return None
    start, end = found[0].span()
    if (start > 0 and text[start - 1].isalpha()) or (end < len(text) and text[end].isalpha()):
        return None  # "0912abc", "a0912345678": not a number someone typed on purpose
    digits = re.sub(r"\D", "", found[0].group())
    if digits.startswith("0084"):
        digits = digits[2:]
    if digits.startswith("84") and len(digits) in (11, 12):
        digits = "0" + digits[2:]
    elif found[0].group().startswith("+"):
        return None  # another country's number
    if _MOBILE.fullmatch(digits) or _LANDLINE.fullmatch(digits):
        return digits
    return None


# --- yes / no ----------------------------------------------------------------------------

_YES = frozenset({"co", "duoc", "dung", "roi", "ok", "yes", "y", "yep", "chuan"})
# Polite openers: yes on their own, but "dạ chưa" is no and "dạ có" is yes.
_SOFT_YES = frozenset({"da", "vang", "u", "uh", "um", "uhm", "uk", "uki"})
_NO = frozenset({"khong", "chua", "no", "n", "sai", "nope"})
_CLEAR = _YES | _NO
_OPENERS = frozenset(
    {"a", "em", "chau", "con", "toi", "minh", "tui", "bac", "ong", "anh", "chi", "oi", "thi"}
)
# Not "ma": folded, "mà" (but) is also "mã" (the code), which citizens mention often.
_BUT = frozenset({"nhung", "but", "tuy"})
# "không biết", "chưa rõ": the citizen is unsure, which is neither yes nor no.
_UNSURE = frozenset({"biet", "ro", "nho", "hieu", "chac"})


def parse_yes_no(text: str) -> bool | None:
    """True for yes, False for no, None when unclear or mixed.

    The answer is the first clear yes/no word ("có rồi em ơi" → yes, "chưa nhận
    được" → no, "dạ chưa" → no, "dạ" → yes). A yes followed by a no word is mixed
    or a question ("có nhưng không", "được không") → None; a no may be followed by
    verbs ("không có", "chưa được") unless "nhưng" brings a yes after it.
    """
    words = fold(text).split()
    if len(words) > _MAX_WORDS:
        return None
    soft = False
    at = 0
    while at < len(words) and (words[at] in _OPENERS or words[at] in _SOFT_YES):
        soft = soft or words[at] in _SOFT_YES
        at += 1
    if at == len(words) or words[at] not in _CLEAR:
        return True if soft else None
    first, rest = words[at], words[at + 1 :]
    if first in _NO:
        if rest[:1] and rest[0] in _UNSURE:
            return None
        turned = False
        for word in rest:
            turned = turned or word in _BUT
            if turned and word in _YES:
                return None  # "không nhưng có"
        return False
    if any(w in _NO for w in rest) or (first == "co" and rest[:1] == ["le"]):
        return None  # mixed, a question ("được không"), or "có lẽ" (maybe)
    return True


# --- choices -----------------------------------------------------------------------------

# Words around a typed number: "chọn 2", "số 2 ạ", "em chọn phương án 2".
_NUMBER_WORDS = frozenset(
    "chon so phuong an lua cai muc y cau em toi minh chau con bac da la nhe nha a oi".split()
)
_FUZZY_MIN = 80.0  # rapidfuzz ratio for a typo of a label
_FUZZY_LEAD = 10.0  # how far the best must be ahead of the second
_FUZZY_MAX_CHARS = 200  # longer messages are sentences, not mistyped labels


def _by_number(words: list[str], count: int) -> int | None:
    numbers = [w for w in words if w.isdigit()]
    if len(numbers) != 1 or any(w not in _NUMBER_WORDS for w in words if not w.isdigit()):
        return None
    if len(numbers[0]) > 2:  # a step has at most 10 choices
        return None
    index = int(numbers[0]) - 1
    return index if 0 <= index < count else None


def _labels_naming_number(words: list[str], labels: list[list[str]]) -> list[int] | None:
    """The labels holding a "word number" pair of the message ("muc 2"), or None when
    no label holds one (then a number in the message is a position)."""
    pairs = {(a, b) for a, b in zip(words, words[1:], strict=False) if b.isdigit()}
    if not pairs:
        return None
    named = [
        k for k, label in enumerate(labels) if pairs & set(zip(label, label[1:], strict=False))
    ]
    return named or None


_NEGATIONS = frozenset({"khong", "chua", "chang", "cha", "chu"})
_POLITE = frozenset("a da vang em chau con toi minh bac oi nhe nha ne".split())
# A one-word label counts inside a message at most this many words longer (polite
# words aside): "dạ có rồi ạ" chooses "Có", "tôi có câu hỏi khác" does not.
_SHORT_LABEL_MAX_EXTRA = 2


def _spans(words: list[str], label: list[str], said: int) -> list[tuple[int, int]]:
    size = len(label)
    if size == 1 and said > 1 + _SHORT_LABEL_MAX_EXTRA:
        return []  # "có" inside "tôi có câu hỏi khác" is not the choice "Có"
    return [
        (i, i + size)
        for i in range(len(words) - size + 1)
        if words[i : i + size] == label
        # "chưa nhận được" does not choose "Nhận được"
        and not (i > 0 and words[i - 1] in _NEGATIONS and label[0] not in _NEGATIONS)
    ]


def _by_containment(words: list[str], labels: list[list[str]]) -> int | None:
    said = sum(w not in _POLITE for w in words)
    spans = [
        (k, span) for k, label in enumerate(labels) if label for span in _spans(words, label, said)
    ]
    # "Chưa nhận" in "tôi chưa nhận được" also holds a label "Nhận": keep the outer one.
    outer = {
        k
        for k, (a, b) in spans
        if not any(c <= a and b <= d and d - c > b - a for _, (c, d) in spans)
    }
    return outer.pop() if len(outer) == 1 else None


def _by_own_words(words: list[str], labels: list[list[str]]) -> int | None:
    # "chưa" alone chooses "Chưa nhận": every word said belongs to that label only.
    said = {w for w in words if w not in _POLITE}
    if not said or len(said) > 1 + _SHORT_LABEL_MAX_EXTRA:
        return None
    return _unique([k for k, label in enumerate(labels) if said <= set(label)])


def _by_fuzz(text: str, labels: list[str]) -> int | None:
    if len(text) > _FUZZY_MAX_CHARS:
        return None
    scores = sorted(
        ((fuzz.ratio(text, label), k) for k, label in enumerate(labels) if label), reverse=True
    )
    if not scores or scores[0][0] < _FUZZY_MIN:
        return None
    if len(scores) > 1 and scores[0][0] - scores[1][0] < _FUZZY_LEAD:
        return None
    return scores[0][1]


def _unique(matches: list[int]) -> int | None:
    return matches[0] if len(matches) == 1 else None


def match_choice(text: str, labels: Sequence[str]) -> int | None:
    """The index in `labels` of the choice the citizen means, or None when unsure.

    In order: the label itself (any case, with or without diacritics); its number
    ("2", "2.", "số 2", "chọn 2", "2️⃣"); a label found as whole words in the message
    ("tôi chưa nhận được" → "Chưa nhận"); a few words found in one label only ("chưa"
    → "Chưa nhận"); a close typo of one label, clearly ahead of the others ("chua nhn"
    → "Chưa nhận", never "Đã nhận"). Polite words (dạ, ạ, em, …) do not count.
    """
    raw = nfc(text).strip()
    if not raw:
        return None
    same = [k for k, label in enumerate(labels) if _label_nfc(label) == raw]
    norm = normalize(raw)
    if not same and norm:
        same = [k for k, label in enumerate(labels) if _label_normalized(label) == norm]
    if same:
        return _unique(same)
    folded = fold(raw)
    if not folded:
        return None
    folded_labels = [_label_folded(label) for label in labels]
    same = [k for k, label in enumerate(folded_labels) if label == folded]
    if same:
        return _unique(same)
    words = folded.split()
    if len(words) > _MAX_WORDS:
        return None
    label_words = [label.split() for label in folded_labels]
    # A number that is part of a label ("mức 2" for "Đã có mức 2") names that label,
    # not the choice at that position.
    named = _labels_naming_number(words, label_words)
    if named is None:
        by_number = _by_number(words, len(labels))
        if by_number is not None:
            return by_number
    elif len(named) == 1:
        return named[0]
    for found in (_by_containment(words, label_words), _by_own_words(words, label_words)):
        if found is not None:
            return found
    return _by_fuzz(folded, folded_labels)


# The forms of a choice label, kept: labels are the flows' words, the same few hundred
# for every citizen, and normalizing them again for each answer was a tenth of a turn.
@lru_cache(maxsize=4096)
def _label_nfc(label: str) -> str:
    return nfc(label).strip()


@lru_cache(maxsize=4096)
def _label_normalized(label: str) -> str:
    return normalize(label)


@lru_cache(maxsize=4096)
def _label_folded(label: str) -> str:
    return fold(label)
