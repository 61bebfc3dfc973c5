"""The handoff at work: what citizens, volunteers and volunteer groups are sent.

`bot/handoff.py` holds the rules (tickets, claims, timers); this module turns its results
into outbox rows. A citizen's side runs inside the citizen's conversation transaction
(`citizen_before_engine`, `citizen_after_engine`); messages to other chats (the group,
the volunteer's private chat) come back as `Delivery` values that the caller queues with
`deliver()` after that transaction commits, each in the transaction of its own chat.

    stuck → open ticket → group post with "Nhận hỗ trợ" (paired volunteer first)
    claim → group post marked, context to the volunteer, "joined" to the citizen
    claimed: citizen ⇄ volunteer relayed, the engine is not run
    /done → rating buttons to the citizen → rating kept, thanks
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from bot.flow.events import Event, ForgetRequested, HandoffRequested, Said
from bot.handoff import (
    Handoff,
    HandoffTexts,
    Outcome,
    TicketResult,
    claim_button,
    notify_values,
    parse_payload,
    rating_buttons,
)
from bot.messages import Incoming, MediaKind, Outgoing
from bot.redact import redact
from bot.store import ConversationTx, Store, Ticket, TicketStatus, Volunteer
from bot.store.types import utcnow

log = logging.getLogger(__name__)

FORGET_PAYLOAD = "g:forget"
_RATINGS = frozenset("12345")
# What a volunteer reads in place of an attachment the bot cannot forward as it is.
_MEDIA_NOTES = {
    MediaKind.PHOTO: "[ảnh]",
    MediaKind.VOICE: "[tin nhắn thoại]",
    MediaKind.AUDIO: "[âm thanh]",
    MediaKind.VIDEO: "[video]",
    MediaKind.STICKER: "[nhãn dán]",
    MediaKind.DOCUMENT: "[tệp]",
    MediaKind.LOCATION: "[vị trí]",
    MediaKind.OTHER: "[tệp đính kèm]",
}


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
    ) -> None:
        self.store = store
        self.handoff = handoff
        self.texts = texts
        self.province = province

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
        ticket = self.handoff.touch_citizen(tx.conversation_id, tx=tx)
        if ticket is None or ticket.status != TicketStatus.CLAIMED:
            return None
        volunteer = self._volunteer_of(ticket)
        if volunteer is None:
            return None
        out = _Out()
        label = self.texts.text("context_citizen", "vi")
        body = redact(_relay_body(incoming))
        out.to(
            volunteer.channel,
            volunteer.user_id,
            Outgoing(volunteer.user_id, f"{label} #{ticket.id}: {body}"),
        )
        return DeskTurn(later=tuple(out.later))

    def citizen_after_engine(
        self,
        tx: ConversationTx,
        events: tuple[Event, ...],
        *,
        lang: str,
        started_text: str,
        now: datetime | None = None,
    ) -> tuple[tuple[Event, ...], tuple[Delivery, ...]]:
        """Open a ticket for a HandoffRequested (the citizen is told the wait instead of
        the engine's `started_text`); close it when the citizen asked to be forgotten."""
        now = now or utcnow()
        out = _Out()
        if any(isinstance(e, ForgetRequested) for e in events):
            closed = self.handoff.forget_conversation(tx.conversation_id, now=now, tx=tx)
            if closed is not None:
                self._tell_holder_closed(closed, out)
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

    def is_volunteer(self, incoming: Incoming) -> bool:
        """A private message that is a volunteer action: /join, or from a volunteer."""
        if incoming.user_id is None or incoming.chat_id != incoming.user_id:
            return False
        if _command(incoming.text)[0] == "join":
            return True
        return (
            self.handoff.find_volunteer(channel=incoming.channel, user_id=incoming.user_id)
            is not None
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
        values = notify_values(ticket, self.texts)
        out.to(
            volunteer.channel,
            volunteer.user_id,
            Outgoing(volunteer.user_id, self.texts.text("claim_ok", **values)),
        )
        joined = self.texts.text("volunteer_joined", ticket.lang, name=volunteer.name)
        out.to(ticket.channel, ticket.chat_id, Outgoing(ticket.chat_id, joined))
        queued = self.deliver(out.later)
        marked = self.texts.text("claimed_by", name=volunteer.name)
        return ClaimAnswer(marked, marked=marked, queued=queued)

    # -- timers -------------------------------------------------------------------------

    def run_timers(self, now: datetime | None = None) -> int:
        """Re-post long waits to the province, return silent claims to the queue, close
        tickets waiting or idle too long. The number of outbox rows queued."""
        now = now or utcnow()
        out = _Out()
        for ticket in self.handoff.due_reposts(now):
            self._announce(ticket, "reposted", out, now=now)
        for returned in self.handoff.due_returns(now):
            ticket = returned.ticket
            volunteer = self.handoff.get_volunteer(returned.volunteer_id)
            if volunteer is not None:
                text = self.texts.text("returned_silent", ticket_id=ticket.id)
                out.to(volunteer.channel, volunteer.user_id, Outgoing(volunteer.user_id, text))
            text = self.texts.text("ticket_returned", ticket.lang)
            out.to(ticket.channel, ticket.chat_id, Outgoing(ticket.chat_id, text))
            self._announce(ticket, "notify_returned", out, now=now)
        for expired in self.handoff.expire(now):
            ticket = expired.ticket
            if expired.was == TicketStatus.WAITING:
                text = self.texts.text("ticket_expired", ticket.lang)
                out.to(ticket.channel, ticket.chat_id, Outgoing(ticket.chat_id, text))
            else:
                self._tell_holder_closed(ticket, out)
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
        text = self.texts.text("thanks_rating", lang) if result.ok else self._refusal(result, lang)
        return DeskTurn(to_citizen=(Outgoing(tx.chat_id, text),))

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
            result = handoff.close(None, volunteer_id=volunteer.id)
            if result.ok and result.ticket is not None:
                ticket = result.ticket
                text = texts.text("volunteer_left_rate", ticket.lang, name=volunteer.name)
                out.to(
                    ticket.channel,
                    ticket.chat_id,
                    Outgoing(ticket.chat_id, text, rating_buttons(ticket.id)),
                )
                return texts.text("done_ok", ticket_id=ticket.id)
            return self._refusal(result)
        if command == "transfer":
            result = handoff.transfer(None, volunteer_id=volunteer.id, note=argument)
            if result.ok and result.ticket is not None:
                ticket = result.ticket
                text = texts.text("ticket_returned", ticket.lang)
                out.to(ticket.channel, ticket.chat_id, Outgoing(ticket.chat_id, text))
                self._announce(ticket, "notify_returned", out)
                return texts.text("transfer_ok", ticket_id=ticket.id)
            return self._refusal(result)
        if command == "note":
            result = handoff.add_note(None, volunteer_id=volunteer.id, text=argument)
            return texts.text("note_ok") if result.ok else self._refusal(result)
        if command == "visit":
            result = handoff.request_visit(None, volunteer_id=volunteer.id, note=argument)
            if result.ok and result.ticket is not None:
                ticket = result.ticket
                text = texts.text("visit_planned", ticket.lang)
                out.to(ticket.channel, ticket.chat_id, Outgoing(ticket.chat_id, text))
                where = self.handoff.group_chat(ticket, province=self.province)
                if where is not None:
                    post = texts.text(
                        "notify_visit",
                        ticket_id=ticket.id,
                        commune=notify_values(ticket, texts)["commune"],
                        note=argument or "-",
                    )
                    out.to(where[0], where[1], Outgoing(where[1], post))
                return texts.text("visit_ok", ticket_id=ticket.id)
            return self._refusal(result)
        held = handoff.touch_volunteer(volunteer.id)
        if held is None:
            return texts.text("no_ticket_claimed")
        body = f"🙋 {volunteer.name}: {_relay_body(incoming)}"
        out.to(held.channel, held.chat_id, Outgoing(held.chat_id, body))
        return ""

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

    def _tell_holder_closed(self, ticket: Ticket, out: _Out) -> None:
        volunteer = self._volunteer_of(ticket)
        if volunteer is None:
            return
        reason = self.texts.close_reason(ticket.close_reason or "")
        text = self.texts.text("closed_post", ticket_id=ticket.id, reason=reason)
        out.to(volunteer.channel, volunteer.user_id, Outgoing(volunteer.user_id, text))

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
    """The text of a relayed message; an attachment becomes a note in brackets."""
    text = incoming.text.strip()
    if incoming.media is None:
        return text
    note = _MEDIA_NOTES.get(incoming.media.kind, _MEDIA_NOTES[MediaKind.OTHER])
    return f"{note} {text}".strip()
