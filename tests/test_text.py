"""Vietnamese normalisation as citizens type it: bot/text.py."""

from __future__ import annotations

import unicodedata

import pytest

from bot import text
from bot.text import fold, is_blank, nfc, normalize, strip_accents, tokens


def nfd(value: str) -> str:
    return unicodedata.normalize("NFD", value)


# --- nfc ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        # the other tone placement moves to the classic one
        ("hoà", "hòa"),
        ("HOÀ", "HÒA"),
        ("Hoà Bình", "Hòa Bình"),
        ("thuý", "thúy"),
        ("khoẻ", "khỏe"),
        ("loè loẹt", "lòe loẹt"),
        ("qủa", "quả"),
        # already classic, or only one right place: unchanged
        ("hòa", "hòa"),
        ("thúy", "thúy"),
        ("hoàng", "hoàng"),
        ("thuận", "thuận"),
        ("quý", "quý"),
        ("quốc", "quốc"),
        ("người", "người"),
        ("được", "được"),
        ("thuở", "thuở"),
        ("ngoài", "ngoài"),
        ("khuỷu", "khuỷu"),
        ("gìn giữ", "gìn giữ"),
        ("giường", "giường"),
        ("Đăng ký", "Đăng ký"),
        # not Vietnamese syllables: left alone
        ("café", "café"),
        ("España", "España"),
        ("Привет", "Привет"),
        # zero-width characters go
        ("vne\u200bid", "vneid"),
        ("\ufeffxin chào", "xin chào"),
        ("kích\u200d hoạt\u2060", "kích hoạt"),
        ("", ""),
    ],
)
def test_nfc(typed: str, expected: str) -> None:
    assert nfc(typed) == unicodedata.normalize("NFC", expected)


@pytest.mark.parametrize(
    "word",
    ["Đăng ký tài khoản định danh điện tử", "hoà", "thuý", "Ngày 15 tháng 3", "mức 2", "ĐƯỢC"],
)
def test_nfc_of_decomposed_input_equals_composed(word: str) -> None:
    assert nfc(nfd(word)) == nfc(unicodedata.normalize("NFC", word))
    assert nfc(nfd(word)) == unicodedata.normalize("NFC", nfc(nfd(word)))


def test_nfc_repairs_marks_typed_in_the_wrong_order() -> None:
    # e + acute + circumflex does not compose in plain NFC; the syllable repair does.
    assert nfc("ti\u0065\u0301\u0302ng") == "tiếng"


# --- normalize ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("Xin chào!!! 😀", "xin chào"),
        ("  nhiều   khoảng \n trắng ", "nhiều khoảng trắng"),
        ("Đăng-Ký", "đăng ký"),
        ("CĂN CƯỚC công dân", "căn cước công dân"),
        ("Mã: 123/456", "mã 123 456"),
        ("https://vneid.gov.vn/", "https vneid gov vn"),
        ("2️⃣", "2"),
        ("snake_case", "snake case"),
        ("Привет МИР 你好", "привет мир 你好"),
        ("ที่นี่", "ที่นี่"),
        ("🙏🏻", ""),
        ("", ""),
    ],
)
def test_normalize(typed: str, expected: str) -> None:
    assert normalize(typed) == expected


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("hoà", "hòa"),
        ("Thuý", "thúy"),
        (nfd("Đăng ký"), "đăng ký"),
        ("KHOẺ", "khỏe"),
        ("Hòa Bình!", nfd("hoà bình")),
    ],
)
def test_normalize_makes_spellings_equal(one: str, other: str) -> None:
    assert normalize(one) == normalize(other)


