"""Vietnamese normalisation as citizens type it: bot/text.py."""

from __future__ import annotations

import unicodedata

import pytest

from bot import text
from bot.text import fold, is_blank, nfc, normalize, stem, strip_accents, tokens


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
    [
        "ko nhan dc ma otp",
        "Đăng ký tk vn eid ntn",
        "e chua lm dc r",
        "sdt cua mn",
        "thanks",
        "so hk cmt dkkh",
        "chứng minh thư đăng kí ad ơi",
        "lam muc2 tren ip11",
    ],
)
def test_fold_is_idempotent(typed: str) -> None:
    assert fold(fold(typed)) == fold(typed)


def test_teencode_table_can_be_extended(monkeypatch: pytest.MonkeyPatch) -> None:
    assert fold("vào QWZ") == "vao qwz"  # cached before the tables change
    monkeypatch.setitem(text.TEENCODE, "qwz", "thủ tục")
    monkeypatch.setitem(text.PHRASES, "ho so truc tuyen mot phan", "hsttmp")
    text.refresh()
    try:
        assert fold("vào QWZ") == "vao thu tuc"
        assert fold("Hồ sơ trực tuyến một phần") == "hsttmp"
    finally:
        monkeypatch.undo()
        text.refresh()
    assert fold("vào QWZ") == "vao qwz"


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        # papers and procedures by their initials
        ("tthn", "tinh trang hon nhan"),
        ("xin giấy xác nhận TTHN", "xin giay xac nhan tinh trang hon nhan"),
        ("dkkh", "dang ky ket hon"),
        ("đkkh ở đâu", "dang ky ket hon o dau"),
        ("dkks cho con", "dang ky khai sinh cho con"),
        ("dkkt", "dang ky khai tu"),
        ("gks", "giay khai sinh"),
        ("lltp", "ly lich tu phap"),
        ("làm LLTP số 2", "lam ly lich tu phap so 2"),
        ("gcn", "giay chung nhan"),
        ("xn cư trú", "xac nhan cu tru"),
        ("dvc", "dich vu cong"),
        ("dvcqg", "dich vu cong quoc gia"),
        ("tthc", "thu tuc hanh chinh"),
        ("ubnd xã", "uy ban nhan dan xa"),
        ("bhxh", "bao hiem xa hoi"),
        ("csgt", "canh sat giao thong"),
        # the old ID card, however it is called
        ("cmt", "chung minh nhan dan"),
        ("cmtnd", "chung minh nhan dan"),
        ("chứng minh thư", "chung minh nhan dan"),
        ("số cmnd cũ", "so chung minh nhan dan cu"),
        # phone numbers
        ("sđt", "so dien thoai"),
        ("SĐT", "so dien thoai"),
        ("sdth", "so dien thoai"),
        ("sđth", "so dien thoai"),
        ("số đt", "so dien thoai"),
        ("đt", "dien thoai"),
        ("dth", "dien thoai"),
        ("đthoai", "dien thoai"),
        ("dtdd", "dien thoai di dong"),
        ("stk", "so tai khoan"),
        # hộ khẩu only where "hk" cannot be "không"
        ("sổ hk", "so ho khau"),
        ("so hk", "so ho khau"),
        ("nhập hk cho con", "nhap ho khau cho con"),
        ("tách hk", "tach ho khau"),
        ("hk thường trú", "ho khau thuong tru"),
        ("được hk", "duoc khong"),
        ("hk", "khong"),
        # kí / ký, lí / lý: one syllable
        ("đăng kí", "dang ky"),
        ("dang ki", "dang ky"),
        ("đki", "dang ky"),
        ("học kì", "hoc ky"),
        ("lí lịch", "ly lich"),
        ("li lich tu phap", "ly lich tu phap"),
        # people and politeness
        ("ad ơi", "admin oi"),
        ("e chào a", "em chao a"),
        ("vậy ah", "vay a"),
        ("dạ vâng ạ", "da vang a"),
        ("ngta gọi", "nguoi ta goi"),
        ("mng ơi", "moi nguoi oi"),
        ("ko bik", "khong biet"),
        ("ko bít", "khong biet"),
        ("lm r oy", "lam roi roi"),
        ("hnay", "hom nay"),
        ("bjo", "bay gio"),
        ("ko nhận dc tn", "khong nhan duoc tin nhan"),
        ("đúng pk", "dung phai khong"),
        # other apps keep one name
        ("quên mk fb", "quen minh facebook"),
        ("zl", "zalo"),
        # too ambiguous: left alone
        ("ct", "ct"),
        ("bản sao ct", "ban sao ct"),
        ("hs", "hs"),
        ("ks", "ks"),
        ("kt", "kt"),
        ("tt", "tt"),
        ("a", "a"),
        ("v", "v"),
        ("z", "z"),
        # words that look like a key but carry other marks are words
        ("kỹ", "ky"),
        ("hộ", "ho"),
        ("sở", "so"),
    ],
)
def test_fold_abbreviations(typed: str, expected: str) -> None:
    assert fold(typed) == expected


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        # letters then digits typed as one token are two words
        ("muc2", "muc 2"),
        ("mức2 làm ở đâu", "muc 2 lam o dau"),
        ("iphone11", "iphone 11"),
        ("sdt0912345678", "so dien thoai 0912345678"),
        ("lv2", "muc 2"),
        # but not a licence class, nor a number then letters
        ("bằng b2", "bang b2"),
        ("hạng a1", "hang a1"),
        ("100k", "100k"),
        ("4g", "4g"),
        # phones and their parts
        ("ip 15", "iphone 15"),
        ("cip doc ko dc", "chip doc khong duoc"),
        ("wen mk", "quen minh"),
        ("tk chua active", "tai khoan chua activate"),
    ],
)
def test_fold_splits_glued_numbers_and_reads_phone_words(typed: str, expected: str) -> None:
    assert fold(typed) == expected


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


# --- stem --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "forms",
    [
        ("receive", "received", "receiving"),
        ("crash", "crashes", "crashing", "crashed"),
        ("fail", "failed", "failing", "fails"),
        ("scan", "scanned", "scanning", "scans"),
        ("update", "updated", "updating", "updates"),
        ("app", "apps"),
        ("passcode", "passcodes"),
        ("apply", "applied", "applies"),
    ],
)
def test_stem_makes_english_forms_one_word(forms: tuple[str, ...]) -> None:
    assert len({stem(f) for f in forms}) == 1, {f: stem(f) for f in forms}


@pytest.mark.parametrize(
    "word",
    # Vietnamese syllables (no diacritics), short words, digits, words that only look
    # inflected, and a typo of "vneid": all left alone
    [
        "the",
        "tim",
        "sinh",
        "nghieng",
        "khoe",
        "xe",
        "sms",
        "ios",
        "otp",
        "status",
        "pass",
        "vnied",
        "vneid",
        "2024",
        "zalo",
        "nfc",
    ],
)
def test_stem_leaves_other_words_alone(word: str) -> None:
    assert stem(word) == word
