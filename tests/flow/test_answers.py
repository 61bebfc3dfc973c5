"""Reading a citizen's typed answers: bot/flow/answers.py."""

from __future__ import annotations

import datetime as dt
import unicodedata

import pytest

from bot.flow.answers import match_choice, parse_date, parse_number, parse_phone, parse_yes_no

LONG = "Tôi ko nhận đc mã OTP 1965 😀 " * 350  # over 10,000 characters
TODAY = dt.date(2026, 5, 1)

# --- parse_number ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("1965", 1965),
        ("năm 1965", 1965),
        ("nam 1965 a", 1965),
        ("  1965.  ", 1965),
        ("1965!", 1965),
        ("１９６５", 1965),
        ("0", 0),
        ("-5", -5),
        ("12,5", 12.5),
        ("12.5", 12.5),
        ("1.965", 1965),
        ("1.500.000", 1_500_000),
        ("1.500.000,5", 1_500_000.5),
        ("1,000,000", 1_000_000),
        ("3 người", 3),
    ],
)
def test_parse_number(typed: str, expected: float) -> None:
    value = parse_number(typed)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "   ",
        "😀",
        "một nghìn chín trăm",
        "năm 1965, 60 tuổi",  # two numbers: which one?
        "15/3/1965",
        "50k",
        "lần2",
        "1965abc",
        "1..2",
        LONG,
    ],
)
def test_parse_number_refuses(typed: str) -> None:
    assert parse_number(typed) is None


@pytest.mark.parametrize(
    ("typed", "low", "high", "expected"),
    [
        ("1965", 1900, 2026, 1965),
        ("1900", 1900, 2026, 1900),
        ("2026", 1900, 2026, 2026),
        ("1899", 1900, 2026, None),
        ("2027", 1900, 2026, None),
        ("12,5", 1900, 2026, None),
        ("1.965", 1900, 2026, 1965),
        ("1.965", 0, 10, 1.965),  # only the decimal reading fits
        ("5", 1, None, 5),
        ("0", 1, None, None),
        ("100", None, 99, None),
    ],
)
def test_parse_number_bounds(
    typed: str, low: float | None, high: float | None, expected: float | None
) -> None:
    assert parse_number(typed, min=low, max=high) == expected


# --- parse_date --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed",
    [
        "15/3/1965",
        "15/03/1965",
        "15-03-1965",
        "15.3.1965",
        "15 3 1965",
        "15031965",
        "ngày 15 tháng 3 năm 1965",
        "Ngày 15 Tháng 03 Năm 1965",
        "15 thang 3 nam 1965",
        "ngay 15 thang 3 nam 1965 a",
        "1965-03-15",
        "15/3/65",
        "sinh ngày 15/3/1965 ạ",
        "１５/３/１９６５",
        unicodedata.normalize("NFD", "ngày 15 tháng 3 năm 1965"),
    ],
)
def test_parse_date(typed: str) -> None:
    assert parse_date(typed, today=TODAY) == dt.date(1965, 3, 15)


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("1/1/00", dt.date(2000, 1, 1)),
        ("1/1/05", dt.date(2005, 1, 1)),
        ("1/1/26", dt.date(2026, 1, 1)),  # this year's two digits: 2026
        ("1/1/27", dt.date(1927, 1, 1)),
        ("1/1/99", dt.date(1999, 1, 1)),
        ("29/2/2000", dt.date(2000, 2, 29)),
        ("31/12/1999", dt.date(1999, 12, 31)),
    ],
)
def test_parse_date_years_and_leap_days(typed: str, expected: dt.date) -> None:
    assert parse_date(typed, today=TODAY) == expected


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "😀",
        "hôm qua",
        "31/2/2000",
        "29/2/2001",
        "32/1/1965",
        "15/13/1965",
        "0/1/1965",
        "3/1965",  # no day
        "1965",
        "15/3/965",  # three-digit year
        "15/3/1965 8 giờ",  # a fourth number
        "19650315",  # eight digits are day, month, year
        LONG,
    ],
)
def test_parse_date_refuses(typed: str) -> None:
    assert parse_date(typed, today=TODAY) is None


@pytest.mark.parametrize(
    ("typed", "low", "high", "fits"),
    [
        ("15/3/1965", 1900, 2026, True),
        ("15/3/1899", 1900, 2026, False),
        ("15/3/2030", 1900, 2026, False),
        ("1/1/1900", 1900, None, True),
        ("31/12/2026", None, 2026, True),
    ],
)
def test_parse_date_year_bounds(
    typed: str, low: float | None, high: float | None, fits: bool
) -> None:
    assert (parse_date(typed, min_year=low, max_year=high, today=TODAY) is not None) is fits


