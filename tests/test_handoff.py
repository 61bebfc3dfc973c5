"""The handoff to volunteers (bot/handoff.py on bot/store/handoff.py), on SQLite and
PostgreSQL: tickets, claims and their races, invites, timers, pairing, hours, passwords."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from multiprocessing import get_context
from pathlib import Path
from typing import Any, TypeVar

import pytest

from bot.channels.common import media_button
from bot.errors import ConfigError, FlowLoadError
from bot.handoff import (
    BUTTON_KEYS,
    TEXT_KEYS,
    Handoff,
    HandoffPolicy,
    HandoffTexts,
    Outcome,
    RedeemOutcome,
    VolunteerHours,
    check_password,
    claim_button,
    claim_payload,
    context_text,
    hash_password,
    load_handoff_texts,
    notify_values,
    parse_payload,
    rate_payload,
    rating_buttons,
)
from bot.messages import Incoming, Media, MediaKind, Outgoing
from bot.store import (
    CloseReason,
    ContextLine,
    HandoffStore,
    NoteKind,
    Role,
    Store,
    Team,
    TeamKind,
    TicketStatus,
    Volunteer,
)

ROOT = Path(__file__).resolve().parents[1]
CHANNEL = "telegram"
T0 = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)  # 10:00 in Vietnam
MIN = timedelta(minutes=1)
CCCD = "001234567890"
PHONE = "0912345678"
R = TypeVar("R")


@pytest.fixture
def handoff(store: Store) -> Handoff:
    return Handoff(HandoffStore(store))


@pytest.fixture
def texts() -> HandoffTexts:
    return load_handoff_texts(ROOT / "knowledge" / "handoff.yaml")


def conversation(store: Store, chat_id: str = "c1", text: str = "xin chào") -> int:
    with store.conversation(channel=CHANNEL, chat_id=chat_id) as tx:
        tx.record_inbound(Incoming(channel=CHANNEL, chat_id=chat_id, text=text))
        tx.queue_outgoing([Outgoing(chat_id=chat_id, text="Bạn cần giúp gì?")])
        return tx.conversation_id


def team(handoff: Handoff, name: str = "Đoàn phường Hạ Long", commune: str = "ha_long") -> Team:
    return handoff.create_team(name, kind=TeamKind.COMMUNE, commune_id=commune, now=T0)


def volunteer(
    handoff: Handoff, of: Team, user_id: str, role: Role = Role.VOLUNTEER, name: str = ""
) -> Volunteer:
    invite = handoff.create_invite(of.id, role=role, created_by="test", now=T0)
    result = handoff.redeem_invite(
        invite.code, channel=CHANNEL, user_id=user_id, name=name or f"Bạn {user_id}", now=T0
    )
    assert result.volunteer is not None
    return result.volunteer


def in_parallel(count: int, work: Callable[[int], R]) -> list[R]:
    """Run `work(0..count-1)` in threads released at the same moment."""
    barrier = threading.Barrier(count)

    def run(n: int) -> R:
        barrier.wait(timeout=30)
        return work(n)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return [f.result(timeout=120) for f in [pool.submit(run, n) for n in range(count)]]


# --- tickets ---------------------------------------------------------------------------


def test_one_open_ticket_per_conversation(store: Store, handoff: Handoff) -> None:
    cid = conversation(store)
    first, created = handoff.open_ticket(cid, reason="nfc_fail", now=T0)
    again, created_again = handoff.open_ticket(cid, reason="asked_human", now=T0 + MIN)
    assert created and not created_again
    assert again.id == first.id and again.reason == "nfc_fail"
    assert first.status == TicketStatus.WAITING and first.chat_id == "c1"
    assert first.channel == CHANNEL and first.waiting_since == T0
    assert handoff.active_ticket_for_conversation(cid) == first

    boss = volunteer(handoff, team(handoff), "boss", Role.COORDINATOR)
    assert handoff.close(first.id, volunteer_id=boss.id, now=T0 + MIN).ok
    assert handoff.active_ticket_for_conversation(cid) is None
    second, created = handoff.open_ticket(cid, reason="stuck", now=T0 + 2 * MIN)
    assert created and second.id != first.id


def test_one_open_ticket_under_a_race(store: Store, handoff: Handoff) -> None:
    cid = conversation(store)
    results = in_parallel(2, lambda _: handoff.open_ticket(cid, reason="asked_human", now=T0))
    assert len({ticket.id for ticket, _ in results}) == 1
    assert sorted(created for _, created in results) == [False, True]


def test_ticket_context_is_redacted_and_the_team_comes_from_the_commune(
    store: Store, handoff: Handoff, texts: HandoffTexts
) -> None:
    ha_long = team(handoff)
    cid = conversation(store, text=f"CCCD của tôi là {CCCD}, sđt {PHONE}")
    ticket, _ = handoff.open_ticket(
        cid,
        reason="nfc_fail",
        flow_id="vneid_activate",
        step_id="scan_chip",
        lang="vi",
        commune_id="ha_long",
        now=T0,
    )
    assert ticket.team_id == ha_long.id and ticket.commune_id == "ha_long"
    assert [line.who for line in ticket.context] == ["citizen", "bot"]
    shown = context_text(ticket, texts)
    assert CCCD not in shown and PHONE not in shown and "*********890" in shown
    values = notify_values(ticket, texts, now=T0 + 5 * MIN, commune_name="Hạ Long")
    message = texts.text("notify_new_ticket", "vi", **values)
    assert f"#{ticket.id}" in message and "không quét được chip" in message
    assert "vneid_activate › scan_chip" in message and "Hạ Long" in message
    assert values["minutes"] == 5

    # A transcript given by the caller is redacted too, and cut to the policy's length.
    other = conversation(store, "c2")
    lines = [ContextLine("citizen", f"mã OTP là 12345{n}") for n in range(15)]
    given, _ = handoff.open_ticket(other, reason="otp_not_received", transcript=lines, now=T0)
    assert len(given.context) == HandoffPolicy().context_messages
    assert all("12345" not in line.text for line in given.context)
    assert given.team_id is None  # no commune: the whole province


def test_open_ticket_inside_the_conversation_transaction(store: Store, handoff: Handoff) -> None:
    cid = conversation(store)
    with pytest.raises(RuntimeError), store.conversation(channel=CHANNEL, chat_id="c1") as tx:
        handoff.open_ticket(cid, reason="stuck", now=T0, tx=tx)
        raise RuntimeError("the engine failed")
    assert handoff.active_ticket_for_conversation(cid) is None  # rolled back with it

    with store.conversation(channel=CHANNEL, chat_id="c1") as tx:
        ticket, created = handoff.open_ticket(tx.conversation_id, reason="stuck", now=T0, tx=tx)
        assert created and handoff.active_ticket_for_conversation(cid, tx=tx) == ticket
        tx.queue_outgoing([Outgoing(chat_id="c1", text="Mình đang tìm tình nguyện viên.")])
    assert handoff.active_ticket_for_conversation(cid) == ticket


# --- claims ----------------------------------------------------------------------------


def test_claim_race_between_threads_has_one_winner(store: Store, handoff: Handoff) -> None:
    ha_long = team(handoff)
    people = [volunteer(handoff, ha_long, f"u{n}") for n in range(2)]
    ticket, _ = handoff.open_ticket(conversation(store), reason="stuck", now=T0)
    results = in_parallel(
        2, lambda n: handoff.claim(ticket.id, volunteer_id=people[n].id, now=T0 + MIN)
    )
    outcomes = sorted(r.outcome for r in results)
    assert outcomes == [Outcome.OK, Outcome.TAKEN]
    winner = next(r for r in results if r.ok)
    loser = next(r for r in results if not r.ok)
    assert winner.ticket is not None and loser.holder is not None
    assert loser.holder.id == winner.ticket.volunteer_id
    final = handoff.get_ticket(ticket.id)
    assert final is not None and final.status == TicketStatus.CLAIMED
    assert final.claimed_at == T0 + MIN and final.waited_seconds == 60


def claim_in_process(url: str, ticket_id: int, volunteer_id: int, barrier: Any) -> str:
    """One claim from a process of its own, released with the others by `barrier`."""
    store = Store(url)
    try:
        handoff = Handoff(HandoffStore(store))
        barrier.wait(timeout=120)
        return handoff.claim(ticket_id, volunteer_id=volunteer_id).outcome.value
    finally:
        store.dispose()


def test_claim_race_between_processes_has_one_winner(store: Store, handoff: Handoff) -> None:
    ha_long = team(handoff)
    people = [volunteer(handoff, ha_long, f"p{n}") for n in range(3)]
    ticket, _ = handoff.open_ticket(conversation(store), reason="stuck", now=T0)
    context = get_context("spawn")
    with context.Manager() as manager:
        barrier = manager.Barrier(len(people))
        with ProcessPoolExecutor(max_workers=len(people), mp_context=context) as pool:
            futures = [
                pool.submit(claim_in_process, store.url, ticket.id, person.id, barrier)
                for person in people
            ]
            outcomes = sorted(f.result(timeout=180) for f in futures)
    assert outcomes == ["ok", "taken", "taken"]


def test_claim_refusals(store: Store, handoff: Handoff) -> None:
    ha_long, co_to = team(handoff), team(handoff, "Đội hình lưu động Cô Tô", "co_to")
    lan, minh = volunteer(handoff, ha_long, "lan"), volunteer(handoff, co_to, "minh")
    boss = volunteer(handoff, co_to, "boss", Role.COORDINATOR)
    first, _ = handoff.open_ticket(conversation(store), reason="stuck", commune_id="ha_long")
    second, _ = handoff.open_ticket(conversation(store, "c2"), reason="stuck", commune_id="ha_long")

    assert handoff.claim(first.id, volunteer_id=minh.id).outcome == Outcome.OTHER_TEAM
    assert handoff.claim(999, volunteer_id=lan.id).outcome == Outcome.NOT_FOUND
    assert handoff.claim(first.id, volunteer_id=999).outcome == Outcome.UNKNOWN_VOLUNTEER
    assert handoff.claim(first.id, volunteer_id=lan.id).ok
    assert handoff.claim(first.id, volunteer_id=lan.id).outcome == Outcome.ALREADY_YOURS
    busy = handoff.claim(second.id, volunteer_id=lan.id)
    assert busy.outcome == Outcome.BUSY and busy.other is not None and busy.other.id == first.id
    assert handoff.claim(second.id, volunteer_id=boss.id).ok  # a coordinator claims anything

    assert handoff.close(first.id, volunteer_id=lan.id).ok
    closed = handoff.claim(first.id, volunteer_id=minh.id)
    assert closed.outcome == Outcome.CLOSED
    assert closed.ticket is not None and closed.ticket.status == TicketStatus.CLOSED

    handoff.disable(minh.id)
    third, _ = handoff.open_ticket(conversation(store, "c3"), reason="stuck")
    assert handoff.claim(third.id, volunteer_id=minh.id).outcome == Outcome.DISABLED


def test_the_index_keeps_a_volunteer_to_one_ticket(store: Store, handoff: Handoff) -> None:
    """Past the service's check (as in a race), the unique index refuses a second claim,
    and the conversation's transaction goes on (a savepoint took the blow)."""
    lan = volunteer(handoff, team(handoff), "lan")
    first, _ = handoff.open_ticket(conversation(store), reason="stuck", now=T0)
    second, _ = handoff.open_ticket(conversation(store, "c2"), reason="stuck", now=T0)
    assert handoff.claim(first.id, volunteer_id=lan.id, now=T0).ok
    with store.conversation(channel=CHANNEL, chat_id="c2") as tx:
        raw = handoff.store.within(tx)
        assert raw.claim(second.id, volunteer_id=lan.id, now=T0 + MIN) is False
        tx.queue_outgoing([Outgoing(chat_id="c2", text="Bạn chờ thêm chút nhé.")])
    assert [i.text for i in store.outbox_after(channel=CHANNEL, chat_id="c2")][-1] == (
        "Bạn chờ thêm chút nhé."
    )
    untouched = handoff.get_ticket(second.id)
    assert untouched is not None and untouched.status == TicketStatus.WAITING


