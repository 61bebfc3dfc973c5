"""HANDOFF_* settings reach the running desk: the re-post, return and expiry times and
the volunteer hours an operator sets take effect (bot/handoff_settings.py). Both
databases (`store`)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.config import get_settings
from bot.conversation import build_desk
from bot.errors import ConfigError
from bot.handoff_settings import HandoffSettings, get_handoff_settings
from bot.store import Store, TicketStatus
from bot.store.types import utcnow

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    monkeypatch.setenv("KNOWLEDGE_DIR", str(ROOT / "knowledge"))
    monkeypatch.setenv("VOLUNTEER_CHAT_ID", "-100555")
    get_settings.cache_clear()
    get_handoff_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()
    get_handoff_settings.cache_clear()


def test_the_defaults_suit_a_pilot() -> None:
    policy = HandoffSettings(_env_file=None).policy  # type: ignore[call-arg]
    assert (policy.repost_after_seconds, policy.return_after_seconds) == (600, 900)
    assert (policy.hours.start, policy.hours.end) == (7, 21)


def test_the_times_an_operator_sets_take_effect(store: Store, env: pytest.MonkeyPatch) -> None:
    env.setenv("HANDOFF_REPOST_MINUTES", "3")
    env.setenv("HANDOFF_EXPIRE_WAITING_HOURS", "1")
    env.setenv("HANDOFF_HOURS_START", "0")
    env.setenv("HANDOFF_HOURS_END", "0")
    desk = build_desk(store, get_settings())
    with store.conversation(channel="web", chat_id="c1") as tx:
        ticket, _ = desk.handoff.open_ticket(tx.conversation_id, reason="asked_human", tx=tx)
    assert desk.handoff.is_volunteer_time(utcnow() + timedelta(hours=3))  # always on duty
    assert desk.run_timers(utcnow() + timedelta(minutes=2)) == 0
    desk.run_timers(utcnow() + timedelta(minutes=4))  # past 3 minutes: re-posted
    reposted = desk.handoff.get_ticket(ticket.id)
    assert reposted is not None and reposted.reposted_at is not None
    desk.run_timers(utcnow() + timedelta(minutes=61))  # past an hour: expired
    expired = desk.handoff.get_ticket(ticket.id)
    assert expired is not None and expired.status == TicketStatus.CLOSED


def test_an_unknown_time_zone_stops_the_start(env: pytest.MonkeyPatch) -> None:
    env.setenv("HANDOFF_TIMEZONE", "Mars/Olympus")
    with pytest.raises(ConfigError, match="Mars/Olympus"):
        _ = get_handoff_settings().policy
