"""Updates per second and latency through the real Telegram webhook, beside a bare endpoint.

Two servers run under uvicorn in subprocesses, one after the other in alternating rounds,
and the same load generator (an httpx.AsyncClient, N concurrent workers, a bounded
count) POSTs the same kind of updates to each:

    webhook   `webhook.app:create_app` on SQLite: secret, parse, route, engine, one
              transaction (inbound, state, outbox), 200; its sender delivers the replies
              to the fake Bot API of tests/fakes/telegram.py (a third process)
    bare      a FastAPI endpoint that only reads and parses the same JSON

Each worker owns its chats, so one chat never has two updates in flight (as Telegram
sends them). Figures are medians over rounds; `ratio` is bare / webhook throughput, and
`delivered_ratio` the same with the webhook counted until its last reply is delivered.
On Linux the CPU time each server process spent per update is shown too (the webhook's
includes delivering the replies, up to the drain): it says what bounds the ratio.
Nothing here asserts on speed: compare ratios between machines, not absolute figures.

    .venv/bin/python -m bench.webhook [--updates 1000] [--workers 16] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request, Response

from bot.store import Store
from tests.fakes.telegram import Citizen, FakeBotApi
from tests.live import free_port

ROOT = Path(__file__).resolve().parents[1]
SECRET = "bench-secret_0123456789"
HEADER = "X-Telegram-Bot-Api-Secret-Token"
PATH = "/telegram/webhook"
# What the citizens type, in turn: a command, a flow trigger without diacritics, free text.
SCRIPT = ("/start", "kich hoat vneid", "menu", "lam the nao de doi mat khau", "/help")
WARMUP = 30

bare_app = FastAPI()


@bare_app.post(PATH)
async def _bare(request: Request) -> Response:
    """The floor: read the body and parse it, like the webhook does first."""
    json.loads(await request.body())
    return Response("ok", media_type="text/plain")


def fake_api_app() -> FastAPI:
    """The fake Bot API, for uvicorn's --factory (in its own process: no GIL shared
    with the load generator)."""
    return FakeBotApi().app


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by nearest rank."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[index]


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) a process has used, from /proc; None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _Served(str):
    """A server's URL that also knows its process id."""

    pid: int