def test_a_reposted_ticket_may_be_claimed_by_any_team(store: Store, handoff: Handoff) -> None:
    team(handoff)
    minh = volunteer(handoff, team(handoff, "Đội hình lưu động Cô Tô", "co_to"), "minh")
    ticket, _ = handoff.open_ticket(
        conversation(store), reason="stuck", commune_id="ha_long", now=T0
    )
    assert handoff.claim(ticket.id, volunteer_id=minh.id).outcome == Outcome.OTHER_TEAM
    assert [t.id for t in handoff.due_reposts(T0 + timedelta(hours=1))] == [ticket.id]
    assert handoff.claim(ticket.id, volunteer_id=minh.id).ok


def test_done_by_a_volunteer_who_does_not_hold_the_ticket(store: Store, handoff: Handoff) -> None:
    ha_long = team(handoff)
    lan, hoa = volunteer(handoff, ha_long, "lan"), volunteer(handoff, ha_long, "hoa")
    ticket, _ = handoff.open_ticket(conversation(store), reason="stuck", now=T0)

    waiting = handoff.close(ticket.id, volunteer_id=hoa.id)
    assert waiting.outcome == Outcome.NOT_YOURS
    assert handoff.claim(ticket.id, volunteer_id=lan.id, now=T0 + MIN).ok
    before = handoff.get_ticket(ticket.id)

    refused = handoff.close(ticket.id, volunteer_id=hoa.id)
    assert refused.outcome == Outcome.NOT_YOURS
    assert handoff.transfer(ticket.id, volunteer_id=hoa.id).outcome == Outcome.NOT_YOURS
    assert handoff.request_visit(ticket.id, volunteer_id=hoa.id).outcome == Outcome.NOT_YOURS
    assert handoff.add_note(ticket.id, volunteer_id=hoa.id, text="x").outcome == Outcome.NOT_YOURS
    assert handoff.close(None, volunteer_id=hoa.id).outcome == Outcome.NO_TICKET
    assert handoff.get_ticket(ticket.id) == before

    done = handoff.close(None, volunteer_id=lan.id, now=T0 + 10 * MIN)  # the one they hold
    assert done.ok and done.ticket is not None
    assert done.ticket.status == TicketStatus.CLOSED and done.ticket.close_reason == "done"
    assert done.ticket.closed_at == T0 + 10 * MIN and done.ticket.volunteer_id == lan.id
    assert handoff.close(ticket.id, volunteer_id=lan.id).outcome == Outcome.CLOSED
    assert handoff.claimed_ticket_of_volunteer(lan.id) is None


