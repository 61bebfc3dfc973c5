"""A fake Telegram Bot API server, and citizens who write to the bot.

`FakeBotApi.app` speaks the Bot API's JSON at `/bot<token>/<method>` (form or JSON
parameters, as python-telegram-bot sends them): getMe, setWebhook, deleteWebhook,
getUpdates, sendMessage, editMessageReplyMarkup, editMessageText, answerCallbackQuery,
sendChatAction, setMyCommands and getMyCommands (by language_code, default scope
only), and the attachments: sendPhoto, sendVoice, sendAudio, sendVideo,
sendDocument, sendSticker (a file_id, or for a photo an http(s) URL; recorded as `Sent`
with `media`); getFile and the file server (`/file/bot<token>/<file_path>`) for the
files a test puts in `files` (file_id → bytes; downloads recorded in `downloads`).
Serve it with `tests.live.LiveServer` and point the real client at `base_url`. Faults
on demand: the next calls of a method answer 429 with retry_after, 500, or hang past
the client's timeout; chosen chats answer 403 (blocked); another token gets 401.

`Citizen` builds realistic update JSON (text, button press, photo, voice, sticker,
video, location) for one private chat.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from tests.live import LiveServer

BOT_ID = 7_000_000_001
BOT_USERNAME = "citizen_test_bot"
# Parameters that python-telegram-bot sends JSON-encoded in a form.
_JSON_PARAMS = {"reply_markup", "allowed_updates", "link_preview_options", "commands", "scope"}
# setMyCommands: a command is 1-32 of a-z, 0-9 and _; a description 1-256 characters.
_COMMAND = re.compile(r"^[a-z0-9_]{1,32}$")
_update_ids = itertools.count(500_000)
_message_ids = itertools.count(1)


@dataclass(frozen=True)
class Call:
    """One request the fake answered."""

    method: str
    params: dict[str, Any]
    status: int  # 0: no answer (a hang)
    at: float  # time.monotonic() when it was answered


@dataclass(frozen=True)
class Sent:
    """A message the bot sent."""

    message_id: int
    chat_id: int
    text: str
    reply_markup: dict[str, Any] | None
    at: float
    media: tuple[str, str] | None = None  # (kind, file_id or URL) of an attachment

    @property
    def buttons(self) -> list[dict[str, Any]]:
        rows = (self.reply_markup or {}).get("inline_keyboard", [])
        return [button for row in rows for button in row]

    @property
    def labels(self) -> list[str]:
        return [str(b["text"]) for b in self.buttons]

    def button(self, label: str) -> dict[str, Any]:
        """The button whose text is `label` or `<n>. label`."""
        for b in self.buttons:
            text = str(b["text"])
            if text == label or text.partition(". ")[2] == label:
                return b
        raise AssertionError(f"no button {label!r} under {self.text[:60]!r}: {self.labels}")

    def as_json(self) -> dict[str, Any]:
        """The message as Telegram includes it in a callback query."""
        data: dict[str, Any] = {
            "message_id": self.message_id,
            "date": int(time.time()),
            "chat": {"id": self.chat_id, "type": "private", "first_name": "Citizen"},
            "from": _bot_user(),
            "text": self.text,
        }
        if self.reply_markup:
            data["reply_markup"] = self.reply_markup
        return data


@dataclass
class _Fault:
    status: int  # 429, 500, or 0 for a hang
    retry_after: int = 1


@dataclass
class FakeBotApi:
    """The Bot API of one bot. Thread-safe: the server runs in another thread."""

    token: str = "123456:TEST-fake-token"
    base_url: str = ""  # set once served: "http://127.0.0.1:PORT/bot"
    hang_seconds: float = 1.5
    calls: list[Call] = field(default_factory=list)
    sent: list[Sent] = field(default_factory=list)
    edits: list[dict[str, Any]] = field(default_factory=list)
    text_edits: list[dict[str, Any]] = field(default_factory=list)  # editMessageText
    answered: list[str] = field(default_factory=list)  # callback query ids
    actions: list[tuple[int, str]] = field(default_factory=list)
    webhook: dict[str, Any] | None = None
    # setMyCommands: language_code ("" for the default list) → [{command, description}]
    commands: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    blocked: set[int] = field(default_factory=set)
    unfetchable: set[str] = field(default_factory=set)  # URLs Telegram cannot download
    files: dict[str, bytes] = field(default_factory=dict)  # file_id → what users sent
    downloads: list[str] = field(default_factory=list)  # file paths fetched, in order
    _updates: list[dict[str, Any]] = field(default_factory=list)
    _faults: dict[str, deque[_Fault]] = field(default_factory=dict)
    _chat_faults: dict[int, deque[_Fault]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.app = FastAPI()
        self.app.add_api_route(
            "/bot{token}/{method}", self._endpoint, methods=["GET", "POST"], response_model=None
        )
        self.app.add_api_route(
            "/file/bot{token}/{file_path:path}",
            self._download,
            methods=["GET"],
            response_model=None,
        )

    # -- what tests call -------------------------------------------------------------------

    def reset(self) -> None:
        """Forget every call, message, fault and block (to reuse one served fake)."""
        with self._lock:
            recorded_lists = (
                self.calls,
                self.sent,
                self.edits,
                self.text_edits,
                self.answered,
                self.actions,
            )
            for recorded in recorded_lists:
                recorded.clear()
            self.webhook = None
            self.commands.clear()
            self.blocked.clear()
            self.unfetchable.clear()
            self.files.clear()
            self.downloads.clear()
            self._updates.clear()
            self._faults.clear()
            self._chat_faults.clear()

    def fail(self, method: str, times: int = 1, *, status: int = 500, retry_after: int = 1) -> None:
        """The next `times` calls of `method` answer `status` (429 carries retry_after)."""
        with self._lock:
            faults = self._faults.setdefault(method, deque())
            faults.extend(_Fault(status, retry_after) for _ in range(times))

    def fail_chat(
        self, chat_id: int, times: int = 1, *, status: int = 429, retry_after: int = 1
    ) -> None:
        """The next `times` calls to chat `chat_id` (any method) answer `status`."""
        with self._lock:
            faults = self._chat_faults.setdefault(chat_id, deque())
            faults.extend(_Fault(status, retry_after) for _ in range(times))

    def hang(self, method: str, times: int = 1) -> None:
        """The next `times` calls of `method` get no answer for `hang_seconds`."""
        self.fail(method, times, status=0)

    def block(self, chat_id: int) -> None:
        """This citizen blocked the bot: sending to them answers 403."""
        with self._lock:
            self.blocked.add(chat_id)

    def queue_update(self, update: dict[str, Any]) -> None:
        """An update for getUpdates (long polling)."""
        with self._lock:
            self._updates.append(update)

    def messages(self, chat_id: int) -> list[Sent]:
        with self._lock:
            return [m for m in self.sent if m.chat_id == chat_id]

    def texts(self, chat_id: int) -> list[str]:
        return [m.text for m in self.messages(chat_id)]

    def edited(self, chat_id: int, message_id: int) -> list[dict[str, Any]]:
        """The editMessageText calls on one message, in order."""
        with self._lock:
            return [
                e
                for e in self.text_edits
                if int(e["chat_id"]) == chat_id and int(e["message_id"]) == message_id
            ]

    def calls_of(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    # -- the server ------------------------------------------------------------------------

    async def _endpoint(self, token: str, method: str, request: Request) -> JSONResponse:
        params = await _params(request)
        if token != self.token:
            return self._answer(method, params, 401, _error(401, "Unauthorized"))
        with self._lock:
            faults = self._faults.get(method)
            fault = faults.popleft() if faults else None
            chat = params.get("chat_id")
            chat_faults = self._chat_faults.get(int(chat)) if chat is not None else None
            if fault is None and chat_faults:
                fault = chat_faults.popleft()
        if fault is not None and fault.status == 0:
            response = self._answer(method, params, 0, _error(504, "Gateway Timeout"))
            await asyncio.sleep(self.hang_seconds)  # the client has given up by now
            return response
        if fault is not None and fault.status == 429:
            body = _error(429, f"Too Many Requests: retry after {fault.retry_after}")
            body["parameters"] = {"retry_after": fault.retry_after}
            return self._answer(method, params, 429, body)
        if fault is not None:
            return self._answer(method, params, fault.status, _error(fault.status, "Server Error"))
        if method == "getUpdates":
            return await self._get_updates(params)
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            return self._answer(method, params, 404, _error(404, "Not Found: method not found"))
        status, body = handler(params)
        return self._answer(method, params, status, body)

    def _answer(
        self, method: str, params: dict[str, Any], status: int, body: dict[str, Any]
    ) -> JSONResponse:
        with self._lock:
            self.calls.append(Call(method, params, status, time.monotonic()))
        return JSONResponse(body, status_code=status or 504)

    def _m_getFile(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        file_id = str(params.get("file_id", ""))
        with self._lock:
            data = self.files.get(file_id)
        if data is None:
            return 400, _error(400, "Bad Request: invalid file_id")
        file = {
            "file_id": file_id,
            "file_unique_id": f"u-{abs(hash(file_id))}",
            "file_size": len(data),
            "file_path": f"photos/{file_id}.jpg",
        }
        return 200, _ok(file)

    async def _download(self, token: str, file_path: str) -> Response:
        """The file server: the token in the path, like Telegram's."""
        with self._lock:
            self.downloads.append(file_path)
            file_id = file_path.removeprefix("photos/").removesuffix(".jpg")
            data = self.files.get(file_id) if token == self.token else None
        if data is None:
            return JSONResponse(_error(404, "Not Found"), status_code=404)
        return Response(data, media_type="image/jpeg")

    def _m_getMe(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return 200, _ok(_bot_user())

    def _m_setWebhook(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.webhook = params
        return 200, _ok(True)

    def _m_deleteWebhook(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.webhook = None
        return 200, _ok(True)

    def _m_setMyCommands(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        commands = params.get("commands")
        scope = params.get("scope") or {"type": "default"}
        if not isinstance(commands, list) or len(commands) > 100:
            return 400, _error(400, "Bad Request: can't parse commands JSON object")
        for command in commands:
            name = str(command.get("command", "")) if isinstance(command, dict) else ""
            description = str(command.get("description", "")) if name else ""
            if not _COMMAND.match(name):
                return 400, _error(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(description) <= 256:
                return 400, _error(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
        if scope.get("type") != "default":
            return 400, _error(400, "Bad Request: the fake knows the default scope only")
        language = str(params.get("language_code") or "")
        if language and not re.fullmatch(r"[a-z]{2}", language):
            return 400, _error(400, "Bad Request: LANG_CODE_INVALID")
        with self._lock:
            self.commands[language] = [
                {"command": str(c["command"]), "description": str(c["description"])}
                for c in commands
            ]
        return 200, _ok(True)

    def _m_getMyCommands(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        language = str(params.get("language_code") or "")
        with self._lock:
            # Telegram falls back to the default list for a language without its own.
            found = self.commands.get(language, self.commands.get("", []))
            return 200, _ok(list(found))

    def _m_sendMessage(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        chat_id = int(params["chat_id"])
        if chat_id in self.blocked:
            return 403, _error(403, "Forbidden: bot was blocked by the user")
        text = str(params.get("text", ""))
        if not text.strip() or len(text.encode("utf-16-le")) // 2 > 4096:
            return 400, _error(400, "Bad Request: message text is empty or too long")
        markup = params.get("reply_markup")
        for row in (markup or {}).get("inline_keyboard", []):
            for button in row:
                data = button.get("callback_data")
                if data is not None and not 1 <= len(str(data).encode()) <= 64:
                    return 400, _error(400, "Bad Request: BUTTON_DATA_INVALID")
        message = Sent(next(_message_ids), chat_id, text, markup, time.monotonic())
        with self._lock:
            self.sent.append(message)
        return 200, _ok(message.as_json())

    def _media(self, kind: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        chat_id = int(params["chat_id"])
        if chat_id in self.blocked:
            return 403, _error(403, "Forbidden: bot was blocked by the user")
        ref = str(params.get(kind, ""))
        url = ref.startswith(("http://", "https://"))
        if not ref or (url and (kind != "photo" or ref in self.unfetchable)):
            return 400, _error(400, "Bad Request: wrong file identifier/HTTP URL specified")
        caption = str(params.get("caption", ""))
        if len(caption.encode("utf-16-le")) // 2 > 1024:
            return 400, _error(400, "Bad Request: message caption is too long")
        markup = params.get("reply_markup")
        message = Sent(next(_message_ids), chat_id, caption, markup, time.monotonic(), (kind, ref))
        with self._lock:
            self.sent.append(message)
        return 200, _ok({**message.as_json(), kind: _file(kind, ref)})

    def _m_sendPhoto(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return self._media("photo", params)

    def _m_sendVoice(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return self._media("voice", params)

    def _m_sendAudio(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return self._media("audio", params)

    def _m_sendVideo(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return self._media("video", params)

    def _m_sendDocument(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return self._media("document", params)

    def _m_sendSticker(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return self._media("sticker", params)

    def _m_editMessageText(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        chat_id, message_id = int(params["chat_id"]), int(params["message_id"])
        with self._lock:
            known = any(m.chat_id == chat_id and m.message_id == message_id for m in self.sent)
            before = [
                e
                for e in self.text_edits
                if int(e["chat_id"]) == chat_id and int(e["message_id"]) == message_id
            ]
            if not known:
                return 400, _error(400, "Bad Request: message to edit not found")
            same = before and before[-1].get("text") == params.get("text")
            if same and before[-1].get("reply_markup") == params.get("reply_markup"):
                return 400, _error(400, "Bad Request: message is not modified")
            self.text_edits.append(params)
        return 200, _ok(True)

    def _m_editMessageReplyMarkup(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.edits.append(params)
        return 200, _ok(True)

    def _m_answerCallbackQuery(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.answered.append(str(params["callback_query_id"]))
        return 200, _ok(True)

    def _m_sendChatAction(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.actions.append((int(params["chat_id"]), str(params["action"])))
        return 200, _ok(True)

    async def _get_updates(self, params: dict[str, Any]) -> JSONResponse:
        offset = int(params.get("offset") or 0)
        # Wait a little for news, like the real long poll (shorter, to keep tests fast).
        deadline = time.monotonic() + min(float(params.get("timeout") or 0), 0.5)
        while True:
            with self._lock:
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
                ready = list(self._updates)
            if ready or time.monotonic() >= deadline:
                return self._answer("getUpdates", params, 200, _ok(ready))
            await asyncio.sleep(0.02)


async def _params(request: Request) -> dict[str, Any]:
    body = await request.body()
    params: dict[str, Any] = dict(request.query_params)
    if request.headers.get("content-type", "").startswith("application/json") and body:
        params.update(json.loads(body))
        return params
    for key, value in parse_qsl(body.decode("utf-8"), keep_blank_values=True):
        params[key] = json.loads(value) if key in _JSON_PARAMS else value
    return params


def _ok(result: Any) -> dict[str, Any]:
    return {"ok": True, "result": result}


def _error(code: int, description: str) -> dict[str, Any]:
    return {"ok": False, "error_code": code, "description": description}


def _file(kind: str, ref: str) -> Any:
    """The attachment object of a sent message, as the Bot API describes each kind."""
    base: dict[str, Any] = {"file_id": ref, "file_unique_id": f"u-{abs(hash(ref))}"}
    if kind == "photo":
        return [{**base, "width": 720, "height": 1280}]
    if kind in ("voice", "audio"):
        return {**base, "duration": 4}
    if kind == "video":
        return {**base, "width": 640, "height": 360, "duration": 12}
    if kind == "sticker":
        return {
            **base,
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
        }
    return base


def _bot_user() -> dict[str, Any]:
    return {"id": BOT_ID, "is_bot": True, "first_name": "Trợ lý VNeID", "username": BOT_USERNAME}


# --- citizens -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Citizen:
    """A Telegram user in a private chat with the bot; builds their updates."""

    id: int
    first_name: str = "Lan"
    language_code: str | None = "vi"

    @property
    def chat_id(self) -> str:
        return str(self.id)

    def user(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.language_code:
            data["language_code"] = self.language_code
        return data

    def _message(self, **content: Any) -> dict[str, Any]:
        message = {
            "message_id": next(_message_ids),
            "date": int(time.time()),
            "chat": {"id": self.id, "type": "private", "first_name": self.first_name},
            "from": self.user(),
            **content,
        }
        return {"update_id": next(_update_ids), "message": message}

    def text(self, text: str) -> dict[str, Any]:
        content: dict[str, Any] = {"text": text}
        if text.startswith("/"):
            command = text.split(" ", 1)[0]
            content["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        return self._message(**content)

    def press(self, message: Sent, label: str) -> dict[str, Any]:
        """Press the button `label` under `message`."""
        return self.callback(message, str(message.button(label)["callback_data"]))

    def callback(self, message: Sent, data: str) -> dict[str, Any]:
        uid = next(_update_ids)
        query = {
            "id": f"cq-{uid}",
            "from": self.user(),
            "chat_instance": f"ci-{self.id}",
            "data": data,
            "message": message.as_json(),
        }
        return {"update_id": uid, "callback_query": query}

    def photo(self, caption: str | None = None) -> dict[str, Any]:
        sizes = [
            {"file_id": "AgAC-small", "file_unique_id": "s1", "width": 90, "height": 160},
            {"file_id": "AgAC-large", "file_unique_id": "l1", "width": 720, "height": 1280},
        ]
        return self._message(photo=sizes, **({"caption": caption} if caption else {}))

    def voice(self) -> dict[str, Any]:
        voice = {"file_id": "AwAC-voice", "file_unique_id": "v1", "duration": 4}
        return self._message(voice={**voice, "mime_type": "audio/ogg"})

    def document(self, caption: str | None = None) -> dict[str, Any]:
        document = {"file_id": "BQAC-doc", "file_unique_id": "f1", "file_name": "loi.pdf"}
        return self._message(document=document, **({"caption": caption} if caption else {}))

    def sticker(self) -> dict[str, Any]:
        sticker = {"file_id": "CAAC-sticker", "file_unique_id": "k1", "type": "regular"}
        return self._message(
            sticker={
                **sticker,
                "width": 512,
                "height": 512,
                "is_animated": False,
                "is_video": False,
            }
        )

    def video(self) -> dict[str, Any]:
        video = {"file_id": "BAAC-video", "file_unique_id": "d1", "width": 640, "height": 360}
        return self._message(video={**video, "duration": 12})

    def location(self, latitude: float, longitude: float) -> dict[str, Any]:
        return self._message(location={"latitude": latitude, "longitude": longitude})

    def edited(self, text: str) -> dict[str, Any]:
        update = self.text(text)
        update["edited_message"] = {**update.pop("message"), "edit_date": int(time.time())}
        return update

    def blocked_bot(self) -> dict[str, Any]:
        """The update Telegram sends when this citizen blocks the bot."""
        chat = {"id": self.id, "type": "private", "first_name": self.first_name}
        member = {
            "chat": chat,
            "from": self.user(),
            "date": int(time.time()),
            "old_chat_member": {"user": _bot_user(), "status": "member"},
            "new_chat_member": {"user": _bot_user(), "status": "kicked", "until_date": 0},
        }
        return {"update_id": next(_update_ids), "my_chat_member": member}


@contextmanager
def served(api: FakeBotApi | None = None) -> Iterator[FakeBotApi]:
    """`api` (a new one by default) served on a local port, `base_url` set."""
    api = api or FakeBotApi()
    with LiveServer(api.app) as server:
        api.base_url = server.url + "/bot"
        yield api
