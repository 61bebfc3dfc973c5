"""Telegram in the server: the webhook route, long polling, and their start-up.

    POST /telegram/webhook: secret (constant time) → JSON → parse → answer the button →
    ConversationService.handle (one transaction: inbound, state, outbox) → 200 → wake
    the sender, which delivers the replies.

Modes (`start_telegram`): a token and PUBLIC_BASE_URL → webhook (registered with the
secret at start); a token alone → long polling through the same handler; no token →
no Telegram. Exactly once: the store refuses an update id it has seen, so a retried
delivery changes nothing; an update answered 200 has its replies committed already.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import re
from collections.abc import Awaitable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from fastapi import APIRouter, Request, Response

from bot.channels.telegram import (
    TelegramChannel,
    TelegramUpdate,
    UnreadableUpdate,
    read_update,
)
from bot.config import Settings
from bot.conversation import ConversationService, Handled
from bot.errors import ChannelError, ConfigError, StoreError
from bot.flow.events import StaleButtonPressed
from bot.handoff import parse_payload
from bot.helpdesk import HelpDesk
from bot.outbox import OutboxSender, SenderPolicy

PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# Telegram's rule for secret_token: 1-256 characters A-Z, a-z, 0-9, _ and -.
_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
# After a failed getUpdates, wait this long, doubling up to the cap.
_POLL_BACKOFF = 1.0
_POLL_BACKOFF_CAP = 60.0

log = logging.getLogger(__name__)
router = APIRouter()


class Outcome(StrEnum):
    HANDLED = "handled"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"


@dataclass
class TelegramRuntime:
    """Telegram's running parts: the API client, the sender, and how updates arrive."""

    channel: TelegramChannel
    sender: OutboxSender
    secret: str | None  # set in webhook mode: the route refuses requests without it
    poll_seconds: int = 25
    _tasks: list[asyncio.Task[None]] = field(default_factory=list, init=False)

    async def process(self, service: ConversationService, data: dict[str, Any]) -> Outcome:
        """Handle one update from the webhook or from polling. Raises `UnreadableUpdate`
        for JSON that is not an update and `StoreError` when the database fails (the
        update is then not handled: Telegram, or the poller, delivers it again)."""
        update = read_update(data)
        claimed = _claimed_ticket(update) if service.desk is not None else None
        if claimed is not None and service.desk is not None:
            return await self._claim(service.desk, update, claimed)
        answering = None
        if update.callback_query_id is not None:
            # Stop the button's spinner at once, while the engine works.
            answering = asyncio.create_task(self._answer(update.callback_query_id))
        try:
            return await self._handle(service, update)
        finally:
            if answering is not None:
                await answering

    async def _handle(self, service: ConversationService, update: TelegramUpdate) -> Outcome:
        if update.blocked_chat is not None:
            # Nothing queued for them can arrive now: drop it instead of trying each.
            await service.store.run(
                service.store.block_chat,
                channel=self.channel.name,
                chat_id=update.blocked_chat,
                error="the citizen blocked the bot",
            )
            log.info("telegram: chat %s blocked the bot", update.blocked_chat)
            if service.desk is not None:
                # Mid-handoff: the ticket closes and its volunteer is told.
                closed = await service.store.run(
                    service.desk.citizen_blocked,
                    channel=self.channel.name,
                    chat_id=update.blocked_chat,
                )
                if closed:
                    self.sender.wake()
            return Outcome.HANDLED
        if update.incoming is None:
            log.info("telegram: update %s (%s) ignored", update.update_id, update.kind)
            return Outcome.IGNORED
        desk = service.desk
        handled = await service.store.run(_citizen_or_volunteer, service, update)
        if handled is None:
            assert desk is not None
            return await self._volunteer(desk, update)
        if handled.duplicate:
            log.info("telegram: update %s seen before; ignored", update.update_id)
            return Outcome.DUPLICATE
        if handled.outbox_ids or handled.queued_elsewhere:
            self.sender.wake()
        if update.pressed is not None:
            pressed = update.pressed
            stale = any(isinstance(e, StaleButtonPressed) for e in handled.events)
            label = None if stale else pressed.label
            await self._quietly(
                self.channel.show_choice(pressed.chat_id, pressed.message_id, label, pressed.data),
                "marking the choice",
            )
        return Outcome.HANDLED

    async def _volunteer(self, desk: HelpDesk, update: TelegramUpdate) -> Outcome:
        """A volunteer's message in their private chat: a command or a relay."""
        assert update.incoming is not None
        queued = await desk.store.run(
            desk.volunteer_message, update.incoming, name=update.sender_name
        )
        if queued is None:
            return Outcome.DUPLICATE
        if queued:
            self.sender.wake()
        return Outcome.HANDLED

    async def _claim(self, desk: HelpDesk, update: TelegramUpdate, ticket_id: int) -> Outcome:
        """The "Nhận hỗ trợ" button: claim, answer the presser (the loser learns who
        won), and mark the post for everyone when this press won."""
        assert update.incoming is not None and update.incoming.user_id is not None
        answer = await desk.store.run(
            desk.claim, ticket_id, channel=self.channel.name, user_id=update.incoming.user_id
        )
        if answer.queued:
            self.sender.wake()
        if update.callback_query_id is not None:
            await self._quietly(
                self.channel.answer_callback(update.callback_query_id, answer.notice),
                "answering a claim",
            )
        pressed = update.pressed
        if answer.marked is not None and pressed is not None:
            await self._quietly(
                self.channel.show_choice(
                    pressed.chat_id, pressed.message_id, answer.marked, pressed.data
                ),
                "marking the claim",
            )
        return Outcome.HANDLED

    async def _answer(self, callback_query_id: str) -> None:
        await self._quietly(self.channel.answer_callback(callback_query_id), "answering a button")

    @staticmethod
    async def _quietly(call: Awaitable[None], what: str) -> None:
        """A cosmetic call: its failure is logged and must not fail the update."""
        try:
            await call
        except ChannelError as exc:
            log.warning("telegram: %s failed: %s", what, exc)

    async def poll_forever(self, service: ConversationService) -> None:
        """Long polling: fetch updates and handle each like a webhook delivery. The
        offset moves past an update only once it is handled, so a failure (or a crash)
        fetches it again, and the store drops it if it was handled after all."""
        offset: int | None = None
        backoff = _POLL_BACKOFF
        while True:
            try:
                updates = await self.channel.poll(offset, self.poll_seconds)
                for data in updates:
                    await self._process_polled(service, data)
                    offset = int(data["update_id"]) + 1
                backoff = _POLL_BACKOFF
            except (ChannelError, StoreError) as exc:
                log.warning("telegram: polling failed (%s); again in %.0f s", exc, backoff)
            except Exception:  # a bug: keep polling, or the bot goes deaf
                log.exception("telegram: polling failed; again in %.0f s", backoff)
            else:
                continue
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _POLL_BACKOFF_CAP)

    async def _process_polled(self, service: ConversationService, data: dict[str, Any]) -> None:
        try:
            await self.process(service, data)
        except StoreError:
            raise  # not handled: fetch it again
        except UnreadableUpdate as exc:
            log.warning("telegram: %s", exc)
        except Exception:
            # A bug; like the webhook, do not hold up every later update behind it.
            log.exception("telegram: update %s failed", data.get("update_id"))

    def start_polling(self, service: ConversationService) -> None:
        """Poll for updates in a task of the current loop until `stop()`."""
        self._tasks.append(asyncio.create_task(self.poll_forever(service), name="telegram-poll"))

    async def stop(self) -> None:
        """Stop polling and the sender, close the API client."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.sender.stop()
        await self.channel.close()


async def start_telegram(
    settings: Settings, service: ConversationService
) -> TelegramRuntime | None:
    """Start Telegram as the settings say; None without a token. Configuration errors
    raise `ConfigError` with one line naming the setting."""
    token = settings.telegram_bot_token
    if not token:
        return None
    secret = settings.telegram_webhook_secret or None
    public = (settings.public_base_url or "").rstrip("/") or None
    if public is not None and secret is None:
        raise ConfigError(
            "TELEGRAM_WEBHOOK_SECRET is missing: it is required when PUBLIC_BASE_URL is set"
        )
    if secret is not None and not _SECRET.match(secret):
        raise ConfigError(
            "TELEGRAM_WEBHOOK_SECRET must be 1-256 characters of A-Z, a-z, 0-9, _ and -"
        )
    if settings.outbox_lease_seconds < 3 * settings.telegram_timeout_seconds:
        # A lease running out while a slow send is still going would send it twice.
        raise ConfigError(
            f"OUTBOX_LEASE_SECONDS ({settings.outbox_lease_seconds:g}) must be at least 3 times "
            f"TELEGRAM_TIMEOUT_SECONDS ({settings.telegram_timeout_seconds:g})"
        )
    if public is not None and not public.startswith("https://"):
        log.warning("PUBLIC_BASE_URL %s is not https: Telegram only calls https webhooks", public)
    channel = TelegramChannel(
        token,
        base_url=settings.telegram_api_base_url,
        timeout=settings.telegram_timeout_seconds,
        part_interval=settings.outbox_chat_interval_seconds,
        connections=settings.outbox_concurrency + 4,
    )
    try:
        me = await channel.start()
        if public is not None:
            await _registered(channel.set_webhook(public + PATH, secret or ""), "setWebhook")
        else:
            await _registered(channel.delete_webhook(), "deleteWebhook")
        # The command menu is a convenience: typed commands work without it.
        await TelegramRuntime._quietly(channel.set_commands(), "setMyCommands")
    except BaseException:
        await channel.close()
        raise
    # The desk hears of sent group posts (to edit them later) and of refused replies.
    sender = OutboxSender(
        service.store, channel, SenderPolicy.from_settings(settings), after=service.desk
    )
    runtime = TelegramRuntime(
        channel=channel,
        sender=sender,
        secret=secret if public is not None else None,
        poll_seconds=settings.telegram_poll_seconds,
    )
    sender.start()
    if public is None:
        runtime.start_polling(service)
        log.info("telegram: @%s long-polling for updates", me.username)
    else:
        log.info("telegram: @%s receives updates at %s%s", me.username, public, PATH)
    return runtime


async def _registered(call: Awaitable[None], method: str) -> None:
    try:
        await call
    except ChannelError as exc:
        raise ConfigError(f"telegram {method} failed: {exc}") from None


@router.post(PATH, include_in_schema=False)
async def webhook(request: Request) -> Response:
    """One Bot API update. 401 without the right secret (nothing stored), 400 for a body
    that is not an update, 200 once it is handled (or ignored, or seen before), 503 when
    the database fails (Telegram retries; nothing was committed)."""
    runtime: TelegramRuntime | None = getattr(request.app.state, "telegram", None)
    if runtime is None or runtime.secret is None:
        return _plain(404, "Telegram webhook is not enabled")
    given = request.headers.get(SECRET_HEADER, "")
    if not hmac.compare_digest(given.encode("utf-8"), runtime.secret.encode("utf-8")):
        return _plain(401, "wrong or missing secret token")
    try:
        data = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        return _plain(400, "body is not JSON")
    if not isinstance(data, dict):
        return _plain(400, "body is not a Telegram update")
    service: ConversationService = request.app.state.service
    try:
        await runtime.process(service, data)
    except UnreadableUpdate as exc:
        log.warning("telegram: %s", exc)
        return _plain(400, "body is not a Telegram update")
    except StoreError:
        log.exception("telegram: update %s not handled: database error", data.get("update_id"))
        return _plain(503, "database unavailable, retry later")
    except Exception:
        # A bug: answering 5xx would make Telegram retry it forever and hold up the
        # updates behind it. The update is lost; the log says which one.
        log.exception("telegram: update %s failed", data.get("update_id"))
    return _plain(200, "ok")


def _citizen_or_volunteer(service: ConversationService, update: TelegramUpdate) -> Handled | None:
    """Handle a citizen's message; None, untouched, when it is a volunteer's. Blocking:
    one `Store.run` for both (a trip to the writer thread, when it must wait, costs the
    event loop a hand-over)."""
    assert update.incoming is not None
    # Asked inside the citizen's transaction: one query, not a transaction of its own.
    volunteers = service.desk is not None and update.kind == "message"
    handled = service.handle(update.incoming, volunteers=volunteers)
    return None if handled.volunteer else handled


def _claimed_ticket(update: TelegramUpdate) -> int | None:
    """The ticket id of a pressed claim button, else None."""
    payload = update.incoming.payload if update.incoming is not None else None
    parsed = parse_payload(payload) if payload else None
    return parsed[1] if parsed is not None and parsed[0] == "claim" else None


def _plain(status: int, text: str) -> Response:
    return Response(text, status_code=status, media_type="text/plain")
