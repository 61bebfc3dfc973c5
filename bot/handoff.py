"""Handing a citizen to a youth volunteer ("1 youth with 1 citizen"): the rules.

Channel-neutral: no messenger, no HTTP. The caller (conversation service, webhook,
console) turns results into messages with `HandoffTexts` (knowledge/handoff.yaml).

    Handoff(HandoffStore(store), policy=HandoffPolicy())
      tickets     open_ticket, claim, close, transfer, add_note, request_visit, rate,
                  rating_pending, active_ticket_for_conversation,
                  claimed_ticket_of_volunteer, touch_citizen, touch_volunteer,
                  group_chat, set_notified, close_for_conversation, forget_conversation,
                  forget_relays, open_ticket_of_chat, note_undelivered
      media       keep_media (the channel's file reference of an inbound attachment),
                  add_to_context (what the citizen sends while waiting), media_note
      timers      due_reposts, due_returns, expire (from stored times; nothing sleeps)
      people      create_team, find_team, create_invite, redeem_invite, set_available,
                  disable, move, list_volunteers, set_password, verify_password,
                  preferred_volunteer
      figures     wait_estimate, is_volunteer_time, next_volunteer_time

A ticket is `waiting` → `claimed` (one volunteer) → `closed`; transfer and silence put
it back to `waiting`. A conversation has at most one open ticket; a volunteer holds at
most one claimed ticket, so what they type in their chat with the bot goes to exactly
one citizen (both enforced by unique indexes, so races have one winner).

Who may do what: a volunteer claims their team's tickets, tickets with no team (the whole
province), tickets re-posted to the province, and tickets of citizens they helped before
(the pairing); a coordinator claims, closes and transfers any ticket. Only the holder (or
a coordinator) closes, transfers, notes or asks a visit; refusals come back as an
`Outcome`, never as an exception.

Methods that change something take `tx`: pass the `ConversationTx` of the citizen's
conversation to commit with its outbox rows (required on SQLite inside
`Store.conversation()`, which is the one writer); without it they use a transaction
of their own.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import secrets
import statistics
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from enum import StrEnum
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field

from bot.errors import ConfigError
from bot.flow.loader import load_yaml_model
from bot.flow.model import LocalText, _Model, pick
from bot.messages import Button, Media, MediaKind
from bot.phrases import fill
from bot.store import (
    CloseReason,
    ContextLine,
    ConversationTx,
    HandoffStore,
    HandoffTx,
    Invite,
    NewTicket,
    Note,
    NoteKind,
    NotifiedPost,
    Role,
    Team,
    TeamKind,
    Ticket,
    TicketStatus,
    Volunteer,
)
from bot.store.types import utcnow
from bot.text import nfc

__all__ = [
    "BUTTON_KEYS",
    "HANDOFF_FILE",
    "MIN_PASSWORD_CHARS",
    "TEXT_KEYS",
    "DisableResult",
    "Expired",
    "Handoff",
    "HandoffPolicy",
    "HandoffTexts",
    "Outcome",
    "RedeemOutcome",
    "RedeemResult",
    "Returned",
    "TicketResult",
    "VolunteerHours",
    "check_password",
    "claim_button",
    "claim_payload",
    "context_text",
    "hash_password",
    "load_handoff_texts",
    "media_note",
    "notify_values",
    "parse_payload",
    "rate_payload",
    "rating_buttons",
    "refusal_key",
]

HANDOFF_FILE = "handoff.yaml"
TEXT_KEYS = (
    "ticket_waiting",
    "ticket_already_open",
    "outside_hours",
    "volunteer_joined",
    "volunteer_left_rate",
    "rating_invalid",
    "thanks_rating",
    "ticket_returned",
    "ticket_expired",
    "ticket_cancelled",
    "visit_planned",
    "notify_new_ticket",
    "reposted",
    "notify_returned",
    "claimed_by",
    "closed_post",
    "notify_visit",
    "claim_ok",
    "already_taken",
    "already_yours",
    "busy",
    "other_team",
    "ticket_closed",
    "ticket_not_found",
    "not_your_ticket",
    "not_claimed",
    "no_ticket_claimed",
    "not_volunteer",
    "volunteer_disabled",
    "invite_ok",
    "invite_used",
    "invite_expired",
    "invite_unknown",
    "on_duty",
    "off_duty",
    "done_ok",
    "transfer_ok",
    "note_ok",
    "note_empty",
    "visit_ok",
    "returned_silent",
    "rating_out_of_range",
    "already_rated",
    "not_closed",
    "context_citizen",
    "context_bot",
    "context_volunteer",
    "context_empty",
    "where_none",
    "commune_unknown",
    "post_claimed",
    "post_moved",
    "post_closed",
    "post_closed_by",
    "post_rating",
    "media_not_shown",
    "media_not_forwarded",
    "undelivered_window",
    "citizen_blocked",
    "ticket_closed_by_desk",
    "still_waiting",
    "centre_offer",
    "transferred_by",
    "relay_forgotten",
)
BUTTON_KEYS = ("claim",)
MIN_PASSWORD_CHARS = 8

# Button payloads; other payload kinds (c:, g:, f:, a:, u:) belong to the engine.
_CLAIM = "h:claim:"
_RATE = "h:rate:"
# Invite codes: no 0/O, 1/I/L, easy to read aloud and type on a phone.
_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
_CODE_LENGTH = 10
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P, _SCRYPT_LEN = 2**14, 8, 1, 32
# Hashed when a login names nobody, so a wrong name takes as long as a wrong password.
_DUMMY_HASH = (
    "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
)
_WAIT_SAMPLE = 20
_WAIT_WINDOW = timedelta(days=30)
# Lines a ticket's context keeps when the citizen writes while waiting.
_CONTEXT_KEEP = 30
# What a volunteer (and the masked transcript) reads in place of an attachment.
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


def media_note(kind: MediaKind | str | None) -> str:
    """ "[ảnh]" for a photo: an attachment in words, for volunteers and transcripts."""
    try:
        return _MEDIA_NOTES[MediaKind(kind or "other")]
    except ValueError:
        return _MEDIA_NOTES[MediaKind.OTHER]


# ---------------------------------------------------------------- results


class Outcome(StrEnum):
    """What became of a request about a ticket; each refusal has a text (`refusal_key`)."""

    OK = "ok"
    NOT_FOUND = "not_found"  # no such ticket
    NO_TICKET = "no_ticket"  # no ticket given, and the volunteer holds none
    CLOSED = "closed"  # the ticket is closed
    TAKEN = "taken"  # another volunteer holds it (`holder`)
    ALREADY_YOURS = "already_yours"
    BUSY = "busy"  # the volunteer holds another ticket (`other`)
    OTHER_TEAM = "other_team"
    NOT_YOURS = "not_yours"  # only the holder or a coordinator may do this
    NOT_CLAIMED = "not_claimed"  # transfer of a waiting ticket
    UNKNOWN_VOLUNTEER = "unknown_volunteer"
    DISABLED = "disabled"  # the volunteer is disabled
    EMPTY = "empty"  # a note without text
    BAD_RATING = "bad_rating"  # not 1 to 5
    ALREADY_RATED = "already_rated"
    NOT_CLOSED = "not_closed"  # rating a ticket still open


_REFUSAL_KEYS = {
    Outcome.NOT_FOUND: "ticket_not_found",
    Outcome.NO_TICKET: "no_ticket_claimed",
    Outcome.CLOSED: "ticket_closed",
    Outcome.TAKEN: "already_taken",
    Outcome.ALREADY_YOURS: "already_yours",
    Outcome.BUSY: "busy",
    Outcome.OTHER_TEAM: "other_team",
    Outcome.NOT_YOURS: "not_your_ticket",
    Outcome.NOT_CLAIMED: "not_claimed",
    Outcome.UNKNOWN_VOLUNTEER: "not_volunteer",
    Outcome.DISABLED: "volunteer_disabled",
    Outcome.EMPTY: "note_empty",
    Outcome.BAD_RATING: "rating_out_of_range",
    Outcome.ALREADY_RATED: "already_rated",
    Outcome.NOT_CLOSED: "not_closed",
}


def refusal_key(outcome: Outcome) -> str | None:
    """The handoff.yaml key that explains a refusal; None for `OK`."""
    return _REFUSAL_KEYS.get(outcome)


@dataclass(frozen=True)
class TicketResult:
    """The ticket as it is after the request (None when not found)."""

    outcome: Outcome
    ticket: Ticket | None = None
    holder: Volunteer | None = None  # TAKEN: who has it; OK close/transfer: who helped
    other: Ticket | None = None  # BUSY: the ticket the volunteer holds
    note: Note | None = None  # the note written, if any

    @property
    def ok(self) -> bool:
        return self.outcome == Outcome.OK


class RedeemOutcome(StrEnum):
    OK = "ok"
    USED = "used"
    EXPIRED = "expired"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class RedeemResult:
    outcome: RedeemOutcome
    volunteer: Volunteer | None = None
    team: Team | None = None
    rejoined: bool = False  # the account was a volunteer already: moved, renamed, enabled

    @property
    def ok(self) -> bool:
        return self.outcome == RedeemOutcome.OK

    @property
    def text_key(self) -> str:
        return f"invite_{self.outcome.value}"


@dataclass(frozen=True)
class Returned:
    """A claimed ticket put back to waiting because its volunteer went silent."""

    ticket: Ticket
    volunteer_id: int


@dataclass(frozen=True)
class Expired:
    """A ticket the bot closed: `expired` when it waited too long, `abandoned` when a
    claimed conversation went quiet on both sides. `was` is its status before."""

    ticket: Ticket
    was: TicketStatus


@dataclass(frozen=True)
class DisableResult:
    volunteer: Volunteer
    returned: Ticket | None  # the ticket they held, now waiting again


# ---------------------------------------------------------------- policy


def _zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        # Vietnam has kept UTC+7 without daylight saving since 1975: a host without
        # the tz database still gets it right.
        if name == "Asia/Ho_Chi_Minh":
            return timezone(timedelta(hours=7), "ICT")
        raise ConfigError(f"volunteer time zone {name!r} is not known") from exc


@dataclass(frozen=True)
class VolunteerHours:
    """When volunteers are on duty: every day from `start` to `end` o'clock, local time.
    `start == end` means always; `start > end` runs past midnight (20 to 6)."""

    start: int = 7
    end: int = 21
    tz: str = "Asia/Ho_Chi_Minh"

    def __post_init__(self) -> None:
        for name, hour in (("start", self.start), ("end", self.end)):
            if not 0 <= hour <= 24:
                raise ConfigError(f"volunteer hours: {name} {hour} is not an hour (0 to 24)")
        _zone(self.tz)

    @property
    def zone(self) -> tzinfo:
        return _zone(self.tz)

    def is_open(self, now: datetime) -> bool:
        hour = now.astimezone(self.zone).hour
        start, end = self.start % 24, self.end % 24
        if start == end:
            return True
        if start < end:
            return start <= hour < end
        return hour >= start or hour < end

    def next_open(self, now: datetime) -> datetime:
        """`now` when on duty, else the next start of duty (aware, in UTC)."""
        if self.is_open(now):
            return now
        local = now.astimezone(self.zone)
        start = datetime(local.year, local.month, local.day, self.start % 24, tzinfo=self.zone)
        if start <= local:
            day = local.date() + timedelta(days=1)
            start = datetime(day.year, day.month, day.day, self.start % 24, tzinfo=self.zone)
        return start.astimezone(UTC)

    def values(self, now: datetime) -> dict[str, object]:
        """The {placeholders} of outside_hours: start, end, and the next start of duty
        as local time and date ("07:00", "03/03")."""
        opens = self.next_open(now).astimezone(self.zone)
        return {
            "start": self.start,
            "end": self.end,
            "time": f"{opens:%H:%M}",
            "date": f"{opens:%d/%m}",
        }


@dataclass(frozen=True)
class HandoffPolicy:
    """The timers and limits of the handoff; the defaults suit a provincial pilot."""

    hours: VolunteerHours = field(default_factory=VolunteerHours)
    # A ticket waiting this long is re-posted to the province-wide group, once.
    repost_after_seconds: float = 10 * 60
    # A claimed ticket whose volunteer stays silent this long goes back to waiting.
    return_after_seconds: float = 15 * 60
    # A ticket nobody claimed for this long is closed (expired).
    expire_waiting_after_seconds: float = 24 * 3600
    # A claimed ticket where nobody wrote for this long is closed (abandoned).
    abandon_claimed_after_seconds: float = 24 * 3600
    invite_ttl: timedelta = timedelta(days=7)
    # Messages kept in a ticket's context, shown to volunteers.
    context_messages: int = 10
    default_wait_minutes: int = 15
    # A rating is asked after /done; a digit the citizen sends within this time counts.
    rating_window_seconds: float = 24 * 3600


# ---------------------------------------------------------------- passwords


def hash_password(password: str) -> str:
    """A scrypt hash with a random salt: `scrypt$n$r$p$salt$hash` (base64)."""
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, _SCRYPT_N, _SCRYPT_R, _SCRYPT_P, _SCRYPT_LEN)
    return "$".join(
        ("scrypt", str(_SCRYPT_N), str(_SCRYPT_R), str(_SCRYPT_P), _b64(salt), _b64(digest))
    )


def check_password(password: str, stored: str) -> bool:
    """True when `password` matches `stored` (from `hash_password`); False for anything
    malformed."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest, validate=True)
        actual = _scrypt(
            password, base64.b64decode(salt, validate=True), int(n), int(r), int(p), len(expected)
        )
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    # NFC: "ộ" typed as one or as three code points is the same password.
    data = nfc(password).encode("utf-8")
    return hashlib.scrypt(data, salt=salt, n=n, r=r, p=p, dklen=length, maxmem=64 * 1024 * 1024)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# ---------------------------------------------------------------- payloads and buttons


