"""The handoff at work: what citizens, volunteers and volunteer groups are sent.

`bot/handoff.py` holds the rules (tickets, claims, timers); this module turns its results
into outbox rows. A citizen's side runs inside the citizen's conversation transaction
(`citizen_before_engine`, `citizen_after_engine`); messages to other chats (the group,
the volunteer's private chat) come back as `Delivery` values that the caller queues with
`deliver()` after that transaction commits, each in the transaction of its own chat.

    stuck → open ticket → group post with "Nhận hỗ trợ" (paired volunteer first)
    claim → group posts edited (who took it), context and kept photos to the volunteer,
            "joined" to the citizen
    claimed: citizen ⇄ volunteer relayed (photos, voice as themselves where the
             channels allow: bot/channels/common.py markers), the engine is not run
    /done → posts edited (closed, by whom) → rating buttons to the citizen → rating
            kept, posts edited again, thanks, and the step the citizen was at asked again
            (or the menu)
    console, CLI → close_ticket, transfer_ticket, request_visit, disable: the same steps
            (a coordinator's close or transfer also tells the volunteer who held it)
    /stop → the ticket closed, and what was relayed about the citizen to volunteers and
            groups dropped or masked (their words, their photos' file references)
    a long wait → re-posted to the province; the citizen offered their service centre

As the outbox sender's `AfterSend` hook, the desk learns the message ids of its group
posts (to edit them later), hears of a volunteer's photo that reached a Zalo citizen only
in words (the volunteer is told), and hears of replies that could not reach a citizen: blocked
(the ticket closes, the volunteer is told) or outside Zalo's messaging window (noted on
the ticket, the volunteer is told once; never retried).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from bot.channels.common import (
    edit_button,
    is_url,
    media_button,
    note_button,
    special,
    went_in_words,
)
from bot.communes import Communes
from bot.console_accounts import CONSOLE_CHANNEL
from bot.errors import ChannelError, ChatBlocked, OutsideWindow
from bot.flow.engine import Content, prompt
from bot.flow.events import Event, ForgetRequested, HandoffRequested, Said, outgoing_text
from bot.handoff import (
    DisableResult,
    Handoff,
    HandoffTexts,
    Outcome,
    TicketResult,
    claim_button,
    claim_payload,
    media_note,
    notify_values,
    parse_payload,
    rating_buttons,
)
from bot.messages import Button, Incoming, Media, MediaKind, Outgoing
from bot.redact import redact
from bot.store import (
    CloseReason,
    ContextLine,
    ConversationTx,
    NoteKind,
    OutboxItem,
    Store,
    TeamKind,
    Ticket,
    TicketStatus,
    Volunteer,
)
from bot.store.types import utcnow

log = logging.getLogger(__name__)

FORGET_PAYLOAD = "g:forget"
_RATINGS = frozenset("12345")
# Where attachments can be sent as themselves (a media marker); elsewhere, in words.
_MEDIA_CHANNEL = "telegram"
# Where a volunteer's Telegram photo goes as itself too: the Zalo OA fetches it from
# Telegram and uploads it when it sends the row (bot/channels/zalo.py), and sends the
# row's note instead if that keeps failing.
_UPLOAD_CHANNEL = "zalo"
_CLAIM_PREFIX = claim_payload(0)[:-1]
# Photos kept from before a claim that are sent to the volunteer who takes it.
_KEPT_MEDIA = 5
# A channel's name as a volunteer reads it.
_CHANNEL_NAMES = {"zalo": "Zalo", "zalo_bot": "Zalo", "web": "web", "telegram": "Telegram"}


@dataclass(frozen=True)
class Delivery:
    """Messages for another chat, queued in that chat's own transaction."""

    channel: str
    chat_id: str
    messages: tuple[Outgoing, ...]


@dataclass(frozen=True)
class DeskTurn:
    """What the desk decided for one citizen message in place of the engine."""

    to_citizen: tuple[Outgoing, ...] = ()
    later: tuple[Delivery, ...] = ()


@dataclass(frozen=True)
class ClaimAnswer:
    """The answer to a pressed claim button: `notice` for the presser's spinner;
    `marked` (set for the winner) replaces the button under the group post."""

    notice: str
    marked: str | None = None
    queued: int = 0


@dataclass
class _Out:
    later: list[Delivery] = field(default_factory=list)

    def to(self, channel: str, chat_id: str, *messages: Outgoing) -> None:
        if messages:
            self.later.append(Delivery(channel, chat_id, tuple(messages)))


