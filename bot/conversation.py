"""The conversation service: one incoming message, one transaction.

    load session → engine → events → new session
    store inbound (redacted) + session + events + outgoing rows (the outbox), commit

Every channel (web chat, terminal, Telegram, Zalo) calls `handle()`; delivery of the
outbox rows is the channel's business. The conversation row is locked for the whole
transaction, so one conversation is processed one message at a time, in order, across
threads and processes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from pydantic import ValidationError

from bot.commune_guide import CommuneGuide
from bot.communes import COMMUNES_FILE, CommuneBook
from bot.content import ContentLibrary
from bot.flow.engine import Content, Turn, command_payload, resume
from bot.flow.events import Event, ForgetRequested, Said, outgoing_text
from bot.flow.model import Flow
from bot.flow.session import Session
from bot.helpdesk import Delivery, HelpDesk
from bot.messages import Button, Incoming, Outgoing
from bot.store import Store

if TYPE_CHECKING:
    from bot.config import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Handled:
    """What `handle()` did. `duplicate` means the message had been handled before."""

    duplicate: bool
    conversation_id: int | None = None
    outgoing: tuple[Outgoing, ...] = ()
    outbox_ids: tuple[int, ...] = ()
    events: tuple[Event, ...] = ()
    queued_elsewhere: int = 0  # rows queued for other chats (volunteers, their group)
    # A volunteer's message, untouched (`handle(..., volunteers=True)`): nothing stored.
    volunteer: bool = False


class ConversationService:
    """Runs the engine for each incoming message, inside the store's transaction."""

    def __init__(
        self,
        *,
        store: Store,
        library: ContentLibrary,
        desk: HelpDesk | None = None,
        communes: CommuneBook | None = None,
    ) -> None:
        self.store = store
        self.library = library
        # Old and new commune names, shared locations (knowledge/communes.yaml).
        self.guide = CommuneGuide(communes or CommuneBook(library.knowledge_dir / COMMUNES_FILE))
        # Without a desk, a handoff is only the engine's "handoff_started" text.
        self.desk = desk
        if desk is not None:
            # The desk asks the citizen's step again after a rating: it reads the flows.
            desk.attach_content(library.content)
            desk.attach_communes(self.guide.book.get)  # a long wait: offer the centre
        self._snapshotted: set[tuple[str, str]] = set()
        self._snapshotted_content: Content | None = None

    def handle(self, incoming: Incoming, *, volunteers: bool = False) -> Handled:
        """Handle one message exactly once; blocking (call it through `Store.run`). With
        `volunteers`, a volunteer's message (`HelpDesk.is_volunteer`) is left untouched
        and comes back as `Handled(volunteer=True)`: asked inside the conversation's
        transaction, it costs one query, not a transaction of its own."""
        handled, later = self._handle(incoming, volunteers)
        if later and self.desk is not None:
            # Other chats (the volunteers' group, a volunteer) are queued in their own
            # conversations once the citizen's transaction has committed.
            queued = self.desk.deliver(later)
            handled = replace(handled, queued_elsewhere=queued)
        return handled

    def _handle(self, incoming: Incoming, volunteers: bool) -> tuple[Handled, tuple[Delivery, ...]]:
        content = self.library.content()
        self._snapshot_current(content)
        desk = self.desk
        with self.store.conversation(
            channel=incoming.channel, chat_id=incoming.chat_id, user_id=incoming.user_id
        ) as tx:
            if volunteers and desk is not None and desk.is_volunteer(incoming, tx=tx):
                return Handled(duplicate=False, volunteer=True), ()
            if not tx.record_inbound(incoming):
                return Handled(duplicate=True, conversation_id=tx.conversation_id), ()
            session = tx.load_session()
            if desk is not None:
                lang = tx.lang or session.lang
                instead = desk.citizen_before_engine(tx, incoming, lang)
                if instead is not None:
                    # A rating, or a message for the volunteer: the session stays as it
                    # was, so the guide resumes where it left off after the handoff.
                    ids = tx.queue_outgoing(instead.to_citizen)
                    handled = Handled(
                        duplicate=False,
                        conversation_id=tx.conversation_id,
                        outgoing=instead.to_citizen,
                        outbox_ids=tuple(ids),
                    )
                    return handled, instead.later
            self._load_revisions(session)
            turn = self._turn(content, session, incoming, tx.conversation_id)
            events = turn.events
            later: tuple[Delivery, ...] = ()
            if desk is not None:
                started = content.phrases.text("handoff_started", turn.session.lang)
                events, later = desk.citizen_after_engine(
                    tx,
                    events,
                    lang=turn.session.lang,
                    started_text=started,
                    commune_id=self.guide.commune_id(turn.session),
                )
            if any(isinstance(e, ForgetRequested) for e in events):
                tx.forget()
            if turn.session.lang != tx.lang:
                tx.set_lang(turn.session.lang)
            tx.save_session(turn.session)
            tx.record_events(events)
            outgoing = tuple(_outgoing(incoming.chat_id, events))
            ids = tx.queue_outgoing(outgoing)
            handled = Handled(
                duplicate=False,
                conversation_id=tx.conversation_id,
                outgoing=outgoing,
                outbox_ids=tuple(ids),
                events=events,
            )
            return handled, later

    def _turn(self, content: Content, session: Session, incoming: Incoming, cid: int) -> Turn:
        """The engine's turn, with what knowledge/communes.yaml adds (bot.commune_guide).
        The guide is an extra: if it fails, the engine's own turn still goes out."""
        try:
            early = self.guide.before(content, session, incoming)
        except Exception:
            log.exception("commune guide failed", extra={"conversation_id": cid})
            early = None
        if early is not None:
            return early
        turn = self._run(content, session, incoming, cid)
        try:
            return self.guide.after(content, session, incoming, turn)
        except Exception:
            log.exception("commune guide failed", extra={"conversation_id": cid})
            return turn

    def _run(self, content: Content, session: Session, incoming: Incoming, cid: int) -> Turn:
        try:
            return resume(content, session, incoming)
        except Exception:
            # A bug or a content edge we did not foresee: the citizen still gets an
            # answer and a way out; the message is kept; the error goes to the log.
            log.exception("engine failed", extra={"conversation_id": cid})
            phrases = content.phrases
            human = Button(phrases.button("human", session.lang), command_payload("human"))
            text = phrases.text("internal_error", session.lang)
            return Turn(Session(lang=session.lang), (Said(text, (human,)),))

    def _snapshot_current(self, content: Content) -> None:
        """Keep a copy of every flow revision in the database, so a conversation can
        finish on the revision it started on after a restart or on another process."""
        if content is self._snapshotted_content:
            return  # the same content as the last message: nothing new to keep
        for flow in content.flows.flows().values():
            key = (flow.id, flow.rev)
            if key in self._snapshotted:
                continue
            self.store.save_flow_snapshot(
                flow_id=flow.id,
                rev=flow.rev,
                version=flow.version,
                data=flow.model_dump(mode="json", by_alias=True, exclude_none=True),
            )
            self._snapshotted.add(key)
        self._snapshotted_content = content

    def _load_revisions(self, session: Session) -> None:
        catalog = self.library.catalog
        for frame in session.stack:
            if catalog.revision(frame.flow_id, frame.rev) is not None:
                continue
            data = self.store.load_flow_snapshot(flow_id=frame.flow_id, rev=frame.rev)
            if data is None:
                continue
            try:
                catalog.add_revision(Flow.model_validate(data))
            except ValidationError:
                log.warning("flow snapshot %s@%s no longer loads", frame.flow_id, frame.rev)