def test_transfer_puts_the_ticket_back_with_a_note(store: Store, handoff: Handoff) -> None:
    ha_long = team(handoff)
    lan, hoa = volunteer(handoff, ha_long, "lan"), volunteer(handoff, ha_long, "hoa")
    boss = volunteer(handoff, ha_long, "boss", Role.COORDINATOR)
    ticket, _ = handoff.open_ticket(conversation(store), reason="stuck", now=T0)
    assert handoff.transfer(ticket.id, volunteer_id=boss.id).outcome == Outcome.NOT_CLAIMED
    handoff.claim(ticket.id, volunteer_id=lan.id, now=T0 + MIN)

    moved = handoff.transfer(
        None, volunteer_id=lan.id, note=f"Cần người biết NFC, sđt {PHONE}", now=T0 + 5 * MIN
    )
    assert moved.ok and moved.ticket is not None and moved.note is not None
    assert moved.ticket.status == TicketStatus.WAITING and moved.ticket.volunteer_id is None
    assert moved.ticket.waiting_since == T0 + 5 * MIN
    assert moved.note.kind == NoteKind.TRANSFER and PHONE not in moved.note.text
    assert handoff.claimed_ticket_of_volunteer(lan.id) is None
    assert handoff.claim(ticket.id, volunteer_id=hoa.id, now=T0 + 7 * MIN).ok
    again = handoff.get_ticket(ticket.id)
    assert again is not None and again.waited_seconds == 120

    # A coordinator may take it off anyone.
    assert handoff.transfer(ticket.id, volunteer_id=boss.id).ok
    assert [n.kind for n in handoff.notes(ticket.id)] == [NoteKind.TRANSFER, NoteKind.TRANSFER]


