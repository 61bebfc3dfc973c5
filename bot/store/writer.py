"""One thread for a process's SQLite writes, with the sender's short bookkeeping first.

SQLite lets one writer in at a time, and the writers of one process already queue on
one lock (bot/store/engine.py). Run from many threads, they only take turns at that
lock and at the GIL, and every turn costs CPU: the webhook spent about a third more
per update than with one thread. So on SQLite, the store's writing work runs here,
one call after another.

Two queues, not one: a delivery holds its place among the sender's few in flight
until its claim and its record are committed, and a chat's next reply is claimed only
after the last one is recorded. Queued behind every update waiting to be handled, the
sender's bookkeeping waited tens of milliseconds a step and replies fell behind while
updates came in. Its statements are short, so they go first.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

URGENT = 0
NORMAL = 1
_STOP = 2  # after everything queued before it


class WriterThread:
    """A daemon thread that runs submitted calls in order of (priority, arrival)."""

    def __init__(self, name: str = "store-writer") -> None:
        self.name = name
        self._arrival = itertools.count()
        self._guard = threading.Lock()
        # The running thread's queue; None while no thread runs.
        self._queue: _Queue | None = None

    def submit(self, call: Callable[[], Any], *, priority: int = NORMAL) -> Future[Any]:
        """Queue `call`; its result (or exception) arrives in the returned future."""
        future: Future[Any] = Future()
        with self._guard:
            if self._queue is None:
                self._queue = queue.PriorityQueue()
                threading.Thread(
                    target=_work, args=(self._queue,), name=self.name, daemon=True
                ).start()
            self._queue.put((priority, next(self._arrival), call, future))
        return future

    def stop(self) -> None:
        """Let the thread finish what is queued, then end; `submit` starts a new one
        (with a queue of its own)."""
        with self._guard:
            if self._queue is not None:
                self._queue.put((_STOP, next(self._arrival), None, Future()))
                self._queue = None


_Queue = queue.PriorityQueue[tuple[int, int, Callable[[], Any] | None, Future[Any]]]


def _work(jobs: _Queue) -> None:
    while True:
        _, _, call, future = jobs.get()
        if call is None:
            return
        if not future.set_running_or_notify_cancel():
            continue
        try:
            result = call()
        except BaseException as exc:  # the caller's to handle, in its own task
            future.set_exception(exc)
        else:
            future.set_result(result)