def _outgoing(chat_id: str, events: tuple[Event, ...]) -> list[Outgoing]:
    out = []
    for event in events:
        rendered = outgoing_text(event)
        if rendered is not None:
            text, buttons = rendered
            out.append(Outgoing(chat_id=chat_id, text=text, buttons=buttons))
    return out


def build_service() -> ConversationService:
    """The service as the settings describe it: store ready, content loaded."""
    from bot.config import get_settings

    settings = get_settings()
    store = Store(settings.database_url)
    store.create_all()
    library = ContentLibrary(
        flows_dir=settings.flows_dir,
        knowledge_dir=settings.knowledge_dir,
        max_failures=settings.max_step_failures,
        max_chars=settings.max_message_chars,
    )
    return ConversationService(store=store, library=library, desk=build_desk(store, settings))


def build_desk(store: Store, settings: Settings) -> HelpDesk:
    """The handoff desk: texts from knowledge/handoff.yaml, the province group from
    VOLUNTEER_CHAT_ID (a Telegram group)."""
    from bot.handoff import HANDOFF_FILE, Handoff, load_handoff_texts
    from bot.handoff_settings import get_handoff_settings
    from bot.store import HandoffStore

    texts = load_handoff_texts(settings.knowledge_dir / HANDOFF_FILE)
    province = ("telegram", settings.volunteer_chat_id) if settings.volunteer_chat_id else None
    # The timers and volunteer hours: HANDOFF_* (bot/handoff_settings.py).
    handoff = Handoff(HandoffStore(store), policy=get_handoff_settings().policy)
    return HelpDesk(store=store, handoff=handoff, texts=texts, province=province)
