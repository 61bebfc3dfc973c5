"""A fake Zalo: the OA API v3 (/v3.0/oa/message/cs), its image upload
(/v2.0/oa/upload/image: multipart "file" → data.attachment_id; an image message is a
media template naming it), its OAuth (/v4/oa/access_token) and the Zalo Bot API
(/bot<token>/<method>), plus citizens who write to the OA.

The OAuth side behaves like Zalo's: a refresh token works once, a new pair replaces
the old one, an unknown access token gets error -216. Faults on demand: expire the
access token now, answer 429 or error -32, refuse a user as outside the messaging
window (-230), slow down refreshes (to make two processes race), answer uploads with
HTTP 500; on the Bot API,
answer error_code 429 or 408. Serve with `served()`. `ZaloCitizen` builds signed OA
events, `ZaloBotUser` Bot API updates.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import MISSING, dataclass, field, fields
from email.parser import BytesParser
from email.policy import default
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from bot.channels.zalo import PAYLOAD_PREFIX, signature
from tests.live import LiveServer

APP_ID = "4291763606161179100"
APP_SECRET = "fake-app-secret"
OA_SECRET_KEY = "fake-oa-secret-key"
OA_ID = "579745863508352884"
BOT_TOKEN = "12345689:fake-zalo-bot-token"
_ids = itertools.count(1)


@dataclass(frozen=True)
class ZaloSent:
    """A message the OA sent."""

    user_id: str
    text: str
    buttons: list[dict[str, Any]]
    access_token: str
    image: bytes | None = None  # the uploaded image the message shows
    reply_to: str | None = None  # recipient.message_id: the user message it answers

    @property
    def labels(self) -> list[str]:
        return [str(b["title"]) for b in self.buttons]

    def button(self, label: str) -> dict[str, Any]:
        for b in self.buttons:
            title = str(b["title"])
            if title == label or title.partition(". ")[2] == label:
                return b
        raise AssertionError(f"no button {label!r} under {self.text[:60]!r}: {self.labels}")


@dataclass(frozen=True)
class ZaloUpload:
    """An image the OA uploaded."""

    attachment_id: str
    data: bytes
    filename: str
    content_type: str
    access_token: str


@dataclass
class FakeZalo:
    """Thread-safe: the server runs in another thread."""

    base_url: str = ""
    access_tokens: set[str] = field(default_factory=lambda: {"access-0"})
    refresh_token: str = "refresh-0"
    expires_in: str = "90000"
    refresh_delay: float = 0.0
    sent: list[ZaloSent] = field(default_factory=list)
    refresh_calls: list[dict[str, str]] = field(default_factory=list)
    refused_refresh: int = 0  # refreshes with a used or unknown refresh token
    outside_window: set[str] = field(default_factory=set)
    window_code: int = -230  # or -232, -213: how Zalo refuses those users
    token_code: int = -216  # or -220: how Zalo refuses an unknown or expired token
    bad_params: int = 0  # the next n sends answer error -201 (a bad parameter)
    rate_limits: int = 0  # the next n sends answer HTTP 429
    rate_errors: int = 0  # the next n sends answer error -32
    refused_replies: set[str] = field(default_factory=set)  # msg ids not taken as replies
    uploads: list[ZaloUpload] = field(default_factory=list)
    upload_errors: int = 0  # the next n uploads answer HTTP 500
    bot_webhook: dict[str, Any] | None = None
    bot_sent: list[dict[str, Any]] = field(default_factory=list)
    bot_errors: list[int] = field(default_factory=list)  # the next sends answer these
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _generation: int = 0

    def __post_init__(self) -> None:
        self.app = FastAPI()
        self.app.add_api_route("/v3.0/oa/message/cs", self._send, methods=["POST"])
        self.app.add_api_route("/v2.0/oa/upload/image", self._upload, methods=["POST"])
        self.app.add_api_route("/v4/oa/access_token", self._refresh, methods=["POST"])
        self.app.add_api_route("/bot{token}/{method}", self._bot, methods=["POST"])

    # -- what tests call -------------------------------------------------------------------

    def reset(self) -> None:
        """Back to a new fake's state: tokens, faults and recordings (to reuse one served
        fake across tests; its address and app stay)."""
        with self._lock:
            for f in fields(self):
                if f.name in ("base_url", "_lock"):
                    continue
                fresh = f.default_factory() if f.default_factory is not MISSING else f.default
                setattr(self, f.name, fresh)

    def expire_access_tokens(self) -> None:
        with self._lock:
            self.access_tokens.clear()

    def messages(self, user_id: str) -> list[ZaloSent]:
        with self._lock:
            return [m for m in self.sent if m.user_id == user_id]

    def bot_messages(self, chat_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [m for m in self.bot_sent if m["chat_id"] == chat_id]

    # -- the API ---------------------------------------------------------------------------

    async def _send(self, request: Request) -> JSONResponse:
        token = request.headers.get("access_token", "")
        body = await request.json()
        with self._lock:
            if self.rate_limits:
                self.rate_limits -= 1
                return JSONResponse({"error": 429}, status_code=429, headers={"Retry-After": "1"})
            if self.rate_errors:
                self.rate_errors -= 1
                return JSONResponse({"error": -32, "message": "Exceed rate limit"})
            if token not in self.access_tokens:
                return JSONResponse({"error": self.token_code, "message": "Access token"})
            if self.bad_params:
                self.bad_params -= 1
                return JSONResponse({"error": -201, "message": "message is invalid!"})
            user_id = str(body["recipient"]["user_id"])
            reply_to = body["recipient"].get("message_id")
            if reply_to is not None and reply_to in self.refused_replies:
                return JSONResponse({"error": -201, "message": "message_id is invalid"})
            if user_id in self.outside_window:
                return JSONResponse(
                    {"error": self.window_code, "message": "User has not interacted with the OA"}
                )
            message = body["message"]
            attachment = message.get("attachment") or {}
            payload = attachment.get("payload", {})
            buttons = payload.get("buttons", [])
            image = None
            if payload.get("template_type") == "media":
                image = self._uploaded(payload.get("elements") or [])
                if image is None:
                    return JSONResponse({"error": -201, "message": "attachment_id is invalid"})
            text = str(message.get("text", ""))
            self.sent.append(ZaloSent(user_id, text, buttons, token, image, reply_to))
            msg_id = f"oa-{next(_ids)}"
        return JSONResponse(
            {"data": {"message_id": msg_id, "user_id": user_id}, "error": 0, "message": "Success"}
        )

    def _uploaded(self, elements: list[dict[str, Any]]) -> bytes | None:
        """The bytes of the one image element's upload (called under the lock)."""
        if len(elements) != 1 or elements[0].get("media_type") != "image":
            return None
        wanted = elements[0].get("attachment_id")
        return next((u.data for u in self.uploads if u.attachment_id == wanted), None)

    async def _upload(self, request: Request) -> JSONResponse:
        token = request.headers.get("access_token", "")
        parts = _multipart(request.headers.get("content-type", ""), await request.body())
        with self._lock:
            if self.upload_errors:
                self.upload_errors -= 1
                return JSONResponse({"error": 500, "message": "fault"}, status_code=500)
            if token not in self.access_tokens:
                return JSONResponse({"error": self.token_code, "message": "Access token"})
            file = parts.get("file")
            if file is None or not file[2].startswith("image/") or not file[0]:
                return JSONResponse({"error": -201, "message": "file is invalid"})
            upload = ZaloUpload(f"att-{next(_ids)}", file[0], file[1], file[2], token)
            self.uploads.append(upload)
        return JSONResponse(
            {"data": {"attachment_id": upload.attachment_id}, "error": 0, "message": "Success"}
        )

    async def _refresh(self, request: Request) -> JSONResponse:
        # Parsed by hand: python-multipart (Starlette's form parser) is not a dependency.
        params = dict(parse_qsl((await request.body()).decode("utf-8")))
        if self.refresh_delay:
            # Outside the lock: a second refresher may arrive meanwhile.
            await asyncio.sleep(self.refresh_delay)
        with self._lock:
            self.refresh_calls.append(params)
            valid = (
                request.headers.get("secret_key") == APP_SECRET
                and params.get("app_id") == APP_ID
                and params.get("grant_type") == "refresh_token"
                and params.get("refresh_token") == self.refresh_token
            )
            if not valid:
                self.refused_refresh += 1
                return JSONResponse(
                    {"error": -14014, "error_name": "Invalid refresh token", "error_reason": ""}
                )
            self._generation += 1
            access = f"access-{self._generation}"
            self.refresh_token = f"refresh-{self._generation}"
            self.access_tokens = {access}
            return JSONResponse(
                {
                    "access_token": access,
                    "refresh_token": self.refresh_token,
                    "expires_in": self.expires_in,
                }
            )

    async def _bot(self, token: str, method: str, request: Request) -> JSONResponse:
        if token != BOT_TOKEN:
            return JSONResponse({"ok": False, "error_code": 401, "description": "Unauthorized"})
        params = await request.json()
        with self._lock:
            if method == "getMe":
                result: Any = {
                    "id": "4242",
                    "account_name": "bot.citizen",
                    "can_join_groups": False,
                }
            elif method == "setWebhook":
                self.bot_webhook = dict(params)
                result = {"url": params["url"], "updated_at": int(time.time() * 1000)}
            elif method in ("sendMessage", "sendPhoto") and self.bot_errors:
                code = self.bot_errors.pop(0)
                return JSONResponse({"ok": False, "error_code": code, "description": "fault"})
            elif method in ("sendMessage", "sendPhoto"):
                text = params.get("text", params.get("caption", ""))
                if not 1 <= len(text) <= 2000 and method == "sendMessage":
                    return JSONResponse({"ok": False, "error_code": 400, "description": "text"})
                self.bot_sent.append({"method": method, **params})
                result = {"message_id": f"bot-{next(_ids)}", "date": int(time.time() * 1000)}
            else:
                return JSONResponse({"ok": False, "error_code": 404, "description": "Not Found"})
        return JSONResponse({"ok": True, "result": result})


