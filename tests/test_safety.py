"""knowledge/safety.yaml: rules of ordered word lists, checked against their own examples."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import FlowLoadError
from bot.safety import load_safety
from bot.text import fold

ROOT = Path(__file__).resolve().parents[1]

SMALL = """\
scam:
  answer: scam_warning
  lists:
    someone: ["có người", "họ"]
    asks: ["đòi", "hỏi"]
    secret: ["mật khẩu", "otp", "mã"]
  rules:
    someone_asks:
      match: [someone, asks, secret]
      gap: 2
      examples: ["có người đòi mật khẩu"]
  ignore: ["hồ sơ", "mã qr"]
  never: ["quên mật khẩu"]
human:
  lists:
    ask: ["cho gặp"]
    person: ["nhân viên"]
  rules:
    person:
      match: [ask, person]
elsewhere:
  vi: ["thời tiết"]
"""


def _load(tmp_path: Path, text: str) -> object:
    path = tmp_path / "safety.yaml"
    path.write_text(text, encoding="utf-8")
    return load_safety(path)


def _problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(FlowLoadError) as caught:
        _load(tmp_path, text)
    return [f"{Path(p.file).name}:{p.line}: {p.message}" for p in caught.value.problems]


def _words(text: str) -> list[str]:
    return fold(text).split()


def test_rules_match_lists_in_order_within_the_gap(tmp_path: Path) -> None:
    safety = load_safety(_write(tmp_path, SMALL))
    assert safety.scam.answer == "scam_warning"
    assert safety.scam.match(_words("Có người đòi mã OTP")) == "someone_asks"
    assert safety.scam.match(_words("co nguoi goi den doi mat khau")) == "someone_asks"
    assert safety.scam.match(_words("đòi mật khẩu có người")) is None  # order
    assert safety.scam.match(_words("có người gọi đến nhà tôi rồi đòi mật khẩu")) is None  # gap
    assert safety.human.match(_words("cho gặp nhân viên")) == "person"
    assert safety.elsewhere == {"vi": ("thời tiết",)}


def test_ignored_phrases_never_take_part(tmp_path: Path) -> None:
    safety = load_safety(_write(tmp_path, SMALL))
    assert safety.scam.match(_words("họ hỏi mã")) == "someone_asks"
    assert safety.scam.match(_words("hồ sơ hỏi mã")) is None  # "hồ" is not "họ" here
    assert safety.scam.match(_words("họ hỏi mã QR")) is None


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "safety.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_an_unknown_list_is_named_with_its_line(tmp_path: Path) -> None:
    text = SMALL.replace("match: [someone, asks, secret]", "match: [someone, ask, secret]")
    assert _problems(tmp_path, text) == [
        "safety.yaml:9: rule 'someone_asks' uses the list 'ask', which is not under 'lists'"
    ]


def test_a_rule_that_misses_its_example_is_an_error(tmp_path: Path) -> None:
    text = SMALL.replace('examples: ["có người đòi mật khẩu"]', 'examples: ["họ gọi xin otp"]')
    assert _problems(tmp_path, text) == [
        "safety.yaml:11: rule 'someone_asks' does not match its example 'họ gọi xin otp'"
    ]


def test_a_rule_that_matches_a_never_message_is_an_error(tmp_path: Path) -> None:
    text = SMALL.replace('never: ["quên mật khẩu"]', 'never: ["quên mật khẩu", "họ hỏi otp"]')
    assert _problems(tmp_path, text) == [
        "safety.yaml:13: rule 'someone_asks' matches 'họ hỏi otp', which is listed under 'never'"
    ]


def test_a_phrase_without_letters_is_an_error(tmp_path: Path) -> None:
    text = SMALL.replace('asks: ["đòi", "hỏi"]', 'asks: ["đòi", "!!"]')
    assert _problems(tmp_path, text) == [
        "safety.yaml:5: list 'asks': the phrase '!!' has no letters or digits"
    ]


def test_schema_problems_name_their_line(tmp_path: Path) -> None:
    problems = _problems(tmp_path, SMALL.replace("      gap: 2\n", "      gap: many\n"))
    assert len(problems) == 1 and problems[0].startswith("safety.yaml:10: ")


def test_the_shipped_cues_load_and_pass_their_own_checks() -> None:
    safety = load_safety(ROOT / "knowledge" / "safety.yaml")
    assert safety.scam.answer == "scam_warning"
    assert len(safety.scam.rules) >= 5 and safety.human.rules
    assert safety.elsewhere["vi"]
    assert safety.offtopic.answer is None and len(safety.offtopic.rules) >= 5


OFFTOPIC = """\
offtopic:
  lists:
    app: ["zalo", "facebook"]
    weather: ["thời tiết"]
    service: ["vneid", "hồ sơ"]
  rules:
    other_app:
      match: [app]
      unless: [service]
      examples: ["đổi mật khẩu zalo"]
    weather:
      match: [weather]
  never: ["đổi số điện thoại vneid"]