def claim_payload(ticket_id: int) -> str:
    return f"{_CLAIM}{ticket_id}"


def rate_payload(ticket_id: int, rating: int) -> str:
    return f"{_RATE}{ticket_id}:{rating}"


def parse_payload(payload: str) -> tuple[str, int, int | None] | None:
    """`("claim", ticket_id, None)` or `("rate", ticket_id, rating)`; None when the
    payload is not a handoff button."""
    for kind, prefix in (("claim", _CLAIM), ("rate", _RATE)):
        if not payload.startswith(prefix):
            continue
        parts = payload.removeprefix(prefix).split(":")
        if kind == "claim" and len(parts) == 1 and parts[0].isdigit():
            return kind, int(parts[0]), None
        if kind == "rate" and len(parts) == 2 and all(p.isdigit() for p in parts):
            return kind, int(parts[0]), int(parts[1])
    return None


def claim_button(texts: HandoffTexts, ticket_id: int, lang: str = "vi") -> Button:
    """The "Nhận hỗ trợ" button under a group notification."""
    return Button(texts.button("claim", lang), claim_payload(ticket_id))


def rating_buttons(ticket_id: int) -> tuple[Button, ...]:
    """1 to 5, for the citizen after a volunteer closes."""
    return tuple(Button(str(n), rate_payload(ticket_id, n)) for n in range(1, 6))


