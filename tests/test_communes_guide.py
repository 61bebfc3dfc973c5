"""Communes in the conversation (bot.commune_guide through the conversation service, on
each store): old and new names understood alone and inside a question, the unit kept
for the handoff ticket, shared locations answered with the nearest centre."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from bot.commune_guide import COMMUNE_VAR, CentreSuggested, CommuneNamed
from bot.communes import CommuneBook, load_communes
from bot.content import ContentLibrary
from bot.conversation import ConversationService, Handled
from bot.flow.events import AnswerShown, HandoffRequested, NotUnderstood
from bot.handoff import HANDOFF_FILE, Handoff, HandoffPolicy, VolunteerHours, load_handoff_texts
from bot.helpdesk import HelpDesk
from bot.messages import Incoming, Media, MediaKind
from bot.store import HandoffStore, Store

ROOT = Path(__file__).resolve().parents[1]
PORTAL = "https://dichvucong.quangninh.gov.vn"

# Two invented units with invented coordinates: a fixture, never shipped content.
FIXTURE = """\
source: {url: "https://example.org/nq", checked: 2026-11-30}
portal: "https://portal.example.org"
units:
  - id: mot
    name: "Thử Một"
    kind: xa
    formed_from: ["xã Cũ Một"]
    centre:
      name: "Trung tâm xã Thử Một"
      address: "Số 1 đường Thử"
      hours: "Sáng thứ Hai đến thứ Sáu"
      latitude: 21.0
      longitude: 107.0
  - id: hai
    name: "Thử Hai"
    kind: phuong
    centre:
      name: "Trung tâm phường Thử Hai"
      latitude: 21.0
      longitude: 108.0
  - id: ba
    name: "Thử Ba"
    kind: xa
    centre: {name: "Trung tâm xã Thử Ba"}