"""


def test_unless_cancels_a_rule_when_a_listed_phrase_is_there(tmp_path: Path) -> None:
    safety = load_safety(_write(tmp_path, SMALL + OFFTOPIC))
    assert safety.offtopic.match(_words("đổi mật khẩu Zalo")) == "other_app"
    assert safety.offtopic.match(_words("quên mật khẩu facebook")) == "other_app"
    assert safety.offtopic.match(_words("gửi hồ sơ qua zalo được không")) is None
    assert safety.offtopic.match(_words("vneid có liên kết zalo không")) is None
    assert safety.offtopic.match(_words("thời tiết vneid")) == "weather"  # no `unless`
    assert safety.offtopic.match(_words("đổi số điện thoại")) is None


def test_places_are_read(tmp_path: Path) -> None:
    safety = load_safety(ROOT / "knowledge" / "safety.yaml")
    assert "Hải Phòng" in safety.places
    assert load_safety(_write(tmp_path, SMALL)).places == ()
    with_places = load_safety(_write(tmp_path, SMALL + 'places: ["Hà Nội"]\n'))
    assert with_places.places == ("Hà Nội",)


def test_the_offtopic_section_is_optional(tmp_path: Path) -> None:
    safety = load_safety(_write(tmp_path, SMALL))
    assert safety.offtopic.match(_words("đổi mật khẩu zalo")) is None


def test_an_unknown_unless_list_is_named_with_its_line(tmp_path: Path) -> None:
    text = SMALL + OFFTOPIC.replace("unless: [service]", "unless: [services]")
    assert _problems(tmp_path, text) == [
        "safety.yaml:31: rule 'other_app' uses the list 'services', which is not under 'lists'"
    ]


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("mai Cẩm Phả có mưa to không", "weather"),
        ("bão số 5 giờ ở đâu rồi", "weather"),
        ("bão sắp đổ bộ vào Móng Cái chưa", "storm_arrives"),
        ("u23 việt nam đá trận bóng tối nay mấy giờ", "sport"),
        ("điểm chuẩn lớp 10 chuyên Hạ Long", "exam"),
        ("đổi số điện thoại đăng nhập facebook", "other_app"),
        ("sao quên mật khẩu zalo rồi lấy lại kiểu gì", "other_app"),
        ("đặt hàng trên mạng bao lâu thì giao", "shopping"),
        ("giá tôm hùm bao nhiêu một cân", "shopping"),
        ("xin cấp hộ chiếu mất bao lâu", "other_service"),
        ("thủ tục ly hôn cần giấy tờ gì", "other_service"),
        ("tra cứu phạt nguội ô tô", "other_service"),
        ("nộp thuế đất ở đâu", "other_service"),
        ("học lái ô tô ở trung tâm nào", "driving_school"),
    ],
)
def test_shipped_offtopic_cues(text: str, rule: str) -> None:
    safety = load_safety(ROOT / "knowledge" / "safety.yaml")
    assert safety.offtopic.match(_words(text)) == rule


@pytest.mark.parametrize(
    "text",
    [
        "đổi số điện thoại vneid",
        "bao giờ có thẻ căn cước",
        "Quảng Ninh bây giờ còn bao nhiêu xã",
        "mua bảo hiểm y tế cho con ở đâu",
        "nộp hồ sơ khai sinh qua zalo được không",
        "thông báo lưu trú có vào app không",
        "đăng ký tạm trú cho con đi học lớp 10",
        "người ta bảo vào Hạ Long làm căn cước nhanh hơn",
        # another service's word beside one of ours ("số đó" folds like "sổ đỏ")
        "ly hôn rồi xin xác nhận độc thân ở đâu",
        "giấy chứng sinh của bệnh viện chưa liên thông",
        "số đó là số cũ của mẹ tôi",
        "hồ sơ đăng ký báo đang kiểm tra",
        "bằng lái hết hạn có phải thi lại không",
    ],
)
def test_shipped_offtopic_cues_let_real_questions_through(text: str) -> None:
    safety = load_safety(ROOT / "knowledge" / "safety.yaml")
    assert safety.offtopic.match(_words(text)) is None


@pytest.mark.parametrize(
    ("text", "section"),
    [
        ("cho bác gặp người với", "human"),
        ("nhờ ai gọi điện hướng dẫn bác cài vneid", "human"),
        ("có cán bộ nào đến nhà hướng dẫn được không", "human"),
        ("người lạ nhắn bảo chuyển 200 nghìn để nhận căn cước sớm", "scam"),
    ],
)
def test_shipped_cues_for_a_person_and_for_money(text: str, section: str) -> None:
    safety = load_safety(ROOT / "knowledge" / "safety.yaml")
    assert getattr(safety, section).match(_words(text)) is not None
    other = "scam" if section == "human" else "human"
    assert getattr(safety, other).match(_words(text)) is None
