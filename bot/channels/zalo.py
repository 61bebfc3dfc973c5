"""Zalo: the Official Account API v3 and, as a lighter mode, the Zalo Bot API (httpx).

Inbound (OA): `verify_signature(...)` checks X-ZEvent-Signature, `read_event(data)` turns
one OA webhook event into an `Incoming` (msg_id → message_id, sender.id → chat_id;
image, audio, sticker, location → Media), a follow into /start and an unfollow into a
blocked chat. Outbound (OA): `ZaloOAChannel.send(item)` posts to /v3.0/oa/message/cs
with an access token refreshed before it expires (pairs stored by `ZaloTokenStore`, one
refresher at a time across processes), long texts split, choices as buttons; a
volunteer's Telegram photo is fetched through the injected `files` (a `FileSource`),
uploaded and sent as an image, or after `media_attempts` failing tries as words.
Inbound/outbound (Bot API, Telegram-like): `read_bot_update`, `ZaloBotChannel`.

Zalo's own pages (developers.zalo.me, its mirror docs.zaloplatforms.com,
bot.zaloplatforms.com) could not be fetched from where this was written. Each fact
below names the public sources it was checked against; "notes quoting docs.zaloplatforms
.com" are third-party research notes (in the public code corpus, repository not named
there) that quote Zalo's pages word for word: read at second hand, not by us.

- Signature header X-ZEvent-Signature = "mac=" + hex(sha256(app_id + raw body +
  timestamp + OA secret key)), app_id and timestamp from the event body: chatwoot/chatwoot
  app/jobs/webhooks/zalo_events_job.rb; ThanhTan2003/Medical-Appointment-System-ZaloOA
  (MacUtils.buildMac); two more independent implementations (a Python and a WordPress
  PHP one) agree. Some implementations read the timestamp from an X-ZEvent-Timestamp
  header when there is one: either is accepted. NOT in any official page (the notes say
  Zalo's webhook overview page does not describe a signature at all).
- Token refresh: POST {oauth}/v4/oa/access_token, form app_id, grant_type=refresh_token,
  refresh_token, header secret_key = the app's secret; answer access_token,
  refresh_token, expires_in (a string, "90000" = 25 h). The refresh token works once and
  the old access token dies with it: notes quoting docs.zaloplatforms.com (OA/bat-dau/
  xac-thuc-va-uy-quyen-cho-ung-dung-new) and hoangnd25/monorepo
  wip/zalo-platform-integration.md.
- Send: POST {api}/v3.0/oa/message/cs, header access_token, body {recipient: {user_id},
  message: {text}}, answer {error: 0, data: {message_id}}; text at most 2,000
  characters: notes quoting docs.zaloplatforms.com (OA/tin-nhan/tin-tu-van/
  gui-tin-tu-van-dang-van-ban, "Giới hạn tối đa là 2.000 ký tự"), hoangnd25/monorepo,
  and a second set of notes ("Gửi tin nhắn OA").
- Reply ids: a send that answers a citizen's message carries its msg_id as
  recipient.message_id beside the user_id: Zalo OA's own help centre says a message with
  a user_id and no message_id counts as proactive, not as a reply (zalooa.freshdesk.com
  article 64000263278; limits and fallback in bot/channels/zalo_replies.py). The notes
  quoting docs.zaloplatforms.com say the reply quota (8 in 48 h) ended on 2026-01-01;
  either way the id is sent while it applies. message.quote_message_id (a visible quote)
  is not used. The Bot API's sendMessage has no reply parameter.
- Buttons: message.attachment {type: "template", payload: {buttons}} beside the text;
  "oa.query.hide" sends its payload back as the user's text (hidden), "oa.open.url";
  at most 5 buttons, title at most 100 characters, payload at most 1,000: the "Gửi tin
  nhắn OA" notes (the limits, one source only), esms.vn's button message example and
  implementations in Python, PHP, TypeScript and C# (the shape).
- Images: POST {api}/v2.0/oa/upload/image, header access_token, multipart field
  "file" (a JPEG here), answer {error: 0, data: {attachment_id}}; then message/cs with
  message.attachment {type: "template", payload: {template_type: "media", elements:
  [{media_type: "image", attachment_id}]}} and the text beside it. Read only in public
  code (find_string "oa/upload/image", 2026-11-30): a Python OA helpdesk (upload with
  field "file", data.attachment_id, then the media template with "text" beside it),
  a TypeScript OA router (the same upload and template), a C# client, a PHP helper and
  a TypeScript endpoint table ("v2.0/oa/upload/image"); one Python bot and a task list
  use /v3.0/oa/upload/image instead. The size and format limits were not found.
- Error codes: -216 access token invalid, -220 expired or removed (refresh, retry once);
  -32 rate limit (app or OA; the official page says calls over the limit are not
  executed); -230 and -232 outside the 7-day window, -213 user has not followed the OA
  (tell the volunteer; the citizen must write first); -201 is a bad parameter, not a
  window error: notes quoting docs.zaloplatforms.com OA/phu-luc/ma-loi and
  OA/phu-luc/gioi-han-toc-do-api, hoangnd25/monorepo's error table.
- Bot API: {base}/bot<token>/<method> (getMe, setWebhook {url, secret_token 8-256},
  sendMessage {chat_id, text 1-2000}); answers {"ok", "result"} or {"ok": false,
  "error_code", "description"}; webhook body {"ok", "result": {"event_name",
  "message": {from, chat, text | photo | voice_url | sticker, message_id, date}}} with
  the secret in X-Bot-Api-Secret-Token; error_code 408 timeout and 429 quota are worth
  retrying: a Bot API reference quoting docs.zaloplatforms.com/docs/BOT/apis, openclaw's
  Zalo extension and its docs, a Zalo Bot PHP SDK (WebhookModule), a Hermes adapter.
  sendPhoto {chat_id, photo: a URL, caption 1-2000} exists (a Bot API reference "verified
  against official Zalo Bot documentation on 2026-10-02"), but takes only a URL Zalo can
  fetch, and a Telegram file URL holds the bot token: a volunteer's photo goes to a Bot
  API citizen in words (bot/helpdesk.py marks photos for the OA only).
Nothing above was read on Zalo's developer pages (the reply rule comes from Zalo OA's help
centre, in a stored copy). Not even quoted from them: the image upload
and the media template (public code only), the signature
formula, how the console checks a new webhook URL (webhook/zalo.py), the OAuth error a
used refresh token gets (any refusal is treated as "reconnect the OA"), the 5-button
limit (one set of notes); the Bot API's voice event rests on one reference and it has
no location message in any source.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from starlette.concurrency import run_in_threadpool

from bot.channels.common import (
    FileSource,
    HideToken,
    in_words,
    is_url,
    special,
    split_text,
    typed_command,
)
from bot.channels.zalo_replies import ReplyTracker
from bot.errors import ChannelError, ConfigError, OutsideWindow, PermanentSend, RetryableSend
from bot.messages import Button, Incoming, Media, MediaKind
from bot.store import OutboxItem, TokenPair, ZaloTokenStore
from bot.store.types import utcnow

CHANNEL = "zalo"
BOT_CHANNEL = "zalo_bot"
SIGNATURE_HEADER = "X-ZEvent-Signature"
BOT_SECRET_HEADER = "X-Bot-Api-Secret-Token"
TOKEN_NAME = "oa"
TIMESTAMP_HEADER = "X-ZEvent-Timestamp"
SEND_PATH = "/v3.0/oa/message/cs"
UPLOAD_IMAGE_PATH = "/v2.0/oa/upload/image"
# Zalo's text limit (characters; the UTF-16 measure of split_text is never longer).
MAX_TEXT = 2000
# Buttons under one message, a button's title and an oa.query payload.
MAX_BUTTONS = 5
MAX_TITLE = 100
MAX_BUTTON_PAYLOAD = 1000
# A pressed oa.query.hide button sends its payload back as the citizen's text; this
# marks ours so typed text is never read as a payload.
PAYLOAD_PREFIX = "#cb:"
# OA error codes (the module docstring names the sources).
TOKEN_ERRORS = frozenset({-216, -220})  # access token invalid; expired or removed
# The citizen must write (or follow) first: not followed, no interaction in 7 days.
WINDOW_ERRORS = frozenset({-213, -230, -232})
RATE_ERRORS = frozenset({-32})  # too many calls
# Bot API error_code values worth another try: request timeout, quota exceeded.
BOT_RETRY_CODES = frozenset({408, 429})
# Without a Retry-After, wait this long after a rate limit.
RATE_LIMIT_WAIT = 30.0
# How long one process may hold the right to refresh, and how long others wait for it.
REFRESH_LEASE = timedelta(seconds=30)
REFRESH_POLL = 0.05

_MEDIA_EVENTS = {
    "user_send_image": MediaKind.PHOTO,
    "user_send_gif": MediaKind.PHOTO,
    "user_send_audio": MediaKind.AUDIO,
    "user_send_video": MediaKind.VIDEO,
    "user_send_sticker": MediaKind.STICKER,
    "user_send_file": MediaKind.DOCUMENT,
    "user_send_location": MediaKind.LOCATION,
}
_BOT_MEDIA_EVENTS = {
    "message.image.received": MediaKind.PHOTO,
    "message.sticker.received": MediaKind.STICKER,
    "message.voice.received": MediaKind.AUDIO,
    "message.unsupported.received": MediaKind.OTHER,
}
# Where each Bot API event puts its attachment (a URL; sources name these fields).
_BOT_MEDIA_FIELDS = ("photo", "photo_url", "voice_url", "url", "sticker")

log = logging.getLogger(__name__)


class UnreadableEvent(ValueError):
    """The JSON is not a Zalo event (the webhook answers 400)."""


@dataclass(frozen=True)
class ZaloEvent:
    """One event as the webhook needs it. `incoming` is None for events the bot does
    not handle; `blocked_chat` is set on unfollow."""

    event_name: str
    incoming: Incoming | None = None
    blocked_chat: str | None = None


# --- inbound -------------------------------------------------------------------------------


def signature(app_id: str, body: bytes, timestamp: str, oa_secret_key: str) -> str:
    """The X-ZEvent-Signature Zalo sends with `body` (see the module's sources)."""
    digest = hashlib.sha256(
        app_id.encode("utf-8") + body + timestamp.encode("utf-8") + oa_secret_key.encode("utf-8")
    )
    return "mac=" + digest.hexdigest()


def verify_signature(
    header: str | None,
    body: bytes,
    data: Mapping[str, Any],
    *,
    app_id: str,
    oa_secret_key: str,
    timestamp_header: str | None = None,
) -> bool:
    """True when `header` signs `body` for our app. The event's app_id must be ours; the
    timestamp in the hash is the event's, or the X-ZEvent-Timestamp header's (sources
    differ on which); comparisons in constant time."""
    if not header or str(data.get("app_id", "")) != app_id:
        return False
    given = header.strip()
    if not given.lower().startswith("mac="):
        given = "mac=" + given
    given = "mac=" + given[4:].lower()
    stamps = {str(data.get("timestamp", ""))}
    if timestamp_header:
        stamps.add(timestamp_header.strip())
    matches = [
        hmac.compare_digest(
            given.encode("utf-8"), signature(app_id, body, stamp, oa_secret_key).encode("utf-8")
        )
        for stamp in sorted(stamps)
    ]
    return any(matches)


def read_event(data: Mapping[str, Any]) -> ZaloEvent:
    """Parse one OA webhook event; raises `UnreadableEvent` for JSON that is not one."""
    name = data.get("event_name")
    if not isinstance(name, str):
        raise UnreadableEvent("not a Zalo event: no event_name")
    if name in ("follow", "unfollow"):
        follower = _id(data.get("follower")) or _id(data.get("sender"))
        if follower is None:
            raise UnreadableEvent(f"{name} without a follower id")
        if name == "unfollow":
            return ZaloEvent(name, blocked_chat=follower)
        incoming = Incoming(
            channel=CHANNEL,
            chat_id=follower,
            payload="g:start",
            # A follow has no msg_id: one follow a moment is one event.
            message_id=f"follow:{follower}:{data.get('timestamp', '')}",
            user_id=follower,
        )
        return ZaloEvent(name, incoming)
    if name != "user_send_text" and name not in _MEDIA_EVENTS:
        return ZaloEvent(name)
    sender = _id(data.get("sender"))
    message = data.get("message")
    if sender is None or not isinstance(message, Mapping):
        raise UnreadableEvent(f"{name} without sender.id or message")
    msg_id = message.get("msg_id")
    if not isinstance(msg_id, str | int) or isinstance(msg_id, bool) or not str(msg_id):
        raise UnreadableEvent(f"{name} without message.msg_id")
    text = message.get("text")
    text = text if isinstance(text, str) else ""
    payload = None
    if name == "user_send_text" and text.startswith(PAYLOAD_PREFIX):
        payload, text = text.removeprefix(PAYLOAD_PREFIX), ""
    elif name == "user_send_text":
        payload = typed_command(text)
    media = _media(name, message) if name in _MEDIA_EVENTS else None
    incoming = Incoming(
        channel=CHANNEL,
        chat_id=sender,
        text=text,
        payload=payload,
        media=media,
        message_id=str(msg_id),
        user_id=sender,
    )
    return ZaloEvent(name, incoming)


def _id(value: object) -> str | None:
    if isinstance(value, Mapping):
        found = value.get("id")
        if isinstance(found, str | int) and not isinstance(found, bool) and str(found):
            return str(found)
    return None


def _media(name: str, message: Mapping[str, Any]) -> Media:
    kind = _MEDIA_EVENTS[name]
    attachments = message.get("attachments")
    first = attachments[0] if isinstance(attachments, list) and attachments else {}
    payload = first.get("payload") if isinstance(first, Mapping) else None
    payload = payload if isinstance(payload, Mapping) else {}
    if kind is MediaKind.LOCATION:
        # attachments[0].payload.coordinates (chatwoot's location service, the fake);
        # one guide shows message.location instead: both are read.
        where = payload.get("coordinates") or message.get("location")
        where = where if isinstance(where, Mapping) else {}
        return Media(
            kind, latitude=_float(where.get("latitude")), longitude=_float(where.get("longitude"))
        )
    ref = payload.get("url") or payload.get("id")
    return Media(kind, ref=str(ref) if ref else None)


def _float(value: object) -> float | None:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def read_bot_update(data: Mapping[str, Any]) -> ZaloEvent:
    """Parse one Zalo Bot API webhook update ({"event_name", "message"}, possibly
    wrapped in {"ok", "result"})."""
    result = data.get("result")
    if isinstance(result, Mapping):
        data = result
    name = data.get("event_name")
    message = data.get("message")
    if not isinstance(name, str) or not isinstance(message, Mapping):
        raise UnreadableEvent("not a Zalo Bot update: no event_name or message")
    chat = _id(message.get("chat"))
    sender = _id(message.get("from"))
    message_id = message.get("message_id")
    if chat is None or not message_id:
        raise UnreadableEvent(f"{name} without chat.id or message_id")
    if isinstance(message.get("chat"), Mapping) and message["chat"].get("chat_type") == "GROUP":
        return ZaloEvent(name)  # citizens talk to the bot one to one
    text = message.get("text") or message.get("caption") or ""
    media = None
    if name in _BOT_MEDIA_EVENTS:
        kind = _BOT_MEDIA_EVENTS[name]
        media = Media(kind, ref=_bot_media_ref(message))
    elif name != "message.text.received":
        return ZaloEvent(name)
    incoming = Incoming(
        channel=BOT_CHANNEL,
        chat_id=chat,
        text=str(text),
        payload=typed_command(str(text)) if media is None else None,
        media=media,
        message_id=str(message_id),
        user_id=sender,
    )
    return ZaloEvent(name, incoming)


def _bot_media_ref(message: Mapping[str, Any]) -> str | None:
    for field in _BOT_MEDIA_FIELDS:
        value = message.get(field)
        if isinstance(value, list) and value:  # a list of sizes: the last is the largest
            value = value[-1]
        if isinstance(value, Mapping):
            value = value.get("url") or value.get("id")
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
            return str(value)
    return None


# --- rendering -----------------------------------------------------------------------------


def numbered(text: str, buttons: tuple[Button, ...]) -> str:
    """`text` with the choices as a numbered list (typed numbers answer them, as on
    Telegram) and links written out: for the Bot API and for too many buttons."""
    lines = []
    number = 0
    for button in buttons:
        if button.url is not None:
            lines.append(f"{button.label}: {button.url}")
            continue
        number += 1
        lines.append(f"{number}. {button.label}")
    if not lines:
        return text
    return text + "\n\n" + "\n".join(lines)


def render(text: str, buttons: tuple[Button, ...]) -> list[dict[str, Any]]:
    """The `message` objects of /v3.0/oa/message/cs for one outbox row: the text in parts
    of at most MAX_TEXT, buttons (numbered like the engine numbers them) on the last.
    More than MAX_BUTTONS choices go into the text as a numbered list instead."""
    if len(buttons) > MAX_BUTTONS:
        text, buttons = numbered(text, buttons), ()
    parts = split_text(text, MAX_TEXT)
    messages: list[dict[str, Any]] = [{"text": part} for part in parts]
    zalo_buttons = _buttons(buttons)
    if zalo_buttons:
        messages[-1]["attachment"] = {"type": "template", "payload": {"buttons": zalo_buttons}}
    return messages


def image_attachment(attachment_id: str) -> dict[str, Any]:
    """The `message.attachment` of an uploaded image (module docstring: sources)."""
    element = {"media_type": "image", "attachment_id": attachment_id}
    return {"type": "template", "payload": {"template_type": "media", "elements": [element]}}


def _buttons(buttons: tuple[Button, ...]) -> list[dict[str, Any]]:
    rendered: list[dict[str, Any]] = []
    number = 0
    for button in buttons:
        if button.url is not None:
            rendered.append(
                {
                    "title": _title(button.label),
                    "type": "oa.open.url",
                    "payload": {"url": button.url},
                }
            )
            continue
        number += 1
        payload = PAYLOAD_PREFIX + button.payload
        if len(payload) > MAX_BUTTON_PAYLOAD:
            payload = str(number)  # pressed, it reads as the typed number
        rendered.append(
            {
                "title": _title(f"{number}. {button.label}"),
                "type": "oa.query.hide",
                "payload": payload,
            }
        )
    return rendered


def _title(label: str) -> str:
    return label if len(label) <= MAX_TITLE else label[: MAX_TITLE - 1] + "…"


# --- the OA API ----------------------------------------------------------------------------


class ZaloError(ChannelError):
    """Zalo answered with a non-zero `error`."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"zalo error {code}: {message}")
        self.code = code


class ZaloOAChannel:
    """The OA's side of Zalo: send customer-service messages with a fresh token.

    The token pair lives in the database (`ZaloTokenStore`); the settings' pair seeds it
    once. Before a call, a token that expires within `refresh_margin` is refreshed; a
    call refused for its token refreshes and tries once more.
    """

    name = CHANNEL

    def __init__(
        self,
        tokens: ZaloTokenStore,
        *,
        app_id: str,
        app_secret: str,
        access_token: str,
        refresh_token: str,
        api_base_url: str = "https://openapi.zalo.me",
        oauth_base_url: str = "https://oauth.zaloapp.com",
        timeout: float = 10.0,
        refresh_margin: float = 300.0,
        part_interval: float = 0.0,
        files: FileSource | None = None,
        media_attempts: int = 3,
        replies: ReplyTracker | None = None,
    ) -> None:
        for setting, value in (
            ("ZALO_APP_ID", app_id),
            ("ZALO_APP_SECRET", app_secret),
            ("ZALO_OA_ACCESS_TOKEN", access_token),
            ("ZALO_OA_REFRESH_TOKEN", refresh_token),
        ):
            if not value:
                raise ConfigError(f"{setting} is empty")
        self.tokens = tokens
        self.app_id = app_id
        self._app_secret = app_secret
        self._seed = (access_token, refresh_token)
        self.api_base_url = api_base_url.rstrip("/")
        self.oauth_base_url = oauth_base_url.rstrip("/")
        self.refresh_margin = timedelta(seconds=refresh_margin)
        self.part_interval = part_interval
        # Where a relayed photo's bytes come from (a Telegram file_id); None: in words.
        self.files = files
        # Tries of a photo (fetch + upload) before the row goes in words; keep it below
        # OUTBOX_MAX_ATTEMPTS, or the outbox gives the row up first.
        self.media_attempts = max(1, media_attempts)
        # Names the citizen message a send answers; None: every send is a plain one.
        self.replies = replies
        self._http = httpx.AsyncClient(timeout=timeout)
        self._lock = asyncio.Lock()  # one refresh at a time within this process
        self.refreshes = 0  # refreshes this process did, for tests and metrics

    async def start(self) -> None:
        """Store the first pair unless one is stored (the stored one is newer)."""
        access, refresh = self._seed
        await run_in_threadpool(
            lambda: self.tokens.seed(TOKEN_NAME, access_token=access, refresh_token=refresh)
        )

    async def close(self) -> None:
        await self._http.aclose()

    async def typing(self, chat_id: str) -> None:
        """The OA API has no typing indicator."""

    async def send(self, item: OutboxItem) -> str:
        """Deliver one outbox row; returns Zalo's id of its last message. Handoff markers
        (bot/channels/common.py): an edit is skipped (the OA cannot edit what it sent);
        a volunteer's Telegram photo is fetched, uploaded and sent as an image with the
        text (`_send_photo`); any other attachment, or a photo that cannot go, goes as
        its text, which names it ("[ảnh]"), and the row's note under it."""
        marked = special(item.buttons)
        if marked.edit is not None:
            return marked.edit
        text = item.text
        image: dict[str, Any] | None = None
        worded = False
        if marked.media is not None:
            attachment_id = await self._send_photo(item, marked.media)
            if attachment_id is not None:
                image = image_attachment(attachment_id)
            elif marked.note:
                text, worded = f"{text}\n{marked.note}", True
        messages = render(text, marked.buttons)
        if image is not None:
            if "attachment" in messages[0]:  # buttons on it: the image goes first, alone
                messages.insert(0, {"attachment": image})
            else:
                messages[0]["attachment"] = image
        replies = self.replies
        reply_to = None if replies is None else await replies.reply_to(item.conversation_id)
        message_id = ""
        for n, message in enumerate(messages):
            if n and self.part_interval:
                await asyncio.sleep(self.part_interval)
            message_id = await self.send_message(item.chat_id, message, reply_to=reply_to)
        # Marked, so the help desk tells the volunteer the photo was not seen.
        return in_words(message_id) if worded else message_id

    async def _send_photo(self, item: OutboxItem, media: Media) -> str | None:
        """The attachment_id of the row's photo, fetched (a Telegram file_id, through
        `files`) and uploaded now; None when it is to go as words: not a photo, no
        file source, refused for good, or failing still at the `media_attempts`-th try.
        Earlier failures raise `RetryableSend`, so the outbox backs off and tries the
        whole row again (after a restart too: the marker is stored with the row)."""
        ref = media.ref
        if media.kind is not MediaKind.PHOTO or not ref or is_url(ref) or self.files is None:
            return None
        try:
            data = await self.files(ref)
            return await self.upload_image(data)
        except OutsideWindow:
            raise
        except PermanentSend as exc:
            log.warning("zalo: photo for %s cannot be sent, sent in words: %s", item.chat_id, exc)
            return None
        except RetryableSend as exc:
            if item.attempts + 1 < self.media_attempts:
                raise
            log.warning(
                "zalo: photo for %s still failing after %d tries, sent in words: %s",
                item.chat_id,
                item.attempts + 1,
                exc,
            )
            return None

    async def upload_image(self, data: bytes) -> str:
        """Upload an image (multipart field "file") to /v2.0/oa/upload/image; returns
        its attachment_id (module docstring: sources, unverified on Zalo's pages)."""
        files = {"file": ("photo.jpg", data, "image/jpeg")}
        answer = await self._authorized(UPLOAD_IMAGE_PATH, "", files=files)
        result = answer.get("data")
        found = result.get("attachment_id") if isinstance(result, Mapping) else None
        if not found:
            raise PermanentSend("zalo: image upload answered without an attachment_id")
        return str(found)

    async def send_message(
        self, user_id: str, message: dict[str, Any], *, reply_to: str | None = None
    ) -> str:
        """POST one message to /v3.0/oa/message/cs, as a reply to the citizen's message
        `reply_to` when given (bot/channels/zalo_replies.py); errors as `RetryableSend` or
        `PermanentSend` (outside the messaging window: a clear `PermanentSend`)."""
        recipient = {"user_id": user_id}
        if reply_to is not None:
            recipient["message_id"] = reply_to
        body = {"recipient": recipient, "message": message}
        try:
            data = await self._authorized(SEND_PATH, user_id, json=body)
        except PermanentSend as exc:
            if reply_to is None or self.replies is None or isinstance(exc, OutsideWindow):
                raise
            # Refused as a reply (too old, or its replies used up by another process):
            # the same message as a plain customer-service one, so nothing is lost.
            log.info("zalo: reply to %s refused (%s); sent without it", reply_to, exc)
            self.replies.refused(reply_to)
            return await self.send_message(user_id, message)
        if reply_to is not None and self.replies is not None:
            self.replies.used(reply_to)
        result = data.get("data")
        found = result.get("message_id") if isinstance(result, Mapping) else None
        return str(found or "")

    async def _authorized(
        self,
        path: str,
        user_id: str,
        *,
        json: dict[str, Any] | None = None,
        files: dict[str, tuple[str, bytes, str]] | None = None,
    ) -> dict[str, Any]:
        """One OA call with the current access token; a refused token is refreshed and
        the call tried once more."""
        pair = await self.token()
        for attempt in (1, 2):
            try:
                return await self._call(pair.access_token, path, json=json, files=files)
            except ZaloError as exc:
                if exc.code in TOKEN_ERRORS and attempt == 1:
                    log.info("zalo: access token refused (%s); refreshing", exc.code)
                    pair = await self.token(refused=pair)
                    continue
                raise _send_error(exc, user_id) from exc
        raise RetryableSend("zalo: access token refused twice")  # pragma: no cover

    async def _call(
        self,
        access_token: str,
        path: str,
        *,
        json: dict[str, Any] | None = None,
        files: dict[str, tuple[str, bytes, str]] | None = None,
    ) -> dict[str, Any]:
        url = f"{self.api_base_url}{path}"
        headers = {"access_token": access_token}
        try:
            response = await self._http.post(url, json=json, files=files, headers=headers)
        except httpx.TimeoutException as exc:
            raise RetryableSend(f"zalo: timed out: {type(exc).__name__}") from None
        except httpx.HTTPError as exc:
            raise RetryableSend(f"zalo: network error: {type(exc).__name__}") from None
        if response.status_code == 429:
            raise RetryableSend("zalo: 429 rate limited", retry_after=_retry_after(response))
        if response.status_code >= 500:
            raise RetryableSend(f"zalo: HTTP {response.status_code}")
        try:
            data = response.json()
        except ValueError:
            raise RetryableSend(f"zalo: HTTP {response.status_code}, not JSON") from None
        if not isinstance(data, dict):
            raise PermanentSend(f"zalo: HTTP {response.status_code}, unexpected answer")
        code = data.get("error", 0)
        if isinstance(code, int) and code != 0:
            raise ZaloError(code, str(data.get("message", "")))
        if response.status_code >= 400:
            raise PermanentSend(f"zalo: HTTP {response.status_code}")
        return data

    # Tokens

    async def token(self, *, refused: TokenPair | None = None) -> TokenPair:
        """A usable pair: the stored one, refreshed first when it expires soon or when
        Zalo `refused` it. Across processes only one refreshes; the others wait for the
        new pair."""
        async with self._lock:
            pair = await self._current()
            if refused is not None and pair.version != refused.version:
                return pair  # another refresh happened meanwhile
            if refused is None and not self._expiring(pair):
                return pair
            return await self._refresh(pair)

    def _expiring(self, pair: TokenPair) -> bool:
        return pair.expires_at is not None and pair.expires_at - self.refresh_margin <= utcnow()

    async def _current(self) -> TokenPair:
        pair = await run_in_threadpool(self.tokens.current, TOKEN_NAME)
        if pair is None:
            await self.start()
            pair = await run_in_threadpool(self.tokens.current, TOKEN_NAME)
        assert pair is not None
        return pair

    async def _refresh(self, pair: TokenPair) -> TokenPair:
        won = await run_in_threadpool(
            lambda: self.tokens.begin_refresh(TOKEN_NAME, version=pair.version, lease=REFRESH_LEASE)
        )
        if not won:
            return await self._wait_for_newer(pair)
        try:
            access, refresh, expires_at = await self._oauth_refresh(pair.refresh_token)
        except BaseException:
            await run_in_threadpool(
                lambda: self.tokens.abandon_refresh(TOKEN_NAME, version=pair.version)
            )
            raise
        # Stored at once: the old refresh token is dead now.
        stored = await run_in_threadpool(
            lambda: self.tokens.finish_refresh(
                TOKEN_NAME,
                version=pair.version,
                access_token=access,
                refresh_token=refresh,
                expires_at=expires_at,
            )
        )
        if not stored:  # the lease ran out and someone else refreshed: theirs is current
            log.error("zalo: a token refresh was overtaken; using the newer pair")
            return await self._current()
        self.refreshes += 1
        log.info("zalo: access token refreshed (version %s)", pair.version + 1)
        return await self._current()

    async def _wait_for_newer(self, pair: TokenPair) -> TokenPair:
        deadline = utcnow() + REFRESH_LEASE
        while utcnow() < deadline:
            await asyncio.sleep(REFRESH_POLL)
            current = await self._current()
            if current.version != pair.version:
                return current
            if current.refreshing_until is None or current.refreshing_until < utcnow():
                return await self._refresh(current)  # the refresher gave up or died
        raise RetryableSend("zalo: waiting for another process to refresh the token timed out")

    async def _oauth_refresh(self, refresh_token: str) -> tuple[str, str, datetime | None]:
        url = f"{self.oauth_base_url}/v4/oa/access_token"
        form = {
            "app_id": self.app_id,
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
        }
        try:
            response = await self._http.post(
                url, data=form, headers={"secret_key": self._app_secret}
            )
        except httpx.HTTPError as exc:
            raise RetryableSend(f"zalo: token refresh failed: {type(exc).__name__}") from None
        try:
            data = response.json()
        except ValueError:
            raise RetryableSend(f"zalo: token refresh: HTTP {response.status_code}") from None
        access = data.get("access_token") if isinstance(data, dict) else None
        refresh = data.get("refresh_token") if isinstance(data, dict) else None
        if not isinstance(access, str) or not isinstance(refresh, str) or not access or not refresh:
            code = data.get("error") if isinstance(data, dict) else None
            # A refused refresh token cannot be fixed by retrying: the OA must be connected
            # again (README). Messages wait and back off meanwhile.
            log.error(
                "zalo: token refresh refused (HTTP %s, error %s); reconnect the OA",
                response.status_code,
                code,
            )
            raise RetryableSend(f"zalo: token refresh refused (error {code})")
        try:
            seconds = float(data.get("expires_in", ""))
        except (TypeError, ValueError):
            seconds = None
        expires_at = utcnow() + timedelta(seconds=seconds) if seconds else None
        return access, refresh, expires_at


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(1.0, float(response.headers.get("Retry-After", "")))
    except ValueError:
        return RATE_LIMIT_WAIT


def _send_error(exc: ZaloError, user_id: str) -> ChannelError:
    if exc.code in WINDOW_ERRORS:
        # Never retried; the outbox sender's `after_send` hook (the help desk) tells the
        # volunteer in their Telegram chat and notes it on the ticket.
        log.warning("zalo: %s is outside the messaging window (error %s)", user_id, exc.code)
        return OutsideWindow(
            f"zalo error {exc.code}: outside Zalo's messaging window; the citizen must write "
            "to the OA again before it can answer"
        )
    if exc.code in RATE_ERRORS:
        return RetryableSend(str(exc), retry_after=RATE_LIMIT_WAIT)
    if exc.code in TOKEN_ERRORS:
        return RetryableSend(f"{exc} (after a refresh)")
    return PermanentSend(str(exc))


# --- the Bot API ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BotIdentity:
    id: str
    name: str | None


class ZaloBotChannel:
    """The Zalo Bot API (Telegram-like): getMe, setWebhook, sendMessage. Text only:
    choices are a numbered list the citizen answers by typing the number."""

    name = BOT_CHANNEL

    def __init__(
        self,
        token: str,
        *,
        base_url: str = "https://bot-api.zaloplatforms.com",
        timeout: float = 10.0,
        part_interval: float = 0.0,
    ) -> None:
        if not token:
            raise ConfigError("ZALO_BOT_TOKEN is empty")
        self._token = token
        self.base_url = base_url.rstrip("/")
        self.part_interval = part_interval
        self._http = httpx.AsyncClient(timeout=timeout)
        # httpx logs every URL at INFO, and Bot API URLs hold the token.
        self._hide = HideToken(token)
        logging.getLogger("httpx").addFilter(self._hide)

    async def close(self) -> None:
        logging.getLogger("httpx").removeFilter(self._hide)
        await self._http.aclose()

    async def typing(self, chat_id: str) -> None:
        """Not used: one call fewer a message on slow links."""

    async def start(self) -> BotIdentity:
        """Check the token (getMe); raises `ConfigError` naming ZALO_BOT_TOKEN."""
        try:
            result = await self._call("getMe", {})
        except ChannelError as exc:
            raise ConfigError(f"ZALO_BOT_TOKEN: getMe at {self.base_url} failed: {exc}") from None
        if not isinstance(result, Mapping):
            raise ConfigError(f"ZALO_BOT_TOKEN: getMe at {self.base_url} gave no bot")
        name = result.get("account_name") or result.get("display_name") or result.get("name")
        return BotIdentity(id=str(result.get("id", "")), name=str(name) if name else None)

    async def set_webhook(self, url: str, secret: str) -> None:
        """Register `url`; Zalo then calls it once and reports how that went in
        `verification` (logged: a refused test call is the operator's to fix)."""
        result = await self._call("setWebhook", {"url": url, "secret_token": secret})
        check = result.get("verification") if isinstance(result, Mapping) else None
        if isinstance(check, Mapping) and not check.get("ok", True):
            log.warning(
                "zalo bot: Zalo could not reach %s: %s (%s)",
                url,
                check.get("outcome"),
                check.get("hint"),
            )

    async def send(self, item: OutboxItem) -> str:
        """Deliver one outbox row as text (choices numbered). Handoff markers are never
        addressed to this channel; should one come, an edit is skipped and an
        attachment goes as its text and note, like a photo the OA cannot send."""
        marked = special(item.buttons)
        if marked.edit is not None:
            return marked.edit
        text = f"{item.text}\n{marked.note}" if marked.note else item.text
        message_id = ""
        parts = split_text(numbered(text, marked.buttons), MAX_TEXT)
        for n, part in enumerate(parts):
            if n and self.part_interval:
                await asyncio.sleep(self.part_interval)
            result = await self._call("sendMessage", {"chat_id": item.chat_id, "text": part})
            if isinstance(result, Mapping):
                message_id = str(result.get("message_id", ""))
        return message_id

    async def _call(self, method: str, params: dict[str, Any]) -> Any:
        url = f"{self.base_url}/bot{self._token}/{method}"
        try:
            response = await self._http.post(url, json=params)
        except httpx.TimeoutException:
            raise RetryableSend(f"zalo bot {method}: timed out") from None
        except httpx.HTTPError as exc:
            raise RetryableSend(f"zalo bot {method}: network error {type(exc).__name__}") from None
        if response.status_code == 429:
            raise RetryableSend(f"zalo bot {method}: 429", retry_after=_retry_after(response))
        if response.status_code >= 500:
            raise RetryableSend(f"zalo bot {method}: HTTP {response.status_code}")
        try:
            data = response.json()
        except ValueError:
            raise PermanentSend(f"zalo bot {method}: HTTP {response.status_code}") from None
        if not isinstance(data, dict) or not data.get("ok"):
            code = data.get("error_code") if isinstance(data, dict) else None
            text = data.get("description") if isinstance(data, dict) else None
            if code in BOT_RETRY_CODES:
                wait = RATE_LIMIT_WAIT if code == 429 else None
                raise RetryableSend(f"zalo bot {method}: {code} {text}", retry_after=wait)
            raise PermanentSend(f"zalo bot {method}: error {code}: {text}")
        return data.get("result")