@contextmanager
def _server(target: list[str], env: dict[str, str]) -> Iterator[_Served]:
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", *target, "--port", str(port)]
    command += ["--log-level", "warning", "--no-access-log"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{target[0]} exited with {process.returncode}")
            try:
                httpx.post(url + "/nowhere", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{target[0]} did not start") from None
                time.sleep(0.05)
        served = _Served(url)
        served.pid = process.pid
        yield served
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _webhook_env(api_url: str, database_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "TELEGRAM_BOT_TOKEN": FakeBotApi.token,
        "TELEGRAM_API_BASE_URL": api_url + "/bot",
        "TELEGRAM_WEBHOOK_SECRET": SECRET,
        "PUBLIC_BASE_URL": "https://bot.example.org",
        # Deliver as fast as the fake takes them: the bench measures the bot, not limits.
        "OUTBOX_RATE_PER_SECOND": "100000",
        "OUTBOX_BURST": "1000",
        "OUTBOX_CHAT_INTERVAL_SECONDS": "0",
        # and more chats in flight than the default 16 (ample at Telegram's 30 a
        # second), which held delivery here to its round trips, not its CPU.
        "OUTBOX_CONCURRENCY": "128",
        "OUTBOX_IDLE_SECONDS": "0.05",
        "CONTENT_RELOAD_SECONDS": "600",
        "LOG_LEVEL": "WARNING",
    }


class _Citizens:
    """Updates for `chats` chats; chat i belongs to worker i % workers."""

    def __init__(self, first_id: int, chats: int) -> None:
        self.citizens = [Citizen(first_id + n) for n in range(chats)]
        self.turns = [0] * chats

    def next_update(self, chat: int) -> dict[str, Any]:
        text = SCRIPT[self.turns[chat] % len(SCRIPT)]
        self.turns[chat] += 1
        return self.citizens[chat].text(text)


async def _load(url: str, citizens: _Citizens, updates: int, workers: int) -> dict[str, float]:
    latencies: list[float] = []
    chats = len(citizens.citizens)
    limits = httpx.Limits(max_connections=workers, max_keepalive_connections=workers)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:

        async def worker(w: int) -> None:
            mine = list(range(w, chats, workers))
            for n in range(w, updates, workers):
                chat = mine[(n // workers) % len(mine)]
                body = json.dumps(citizens.next_update(chat)).encode()
                start = time.perf_counter()
                response = await client.post(
                    PATH,
                    content=body,
                    headers={HEADER: SECRET, "content-type": "application/json"},
                )
                latencies.append(time.perf_counter() - start)
                if response.status_code != 200:
                    raise RuntimeError(f"{url}: {response.status_code} {response.text[:200]}")

        start = time.perf_counter()
        await asyncio.gather(*(worker(w) for w in range(workers)))
        elapsed = time.perf_counter() - start
    return {
        "per_s": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
    }


def _drain(store: Store, timeout: float = 120) -> float:
    """Seconds until no reply waits in the outbox (or the timeout)."""
    start = time.perf_counter()
    while store.outbox_depth() and time.perf_counter() - start < timeout:
        time.sleep(0.01)
    return time.perf_counter() - start


def run(updates: int, workers: int, rounds: int, chats: int) -> dict[str, Any]:
    """Alternate bare and webhook rounds; return the medians and the ratio."""
    figures: dict[str, list[dict[str, float]]] = {"bare": [], "webhook": []}
    drain: list[float] = []
    cpu: dict[str, list[float]] = {"bare": [], "webhook": []}
    with tempfile.TemporaryDirectory() as tmp:
        citizens = _Citizens(8_000_000, chats)
        database_url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        with (
            _server(["bench.webhook:fake_api_app", "--factory"], {**os.environ}) as api,
            _server(["bench.webhook:bare_app"], {**os.environ}) as bare,
            _server(
                ["webhook.app:create_app", "--factory"], _webhook_env(api, database_url)
            ) as hook,
        ):
            store = Store(database_url)
            asyncio.run(_load(bare, citizens, WARMUP, min(workers, WARMUP)))
            asyncio.run(_load(hook, citizens, WARMUP, min(workers, WARMUP)))
            for _ in range(rounds):
                _drain(store)
                before = cpu_seconds(bare.pid)
                figures["bare"].append(asyncio.run(_load(bare, citizens, updates, workers)))
                _per_update(cpu["bare"], before, cpu_seconds(bare.pid), updates)
                before = cpu_seconds(hook.pid)
                loaded = asyncio.run(_load(hook, citizens, updates, workers))
                # Replies still queued when the last 200 came back: time to deliver them.
                drain.append(_drain(store))
                # Until the last reply is out: what the bot sustains, not only accepts.
                loaded["delivered_per_s"] = updates / (updates / loaded["per_s"] + drain[-1])
                figures["webhook"].append(loaded)
                _per_update(cpu["webhook"], before, cpu_seconds(hook.pid), updates)
            store.dispose()
    result: dict[str, Any] = {
        "updates": updates,
        "workers": workers,
        "rounds": rounds,
        "chats": chats,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    for name, runs in figures.items():
        for key in ("per_s", "p50_ms", "p99_ms"):
            result[f"{name}_{key}"] = round(statistics.median(r[key] for r in runs), 2)
    result["ratio"] = round(result["bare_per_s"] / result["webhook_per_s"], 2)
    delivered = statistics.median(r["delivered_per_s"] for r in figures["webhook"])
    result["webhook_delivered_per_s"] = round(delivered, 2)
    result["delivered_ratio"] = round(result["bare_per_s"] / delivered, 2)
    result["drain_after_last_200_s"] = round(statistics.median(drain), 3)
    for name, spent in cpu.items():
        if spent:
            result[f"{name}_cpu_ms_per_update"] = round(statistics.median(spent), 2)
    return result


def _per_update(out: list[float], before: float | None, after: float | None, n: int) -> None:
    if before is not None and after is not None:
        out.append((after - before) * 1000 / n)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--updates", type=int, default=1000, help="updates per round and server")
    parser.add_argument("--workers", type=int, default=16, help="concurrent senders")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--chats", type=int, default=200, help="distinct citizens")
    args = parser.parse_args(argv)
    chats = max(args.chats, args.workers)
    result = run(args.updates, args.workers, args.rounds, chats)
    print(f"{'':10}{'updates/s':>12}{'p50 ms':>10}{'p99 ms':>10}")
    for name in ("bare", "webhook"):
        row = (result[f"{name}_{k}"] for k in ("per_s", "p50_ms", "p99_ms"))
        print(
            f"{name:10}"
            + "".join(f"{v:>12.1f}" if i == 0 else f"{v:>10.1f}" for i, v in enumerate(row))
        )
    print(
        f"ratio (bare / webhook): {result['ratio']:.2f}x; replies drained "
        f"{result['drain_after_last_200_s']:.2f} s after the last 200"
    )
    print(
        f"until the last reply was delivered: {result['webhook_delivered_per_s']:.1f} "
        f"updates/s, ratio {result['delivered_ratio']:.2f}x"
    )
    if "webhook_cpu_ms_per_update" in result:
        print(
            f"CPU per update: bare {result['bare_cpu_ms_per_update']:.2f} ms, webhook "
            f"{result['webhook_cpu_ms_per_update']:.2f} ms (with its replies' delivery)"
        )
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
