"""The FastAPI application: `create_app()` builds it (uvicorn calls it as a factory)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from bot.config import Settings, get_settings
from bot.conversation import ConversationService, build_service
from bot.errors import ConfigError
from bot.logs import log_handling
from bot.metrics import Metrics
from webhook import console, telegram, webchat, zalo
from webhook.deps import ServiceDep
from webhook.metrics import WebhookMetrics, instrument
from webhook.metrics import router as metrics_router

log = logging.getLogger(__name__)


async def _reload_content(service: ConversationService, every: float) -> None:
    """Pick up edited flows and knowledge while running; a broken edit keeps the last good."""
    while True:
        await asyncio.sleep(every)
        try:
            await run_in_threadpool(service.library.reload)
        except Exception:  # never let a reload bug stop the loop
            log.exception("content reload failed")


async def _handoff_timers(app: FastAPI, service: ConversationService, every: float) -> None:
    """Re-post long waits, return silent claims, close stale tickets: from stored times,
    so a restart loses nothing and two processes do each once."""
    desk = service.desk
    if desk is None:
        return
    while True:
        await asyncio.sleep(every)
        try:
            queued = await desk.store.run(desk.run_timers)
        except Exception:  # never let a timer bug stop the loop
            log.exception("handoff timers failed")
            continue
        if queued and app.state.telegram is not None:
            app.state.telegram.sender.wake()


class _OneLineStartupErrors(logging.Filter):
    """A configuration error at start is logged as one clear line (by the lifespan);
    this drops the traceback uvicorn would print after it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "bot.errors.ConfigError: " not in record.getMessage()


_startup_errors = _OneLineStartupErrors()


def create_app(
    service: ConversationService | None = None, *, settings: Settings | None = None
) -> FastAPI:
    """The app; with no `service`, one is built from the settings at start-up. Tests
    pass `settings` (Telegram's token, fake API address, sender rates)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        config = settings or get_settings()
        app.state.service = service or await run_in_threadpool(build_service)
        try:
            app.state.telegram = await telegram.start_telegram(config, app.state.service)
            # The OA uploads a volunteer's Telegram photo: it fetches it through
            # Telegram's client, handed over here so bot/channels/zalo.py stays
            # Telegram-free.
            files = app.state.telegram.channel.fetch_file if app.state.telegram else None
            app.state.zalo = await zalo.start_zalo(config, app.state.service, files=files)
        except ConfigError as exc:
            log.critical("cannot start: %s", exc)
            if app.state.telegram is not None:
                await app.state.telegram.stop()
            logging.getLogger("uvicorn.error").addFilter(_startup_errors)
            raise
        for runtime in (app.state.telegram, app.state.zalo):
            if runtime is not None:
                instrument(runtime, app.state.metrics, runtime.sender.channel.name)
        log_handling(app.state.service)
        task = asyncio.create_task(
            _reload_content(app.state.service, config.content_reload_seconds)
        )
        timers = asyncio.create_task(
            _handoff_timers(app, app.state.service, config.handoff_timer_seconds)
        )
        try:
            yield
        finally:
            for running in (task, timers):
                running.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await running
            if app.state.telegram is not None:
                await app.state.telegram.stop()
            if app.state.zalo is not None:
                await app.state.zalo.stop()

    app = FastAPI(title="citizen-bot", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.telegram = None
    app.state.zalo = None
    app.state.metrics = Metrics()
    app.add_middleware(WebhookMetrics, metrics=app.state.metrics)
    app.include_router(metrics_router)
    app.include_router(webchat.router)
    app.include_router(telegram.router)
    app.include_router(zalo.router)
    app.include_router(console.router)

    @app.get("/healthz")
    async def healthz(service: ServiceDep) -> JSONResponse:
        ok = await run_in_threadpool(service.store.healthy)
        problems = [str(p) for p in service.library.problems if p.severity == "error"]
        body = {"status": "ok" if ok else "database unreachable", "content_errors": problems}
        return JSONResponse(body, status_code=200 if ok else 503)

    return app
