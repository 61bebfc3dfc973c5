"""Zalo in the server: the webhook routes and their start-up.

    POST /zalo/webhook (OA API v3): X-ZEvent-Signature over the raw body (constant time)
    → parse → ConversationService.handle (one transaction; msg_id seen before: nothing)
    → 200 → wake the sender, which delivers through /v3.0/oa/message/cs.
    POST /zalo/bot/webhook (Zalo Bot API): X-Bot-Api-Secret-Token, then the same path.

Mode (`start_zalo`, ZALO_MODE): "oa" needs ZALO_APP_ID, ZALO_APP_SECRET,
ZALO_OA_SECRET_KEY and the first token pair; "bot" needs ZALO_BOT_TOKEN (and, for the
webhook, PUBLIC_BASE_URL and ZALO_BOT_WEBHOOK_SECRET); "auto" picks OA, else bot, else
none. A request with a bad or missing signature is refused with 401 and nothing stored.

Setting the webhook URL in Zalo's console: one source says Zalo checks a new OA webhook
URL with an unsigned POST of `{}`, others with a GET; both are answered 200 and change
nothing (not verified against Zalo's pages; README "Zalo"). A Zalo Bot update that
carries the right secret but cannot be read is answered 200 and logged, since
setWebhook's own test call has an undocumented body.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request, Response

from bot.channels.common import FileSource
from bot.channels.zalo import (
    BOT_SECRET_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    UnreadableEvent,
    ZaloBotChannel,
    ZaloEvent,
    ZaloOAChannel,
    read_bot_update,
    read_event,
    verify_signature,
)
from bot.channels.zalo_replies import ReplyTracker
from bot.config import Settings
from bot.conversation import ConversationService
from bot.errors import ChannelError, ConfigError, StoreError
from bot.outbox import OutboxSender, SenderPolicy
from bot.store import ZaloTokenStore
from bot.store.replies import LastInbound

PATH = "/zalo/webhook"
BOT_PATH = "/zalo/bot/webhook"

log = logging.getLogger(__name__)
router = APIRouter()


@dataclass
class ZaloRuntime:
    """Zalo's running parts: one channel (OA or Bot API) and its outbox sender."""

    channel: ZaloOAChannel | ZaloBotChannel
    sender: OutboxSender
    app_id: str | None = None  # OA mode
    oa_secret_key: str | None = None  # OA mode
    bot_secret: str | None = None  # Bot API webhook mode

    async def process(self, service: ConversationService, event: ZaloEvent) -> str:
        """Handle one parsed event: "handled", "duplicate" or "ignored". Raises
        `StoreError` when the database fails (nothing committed: Zalo may retry)."""
        if event.blocked_chat is not None:
            await service.store.run(
                service.store.block_chat,
                channel=self.channel.name,
                chat_id=event.blocked_chat,
                error="the citizen unfollowed the OA",
            )
            log.info("zalo: a citizen unfollowed the OA")
            if service.desk is not None:
                # Mid-handoff: the ticket closes and its volunteer is told.
                await service.store.run(
                    service.desk.citizen_blocked,
                    channel=self.channel.name,
                    chat_id=event.blocked_chat,
                )
            return "handled"
        if event.incoming is None:
            log.info("zalo: event %s ignored", event.event_name)
            return "ignored"
        handled = await service.store.run(service.handle, event.incoming)
        if handled.duplicate:
            log.info("zalo: event %s seen before; ignored", event.incoming.message_id)
            return "duplicate"
        if handled.outbox_ids:
            self.sender.wake()
        return "handled"

    async def stop(self) -> None:
        await self.sender.stop()
        await self.channel.close()


async def start_zalo(
    settings: Settings, service: ConversationService, *, files: FileSource | None = None
) -> ZaloRuntime | None:
    """Start Zalo as the settings say; None when it is off or not configured. `files`
    fetches a volunteer's Telegram photo for the OA to upload (the Telegram runtime's
    `fetch_file`); without it such photos go in words."""
    mode = settings.zalo_mode
    oa_ready = bool(settings.zalo_app_id and settings.zalo_oa_access_token)
    if mode == "auto":
        mode = "oa" if oa_ready else "bot" if settings.zalo_bot_token else "off"
    if mode == "off":
        return None
    policy = SenderPolicy.from_settings(settings)
    if mode == "oa":
        if not settings.zalo_oa_secret_key:
            raise ConfigError("ZALO_OA_SECRET_KEY is missing: it verifies Zalo's webhook calls")
        oa = ZaloOAChannel(
            ZaloTokenStore(service.store),
            app_id=settings.zalo_app_id or "",
            app_secret=settings.zalo_app_secret or "",
            access_token=settings.zalo_oa_access_token or "",
            refresh_token=settings.zalo_oa_refresh_token or "",
            api_base_url=settings.zalo_oa_api_base_url,
            oauth_base_url=settings.zalo_oauth_base_url,
            timeout=settings.zalo_timeout_seconds,
            refresh_margin=settings.zalo_refresh_margin_seconds,
            part_interval=settings.outbox_chat_interval_seconds,
            files=files,
            # The last tries of a row are left for the words, so nothing is dropped.
            media_attempts=max(1, min(3, settings.outbox_max_attempts - 1)),
            replies=ReplyTracker(LastInbound(service.store)),
        )
        try:
            await oa.start()
        except BaseException:
            await oa.close()
            raise
        runtime = ZaloRuntime(
            oa,
            OutboxSender(service.store, oa, policy, after=service.desk),
            app_id=settings.zalo_app_id,
            oa_secret_key=settings.zalo_oa_secret_key,
        )
        runtime.sender.start()
        log.info("zalo: OA receives events at %s", PATH)
        return runtime
    return await _start_bot(settings, service, policy)