# ---------------------------------------------------------------- texts


class _HandoffFile(_Model):
    texts: dict[str, LocalText]
    buttons: dict[str, LocalText]
    reasons: dict[str, LocalText] = Field(default_factory=dict)
    close_reasons: dict[str, LocalText] = Field(default_factory=dict)


@dataclass(frozen=True)
class HandoffTexts:
    """knowledge/handoff.yaml: what citizens and volunteers read about a handoff."""

    texts: Mapping[str, Mapping[str, str]]
    buttons: Mapping[str, Mapping[str, str]]
    reasons: Mapping[str, Mapping[str, str]]
    close_reasons: Mapping[str, Mapping[str, str]]

    def text(self, key: str, lang: str = "vi", /, **values: object) -> str:
        return fill(pick(self.texts[key], lang), values)

    def button(self, key: str, lang: str = "vi") -> str:
        return pick(self.buttons[key], lang)

    def reason(self, code: str, lang: str = "vi") -> str:
        """A handoff reason in words; an unknown code as it is."""
        words = self.reasons.get(code)
        return pick(words, lang) if words else code

    def close_reason(self, reason: CloseReason | str, lang: str = "vi") -> str:
        words = self.close_reasons.get(str(reason))
        return pick(words, lang) if words else str(reason)

    def refusal(self, result: TicketResult, lang: str = "vi") -> str | None:
        """The text that explains a refused `result`; None when it was not refused."""
        key = refusal_key(result.outcome)
        if key is None:
            return None
        ticket_id = result.other.id if result.other else result.ticket.id if result.ticket else ""
        name = result.holder.name if result.holder else ""
        return self.text(key, lang, ticket_id=ticket_id, name=name)


def load_handoff_texts(path: Path) -> HandoffTexts:
    """Read handoff.yaml; raises FlowLoadError naming file:line for each problem."""
    data = load_yaml_model(
        path, _HandoffFile, required={"texts": TEXT_KEYS, "buttons": BUTTON_KEYS}
    )
    return HandoffTexts(
        texts=data.texts,
        buttons=data.buttons,
        reasons=data.reasons,
        close_reasons=data.close_reasons,
    )


def context_text(ticket: Ticket, texts: HandoffTexts, lang: str = "vi", *, limit: int = 10) -> str:
    """The ticket's last messages, one a line, for a volunteer (already redacted)."""
    labels = {
        "citizen": texts.text("context_citizen", lang),
        "bot": texts.text("context_bot", lang),
        "volunteer": texts.text("context_volunteer", lang),
    }
    lines = []
    for line in ticket.context[-limit:]:
        words = line.text
        if line.media_kind is not None:
            words = f"{media_note(line.media_kind)} {words}".strip()
        if words:
            lines.append(f"{labels.get(line.who, line.who)}: {words}")
    return "\n".join(lines) if lines else texts.text("context_empty", lang)


