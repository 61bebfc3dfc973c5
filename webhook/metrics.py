"""GET /metrics, and the counting of updates that feeds it.

A channel runtime's `process` (webhook and long polling alike) is wrapped to count
each update's outcome and time it; `WebhookMetrics`, an ASGI middleware, counts the
webhook requests refused before they reach it (wrong secret: rejected) and, for a
channel whose runtime is not wrapped, times the request and counts it by status.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any, Protocol

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.errors import StoreError
from bot.metrics import Metrics, SenderFigures

router = APIRouter()
# Set by the middleware for one webhook request; the wrapped `process` marks it counted.
_counted: contextvars.ContextVar[list[bool] | None] = contextvars.ContextVar(
    "counted", default=None
)


class _Runtime(Protocol):
    process: Callable[..., Awaitable[Any]]


def instrument(runtime: _Runtime, metrics: Metrics, channel: str) -> None:
    """Count and time every update `runtime.process` handles (its return value is the
    outcome; an exception is rejected for a bad body, else failed)."""
    process = runtime.process

    @wraps(process)
    async def counted(*args: Any, **kwargs: Any) -> Any:
        mark = _counted.get()
        if mark is not None:
            mark.append(True)
        start = time.perf_counter()
        try:
            outcome = await process(*args, **kwargs)
        except StoreError:
            metrics.update(channel, "failed", time.perf_counter() - start)
            raise
        except ValueError:  # UnreadableUpdate and its kin: not an update
            metrics.update(channel, "rejected")
            raise
        except Exception:
            metrics.update(channel, "failed", time.perf_counter() - start)
            raise
        metrics.update(channel, str(outcome), time.perf_counter() - start)
        return outcome

    # The runtime's own method, shadowed on this instance only.
    runtime.process = counted


class WebhookMetrics:
    """Counts POST /<channel>/webhook requests that no wrapped runtime counted."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if scope["type"] != "http" or scope["method"] != "POST" or not path.endswith("/webhook"):
            await self.app(scope, receive, send)
            return
        mark: list[bool] = []
        token = _counted.set(mark)
        status = 500
        start = time.perf_counter()

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            _counted.reset(token)
            if not mark:
                channel = path.strip("/").split("/")[0]
                if 400 <= status < 500:  # refused before any handling: no latency
                    self.metrics.update(channel, "rejected")
                else:
                    outcome = "handled" if status < 400 else "failed"
                    self.metrics.update(channel, outcome, time.perf_counter() - start)


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> PlainTextResponse:
    """Prometheus text format: this process's counters, the outbox depth (a count in
    the database, so every process reports the same) and the flows loaded."""
    state = request.app.state
    counters: Metrics = state.metrics
    service = state.service
    depth = await run_in_threadpool(service.store.outbox_depth)
    text = counters.render(
        senders=_senders(state),
        outbox_depth=depth,
        flows_loaded=len(service.library.catalog.flows()),
    )
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")


def _senders(state: Any) -> dict[str, SenderFigures]:
    figures: dict[str, SenderFigures] = {}
    for name in ("telegram", "zalo"):
        sender = getattr(getattr(state, name, None), "sender", None)
        stats = getattr(sender, "stats", None)
        if sender is None or stats is None:
            continue
        figures[str(sender.channel.name)] = SenderFigures(
            sent=stats.sent,
            failed=stats.failed,
            blocked=stats.blocked,
            retried=stats.retried,
            rate_limited=stats.rate_limited,
        )
    return figures