def _multipart(content_type: str, body: bytes) -> dict[str, tuple[bytes, str, str]]:
    """form field → (bytes, filename, content type), parsed with the standard library
    (python-multipart, Starlette's form parser, is not a dependency)."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = BytesParser(policy=default).parsebytes(head + body)
    fields: dict[str, tuple[bytes, str, str]] = {}
    if not message.is_multipart():
        return fields
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        data = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(data, bytes):
            fields[name] = (data, part.get_filename() or "", part.get_content_type())
    return fields


@contextmanager
def served(fake: FakeZalo | None = None) -> Iterator[FakeZalo]:
    fake = fake or FakeZalo()
    with LiveServer(fake.app) as server:
        fake.base_url = server.url
        yield fake


@dataclass
class ZaloCitizen:
    """One Zalo user writing to the OA: builds signed webhook calls."""

    user_id: str

    def event(self, event_name: str, message: dict[str, Any] | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "app_id": APP_ID,
            "user_id_by_app": f"app-{self.user_id}",
            "event_name": event_name,
            "timestamp": str(int(time.time() * 1000) + next(_ids)),
        }
        if event_name in ("follow", "unfollow"):
            data.update(oa_id=OA_ID, source="oa_profile", follower={"id": self.user_id})
        else:
            data.update(sender={"id": self.user_id}, recipient={"id": OA_ID})
            data["message"] = {"msg_id": f"msg-{next(_ids)}", **(message or {})}
        return data

    def text(self, text: str) -> dict[str, Any]:
        return self.event("user_send_text", {"text": text})

    def press(self, sent: ZaloSent, label: str) -> dict[str, Any]:
        """Pressing an oa.query.hide button sends its payload as the user's text."""
        payload = sent.button(label)["payload"]
        assert str(payload).startswith(PAYLOAD_PREFIX) or str(payload).isdigit()
        return self.text(str(payload))

    def image(self, url: str = "https://z/i.jpg", text: str = "") -> dict[str, Any]:
        attachment = {"type": "image", "payload": {"thumbnail": "t", "url": url}}
        return self.event("user_send_image", {"text": text, "attachments": [attachment]})

    def audio(self, url: str = "https://z/voice.aac") -> dict[str, Any]:
        attachment = {"type": "audio", "payload": {"url": url}}
        return self.event("user_send_audio", {"attachments": [attachment]})

    def unfollow(self) -> dict[str, Any]:
        return self.event("unfollow")

    def location(self, latitude: float, longitude: float) -> dict[str, Any]:
        coordinates = {"latitude": str(latitude), "longitude": str(longitude)}
        attachment = {"type": "location", "payload": {"coordinates": coordinates}}
        return self.event("user_send_location", {"attachments": [attachment]})


