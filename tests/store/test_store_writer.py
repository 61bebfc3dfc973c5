"""`Store.run` and the SQLite writer thread (bot/store/writer.py): where writing work
runs (the event loop when nothing else writes, the thread when something does), in
what order, that the loop never waits for a lock, and that errors and context reach
the caller."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

import bot.store.store as store_module
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


def test_store_run_carries_the_context_and_runs_where_it_should(store: Store) -> None:
    async def main() -> tuple[str, set[str], list[str], int]:
        loop_thread = threading.current_thread().name
        _request.set("update 7")
        seen: list[str] = []

        def work() -> str:
            seen.append(_request.get())
            return threading.current_thread().name

        names = await asyncio.gather(*(store.run(work) for _ in range(20)))
        urgent = await store.run_urgent(work)
        assert store.healthy()
        count = await store.run(store.outbox_depth)
        return loop_thread, {*names, urgent}, seen, count

    loop_thread, names, seen, depth = asyncio.run(main())
    assert seen == ["update 7"] * 21
    assert depth == 0
    if store.url.startswith("sqlite"):
        assert names == {loop_thread}  # nothing else wrote: on the loop, no hand-over
    else:
        assert loop_thread not in names  # PostgreSQL: the shared thread pool
        assert "store-writer" not in names


@contextlib.contextmanager
def _other_process_writing(store: Store) -> Iterator[sqlite3.Connection]:
    """Another process's transaction holding the database's write lock (a connection
    of its own: this process's writer lock does not see it)."""
    other = sqlite3.connect(store.url.removeprefix("sqlite:///"), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        yield other
    finally:
        if other.in_transaction:
            other.execute("ROLLBACK")
        other.close()


def _conversation_write(store: Store, chat_id: str) -> str:
    with store.conversation(channel="test", chat_id=chat_id) as tx:
        tx.set_lang("vi")
    return threading.current_thread().name


def test_a_write_meeting_another_writer_waits_on_the_writer_thread_not_the_loop(
    tmp_path: Path,
) -> None:
    store = Store(f"sqlite:///{tmp_path / 'busy.db'}")
    store.create_all()

    async def main() -> tuple[str, list[str], int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        clock = asyncio.create_task(ticker())
        with _other_process_writing(store) as other:
            first = asyncio.ensure_future(store.run(_conversation_write, store, "1"))
            await asyncio.sleep(0.01)
            # The writer thread is busy: this one queues behind it, in order.
            second = asyncio.ensure_future(store.run(_conversation_write, store, "2"))
            await asyncio.sleep(0.3)
            assert not first.done() and not second.done()
            during = ticks
            other.execute("COMMIT")
            names = [await first, await second]
        clock.cancel()
        return threading.current_thread().name, names, during

    loop_thread, names, ticks = asyncio.run(main())
    store.dispose()
    assert ticks >= 10  # the loop went on while the writes waited
    assert names == ["store-writer", "store-writer"]


def test_a_write_after_the_writer_thread_drained_runs_on_the_loop_again(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'again.db'}")
    store.create_all()

    async def main() -> list[str]:
        with _other_process_writing(store) as other:
            waiting = asyncio.ensure_future(store.run(_conversation_write, store, "1"))
            await asyncio.sleep(0.05)
            other.execute("COMMIT")
        return [await waiting, await store.run(_conversation_write, store, "2")]

    names = asyncio.run(main())
    store.dispose()
    assert names[0] == "store-writer"
    assert names[1] == threading.current_thread().name


def test_the_wal_is_checkpointed_off_the_loop_every_so_many_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "_CHECKPOINT_EVERY", 5)
    path = tmp_path / "wal.db"
    store = Store(f"sqlite:///{path}")
    store.create_all()
    checkpointed: list[str] = []
    real = store_module.checkpoint

    def spy(engine: Any) -> None:
        checkpointed.append(threading.current_thread().name)
        real(engine)

    monkeypatch.setattr(store_module, "checkpoint", spy)
    before = path.stat().st_size

    async def main() -> str:
        for n in range(4):
            await store.run(_conversation_write, store, str(n))
        assert checkpointed == []
        assert path.stat().st_size == before  # committed, but still only in the WAL
        await store.run(_conversation_write, store, "4")
        assert store._checkpointing is not None
        await store._checkpointing
        return threading.current_thread().name

    loop_thread = asyncio.run(main())
    assert len(checkpointed) == 1 and checkpointed[0] != loop_thread
    assert path.stat().st_size > before  # the pages reached the database file
    store.dispose()


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
    store.create_all()
    ran: list[str] = []

    async def main() -> None:
        with _other_process_writing(store) as other:
            # The writer thread now waits for the other process with this write.
            blocker = asyncio.ensure_future(store.run(_conversation_write, store, "1"))
            await asyncio.sleep(0.05)
            waiting = asyncio.ensure_future(store.run(ran.append, "late"))
            await asyncio.sleep(0.05)
            waiting.cancel()
            other.execute("COMMIT")
        assert await blocker == "store-writer"
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await store.run(ran.append, "next")

    asyncio.run(main())
    store.dispose()
    assert ran == ["next"]  # the writer skipped the call nobody waited for