def test_parse_date_two_digit_years_follow_today() -> None:
    assert parse_date("1/1/30", today=dt.date(2031, 1, 1)) == dt.date(2030, 1, 1)
    assert parse_date("1/1/30", today=dt.date(2029, 1, 1)) == dt.date(1930, 1, 1)
    assert parse_date("1/1/1965") == dt.date(1965, 1, 1)  # today defaults to the real date


# --- parse_phone -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("0912345678", "0912345678"),
        ("0912 345 678", "0912345678"),
        ("0912.345.678", "0912345678"),
        ("0912-345-678", "0912345678"),
        ("+84912345678", "0912345678"),
        ("+84 912 345 678", "0912345678"),
        ("84 912 345 678", "0912345678"),
        ("84912345678", "0912345678"),
        ("0084 912 345 678", "0912345678"),
        ("(+84) 912-345-678", "0912345678"),
        ("sdt 0912345678", "0912345678"),
        ("số của em là 0987 654 321 ạ", "0987654321"),
        ("0356789012", "0356789012"),
        ("0203 3835 123", "02033835123"),  # Quảng Ninh landline
        ("+84 203 3835 123", "02033835123"),
        ("024 3825 1234", "02438251234"),  # Hà Nội
        ("０９１２３４５６７８", "0912345678"),
    ],
)
def test_parse_phone(typed: str, expected: str) -> None:
    assert parse_phone(typed) == expected


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "😀",
        "không có",
        "091234567",  # 9 digits
        "09123456789",  # 11 digits, not a landline
        "091234567890",
        "0112345678",  # the old 01x prefix is gone
        "0412345678",
        "1912345678",
        "0912abc678",
        "0912345678a",
        "+1 415 555 1234",
        "0912345678 hoặc 0987654321",
        "0912345678 0987654321",
        LONG,
    ],
)
def test_parse_phone_refuses(typed: str) -> None:
    assert parse_phone(typed) is None


# --- parse_yes_no ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed",
    [
        "có",
        "co",
        "Có",
        "CÓ!!!",
        "ừ",
        "u",
        "uh",
        "ừm",
        "vâng",
        "vang",
        "dạ",
        "da",
        "được",
        "dc",
        "đc",
        "đúng",
        "dung",
        "rồi",
        "roi",
        "ok",
        "oke",
        "OK 👍",
        "yes",
        "y",
        "đã",
        "da roi",
        "dạ có",
        "dạ vâng",
        "có rồi em ơi",
        "co r",
        "đúng rồi",
        "em có ạ",
        "dạ đã nhận",
    ],
)
def test_parse_yes(typed: str) -> None:
    assert parse_yes_no(typed) is True


@pytest.mark.parametrize(
    "typed",
    [
        "không",
        "ko",
        "k",
        "khong",
        "hong",
        "hông",
        "KHÔNG",
        "chưa",
        "chua",
        "chưa có",
        "no",
        "n",
        "sai",
        "dạ chưa",
        "dạ không",
        "chưa nhận được",
        "ko nhan dc",
        "không có",
        "chưa nhận được mã",
        "em chưa ạ",
        "không đúng",
    ],
)
def test_parse_no(typed: str) -> None:
    assert parse_yes_no(typed) is False


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "   ",
        "😀",
        "?",
        "có nhưng không",
        "không nhưng có",
        "được không",
        "đúng không ạ",
        "có lẽ",
        "không biết",
        "dạ em không biết",
        "chưa rõ",
        "hôm nay trời đẹp",
        "1965",
        LONG,
    ],
)
def test_parse_yes_no_unsure(typed: str) -> None:
    assert parse_yes_no(typed) is None


# --- match_choice ------------------------------------------------------------------------

