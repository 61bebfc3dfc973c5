"""Mask personal data before it is stored or shown to a volunteer.

What is masked (privacy first: when in doubt, mask):

    12-digit ID (CCCD, căn cước), 9-digit old CMND   *********890 / ******789
    Vietnamese phone numbers (0…, 84…, +84…)          09******78
    any standalone 6-digit number (OTP, passcode)      ******
    4–8 digit codes, when the message talks of an
    OTP, mã, passcode, mật khẩu, mã xác thực           ******
    the word after "mật khẩu là", "password is",
    "pass:" and the like                               ******

Digits may be grouped with spaces, dots or dashes ("0012 3456 7890", "0912.345.678").
What stays: years (1900–2099), dates (15/03/1965, 15.03.1965), short numbers
(menu choices), sums of money ("500.000 đồng"), links.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence

MASK = "******"

# A number as people type it: digit groups joined by one space, dot or dash.
# Letters may touch it ("sdt0912345678"); other digits, "*" (already masked) may not.
_RUN = re.compile(r"(?<![\d*+])\+?\d+(?:[ ./\-]\d+)*(?![\d*])")
_SPLIT = re.compile(r"([ ./\-])")

_CODE_WORDS = re.compile(
    r"(?<!\w)(?:otp|mã|passcode|password|pass|mật\s*khẩu|mat\s*khau|mật\s*mã|"
    r"ma\s*xac\s*(?:thuc|nhan)|ma\s*otp|code|pin\s*code)(?!\w)",
    re.IGNORECASE,
)

# "mật khẩu là X", "password is X", "pass: X", "OTP: 123456": X is the secret.
_SECRET = re.compile(
    r"(?P<lead>(?<!\w)(?:mật\s*khẩu|mat\s*khau|mật\s*mã|passcode|password|pass|mã\s*otp|"
    r"ma\s*otp|otp|mã\s*xác\s*(?:thực|nhận)|ma\s*xac\s*(?:thuc|nhan))(?!\w)"
    r"(?:\s*(?:của\s*(?:tôi|mình|em|tao)|cua\s*(?:toi|minh|em)|mới|moi|cũ|cu))?"
    r"\s*(?:(?:là|la|is)(?!\w)|:|=)\s*)"
    r"(?P<secret>[^\s,;]+)",
    re.IGNORECASE,
)
# "mã OTP 1987", "passcode 2024": right after the word, even a year-like code is a secret.
_CODE_AFTER = re.compile(
    r"(?P<lead>(?<!\w)(?:otp|passcode|mã(?:\s*(?:otp|pin|xác\s*thực|xác\s*nhận))?|"
    r"ma\s*(?:otp|pin|xac\s*thuc|xac\s*nhan)|mật\s*khẩu|mat\s*khau)(?!\w)"
    r"\s*(?:(?:là|la|is)(?!\w)|:|=)?\s*)"
    r"\d{4,8}(?![\d*])",
    re.IGNORECASE,
)
# Words that may follow "mật khẩu là" without being the secret ("mật khẩu là gì?").
_NOT_SECRET = frozenset(
    "gì gi j sao nào nao đâu dau đúng dung sai không khong ko k hả ha à a ạ "
    "what wrong correct incorrect right the my your a an gì? "
    "bao mấy may của cua mình minh tôi toi em anh chị chi số so chữ chu giờ gio "
    "thì thi rồi roi bị bi".split()
)
# Links are left whole: procedure codes in them look like OTPs ("ma_thu_tuc=1.001234").
_URL = re.compile(r"(https?://\S+|www\.\S+)", re.IGNORECASE)
# "k" only glued to the number ("100k"): alone it is teencode for "không".
_MONEY_AFTER = re.compile(
    r"(?:\s*(?:đ|đồng|dong|vnd|vnđ|nghìn|nghin|ngàn|ngan|triệu|trieu)|k)(?!\w)", re.IGNORECASE
)
# A phone or ID number is never typed in more pieces than this.
_MAX_GROUPS = 6


def redact(text: str) -> str:
    """`text` with ID numbers, phone numbers, OTPs and passwords masked."""
    text = unicodedata.normalize("NFC", text)
    text = _SECRET.sub(_mask_secret, text)
    text = _CODE_AFTER.sub(lambda m: m.group("lead") + MASK, text)
    code_context = _CODE_WORDS.search(text) is not None
    pieces = _URL.split(text)  # odd indexes are links
    for i in range(0, len(pieces), 2):
        pieces[i] = _mask_numbers(pieces[i], code_context=code_context)
    return "".join(pieces)


def _mask_numbers(text: str, *, code_context: bool) -> str:
    def replace(match: re.Match[str]) -> str:
        money = _MONEY_AFTER.match(text, match.end()) is not None
        return _mask_run(match.group(), code_context=code_context, money=money)

    return _RUN.sub(replace, text)


def _mask_secret(match: re.Match[str]) -> str:
    secret = match.group("secret")
    bare = secret.rstrip(".!?…").lower()
    if not bare or bare in _NOT_SECRET or re.fullmatch(r"\d{1,3}", bare):
        return match.group()
    return match.group("lead") + MASK


def _mask_run(run: str, *, code_context: bool, money: bool) -> str:
    """Mask one run of digit groups; split it where its groups are separate numbers."""
    plus = run.startswith("+")
    parts = _SPLIT.split(run.lstrip("+"))
    groups, seps = parts[0::2], parts[1::2]
    whole = _classify(groups, seps, plus=plus, code_context=code_context, money=money)
    if whole is not None:
        return whole
    # Greedy left to right: the longest stretch of groups that is a date, an ID or a phone.
    out: list[str] = []
    i = 0
    while i < len(groups):
        for j in range(min(len(groups), i + _MAX_GROUPS), i, -1):
            masked = _classify(
                groups[i:j],
                seps[i : j - 1],
                plus=plus and i == 0,
                code_context=code_context,
                money=money and j == len(groups),
            )
            if masked is not None:
                break
        else:
            j, masked = i + 1, groups[i]
        if out:
            out.append(seps[i - 1])
        elif plus and i == 0 and masked == groups[0]:
            out.append("+")
        out.append(masked)
        i = j
    return "".join(out)


def _classify(
    groups: Sequence[str], seps: Sequence[str], *, plus: bool, code_context: bool, money: bool
) -> str | None:
    """The masked form of these digit groups, the text unchanged when it must stay
    (a date, money), or None when they are not one number we know."""
    joined = "".join(groups)
    written = ("+" if plus else "") + "".join(
        g + s for g, s in zip(groups, [*seps, ""], strict=True)
    )
    if _is_date(groups, seps) or _is_money(groups, seps, money=money):
        return written
    # "1 2 3 4" are separate menu choices, not one number.
    grouped = len(groups) == 1 or (all(len(g) >= 2 for g in groups) and "/" not in seps)
    phone = _phone(joined, plus=plus) if grouped else None
    if phone is not None:
        return phone
    if plus or not grouped:
        return None
    # 9 digits (CMND) only as one block or in 3s/4s: "1965 12345" is a year and a code.
    if len(joined) == 12 and all(len(g) >= 3 for g in groups):
        return "*" * 9 + joined[-3:]
    if len(joined) == 9 and (len(groups) == 1 or all(len(g) in (3, 4) for g in groups)):
        return "*" * (len(joined) - 3) + joined[-3:]
    if len(joined) == 6 and (len(groups) == 1 or (seps == [" "] and len(groups[0]) == 3)):
        return MASK
    if len(groups) == 1 and code_context and 4 <= len(joined) <= 8 and not _is_year(joined):
        return MASK
    if len(groups) == 1:
        return written
    return None


def _phone(digits: str, *, plus: bool) -> str | None:
    """`09******78` for a Vietnamese phone number, else None."""
    if digits.startswith("84") and len(digits) in (11, 12, 13):
        national = "0" + digits[2:].removeprefix("0")  # "+84 0912…" is written too
    elif plus:
        return None
    else:
        national = digits
    if not national.startswith("0") or national.startswith("00"):
        return None
    # Mobile numbers have 10 digits; landlines (02x) and pre-2018 mobiles (01x) 11.
    if len(national) == 10 or (len(national) == 11 and national[1] in "12"):
        return national[:2] + "*" * (len(national) - 4) + national[-2:]
    return None


def _is_year(digits: str) -> bool:
    return len(digits) == 4 and 1900 <= int(digits) <= 2099


def _is_date(groups: Sequence[str], seps: Sequence[str]) -> bool:
    if len(groups) not in (2, 3) or " " in seps or len(set(seps)) != 1:
        return False
    if len(groups) == 3 and len(groups[0]) == 4:  # 1965-03-15
        groups = [groups[2], groups[1], groups[0]]
    if any(len(g) > 2 for g in groups[:2]):
        # 03/1965: a month and a year
        return len(groups) == 2 and len(groups[0]) <= 2 and _is_year(groups[1])
    day, month = int(groups[0]), int(groups[1])
    if len(groups) == 2:  # 15/03; "15.03" may be a decimal number, left as it is anyway
        return 1 <= day <= 31 and 1 <= month <= 12
    year = groups[2]
    return 1 <= day <= 31 and 1 <= month <= 12 and (len(year) == 2 or _is_year(year))


def _is_money(groups: Sequence[str], seps: Sequence[str], *, money: bool) -> bool:
    """`500.000`, `1.200.000`: thousands grouped with dots and ending in 000, or a
    number written just before a currency word ("500000 đồng")."""
    if groups[0].startswith("0"):
        return False
    if money and len("".join(groups)) <= 10:
        return True
    return (
        len(groups) >= 2
        and set(seps) <= {".", ","}
        and len(groups[0]) <= 3
        and all(len(g) == 3 for g in groups[1:])
        and groups[-1] == "000"
    )


# Texts `redact` left unchanged, to skip the work when they come again: the bot's own
# prompts and button labels, stored in every event and transcript row. Only clean texts
# count (never one that held a secret), and only as a digest: a citizen's answer that
# passes through is not kept in memory after it is written (and forgotten on /stop).
# The set starts over when it is full.
_CLEAN: set[bytes] = set()
_CLEAN_MAX = 4096


def redact_repeated(text: str) -> str:
    """`redact(text)`, faster for texts seen before that held nothing to mask."""
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()
    if digest in _CLEAN:
        return text
    masked = redact(text)
    if masked == text:
        if len(_CLEAN) >= _CLEAN_MAX:
            _CLEAN.clear()
        _CLEAN.add(digest)
    return masked
