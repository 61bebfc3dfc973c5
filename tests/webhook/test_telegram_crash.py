"""kill -9 under load: `citizen-bot serve` as a real process, Telegram as a fake server.

Citizens in several chats write at once; the server is killed (SIGKILL) twice while
updates are being acknowledged and replies sent, and started again each time. Like
Telegram, a citizen's client delivers an update again until it gets a 200. At the end
every update has been handled once, every reply delivered in order per chat, and a
reply is repeated only when the process died between sending it and recording it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx
import pytest
from sqlmodel import SQLModel

from bot.store import OutboxStatus, Store
from tests.conftest import PostgresSchema
from tests.fakes.telegram import Citizen, FakeBotApi, served
from tests.live import free_port

ROOT = Path(__file__).resolve().parents[2]
SECRET = "crash-secret_0123456789"
HEADER = "X-Telegram-Bot-Api-Secret-Token"
CHANNEL = "telegram"
ENGLISH, VIETNAMESE = "I will speak English.", "Mình sẽ nói tiếng Việt."
CHATS = 8
UPDATES_PER_CHAT = 14  # alternating /lang en, /lang vi: one known reply each
KILLS_AFTER_ACKS = (25, 65)  # kill when this many updates in all have been answered 200
LEASE_SECONDS = 1.5
TIMEOUT_SECONDS = 0.5  # a lease must be at least 3 times the Bot API timeout


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database for the server process: a SQLite file, or the test PostgreSQL schema
    emptied (like the `store` fixture)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'bot.db'}"
    schema: PostgresSchema = request.getfixturevalue("postgres_schema")
    store = Store(schema.url)
    store.create_all()
    store.dispose()
    tables = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
    with schema.engine.begin() as connection:
        connection.exec_driver_sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    return schema.url


@pytest.fixture
def api() -> Iterator[FakeBotApi]:
    with served() as fake:
        yield fake


class Server:
    """`citizen-bot serve` in a subprocess on a fixed port, killable and restartable."""

    def __init__(self, env: dict[str, str], log: IO[bytes]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = env
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "serve", "--port", str(self.port)],
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=self.log,
        )
        deadline = time.monotonic() + 30
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"the server exited with {self.process.returncode}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("the server did not start")
            time.sleep(0.05)

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


class Load:
    """Citizens writing at once, each update delivered again until it gets a 200."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.acked = 0
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._talk, args=(Citizen(9100 + n),), daemon=True)
            for n in range(CHATS)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def join(self) -> None:
        for thread in self._threads:
            thread.join(timeout=60)
            assert not thread.is_alive(), "a citizen never got a 200"

    def _talk(self, citizen: Citizen) -> None:
        with httpx.Client(timeout=10) as client:
            for n in range(UPDATES_PER_CHAT):
                update = citizen.text("/lang en" if n % 2 == 0 else "/lang vi")
                self._deliver(client, update)

    def _deliver(self, client: httpx.Client, update: dict[str, object]) -> None:
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline:
            try:
                response = client.post(
                    self.url + "/telegram/webhook", json=update, headers={HEADER: SECRET}
                )
            except httpx.TransportError:
                time.sleep(0.05)  # the server is down: Telegram tries again later
                continue
            if response.status_code == 200:
                with self._lock:
                    self.acked += 1
                return
            with self._lock:
                self.errors.append(f"{response.status_code} {response.text}")
            time.sleep(0.05)
        with self._lock:
            self.errors.append(f"update {update['update_id']} never acknowledged")

    def wait_for(self, acked: int) -> None:
        deadline = time.monotonic() + 30
        while self.acked < acked:
            assert time.monotonic() < deadline, f"only {self.acked} updates acknowledged"
            time.sleep(0.005)


def test_kill_9_under_load_loses_nothing_and_repeats_at_most_one_reply_per_kill(
    api: FakeBotApi, database_url: str, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "TELEGRAM_BOT_TOKEN": api.token,
        "TELEGRAM_API_BASE_URL": api.base_url,
        "TELEGRAM_WEBHOOK_SECRET": SECRET,
        "PUBLIC_BASE_URL": "https://bot.example.org",
        "TELEGRAM_TIMEOUT_SECONDS": str(TIMEOUT_SECONDS),
        "OUTBOX_LEASE_SECONDS": str(LEASE_SECONDS),
        # One message in flight at a time: a kill can catch at most one between its
        # send and its record, so at most one repeat a kill.
        "OUTBOX_CONCURRENCY": "1",
        "OUTBOX_RATE_PER_SECOND": "1000",
        "OUTBOX_BURST": "100",
        "OUTBOX_CHAT_INTERVAL_SECONDS": "0",
        "OUTBOX_IDLE_SECONDS": "0.05",
        "CONTENT_RELOAD_SECONDS": "600",
        "LOG_LEVEL": "WARNING",
    }
    with (tmp_path / "server.log").open("wb") as log:
        server = Server(env, log)
        server.start()
        assert api.webhook is not None and api.webhook["secret_token"] == SECRET
        load = Load(server.url)
        try:
            load.start()
            for acked in KILLS_AFTER_ACKS:
                load.wait_for(acked)
                server.kill()
                server.start()
            load.join()
            store = Store(database_url)
            try:
                _wait_for_drain(store)
                _assert_delivered_once_in_order(api, store)
            finally:
                store.dispose()
        finally:
            server.stop()
    assert load.errors == []
    assert load.acked == CHATS * UPDATES_PER_CHAT


def _wait_for_drain(store: Store) -> None:
    waiting = (OutboxStatus.PENDING, OutboxStatus.SENDING)
    deadline = time.monotonic() + 20
    while True:
        rows = [
            row
            for n in range(CHATS)
            for row in store.outbox_after(channel=CHANNEL, chat_id=str(9100 + n))
        ]
        if not any(row.status in waiting for row in rows):
            return
        assert time.monotonic() < deadline, "the outbox did not drain"
        time.sleep(0.05)


def _assert_delivered_once_in_order(api: FakeBotApi, store: Store) -> None:
    expected = [ENGLISH if n % 2 == 0 else VIETNAMESE for n in range(UPDATES_PER_CHAT)]
    repeats = 0
    for n in range(CHATS):
        chat_id = 9100 + n
        # Each update handled exactly once: one inbound record and one reply each.
        records = store.transcript(channel=CHANNEL, chat_id=str(chat_id), limit=500)
        assert sum(1 for r in records if r.direction == "in") == UPDATES_PER_CHAT
        rows = store.outbox_after(channel=CHANNEL, chat_id=str(chat_id))
        assert [r.text for r in rows] == expected
        assert all(r.status == OutboxStatus.SENT for r in rows)
        # Delivered: the expected replies in order, each possibly once more right after
        # itself (the texts alternate, so a repeat is two equal neighbours).
        delivered = api.texts(chat_id)
        unique = [t for i, t in enumerate(delivered) if i == 0 or t != delivered[i - 1]]
        assert unique == expected, f"chat {chat_id}: {delivered}"
        chat_repeats = len(delivered) - len(unique)
        assert chat_repeats <= len(KILLS_AFTER_ACKS)
        repeats += chat_repeats
    assert repeats <= len(KILLS_AFTER_ACKS)
