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
