"""Telegram, through python-telegram-bot's `Bot` (the only module that imports `telegram`,
with telegram_request.py, the HTTP transport it sends through).

Inbound: `read_update(data)` turns one Bot API update (JSON) into an `Incoming`, plus
what the webhook must do besides (answer a callback query, note a block). Commands map
to the engine's payloads: /start [flow id], /menu, /help, /human, /lang vi|en, /stop
(stop and forget). Outbound: `TelegramChannel.send(item)` renders an outbox row (inline
keyboard, long text split) and maps Bot API failures to `RetryableSend`/`PermanentSend`.
The conversation state lives in our engine and store, not in PTB's ConversationHandler.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from telegram import (
    Bot,
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    Message,
    Update,
)
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.request import HTTPXRequest

from bot.channels.common import (
    LANGS,
    HideToken,
    Special,
    is_url,
    special,
    split_text,
    typed_command,
)
from bot.channels.telegram_request import AiohttpRequest
from bot.errors import ChatBlocked, ConfigError, PermanentSend, RetryableSend
from bot.messages import Button, Incoming, Media, MediaKind
from bot.store import OutboxItem

# PTB 22 warns on reading `RetryAfter.retry_after` unless it may be a timedelta, which
# it will be in the next major version; opt in now (it is read inside PTB as well).
os.environ.setdefault("PTB_TIMEDELTA", "true")

CHANNEL = "telegram"
# Telegram's limit on a caption, in UTF-16 code units.
MAX_CAPTION = 1024
# The Bot API method (PTB's name) that sends each kind of attachment by file_id.
_SENDERS = {
    MediaKind.PHOTO: "send_photo",
    MediaKind.VOICE: "send_voice",
    MediaKind.AUDIO: "send_audio",
    MediaKind.VIDEO: "send_video",
    MediaKind.DOCUMENT: "send_document",
    MediaKind.STICKER: "send_sticker",
}
# Telegram's limit on callback data, in bytes (its text limit is common.MAX_TEXT).
MAX_CALLBACK_DATA = 64
# Updates the bot asks for; everything else is not sent to it.
ALLOWED_UPDATES = ("message", "callback_query", "my_chat_member")

# The menu of commands Telegram shows beside the text box, by the user's app language
# (setMyCommands with language_code); the Vietnamese list is also the default for
# every other language. Order: what a citizen needs first.
COMMAND_MENU: dict[str, tuple[tuple[str, str], ...]] = {
    "vi": (
        ("start", "Bắt đầu"),
        ("menu", "Xem các hướng dẫn"),
        ("help", "Cách dùng bot"),
        ("human", "Gặp tình nguyện viên"),
        ("lang", "Đổi ngôn ngữ: /lang vi hoặc /lang en"),
        ("stop", "Dừng và xóa dữ liệu của bạn"),
    ),
    "en": (
        ("start", "Start"),
        ("menu", "See the guides"),
        ("help", "How to use this bot"),
        ("human", "Talk to a volunteer"),
        ("lang", "Change language: /lang vi or /lang en"),
        ("stop", "Stop and delete your data"),
    ),
}
# Over-long callback data is replaced by the button's number, as if it were typed.
_NUMBER_PREFIX = "n:"
_HANDOFF_PREFIX = "h:"
_RATE_PREFIX = "h:rate:"
# Link previews cost data on slow phones and push the buttons off the screen.
_NO_PREVIEW = LinkPreviewOptions(is_disabled=True)
_NO_PREVIEW_JSON = _NO_PREVIEW.to_dict()
_MEDIA_ATTRIBUTES = (
    ("photo", MediaKind.PHOTO),
    ("voice", MediaKind.VOICE),
    ("audio", MediaKind.AUDIO),
    ("video", MediaKind.VIDEO),
    ("video_note", MediaKind.VIDEO),
    ("animation", MediaKind.VIDEO),
    ("sticker", MediaKind.STICKER),
    ("document", MediaKind.DOCUMENT),
)

log = logging.getLogger(__name__)


class UnreadableUpdate(ValueError):
    """The JSON is not a Bot API update (the webhook answers 400)."""


@dataclass(frozen=True)
class Pressed:
    """A pressed inline button: the message it sits under, its text and data."""

    chat_id: str
    message_id: int
    label: str | None
    data: str


@dataclass(frozen=True)
class TelegramUpdate:
    """One update as the webhook needs it. `incoming` is None for updates the bot does
    not handle (edited messages, group chats, other bots); `kind` names the update type
    for the log."""

    update_id: int
    kind: str
    incoming: Incoming | None = None
    callback_query_id: str | None = None
    pressed: Pressed | None = None  # the button pressed, to mark the choice made
    blocked_chat: str | None = None  # the citizen blocked the bot (my_chat_member)
    sender_name: str = ""  # the sender's name on Telegram, for a volunteer who joins


@dataclass(frozen=True)
class BotIdentity:
    id: int
    username: str | None


def read_update(data: dict[str, Any]) -> TelegramUpdate:
    """Parse one Bot API update; raises `UnreadableUpdate` for JSON that is not one."""
    update_id = data.get("update_id") if isinstance(data, dict) else None
    if not isinstance(update_id, int) or isinstance(update_id, bool):
        raise UnreadableUpdate("not a Telegram update: no integer update_id")
    kind = next((k for k in data if k != "update_id"), "empty")
    if kind not in ALLOWED_UPDATES:
        return TelegramUpdate(update_id, kind)  # not parsed: PTB may not know it at all
    try:
        update = Update.de_json({"update_id": update_id, kind: data[kind]}, None)
    except (TypeError, KeyError, ValueError, AttributeError) as exc:
        raise UnreadableUpdate(f"update {update_id} cannot be read: {exc!r}") from exc
    try:
        return _read(update)
    except (TypeError, AttributeError) as exc:  # a field of an unexpected type
        raise UnreadableUpdate(f"update {update_id} cannot be read: {exc!r}") from exc


def parse(data: dict[str, Any]) -> Incoming | None:
    """The citizen's message in an update, or None when there is nothing to handle."""
    return read_update(data).incoming