def notify_values(
    ticket: Ticket,
    texts: HandoffTexts,
    lang: str = "vi",
    *,
    now: datetime | None = None,
    commune_name: str | None = None,
) -> dict[str, object]:
    """The {placeholders} of notify_new_ticket, reposted, notify_returned, claim_ok."""
    now = now or utcnow()
    if ticket.flow_id:
        where = ticket.flow_id + (f" › {ticket.step_id}" if ticket.step_id else "")
    else:
        where = texts.text("where_none", lang)
    return {
        "ticket_id": ticket.id,
        "reason": texts.reason(ticket.reason, lang),
        "where": where,
        "commune": commune_name or ticket.commune_id or texts.text("commune_unknown", lang),
        "language": ticket.lang,
        "minutes": max(0, int((now - ticket.waiting_since).total_seconds() // 60)),
        "context": context_text(ticket, texts, lang),
    }


# ---------------------------------------------------------------- the service


def _name_key(name: str) -> str:
    """A team name as compared: NFC, without case or extra spaces."""
    return " ".join(nfc(name).casefold().split())


class Handoff:
    """Tickets, volunteers and teams; see the module docstring for the rules."""

    def __init__(self, store: HandoffStore, *, policy: HandoffPolicy | None = None) -> None:
        self.store = store
        self.policy = policy or HandoffPolicy()

    # Tickets

    def open_ticket(
        self,
        conversation_id: int,
        *,
        reason: str,
        flow_id: str | None = None,
        step_id: str | None = None,
        lang: str = "vi",
        commune_id: str | None = None,
        transcript: Sequence[ContextLine] | None = None,
        now: datetime | None = None,
        tx: ConversationTx | None = None,
    ) -> tuple[Ticket, bool]:
        """Open the conversation's ticket; `(ticket, True)` when new, `(open one, False)`
        when it has one already. The team is the one serving `commune_id` (none: the
        whole province). `transcript` defaults to the conversation's last messages;
        it is redacted before it is stored."""
        now = now or utcnow()
        with self._unit(tx) as h:
            team = h.team_for_commune(commune_id) if commune_id else None
            if transcript is None:
                transcript = h.recent_messages(conversation_id, limit=self.policy.context_messages)
            new = NewTicket(
                conversation_id=conversation_id,
                reason=reason,
                flow_id=flow_id,
                step_id=step_id,
                lang=lang,
                commune_id=commune_id,
                team_id=team.id if team else None,
                context=list(transcript)[-self.policy.context_messages :],
            )
            return h.add_ticket(new, now=now)

    def claim(
        self,
        ticket_id: int,
        *,
        volunteer_id: int,
        now: datetime | None = None,
        tx: ConversationTx | None = None,
    ) -> TicketResult:
        """Take a waiting ticket. Of two claims at once exactly one gets `OK`; the other
        gets `TAKEN` with the `holder`."""
        now = now or utcnow()
        with self._unit(tx) as h:
            volunteer = h.volunteer(volunteer_id)
            ticket = h.ticket(ticket_id)
            refused = self._claim_refusal(h, volunteer, ticket)
            if refused is not None:
                return refused
            assert volunteer is not None and ticket is not None
            if h.claim(ticket_id, volunteer_id=volunteer_id, now=now):
                h.update_volunteer(volunteer_id, last_active_at=now)
                return TicketResult(Outcome.OK, h.ticket(ticket_id))
            # Lost a race: say to whom, or that the volunteer took another meanwhile.
            return self._claim_refusal(h, volunteer, h.ticket(ticket_id)) or TicketResult(
                Outcome.BUSY, h.ticket(ticket_id), other=h.claimed_ticket_of(volunteer_id)
            )

    def close(
        self,
        ticket_id: int | None,
        *,
        volunteer_id: int,
        reason: CloseReason = CloseReason.DONE,
        now: datetime | None = None,
        tx: ConversationTx | None = None,
    ) -> TicketResult:
        """Close a ticket (/done). `ticket_id` None: the one the volunteer holds. Only
        its holder or a coordinator may (a coordinator also a waiting ticket); `done`
        remembers the pairing. `holder` in the result: who was helping, if anyone."""
        now = now or utcnow()
        with self._unit(tx) as h:
            found = self._held(h, ticket_id, volunteer_id)
            if isinstance(found, TicketResult):
                return found
            volunteer, ticket = found
            if volunteer.is_coordinator:
                statuses = (TicketStatus.WAITING, TicketStatus.CLAIMED)
                done = h.close(ticket.id, reason=reason, now=now, statuses=statuses)
            else:
                done = h.close(
                    ticket.id,
                    reason=reason,
                    now=now,
                    statuses=(TicketStatus.CLAIMED,),
                    volunteer_id=volunteer_id,
                )
            after = h.ticket(ticket.id)
            if not done:
                return self._not_held(after)
            assert after is not None
            if reason == CloseReason.DONE and after.volunteer_id is not None:
                h.set_pairing(after.conversation_id, volunteer_id=after.volunteer_id, now=now)
            holder = h.volunteer(after.volunteer_id) if after.volunteer_id is not None else None
            if after.volunteer_id != volunteer_id:
                # A coordinator closed it: the note says who, for the posts and the page.
                h.add_note(
                    after.id, volunteer_id=volunteer_id, kind=NoteKind.CLOSED, text="", now=now
                )
            return TicketResult(Outcome.OK, after, holder=holder)

    def transfer(
        self,
        ticket_id: int | None,
        *,
        volunteer_id: int,
        note: str = "",
        now: datetime | None = None,
        tx: ConversationTx | None = None,
    ) -> TicketResult:
        """Hand a claimed ticket back to waiting (/transfer), with a note for the next
        volunteer. Only its holder or a coordinator may; `holder` in the result is the
        volunteer it was taken from."""
        now = now or utcnow()
        with self._unit(tx) as h:
            found = self._held(h, ticket_id, volunteer_id)
            if isinstance(found, TicketResult):
                return found
            _, ticket = found
            if ticket.status != TicketStatus.CLAIMED or ticket.volunteer_id is None:
                return TicketResult(Outcome.NOT_CLAIMED, ticket)
            holder = h.volunteer(ticket.volunteer_id)
            if not h.release(ticket.id, volunteer_id=ticket.volunteer_id, now=now):
                return self._not_held(h.ticket(ticket.id))
            written = h.add_note(
                ticket.id, volunteer_id=volunteer_id, kind=NoteKind.TRANSFER, text=note, now=now
            )
            return TicketResult(Outcome.OK, h.ticket(ticket.id), holder=holder, note=written)

    def add_note(
        self,
        ticket_id: int | None,
        *,
        volunteer_id: int,
        text: str,
        now: datetime | None = None,
        tx: ConversationTx | None = None,
    ) -> TicketResult:
        """A note for the next volunteer (/note), redacted. The holder (also after the
        ticket closed) or a coordinator may write one."""
        now = now or utcnow()
        if not text.strip():
            return TicketResult(Outcome.EMPTY)
        with self._unit(tx) as h:
            found = self._held(h, ticket_id, volunteer_id, closed_ok=True)
            if isinstance(found, TicketResult):
                return found
            _, ticket = found
            written = h.add_note(
                ticket.id, volunteer_id=volunteer_id, kind=NoteKind.NOTE, text=text, now=now
            )
            return TicketResult(Outcome.OK, ticket, note=written)

    def request_visit(
        self,
        ticket_id: int | None,
        *,
        volunteer_id: int,
        note: str = "",
        now: datetime | None = None,
        tx: ConversationTx | None = None,
    ) -> TicketResult:
        """Ask the team for a visit in person (/visit). Holder or coordinator."""
        now = now or utcnow()
        with self._unit(tx) as h:
            found = self._held(h, ticket_id, volunteer_id)
            if isinstance(found, TicketResult):
                return found
            _, ticket = found
            h.request_visit(ticket.id, now=now)
            written = h.add_note(
                ticket.id, volunteer_id=volunteer_id, kind=NoteKind.VISIT, text=note, now=now
            )
            return TicketResult(Outcome.OK, h.ticket(ticket.id), note=written)

    def rate(
        self,
        ticket_id: int,
        rating: int,
        *,
        now: datetime | None = None,
        tx: ConversationTx | None = None,
    ) -> TicketResult:
        """The citizen's rating of a closed ticket, 1 to 5, kept once."""
        now = now or utcnow()
        if not 1 <= rating <= 5:
            return TicketResult(Outcome.BAD_RATING)
        with self._unit(tx) as h:
            ticket = h.ticket(ticket_id)
            if ticket is None:
                return TicketResult(Outcome.NOT_FOUND)
            if ticket.status != TicketStatus.CLOSED:
                return TicketResult(Outcome.NOT_CLOSED, ticket)
            if not h.rate(ticket_id, rating=rating, now=now):
                return TicketResult(Outcome.ALREADY_RATED, ticket)
            return TicketResult(Outcome.OK, h.ticket(ticket_id))

    def rating_pending(
        self,
        conversation_id: int,
        *,
        now: datetime | None = None,
        tx: ConversationTx | None = None,
    ) -> Ticket | None:
        """The conversation's last ticket, closed as done within the rating window and
        not rated yet: a "1"–"5" the citizen sends now is its rating."""
        now = now or utcnow()
        window = timedelta(seconds=self.policy.rating_window_seconds)
        with self._unit(tx, write=False) as h:
            if h.open_ticket_of(conversation_id) is not None:
                return None
            ticket = h.last_closed_of(conversation_id)
        if (
            ticket is None
            or ticket.close_reason != CloseReason.DONE
            or ticket.rated_at is not None
            or ticket.closed_at is None
            or ticket.closed_at < now - window
        ):
            return None
        return ticket

    def close_for_conversation(
        self,
        conversation_id: int,
        *,
        reason: CloseReason = CloseReason.ABANDONED,
        now: datetime | None = None,
        tx: ConversationTx | None = None,
    ) -> Ticket | None:
        """Close the conversation's open ticket for the citizen's side (they cancelled,
        blocked the bot). The closed ticket, or None when none was open."""
        now = now or utcnow()
        with self._unit(tx) as h:
            ticket = h.open_ticket_of(conversation_id)
            if ticket is None:
                return None
            statuses = (TicketStatus.WAITING, TicketStatus.CLAIMED)
            if not h.close(ticket.id, reason=reason, now=now, statuses=statuses):
                return None
            return h.ticket(ticket.id)

    def forget_conversation(
        self, conversation_id: int, *, now: datetime | None = None, tx: ConversationTx | None = None
    ) -> Ticket | None:
        """The citizen asked to be forgotten: close their open ticket (abandoned), empty
        the context and notes of all their tickets, drop the pairing. Call it next to
        `ConversationTx.forget()`. Returns the ticket closed, if one was open."""
        now = now or utcnow()
        with self._unit(tx) as h:
            ticket = h.open_ticket_of(conversation_id)
            statuses = (TicketStatus.WAITING, TicketStatus.CLAIMED)
            closed = ticket is not None and h.close(
                ticket.id, reason=CloseReason.ABANDONED, now=now, statuses=statuses
            )
            h.forget_conversation(conversation_id)
            return h.ticket(ticket.id) if closed and ticket is not None else None

    def forget_relays(
        self,
        conversation_id: int,
        *,
        prefixes: Callable[[int], Sequence[str]],
        mask: str,
        tx: ConversationTx | None = None,
    ) -> int:
        """After /stop: what the bot relayed or posted about this citizen's tickets in
        other chats (a volunteer's chat with the bot, the groups) keeps neither their
        words nor their photos' file references (`HandoffTx.mask_outbox`).
        `prefixes(ticket_id)`: how those messages begin. The number of rows changed."""
        with self._unit(tx) as h:
            tickets = h.tickets_of_conversation(conversation_id)
            if not tickets:
                return 0
            wanted = [p for ticket in tickets for p in prefixes(ticket.id) if p]
            return h.mask_outbox(
                wanted,
                since=tickets[0].created_at,
                mask=mask,
                exclude_conversation=conversation_id,
            )

    def active_ticket_for_conversation(
        self, conversation_id: int, *, tx: ConversationTx | None = None
    ) -> Ticket | None:
        """The open (waiting or claimed) ticket of the conversation."""
        with self._unit(tx, write=False) as h:
            return h.open_ticket_of(conversation_id)

    def claimed_ticket_of_volunteer(
        self, volunteer_id: int, *, tx: ConversationTx | None = None
    ) -> Ticket | None:
        """The one ticket the volunteer holds: their messages go to its citizen."""
        with self._unit(tx, write=False) as h:
            return h.claimed_ticket_of(volunteer_id)

    def touch_citizen(
        self,
        conversation_id: int,
        *,
        now: datetime | None = None,
        tx: ConversationTx | None = None,
    ) -> Ticket | None:
        """The citizen wrote: the open ticket (claimed: relay to its volunteer), or None."""
        now = now or utcnow()
        with self._unit(tx) as h:
            return h.touch_citizen(conversation_id, now=now)

    def touch_volunteer(
        self,
        volunteer_id: int,
        *,
        now: datetime | None = None,
        tx: ConversationTx | None = None,
    ) -> Ticket | None:
        """The volunteer wrote: the ticket they hold (relay to its citizen), or None."""
        now = now or utcnow()
        with self._unit(tx) as h:
            return h.touch_volunteer(volunteer_id, now=now)

    def group_chat(
        self, ticket: Ticket, *, province: tuple[str, str] | None
    ) -> tuple[str, str] | None:
        """Where to post about the ticket, as (channel, chat_id): its team's group while
        the ticket is the team's, else `province` (VOLUNTEER_CHAT_ID on its channel)."""
        if ticket.team_id is None or ticket.reposted_at is not None:
            return province
        team = self.get_team(ticket.team_id)
        if team is None or team.chat_channel is None or team.chat_id is None:
            return province
        return team.chat_channel, team.chat_id

    def set_notified(
        self,
        ticket_id: int,
        *,
        channel: str,
        chat_id: str,
        message_id: str,
        tx: ConversationTx | None = None,
    ) -> bool:
        """Remember a group post about the ticket, to edit it later ("Lan đã nhận")."""
        with self._unit(tx) as h:
            return h.add_notified(ticket_id, NotifiedPost(channel, chat_id, message_id))

    def keep_media(self, conversation_id: int, media: Media, *, tx: ConversationTx) -> bool:
        """Keep the channel's reference to the attachment of the message just recorded
        (inside the citizen's transaction), for a volunteer to see it later."""
        if media.ref is None or media.kind is MediaKind.LOCATION:
            return False
        with self._unit(tx) as h:
            return h.keep_media(conversation_id, kind=media.kind.value, ref=media.ref)

    def add_to_context(
        self, ticket_id: int, line: ContextLine, *, tx: ConversationTx | None = None
    ) -> bool:
        """The citizen wrote while waiting: the volunteer who claims reads it too."""
        with self._unit(tx) as h:
            return h.append_context(ticket_id, line, keep=_CONTEXT_KEEP)

    def open_ticket_of_chat(self, *, channel: str, chat_id: str) -> Ticket | None:
        """The open ticket of a citizen's chat (for an update that names only the chat)."""
        with self.store.begin(write=False) as h:
            return h.open_ticket_of_chat(channel=channel, chat_id=chat_id)

    def note_undelivered(
        self, ticket_id: int, *, error: str, now: datetime | None = None
    ) -> Ticket | None:
        """A reply could not reach the citizen (Zalo's messaging window): note it on the
        ticket. The ticket, when this is the first such note since the citizen last
        wrote (tell the volunteer then, not at every reply); else None."""
        now = now or utcnow()
        with self.store.begin() as h:
            ticket = h.ticket(ticket_id)
            if ticket is None or ticket.status != TicketStatus.CLAIMED:
                return None
            if h.noted_since(ticket_id, NoteKind.UNDELIVERED, ticket.last_citizen_at):
                return None
            h.add_note(ticket_id, volunteer_id=None, kind=NoteKind.UNDELIVERED, text=error, now=now)
            return ticket

    def get_ticket(self, ticket_id: int, *, tx: ConversationTx | None = None) -> Ticket | None:
        with self._unit(tx, write=False) as h:
            return h.ticket(ticket_id)

    def list_tickets(
        self,
        *,
        statuses: Sequence[TicketStatus] = (),
        team_id: int | None = None,
        limit: int = 50,
    ) -> list[Ticket]:
        """Newest first, for the console."""
        with self.store.begin(write=False) as h:
            return h.tickets(statuses=statuses, team_id=team_id, limit=limit)

    def notes(self, ticket_id: int) -> list[Note]:
        with self.store.begin(write=False) as h:
            return h.notes(ticket_id)

    # Timers: computed from stored times; call them every minute or so.

    def due_reposts(self, now: datetime, after_seconds: float | None = None) -> list[Ticket]:
        """Tickets waiting longer than `after_seconds`, not re-posted yet, now marked
        re-posted (once, even with two schedulers): post them to the province group.
        From then on any volunteer may claim them."""
        after = self.policy.repost_after_seconds if after_seconds is None else after_seconds
        cutoff = now - timedelta(seconds=after)
        out = []
        with self.store.begin() as h:
            for ticket in h.waiting_since_before(cutoff, not_reposted=True):
                if h.mark_reposted(ticket.id, now=now):
                    fresh = h.ticket(ticket.id)
                    assert fresh is not None
                    out.append(fresh)
        return out

    def due_returns(self, now: datetime, silent_seconds: float | None = None) -> list[Returned]:
        """Claimed tickets whose volunteer said nothing for `silent_seconds` while the
        citizen waited (since the claim, or since the citizen's last message): back to
        waiting, with a note. Tell the volunteer (returned_silent), the citizen
        (ticket_returned) and the group (notify_returned)."""
        silent = self.policy.return_after_seconds if silent_seconds is None else silent_seconds
        cutoff = now - timedelta(seconds=silent)
        out = []
        with self.store.begin() as h:
            for ticket in h.silent_claims(cutoff):
                holder = ticket.volunteer_id
                if holder is None or not h.release_if_silent(ticket.id, cutoff=cutoff, now=now):
                    continue
                h.add_note(ticket.id, volunteer_id=holder, kind=NoteKind.RETURNED, text="", now=now)
                fresh = h.ticket(ticket.id)
                assert fresh is not None
                out.append(Returned(fresh, holder))
        return out

    def expire(
        self,
        now: datetime,
        waiting_seconds: float | None = None,
        idle_seconds: float | None = None,
    ) -> list[Expired]:
        """Close tickets nobody claimed for `waiting_seconds` (expired: tell the citizen
        ticket_expired) and claimed ones where nobody wrote for `idle_seconds`
        (abandoned: tell the volunteer)."""
        policy = self.policy
        waiting = (
            policy.expire_waiting_after_seconds if waiting_seconds is None else waiting_seconds
        )
        idle = policy.abandon_claimed_after_seconds if idle_seconds is None else idle_seconds
        waiting_cutoff = now - timedelta(seconds=waiting)
        idle_cutoff = now - timedelta(seconds=idle)
        out = []
        with self.store.begin() as h:
            for ticket in h.waiting_since_before(waiting_cutoff, not_reposted=False):
                if h.close_if_waiting_since(ticket.id, cutoff=waiting_cutoff, now=now):
                    out.append((ticket.id, TicketStatus.WAITING))
            for ticket in h.idle_claims(idle_cutoff):
                if h.close_if_idle(ticket.id, cutoff=idle_cutoff, now=now):
                    out.append((ticket.id, TicketStatus.CLAIMED))
            return [self._expired(h, ticket_id, was) for ticket_id, was in out]

    # Teams

    def create_team(
        self,
        name: str,
        *,
        kind: TeamKind = TeamKind.COMMUNE,
        commune_id: str | None = None,
        now: datetime | None = None,
    ) -> Team:
        """The team named `name`, created when missing (an existing team is unchanged)."""
        name = " ".join(nfc(name).split())
        if not name:
            raise ValueError("a team needs a name")
        with self.store.begin() as h:
            team, _ = h.add_team(
                name=name,
                name_key=_name_key(name),
                kind=kind,
                commune_id=commune_id,
                now=now or utcnow(),
            )
            return team

    def find_team(self, name: str) -> Team | None:
        """The team of that name, without regard to case or extra spaces."""
        with self.store.begin(write=False) as h:
            return h.team_by_key(_name_key(name))

    def get_team(self, team_id: int) -> Team | None:
        with self.store.begin(write=False) as h:
            return h.team(team_id)

    def list_teams(self) -> list[Team]:
        with self.store.begin(write=False) as h:
            return h.teams()

    def set_team_chat(self, team_id: int, *, channel: str, chat_id: str) -> Team | None:
        """Where the team's tickets are posted (its volunteer group)."""
        with self.store.begin() as h:
            return h.set_team_chat(team_id, channel=channel, chat_id=chat_id)

    # Volunteers

    def create_invite(
        self,
        team_id: int,
        *,
        role: Role = Role.VOLUNTEER,
        created_by: str,
        ttl: timedelta | None = None,
        now: datetime | None = None,
    ) -> Invite:
        """A one-time code, valid for `ttl` (policy default: 7 days); sent as /join CODE."""
        now = now or utcnow()
        expires_at = now + (ttl if ttl is not None else self.policy.invite_ttl)
        with self.store.begin() as h:
            if h.team(team_id) is None:
                raise ValueError(f"team {team_id} does not exist")
            while True:  # 31^10 codes: a collision is rare, and then we draw again
                code = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(_CODE_LENGTH))
                invite = h.add_invite(
                    code=code,
                    team_id=team_id,
                    role=role,
                    created_by=created_by,
                    now=now,
                    expires_at=expires_at,
                )
                if invite is not None:
                    return invite

    def redeem_invite(
        self,
        code: str,
        *,
        channel: str,
        user_id: str,
        name: str,
        now: datetime | None = None,
    ) -> RedeemResult:
        """/join CODE: the account becomes a volunteer of the invite's team. A code works
        once, even when two people send it at the same moment."""
        now = now or utcnow()
        code = "".join(code.split()).upper()
        with self.store.begin() as h:
            if not h.use_invite(code, now=now):
                invite = h.invite(code)
                if invite is None:
                    return RedeemResult(RedeemOutcome.UNKNOWN)
                if invite.used_at is not None:
                    return RedeemResult(RedeemOutcome.USED)
                return RedeemResult(RedeemOutcome.EXPIRED)
            invite = h.invite(code)
            assert invite is not None
            volunteer, created = h.join_volunteer(
                channel=channel,
                user_id=user_id,
                name=" ".join(nfc(name).split()) or user_id,
                team_id=invite.team_id,
                role=invite.role,
                now=now,
            )
            h.set_invite_user(code, volunteer.id)
            return RedeemResult(
                RedeemOutcome.OK, volunteer, h.team(invite.team_id), rejoined=not created
            )

    def find_volunteer(self, *, channel: str, user_id: str) -> Volunteer | None:
        """The volunteer behind a messenger account, disabled or not."""
        with self.store.begin(write=False) as h:
            return h.volunteer_by_user(channel=channel, user_id=user_id)

    def is_volunteer_account(
        self, *, channel: str, user_id: str, tx: ConversationTx | None = None
    ) -> bool:
        """`find_volunteer(...) is not None`, cheaper: every private message asks it."""
        return self.store.is_volunteer_account(channel=channel, user_id=user_id, tx=tx)

    def get_volunteer(self, volunteer_id: int) -> Volunteer | None:
        with self.store.begin(write=False) as h:
            return h.volunteer(volunteer_id)

    def list_volunteers(self, team_id: int | None = None) -> list[Volunteer]:
        with self.store.begin(write=False) as h:
            return h.volunteers(team_id=team_id)

    def set_available(self, volunteer_id: int, available: bool) -> Volunteer | None:
        """/on and /off."""
        with self.store.begin() as h:
            return h.update_volunteer(volunteer_id, available=available)

    def disable(self, volunteer_id: int, *, now: datetime | None = None) -> DisableResult | None:
        """Lock a volunteer out; the ticket they hold goes back to waiting with a note.
        A new invite enables them again."""
        now = now or utcnow()
        with self.store.begin() as h:
            volunteer = h.update_volunteer(volunteer_id, disabled=True, available=False)
            if volunteer is None:
                return None
            held = h.claimed_ticket_of(volunteer_id)
            returned = None
            if held is not None and h.release(held.id, volunteer_id=volunteer_id, now=now):
                h.add_note(
                    held.id, volunteer_id=volunteer_id, kind=NoteKind.RETURNED, text="", now=now
                )
                returned = h.ticket(held.id)
            return DisableResult(volunteer, returned)

    def move(self, volunteer_id: int, team_id: int) -> Volunteer | None:
        with self.store.begin() as h:
            if h.team(team_id) is None:
                raise ValueError(f"team {team_id} does not exist")
            return h.update_volunteer(volunteer_id, team_id=team_id)

    def set_languages(self, volunteer_id: int, languages: Sequence[str]) -> Volunteer | None:
        with self.store.begin() as h:
            return h.update_volunteer(volunteer_id, languages=languages)

    def set_password(self, volunteer_id: int, password: str) -> Volunteer | None:
        """Set the console password (scrypt). ValueError when it is too short."""
        if len(password) < MIN_PASSWORD_CHARS:
            raise ValueError(f"the password needs at least {MIN_PASSWORD_CHARS} characters")
        hashed = hash_password(password)
        with self.store.begin() as h:
            return h.update_volunteer(volunteer_id, password_hash=hashed)

    def verify_password(self, name_or_id: str | int, password: str) -> Volunteer | None:
        """The volunteer, when `password` is theirs; None for a wrong password, an
        unknown, ambiguous or disabled name, or no password set."""
        with self.store.begin(write=False) as h:
            found = self._login_candidate(h, name_or_id)
            stored = h.password_hash(found.id) if found is not None else None
        if found is None or stored is None or found.disabled:
            check_password(password, _DUMMY_HASH)  # same time as a real check
            return None
        return found if check_password(password, stored) else None

    def preferred_volunteer(
        self, conversation_id: int, *, tx: ConversationTx | None = None
    ) -> int | None:
        """The volunteer who last helped this conversation, if available and enabled:
        offer them the ticket first (they may claim it whatever their team)."""
        with self._unit(tx, write=False) as h:
            pairing = h.pairing(conversation_id)
            if pairing is None:
                return None
            volunteer = h.volunteer(pairing.volunteer_id)
        if volunteer is None or volunteer.disabled or not volunteer.available:
            return None
        return volunteer.id

    # Figures

    def is_volunteer_time(self, now: datetime) -> bool:
        return self.policy.hours.is_open(now)

    def next_volunteer_time(self, now: datetime) -> datetime:
        return self.policy.hours.next_open(now)

    def wait_estimate(self, team_id: int | None, *, now: datetime | None = None) -> int:
        """Minutes a citizen may wait: the median wait of the last 20 claims in 30 days
        (of the team; None: all), rounded up; the policy default without data."""
        now = now or utcnow()
        with self.store.begin(write=False) as h:
            waits = h.claim_waits(team_id=team_id, since=now - _WAIT_WINDOW, limit=_WAIT_SAMPLE)
        if not waits:
            return self.policy.default_wait_minutes
        return max(1, math.ceil(statistics.median(waits) / 60))

    # Helpers

    @contextmanager
    def _unit(self, tx: ConversationTx | None, *, write: bool = True) -> Iterator[HandoffTx]:
        if tx is not None:
            yield self.store.within(tx)
        else:
            with self.store.begin(write=write) as h:
                yield h

    def _claim_refusal(
        self, h: HandoffTx, volunteer: Volunteer | None, ticket: Ticket | None
    ) -> TicketResult | None:
        if volunteer is None:
            return TicketResult(Outcome.UNKNOWN_VOLUNTEER, ticket)
        if volunteer.disabled:
            return TicketResult(Outcome.DISABLED, ticket)
        if ticket is None:
            return TicketResult(Outcome.NOT_FOUND)
        if ticket.status == TicketStatus.CLOSED:
            return TicketResult(Outcome.CLOSED, ticket)
        if ticket.status == TicketStatus.CLAIMED:
            if ticket.volunteer_id == volunteer.id:
                return TicketResult(Outcome.ALREADY_YOURS, ticket)
            holder = h.volunteer(ticket.volunteer_id) if ticket.volunteer_id else None
            return TicketResult(Outcome.TAKEN, ticket, holder=holder)
        if not self._may_claim(h, volunteer, ticket):
            return TicketResult(Outcome.OTHER_TEAM, ticket)
        other = h.claimed_ticket_of(volunteer.id)
        if other is not None:
            return TicketResult(Outcome.BUSY, ticket, other=other)
        return None

    @staticmethod
    def _may_claim(h: HandoffTx, volunteer: Volunteer, ticket: Ticket) -> bool:
        if volunteer.is_coordinator or ticket.team_id is None or ticket.reposted_at is not None:
            return True
        if ticket.team_id == volunteer.team_id:
            return True
        pairing = h.pairing(ticket.conversation_id)
        return pairing is not None and pairing.volunteer_id == volunteer.id

    @staticmethod
    def _held(
        h: HandoffTx, ticket_id: int | None, volunteer_id: int, *, closed_ok: bool = False
    ) -> tuple[Volunteer, Ticket] | TicketResult:
        """The volunteer and the ticket they may act on, or the refusal."""
        volunteer = h.volunteer(volunteer_id)
        if volunteer is None:
            return TicketResult(Outcome.UNKNOWN_VOLUNTEER)
        if volunteer.disabled:
            return TicketResult(Outcome.DISABLED)
        if ticket_id is None:
            ticket = h.claimed_ticket_of(volunteer_id)
            if ticket is None:
                return TicketResult(Outcome.NO_TICKET)
        else:
            found = h.ticket(ticket_id)
            if found is None:
                return TicketResult(Outcome.NOT_FOUND)
            ticket = found
        if ticket.status == TicketStatus.CLOSED and not closed_ok:
            return TicketResult(Outcome.CLOSED, ticket)
        if volunteer.is_coordinator:
            return volunteer, ticket
        holds = ticket.volunteer_id == volunteer_id and (
            ticket.status == TicketStatus.CLAIMED or (closed_ok and ticket.closed_at is not None)
        )
        return (volunteer, ticket) if holds else TicketResult(Outcome.NOT_YOURS, ticket)

    @staticmethod
    def _not_held(ticket: Ticket | None) -> TicketResult:
        """Why a compare-and-set on the ticket failed: it changed under us."""
        if ticket is None:
            return TicketResult(Outcome.NOT_FOUND)
        if ticket.status == TicketStatus.CLOSED:
            return TicketResult(Outcome.CLOSED, ticket)
        return TicketResult(Outcome.NOT_YOURS, ticket)

    @staticmethod
    def _expired(h: HandoffTx, ticket_id: int, was: TicketStatus) -> Expired:
        ticket = h.ticket(ticket_id)
        assert ticket is not None
        return Expired(ticket, was)

    @staticmethod
    def _login_candidate(h: HandoffTx, name_or_id: str | int) -> Volunteer | None:
        if isinstance(name_or_id, int) or name_or_id.strip().isdigit():
            return h.volunteer(int(name_or_id))
        wanted = _name_key(name_or_id)
        matches = [v for v in h.volunteers() if _name_key(v.name) == wanted]
        return matches[0] if len(matches) == 1 else None  # two of one name: use the id
