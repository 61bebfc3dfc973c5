"""The data of knowledge/communes.yaml, as a citizen meets it: every old xã, phường and
thị trấn leads to the new unit the sources give, a split old unit to every unit it went
to, and every mapping says where it comes from."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from bot.communes import Communes, load_communes

ROOT = Path(__file__).resolve().parents[1]
PART = "một phần "

# Old units split between new ones. Khoản 1-6 of Điều 1 (soha, saigoneconomy247): Đồng Lâm,
# Hải Lạng, Hải Hòa, Yên Than, Đại Dực, Đông Ngũ, Vô Ngại. The plan (laodong 1500799): Đức
# Chính. uongbi.gov.vn: Trưng Vương. The bando rows name the rest under two units each.
SPLIT = {
    "xã Đồng Lâm",
    "xã Hải Lạng",
    "xã Hải Hòa",
    "xã Yên Than",
    "xã Đại Dực",
    "xã Đông Ngũ",
    "xã Vô Ngại",
    "phường Đức Chính",
    "phường Trưng Vương",
    "phường Hà Khẩu",
    "xã Liên Hòa",
    "xã Quảng Long",
}


@pytest.fixture(scope="module")
def communes() -> Communes:
    return load_communes(ROOT / "knowledge" / "communes.yaml")


def _claims(communes: Communes) -> dict[str, list[tuple[str, bool]]]:
    """Old unit (as written, without "một phần") → the units that list it, and whether
    as a part."""
    out: dict[str, list[tuple[str, bool]]] = defaultdict(list)
    for unit in communes.units:
        for written in unit.formed_from:
            partial = written.startswith(PART)
            out[written.removeprefix(PART)].append((unit.id, partial))
    return out


def test_every_unit_says_what_it_was_formed_from_and_where_that_is_written(
    communes: Communes,
) -> None:
    for unit in communes.units:
        assert unit.formed_from, unit.id
        assert unit.sources, unit.id
        for source in unit.sources:
            assert source.url.startswith("https://"), (unit.id, source.url)


def test_an_old_unit_is_under_two_units_only_when_the_sources_split_it(
    communes: Communes,
) -> None:
    claims = _claims(communes)
    split = {old for old, where in claims.items() if len(where) > 1}
    assert split == SPLIT
    for old, where in claims.items():
        parts = [partial for _, partial in where]
        # A split old unit is "một phần" under every unit; a whole one never is.
        assert all(parts) if old in SPLIT else not any(parts), (old, where)


def test_every_old_name_finds_every_unit_it_went_to(communes: Communes) -> None:
    for old, where in _claims(communes).items():
        found = {match.unit.id for match in communes.find(old)}
        assert {uid for uid, _ in where} <= found, old


@pytest.mark.parametrize(
    ("text", "unit_ids"),
    [
        ("xã Quảng Chính", ["quang_ha"]),
        ("xa quang chinh", ["quang_ha"]),
        ("xa quang chnh", ["quang_ha"]),  # a typo of Quảng Chính, not Quang Hanh
        ("thi tran cai rong", ["van_don"]),
        ("tt Quảng Hà", ["quang_ha"]),
        ("phường Cẩm Trung", ["cam_pha"]),
        ("xã Dương Huy", ["mong_duong"]),
        ("phuong ka long", ["mong_cai_2"]),
        ("phường Yết Kiêu", []),  # merged into Trần Hưng Đạo in 2024, before NQ 1679
        ("xã Quảng Long", ["quang_ha", "duong_hoa"]),
        ("phường Trưng Vương", ["vang_danh", "uong_bi"]),
        ("xa hai lang", ["hai_lang", "hai_hoa", "ba_che"]),
    ],
)
def test_what_a_citizen_types_finds(communes: Communes, text: str, unit_ids: list[str]) -> None:
    assert [match.unit.id for match in communes.find(text)] == unit_ids


def test_a_split_old_unit_is_described_under_each_unit(communes: Communes) -> None:
    found = communes.find("xã Quảng Long")
    assert all(match.old and match.partial for match in found)
    lines = communes.describe_all(found).splitlines()
    assert "Một phần xã Quảng Long cũ nay thuộc xã Quảng Hà." in lines
    assert "Một phần xã Quảng Long cũ nay thuộc xã Đường Hoa." in lines