async def _start_bot(
    settings: Settings, service: ConversationService, policy: SenderPolicy
) -> ZaloRuntime:
    secret = settings.zalo_bot_webhook_secret or None
    public = (settings.public_base_url or "").rstrip("/") or None
    if public is None or secret is None:
        raise ConfigError(
            "the Zalo Bot API mode needs PUBLIC_BASE_URL and ZALO_BOT_WEBHOOK_SECRET "
            "(8-256 characters) for its webhook"
        )
    if not 8 <= len(secret) <= 256:
        raise ConfigError("ZALO_BOT_WEBHOOK_SECRET must be 8-256 characters")
    bot = ZaloBotChannel(
        settings.zalo_bot_token or "",
        base_url=settings.zalo_bot_api_base_url,
        timeout=settings.zalo_timeout_seconds,
        part_interval=settings.outbox_chat_interval_seconds,
    )
    try:
        me = await bot.start()
        await bot.set_webhook(public + BOT_PATH, secret)
    except ChannelError as exc:
        await bot.close()
        raise ConfigError(f"zalo bot setWebhook failed: {exc}") from None
    except BaseException:
        await bot.close()
        raise
    runtime = ZaloRuntime(
        bot, OutboxSender(service.store, bot, policy, after=service.desk), bot_secret=secret
    )
    runtime.sender.start()
    log.info("zalo: bot %s receives updates at %s%s", me.name or me.id, public, BOT_PATH)
    return runtime


def _runtime(request: Request) -> ZaloRuntime | None:
    return getattr(request.app.state, "zalo", None)


@router.get(PATH, include_in_schema=False)
async def webhook_check(request: Request) -> Response:
    """Zalo's console may check the URL with a GET: 200, nothing done."""
    if _oa_runtime(request) is None:
        return _plain(404, "Zalo OA webhook is not enabled")
    return _plain(200, "ok")


@router.post(PATH, include_in_schema=False)
async def webhook(request: Request) -> Response:
    """One OA event. 401 without a valid signature (nothing stored), 400 for a body that
    is not an event, 200 once handled (or ignored, or seen before), 503 when the
    database fails. An unsigned `{}` (the console's URL check) gets 200 and does
    nothing: it holds no event to store."""
    runtime = _oa_runtime(request)
    if runtime is None or runtime.app_id is None or runtime.oa_secret_key is None:
        return _plain(404, "Zalo OA webhook is not enabled")
    body = await request.body()
    data = _json(body)
    header = request.headers.get(SIGNATURE_HEADER)
    if data == {} and not header:
        log.info("zalo: the webhook URL was checked")
        return _plain(200, "ok")
    if data is None or not verify_signature(
        header,
        body,
        data,
        app_id=runtime.app_id,
        oa_secret_key=runtime.oa_secret_key,
        timestamp_header=request.headers.get(TIMESTAMP_HEADER),
    ):
        # Unsigned bodies are not even parsed further: 401 whatever they hold.
        return _plain(401, "wrong or missing X-ZEvent-Signature")
    return await _handle(request, runtime, data, read_event)


def _oa_runtime(request: Request) -> ZaloRuntime | None:
    runtime = _runtime(request)
    return runtime if runtime is not None and runtime.app_id is not None else None


@router.post(BOT_PATH, include_in_schema=False)
async def bot_webhook(request: Request) -> Response:
    """One Zalo Bot API update; 401 without the right X-Bot-Api-Secret-Token."""
    runtime = _runtime(request)
    if runtime is None or runtime.bot_secret is None:
        return _plain(404, "Zalo Bot webhook is not enabled")
    given = request.headers.get(BOT_SECRET_HEADER, "")
    if not hmac.compare_digest(given.encode("utf-8"), runtime.bot_secret.encode("utf-8")):
        return _plain(401, "wrong or missing secret token")
    data = _json(await request.body())
    if data is None:
        log.warning("zalo bot: an update with the right secret is not JSON; ignored")
        return _plain(200, "ok")
    return await _handle(request, runtime, data, read_bot_update, unreadable=200)


async def _handle(
    request: Request,
    runtime: ZaloRuntime,
    data: dict[str, Any],
    read: Callable[[Mapping[str, Any]], ZaloEvent],
    *,
    unreadable: int = 400,
) -> Response:
    service: ConversationService = request.app.state.service
    try:
        event = read(data)
        await runtime.process(service, event)
    except UnreadableEvent as exc:
        log.warning("zalo: %s", exc)
        return _plain(unreadable, "body is not a Zalo event")
    except StoreError:
        log.exception("zalo: event %s not handled: database error", data.get("event_name"))
        return _plain(503, "database unavailable, retry later")
    except Exception:
        # A bug: a 5xx would make Zalo retry it; the log names the event.
        log.exception("zalo: event %s failed", data.get("event_name"))
    return _plain(200, "ok")


def _json(body: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _plain(status: int, text: str) -> Response:
    return Response(text, status_code=status, media_type="text/plain")
