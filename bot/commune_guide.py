"""Communes in the conversation: old and new commune names, and shared locations.

The router and the engine know topics, not places. This module runs around the engine
(bot/conversation.py calls it) and adds what knowledge/communes.yaml knows:

    guide.before(content, session, incoming)       a bare commune name outside a flow
        ("thi tran cai rong", "phường Hồng Gai") → the new unit and its centre, instead
        of "not understood"; None when the engine should run as usual
    guide.after(content, before, incoming, turn)   the engine's turn, completed:
        - a commune named with a question the service_centre / admin_reform_info answers
          → "Xã X cũ nay thuộc …" appended to that answer;
        - "xã X" written out in another question ("bác ở xã X thì làm căn cước ở đâu")
          → the same, as its own message before the engine's reply;
        - a shared location → the nearest centre with coordinates, or where to look,
          in place of "I cannot read this attachment".
    guide.commune_id(session)                      the unit a handoff ticket is for

The unit is remembered in the session variable `commune` (its id), so a volunteer's
ticket shows it and goes to that commune's team. A location is never stored: only the
id of the nearest unit, and the rounded distance in the reply.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from bot.communes import CommuneBook, Communes, Match, plain_words
from bot.flow.engine import MENU_FLOW, Content, Turn, command_payload
from bot.flow.events import AnswerShown, Asked, Event, FlowStarted, MediaReceived, Said
from bot.flow.session import Session
from bot.messages import Button, Incoming, MediaKind

COMMUNE_VAR = "commune"
# Answers about where to go: a commune named with them is what the citizen asks about.
COMMUNE_ANSWERS = frozenset({"service_centre", "admin_reform_info"})
SCAM_ANSWER = "scam_warning"
EXACT = 100.0  # Match.score of a name found as written, not a typo
# At most this many units are described for one message (an old commune split in two).
MAX_UNITS = 3
# A message longer than this is a question or a story, not a commune name.
_BARE_MAX_CHARS = 120
# Typos in a name are looked for only in messages this short, in messages that write a
# kind word ("xã", "phường"), or with an answer about places: the typo search is the
# one costly part (milliseconds on a long message) and every message passes here.
_FUZZY_MAX_WORDS = 8
# Folded kind words that say a place is named next ("thì" folds to "thi": not one).
_KIND_WORDS = frozenset({"xa", "phuong", "tt", "tran"})
# Words that may stand around a bare commune name ("tôi ở xã Bằng Cả cũ", "còn phường
# Hồng Gai thì sao"): folded, without diacritics.
_AROUND = frozenset(
    """toi o tai bac chau em anh chi minh nha con cu moi nay gio bay thuoc la
    xa phuong thi tran dac khu tt p huyen thanh pho tp thi o thi sao con vay a
    ah a nhe nha ha voi oi day do kia quang ninh qn truoc sap nhap""".split()
)
_PORTAL_LABEL = {"vi": "Cổng dịch vụ công tỉnh", "en": "Provincial portal"}


@dataclass(frozen=True)
class CommuneNamed(Event):
    """The citizen named a commune (old or new); `unit_ids` are the new units."""

    unit_ids: tuple[str, ...]
    old: bool


@dataclass(frozen=True)
class CentreSuggested(Event):
    """A shared location was answered; `unit_id` is None when no centre has coordinates."""

    unit_id: str | None


class CommuneGuide:
    """Adds commune knowledge to a turn; does nothing while communes.yaml never loaded."""

    def __init__(self, book: CommuneBook) -> None:
        self.book = book

    def _find(self, communes: Communes, text: str, *, places: bool = False) -> list[Match]:
        words = plain_words(text)
        fuzzy = places or len(words) <= _FUZZY_MAX_WORDS or not _KIND_WORDS.isdisjoint(words)
        return communes.find(text, fuzzy=fuzzy)[:MAX_UNITS]

    def before(self, content: Content, session: Session, incoming: Incoming) -> Turn | None:
        """A turn for a message that is only a commune name, outside any flow, when the
        router has nothing better for it (no flow, command, person or other answer)."""
        communes = self.book.get()
        if communes is None or incoming.payload or incoming.media is not None:
            return None
        text = incoming.text
        if not _free(session) or len(text) > _BARE_MAX_CHARS:
            return None
        matches = self._find(communes, text)
        # At the menu, a sentence that names a place with its kind ("thị trấn Cái Rồng
        # cũ giờ nhập vào đâu") asks about that place: nothing on the menu answers it.
        in_menu = session.current is not None
        if not matches or not (_bare(text, matches) or (in_menu and _with_kind(matches))):
            return None
        route = content.router.route(text)
        if route.kind in ("command", "human") or route.id == SCAM_ANSWER:
            return None
        # A message that is exactly a place's full name ("cai rong", "xã Quảng Chính")
        # names that place, even when one of its words alone would start a topic ("cài").
        exact = _bare(text, matches) and all(
            m.score >= EXACT and (m.with_kind or m.end - m.start >= 2) for m in matches
        )
        if route.kind == "flow" and not exact:
            return None
        if route.kind == "answer" and route.id not in COMMUNE_ANSWERS and not exact:
            return None  # a topic the name happens to spell
        lang = _lang(session, incoming)
        human = Button(content.phrases.button("human", lang), command_payload("human"))
        portal = Button(
            _PORTAL_LABEL.get(lang, _PORTAL_LABEL["vi"]), "u:communes:0", communes.portal
        )
        said = Said(communes.describe_all(matches, lang), (portal, human))
        new = _remember(replace(session, lang=lang, misses=0, buttons=(human.payload,)), matches)
        return Turn(new, (_named(matches), said))

    def after(self, content: Content, before: Session, incoming: Incoming, turn: Turn) -> Turn:
        """The engine's `turn` with what the communes file adds to it (see the module)."""
        communes = self.book.get()
        if communes is None or incoming.payload:
            return turn
        media = incoming.media
        if media is not None and media.kind is MediaKind.LOCATION:
            if media.latitude is None or media.longitude is None:
                return turn
            return _located(content, communes, turn, media.latitude, media.longitude)
        if media is not None:
            return turn
        events = list(turn.events)
        shown = next(
            (
                i
                for i, e in enumerate(events)
                if isinstance(e, AnswerShown) and e.answer_id in COMMUNE_ANSWERS
            ),
            None,
        )
        matches = self._find(communes, incoming.text, places=shown is not None)
        if not matches:
            return turn
        lang = turn.session.lang
        text = communes.describe_all(matches, lang)
        answer = _next_said(events, shown) if shown is not None else None
        if answer is not None:
            said = events[answer]
            assert isinstance(said, Said)
            events[answer] = Said(f"{said.text}\n\n{text}", said.buttons)
        elif (
            _free(before)
            and any(m.with_kind for m in matches)
            and not any(isinstance(e, FlowStarted) for e in events)
        ):
            # "bác ở xã Bằng Cả thì làm căn cước ở đâu": where to go first, then whatever
            # the engine made of the question.
            first = next(
                (i for i, e in enumerate(events) if isinstance(e, Said | Asked)), len(events)
            )
            events.insert(first, Said(text))
        else:
            return turn
        events.insert(0, _named(matches))
        return Turn(_remember(turn.session, matches), tuple(events))

    def commune_id(self, session: Session) -> str | None:
        """The unit the session remembers: its id, or the one unit a saved name finds
        (a flow may save what the citizen typed under `commune`)."""
        value = session.variables.get(COMMUNE_VAR)
        communes = self.book.get()
        if not isinstance(value, str) or not value or communes is None:
            return None
        if communes.unit(value) is not None:
            return value
        units = {m.unit.id for m in communes.find(value)}
        return units.pop() if len(units) == 1 else None