def _read(update: Update) -> TelegramUpdate:
    uid = update.update_id
    message_id = str(uid)
    if update.callback_query is not None:
        query = update.callback_query
        presser = query.from_user
        chat_id = str(query.message.chat.id) if query.message is not None else str(presser.id)
        data = query.data
        incoming = None
        if data and not presser.is_bot:
            number = data.removeprefix(_NUMBER_PREFIX) if data.startswith(_NUMBER_PREFIX) else ""
            incoming = Incoming(
                channel=CHANNEL,
                chat_id=chat_id,
                text=number,
                payload=None if number else data,
                message_id=message_id,
                user_id=str(presser.id),
                lang_hint=_lang(presser.language_code),
            )
        pressed = None
        if isinstance(query.message, Message) and data:
            label = _pressed_label(query.message, data)
            pressed = Pressed(str(query.message.chat.id), query.message.message_id, label, data)
        return TelegramUpdate(
            uid,
            "callback_query",
            incoming,
            callback_query_id=query.id,
            pressed=pressed,
            sender_name=presser.full_name,
        )
    if update.my_chat_member is not None:
        member = update.my_chat_member
        blocked = member.chat.type == "private" and member.new_chat_member.status == "kicked"
        return TelegramUpdate(
            uid, "my_chat_member", blocked_chat=str(member.chat.id) if blocked else None
        )
    message = update.message
    if message is None:
        return TelegramUpdate(uid, "empty message")
    user = message.from_user
    if message.chat.type != "private" or user is None or user.is_bot:
        # Citizens talk to the bot one to one; groups (the volunteers' one) are not
        # conversations with the engine.
        return TelegramUpdate(uid, f"message in a {message.chat.type} chat")
    text = message.text or message.caption or ""
    incoming = Incoming(
        channel=CHANNEL,
        chat_id=str(message.chat.id),
        text=text,
        payload=typed_command(text) if message.text else None,
        media=_media(message),
        message_id=message_id,
        user_id=str(user.id),
        lang_hint=_lang(user.language_code),
    )
    return TelegramUpdate(uid, "message", incoming, sender_name=user.full_name)


def _media(message: Message) -> Media | None:
    if message.location is not None:
        where = message.location
        return Media(MediaKind.LOCATION, latitude=where.latitude, longitude=where.longitude)
    for attribute, kind in _MEDIA_ATTRIBUTES:
        value = getattr(message, attribute)
        if isinstance(value, tuple):  # photo: sizes, smallest first
            value = value[-1] if value else None
        if value is not None:
            return Media(kind, ref=value.file_id)
    if message.contact is not None or message.venue is not None:
        return Media(MediaKind.OTHER)
    if message.text is None and message.caption is None:
        return Media(MediaKind.OTHER)  # a poll, a dice, a story: nothing the bot can read
    return None


def _lang(code: str | None) -> str | None:
    if not code:
        return None
    lang = code.lower()[:2]
    return lang if lang in LANGS else None