def signed(data: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    """The body and headers Zalo would POST for `data`."""
    body = json.dumps(data, ensure_ascii=False).encode("utf-8")
    mac = signature(APP_ID, body, str(data.get("timestamp", "")), OA_SECRET_KEY)
    return body, {"X-ZEvent-Signature": mac, "Content-Type": "application/json"}


@dataclass
class ZaloBotUser:
    """One Zalo user writing to a Zalo Bot: builds webhook updates as the Bot API
    sends them ({"ok", "result": {"event_name", "message"}})."""

    user_id: str
    name: str = "Lan"

    def update(self, event_name: str, fields: dict[str, Any]) -> dict[str, Any]:
        message = {
            "from": {"id": self.user_id, "display_name": self.name, "is_bot": False},
            "chat": {"id": self.user_id, "chat_type": "PRIVATE"},
            "message_id": f"bm-{next(_ids)}",
            "date": int(time.time() * 1000),
            **fields,
        }
        return {"ok": True, "result": {"event_name": event_name, "message": message}}

    def text(self, text: str) -> dict[str, Any]:
        return self.update("message.text.received", {"text": text})

    def photo(self, url: str = "https://z/bot.jpg", caption: str = "") -> dict[str, Any]:
        fields: dict[str, Any] = {"photo": url}
        if caption:
            fields["caption"] = caption
        return self.update("message.image.received", fields)

    def voice(self, url: str = "https://z/bot.aac") -> dict[str, Any]:
        return self.update("message.voice.received", {"voice_url": url})

    def sticker(self) -> dict[str, Any]:
        return self.update("message.sticker.received", {"sticker": "s-1", "url": "https://z/s"})