def test_notes_are_masked_and_need_text(store: Store, handoff: Handoff) -> None:
    lan = volunteer(handoff, team(handoff), "lan")
    ticket, _ = handoff.open_ticket(conversation(store), reason="stuck", now=T0)
    handoff.claim(ticket.id, volunteer_id=lan.id, now=T0)
    assert handoff.add_note(None, volunteer_id=lan.id, text="   ").outcome == Outcome.EMPTY
    written = handoff.add_note(
        None, volunteer_id=lan.id, text=f"Bà dùng CCCD {CCCD}, mật khẩu là abc123", now=T0
    )
    assert written.ok and written.note is not None
    assert CCCD not in written.note.text and "abc123" not in written.note.text
    handoff.close(None, volunteer_id=lan.id)
    later = handoff.add_note(ticket.id, volunteer_id=lan.id, text="Hôm sau bà đã làm được.")
    assert later.ok  # the last holder may still write, after the ticket closed
    stored = handoff.notes(ticket.id)
    assert [n.text for n in stored][1] == "Hôm sau bà đã làm được."
    assert all(CCCD not in n.text for n in stored)


def test_visit_request(store: Store, handoff: Handoff) -> None:
    lan = volunteer(handoff, team(handoff), "lan")
    ticket, _ = handoff.open_ticket(conversation(store), reason="face_fail", now=T0)
    handoff.claim(ticket.id, volunteer_id=lan.id, now=T0)
    asked = handoff.request_visit(None, volunteer_id=lan.id, note="Nhà ở thôn 3", now=T0 + MIN)
    assert asked.ok and asked.ticket is not None and asked.ticket.visit_requested_at == T0 + MIN
    assert asked.note is not None and asked.note.kind == NoteKind.VISIT


def test_rating_bounds_and_once(store: Store, handoff: Handoff) -> None:
    lan = volunteer(handoff, team(handoff), "lan")
    cid = conversation(store)
    ticket, _ = handoff.open_ticket(cid, reason="stuck", now=T0)
    assert handoff.rate(ticket.id, 5).outcome == Outcome.NOT_CLOSED
    handoff.claim(ticket.id, volunteer_id=lan.id, now=T0)
    assert handoff.rating_pending(cid, now=T0) is None  # still open
    handoff.close(ticket.id, volunteer_id=lan.id, now=T0 + MIN)
    pending = handoff.rating_pending(cid, now=T0 + 2 * MIN)
    assert pending is not None and pending.id == ticket.id
    assert handoff.rating_pending(cid, now=T0 + timedelta(days=2)) is None  # too late

    for wrong in (0, 6, -1):
        assert handoff.rate(ticket.id, wrong).outcome == Outcome.BAD_RATING
    assert handoff.rate(999, 3).outcome == Outcome.NOT_FOUND
    rated = handoff.rate(ticket.id, 4, now=T0 + 3 * MIN)
    assert rated.ok and rated.ticket is not None and rated.ticket.rating == 4
    assert rated.ticket.rated_at == T0 + 3 * MIN
    assert handoff.rate(ticket.id, 1).outcome == Outcome.ALREADY_RATED
    assert handoff.rating_pending(cid, now=T0 + 4 * MIN) is None


def test_relay_bookkeeping(store: Store, handoff: Handoff) -> None:
    lan = volunteer(handoff, team(handoff), "lan")
    cid = conversation(store)
    assert handoff.touch_citizen(cid, now=T0) is None  # no ticket: the engine answers
    assert handoff.touch_volunteer(lan.id, now=T0) is None  # no_ticket_claimed
    ticket, _ = handoff.open_ticket(cid, reason="stuck", now=T0)
    waiting = handoff.touch_citizen(cid, now=T0 + MIN)
    assert waiting is not None and waiting.status == TicketStatus.WAITING
    assert waiting.last_citizen_at == T0 + MIN
    handoff.claim(ticket.id, volunteer_id=lan.id, now=T0 + 2 * MIN)
    relayed = handoff.touch_volunteer(lan.id, now=T0 + 3 * MIN)
    assert (
        relayed is not None
        and relayed.chat_id == "c1"
        and relayed.last_volunteer_at == T0 + 3 * MIN
    )
    seen = handoff.get_volunteer(lan.id)
    assert seen is not None and seen.last_active_at == T0 + 3 * MIN
    to_volunteer = handoff.touch_citizen(cid, now=T0 + 4 * MIN)
    assert to_volunteer is not None and to_volunteer.volunteer_id == lan.id

    assert handoff.set_notified(ticket.id, channel=CHANNEL, chat_id="-100", message_id="7")
    assert handoff.set_notified(ticket.id, channel=CHANNEL, chat_id="-200", message_id="9")
    posts = handoff.get_ticket(ticket.id)
    assert posts is not None and [p.message_id for p in posts.notified] == ["7", "9"]


def test_group_chat_follows_team_and_repost(store: Store, handoff: Handoff) -> None:
    province = (CHANNEL, "-100")
    ha_long = team(handoff)
    ticket, _ = handoff.open_ticket(
        conversation(store), reason="stuck", commune_id="ha_long", now=T0
    )
    assert handoff.group_chat(ticket, province=province) == province  # the team has no group
    handoff.set_team_chat(ha_long.id, channel=CHANNEL, chat_id="-200")
    assert handoff.group_chat(ticket, province=province) == (CHANNEL, "-200")
    (reposted,) = handoff.due_reposts(T0 + timedelta(hours=1))
    assert handoff.group_chat(reposted, province=province) == province
    lone, _ = handoff.open_ticket(conversation(store, "c2"), reason="stuck", now=T0)
    assert handoff.group_chat(lone, province=None) is None


