"""The outbox sender with a scripted channel (no network: the channel is a plain object
that records what it was asked to send, or raises what the script says), on both
databases. Telegram over real HTTP is tested in tests/webhook/test_telegram.py."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import defaultdict, deque
from collections.abc import Sequence
from datetime import timedelta

import pytest

from bot.errors import ChatBlocked, PermanentSend, RetryableSend
from bot.messages import Outgoing
from bot.outbox import OutboxSender, SenderPolicy, TokenBucket
from bot.store import ConversationStatus, OutboxItem, OutboxStatus, Store
from bot.store.types import utcnow

CHANNEL = "scripted"
FAST = SenderPolicy(
    rate_per_second=1000,
    burst=100,
    chat_interval=0,
    backoff=0.01,
    backoff_cap=0.05,
    max_attempts=4,
    lease=5,
    idle=0.02,
)


class ScriptedChannel:
    """Sends by appending to `sent`; `fail(chat, *errors)` makes the next sends to that
    chat raise those errors, in turn."""

    name = CHANNEL

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, float]] = []
        self.tries: list[tuple[str, str, float]] = []
        self.typing_shown: list[str] = []
        self._failures: dict[str, deque[Exception]] = defaultdict(deque)

    def fail(self, chat_id: str, *errors: Exception) -> None:
        self._failures[chat_id].extend(errors)

    async def send(self, item: OutboxItem) -> str:
        await asyncio.sleep(0)
        self.tries.append((item.chat_id, item.text, time.monotonic()))
        failures = self._failures[item.chat_id]
        if failures:
            raise failures.popleft()
        self.sent.append((item.chat_id, item.text, time.monotonic()))
        return f"ext-{len(self.sent)}"

    async def typing(self, chat_id: str) -> None:
        self.typing_shown.append(chat_id)

    def texts(self, chat_id: str) -> list[str]:
        return [text for chat, text, _ in self.sent if chat == chat_id]


def queue(store: Store, chat_id: str, *texts: str) -> list[int]:
    with store.conversation(channel=CHANNEL, chat_id=chat_id) as tx:
        return tx.queue_outgoing([Outgoing(chat_id=chat_id, text=t) for t in texts])


def statuses(store: Store, chat_id: str) -> list[OutboxStatus]:
    return [i.status for i in store.outbox_after(channel=CHANNEL, chat_id=chat_id)]


async def drain(sender: OutboxSender, timeout: float = 10) -> None:
    """run_once until nothing is waiting any more."""
    deadline = time.monotonic() + timeout
    while True:
        await sender.run_once()
        waiting = await asyncio.to_thread(_waiting, sender.store)
        if not waiting:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{waiting} messages still waiting")
        await asyncio.sleep(0.01)


def _waiting(store: Store) -> int:
    # run_once marks everything it claimed before returning: nothing is left leased.
    return len(store.due_outbox(channel=CHANNEL, now=utcnow() + timedelta(days=1)))


@pytest.fixture
def channel() -> ScriptedChannel:
    return ScriptedChannel()


@pytest.fixture
def sender(store: Store, channel: ScriptedChannel) -> OutboxSender:
    return OutboxSender(store, channel, FAST, rng=random.Random(7))


async def test_delivers_every_chat_in_order(
    store: Store, channel: ScriptedChannel, sender: OutboxSender
) -> None:
    queue(store, "a", "a1", "a2", "a3")
    queue(store, "b", "b1", "b2")
    await drain(sender)
    assert channel.texts("a") == ["a1", "a2", "a3"]
    assert channel.texts("b") == ["b1", "b2"]
    items = store.outbox_after(channel=CHANNEL, chat_id="a")
    assert [i.status for i in items] == [OutboxStatus.SENT] * 3
    assert all(i.external_id and i.external_id.startswith("ext-") for i in items)
    assert sender.stats.sent == 5 and sender.stats.claimed == 5


async def test_sends_that_finish_together_are_recorded_together(
    store: Store, channel: ScriptedChannel, sender: OutboxSender
) -> None:
    chats = [f"g{n}" for n in range(6)]
    for chat in chats:
        queue(store, chat, f"gọi 0912345678 ({chat})")
    batches: list[list[tuple[int, str | None]]] = []
    record = store.mark_sent_many

    def counted(sent: Sequence[tuple[int, str | None]]) -> None:
        batches.append(list(sent))
        record(sent)

    store.mark_sent_many = counted  # type: ignore[method-assign]
    assert await sender.run_once() == 6
    # Every delivery returned only once its record was committed.
    items = [i for chat in chats for i in store.outbox_after(channel=CHANNEL, chat_id=chat)]
    assert [i.status for i in items] == [OutboxStatus.SENT] * 6
    assert sorted(i.external_id or "" for i in items) == sorted(f"ext-{n}" for n in range(1, 7))
    assert all("0912345678" not in i.text for i in items)  # kept redacted once sent
    assert sum(len(b) for b in batches) == 6 and len(batches) < 6
    # A row forgotten meanwhile (the citizen said /stop) is no error.
    record([(10**9, "ext-gone")])


async def test_a_429_holds_that_chat_for_retry_after_only(
    store: Store, channel: ScriptedChannel, sender: OutboxSender
) -> None:
    queue(store, "a", "a1", "a2")
    queue(store, "b", "b1", "b2")
    channel.fail("a", RetryableSend("429 Too Many Requests", retry_after=30))
    before = utcnow()
    await sender.run_once()  # a1 refused, b1 sent
    await sender.run_once()  # b2 sent: chat b does not wait for chat a
    assert channel.texts("b") == ["b1", "b2"] and channel.texts("a") == []
    a1, a2 = store.outbox_after(channel=CHANNEL, chat_id="a")
    assert (a1.status, a2.status, a1.attempts) == (OutboxStatus.PENDING, OutboxStatus.PENDING, 1)
    assert a1.next_attempt_at >= before + timedelta(seconds=30)  # not before retry_after
    assert await sender.run_once() == 0
    assert sender.stats.rate_limited == 1
    # When the time comes, the chat goes on in order.
    store.mark_retry(a1.id, at=utcnow(), error="429")
    await drain(sender)
    assert channel.texts("a") == ["a1", "a2"]


async def test_5xx_and_timeouts_back_off_then_succeed(
    store: Store, channel: ScriptedChannel, sender: OutboxSender
) -> None:
    queue(store, "a", "a1", "a2")
    channel.fail("a", RetryableSend("500 Internal Server Error"), RetryableSend("timed out"))
    await drain(sender)
    assert channel.texts("a") == ["a1", "a2"]
    assert sender.stats.retried == 2
    assert [t for _, t, _ in channel.tries] == ["a1", "a1", "a1", "a2"]


async def test_gives_up_after_max_attempts_and_goes_on(
    store: Store,
    channel: ScriptedChannel,
    sender: OutboxSender,
    caplog: pytest.LogCaptureFixture,
) -> None:
    queue(store, "a", "a1", "a2")
    channel.fail("a", *[RetryableSend("502 Bad Gateway")] * FAST.max_attempts)
    with caplog.at_level(logging.ERROR, logger="bot.outbox"):
        await drain(sender)
    assert channel.texts("a") == ["a2"]
    assert statuses(store, "a") == [OutboxStatus.FAILED, OutboxStatus.SENT]
    failed = store.outbox_after(channel=CHANNEL, chat_id="a")[0]
    assert failed.attempts == FAST.max_attempts and failed.last_error == "502 Bad Gateway"
    assert "given up after 4 attempts" in caplog.text
    assert sender.stats.failed == 1


async def test_a_refused_message_fails_and_the_chat_goes_on(
    store: Store, channel: ScriptedChannel, sender: OutboxSender
) -> None:
    queue(store, "a", "a1", "a2")
    channel.fail("a", PermanentSend("400 Bad Request: message is too long"))
    await drain(sender)
    assert channel.texts("a") == ["a2"]
    assert statuses(store, "a") == [OutboxStatus.FAILED, OutboxStatus.SENT]


async def test_a_blocked_chat_is_marked_and_gets_nothing_more(
    store: Store, channel: ScriptedChannel, sender: OutboxSender
) -> None:
    queue(store, "a", "a1", "a2", "a3")
    queue(store, "b", "b1")
    channel.fail("a", ChatBlocked("403 Forbidden: bot was blocked by the user"))
    await drain(sender)
    assert [t for chat, t, _ in channel.tries if chat == "a"] == ["a1"]
    assert statuses(store, "a") == [OutboxStatus.FAILED] * 3
    assert channel.texts("b") == ["b1"]
    with store.conversation(channel=CHANNEL, chat_id="a") as tx:
        assert tx.status is ConversationStatus.BLOCKED
    assert sender.stats.blocked == 1


async def test_a_bug_in_a_channel_is_retried_not_fatal(
    store: Store, channel: ScriptedChannel, sender: OutboxSender
) -> None:
    queue(store, "a", "a1")
    channel.fail("a", KeyError("oops"))
    await drain(sender)
    assert channel.texts("a") == ["a1"]
    assert store.outbox_after(channel=CHANNEL, chat_id="a")[0].attempts == 2


async def test_one_chat_gets_one_message_a_chat_interval(store: Store) -> None:
    channel = ScriptedChannel()
    policy = SenderPolicy(
        rate_per_second=1000, burst=100, chat_interval=0.8, idle=0.02, typing_after=0.05
    )
    sender = OutboxSender(store, channel, policy)
    queue(store, "a", "a1", "a2")
    await drain(sender)
    [(_, _, first), (_, _, second)] = channel.sent
    assert second - first >= 0.8
    assert channel.typing_shown == ["a"]  # "typing…" while the citizen waits


def test_backoff_doubles_with_jitter_up_to_the_cap(store: Store) -> None:
    policy = SenderPolicy(backoff=1, backoff_cap=300)
    sender = OutboxSender(store, ScriptedChannel(), policy, rng=random.Random(1))
    for attempts, full in [(1, 1), (2, 2), (3, 4), (6, 32), (9, 256), (10, 300), (50, 300)]:
        delays = [sender.backoff(attempts) for _ in range(50)]
        assert all(full / 2 <= d <= full for d in delays), (attempts, delays)
        assert len(set(delays)) > 1  # jittered


async def test_token_bucket_keeps_the_rate() -> None:
    bucket = TokenBucket(rate=20, burst=2)
    started = time.monotonic()
    for _ in range(8):
        await bucket.take()
    # 2 at once, then 6 more at 20 a second: not before 0.3 s.
    assert time.monotonic() - started >= 0.29


async def test_start_wake_and_stop(
    store: Store, channel: ScriptedChannel, sender: OutboxSender
) -> None:
    sender.start()
    try:
        queue(store, "a", "a1", "a2")
        sender.wake()
        for _ in range(500):
            if len(channel.sent) == 2:
                break
            await asyncio.sleep(0.01)
        assert channel.texts("a") == ["a1", "a2"]
    finally:
        await sender.stop()
    await sender.stop()  # twice is harmless
    queue(store, "a", "a3")
    await asyncio.sleep(0.1)
    assert channel.texts("a") == ["a1", "a2"]  # stopped means stopped


async def test_two_senders_share_the_work_without_sending_twice(
    store: Store, channel: ScriptedChannel
) -> None:
    for n in range(15):
        queue(store, f"c{n}", *[f"c{n}-{k}" for k in range(4)])
    senders = [OutboxSender(store, channel, FAST) for _ in range(2)]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(s.run_forever(stop)) for s in senders]
    try:
        for _ in range(1000):
            if len(channel.sent) >= 60:
                break
            await asyncio.sleep(0.01)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    texts = [t for _, t, _ in channel.sent]
    assert len(texts) == 60 and len(set(texts)) == 60
    for n in range(15):
        assert channel.texts(f"c{n}") == [f"c{n}-{k}" for k in range(4)]
    assert sum(s.stats.sent for s in senders) == 60


async def test_a_database_outage_does_not_stop_the_sender(caplog: pytest.LogCaptureFixture) -> None:
    down = Store("postgresql://nobody@127.0.0.1:1/none?connect_timeout=2")
    try:
        sender = OutboxSender(down, ScriptedChannel(), FAST)
        with caplog.at_level(logging.ERROR, logger="bot.outbox"):
            assert await sender.run_once() == 0
            stop = asyncio.Event()
            task = asyncio.create_task(sender.run_forever(stop))
            await asyncio.sleep(0.1)
            stop.set()
            await task
        assert sender.stats.store_errors >= 2
        assert "claiming messages failed" in caplog.text
    finally:
        down.dispose()
