"""Personal data masking: bot/redact.py."""

from __future__ import annotations

import time
import unicodedata

import pytest

from bot import redact as redact_module
from bot.redact import MASK, redact, redact_repeated

MASKED = [
    # 12-digit ID (CCCD, căn cước): the last 3 digits stay
    ("001234567890", "*********890"),
    ("Số CCCD của tôi 001234567890", "Số CCCD của tôi *********890"),
    ("cccd: 0012 3456 7890", "cccd: *********890"),
    ("001 234 567 890", "*********890"),
    ("001.234.567.890", "*********890"),
    ("001-234-567-890", "*********890"),
    ("can cuoc 079 123 456 789 nhe", "can cuoc *********789 nhe"),
    ("cccd001234567890", "cccd*********890"),
    # 9-digit old CMND
    ("CMND 123456789", "CMND ******789"),
    ("cmnd cu la 123 456 789", "cmnd cu la ******789"),
    ("số 123.456.789 ạ", "số ******789 ạ"),
    # phone numbers: 09******78
    ("0912345678", "09******78"),
    ("sdt 0912345678", "sdt 09******78"),
    ("sdt0912345678", "sdt09******78"),
    ("SĐT: 0912 345 678", "SĐT: 09******78"),
    ("0912.345.678", "09******78"),
    ("0912-345-678", "09******78"),
    ("091 234 5678", "09******78"),
    ("+84 912 345 678", "09******78"),
    ("+84912345678", "09******78"),
    ("84912345678", "09******78"),
    ("+84 0912 345 678", "09******78"),
    ("goi 0387654321 giup toi", "goi 03******21 giup toi"),
    ("số bàn 024 3825 1234", "số bàn 02*******34"),
    ("0912345678/0987654321", "09******78/09******21"),
    ("năm 1965, sđt 0912345678.", "năm 1965, sđt 09******78."),
    ("(+84) 912 345 678", "(+84) ******678"),
    # any standalone 6-digit number
    ("123456", MASK),
    ("ma la 654321 nhe", "ma la ****** nhe"),
    ("toi nhap 123 456 roi", f"toi nhap {MASK} roi"),
    ("Mã OTP: 123456", f"Mã OTP: {MASK}"),
    ("otp 999999 het han", f"otp {MASK} het han"),
    ("123456 k nhận được", f"{MASK} k nhận được"),
    # 4–8 digit codes when the message is about a code
    ("mã OTP là 1234", f"mã OTP là {MASK}"),
    ("ma xac thuc 4821 khong dung", f"ma xac thuc {MASK} khong dung"),
    ("mã xác thực 48213", f"mã xác thực {MASK}"),
    ("passcode 7788", f"passcode {MASK}"),
    ("OTP gửi về 12345678", f"OTP gửi về {MASK}"),
    ("mã 1987", f"mã {MASK}"),  # right after the word, even a year-like code
    ("mã OTP 2024", f"mã OTP {MASK}"),
    ("OTP:1965", f"OTP:{MASK}"),
    ("Mật khẩu 2012 đúng không", f"Mật khẩu {MASK} đúng không"),
    ("mã hồ sơ 12345", f"mã hồ sơ {MASK}"),
    # the word after "mật khẩu là" and friends
    ("mật khẩu là Abc@123", f"mật khẩu là {MASK}"),
    ("mat khau la matkhau99", f"mat khau la {MASK}"),
    ("Mật khẩu của tôi là Hoa1965!", f"Mật khẩu của tôi là {MASK}"),
    ("password is hunter22", f"password is {MASK}"),
    ("my password: Secret", f"my password: {MASK}"),
    ("pass: abc", f"pass: {MASK}"),
    ("pass la qwerty nhe", f"pass la {MASK} nhe"),
    ("mat khau moi la Xyz-2024, giup em", f"mat khau moi la {MASK}, giup em"),
    ("mật khẩu: 123456", f"mật khẩu: {MASK}"),
    ("mat khau lai la 123456", f"mat khau lai la {MASK}"),
    # several at once
    (
        "CCCD 001234567890, sdt 0912345678, OTP 123456",
        "CCCD *********890, sdt 09******78, OTP ******",
    ),
]

LEFT_ALONE = [
    "",
    "xin chào",
    "Tôi muốn kích hoạt VNeID",
    # menu choices and short numbers
    "1",
    "2",
    "chọn 3",
    "99",
    "tôi 70 tuổi",
    "1 2 3 4 5 6",
    "10:30",
    # years and dates
    "sinh năm 1965",
    "tôi sinh 1987, mã otp chưa nhận",
    "năm 2024 tôi làm cccd",
    "2099",
    "1900",
    "ngày 15/03/1965",
    "15/3/65",
    "15.03.1965",
    "15-03-1965",
    "1965-03-15",
    "tháng 03/1965",
    "từ 2020-2021",
    "ngay 1/2",
    # money
    "phí 500.000 đồng",
    "lệ phí 1.200.000đ",
    "500000 đồng",
    "100k",
    "120000 VND",
    # questions about passwords are not passwords
    "mật khẩu là gì?",
    "mat khau la gi",
    "mat khau la sao",
    "password is wrong",
    "mật khẩu là 6 số",
    "quên mật khẩu thì làm sao",
    # links stay whole
    "https://dichvucong.gov.vn/p/home/dvc-tthc.html?ma_thu_tuc=1.001234",
    # already masked text stays as it is
    "*********890",
    "09******78",
    MASK,
    # long numbers that are none of these
    "12345",
    "1234567",
    "12345678901234",
]


@pytest.mark.parametrize(("text", "expected"), MASKED)
def test_masks(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize("text", LEFT_ALONE)
def test_leaves_alone(text: str) -> None:
    assert redact(text) == text


def test_code_word_masks_the_code_but_not_a_far_year() -> None:
    assert redact("sinh năm 1965 mã otp 2024 không tới") == f"sinh năm 1965 mã otp {MASK} không tới"


@pytest.mark.parametrize("text", [t for t, _ in MASKED] + LEFT_ALONE)
def test_is_idempotent(text: str) -> None:
    once = redact(text)
    assert redact(once) == once


def test_decomposed_input_is_matched_and_normalised() -> None:
    text = unicodedata.normalize("NFD", "Mật khẩu là Bí_mật1")
    assert redact(text) == f"Mật khẩu là {MASK}"
    assert unicodedata.is_normalized("NFC", redact(unicodedata.normalize("NFD", "sinh năm")))


@pytest.mark.parametrize(
    "text", ["1 " * 2000, "123456 " * 570, "1." * 2000 + "1", "mật khẩu là " * 300]
)
def test_long_messages_stay_fast(text: str) -> None:
    started = time.perf_counter()
    redact(text)
    assert time.perf_counter() - started < 1.0


def test_redact_repeated_masks_like_redact_and_keeps_no_clean_text_in_memory() -> None:
    secret = "số CCCD của tôi là 001203004567"
    assert redact_repeated(secret) == redact(secret) != secret
    assert redact_repeated(secret) == redact(secret)  # a text with a secret is never skipped
    answer = "Tên tôi là Nguyễn Thị Lan ở thôn Đông"
    assert redact_repeated(answer) == answer
    assert redact_repeated(answer) == answer
    # Only digests of clean texts are kept: the citizen's answer itself is not.
    assert redact_module._CLEAN and all(isinstance(item, bytes) for item in redact_module._CLEAN)
    assert not any(answer.encode("utf-8") in item for item in redact_module._CLEAN)