# --- fold --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("Đăng ký", "dang ky"),
        ("dang ky", "dang ky"),
        ("DANG KY", "dang ky"),
        (nfd("Đăng ký"), "dang ky"),
        ("ko nhan dc ma otp", "khong nhan duoc ma otp"),
        ("Không nhận được mã OTP", "khong nhan duoc ma otp"),
        ("cai vneid ntn", "cai vneid nhu the nao"),
        ("Kích hoạt VNeID", "kich hoat vneid"),
        ("hoà", "hoa"),
        ("thuý", "thuy"),
        # emphasis: three or more of one letter
        ("dccc", "duoc"),
        ("alooo", "alo"),
        ("khôngggg", "khong"),
        ("okkkkk", "ok"),
        ("xoong", "xoong"),
        ("1000", "1000"),
        # tokens only, never inside words
        ("50k", "50k"),
        ("kho", "kho"),
        # the accented word is a real word, only the bare token is teencode
        ("thẻ bị hỏng chip", "the bi hong chip"),
        ("the bi hong chip", "the bi khong chip"),
        ("hẻm 12", "hem 12"),
        ("ê", "e"),
        ("e", "em"),
        ("hông", "khong"),
        # đ alone does not stop teencode
        ("đc", "duoc"),
        ("đk tài khoản", "dang ky tai khoan"),
        ("sđt của e", "so dien thoai cua em"),
        # phrases
        ("vn eid", "vneid"),
        ("V NeID", "vneid"),
        ("vne-id", "vneid"),
        ("Thank you!!", "cam on"),
        # ambiguous letters stay
        ("a", "a"),
        ("v", "v"),
        ("z", "z"),
        ("otp", "otp"),
        ("Привет, 你好", "привет 你好"),
        ("🙏🙏🙏", ""),
    ],
)
def test_fold(typed: str, expected: str) -> None:
    assert fold(typed) == expected


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("ko", "khong"),
        ("k", "khong"),
        ("khg", "khong"),
        ("kh", "khong"),
        ("hok", "khong"),
        ("hong", "khong"),
        ("hem", "khong"),
        ("kg", "khong"),
        ("khong", "khong"),
        ("dc", "duoc"),
        ("duoc", "duoc"),
        ("dk", "dang ky"),
        ("j", "gi"),
        ("ntn", "nhu the nao"),
        ("mk", "minh"),
        ("mik", "minh"),
        ("mn", "moi nguoi"),
        ("sdt", "so dien thoai"),
        ("cccd", "can cuoc cong dan"),
        ("cmnd", "chung minh nhan dan"),
        ("tk", "tai khoan"),
        ("bhyt", "bao hiem y te"),
        ("gplx", "giay phep lai xe"),
        ("vs", "voi"),
        ("ns", "noi"),
        ("r", "roi"),
        ("bn", "ban"),
        ("ak", "a"),
        ("lm", "lam"),
        ("bt", "biet"),
        ("cx", "cung"),
        ("trc", "truoc"),
        ("ng", "nguoi"),
        ("oki", "ok"),
        ("oke", "ok"),
        ("ok", "ok"),
        ("thanks", "cam on"),
        ("tks", "cam on"),
        ("thank", "cam on"),
        ("vneid", "vneid"),
    ],
)
def test_fold_teencode(token: str, expected: str) -> None:
    assert fold(token) == expected
    assert fold(f"xin {token.upper()} nhe") == f"xin {expected} nhe"


@pytest.mark.parametrize(
    "typed",
    ["ko nhan dc ma otp", "Đăng ký tk vn eid ntn", "e chua lm dc r", "sdt cua mn", "thanks"],
)
def test_fold_is_idempotent(typed: str) -> None:
    assert fold(fold(typed)) == fold(typed)


def test_teencode_table_can_be_extended(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(text.TEENCODE, "dvc", "dịch vụ công")
    monkeypatch.setitem(text.PHRASES, "dich vu cong quoc gia", "dvcqg")
    assert fold("vào DVC") == "vao dich vu cong"
    assert fold("Dịch vụ công quốc gia") == "dvcqg"


def test_tokens() -> None:
    assert tokens("Ko nhận dc mã OTP!!!") == ["khong", "nhan", "duoc", "ma", "otp"]
    assert tokens("😀") == []
    assert tokens("") == []


# --- is_blank ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "blank"),
    [
        ("", True),
        ("   \n\t ", True),
        ("?!...", True),
        ("😀👍", True),
        ("🙏🏻", True),
        ("\u200b", True),
        ("___", True),
        ("a", False),
        ("1", False),
        ("😀 ok", False),
        ("你", False),
        ("ạ", False),
    ],
)
def test_is_blank(typed: str, blank: bool) -> None:
    assert is_blank(typed) is blank
    assert (normalize(typed) == "") is blank


# --- strip_accents -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("Đăng Ký", "Dang Ky"),
        ("ĐƯỜNG", "DUONG"),
        ("Ơ kìa", "O kia"),
        (nfd("Thúy"), "Thuy"),
        ("Привет й", "Привет й"),
        ("abc 123", "abc 123"),
    ],
)
def test_strip_accents(typed: str, expected: str) -> None:
    assert strip_accents(typed) == expected


# --- long input --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "long",
    [
        "Tôi ko nhận đc mã OTP hoà thuý 😀 " * 300,
        "a" * 10_000,
        "ô" * 10_000,
        "😀" * 10_000,
        nfd("Đăng ký ") * 1_250,
        "1" * 10_000,
    ],
)
def test_ten_thousand_characters(long: str) -> None:
    folded = fold(long)
    assert len(normalize(long)) <= len(long)
    assert is_blank(long) is (folded == "")
    assert len(nfc(long)) <= len(long)
