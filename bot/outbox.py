"""The outbox sender: delivers committed outgoing messages with one channel's `send`.

    claim due rows (one per chat, leased) → wait for the chat's gap and a global token →
    send → mark sent | retry at now + retry_after (429) | back off (5xx, timeout) |
    failed (400, or too many attempts) | chat blocked (403: the rest of the chat fails)

Messages to one chat go out in order: the store hands out only the first undelivered
message of each chat, and the next one only after it is marked. A claim is a lease: if
this process dies between sending and marking, the message is sent again after the
lease (at least once, never lost). Sends that finish together are recorded in one
transaction (a group commit), and a delivery holds its place among the `concurrency`
in flight until its record is committed, so a crash repeats at most `concurrency`
messages. Claims wait a moment (`coalesce`) for other deliveries to finish, so the
database sees one claim for several freed places instead of one claim a message.
Several senders (processes) can run at once; each keeps its own rate limits, so give
each a share of Telegram's limits.

An `AfterSend` hook (the help desk) hears of chosen rows once they are sent (a group
post's message id, to edit it later) and of every row refused for good (a citizen who
blocked the bot, or is outside Zalo's messaging window, mid-handoff).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from bot.config import Settings
from bot.errors import ChannelError, ChatBlocked, PermanentSend, RetryableSend, StoreError
from bot.store import OutboxItem, Store
from bot.store.types import utcnow

log = logging.getLogger(__name__)

# On stop, messages being sent get this long to finish before they are cancelled.
_STOP_GRACE_SECONDS = 10.0


class SendingChannel(Protocol):
    """What the sender needs from a channel (bot/channels/telegram.py has it)."""

    name: str

    async def send(self, item: OutboxItem) -> str:
        """Deliver `item`; return the messenger's id of it. Raises `RetryableSend`,
        `PermanentSend` or `ChatBlocked`."""
        ...

    async def typing(self, chat_id: str) -> None: ...


class AfterSend(Protocol):
    """What happened to a row, for whoever queued it (bot/helpdesk.py has it)."""

    def wants(self, item: OutboxItem) -> bool:
        """Whether `sent` needs to hear of this row; cheap, called in the event loop."""
        ...

    def sent(self, item: OutboxItem, external_id: str) -> None:
        """The row was delivered as message `external_id`; blocking (runs in a thread)."""
        ...

    def failed(self, item: OutboxItem, error: ChannelError) -> None:
        """The row was refused for good (`PermanentSend`, `ChatBlocked`); blocking."""
        ...


@dataclass(frozen=True)
class SenderPolicy:
    """Rates, back-off and leases (see the OUTBOX_* settings)."""

    rate_per_second: float = 25.0
    burst: int = 5
    chat_interval: float = 1.0
    backoff: float = 1.0
    backoff_cap: float = 300.0
    max_attempts: int = 10
    lease: float = 60.0
    concurrency: int = 32
    idle: float = 1.0
    # A chat that must wait this long for its next message sees "typing…" meanwhile.
    typing_after: float = 0.5
    # With deliveries still in flight, claim at most this often (seconds).
    coalesce: float = 0.01

    @classmethod
    def from_settings(cls, settings: Settings) -> SenderPolicy:
        return cls(
            rate_per_second=settings.outbox_rate_per_second,
            burst=settings.outbox_burst,
            chat_interval=settings.outbox_chat_interval_seconds,
            backoff=settings.outbox_backoff_seconds,
            backoff_cap=settings.outbox_backoff_cap_seconds,
            max_attempts=settings.outbox_max_attempts,
            lease=settings.outbox_lease_seconds,
            concurrency=settings.outbox_concurrency,
            idle=settings.outbox_idle_seconds,
        )


@dataclass
class SenderStats:
    """Counters since start, for /metrics: one place, plain ints."""

    claimed: int = 0
    sent: int = 0
    rate_limited: int = 0  # 429: retried after retry_after
    retried: int = 0  # 5xx, timeouts, network: retried after a back-off
    failed: int = 0  # given up, or refused for good (400)
    blocked: int = 0  # 403: the citizen blocked the bot
    store_errors: int = 0  # the database failed the sender; it tries again

    def as_dict(self) -> dict[str, int]:
        return dict(vars(self))


class TokenBucket:
    """At most `rate` tokens a second on average and `burst` at once; `take()` waits."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._clock = clock
        self._tokens = float(burst)
        self._at = clock()
        self._lock = asyncio.Lock()

    async def take(self) -> None:
        async with self._lock:  # waiters queue up in order
            while True:
                now = self._clock()
                self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
                self._at = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                await asyncio.sleep((1 - self._tokens) / self.rate)


@dataclass
class _Running:
    stop: asyncio.Event
    task: asyncio.Task[None]