class HelpDesk:
    """Connects citizens, volunteers and volunteer groups through the outbox.

    `province` is the province-wide group (VOLUNTEER_CHAT_ID) as (channel, chat_id):
    tickets of no team, and re-posted tickets, are posted there."""

    def __init__(
        self,
        *,
        store: Store,
        handoff: Handoff,
        texts: HandoffTexts,
        province: tuple[str, str] | None = None,
        content: Callable[[], Content] | None = None,
        communes: Callable[[], Communes | None] | None = None,
    ) -> None:
        self.store = store
        self.handoff = handoff
        self.texts = texts
        self.province = province
        # The engine's content, to ask the citizen's step again after a rating.
        self.content = content
        # communes.yaml, to offer a citizen still waiting their service centre.
        self.communes = communes

    def attach_communes(self, communes: Callable[[], Communes | None]) -> None:
        """Where the desk reads communes.yaml (the service's commune book), unless set:
        a citizen still waiting is offered their commune's service centre."""
        if self.communes is None:
            self.communes = communes

    def attach_content(self, content: Callable[[], Content]) -> None:
        """Where the desk reads flows (the service's `library.content`), unless set."""
        if self.content is None:
            self.content = content

    # -- the citizen's side, inside their transaction ------------------------------------

    def citizen_before_engine(
        self, tx: ConversationTx, incoming: Incoming, lang: str
    ) -> DeskTurn | None:
        """A rating, or a message to relay to the volunteer; None: run the engine."""
        rated = self._rating(tx, incoming, lang)
        if rated is not None:
            return rated
        if incoming.payload == FORGET_PAYLOAD:
            return None  # /stop works during a handoff: the engine forgets, we close
        media = incoming.media
        if media is not None:
            self.handoff.keep_media(tx.conversation_id, media, tx=tx)
        ticket = self.handoff.touch_citizen(tx.conversation_id, tx=tx)
        if ticket is None:
            return None
        if ticket.status == TicketStatus.WAITING:
            # Kept on the ticket, so the volunteer who claims it reads (and sees) it; the
            # engine still answers (a photo: acknowledged, a handoff offered).
            if incoming.text.strip() or media is not None:
                line = ContextLine(
                    who="citizen",
                    text=incoming.text,
                    at=utcnow(),
                    media_kind=media.kind.value if media is not None else None,
                    media_ref=media.ref if media is not None else None,
                )
                self.handoff.add_to_context(ticket.id, line, tx=tx)
            return None
        if ticket.status != TicketStatus.CLAIMED:
            return None
        volunteer = self._volunteer_of(ticket)
        if volunteer is None:
            return None
        out = _Out()
        header = f"{self.texts.text('context_citizen', 'vi')} #{ticket.id}"
        text = f"{header}: {redact(_relay_body(incoming))}"
        mark = _media_mark(media, source=incoming.channel, target=volunteer.channel)
        out.to(volunteer.channel, volunteer.user_id, Outgoing(volunteer.user_id, text, mark))
        return DeskTurn(later=tuple(out.later))

    def citizen_after_engine(
        self,
        tx: ConversationTx,
        events: tuple[Event, ...],
        *,
        lang: str,
        started_text: str,
        now: datetime | None = None,
        commune_id: str | None = None,
    ) -> tuple[tuple[Event, ...], tuple[Delivery, ...]]:
        """Open a ticket for a HandoffRequested (the citizen is told the wait instead of
        the engine's `started_text`); close it when the citizen asked to be forgotten."""
        now = now or utcnow()
        out = _Out()
        if any(isinstance(e, ForgetRequested) for e in events):
            closed = self.handoff.forget_conversation(tx.conversation_id, now=now, tx=tx)
            # Their words and photos relayed to volunteers and groups go too.
            self.handoff.forget_relays(
                tx.conversation_id,
                prefixes=self._relay_prefixes,
                mask=self.texts.text("relay_forgotten"),
                tx=tx,
            )
            if closed is not None:
                self._tell_holder_closed(closed, out)
                self._edit_posts(closed, out, now=now)
            return events, tuple(out.later)
        requested = next((e for e in events if isinstance(e, HandoffRequested)), None)
        if requested is None:
            return events, ()
        ticket, new = self.handoff.open_ticket(
            tx.conversation_id,
            reason=requested.reason,
            flow_id=requested.flow_id,
            step_id=requested.step_id,
            lang=lang,
            commune_id=commune_id,
            now=now,
            tx=tx,
        )
        if not new:
            said = self.texts.text("ticket_already_open", lang)
        elif self.handoff.is_volunteer_time(now):
            minutes = self.handoff.wait_estimate(ticket.team_id, now=now)
            said = self.texts.text("ticket_waiting", lang, minutes=minutes)
        else:
            said = self.texts.text("outside_hours", lang, **self.handoff.policy.hours.values(now))
        replaced = tuple(
            Said(said, e.buttons) if isinstance(e, Said) and e.text == started_text else e
            for e in events
        )
        if new:
            self._announce(ticket, "notify_new_ticket", out, tx=tx, now=now)
        return replaced, tuple(out.later)

    # -- volunteers ---------------------------------------------------------------------

    def is_volunteer(self, incoming: Incoming, *, tx: ConversationTx | None = None) -> bool:
        """A private message that is a volunteer action: /join, or from a volunteer
        (asked inside `tx` when given)."""
        if incoming.user_id is None or incoming.chat_id != incoming.user_id:
            return False
        if _command(incoming.text)[0] == "join":
            return True
        return self.handoff.is_volunteer_account(
            channel=incoming.channel, user_id=incoming.user_id, tx=tx
        )

    def volunteer_message(self, incoming: Incoming, *, name: str = "") -> int | None:
        """Handle a volunteer's message; the number of outbox rows queued, or None when
        the update was handled before."""
        with self.store.conversation(
            channel=incoming.channel, chat_id=incoming.chat_id, user_id=incoming.user_id
        ) as vtx:
            if not vtx.record_inbound(incoming):
                return None
        out = _Out()
        reply = self._volunteer_action(incoming, name, out)
        if reply:
            out.to(incoming.channel, incoming.chat_id, Outgoing(incoming.chat_id, reply))
        return self.deliver(out.later)

    def claim(self, ticket_id: int, *, channel: str, user_id: str) -> ClaimAnswer:
        """A claim button pressed (in a group or in private)."""
        volunteer = self.handoff.find_volunteer(channel=channel, user_id=user_id)
        if volunteer is None:
            return ClaimAnswer(self.texts.text("not_volunteer"))
        result = self.handoff.claim(ticket_id, volunteer_id=volunteer.id)
        if not result.ok or result.ticket is None:
            return ClaimAnswer(self.texts.refusal(result) or "")
        ticket = result.ticket
        out = _Out()
        if volunteer.channel != CONSOLE_CHANNEL:
            # The briefing names the Telegram commands; a console-only account reads the
            # same context on the ticket's page instead.
            values = notify_values(ticket, self.texts)
            out.to(
                volunteer.channel,
                volunteer.user_id,
                Outgoing(volunteer.user_id, self.texts.text("claim_ok", **values)),
            )
            out.to(volunteer.channel, volunteer.user_id, *self._kept_media(ticket, volunteer))
        joined = self.texts.text("volunteer_joined", ticket.lang, name=volunteer.name)
        out.to(ticket.channel, ticket.chat_id, Outgoing(ticket.chat_id, joined))
        self._edit_posts(ticket, out)
        queued = self.deliver(out.later)
        marked = self.texts.text("claimed_by", name=volunteer.name)
        return ClaimAnswer(marked, marked=marked, queued=queued)

    def close_ticket(
        self,
        ticket_id: int | None,
        volunteer: Volunteer,
        *,
        reason: CloseReason = CloseReason.DONE,
    ) -> tuple[TicketResult, int]:
        """Close a ticket: the holder's /done, or a coordinator's close (also of a
        waiting ticket). The citizen is asked to rate the help (or, when nobody was
        helping, told the request is closed); a holder who did not close it is told;
        the posts are edited. The result and the number of outbox rows queued."""
        out = _Out()
        result = self._close(ticket_id, volunteer, reason, out)
        return result, self.deliver(out.later)

    def transfer_ticket(
        self, ticket_id: int | None, volunteer: Volunteer, *, note: str = ""
    ) -> tuple[TicketResult, int]:
        """Put a claimed ticket back in the queue: the holder's /transfer, or a
        coordinator's. The citizen is told, a holder who did not do it is told, the old
        posts say it moved and it is announced again."""
        out = _Out()
        result = self._transfer(ticket_id, volunteer, note, out)
        return result, self.deliver(out.later)

    def request_visit(
        self, ticket_id: int | None, volunteer: Volunteer, *, note: str = ""
    ) -> tuple[TicketResult, int]:
        """Ask the team for a visit in person (/visit): the citizen is told, the group
        gets the request."""
        out = _Out()
        result = self._visit(ticket_id, volunteer, note, out)
        return result, self.deliver(out.later)

    def disable(self, volunteer_id: int) -> tuple[DisableResult | None, int]:
        """Lock a volunteer out (a coordinator, from the console or the CLI). The ticket
        they held goes back to the queue as after /transfer: the citizen told, the old
        posts edited, the ticket announced again. None: no such volunteer."""
        result = self.handoff.disable(volunteer_id)
        if result is None or result.returned is None:
            return result, 0
        out = _Out()
        ticket = result.returned
        text = self.texts.text("ticket_returned", ticket.lang)
        out.to(ticket.channel, ticket.chat_id, Outgoing(ticket.chat_id, text))
        self._edit_posts(ticket, out, key="post_moved")
        self._announce(ticket, "notify_returned", out)
        return result, self.deliver(out.later)

    # -- timers -------------------------------------------------------------------------

    def run_timers(self, now: datetime | None = None) -> int:
        """Re-post long waits to the province, return silent claims to the queue, close
        tickets waiting or idle too long. The number of outbox rows queued."""
        now = now or utcnow()
        out = _Out()
        for ticket in self.handoff.due_reposts(now):
            self._edit_posts(ticket, out, key="post_moved", now=now)
            self._announce(ticket, "reposted", out, now=now)
            if self.handoff.is_volunteer_time(now):
                # Off duty the citizen was told when someone is back: that still holds.
                text = self._still_waiting(ticket)
                out.to(ticket.channel, ticket.chat_id, Outgoing(ticket.chat_id, text))
        for returned in self.handoff.due_returns(now):
            ticket = returned.ticket
            volunteer = self.handoff.get_volunteer(returned.volunteer_id)
            if volunteer is not None:
                text = self.texts.text("returned_silent", ticket_id=ticket.id)
                out.to(volunteer.channel, volunteer.user_id, Outgoing(volunteer.user_id, text))
            text = self.texts.text("ticket_returned", ticket.lang)
            out.to(ticket.channel, ticket.chat_id, Outgoing(ticket.chat_id, text))
            self._edit_posts(ticket, out, key="post_moved", now=now)
            self._announce(ticket, "notify_returned", out, now=now)
        for expired in self.handoff.expire(now):
            ticket = expired.ticket
            if expired.was == TicketStatus.WAITING:
                text = self.texts.text("ticket_expired", ticket.lang)
                out.to(ticket.channel, ticket.chat_id, Outgoing(ticket.chat_id, text))
            else:
                self._tell_holder_closed(ticket, out)
            self._edit_posts(ticket, out, now=now)
        return self.deliver(out.later)

    # -- after sending (the outbox sender's AfterSend hook) --------------------------------

    def wants(self, item: OutboxItem) -> bool:
        """A post with a claim button: its message id is kept, to edit it later. A
        volunteer's photo to a Zalo citizen: it may have gone in words."""
        if item.channel == _UPLOAD_CHANNEL and special(item.buttons).note is not None:
            return True
        return any(b.payload.startswith(_CLAIM_PREFIX) for b in item.buttons)

    def sent(self, item: OutboxItem, external_id: str) -> None:
        """Remember where a ticket was posted. A ticket taken or closed before its post
        went out has the post edited at once, so its button is not left to press. A
        volunteer's photo that reached the citizen in words: the volunteer is told."""
        if not external_id:
            return
        if went_in_words(external_id):
            self._tell_photo_in_words(item)
            return
        out = _Out()
        for button in item.buttons:
            parsed = parse_payload(button.payload)
            if parsed is None or parsed[0] != "claim":
                continue
            ticket_id = parsed[1]
            self.handoff.set_notified(
                ticket_id, channel=item.channel, chat_id=item.chat_id, message_id=external_id
            )
            ticket = self.handoff.get_ticket(ticket_id)
            if ticket is not None and ticket.status != TicketStatus.WAITING:
                self._edit_posts(ticket, out)
        self.deliver(out.later)

    def _tell_photo_in_words(self, item: OutboxItem) -> None:
        ticket = self.handoff.active_ticket_for_conversation(item.conversation_id)
        volunteer = self._volunteer_of(ticket) if ticket is not None else None
        if volunteer is None:
            return
        channel = _CHANNEL_NAMES.get(item.channel, item.channel)
        text = self.texts.text("media_not_forwarded", channel=channel)
        self.deliver(
            [Delivery(volunteer.channel, volunteer.user_id, (Outgoing(volunteer.user_id, text),))]
        )

    def failed(self, item: OutboxItem, error: ChannelError) -> None:
        """A message to a citizen in a handoff was refused for good: blocked (close the
        ticket, tell the volunteer) or outside Zalo's window (note it, tell them once)."""
        if isinstance(error, ChatBlocked):
            self.citizen_blocked(channel=item.channel, chat_id=item.chat_id)
            return
        if not isinstance(error, OutsideWindow):
            return
        ticket = self.handoff.active_ticket_for_conversation(item.conversation_id)
        if ticket is None or ticket.chat_id != item.chat_id:
            return
        noted = self.handoff.note_undelivered(ticket.id, error=str(error))
        volunteer = self._volunteer_of(noted) if noted is not None else None
        if noted is None or volunteer is None:
            return
        text = self.texts.text("undelivered_window", ticket_id=noted.id)
        self.deliver(
            [Delivery(volunteer.channel, volunteer.user_id, (Outgoing(volunteer.user_id, text),))]
        )

    def refresh_posts(self, ticket_id: int) -> int:
        """Edit the ticket's group posts to where it stands now, after a change made
        elsewhere (the console). The number of outbox rows queued."""
        ticket = self.handoff.get_ticket(ticket_id)
        if ticket is None:
            return 0
        out = _Out()
        self._edit_posts(ticket, out)
        return self.deliver(out.later)

    def citizen_blocked(self, *, channel: str, chat_id: str) -> int:
        """The citizen blocked the bot (or unfollowed the OA): their open ticket closes,
        its volunteer and posts are told. The number of outbox rows queued."""
        ticket = self.handoff.open_ticket_of_chat(channel=channel, chat_id=chat_id)
        if ticket is None:
            return 0
        closed = self.handoff.close_for_conversation(
            ticket.conversation_id, reason=CloseReason.BLOCKED
        )
        if closed is None:
            return 0
        out = _Out()
        volunteer = self._volunteer_of(closed)
        if volunteer is not None:
            text = self.texts.text("citizen_blocked", ticket_id=closed.id)
            out.to(volunteer.channel, volunteer.user_id, Outgoing(volunteer.user_id, text))
        self._edit_posts(closed, out)
        return self.deliver(out.later)

    # -- delivery -----------------------------------------------------------------------

    def deliver(self, deliveries: Sequence[Delivery]) -> int:
        """Queue each delivery in its chat's conversation; the number of rows queued.
        A failure is logged and the rest still go (the ticket itself is committed, and
        the re-post timer posts a waiting ticket again)."""
        queued = 0
        for delivery in deliveries:
            try:
                with self.store.conversation(
                    channel=delivery.channel, chat_id=delivery.chat_id
                ) as tx:
                    queued += len(tx.queue_outgoing(delivery.messages))
            except Exception:
                log.exception(
                    "handoff: delivery to %s:%s failed", delivery.channel, delivery.chat_id
                )
        return queued

    # -- helpers ------------------------------------------------------------------------

    def _rating(self, tx: ConversationTx, incoming: Incoming, lang: str) -> DeskTurn | None:
        parsed = parse_payload(incoming.payload or "")
        if parsed is not None and parsed[0] == "rate" and parsed[2] is not None:
            ticket_id, rating = parsed[1], parsed[2]
        else:
            typed = incoming.text.strip()
            if incoming.payload or typed not in _RATINGS:
                return None
            pending = self.handoff.rating_pending(tx.conversation_id, tx=tx)
            if pending is None:
                return None
            ticket_id, rating = pending.id, int(typed)
        ticket = self.handoff.get_ticket(ticket_id, tx=tx)
        if ticket is None or ticket.conversation_id != tx.conversation_id:
            return None  # someone else's button: let the engine call it stale
        result = self.handoff.rate(ticket_id, rating, tx=tx)
        if not result.ok or result.ticket is None:
            return DeskTurn(to_citizen=(Outgoing(tx.chat_id, self._refusal(result, lang)),))
        out = _Out()
        self._edit_posts(result.ticket, out)
        thanks = Outgoing(tx.chat_id, self.texts.text("thanks_rating", lang))
        return DeskTurn(to_citizen=(thanks, *self._resume(tx)), later=tuple(out.later))

    def _resume(self, tx: ConversationTx) -> tuple[Outgoing, ...]:
        """The step the citizen was at, asked again (or the menu): the bot takes over
        where the volunteer came in. The session it leaves is saved, so a typed number
        answers these buttons."""
        if self.content is None:
            log.warning("handoff: no content attached to the desk; the bot cannot resume")
            return ()
        turn = prompt(self.content(), tx.load_session())
        tx.save_session(turn.session)
        tx.record_events(turn.events)
        out = []
        for event in turn.events:
            rendered = outgoing_text(event)
            if rendered is not None:
                out.append(Outgoing(tx.chat_id, rendered[0], rendered[1]))
        return tuple(out)

    def _volunteer_action(self, incoming: Incoming, name: str, out: _Out) -> str:
        texts, handoff = self.texts, self.handoff
        channel, user_id = incoming.channel, incoming.user_id or incoming.chat_id
        command, argument = _command(incoming.text)
        if command == "join":
            redeemed = handoff.redeem_invite(
                argument, channel=channel, user_id=user_id, name=name or user_id
            )
            team = redeemed.team.name if redeemed.team else ""
            who = redeemed.volunteer.name if redeemed.volunteer else ""
            return texts.text(redeemed.text_key, name=who, team=team)
        volunteer = handoff.find_volunteer(channel=channel, user_id=user_id)
        if volunteer is None:
            return texts.text("not_volunteer")
        if volunteer.disabled:
            return texts.text("volunteer_disabled")
        if command in ("on", "off"):
            handoff.set_available(volunteer.id, command == "on")
            return texts.text("on_duty" if command == "on" else "off_duty")
        if command == "done":
            result = self._close(None, volunteer, CloseReason.DONE, out)
            if result.ok and result.ticket is not None:
                return texts.text("done_ok", ticket_id=result.ticket.id)
            return self._refusal(result)
        if command == "transfer":
            result = self._transfer(None, volunteer, argument, out)
            if result.ok and result.ticket is not None:
                return texts.text("transfer_ok", ticket_id=result.ticket.id)
            return self._refusal(result)
        if command == "note":
            result = handoff.add_note(None, volunteer_id=volunteer.id, text=argument)
            return texts.text("note_ok") if result.ok else self._refusal(result)
        if command == "visit":
            result = self._visit(None, volunteer, argument, out)
            if result.ok and result.ticket is not None:
                return texts.text("visit_ok", ticket_id=result.ticket.id)
            return self._refusal(result)
        held = handoff.touch_volunteer(volunteer.id)
        if held is None:
            return texts.text("no_ticket_claimed")
        body = f"🙋 {volunteer.name}: {_relay_body(incoming)}"
        media = incoming.media
        note = texts.text("media_not_shown", held.lang, name=volunteer.name)
        mark = _media_mark(media, source=incoming.channel, target=held.channel, note=note)
        if media is not None and media.kind is not MediaKind.LOCATION and not mark:
            # The citizen's messenger cannot be sent this file: say so to both.
            out.to(held.channel, held.chat_id, Outgoing(held.chat_id, f"{body}\n{note}"))
            channel_name = _CHANNEL_NAMES.get(held.channel, held.channel)
            return texts.text("media_not_forwarded", channel=channel_name)
        out.to(held.channel, held.chat_id, Outgoing(held.chat_id, body, mark))
        return ""

    def _close(
        self, ticket_id: int | None, volunteer: Volunteer, reason: CloseReason, out: _Out
    ) -> TicketResult:
        result = self.handoff.close(ticket_id, volunteer_id=volunteer.id, reason=reason)
        ticket = result.ticket
        if not result.ok or ticket is None:
            return result
        holder = result.holder
        if holder is not None:
            text = self.texts.text("volunteer_left_rate", ticket.lang, name=holder.name)
            out.to(
                ticket.channel,
                ticket.chat_id,
                Outgoing(ticket.chat_id, text, rating_buttons(ticket.id)),
            )
            if holder.id != volunteer.id:
                self._tell_holder_closed(ticket, out)  # a coordinator closed it
        else:
            text = self.texts.text("ticket_closed_by_desk", ticket.lang)
            out.to(ticket.channel, ticket.chat_id, Outgoing(ticket.chat_id, text))
        self._edit_posts(ticket, out)
        return result

    def _transfer(
        self, ticket_id: int | None, volunteer: Volunteer, note: str, out: _Out
    ) -> TicketResult:
        result = self.handoff.transfer(ticket_id, volunteer_id=volunteer.id, note=note)
        ticket = result.ticket
        if not result.ok or ticket is None:
            return result
        text = self.texts.text("ticket_returned", ticket.lang)
        out.to(ticket.channel, ticket.chat_id, Outgoing(ticket.chat_id, text))
        holder = result.holder
        if holder is not None and holder.id != volunteer.id:
            told = self.texts.text("transferred_by", ticket_id=ticket.id, name=volunteer.name)
            out.to(holder.channel, holder.user_id, Outgoing(holder.user_id, told))
        self._edit_posts(ticket, out, key="post_moved")
        self._announce(ticket, "notify_returned", out)
        return result

    def _visit(
        self, ticket_id: int | None, volunteer: Volunteer, note: str, out: _Out
    ) -> TicketResult:
        result = self.handoff.request_visit(ticket_id, volunteer_id=volunteer.id, note=note)
        ticket = result.ticket
        if not result.ok or ticket is None:
            return result
        text = self.texts.text("visit_planned", ticket.lang)
        out.to(ticket.channel, ticket.chat_id, Outgoing(ticket.chat_id, text))
        post = self.texts.text(
            "notify_visit",
            ticket_id=ticket.id,
            commune=notify_values(ticket, self.texts)["commune"],
            note=note or "-",
        )
        for channel, chat_id in self._visit_chats(ticket):
            out.to(channel, chat_id, Outgoing(chat_id, post))
        return result

    def _visit_chats(self, ticket: Ticket) -> list[tuple[str, str]]:
        """Where a visit is asked: the groups of the mobile teams that serve the
        citizen's commune (or the whole province); without one, the ticket's group."""
        mobile = []
        for team in self.handoff.list_teams():
            serves = team.commune_id in (None, ticket.commune_id)
            if team.kind == TeamKind.MOBILE and serves and team.chat_channel and team.chat_id:
                mobile.append((team.chat_channel, team.chat_id))
        if mobile:
            return mobile
        where = self.handoff.group_chat(ticket, province=self.province)
        return [where] if where is not None else []

    def _still_waiting(self, ticket: Ticket) -> str:
        """To a citizen whose ticket was re-posted: still looking, keep using the bot,
        and their commune's service centre (from communes.yaml) when it is known."""
        lang = ticket.lang
        lines = [self.texts.text("still_waiting", lang)]
        communes = self.communes() if self.communes is not None else None
        unit = communes.unit(ticket.commune_id) if communes and ticket.commune_id else None
        if communes is not None and unit is not None:
            lines.append(communes.describe(unit, lang))
        else:
            lines.append(self.texts.text("centre_offer", lang))
        return "\n".join(lines)

    def _relay_prefixes(self, ticket_id: int) -> list[str]:
        """How the messages about a ticket begin in volunteers' chats and groups: the
        relayed citizen messages and the posts and briefing that quote them (each
        template up to its first placeholder after the ticket number)."""
        texts = self.texts
        found = [f"{texts.text('context_citizen', 'vi')} #{ticket_id}:"]
        number = f"#{ticket_id}"
        for key in ("notify_new_ticket", "reposted", "notify_returned", "claim_ok"):
            head = texts.text(key, ticket_id=ticket_id).split("{", 1)[0]
            # Only a head that reaches past the number names this ticket alone.
            if number in head and not head.endswith(number):
                found.append(head)
        return found

    def _announce(
        self,
        ticket: Ticket,
        key: str,
        out: _Out,
        *,
        tx: ConversationTx | None = None,
        now: datetime | None = None,
    ) -> None:
        """Post about a waiting ticket with the claim button: to the paired volunteer
        first (a new ticket), then to the team's or the province's group."""
        text = self.texts.text(key, **notify_values(ticket, self.texts, now=now))
        button = (claim_button(self.texts, ticket.id),)
        if key == "notify_new_ticket":
            preferred = self.handoff.preferred_volunteer(ticket.conversation_id, tx=tx)
            volunteer = self.handoff.get_volunteer(preferred) if preferred is not None else None
            if volunteer is not None:
                out.to(
                    volunteer.channel, volunteer.user_id, Outgoing(volunteer.user_id, text, button)
                )
        where = self.handoff.group_chat(ticket, province=self.province)
        if where is None:
            log.warning("handoff: ticket %s has no group to post to (VOLUNTEER_CHAT_ID)", ticket.id)
            return
        out.to(where[0], where[1], Outgoing(where[1], text, button))

    def _edit_posts(
        self, ticket: Ticket, out: _Out, *, key: str | None = None, now: datetime | None = None
    ) -> None:
        """Edit every post about the ticket (groups, a paired volunteer's offer) to say
        where it stands: taken by whom, moved to a newer post, closed (by whom, rating).
        The claim button goes: nothing is left to press."""
        if not ticket.notified or (key is None and ticket.status == TicketStatus.WAITING):
            return  # a waiting ticket's posts keep their claim button
        text = self._post_text(ticket, key, now or utcnow())
        for post in ticket.notified:
            if post.channel != _MEDIA_CHANNEL:
                continue  # only Telegram edits what it sent
            edit = Outgoing(post.chat_id, text, (edit_button(post.message_id),))
            out.to(post.channel, post.chat_id, edit)

    def _post_text(self, ticket: Ticket, key: str | None, now: datetime) -> str:
        texts = self.texts
        zone = self.handoff.policy.hours.zone
        at = ticket.closed_at if ticket.status == TicketStatus.CLOSED else now
        time = f"{(at or now).astimezone(zone):%H:%M %d/%m}"
        volunteer = self._volunteer_of(ticket)
        if key is None and ticket.status == TicketStatus.CLAIMED and volunteer is not None:
            key = "post_claimed"
        if key is not None:
            name = volunteer.name if volunteer is not None else ""
            return texts.text(key, ticket_id=ticket.id, name=name, time=time)
        reason = texts.close_reason(ticket.close_reason or "")
        closer = self._closer(ticket, volunteer)
        if closer is not None:
            text = texts.text(
                "post_closed_by", ticket_id=ticket.id, time=time, reason=reason, name=closer.name
            )
        else:
            text = texts.text("post_closed", ticket_id=ticket.id, time=time, reason=reason)
        if ticket.rating is not None:
            text += " " + texts.text("post_rating", rating=ticket.rating)
        return text

    def _kept_media(self, ticket: Ticket, volunteer: Volunteer) -> tuple[Outgoing, ...]:
        """The photos and voice notes the citizen sent before the claim, as themselves."""
        header = f"{self.texts.text('context_citizen', 'vi')} #{ticket.id}"
        out = []
        for line in ticket.context:
            if line.who != "citizen" or line.media_kind is None or line.media_ref is None:
                continue
            media = Media(MediaKind(line.media_kind), ref=line.media_ref)
            mark = _media_mark(media, source=ticket.channel, target=volunteer.channel)
            if mark:
                text = f"{header}: {media_note(media.kind)} {line.text}".strip()
                out.append(Outgoing(volunteer.user_id, text, mark))
        return tuple(out[-_KEPT_MEDIA:])

    def _tell_holder_closed(self, ticket: Ticket, out: _Out) -> None:
        volunteer = self._volunteer_of(ticket)
        if volunteer is None:
            return
        reason = self.texts.close_reason(ticket.close_reason or "")
        text = self.texts.text("closed_post", ticket_id=ticket.id, reason=reason)
        out.to(volunteer.channel, volunteer.user_id, Outgoing(volunteer.user_id, text))

    def _closer(self, ticket: Ticket, holder: Volunteer | None) -> Volunteer | None:
        """Who closed the ticket: a coordinator's close is noted on it; else its holder,
        when they closed it (/done)."""
        noted = [
            n.volunteer_id
            for n in self.handoff.notes(ticket.id)
            if n.kind == NoteKind.CLOSED and n.volunteer_id is not None
        ]
        if noted:
            return self.handoff.get_volunteer(noted[-1])
        return holder if ticket.close_reason == CloseReason.DONE else None

    def _volunteer_of(self, ticket: Ticket) -> Volunteer | None:
        if ticket.volunteer_id is None:
            return None
        return self.handoff.get_volunteer(ticket.volunteer_id)

    def _refusal(self, result: TicketResult, lang: str = "vi") -> str:
        if result.outcome == Outcome.OK:
            return ""
        return self.texts.refusal(result, lang) or ""


