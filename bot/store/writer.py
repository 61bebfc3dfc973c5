"""One thread for a process's SQLite writes that must wait, the sender's short
bookkeeping first.

SQLite lets one writer in at a time, and the writers of one process already queue on
one lock (bot/store/engine.py). Run from many threads, they only take turns at that
lock and at the GIL, and every turn costs CPU: the webhook spent about a third more
per update than with one thread. `Store.run` runs a write on the event loop when
this thread is `idle` and the database free; when another thread or process holds
it, the write comes here and waits, and so does every write after it until the
queue is empty (none overtakes an earlier one).

Two queues, not one: a delivery holds its place among the sender's few in flight
until its claim and its record are committed, and a chat's next reply is claimed only
after the last one is recorded. Queued behind every update waiting to be handled, the
sender's bookkeeping waited tens of milliseconds a step and replies fell behind while
updates came in. Its statements are short, so they go first.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

URGENT = 0
NORMAL = 1
_STOP = 2  # after everything queued before it

# Told on the writer thread how a call ended: (None, its result) or (its exception, None).
Done = Callable[[BaseException | None, Any], None]


class WriterThread:
    """A daemon thread that runs submitted calls in order of (priority, arrival)."""

    def __init__(self, name: str = "store-writer") -> None:
        self.name = name
        self._arrival = itertools.count()
        self._guard = threading.Lock()
        # The running thread's queue; None while no thread runs.
        self._queue: _Queue | None = None
        self._pending = 0  # calls submitted and not yet done

    @property
    def idle(self) -> bool:
        """True when no call waits or runs: work done elsewhere now cannot overtake one."""
        return self._pending == 0

    def submit(self, call: Callable[[], Any], done: Done, *, priority: int = NORMAL) -> None:
        """Queue `call`; `done` hears how it ended, on the writer thread. (A callback,
        not a `concurrent.futures.Future`: building one and chaining it to the event
        loop's future cost more than the queue.)"""
        with self._guard:
            if self._queue is None:
                self._queue = queue.PriorityQueue()
                threading.Thread(
                    target=_work, args=(self._queue, self._finished), name=self.name, daemon=True
                ).start()
            self._pending += 1
            self._queue.put((priority, next(self._arrival), call, done))

    def _finished(self) -> None:
        with self._guard:
            self._pending -= 1

    def stop(self) -> None:
        """Let the thread finish what is queued, then end; `submit` starts a new one
        (with a queue of its own)."""
        with self._guard:
            if self._queue is not None:
                self._queue.put((_STOP, next(self._arrival), None, None))
                self._queue = None


_Queue = queue.PriorityQueue[tuple[int, int, Callable[[], Any] | None, Done | None]]


def _work(jobs: _Queue, finished: Callable[[], None]) -> None:
    while True:
        _, _, call, done = jobs.get()
        if call is None or done is None:
            return
        try:
            result = call()
        except BaseException as exc:  # the caller's to handle, in its own task
            outcome: tuple[BaseException | None, Any] = (exc, None)
        else:
            outcome = (None, result)
        finished()
        try:
            done(*outcome)
        except Exception:  # a bug in the caller's callback: the next call still runs
            log.exception("store writer: a call's callback failed")
