"""Two (and three) operating-system processes racing to refresh the Zalo OA token.

Each process is a fresh Python interpreter with its own database engine and its own
`ZaloOAChannel`, like two `citizen-bot serve` workers. The stored access token expires
within the refresh margin, so each must refresh before it can send; they start at the
same instant while the fake Zalo answers the refresh slowly. Zalo's refresh token works
once (the fake refuses a used one, as Zalo does), so a second refresh would show up as a
refused refresh and a failed send. Then the same through two real servers: signed
events POSTed to /zalo/webhook of two `citizen-bot serve` processes on one database.
Both databases.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import IO

import httpx
import pytest

from bot.store import OutboxStatus, Store, ZaloTokenStore
from bot.store.types import utcnow
from tests.fakes.zalo import (
    APP_ID,
    APP_SECRET,
    OA_SECRET_KEY,
    FakeZalo,
    ZaloCitizen,
    served,
    signed,
)
from tests.live import free_port

ROOT = Path(__file__).resolve().parents[2]

# One process: wait for the common start, send one message, print what happened.
_SENDER = """
import asyncio, json, sys, time
from bot.channels.zalo import ZaloOAChannel
from bot.store import OutboxItem, OutboxStatus, Store, ZaloTokenStore
from bot.store.types import utcnow

url, base, user, start, app_id, app_secret = sys.argv[1:7]
store = Store(url)
channel = ZaloOAChannel(
    ZaloTokenStore(store), app_id=app_id, app_secret=app_secret,
    access_token="access-0", refresh_token="refresh-0",
    api_base_url=base, oauth_base_url=base, timeout=10.0, refresh_margin=300.0,
)
now = utcnow()
item = OutboxItem(
    id=1, conversation_id=1, channel="zalo", chat_id=user, seq=1, text="Xin chào",
    buttons=(), status=OutboxStatus.SENDING, attempts=0, next_attempt_at=now,
    last_error=None, external_id=None, created_at=now, sent_at=None,
)

async def main():
    try:
        time.sleep(max(0.0, float(start) - time.time()))
        return await channel.send(item)
    finally:
        await channel.close()