def _command(text: str) -> tuple[str, str]:
    """("done", "") for "/done", ("note", "text") for "/note text"; ("", "") otherwise."""
    if not text.startswith("/"):
        return "", ""
    head, _, rest = text[1:].strip().partition(" ")
    return head.partition("@")[0].lower(), rest.strip()


def _relay_body(incoming: Incoming) -> str:
    """The text of a relayed message; an attachment is named in brackets ("[ảnh]"),
    which is also what the masked transcript keeps."""
    text = incoming.text.strip()
    if incoming.media is None:
        return text
    return f"{media_note(incoming.media.kind)} {text}".strip()


def _media_mark(
    media: Media | None, *, source: str, target: str, note: str = ""
) -> tuple[Button, ...]:
    """The marker that sends `media` itself to a `target` chat, when it can go: to
    Telegram, a Telegram file_id (the same bot's) or a fetchable URL (Zalo's); to a Zalo
    OA, a Telegram photo (uploaded at send time; `note` is said if it cannot be)."""
    if media is None or media.ref is None or media.kind is MediaKind.LOCATION:
        return ()
    if target == _UPLOAD_CHANNEL and source == _MEDIA_CHANNEL and media.kind is MediaKind.PHOTO:
        return (media_button(media.kind, media.ref), note_button(note))
    if target != _MEDIA_CHANNEL or not (source == _MEDIA_CHANNEL or is_url(media.ref)):
        return ()
    return (media_button(media.kind, media.ref),)