def test_citizen_side_close_and_forget(store: Store, handoff: Handoff) -> None:
    lan = volunteer(handoff, team(handoff), "lan")
    cid = conversation(store, text=f"số tôi {PHONE}")
    ticket, _ = handoff.open_ticket(cid, reason="stuck", now=T0)
    cancelled = handoff.close_for_conversation(cid, now=T0 + MIN)
    assert cancelled is not None and cancelled.close_reason == CloseReason.ABANDONED
    assert handoff.close_for_conversation(cid) is None

    ticket, _ = handoff.open_ticket(cid, reason="stuck", now=T0 + 2 * MIN)
    handoff.claim(ticket.id, volunteer_id=lan.id, now=T0 + 2 * MIN)
    handoff.add_note(None, volunteer_id=lan.id, text="Bà ở thôn 3")
    with store.conversation(channel=CHANNEL, chat_id="c1") as tx:
        tx.forget()
        closed = handoff.forget_conversation(cid, now=T0 + 3 * MIN, tx=tx)
    assert closed is not None and closed.status == TicketStatus.CLOSED
    forgotten = handoff.get_ticket(ticket.id)
    assert forgotten is not None and forgotten.context == ()
    assert [n.text for n in handoff.notes(ticket.id)] == [""]
    assert handoff.claimed_ticket_of_volunteer(lan.id) is None


# --- timers ----------------------------------------------------------------------------


def test_due_reposts_once_from_stored_times(store: Store, handoff: Handoff) -> None:
    old, _ = handoff.open_ticket(conversation(store), reason="stuck", now=T0)
    handoff.open_ticket(conversation(store, "c2"), reason="stuck", now=T0 + 5 * MIN)
    assert handoff.due_reposts(T0 + 10 * MIN - timedelta(seconds=1), after_seconds=600) == []
    due = handoff.due_reposts(T0 + 10 * MIN, after_seconds=600)
    assert [t.id for t in due] == [old.id] and due[0].reposted_at == T0 + 10 * MIN
    assert handoff.due_reposts(T0 + 11 * MIN, after_seconds=600) == []  # once
    later = handoff.due_reposts(T0 + 15 * MIN)  # the policy's default, 10 minutes
    assert len(later) == 1 and later[0].id != old.id


def test_due_returns_when_the_volunteer_is_silent(store: Store, handoff: Handoff) -> None:
    lan = volunteer(handoff, team(handoff), "lan")
    cid = conversation(store)
    ticket, _ = handoff.open_ticket(cid, reason="stuck", now=T0)
    handoff.claim(ticket.id, volunteer_id=lan.id, now=T0)
    # No word since the claim.
    assert handoff.due_returns(T0 + 14 * MIN, silent_seconds=900) == []
    returned = handoff.due_returns(T0 + 15 * MIN, silent_seconds=900)
    assert [(r.ticket.id, r.volunteer_id) for r in returned] == [(ticket.id, lan.id)]
    assert returned[0].ticket.status == TicketStatus.WAITING
    assert returned[0].ticket.waiting_since == T0 + 15 * MIN
    assert [n.kind for n in handoff.notes(ticket.id)] == [NoteKind.RETURNED]

    # The volunteer spoke last: it is the citizen's turn, nothing is returned.
    handoff.claim(ticket.id, volunteer_id=lan.id, now=T0 + 20 * MIN)
    handoff.touch_volunteer(lan.id, now=T0 + 21 * MIN)
    assert handoff.due_returns(T0 + 60 * MIN, silent_seconds=900) == []
    # The citizen answered and the volunteer went quiet.
    handoff.touch_citizen(cid, now=T0 + 62 * MIN)
    assert len(handoff.due_returns(T0 + 63 * MIN, silent_seconds=900)) == 1


def test_expire_old_waiting_and_idle_claimed_tickets(store: Store, handoff: Handoff) -> None:
    lan = volunteer(handoff, team(handoff), "lan")
    waiting, _ = handoff.open_ticket(conversation(store), reason="stuck", now=T0)
    claimed, _ = handoff.open_ticket(conversation(store, "c2"), reason="stuck", now=T0)
    handoff.claim(claimed.id, volunteer_id=lan.id, now=T0 + MIN)
    handoff.touch_volunteer(lan.id, now=T0 + 2 * MIN)
    day = timedelta(days=1)
    assert handoff.expire(T0 + day - MIN) == []
    expired = handoff.expire(T0 + day + 2 * MIN)
    assert [(e.ticket.id, e.was, e.ticket.close_reason) for e in expired] == [
        (waiting.id, TicketStatus.WAITING, CloseReason.EXPIRED),
        (claimed.id, TicketStatus.CLAIMED, CloseReason.ABANDONED),
    ]
    assert handoff.expire(T0 + 2 * day) == []


# --- volunteers, invites, pairing --------------------------------------------------------


def test_invite_works_once(store: Store, handoff: Handoff) -> None:
    ha_long = team(handoff)
    invite = handoff.create_invite(ha_long.id, created_by="cli", now=T0)
    assert len(invite.code) == 10 and invite.expires_at == T0 + timedelta(days=7)
    first = handoff.redeem_invite(
        invite.code.lower(), channel=CHANNEL, user_id="1", name="Lan", now=T0
    )
    assert first.ok and first.volunteer is not None and first.team == ha_long
    assert first.volunteer.team_id == ha_long.id and first.volunteer.role == Role.VOLUNTEER
    second = handoff.redeem_invite(invite.code, channel=CHANNEL, user_id="2", name="Hoa", now=T0)
    assert second.outcome == RedeemOutcome.USED and second.text_key == "invite_used"
    assert handoff.find_volunteer(channel=CHANNEL, user_id="2") is None
    unknown = handoff.redeem_invite("NOPE", channel=CHANNEL, user_id="2", name="Hoa", now=T0)
    assert unknown.outcome == RedeemOutcome.UNKNOWN


def test_invite_race_has_one_winner(store: Store, handoff: Handoff) -> None:
    invite = handoff.create_invite(team(handoff).id, created_by="cli", now=T0)
    results = in_parallel(
        2,
        lambda n: handoff.redeem_invite(
            invite.code, channel=CHANNEL, user_id=f"u{n}", name=f"Bạn {n}", now=T0
        ),
    )
    assert sorted(r.outcome for r in results) == [RedeemOutcome.OK, RedeemOutcome.USED]
    assert len(handoff.list_volunteers()) == 1