class OutboxSender:
    """Delivers one channel's outbox. `run_once()` for tests and tools; `start()` /
    `stop()` (or `run_forever(stop_event)`) in the server. `wake()` after queuing
    replies makes them go out at once instead of at the next idle look."""

    def __init__(
        self,
        store: Store,
        channel: SendingChannel,
        policy: SenderPolicy | None = None,
        *,
        rng: random.Random | None = None,
        after: AfterSend | None = None,
    ) -> None:
        self.store = store
        self.channel = channel
        self.after = after
        self.policy = policy or SenderPolicy()
        self.stats = SenderStats()
        self._rng = rng or random.Random()
        self._bucket = TokenBucket(self.policy.rate_per_second, self.policy.burst)
        self._last_send: dict[str, float] = {}  # chat id → monotonic time of the last send
        self._wake = asyncio.Event()
        self._running: _Running | None = None
        # Sends waiting to be recorded (group commit), and the task recording them.
        self._unrecorded: list[tuple[int, str, asyncio.Future[None]]] = []
        self._recording: asyncio.Task[None] | None = None

    # -- running -------------------------------------------------------------------------

    def wake(self) -> None:
        """Look for due messages now. Call it from the sender's event loop."""
        self._wake.set()

    def start(self) -> None:
        """Run the sender in a task of the current event loop until `stop()`."""
        if self._running is None:
            stop = asyncio.Event()
            task = asyncio.create_task(self.run_forever(stop), name=f"outbox-{self.channel.name}")
            self._running = _Running(stop, task)

    async def stop(self) -> None:
        """Stop claiming; let messages being sent finish (a short grace), then return."""
        running, self._running = self._running, None
        if running is not None:
            running.stop.set()
            await running.task

    async def run_once(self) -> int:
        """Claim what is due now and deliver it; returns the number of messages tried."""
        items = await self._claim(self.policy.concurrency)
        if items:
            await asyncio.gather(*(self._deliver(item) for item in items))
        return len(items)

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Deliver until `stop` is set, up to `concurrency` chats at once."""
        in_flight: set[asyncio.Task[None]] = set()

        def finished(task: asyncio.Task[None]) -> None:
            in_flight.discard(task)
            self._wake.set()  # that chat's next message may be due now

        # While busy, claim for a quarter of the places at once, not one at a time.
        batch = max(1, self.policy.concurrency // 4)
        stopping = asyncio.create_task(stop.wait())
        woken = False
        try:
            while not stop.is_set():
                self._wake.clear()
                room = self.policy.concurrency - len(in_flight)
                busy = woken and bool(in_flight) and room < batch
                items = await self._claim(room) if room > 0 and not busy else []
                for item in items:
                    task = asyncio.create_task(self._deliver(item))
                    in_flight.add(task)
                    task.add_done_callback(finished)
                if items and len(items) == room:
                    continue  # more may be due right now
                woken = await _first_of(self._wake, stopping, timeout=self.policy.idle)
                if woken and in_flight and self.policy.coalesce > 0:
                    # Let a few more deliveries finish, then claim for all of them in
                    # one transaction.
                    await asyncio.wait({stopping}, timeout=self.policy.coalesce)
        finally:
            stopping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stopping
            await _finish(in_flight)
            if self._recording is not None:
                await asyncio.gather(self._recording, return_exceptions=True)

    # -- one message -----------------------------------------------------------------------

    async def _claim(self, limit: int) -> list[OutboxItem]:
        self._forget_quiet_chats()
        try:
            items = await self.store.run_urgent(
                self.store.claim_due,
                channel=self.channel.name,
                now=utcnow(),
                lease_seconds=self.policy.lease,
                limit=limit,
            )
        except Exception:  # the database is down, or a bug: never stop the sender for it
            self.stats.store_errors += 1
            log.exception("outbox: claiming messages failed; trying again shortly")
            return []
        self.stats.claimed += len(items)
        return items

    async def _deliver(self, item: OutboxItem) -> None:
        """Send one claimed message and record the outcome; never raises (a failure of
        the store leaves the lease to run out, and the message is tried again)."""
        try:
            await self._wait_for_chat(item.chat_id)
            await self._bucket.take()
            try:
                external_id = await self.channel.send(item)
            finally:
                self._last_send[item.chat_id] = time.monotonic()
            await self._mark_sent(item.id, external_id)
            self.stats.sent += 1
            if self.after is not None and self.after.wants(item):
                await self._tell(self.after.sent, item, external_id)
        except RetryableSend as exc:
            await self._retry(item, exc)
        except ChatBlocked as exc:
            self.stats.blocked += 1
            log.info("outbox: chat %s blocked the bot; its messages are dropped", item.chat_id)
            # One transaction fails this message and the rest of the chat.
            await self._record(
                self.store.block_chat, channel=item.channel, chat_id=item.chat_id, error=str(exc)
            )
            if self.after is not None:
                await self._tell(self.after.failed, item, exc)
        except PermanentSend as exc:
            self.stats.failed += 1
            log.warning("outbox: message %s to chat %s refused: %s", item.id, item.chat_id, exc)
            await self._record(self.store.mark_failed, item.id, error=str(exc))
            if self.after is not None:
                await self._tell(self.after.failed, item, exc)
        except StoreError:
            self.stats.store_errors += 1
            log.exception("outbox: recording message %s failed", item.id)
        except Exception as exc:  # a bug in a channel: back off like a 5xx, never loop hot
            log.exception("outbox: sending message %s failed unexpectedly", item.id)
            await self._retry(item, RetryableSend(f"{type(exc).__name__}: {exc}"))

    async def _mark_sent(self, item_id: int, external_id: str) -> None:
        """Record a send; returns once committed (raises `StoreError` if it was not).
        Sends that finish while a record is being written go in the next one together."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._unrecorded.append((item_id, external_id, done))
        if self._recording is None or self._recording.done():
            self._recording = asyncio.create_task(self._record_sent())
        await done

    async def _record_sent(self) -> None:
        while self._unrecorded:
            if self.policy.coalesce > 0:
                # Let the sends finishing now join this record: one transaction for
                # many (each costs a thread hop and the database's writer lock).
                await asyncio.sleep(self.policy.coalesce)
            batch, self._unrecorded = self._unrecorded, []
            pairs = [(item_id, external_id) for item_id, external_id, _ in batch]
            outcome: BaseException | None = None
            try:
                await self.store.run_urgent(self.store.mark_sent_many, pairs)
            except Exception as exc:  # StoreError, or a bug: each waiting delivery hears it
                outcome = exc
            for _, _, done in batch:
                if done.done():
                    continue  # that delivery was cancelled (stop)
                if outcome is None:
                    done.set_result(None)
                else:
                    done.set_exception(outcome)

    async def _retry(self, item: OutboxItem, exc: RetryableSend) -> None:
        attempts = item.attempts + 1
        if exc.retry_after is not None:
            self.stats.rate_limited += 1
            delay = exc.retry_after
        elif attempts >= self.policy.max_attempts:
            self.stats.failed += 1
            log.error(
                "outbox: message %s to chat %s given up after %d attempts: %s",
                item.id,
                item.chat_id,
                attempts,
                exc,
            )
            await self._record(self.store.mark_failed, item.id, error=str(exc))
            return
        else:
            self.stats.retried += 1
            delay = self.backoff(attempts)
        at = utcnow() + timedelta(seconds=delay)
        await self._record(self.store.mark_retry, item.id, at=at, error=str(exc))

    def backoff(self, attempts: int) -> float:
        """Seconds to wait after `attempts` failed tries: doubling from `backoff`, at most
        `backoff_cap`, with jitter (between half and all of it) so chats do not retry in
        step."""
        doubled = self.policy.backoff * float(2 ** min(max(attempts, 1) - 1, 30))
        ceiling = min(self.policy.backoff_cap, doubled)
        return ceiling * self._rng.uniform(0.5, 1.0)

    async def _wait_for_chat(self, chat_id: str) -> None:
        last = self._last_send.get(chat_id)
        if last is None:
            return
        wait = last + self.policy.chat_interval - time.monotonic()
        if wait <= 0:
            return
        if wait >= self.policy.typing_after:
            # More is coming: show "typing…" rather than silence.
            with contextlib.suppress(Exception):
                await self._bucket.take()
                await self.channel.typing(chat_id)
            wait = self._last_send[chat_id] + self.policy.chat_interval - time.monotonic()
        await asyncio.sleep(max(0.0, wait))

    def _forget_quiet_chats(self) -> None:
        horizon = time.monotonic() - self.policy.chat_interval
        for chat_id in [c for c, at in self._last_send.items() if at < horizon]:
            del self._last_send[chat_id]

    async def _tell(self, hook: Callable[..., object], *args: object) -> None:
        """Run an `AfterSend` hook; its failure is logged, the delivery stands."""
        try:
            await self.store.run(hook, *args)
        except Exception:
            log.exception("outbox: the after-send hook failed for a %s row", self.channel.name)

    async def _record(self, method: Callable[..., object], *args: object, **kwargs: object) -> None:
        try:
            await self.store.run_urgent(method, *args, **kwargs)
        except StoreError:
            self.stats.store_errors += 1
            log.exception("outbox: recording an outcome failed; the lease will run out")


async def _first_of(wake: asyncio.Event, stopping: asyncio.Task[bool], *, timeout: float) -> bool:
    """Wait for `wake`, `stopping` or `timeout`, whichever comes first; False after the
    timeout."""
    waiter = asyncio.create_task(wake.wait())
    try:
        done, _ = await asyncio.wait(
            {waiter, stopping}, timeout=timeout, return_when="FIRST_COMPLETED"
        )
        return bool(done)
    finally:
        waiter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiter


async def _finish(tasks: set[asyncio.Task[None]]) -> None:
    if not tasks:
        return
    _done, pending = await asyncio.wait(set(tasks), timeout=_STOP_GRACE_SECONDS)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
