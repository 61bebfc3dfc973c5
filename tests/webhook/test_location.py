"""A shared location through the real webhooks: Telegram (fake Bot API) and Zalo OA (fake
Zalo), answered with the nearest service centre from a fixture communes file (the shipped
file has no coordinates: no source gives them), and the location kept out of the store
and the logs."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.commune_guide import COMMUNE_VAR
from bot.communes import CommuneBook
from bot.content import ContentLibrary
from bot.conversation import ConversationService
from bot.store import Store
from tests.fakes.telegram import Citizen, FakeBotApi
from tests.fakes.telegram import served as served_telegram
from tests.fakes.zalo import FakeZalo, ZaloCitizen
from tests.fakes.zalo import served as served_zalo
from tests.live import LiveServer
from tests.webhook.test_telegram import Bot, telegram_settings
from tests.webhook.test_zalo import OA, zalo_settings
from webhook.app import create_app

PORTAL = "https://dichvucong.quangninh.gov.vn"
# Invented units and coordinates, for the test only.
FIXTURE = """\
source: {url: "https://example.org/nq", checked: 2026-11-30}
portal: "https://portal.example.org"
units:
  - id: dong
    name: "Thử Đông"
    kind: xa
    centre:
      name: "Trung tâm xã Thử Đông"
      address: "Số 2 đường Biển"
      phone: "0200 000 000"
      latitude: 21.2
      longitude: 107.6
  - id: tay
    name: "Thử Tây"
    kind: phuong
    centre:
      name: "Trung tâm phường Thử Tây"
      latitude: 21.0
      longitude: 106.6
"""
# A place 3.35 km north and 3.59 km west of Thử Đông's centre (4.9 km), with more digits
# than a reply shows.
LAT, LON = 21.2301234, 107.5654321


@pytest.fixture
def fixture_book(tmp_path: Path) -> CommuneBook:
    path = tmp_path / "communes.yaml"
    path.write_text(FIXTURE, encoding="utf-8")
    return CommuneBook(path)


@pytest.fixture
def service(
    store: Store, library: ContentLibrary, fixture_book: CommuneBook
) -> ConversationService:
    return ConversationService(store=store, library=library, communes=fixture_book)


@pytest.fixture(scope="module")
def served_api() -> Iterator[FakeBotApi]:
    with served_telegram() as fake:
        yield fake


@pytest.fixture(scope="module")
def served_fake_zalo() -> Iterator[FakeZalo]:
    with served_zalo() as fake:
        yield fake


@pytest.fixture
def bot(served_api: FakeBotApi, service: ConversationService) -> Iterator[Bot]:
    served_api.reset()
    with LiveServer(create_app(service, settings=telegram_settings(served_api))) as server:
        harness = Bot(server, served_api, service)
        yield harness
        harness.client.close()


@pytest.fixture
def oa(served_fake_zalo: FakeZalo, service: ConversationService) -> Iterator[OA]:
    served_fake_zalo.reset()
    with LiveServer(create_app(service, settings=zalo_settings(served_fake_zalo))) as server:
        harness = OA(server, served_fake_zalo, service)
        yield harness
        harness.client.close()


def _nothing_of_the_place_kept(store: Store, channel: str, chat_id: str) -> None:
    records = store.transcript(channel=channel, chat_id=chat_id, limit=100)
    inbound = [r for r in records if r.direction == "in"]
    assert [(r.media_kind, r.text) for r in inbound] == [("location", "")]
    stored = " ".join(r.text for r in records)
    assert "21.23" not in stored and "107.56" not in stored
    with store.conversation(channel=channel, chat_id=chat_id) as tx:
        assert tx.load_session().variables == {COMMUNE_VAR: "dong"}


def test_telegram_location_gets_the_nearest_centre(
    bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    lan = Citizen(7101)
    with caplog.at_level(logging.DEBUG):
        replies = bot.send(lan.location(LAT, LON), lan)
    assert [m.text.splitlines() for m in replies] == [
        [
            "Mình đã nhận được vị trí của bạn.",
            "Gần bạn nhất là Trung tâm xã Thử Đông, cách khoảng 4,9 km đường chim bay.",
            "Địa chỉ: Số 2 đường Biển",
            "Điện thoại: 0200 000 000",
            "Giờ làm việc: xem trên Cổng dịch vụ công Quảng Ninh: https://portal.example.org",
        ]
    ]
    assert replies[0].labels == ["1. Cần người giúp"]
    _nothing_of_the_place_kept(bot.store, "telegram", lan.chat_id)
    assert not any("21.23" in r.getMessage() or "107.56" in r.getMessage() for r in caplog.records)


def test_telegram_location_in_english(bot: Bot) -> None:
    ann = Citizen(7102, language_code="en")
    [reply] = bot.send(ann.location(21.0, 106.61), ann)
    assert reply.text.splitlines()[:2] == [
        "I got your location.",
        "The nearest is Trung tâm phường Thử Tây, about 1.0 km away as the crow flies.",
    ]


def test_zalo_location_gets_the_nearest_centre(oa: OA, caplog: pytest.LogCaptureFixture) -> None:
    mai = ZaloCitizen("7201")
    with caplog.at_level(logging.DEBUG):
        [reply] = oa.send(mai.location(LAT, LON), mai)
    assert reply.text.startswith("Mình đã nhận được vị trí của bạn.\nGần bạn nhất là Trung tâm")
    assert "4,9 km" in reply.text and "Số 2 đường Biển" in reply.text
    _nothing_of_the_place_kept(oa.store, "zalo", mai.user_id)
    assert not any("21.23" in r.getMessage() or "107.56" in r.getMessage() for r in caplog.records)


@pytest.fixture
def shipped_bot(served_api: FakeBotApi, store: Store, library: ContentLibrary) -> Iterator[Bot]:
    served_api.reset()
    service = ConversationService(store=store, library=library)
    with LiveServer(create_app(service, settings=telegram_settings(served_api))) as server:
        harness = Bot(server, served_api, service)
        yield harness
        harness.client.close()


def test_without_coordinates_the_portal_and_a_volunteer_are_offered(shipped_bot: Bot) -> None:
    lan = Citizen(7103)
    [reply] = shipped_bot.send(lan.location(LAT, LON), lan)
    assert reply.text.startswith("Mình đã nhận được vị trí của bạn. Nhưng mình chưa có vị trí")
    assert PORTAL in reply.text
    assert reply.labels == ["1. Cần người giúp"]
    # The volunteer button works from here.
    after = shipped_bot.send(lan.press(reply, "Cần người giúp"), lan)
    assert after and "tình nguyện viên" in after[0].text