def test_expired_invite_is_refused(store: Store, handoff: Handoff) -> None:
    invite = handoff.create_invite(
        team(handoff).id, created_by="cli", ttl=timedelta(hours=1), now=T0
    )
    late = handoff.redeem_invite(
        invite.code, channel=CHANNEL, user_id="1", name="Lan", now=T0 + timedelta(hours=1)
    )
    assert late.outcome == RedeemOutcome.EXPIRED
    assert handoff.list_volunteers() == []


def test_a_new_invite_moves_and_enables_a_known_volunteer(store: Store, handoff: Handoff) -> None:
    ha_long, co_to = team(handoff), team(handoff, "Đội hình lưu động Cô Tô", "co_to")
    lan = volunteer(handoff, ha_long, "lan")
    handoff.disable(lan.id)
    again = handoff.redeem_invite(
        handoff.create_invite(co_to.id, role=Role.COORDINATOR, created_by="cli").code,
        channel=CHANNEL,
        user_id="lan",
        name="Nguyễn Thị Lan",
    )
    assert again.ok and again.rejoined and again.volunteer is not None
    assert again.volunteer.id == lan.id and again.volunteer.team_id == co_to.id
    assert again.volunteer.is_coordinator and not again.volunteer.disabled
    assert again.volunteer.name == "Nguyễn Thị Lan"


def test_teams_and_volunteer_settings(store: Store, handoff: Handoff) -> None:
    ha_long = team(handoff)
    assert handoff.create_team("  đoàn PHƯỜNG  hạ long ") == ha_long  # the same team
    assert handoff.find_team("ĐOÀN PHƯỜNG HẠ LONG") == ha_long
    assert handoff.find_team("Đoàn xã Quảng La") is None
    co_to = handoff.create_team("Đội hình lưu động Cô Tô", kind=TeamKind.MOBILE)
    assert [t.name for t in handoff.list_teams()] == [ha_long.name, co_to.name]
    with_chat = handoff.set_team_chat(co_to.id, channel=CHANNEL, chat_id="-1001")
    assert with_chat is not None and with_chat.chat_id == "-1001"

    lan = volunteer(handoff, ha_long, "lan")
    off = handoff.set_available(lan.id, False)
    assert off is not None and not off.available
    moved = handoff.move(lan.id, co_to.id)
    assert moved is not None and moved.team_id == co_to.id
    assert handoff.list_volunteers(ha_long.id) == []
    assert [v.id for v in handoff.list_volunteers(co_to.id)] == [lan.id]
    languages = handoff.set_languages(lan.id, ["vi", "en"])
    assert languages is not None and languages.languages == ("vi", "en")
    with pytest.raises(ValueError, match="team 999"):
        handoff.move(lan.id, 999)


def test_disable_returns_the_held_ticket(store: Store, handoff: Handoff) -> None:
    lan = volunteer(handoff, team(handoff), "lan")
    ticket, _ = handoff.open_ticket(conversation(store), reason="stuck", now=T0)
    handoff.claim(ticket.id, volunteer_id=lan.id, now=T0)
    result = handoff.disable(lan.id, now=T0 + MIN)
    assert result is not None and result.volunteer.disabled
    assert result.returned is not None and result.returned.status == TicketStatus.WAITING
    assert handoff.disable(999) is None


def test_pairing_offers_the_last_helper_only_when_available(store: Store, handoff: Handoff) -> None:
    ha_long = team(handoff)
    lan = volunteer(handoff, ha_long, "lan")
    minh = volunteer(handoff, team(handoff, "Đội hình lưu động Cô Tô", "co_to"), "minh")
    cid = conversation(store)
    assert handoff.preferred_volunteer(cid) is None
    ticket, _ = handoff.open_ticket(cid, reason="stuck", now=T0)
    handoff.claim(ticket.id, volunteer_id=lan.id, now=T0)
    handoff.transfer(None, volunteer_id=lan.id, now=T0 + MIN)
    assert handoff.preferred_volunteer(cid) is None  # a transfer is not help
    handoff.claim(ticket.id, volunteer_id=minh.id, now=T0 + 2 * MIN)
    handoff.close(None, volunteer_id=minh.id, reason=CloseReason.DONE, now=T0 + 3 * MIN)
    assert handoff.preferred_volunteer(cid) == minh.id

    # Next time the pairing lets Minh take it, though it belongs to Hạ Long's team.
    again, _ = handoff.open_ticket(cid, reason="stuck", commune_id="ha_long", now=T0 + 4 * MIN)
    handoff.set_available(minh.id, False)
    assert handoff.preferred_volunteer(cid) is None
    handoff.set_available(minh.id, True)
    assert handoff.preferred_volunteer(cid) == minh.id
    assert handoff.claim(again.id, volunteer_id=minh.id).ok
    handoff.close(None, volunteer_id=minh.id)
    handoff.disable(minh.id)
    assert handoff.preferred_volunteer(cid) is None


# --- passwords -------------------------------------------------------------------------


