"""`Store.run` and the SQLite writer thread (bot/store/writer.py): where writing work
runs, in what order, and that errors and context reach the caller."""

from __future__ import annotations

import asyncio
import contextvars
import threading

import pytest

from bot.errors import StoreError
from bot.store import Store
from bot.store.writer import NORMAL, URGENT, WriterThread

_request: contextvars.ContextVar[str] = contextvars.ContextVar("request", default="none")


def test_urgent_work_goes_before_queued_normal_work() -> None:
    writer = WriterThread("test-writer")
    gate = threading.Event()
    order: list[str] = []
    # The thread is busy with the first call while the others queue behind it.
    first = writer.submit(lambda: gate.wait(5))
    later = [
        writer.submit(lambda: order.append("normal 1"), priority=NORMAL),
        writer.submit(lambda: order.append("normal 2"), priority=NORMAL),
        writer.submit(lambda: order.append("urgent"), priority=URGENT),
    ]
    gate.set()
    assert first.result(5) is True
    for future in later:
        future.result(5)
    assert order == ["urgent", "normal 1", "normal 2"]
    writer.stop()


def test_a_stopped_writer_finishes_its_queue_and_a_new_thread_takes_new_work() -> None:
    writer = WriterThread("test-writer")
    gate = threading.Event()
    names: list[str] = []
    blocked = writer.submit(lambda: gate.wait(5))
    queued = writer.submit(lambda: names.append(threading.current_thread().name))
    writer.stop()
    after = writer.submit(lambda: names.append(threading.current_thread().name))
    gate.set()
    blocked.result(5)
    queued.result(5)
    after.result(5)
    assert sorted(names) == ["test-writer", "test-writer"]
    writer.stop()


def test_an_exception_reaches_the_caller_and_the_thread_goes_on() -> None:
    writer = WriterThread("test-writer")

    def fail() -> None:
        raise ValueError("broken")

    with pytest.raises(ValueError, match="broken"):
        writer.submit(fail).result(5)
    assert writer.submit(lambda: 42).result(5) == 42
    writer.stop()


def test_store_run_on_sqlite_uses_one_thread_and_carries_the_context(store: Store) -> None:
    async def main() -> tuple[set[str], list[str], int]:
        loop_thread = threading.current_thread().name
        _request.set("update 7")
        seen: list[str] = []

        def work() -> str:
            seen.append(_request.get())
            return threading.current_thread().name

        names = await asyncio.gather(*(store.run(work) for _ in range(20)))
        urgent = await store.run_urgent(work)
        assert loop_thread not in names
        assert store.healthy()
        count = await store.run(store.outbox_depth)
        return {*names, urgent}, seen, count

    names, seen, depth = asyncio.run(main())
    assert seen == ["update 7"] * 21
    assert depth == 0
    if store.url.startswith("sqlite"):
        assert names == {"store-writer"}  # one thread: writers queue, never contend
    else:
        assert "store-writer" not in names  # PostgreSQL: the shared thread pool


def test_store_run_raises_the_store_error_and_works_after_dispose(store: Store) -> None:
    def broken() -> None:
        raise StoreError("database unavailable")

    async def main() -> int:
        with pytest.raises(StoreError):
            await store.run(broken)
        store.dispose()
        return await store.run(store.outbox_depth)

    assert asyncio.run(main()) == 0