message_id = asyncio.run(main())
print(json.dumps({"user": user, "message_id": message_id, "refreshes": channel.refreshes}))
store.dispose()
"""


@pytest.fixture(scope="module")
def served_fake() -> Iterator[FakeZalo]:
    with served() as fake:
        yield fake


@pytest.fixture
def fake(served_fake: FakeZalo) -> FakeZalo:
    served_fake.reset()
    return served_fake


def _expiring_pair(store: Store) -> None:
    """The first pair, stored (version 1), with Zalo's answer that it expires in 10 s:
    inside the refresh margin, so the next send must refresh first (version 2)."""
    tokens = ZaloTokenStore(store)
    tokens.seed("oa", access_token="access-0", refresh_token="refresh-0")
    assert tokens.finish_refresh(
        "oa",
        version=0,
        access_token="access-0",
        refresh_token="refresh-0",
        expires_at=utcnow() + timedelta(seconds=10),
    )


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT)
    return env


@pytest.mark.parametrize("processes", [2, 3])
def test_processes_racing_refresh_once(store: Store, fake: FakeZalo, processes: int) -> None:
    _expiring_pair(store)
    fake.access_tokens = {"access-0"}
    fake.refresh_delay = 0.5  # everyone sees the expiring token while the refresh runs
    start = time.time() + 3.0  # after every interpreter has started
    runs = [
        subprocess.Popen(
            [
                *(sys.executable, "-c", _SENDER, store.url, fake.base_url),
                *(f"race-{n}", str(start), APP_ID, APP_SECRET),
            ],
            cwd=ROOT,
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(processes)
    ]
    results = []
    for run in runs:
        out, err = run.communicate(timeout=60)
        assert run.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))

    assert all(r["message_id"] for r in results)
    assert len(fake.refresh_calls) == 1 and fake.refused_refresh == 0
    assert sum(r["refreshes"] for r in results) == 1
    assert sorted(m.user_id for m in fake.sent) == sorted(f"race-{n}" for n in range(processes))
    assert {m.access_token for m in fake.sent} == {"access-1"}
    pair = ZaloTokenStore(store).current("oa")
    assert pair is not None
    assert (pair.access_token, pair.refresh_token, pair.version) == ("access-1", "refresh-1", 2)


# --- two real servers -----------------------------------------------------------------------


def _serve(store: Store, fake: FakeZalo, port: int, log: IO[str]) -> subprocess.Popen[str]:
    env = _env()
    env.update(
        {
            "DATABASE_URL": store.url,
            "FLOWS_DIR": str(ROOT / "flows"),
            "KNOWLEDGE_DIR": str(ROOT / "knowledge"),
            "ZALO_MODE": "oa",
            "ZALO_APP_ID": APP_ID,
            "ZALO_APP_SECRET": APP_SECRET,
            "ZALO_OA_SECRET_KEY": OA_SECRET_KEY,
            "ZALO_OA_ACCESS_TOKEN": "access-0",
            "ZALO_OA_REFRESH_TOKEN": "refresh-0",
            "ZALO_OA_API_BASE_URL": fake.base_url,
            "ZALO_OAUTH_BASE_URL": fake.base_url,
            "OUTBOX_CHAT_INTERVAL_SECONDS": "0",
            "OUTBOX_RATE_PER_SECOND": "1000",
            "OUTBOX_BURST": "100",
            "OUTBOX_IDLE_SECONDS": "0.05",
            "OUTBOX_BACKOFF_SECONDS": "0.05",
            "OUTBOX_BACKOFF_CAP_SECONDS": "0.2",
            "LOG_LEVEL": "WARNING",
        }
    )
    for name in ("TELEGRAM_BOT_TOKEN", "ZALO_BOT_TOKEN", "PUBLIC_BASE_URL"):
        env.pop(name, None)
    return subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
        text=True,
    )


def _up(url: str, server: subprocess.Popen[str], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"the server stopped: {log.read_text()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} did not start")


def test_two_servers_racing_refresh_once_through_the_webhook(
    store: Store, fake: FakeZalo, tmp_path: Path
) -> None:
    fake.refresh_delay = 0.5
    ports = [free_port(), free_port()]
    logs = [tmp_path / f"server-{n}.log" for n in range(2)]
    files = [path.open("w") for path in logs]
    servers = [_serve(store, fake, port, log) for port, log in zip(ports, files, strict=True)]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        for url, server, log_path in zip(urls, servers, logs, strict=True):
            _up(url, server, log_path)
        _expiring_pair(store)  # both servers have seeded; now the token expires soon
        citizens = [ZaloCitizen(f"srv-{n}") for n in range(6)]

        def post(n: int) -> int:
            body, headers = signed(citizens[n].text("kich hoat vneid"))
            url = urls[n % 2]  # three citizens on each server
            return httpx.post(f"{url}/zalo/webhook", content=body, headers=headers).status_code

        with ThreadPoolExecutor(len(citizens)) as pool:
            assert list(pool.map(post, range(len(citizens)))) == [200] * len(citizens)

        def delivered() -> bool:
            items = [
                i for c in citizens for i in store.outbox_after(channel="zalo", chat_id=c.user_id)
            ]
            return bool(items) and all(i.status == OutboxStatus.SENT for i in items)

        deadline = time.monotonic() + 30
        while not delivered():
            assert time.monotonic() < deadline, "replies were not all delivered"
            time.sleep(0.05)
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(timeout=15)
        for file in files:
            file.close()

    assert len(fake.refresh_calls) == 1 and fake.refused_refresh == 0
    assert {m.user_id for m in fake.sent} == {c.user_id for c in citizens}
    assert {m.access_token for m in fake.sent} == {"access-1"}
    pair = ZaloTokenStore(store).current("oa")
    assert pair is not None and (pair.refresh_token, pair.version) == ("refresh-1", 2)