def test_password_hash_and_verify(store: Store, handoff: Handoff) -> None:
    ha_long = team(handoff)
    lan = volunteer(handoff, ha_long, "lan", Role.COORDINATOR, name="Nguyễn Thị Lan")
    assert handoff.verify_password(lan.id, "whatever1") is None  # no password yet
    with pytest.raises(ValueError, match="at least 8"):
        handoff.set_password(lan.id, "short")
    updated = handoff.set_password(lan.id, "mật khẩu dài")
    assert updated is not None and updated.has_password
    found = handoff.verify_password(lan.id, "mật khẩu dài")
    assert found is not None and found.id == lan.id
    decomposed = "ma\u0323\u0302t kha\u0302\u0309u da\u0300i"  # the same words, NFD
    assert handoff.verify_password("nguyễn thị lan", decomposed) is not None
    assert handoff.verify_password(str(lan.id), "mật khẩu dài") is not None
    assert handoff.verify_password(lan.id, "mật khẩu sai") is None
    assert handoff.verify_password("Không Có Ai", "mật khẩu dài") is None

    twin = volunteer(handoff, ha_long, "lan2", name="Nguyễn Thị Lan")
    handoff.set_password(twin.id, "mật khẩu dài")
    assert handoff.verify_password("Nguyễn Thị Lan", "mật khẩu dài") is None  # ambiguous
    handoff.disable(lan.id)
    assert handoff.verify_password(lan.id, "mật khẩu dài") is None


def test_password_hashes_are_salted_and_malformed_ones_fail() -> None:
    first, second = hash_password("mật khẩu dài"), hash_password("mật khẩu dài")
    assert first != second and first.startswith("scrypt$")
    assert check_password("mật khẩu dài", first) and check_password("mật khẩu dài", second)
    assert not check_password("mật khẩu dà", first)
    for broken in ("", "scrypt$1$2", "md5$1$1$1$AA==$AA==", "scrypt$x$8$1$AA==$AA=="):
        assert not check_password("mật khẩu dài", broken)


# --- hours and waits -------------------------------------------------------------------


def vn(hour: int, minute: int = 0, day: int = 2) -> datetime:
    """A time in Vietnam (UTC+7) as aware UTC."""
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC) - timedelta(hours=7)


def test_volunteer_hours(handoff: Handoff) -> None:
    assert not handoff.is_volunteer_time(vn(6, 59))
    assert handoff.is_volunteer_time(vn(7))
    assert handoff.is_volunteer_time(vn(20, 59))
    assert not handoff.is_volunteer_time(vn(21))
    assert handoff.next_volunteer_time(vn(10)) == vn(10)
    assert handoff.next_volunteer_time(vn(5)) == vn(7)
    assert handoff.next_volunteer_time(vn(22)) == vn(7, day=3)
    assert handoff.next_volunteer_time(vn(22)).tzinfo == UTC

    assert VolunteerHours().values(vn(22)) == {
        "start": 7,
        "end": 21,
        "time": "07:00",
        "date": "03/03",
    }
    assert VolunteerHours().values(vn(5))["date"] == "02/03"

    night = VolunteerHours(start=20, end=6)
    assert night.is_open(vn(23)) and night.is_open(vn(5)) and not night.is_open(vn(12))
    assert night.next_open(vn(12)) == vn(20)
    assert VolunteerHours(start=0, end=24).is_open(vn(3))
    with pytest.raises(ConfigError, match="25"):
        VolunteerHours(start=25)
    with pytest.raises(ConfigError, match="Mars/Olympus"):
        VolunteerHours(tz="Mars/Olympus")


def test_wait_estimate_is_the_median_of_recent_claims(store: Store, handoff: Handoff) -> None:
    ha_long, co_to = team(handoff), team(handoff, "Đội hình lưu động Cô Tô", "co_to")
    assert handoff.wait_estimate(ha_long.id, now=T0) == 15  # no data yet
    lan = volunteer(handoff, ha_long, "lan")
    for n, minutes in enumerate([2, 4, 10]):
        ticket, _ = handoff.open_ticket(
            conversation(store, f"h{n}"), reason="stuck", commune_id="ha_long", now=T0
        )
        handoff.claim(ticket.id, volunteer_id=lan.id, now=T0 + minutes * MIN)
        handoff.close(None, volunteer_id=lan.id, now=T0 + 20 * MIN)
    assert handoff.wait_estimate(ha_long.id, now=T0 + 30 * MIN) == 4
    assert handoff.wait_estimate(None, now=T0 + 30 * MIN) == 4
    assert handoff.wait_estimate(co_to.id, now=T0 + 30 * MIN) == 15
    assert handoff.wait_estimate(ha_long.id, now=T0 + timedelta(days=60)) == 15  # stale


# --- texts and payloads ----------------------------------------------------------------


def test_the_shipped_texts_load(texts: HandoffTexts) -> None:
    for key in TEXT_KEYS:
        assert texts.text(key, "vi") and texts.text(key, "en")
    for key in BUTTON_KEYS:
        assert texts.button(key, "vi")
    assert texts.text("ticket_waiting", "vi", minutes=15).startswith(
        "Mình đang tìm một bạn tình nguyện viên. Thường mất khoảng 15 phút."
    )
    assert texts.text("claimed_by", "vi", name="Lan") == "Lan đã nhận hỗ trợ"
    assert texts.text("no_ticket_claimed", "vi") == "Bạn chưa nhận hỗ trợ ai."
    assert texts.text("ticket_waiting", "zh", minutes=3) == texts.text(
        "ticket_waiting", "vi", minutes=3
    )
    assert texts.reason("nfc_fail") == "không quét được chip căn cước (NFC)"
    assert texts.reason("brand_new_reason") == "brand_new_reason"
    assert texts.close_reason(CloseReason.EXPIRED, "en") == "waited too long, nobody took it"


def test_a_missing_text_names_the_file_and_key(tmp_path: Path) -> None:
    broken = tmp_path / "handoff.yaml"
    source = (ROOT / "knowledge" / "handoff.yaml").read_text(encoding="utf-8")
    broken.write_text(source.replace("  claimed_by:", "  claimed_byy:"), encoding="utf-8")
    with pytest.raises(FlowLoadError) as caught:
        load_handoff_texts(broken)
    assert "handoff.yaml:" in str(caught.value) and "claimed_by" in str(caught.value)