"""


@pytest.fixture
def service(store: Store, library: ContentLibrary) -> ConversationService:
    return ConversationService(store=store, library=library)


@pytest.fixture
def desk_service(store: Store, library: ContentLibrary) -> ConversationService:
    policy = HandoffPolicy(hours=VolunteerHours(start=0, end=0))
    desk = HelpDesk(
        store=store,
        handoff=Handoff(HandoffStore(store), policy=policy),
        texts=load_handoff_texts(ROOT / "knowledge" / HANDOFF_FILE),
        province=("telegram", "-100777"),
    )
    return ConversationService(store=store, library=library, desk=desk)


def _fixture(tmp_path: Path, text: str = FIXTURE) -> Path:
    path = tmp_path / "communes.yaml"
    path.write_text(text, encoding="utf-8")
    return path


class Chat:
    def __init__(self, service: ConversationService, chat_id: str = "c1") -> None:
        self.service = service
        self.chat_id = chat_id
        self.n = 0

    def send(self, text: str = "", media: Media | None = None, lang: str | None = None) -> Handled:
        self.n += 1
        incoming = Incoming(
            channel="web",
            chat_id=self.chat_id,
            text=text,
            media=media,
            message_id=f"{self.chat_id}-{self.n}",
            lang_hint=lang,
        )
        return self.service.handle(incoming)

    def variables(self) -> dict[str, object]:
        with self.service.store.conversation(channel="web", chat_id=self.chat_id) as tx:
            return dict(tx.load_session().variables)


def _texts(handled: Handled) -> list[str]:
    return [o.text for o in handled.outgoing]


# ------------------------------------------------------------------ names


@pytest.mark.parametrize(
    ("text", "first_line", "unit_id"),
    [
        ("thi tran cai rong", "Thị trấn Cái Rồng cũ nay thuộc đặc khu Vân Đồn.", "van_don"),
        # "cai" alone would start the install guide; the whole name is the place
        ("cai rong", "Thị trấn Cái Rồng cũ nay thuộc đặc khu Vân Đồn.", "van_don"),
        ("Thị trấn Cái Rồng", "Thị trấn Cái Rồng cũ nay thuộc đặc khu Vân Đồn.", "van_don"),
        ("xa bang ca", "Xã Bằng Cả cũ nay thuộc xã Quảng La.", "quang_la"),
        (
            "tôi ở phường Hùng Thắng cũ",
            "Phường Hùng Thắng cũ nay thuộc phường Bãi Cháy.",
            "bai_chay",
        ),
        ("phuong hong gai", "Phường Hồng Gai được lập từ: phường Hồng Gai,", "hong_gai"),
    ],
)
def test_a_bare_commune_name_gets_the_new_unit_and_where_to_go(
    service: ConversationService, text: str, first_line: str, unit_id: str
) -> None:
    chat = Chat(service)
    handled = chat.send(text)
    [reply] = handled.outgoing
    lines = reply.text.splitlines()
    assert lines[0].startswith(first_line)
    assert lines[1].startswith("Bạn làm thủ tục tại Trung tâm Phục vụ hành chính công")
    # Nothing is known of the centres yet: the portal, never a guessed address.
    assert lines[-1] == f"Địa chỉ và giờ làm việc: xem trên Cổng dịch vụ công Quảng Ninh: {PORTAL}"
    assert [b.label for b in reply.buttons] == ["Cổng dịch vụ công tỉnh", "Cần người giúp"]
    assert reply.buttons[0].url == PORTAL
    assert not any(isinstance(e, NotUnderstood) for e in handled.events)
    named = [e for e in handled.events if isinstance(e, CommuneNamed)]
    assert named == [CommuneNamed((unit_id,), named[0].old)]
    assert chat.variables()[COMMUNE_VAR] == unit_id


def test_a_split_old_commune_names_both_units_and_remembers_neither(
    service: ConversationService,
) -> None:
    chat = Chat(service)
    [reply] = chat.send("xã Đại Dực").outgoing
    assert "Một phần xã Đại Dực cũ nay thuộc xã Tiên Yên." in reply.text
    assert "Một phần xã Đại Dực cũ nay thuộc xã Đông Ngũ." in reply.text
    assert reply.text.count(PORTAL) == 1
    assert COMMUNE_VAR not in chat.variables()


def test_a_commune_inside_a_question_comes_before_the_engine_reply(
    service: ConversationService,
) -> None:
    chat = Chat(service)
    handled = chat.send("bác ở xã Bằng Cả thì làm căn cước ở đâu")
    texts = _texts(handled)
    assert texts[0].startswith("Xã Bằng Cả cũ nay thuộc xã Quảng La.")
    assert len(texts) >= 2  # and whatever the router made of the question
    assert chat.variables()[COMMUNE_VAR] == "quang_la"


@pytest.mark.parametrize(
    "text", ["thi tran cai rong", "Bác ở thị trấn Cái Rồng cũ, giờ nhập vào đâu?"]
)
def test_at_the_menu_a_named_place_is_answered_not_refused(
    service: ConversationService, text: str
) -> None:
    """Every new chat is shown the menu first; a place typed there is a question about
    that place, not a wrong menu choice."""
    chat = Chat(service)
    chat.send("menu")
    handled = chat.send(text)
    texts = _texts(handled)
    assert texts[0].startswith("Thị trấn Cái Rồng cũ nay thuộc đặc khu Vân Đồn.")
    assert not any(isinstance(e, NotUnderstood) for e in handled.events)
    assert chat.variables()[COMMUNE_VAR] == "van_don"


def test_the_admin_reform_and_service_centre_answers_get_the_commune_appended(
    service: ConversationService,
) -> None:
    chat = Chat(service)
    handled = chat.send("Tôi ở Cái Rồng, nộp hồ sơ ở đâu")
    shown = [e.answer_id for e in handled.events if isinstance(e, AnswerShown)]
    assert shown and shown[0] in ("admin_reform_info", "service_centre")
    answer = handled.outgoing[0].text
    head, _, tail = answer.partition("\n\nThị trấn Cái Rồng cũ nay thuộc đặc khu Vân Đồn.")
    assert head and tail, answer
    assert [b.label for b in handled.outgoing[0].buttons][-1] == "Cần người giúp"

    other = Chat(service, "c2")
    answer = other.send("trung tâm hành chính công phường Hồng Gai ở đâu").outgoing[0].text
    assert "\n\nPhường Hồng Gai được lập từ:" in answer


def test_english_citizens_get_english_words(service: ConversationService) -> None:
    chat = Chat(service)
    [reply] = chat.send("cai rong", lang="en").outgoing
    assert (
        reply.text.splitlines()[0] == "The former Cái Rồng township is now in Vân Đồn special zone."
    )
    assert [b.label for b in reply.buttons] == ["Provincial portal", "Talk to a person"]


@pytest.mark.parametrize("text", ["thời tiết hôm nay thế nào", "cài vneid", "menu"])
def test_messages_without_a_commune_are_left_to_the_engine(
    service: ConversationService, text: str
) -> None:
    handled = Chat(service).send(text)
    assert not any(isinstance(e, CommuneNamed) for e in handled.events)


def test_a_flow_trigger_wins_over_a_name_it_contains(service: ConversationService) -> None:
    # "thống nhất" is a commune too, but a message with a topic goes to the topic.
    handled = Chat(service).send("kích hoạt vneid")
    assert not any(isinstance(e, CommuneNamed) for e in handled.events)


def test_the_handoff_ticket_carries_the_commune(desk_service: ConversationService) -> None:
    service = desk_service
    chat = Chat(service)
    chat.send("thi tran cai rong")
    handled = chat.send("gặp người thật")
    assert any(isinstance(e, HandoffRequested) for e in handled.events)
    assert service.desk is not None
    ticket = service.desk.handoff.active_ticket_for_conversation(handled.conversation_id or 0)
    assert ticket is not None and ticket.commune_id == "van_don"


def test_a_saved_commune_name_is_resolved_for_the_ticket(tmp_path: Path) -> None:
    from bot.commune_guide import CommuneGuide
    from bot.flow.session import Session

    guide = CommuneGuide(CommuneBook(ROOT / "knowledge" / "communes.yaml"))
    assert guide.commune_id(Session().with_var(COMMUNE_VAR, "van_don")) == "van_don"
    assert guide.commune_id(Session().with_var(COMMUNE_VAR, "xã Bằng Cả")) == "quang_la"
    assert guide.commune_id(Session().with_var(COMMUNE_VAR, "xã Đại Dực")) is None
    assert guide.commune_id(Session()) is None


# ------------------------------------------------------------------ locations


def _located(service: ConversationService, path: Path, lat: float, lon: float) -> Handled:
    located = ConversationService(
        store=service.store, library=service.library, communes=CommuneBook(path)
    )
    media = Media(MediaKind.LOCATION, latitude=lat, longitude=lon)
    return Chat(located, "loc").send(media=media)


def test_a_location_gets_the_nearest_centre_with_coordinates(
    service: ConversationService, tmp_path: Path
) -> None:
    handled = _located(service, _fixture(tmp_path), 21.0, 107.1)
    [reply] = handled.outgoing
    # One degree of longitude at 21°N is about 103.9 km: 0.1° is about 10 km.
    assert reply.text.splitlines() == [
        "Mình đã nhận được vị trí của bạn.",
        "Gần bạn nhất là Trung tâm xã Thử Một, cách khoảng 10 km đường chim bay.",
        "Địa chỉ: Số 1 đường Thử",
        "Giờ làm việc: Sáng thứ Hai đến thứ Sáu",
    ]
    assert [b.label for b in reply.buttons] == ["Cần người giúp"]
    assert CentreSuggested("mot") in handled.events


def test_a_location_near_a_centre_without_address_points_to_the_portal(
    service: ConversationService, tmp_path: Path
) -> None:
    [reply] = _located(service, _fixture(tmp_path), 21.01, 107.99).outgoing
    assert reply.text.splitlines() == [
        "Mình đã nhận được vị trí của bạn.",
        "Gần bạn nhất là Trung tâm phường Thử Hai, cách khoảng 1,5 km đường chim bay.",
        "Địa chỉ và giờ làm việc: xem trên Cổng dịch vụ công Quảng Ninh: "
        "https://portal.example.org",
    ]


def test_a_location_with_no_coordinates_known_says_so_and_offers_a_volunteer(
    service: ConversationService,
) -> None:
    # The shipped file: no source gave any centre's coordinates.
    shipped = load_communes(ROOT / "knowledge" / "communes.yaml")
    assert all(u.centre.latitude is None for u in shipped.units)
    chat = Chat(service)
    handled = chat.send(media=Media(MediaKind.LOCATION, latitude=21.0, longitude=107.1))
    [reply] = handled.outgoing
    assert reply.text.startswith("Mình đã nhận được vị trí của bạn. Nhưng mình chưa có vị trí")
    assert PORTAL in reply.text and '"Cần người giúp"' in reply.text
    assert [b.label for b in reply.buttons] == ["Cần người giúp"]
    assert CentreSuggested(None) in handled.events
    assert COMMUNE_VAR not in chat.variables()


def test_a_location_is_not_stored(service: ConversationService, tmp_path: Path) -> None:
    handled = _located(service, _fixture(tmp_path), 21.0123456, 107.1234567)
    records = service.store.transcript(channel="web", chat_id="loc", limit=50)
    stored = " ".join(f"{r.text} {r.direction}" for r in records)
    assert "21.01" not in stored and "107.12" not in stored
    assert "21,01" not in stored
    assert any(isinstance(e, CentreSuggested) for e in handled.events)
    # The nearest unit's id is kept for the volunteer, not the place.
    with service.store.conversation(channel="web", chat_id="loc") as tx:
        assert tx.load_session().variables == {COMMUNE_VAR: "mot"}


def test_a_location_inside_a_flow_asks_the_step_again(
    service: ConversationService, tmp_path: Path
) -> None:
    located = ConversationService(
        store=service.store, library=service.library, communes=CommuneBook(_fixture(tmp_path))
    )
    chat = Chat(located, "flow")
    chat.send("kích hoạt vneid")
    texts = _texts(chat.send(media=Media(MediaKind.LOCATION, latitude=21.0, longitude=107.0)))
    assert texts[0].splitlines()[1].startswith("Gần bạn nhất là Trung tâm xã Thử Một")
    assert len(texts) == 2  # the step the citizen was on, asked again


# ------------------------------------------------------------------ the book


def test_the_book_reloads_an_edit_and_keeps_the_last_good_version(tmp_path: Path) -> None:
    path = _fixture(tmp_path)
    book = CommuneBook(path, recheck_seconds=0)
    first = book.get()
    assert first is not None and first.unit("mot") is not None
    path.write_text(FIXTURE.replace("Thử Ba", "Thử Bốn"), encoding="utf-8")
    _bump(path)
    second = book.get()
    assert second is not None and second is not first
    assert [m.unit.id for m in second.find("xã Thử Bốn")] == ["ba"]
    path.write_text(FIXTURE + "  - id: mot\n", encoding="utf-8")  # broken
    _bump(path)
    assert book.get() is second
    assert CommuneBook(tmp_path / "missing.yaml").get() is None


def _bump(path: Path) -> None:
    # A later modification time, even on file systems with coarse timestamps.
    stamp = time.time() + 5
    os.utime(path, (stamp, stamp))
