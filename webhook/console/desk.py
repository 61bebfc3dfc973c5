"""What a console user may see and do, through the same handoff operations as a
Telegram volunteer (bot/handoff.py for the rules, bot/helpdesk.py for the outbox):

    claim   HelpDesk.claim, as a pressed "Nhận hỗ trợ" button (Handoff.claim: of two
            claims at once, one wins) → "volunteer_joined" to the citizen, posts edited
    reply   the text a volunteer types in Telegram: "🙋 Name: …" to the citizen
    note    Handoff.add_note
    transfer  HelpDesk.transfer_ticket, the holder's /transfer (or a coordinator's):
            back to the queue, announced again, with a note; the holder told
    close   HelpDesk.close_ticket, the holder's /done (or a coordinator's close, also of
            a waiting ticket) → "volunteer_left_rate" and 1-5 buttons to the citizen (or
            "ticket_closed_by_desk" when nobody was helping), the group posts edited
    visit   HelpDesk.request_visit, the holder's /visit
    on/off  Handoff.set_available, the volunteer's /on and /off

Who sees what: a coordinator, every ticket; a volunteer, the tickets they hold or held,
and the waiting tickets they may claim (their team's, the province's, re-posted ones,
and those of citizens they helped before). Anything else does not exist for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from bot.console_accounts import CONSOLE_CHANNEL, ConsoleAccounts, ConsoleUser
from bot.handoff import Handoff, Outcome, TicketResult
from bot.helpdesk import Delivery, HelpDesk
from bot.messages import Outgoing
from bot.store import CloseReason, MessageRecord, OutboxStatus, Ticket, TicketStatus, Volunteer

# Longer replies are refused rather than cut: the volunteer sees it and splits them.
MAX_REPLY_CHARS = 4000
# Tickets read for one queue page; a pilot province has far fewer open at once.
_QUEUE_LIMIT = 500


@dataclass(frozen=True)
class Done:
    """The result of an action, and the messages it queued."""

    result: TicketResult
    queued: int = 0


class ConsoleDesk:
    """The console's view of the handoff for one signed-in user."""

    def __init__(self, desk: HelpDesk, accounts: ConsoleAccounts, user: ConsoleUser) -> None:
        self.desk = desk
        self.handoff: Handoff = desk.handoff
        self.accounts = accounts
        self.user = user
        self.me: Volunteer = user.volunteer
        self._paired: set[int] | None = None

    # Seeing

    def visible(self, ticket: Ticket) -> bool:
        if self.me.is_coordinator or ticket.volunteer_id == self.me.id:
            return True
        if ticket.status != TicketStatus.WAITING:
            return False
        if ticket.team_id is None or ticket.team_id == self.me.team_id:
            return True
        if ticket.reposted_at is not None:
            return True
        return ticket.conversation_id in self.paired

    def lost_race(self, ticket_id: int) -> bool:
        """A ticket this volunteer could claim a moment ago, now taken or closed: the
        loser of a race for it is told so rather than shown a missing page. (What
        waited in their queue is no secret to them.)"""
        ticket = self.handoff.get_ticket(ticket_id)
        if ticket is None or ticket.status == TicketStatus.WAITING:
            return False
        # As it stood while it waited: was it in their queue?
        return self.visible(replace(ticket, status=TicketStatus.WAITING, volunteer_id=None))

    @property
    def paired(self) -> set[int]:
        if self._paired is None:
            self._paired = self.accounts.paired_conversations(self.me.id)
        return self._paired

    def ticket(self, ticket_id: int) -> Ticket | None:
        """The ticket, or None when it does not exist or is not theirs to see."""
        ticket = self.handoff.get_ticket(ticket_id)
        return ticket if ticket is not None and self.visible(ticket) else None

    def queue(
        self, *, statuses: Sequence[TicketStatus] = (), team: int | str | None = None
    ) -> list[Ticket]:
        """Visible tickets: waiting ones first, longest wait on top; then claimed, then
        closed, newest first. `team`: an id, "none" (the province's), or None (all)."""
        statuses = tuple(statuses) or (TicketStatus.WAITING, TicketStatus.CLAIMED)
        if not self.me.is_coordinator:
            team = None
        team_id = team if isinstance(team, int) else None
        found = self.handoff.list_tickets(statuses=statuses, team_id=team_id, limit=_QUEUE_LIMIT)
        if team == "none":
            found = [t for t in found if t.team_id is None]
        shown = [t for t in found if self.visible(t)]
        order = {TicketStatus.WAITING: 0, TicketStatus.CLAIMED: 1, TicketStatus.CLOSED: 2}
        waiting = sorted((t for t in shown if t.status == TicketStatus.WAITING), key=_waited)
        rest = [t for t in shown if t.status != TicketStatus.WAITING]
        rest.sort(key=lambda t: (order[t.status], -t.id))
        return waiting + rest

    def messages(self, ticket: Ticket) -> list[MessageRecord]:
        """The conversation since the ticket opened (until it closed), redacted."""
        return self.accounts.store.ticket_messages(
            ticket.conversation_id, since=ticket.created_at, until=ticket.closed_at
        )

    def inbox(self) -> list[str]:
        """A console-only account has no messenger: what the bot relayed to them (the
        citizen's messages, redacted) is shown once on the page and marked delivered."""
        if self.me.channel != CONSOLE_CHANNEL:
            return []
        store = self.desk.store
        items = store.outbox_after(channel=CONSOLE_CHANNEL, chat_id=self.me.user_id)
        fresh = [i for i in items if i.status == OutboxStatus.PENDING]
        for item in fresh:
            store.mark_sent(item.id)
        return [i.text for i in fresh]

    # Doing

    def claim(self, ticket_id: int) -> Done:
        """The "Nhận hỗ trợ" button, pressed from the console: HelpDesk.claim, as for a
        press in Telegram (the citizen told, the group posts edited, "claim_ok" and the
        kept photos to a Telegram volunteer's own chat; a console-only account reads
        them on the ticket's page)."""
        answer = self.desk.claim(ticket_id, channel=self.me.channel, user_id=self.me.user_id)
        ticket = self.handoff.get_ticket(ticket_id)
        if answer.marked is not None:
            return Done(TicketResult(Outcome.OK, ticket), answer.queued)
        return Done(self._claim_refused(ticket), answer.queued)

    def _claim_refused(self, ticket: Ticket | None) -> TicketResult:
        """Why a claim was refused, read from where the ticket stands now."""
        if ticket is None:
            return TicketResult(Outcome.NOT_FOUND)
        if ticket.status == TicketStatus.CLOSED:
            return TicketResult(Outcome.CLOSED, ticket)
        if ticket.status == TicketStatus.CLAIMED:
            mine = ticket.volunteer_id == self.me.id
            return TicketResult(Outcome.ALREADY_YOURS if mine else Outcome.TAKEN, ticket)
        other = self.handoff.claimed_ticket_of_volunteer(self.me.id)
        if other is not None:
            return TicketResult(Outcome.BUSY, ticket, other=other)
        return TicketResult(Outcome.OTHER_TEAM, ticket)

    def reply(self, ticket_id: int, text: str) -> Done:
        """Send `text` to the citizen of the ticket the user holds."""
        text = text.strip()
        ticket = self.handoff.get_ticket(ticket_id)
        refused = self._not_holding(ticket)
        if refused is not None:
            return Done(refused)
        if not text or len(text) > MAX_REPLY_CHARS:
            return Done(TicketResult(Outcome.EMPTY, ticket))
        held = self.handoff.touch_volunteer(self.me.id)
        if held is None or held.id != ticket_id:
            return Done(TicketResult(Outcome.NOT_YOURS, held))
        body = f"🙋 {self.me.name}: {text}"  # as a reply typed in Telegram reads
        queued = self.desk.deliver([_to_chat(held.channel, held.chat_id, body)])
        return Done(TicketResult(Outcome.OK, held), queued)

    def note(self, ticket_id: int, text: str) -> Done:
        return Done(self.handoff.add_note(ticket_id, volunteer_id=self.me.id, text=text))

    def close(self, ticket_id: int) -> Done:
        """Close the ticket the user holds (their /done), or, for a coordinator, any
        open ticket: a claimed one as its holder's /done would (the citizen asked to
        rate, the holder told), a waiting one as handed on elsewhere (the citizen told
        it is closed). The group posts are edited either way."""
        ticket = self.handoff.get_ticket(ticket_id)
        if ticket is None:
            return Done(TicketResult(Outcome.NOT_FOUND))
        if not self.me.is_coordinator:
            refused = self._not_holding(ticket)
            if refused is not None:
                return Done(refused)
        reason = CloseReason.DONE
        if ticket.status == TicketStatus.WAITING:
            reason = CloseReason.TRANSFERRED
        result, queued = self.desk.close_ticket(ticket_id, self.me, reason=reason)
        return Done(result, queued)

    def transfer(self, ticket_id: int, note: str) -> Done:
        """Hand a claimed ticket back to the queue: the holder's /transfer, or a
        coordinator's (the citizen told, the holder told, the old posts edited, the
        ticket announced again, the note kept for the next volunteer)."""
        ticket = self.handoff.get_ticket(ticket_id)
        if ticket is None:
            return Done(TicketResult(Outcome.NOT_FOUND))
        if not self.me.is_coordinator:
            refused = self._not_holding(ticket)
            if refused is not None:
                return Done(refused)
        result, queued = self.desk.transfer_ticket(ticket_id, self.me, note=" ".join(note.split()))
        return Done(result, queued)

    def visit(self, ticket_id: int, note: str) -> Done:
        """Ask the team for a visit in person for the ticket the user holds (/visit)."""
        ticket = self.handoff.get_ticket(ticket_id)
        refused = self._not_holding(ticket) if not self.me.is_coordinator else None
        if ticket is None or refused is not None:
            return Done(refused or TicketResult(Outcome.NOT_FOUND))
        result, queued = self.desk.request_visit(ticket_id, self.me, note=" ".join(note.split()))
        return Done(result, queued)

    def set_available(self, available: bool) -> Volunteer | None:
        """The console's /on and /off."""
        return self.handoff.set_available(self.me.id, available)

    def _not_holding(self, ticket: Ticket | None) -> TicketResult | None:
        if ticket is None:
            return TicketResult(Outcome.NOT_FOUND)
        if ticket.status == TicketStatus.CLOSED:
            return TicketResult(Outcome.CLOSED, ticket)
        if ticket.status != TicketStatus.CLAIMED or ticket.volunteer_id != self.me.id:
            return TicketResult(Outcome.NOT_YOURS, ticket)
        return None


def _to_chat(channel: str, chat_id: str, text: str) -> Delivery:
    return Delivery(channel, chat_id, (Outgoing(chat_id, text),))


def _waited(ticket: Ticket) -> datetime:
    return ticket.waiting_since