def test_refusal_texts(store: Store, handoff: Handoff, texts: HandoffTexts) -> None:
    ha_long = team(handoff)
    lan, hoa = volunteer(handoff, ha_long, "lan", name="Lan"), volunteer(handoff, ha_long, "hoa")
    ticket, _ = handoff.open_ticket(conversation(store), reason="stuck", now=T0)
    won = handoff.claim(ticket.id, volunteer_id=lan.id)
    assert texts.refusal(won) is None
    taken = handoff.claim(ticket.id, volunteer_id=hoa.id)
    assert texts.refusal(taken) == "Lan đã nhận yêu cầu này rồi."
    other, _ = handoff.open_ticket(conversation(store, "c2"), reason="stuck", now=T0)
    busy = handoff.claim(other.id, volunteer_id=lan.id)
    assert texts.refusal(busy, "vi") == (
        f"Bạn đang hỗ trợ yêu cầu #{ticket.id}. Gõ /done hoặc /transfer trước khi nhận yêu cầu mới."
    )
    assert texts.refusal(handoff.close(None, volunteer_id=hoa.id)) == "Bạn chưa nhận hỗ trợ ai."


def test_payloads_round_trip(texts: HandoffTexts) -> None:
    assert parse_payload(claim_payload(42)) == ("claim", 42, None)
    assert parse_payload(rate_payload(42, 5)) == ("rate", 42, 5)
    for other in ("g:human", "c:flow:step:1", "h:claim:", "h:claim:x", "h:rate:1", "h:rate:1:x"):
        assert parse_payload(other) is None
    button = claim_button(texts, 42)
    assert button.label == "Nhận hỗ trợ" and button.payload == "h:claim:42"
    assert len(button.payload.encode()) <= 64
    assert [b.label for b in rating_buttons(7)] == ["1", "2", "3", "4", "5"]


def test_an_attachment_reference_reaches_the_ticket_and_goes_with_forget(
    store: Store, handoff: Handoff, texts: HandoffTexts
) -> None:
    photo = Media(MediaKind.PHOTO, ref="https://zalo.example/anh-001234567890.jpg")
    with store.conversation(channel=CHANNEL, chat_id="c1") as tx:
        tx.record_inbound(Incoming(channel=CHANNEL, chat_id="c1", media=photo))
        assert handoff.keep_media(tx.conversation_id, photo, tx=tx)
        cid = tx.conversation_id
    ticket, _ = handoff.open_ticket(cid, reason="media", now=T0)
    line = ticket.context[-1]
    # The reference is kept as it is (digits in a URL are not an ID number to mask).
    assert (line.media_kind, line.media_ref) == ("photo", photo.ref)
    assert context_text(ticket, texts).endswith("👤 Người dân: [ảnh]")
    voice = ContextLine("citizen", "", T0, media_kind="voice", media_ref="AwAC-voice")
    assert handoff.add_to_context(ticket.id, voice)
    kept = handoff.get_ticket(ticket.id)
    assert kept is not None and [c.media_ref for c in kept.context][-2:] == [
        photo.ref,
        "AwAC-voice",
    ]
    with store.conversation(channel=CHANNEL, chat_id="c1") as tx:
        tx.forget()
        handoff.forget_conversation(cid, now=T0 + MIN, tx=tx)
    with handoff.store.begin(write=False) as h:
        assert h.recent_messages(cid, limit=10) == []
    forgotten = handoff.get_ticket(ticket.id)
    assert forgotten is not None and forgotten.context == ()
    with store.conversation(channel=CHANNEL, chat_id="c1") as tx:  # nothing to attach to
        assert not handoff.keep_media(tx.conversation_id, photo, tx=tx)


def test_forget_relays_drops_or_masks_what_went_to_other_chats(
    store: Store, handoff: Handoff
) -> None:
    cid = conversation(store)
    ticket, _ = handoff.open_ticket(cid, reason="stuck")
    number = ticket.id
    with store.conversation(channel=CHANNEL, chat_id="volunteer-1") as tx:
        ids = tx.queue_outgoing(
            [
                Outgoing("volunteer-1", "Chào mừng Lan"),
                Outgoing(
                    "volunteer-1",
                    f"👤 Người dân #{number}: [ảnh]",
                    (media_button(MediaKind.PHOTO, "AgAC-1"),),
                ),
                Outgoing("volunteer-1", f"👤 Người dân #{number}: nhà tôi ở xóm Đông"),
                Outgoing("volunteer-1", f"👤 Người dân #{number}0: another citizen"),
            ]
        )
    for delivered in ids[:2]:
        store.mark_sent(delivered)  # the welcome and the photo went out; the rest wait

    def prefixes(ticket_id: int) -> list[str]:
        return [f"👤 Người dân #{ticket_id}:"]

    assert handoff.forget_relays(cid, prefixes=prefixes, mask="[xóa]") == 2
    rows = store.outbox_after(channel=CHANNEL, chat_id="volunteer-1")
    # The welcome as it was; the photo masked, its file reference gone; the words not
    # yet sent dropped; ticket #…0 is another citizen's.
    assert [(r.text, r.buttons) for r in rows] == [
        ("Chào mừng Lan", ()),
        ("[xóa]", ()),
        (f"👤 Người dân #{number}0: another citizen", ()),
    ]
    # The citizen's own chat is not touched here (ConversationTx.forget deletes it).
    assert store.outbox_after(channel=CHANNEL, chat_id="c1")[0].text == "Bạn cần giúp gì?"
