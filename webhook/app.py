"""The FastAPI application: `create_app()` builds it (uvicorn calls it as a factory)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.concurrency import run_in_threadpool

from bot.config import Settings, get_settings
from bot.conversation import ConversationService, build_service
from bot.errors import ConfigError
from webhook import telegram, webchat
from webhook.deps import ServiceDep

log = logging.getLogger(__name__)


async def _reload_content(service: ConversationService, every: float) -> None:
    """Pick up edited flows and knowledge while running; a broken edit keeps the last good."""
    while True:
        await asyncio.sleep(every)
        try:
            await run_in_threadpool(service.library.reload)
        except Exception:  # never let a reload bug stop the loop
            log.exception("content reload failed")


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
        except ConfigError as exc:
            log.critical("cannot start: %s", exc)
            logging.getLogger("uvicorn.error").addFilter(_startup_errors)
            raise
        task = asyncio.create_task(
            _reload_content(app.state.service, config.content_reload_seconds)
        )
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            if app.state.telegram is not None:
                await app.state.telegram.stop()

    app = FastAPI(title="citizen-bot", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.telegram = None
    app.include_router(webchat.router)
    app.include_router(telegram.router)

    @app.get("/healthz")
    async def healthz(service: ServiceDep) -> JSONResponse:
        ok = await run_in_threadpool(service.store.healthy)
        problems = [str(p) for p in service.library.problems if p.severity == "error"]
        body = {"status": "ok" if ok else "database unreachable", "content_errors": problems}
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/metrics")
    async def metrics(service: ServiceDep) -> PlainTextResponse:
        flows = len(service.library.catalog.flows())
        text = (
            "# HELP citizen_bot_flows_loaded Flows currently loaded.\n"
            "# TYPE citizen_bot_flows_loaded gauge\n"
            f"citizen_bot_flows_loaded {flows}\n"
        )
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

    return app
