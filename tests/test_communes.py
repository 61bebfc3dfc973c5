"""knowledge/communes.yaml and bot.communes: Quảng Ninh's units after 1 July 2025, found
by their new or old names, by distance, and described without inventing a fact."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.communes import Communes, load_communes
from bot.errors import FlowLoadError
from bot.text import strip_accents

ROOT = Path(__file__).resolve().parents[1]
PORTAL = "https://dichvucong.quangninh.gov.vn"

# The 54 names as Lao Động printed them from Resolution 1679 (without diacritics):
# https://news.laodong.vn/thoi-su/quang-ninh-co-54-don-vi-hanh-chinh-cap-xa-trong-do-co-2-dac-khu-1524706.ldo
LAODONG_XA = (
    "Quang La, Thong Nhat, Hai Hoa, Tien Yen, Dien Xa, Dong Ngu, Hai Lang, Luong Minh, "
    "Ky Thuong, Ba Che, Quang Tan, Dam Ha, Quang Ha, Duong Hoa, Quang Duc, Hoanh Mo, "
    "Luc Hon, Binh Lieu, Hai Son, Hai Ninh, Vinh Thuc, Cai Chien"
)
LAODONG_PHUONG = (
    "An Sinh, Dong Trieu, Binh Khe, Mao Khe, Hoang Que, Yen Tu, Vang Danh, Uong Bi, "
    "Dong Mai, Hiep Hoa, Quang Yen, Ha An, Phong Coc, Lien Hoa, Tuan Chau, Viet Hung, "
    "Bai Chay, Ha Tu, Ha Lam, Cao Xanh, Hong Gai, Ha Long, Hoanh Bo, Mong Duong, "
    "Quang Hanh, Cam Pha, Cua Ong, Mong Cai 1, Mong Cai 2, Mong Cai 3"
)
LAODONG_DAC_KHU = "Van Don, Co To"


@pytest.fixture(scope="module")
def communes() -> Communes:
    return load_communes(ROOT / "knowledge" / "communes.yaml")


def _ids(communes: Communes, text: str) -> list[str]:
    return [match.unit.id for match in communes.find(text)]


# ------------------------------------------------------------------ the real file


def test_the_file_has_the_54_units_of_the_resolution(communes: Communes) -> None:
    assert len(communes.units) == 54
    assert communes.warnings == ()
    by_kind = {
        kind: sorted(strip_accents(u.name) for u in communes.units if u.kind == kind)
        for kind in ("xa", "phuong", "dac_khu")
    }
    assert by_kind["xa"] == sorted(LAODONG_XA.split(", "))
    assert by_kind["phuong"] == sorted(LAODONG_PHUONG.split(", "))
    assert by_kind["dac_khu"] == sorted(LAODONG_DAC_KHU.split(", "))


def test_every_unit_has_a_source_and_no_invented_centre_facts(communes: Communes) -> None:
    for unit in communes.units:
        assert unit.sources, unit.id
        assert unit.centre.name == f"Trung tâm Phục vụ hành chính công {unit.full_name}"
        # Nothing about the centres was found in a source yet (RESEARCH.md 3.2).
        assert unit.centre.address is unit.centre.phone is unit.centre.hours is None
    assert sum(1 for unit in communes.units if unit.formed_from) >= 20


@pytest.mark.parametrize(
    ("text", "unit_id"),
    [
        ("xã Bằng Cả", "quang_la"),  # Điều 1 khoản 1
        ("bang ca", "quang_la"),
        ("Tôi ở xã Vũ Oai cũ", "thong_nhat"),  # khoản 2
        ("xa ha lau", "dien_xa"),  # khoản 5
        ("tt tien yen", "tien_yen"),  # khoản 4
        ("thị trấn Cái Rồng", "van_don"),
        ("cai rong", "van_don"),
        ("xa quan lan", "van_don"),
        ("thanh lan", "co_to"),
        ("phuong hong hai", "ha_long"),  # "hong" is not the teencode for "không" here
        ("P. Hồng Hà", "ha_long"),
        ("hung thang", "bai_chay"),
        ("xa thuong yen cong", "yen_tu"),
        ("cao thang", "ha_lam"),
        ("Trà Cổ", "mong_cai_1"),
        ("xa hai xuan", "mong_cai_1"),
        ("xã Hồng Thái Tây", "hoang_que"),
    ],
)
def test_an_old_name_finds_the_new_unit(communes: Communes, text: str, unit_id: str) -> None:
    found = communes.find(text)
    assert [match.unit.id for match in found] == [unit_id]
    assert found[0].old and not found[0].partial
    assert found[0].score == 100


@pytest.mark.parametrize(
    ("text", "unit_id"),
    [
        ("cai rongg", "van_don"),
        ("cairong", "van_don"),
        ("hung thangg", "bai_chay"),
        ("xa bang caa", "quang_la"),
        ("thuong yen congg", "yen_tu"),
        ("quan lann", "van_don"),
    ],
)
def test_a_typo_in_an_old_name_still_finds_it(communes: Communes, text: str, unit_id: str) -> None:
    found = communes.find(text)
    assert [match.unit.id for match in found] == [unit_id]
    assert found[0].score >= 90  # "cairong" is exact once its spaces are gone


def test_a_split_old_unit_finds_every_new_unit_it_went_to(communes: Communes) -> None:
    found = communes.find("tôi ở xã Đại Dực")  # khoản 4 and 6
    assert [match.unit.id for match in found] == ["tien_yen", "dong_ngu"]
    assert all(match.old and match.partial for match in found)
    assert {match.unit.id for match in communes.find("duc chinh")} == {"an_sinh", "dong_trieu"}


def test_the_kind_word_tells_old_xa_ha_long_from_the_new_ward(communes: Communes) -> None:
    assert _ids(communes, "xã Hạ Long") == ["van_don"]  # the old commune of Vân Đồn
    new = communes.find("phường Hạ Long")
    assert [m.unit.id for m in new] == ["ha_long"] and not new[0].old
    assert _ids(communes, "ha long") == ["ha_long", "van_don"]
    assert _ids(communes, "phuong hai hoa") == ["mong_cai_1"]
    # the new xã Hải Hòa, then the part of the old xã Hải Hòa that went to Hải Lạng
    assert _ids(communes, "xa hai hoa") == ["hai_hoa", "hai_lang"]


def test_a_new_name_finds_its_unit(communes: Communes) -> None:
    found = communes.find("Tôi ở phường Hà Tu")
    assert [m.unit.id for m in found] == ["ha_tu"]
    assert found[0].name == "Hà Tu" and not found[0].old
    assert _ids(communes, "dac khu co to") == ["co_to"]
    assert _ids(communes, "Móng Cái 2") == ["mong_cai_2"]


@pytest.mark.parametrize("text", ["thời tiết hôm nay", "", "!!!", "mong cai"])
def test_text_without_a_known_name_finds_nothing(communes: Communes, text: str) -> None:
    # "xa quang chnh" is now the typo of xã Quảng Chính: tests/test_communes_data.py.
    assert communes.find(text) == []


def test_describe_an_old_name_points_to_the_portal_when_nothing_is_filled(
    communes: Communes,
) -> None:
    [match] = communes.find("xa bang ca")
    assert communes.describe(match) == (
        "Xã Bằng Cả cũ nay thuộc xã Quảng La.\n"
        "Bạn làm thủ tục tại Trung tâm Phục vụ hành chính công xã Quảng La.\n"
        f"Địa chỉ và giờ làm việc: xem trên Cổng dịch vụ công Quảng Ninh: {PORTAL}"
    )
    assert communes.describe(match, "en") == (
        "The former Bằng Cả commune is now in Quảng La commune.\n"
        "Go to the public administration service centre: "
        "Trung tâm Phục vụ hành chính công xã Quảng La.\n"
        f"Address and opening hours: see the Quảng Ninh public services portal: {PORTAL}"
    )


def test_describe_a_split_and_a_new_unit(communes: Communes) -> None:
    partial = communes.find("xã Đại Dực")[0]
    assert communes.describe(partial).splitlines()[0] == (
        "Một phần xã Đại Dực cũ nay thuộc xã Tiên Yên."
    )
    assert communes.describe(partial, "en").splitlines()[0] == (
        "Part of the former Đại Dực commune is now in Tiên Yên commune."
    )
    unit = communes.unit("quang_la")
    assert unit is not None
    assert communes.describe(unit).splitlines()[0] == (
        "Xã Quảng La được lập từ: xã Bằng Cả, xã Dân Chủ, xã Tân Dân, xã Quảng La."
    )
    hai_lang = communes.unit("hai_lang")
    assert hai_lang is not None
    assert communes.describe(hai_lang).splitlines()[0] == (
        "Xã Hải Lạng được lập từ: xã Đồng Rui, một phần xã Hải Lạng, một phần xã Hải Hòa."
    )


# ------------------------------------------------------------------ small files

HEADER = """\
source: {url: "https://example.org/nq", checked: 2026-11-30}
portal: "https://portal.example.org"
units:
"""


def _unit(
    uid: str,
    name: str,
    kind: str = "xa",
    old: tuple[str, ...] = (),
    centre: str = "",
) -> str:
    lines = [f"  - id: {uid}", f'    name: "{name}"', f"    kind: {kind}"]
    lines.append("    formed_from: [" + ", ".join(f'"{o}"' for o in old) + "]")
    lines.append(f'    centre:\n      name: "Trung tâm {name}"')
    lines += [f"      {line}" for line in centre.splitlines()]
    return "\n".join(lines) + "\n"


def _write(tmp_path: Path, *units: str) -> Path:
    path = tmp_path / "communes.yaml"
    path.write_text(HEADER + "".join(units), encoding="utf-8")
    return path


def _problems(tmp_path: Path, *units: str) -> list[str]:
    with pytest.raises(FlowLoadError) as caught:
        load_communes(_write(tmp_path, *units))
    return [f"{p.line}: {p.message}" for p in caught.value.problems]


def test_nearest_uses_haversine_and_skips_units_without_coordinates(tmp_path: Path) -> None:
    communes = load_communes(
        _write(
            tmp_path,
            _unit("mot", "Thử Một", centre="latitude: 21.0\nlongitude: 107.0"),
            _unit("hai", "Thử Hai", centre="latitude: 21.0\nlongitude: 108.0"),
            _unit("ba", "Thử Ba"),
        )
    )
    [near] = communes.nearest(21.0, 107.9)
    assert near.unit.id == "hai"
    both = communes.nearest(21.0, 107.1, limit=5)
    assert [n.unit.id for n in both] == ["mot", "hai"]
    # One degree of longitude at 21°N is about 103.9 km.
    assert both[1].km - both[0].km == pytest.approx(103.9 * 0.8, rel=0.01)
    assert communes.nearest(21.0, 107.0, limit=0) == []


def test_a_small_file_warns_about_counts_but_loads(tmp_path: Path) -> None:
    communes = load_communes(_write(tmp_path, _unit("mot", "Thử Một")))
    [warning] = communes.warnings
    assert warning.severity == "warning" and "30 phường, 22 xã, 2 đặc khu" in warning.message


def test_describe_shows_only_filled_fields(tmp_path: Path) -> None:
    full = "address: Số 1 đường A\nphone: 0203 000 000\nhours: Thứ Hai đến Thứ Sáu"
    communes = load_communes(
        _write(
            tmp_path,
            _unit("mot", "Thử Một", old=("xã Cũ",), centre=full),
            _unit("hai", "Thử Hai", centre="address: Số 2 đường B"),
        )
    )
    [match] = communes.find("xa cu")
    assert communes.describe(match) == (
        "Xã Cũ cũ nay thuộc xã Thử Một.\n"
        "Bạn làm thủ tục tại Trung tâm Thử Một.\n"
        "Địa chỉ: Số 1 đường A\n"
        "Điện thoại: 0203 000 000\n"
        "Giờ làm việc: Thứ Hai đến Thứ Sáu"
    )
    hai = communes.unit("hai")
    assert hai is not None
    assert communes.describe(hai).splitlines() == [
        "Bạn làm thủ tục tại Trung tâm Thử Hai.",
        "Địa chỉ: Số 2 đường B",
        "Giờ làm việc: xem trên Cổng dịch vụ công Quảng Ninh: https://portal.example.org",
    ]
    assert communes.describe(hai, "en").splitlines()[-1] == (
        "Opening hours: see the Quảng Ninh public services portal: https://portal.example.org"
    )


def test_a_split_must_say_mot_phan_under_both_units(tmp_path: Path) -> None:
    both = (
        _unit("mot", "Thử Một", old=("một phần xã Chung",)),
        _unit("hai", "Thử Hai", old=("một phần xã Chung",)),
    )
    assert [m.unit.id for m in load_communes(_write(tmp_path, *both)).find("xa chung")] == [
        "mot",
        "hai",
    ]
    problems = _problems(
        tmp_path,
        _unit("mot", "Thử Một", old=("xã Chung",)),
        _unit("hai", "Thử Hai", old=("một phần xã Chung",)),
    )
    assert problems == [
        "13: 'xã Chung' is also listed at line 7: when the resolution splits an old unit, "
        "write 'một phần xã Chung' under each new unit"
    ]


def test_duplicate_ids_and_names_are_errors(tmp_path: Path) -> None:
    problems = _problems(
        tmp_path,
        _unit("mot", "Thử Một"),
        _unit("mot", "Thử Hai"),
        _unit("ba", "Thu Mot"),
    )
    assert problems == [
        "10: the id 'mot' is already used at line 4",
        "17: the name 'Thu Mot' is already used at line 5",
    ]


def test_schema_problems_name_their_line(tmp_path: Path) -> None:
    problems = _problems(
        tmp_path,
        _unit("mot", "Thử Một", old=("Cũ",)),
        _unit("hai", "Thử Hai", kind="huyen"),
        _unit("ba", "Thử Ba", centre="latitude: 21.0"),
    )
    assert len(problems) == 3
    assert problems[0].startswith("7: ") and "'xã …'" in problems[0]
    assert problems[1].startswith("12: ") and "'kind'" in problems[1]
    assert problems[2].startswith("20: ") and "latitude and longitude" in problems[2]
