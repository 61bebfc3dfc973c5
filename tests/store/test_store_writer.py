"""`Store.run` and the SQLite writer thread (bot/store/writer.py): where writing work
runs, in what order, and that errors and context reach the caller."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from bot.errors import StoreError
from bot.store import Store
from bot.store.writer import NORMAL, URGENT, WriterThread


def _submit(writer: WriterThread, call: Callable[[], Any], priority: int = NORMAL) -> Future[Any]:
    """`writer.submit` with a future to wait on in a plain test."""
    future: Future[Any] = Future()

    def done(error: BaseException | None, result: Any) -> None:
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    writer.submit(call, done, priority=priority)
    return future


_request: contextvars.ContextVar[str] = contextvars.ContextVar("request", default="none")


def test_urgent_work_goes_before_queued_normal_work() -> None:
    writer = WriterThread("test-writer")
    gate = threading.Event()
    order: list[str] = []
    # The thread is busy with the first call while the others queue behind it.
    first = _submit(writer, lambda: gate.wait(5))
    later = [
        _submit(writer, lambda: order.append("normal 1"), priority=NORMAL),
        _submit(writer, lambda: order.append("normal 2"), priority=NORMAL),
        _submit(writer, lambda: order.append("urgent"), priority=URGENT),
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
    blocked = _submit(writer, lambda: gate.wait(5))
    queued = _submit(writer, lambda: names.append(threading.current_thread().name))
    writer.stop()
    after = _submit(writer, lambda: names.append(threading.current_thread().name))
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
        _submit(writer, fail).result(5)
    assert _submit(writer, lambda: 42).result(5) == 42
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


def test_a_failing_callback_does_not_stop_the_writer(caplog: pytest.LogCaptureFixture) -> None:
    writer = WriterThread("test-writer")

    def broken(_error: BaseException | None, _result: Any) -> None:
        raise RuntimeError("callback bug")

    writer.submit(lambda: 1, broken)
    assert _submit(writer, lambda: 2).result(5) == 2
    assert "callback failed" in caplog.text
    writer.stop()


def test_a_cancelled_caller_s_queued_work_is_skipped(tmp_path: Path) -> None:
    # SQLite only: on PostgreSQL the shared pool (anyio) finishes a started call.
    store = Store(f"sqlite:///{tmp_path / 'writer.db'}")
    ran: list[str] = []

    async def main() -> None:
        gate = threading.Event()
        blocker = asyncio.ensure_future(store.run(gate.wait, 5))
        await asyncio.sleep(0.05)  # the writer is now busy with the blocker
        waiting = asyncio.ensure_future(store.run(ran.append, "late"))
        await asyncio.sleep(0.05)
        waiting.cancel()
        gate.set()
        assert await blocker is True
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await store.run(ran.append, "next")

    asyncio.run(main())
    store.dispose()
    assert ran == ["next"]  # the writer skipped the call nobody waited for