def _pressed_label(message: Message, data: str) -> str | None:
    markup = message.reply_markup
    if markup is None:
        return None
    for row in markup.inline_keyboard:
        for button in row:
            if button.callback_data == data:
                return button.text
    return None


# --- rendering ------------------------------------------------------------------------


def keyboard(buttons: tuple[Button, ...]) -> InlineKeyboardMarkup | None:
    """One button a row. Choice buttons are numbered like the engine numbers them (link
    buttons are not), so a citizen can also type the number."""
    rows = keyboard_rows(buttons)
    if rows is None:
        return None
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    b["text"], url=b.get("url"), callback_data=b.get("callback_data")
                )
                for b in row
            ]
            for row in rows
        ]
    )


def keyboard_rows(buttons: tuple[Button, ...]) -> list[list[dict[str, str]]] | None:
    """`keyboard(buttons)` as the Bot API's JSON rows: what a send puts in the request
    (building PTB's objects to turn them back into JSON cost more than the send)."""
    if not buttons:
        return None
    rows: list[list[dict[str, str]]] = []
    number = 0
    ratings: list[dict[str, str]] = []
    for button in buttons:
        if button.url is not None:
            rows.append([{"text": button.label, "url": button.url}])
            continue
        if button.payload.startswith(_HANDOFF_PREFIX):
            # Handoff buttons (claim, rate 1-5) are not the engine's numbered choices:
            # a typed digit after /done is the rating itself. Ratings share one row.
            plain = {"text": button.label, "callback_data": button.payload}
            if button.payload.startswith(_RATE_PREFIX):
                if not ratings:
                    rows.append(ratings)
                ratings.append(plain)
            else:
                rows.append([plain])
            continue
        number += 1
        data = button.payload
        if len(data.encode("utf-8")) > MAX_CALLBACK_DATA:
            log.warning("button payload over 64 bytes sent as its number: %s", data)
            data = f"{_NUMBER_PREFIX}{number}"
        rows.append([{"text": f"{number}. {button.label}", "callback_data": data}])
    return rows


# --- the Bot API --------------------------------------------------------------------------


# Loggers that print Bot API URLs, which hold the token (httpx: every request, at INFO).
_LOGGERS_WITH_URLS = ("httpx", "telegram.Bot")