RECEIVED = ["Đã nhận", "Chưa nhận"]


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        # the label, any case, with or without diacritics
        ("Đã nhận", 0),
        ("đã nhận", 0),
        ("da nhan", 0),
        ("DA NHAN", 0),
        (unicodedata.normalize("NFD", "Đã nhận"), 0),
        ("Chưa nhận", 1),
        ("chưa nhận", 1),
        ("chua nhan", 1),
        ("CHUA NHAN!", 1),
        # by number
        ("1", 0),
        ("2", 1),
        ("2.", 1),
        ("số 2", 1),
        ("so 2", 1),
        ("chọn 1", 0),
        ("chon 2 a", 1),
        ("2️⃣", 1),
        ("1️⃣", 0),
        # the label inside a sentence
        ("tôi chưa nhận được", 1),
        ("toi chua nhan duoc", 1),
        ("em đã nhận được rồi ạ", 0),
        ("em da nhan dc r", 0),
        ("dạ em chưa nhận được tin nhắn ạ", 1),
        # words of one label only
        ("chưa", 1),
        ("dạ chưa ạ", 1),
        # typos, never the other label
        ("chua nhn", 1),
        ("chuanhan", 1),
        ("da nhn", 0),
        ("danhan", 0),
    ],
)
def test_match_choice_received(typed: str, expected: int) -> None:
    assert match_choice(typed, RECEIVED) == expected


LEVELS = ["Đã có mức 2", "Mới có mức 1", "Chưa có tài khoản"]


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        # a number that is part of a label names that label, not a position
        ("mức 2", 0),
        ("muc 2", 0),
        ("mk có mức 2 r", 0),
        ("muc 1", 1),
        ("mới mức 1 thôi", 1),
        # a bare number, or one no label holds, is still a position
        ("2", 1),
        ("số 3", 2),
        ("chọn 1", 0),
    ],
)
def test_match_choice_number_inside_a_label(typed: str, expected: int) -> None:
    assert match_choice(typed, LEVELS) == expected


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "   ",
        "😀",
        "nhận",  # in both labels
        "0",
        "3",
        "số 3",
        "1 2",
        "tôi muốn hỏi chuyện khác",
        "không biết",
        "abc",
        LONG,
        "chua nhan " * 1_000,
    ],
)
def test_match_choice_unsure(typed: str) -> None:
    assert match_choice(typed, RECEIVED) is None


@pytest.mark.parametrize(
    ("typed", "labels", "expected"),
    [
        ("có", ["Có", "Không"], 0),
        ("dạ có rồi ạ", ["Có", "Không"], 0),
        ("ko", ["Có", "Không"], 1),
        ("không có", ["Có", "Không"], 1),  # "có" after a negation is not the choice "Có"
        ("có không", ["Có", "Không"], None),  # both words: unsure
        ("tôi có câu hỏi khác", ["Có", "Không"], None),
        ("chưa nhận được", ["Nhận được", "Chưa"], 1),
        ("không", ["Có", "Không có"], 1),
        ("có", ["Đã có", "Chưa có"], None),
        ("chưa nhận", ["Nhận", "Chưa nhận"], 1),  # the longer label holds the shorter
        ("kich hoat", ["Kích hoạt tài khoản", "Quên mật khẩu"], 0),
        ("quen mat kau", ["Kích hoạt tài khoản", "Quên mật khẩu"], 1),
        ("quen passcode", ["Quên mật khẩu", "Quên passcode"], 1),
        ("quen", ["Quên mật khẩu", "Quên passcode"], None),
        ("mức 2", ["Mức 1", "Mức 2"], 1),
        ("muc 3", ["Mức 1", "Mức 2"], None),
        ("2024", ["2023", "2024"], 1),  # a label that is a number wins over its position
        ("👍", ["👍", "👎"], 0),
        ("👎", ["👍", "👎"], 1),
        ("😀", ["👍", "👎"], None),
        ("Có", ["Có", "Có"], None),  # two identical labels
        ("co", [], None),
    ],
)
def test_match_choice_labels(typed: str, labels: list[str], expected: int | None) -> None:
    assert match_choice(typed, labels) == expected


@pytest.mark.parametrize("typed", ["da nhan", "đã nhận", "chua nhan", "chưa nhận", "tôi chưa nhận"])
def test_match_choice_negation_both_directions(typed: str) -> None:
    """The labels "Đã nhận" and "Chưa nhận" differ by one word: each finds its own."""
    expected = 1 if "chua" in typed or "chưa" in typed else 0
    assert match_choice(typed, RECEIVED) == expected
    assert match_choice(typed, list(reversed(RECEIVED))) == 1 - expected


# --- all parsers on long input -----------------------------------------------------------


@pytest.mark.parametrize(
    "long", [LONG, "1" * 10_000, "a" * 10_000, "😀" * 10_000, "1 " * 5_000, "1." * 5_000]
)
def test_long_input_is_refused(long: str) -> None:
    results = [
        parse_number(long, min=0, max=3000),
        parse_date(long, today=TODAY),
        parse_phone(long),
        parse_yes_no(long),
        match_choice(long, RECEIVED),
    ]
    assert results == [None] * len(results)