def _with_kind(matches: list[Match]) -> bool:
    return any(m.with_kind for m in matches)


def _free(session: Session) -> bool:
    """Not inside a guide: no flow, or the menu (which every new chat is shown first, so
    a citizen who types a place there has not chosen anything yet). Inside a guide a
    place may be the answer to its question, so the guide is left to take it."""
    frame = session.current
    return frame is None or frame.flow_id == MENU_FLOW


def _lang(session: Session, incoming: Incoming) -> str:
    # As the engine does: a new conversation takes the messenger's language.
    if not session.stack and not session.vars and incoming.lang_hint in ("vi", "en"):
        return incoming.lang_hint or session.lang
    return session.lang


def _bare(text: str, matches: list[Match]) -> bool:
    """The message is the name and a few words around it, nothing else."""
    words = plain_words(text)
    named = {i for m in matches for i in range(m.start, m.end)}
    return all(w in _AROUND for i, w in enumerate(words) if i not in named)


def _named(matches: list[Match]) -> CommuneNamed:
    ids = tuple(dict.fromkeys(m.unit.id for m in matches))
    return CommuneNamed(ids, any(m.old for m in matches))


def _remember(session: Session, matches: list[Match]) -> Session:
    units = {m.unit.id for m in matches}
    # An old commune split between two units says nothing certain: keep what was known.
    return session.with_var(COMMUNE_VAR, units.pop()) if len(units) == 1 else session


def _next_said(events: list[Event], after: int) -> int | None:
    for index in range(after + 1, len(events)):
        if isinstance(events[index], Said):
            return index
    return None


def _located(
    content: Content, communes: Communes, turn: Turn, latitude: float, longitude: float
) -> Turn:
    """Replace the engine's "I cannot read this" with the nearest centre."""
    events = list(turn.events)
    received = next((i for i, e in enumerate(events) if isinstance(e, MediaReceived)), None)
    index = _next_said(events, received) if received is not None else None
    if index is None:
        return turn
    lang = turn.session.lang
    said = events[index]
    assert isinstance(said, Said)
    human = content.phrases.button("human", lang)
    events[index] = Said(communes.near_text(latitude, longitude, lang, human=human), said.buttons)
    near = communes.nearest(latitude, longitude)
    unit_id = near[0].unit.id if near else None
    events.insert(index, CentreSuggested(unit_id))
    session = turn.session
    if unit_id is not None and COMMUNE_VAR not in session.variables:
        # A name the citizen gave is surer than the nearest centre; without one, the
        # nearest unit's team is the best guess for a volunteer.
        session = session.with_var(COMMUNE_VAR, unit_id)
    return Turn(session, tuple(events))