class TelegramChannel:
    """The bot's side of the Bot API: send, answer, webhook, polling.

    Async, like `telegram.Bot` underneath. Call `start()` once (checks the token with
    getMe) and `close()` at the end.
    """

    name = CHANNEL

    def __init__(
        self,
        token: str,
        *,
        base_url: str = "https://api.telegram.org/bot",
        timeout: float = 10.0,
        part_interval: float = 0.0,
        connections: int = 20,
        base_file_url: str | None = None,
    ) -> None:
        if not token:
            raise ConfigError("TELEGRAM_BOT_TOKEN is empty")
        self.base_url = base_url
        # Between the parts of a long text, so one chat is not flooded.
        self.part_interval = part_interval
        # Connections to the Bot API: the sender's concurrency and a few for the webhook
        # (answering buttons), on aiohttp (bot/channels/telegram_request.py: httpx cost
        # most of a delivered reply's CPU).
        request = AiohttpRequest(
            connection_pool_size=connections,
            connect_timeout=timeout,
            read_timeout=timeout,
            write_timeout=timeout,
            pool_timeout=timeout,
        )
        # getUpdates gets its own connection: a long poll must not hold up sending.
        polling = HTTPXRequest(
            connection_pool_size=1, connect_timeout=timeout, read_timeout=timeout
        )
        self._hide = HideToken(token)
        for name in _LOGGERS_WITH_URLS:
            logging.getLogger(name).addFilter(self._hide)
        self._bot = Bot(
            token,
            base_url=base_url,
            base_file_url=base_file_url or file_url_of(base_url),
            request=request,
            get_updates_request=polling,
        )

    @staticmethod
    def parse(data: dict[str, Any]) -> Incoming | None:
        """The citizen's message in an update (see `read_update` for the rest)."""
        return parse(data)

    async def start(self) -> BotIdentity:
        """Open connections and check the token (getMe); a rejected token or an
        unreachable API raises `ConfigError` with one line that names it."""
        where = self.base_url.replace(self._bot.token, "<token>")
        try:
            await self._bot.initialize()
        except InvalidToken:
            # PTB's message repeats the token: never show it.
            raise ConfigError(
                f"TELEGRAM_BOT_TOKEN was rejected by the Bot API at {where} (getMe: Unauthorized)"
            ) from None
        except TelegramError as exc:
            raise ConfigError(
                f"the Telegram Bot API at {where} cannot be reached (TELEGRAM_API_BASE_URL): {exc}"
            ) from None
        me = self._bot.bot
        return BotIdentity(id=me.id, username=me.username)

    async def close(self) -> None:
        for name in _LOGGERS_WITH_URLS:
            logging.getLogger(name).removeFilter(self._hide)
        try:
            await self._bot.shutdown()
        except TelegramError:
            log.debug("closing the Bot API client failed", exc_info=True)

    async def send(self, item: OutboxItem) -> str:
        """Deliver one outbox row; returns the Telegram id of its last message. Buttons
        go on the last part of a long text. A row with a media marker sends the
        attachment with the text as caption; one with an edit marker edits that message
        (bot/channels/common.py)."""
        marked = special(item.buttons)
        if marked.edit is not None:
            return await self._edit(item.chat_id, marked.edit, item.text, marked.buttons)
        if marked.media is not None:
            return await self._send_media(item.chat_id, item.text, marked)
        return await self._send_text(item.chat_id, item.text, marked.buttons)

    async def _send_text(self, chat_id: str, text: str, buttons: tuple[Button, ...]) -> str:
        parts = split_text(text)
        # The sender's hot path: plain JSON in and out, through the Bot's own request
        # (same connections, errors and token scrubbing) but without building PTB
        # objects for the parameters and a `Message` from the answer, which cost a
        # third of a send.
        rows = keyboard_rows(buttons)
        plain_markup = {"inline_keyboard": rows} if rows is not None else None
        message_id = ""
        for n, part in enumerate(parts):
            if n and self.part_interval:
                await asyncio.sleep(self.part_interval)
            last = n == len(parts) - 1
            data: dict[str, Any] = {
                "chat_id": chat_id,
                "text": part,
                "link_preview_options": _NO_PREVIEW_JSON,
            }
            if last and plain_markup is not None:
                data["reply_markup"] = plain_markup
            async with _mapped():
                sent = await self._bot._post("sendMessage", data)
            if not isinstance(sent, dict) or "message_id" not in sent:
                raise RetryableSend(f"sendMessage answered without a message: {sent!r:.200}")
            message_id = str(sent["message_id"])
        return message_id

    async def _send_media(self, chat_id: str, text: str, marked: Special) -> str:
        """The attachment itself, the text as its caption (or before it, when too long
        for one or the kind takes none). A Zalo URL Telegram cannot fetch, or a kind
        it cannot take by URL, becomes a link under the text."""
        media = marked.media
        assert media is not None and media.ref is not None
        ref, kind = media.ref, media.kind
        url = is_url(ref)
        if (url and kind is not MediaKind.PHOTO) or kind not in _SENDERS:
            return await self._send_text(chat_id, f"{text}\n{ref}" if url else text, ())
        caption: str | None = text
        if kind is MediaKind.STICKER or _units(text) > MAX_CAPTION:
            await self._send_text(chat_id, text, ())
            caption = None
        method = getattr(self._bot, _SENDERS[kind])
        arguments: dict[str, Any] = {"chat_id": chat_id, kind.value: ref}
        if caption is not None:
            arguments["caption"] = caption
        try:
            async with _mapped():
                sent = await method(**arguments)
        except PermanentSend:
            if not url:
                raise
            # Telegram could not fetch the URL (private, expired): the link instead.
            return await self._send_text(chat_id, f"{text}\n{ref}", ())
        return str(sent.message_id)

    async def fetch_file(self, file_id: str) -> bytes:
        """The bytes of a file a user sent the bot (a volunteer's photo, for Zalo):
        getFile, then a download from the Bot API's file server (at most 20 MB). The
        download URL holds the token: it is never logged, stored or put in an error."""
        try:
            file = await self._bot.get_file(file_id)
            data = await file.download_as_bytearray()
        except TelegramError as exc:
            error = _error(exc)
            # PTB's messages may quote the URL; keep the kind and a scrubbed message.
            message = f"telegram file {file_id[:12]}…: " + str(error).replace(
                self._bot.token, "<token>"
            )
            if isinstance(error, RetryableSend):
                raise RetryableSend(message, retry_after=error.retry_after) from None
            raise PermanentSend(message) from None
        except RuntimeError:  # no file_path in getFile's answer: nothing to download
            raise PermanentSend(f"telegram file {file_id[:12]}…: no file_path") from None
        return bytes(data)

    async def _edit(
        self, chat_id: str, message_id: str, text: str, buttons: tuple[Button, ...]
    ) -> str:
        """Edit an earlier message (a volunteer group's post). Unchanged text is not an
        error: a second edit to the same words succeeds."""
        try:
            async with _mapped():
                await self._bot.edit_message_text(
                    text=split_text(text)[0],
                    chat_id=chat_id,
                    message_id=int(message_id),
                    reply_markup=keyboard(buttons),
                    link_preview_options=_NO_PREVIEW,
                )
        except PermanentSend as exc:
            if "not modified" not in str(exc):
                raise
        return message_id

    async def answer_callback(self, callback_query_id: str, text: str | None = None) -> None:
        """Stop the button's spinner. Raises `ChannelError` subclasses on failure."""
        async with _mapped():
            await self._bot.answer_callback_query(callback_query_id, text=text)

    async def show_choice(
        self, chat_id: str, message_id: int, label: str | None, payload: str | None
    ) -> None:
        """Leave only the pressed button, ticked, under the message it was pressed on
        (no buttons when it is unknown): the choice stays visible, and the other buttons
        cannot be pressed by mistake later."""
        markup = None
        if label is not None and payload is not None:
            markup = InlineKeyboardMarkup(
                [[InlineKeyboardButton(f"✓ {label}", callback_data=payload)]]
            )
        async with _mapped():
            await self._bot.edit_message_reply_markup(
                chat_id=chat_id, message_id=message_id, reply_markup=markup
            )

    async def typing(self, chat_id: str) -> None:
        async with _mapped():
            await self._bot.send_chat_action(chat_id=chat_id, action="typing")

    async def set_commands(self) -> None:
        """Register the command menu (`COMMAND_MENU`): the default list (Vietnamese),
        then one list a language, so each citizen sees it in their app's language."""
        lists: list[tuple[str | None, tuple[tuple[str, str], ...]]] = [(None, COMMAND_MENU["vi"])]
        lists += list(COMMAND_MENU.items())
        for language_code, commands in lists:
            async with _mapped():
                await self._bot.set_my_commands(
                    [BotCommand(name, description) for name, description in commands],
                    language_code=language_code,
                )

    async def set_webhook(self, url: str, secret: str) -> None:
        async with _mapped():
            await self._bot.set_webhook(
                url=url, secret_token=secret, allowed_updates=list(ALLOWED_UPDATES)
            )

    async def delete_webhook(self) -> None:
        async with _mapped():
            await self._bot.delete_webhook()

    async def poll(self, offset: int | None, timeout: int) -> list[dict[str, Any]]:
        """One getUpdates long poll: the updates after `offset - 1`, as JSON dicts (so
        they take the same path as webhook updates)."""
        async with _mapped():
            updates = await self._bot.get_updates(
                offset=offset, timeout=timeout, allowed_updates=list(ALLOWED_UPDATES)
            )
        return [u.to_dict() for u in updates]


@asynccontextmanager
async def _mapped() -> AsyncIterator[None]:
    """Bot API failures as citizen-bot's send errors."""
    try:
        yield
    except TelegramError as exc:
        raise _error(exc) from exc


def _error(exc: TelegramError) -> Exception:
    # Order matters: BadRequest and TimedOut are NetworkErrors in PTB.
    if isinstance(exc, RetryAfter):
        return RetryableSend(f"429 {exc}", retry_after=_seconds(exc))
    if isinstance(exc, Forbidden):
        return ChatBlocked(f"403 {exc}")
    if isinstance(exc, BadRequest | ChatMigrated):
        return PermanentSend(f"400 {exc}")
    if isinstance(exc, TimedOut):
        return RetryableSend(f"timed out: {exc}")
    if isinstance(exc, NetworkError):
        return RetryableSend(f"network error or 5xx: {exc}")
    # InvalidToken (the token was revoked meanwhile), Conflict, …: try again later.
    return RetryableSend(f"{type(exc).__name__}: {exc}")


def file_url_of(base_url: str) -> str:
    """The Bot API file server beside `base_url` (TELEGRAM_API_BASE_URL): ".../bot" or
    ".../bot{token}..." becomes ".../file/bot..." on the same server, as python-telegram
    -bot's `base_file_url` expects (it appends the token, or fills in {token})."""
    head, found, tail = base_url.rpartition("/bot")
    if not found:
        return "https://api.telegram.org/file/bot"
    return f"{head}/file/bot{tail}"


def _seconds(exc: RetryAfter) -> float:
    value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2
