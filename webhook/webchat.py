"""The built-in web chat: a small page at / and a JSON API it calls.

The page keeps a random chat id in the browser and a client message id per message, so
a retried send is handled once. Replies are the chat's outbox rows, marked sent when read.
"""

from __future__ import annotations

from importlib import resources
from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from bot.conversation import ConversationService
from bot.messages import Incoming
from webhook.deps import ServiceDep

CHANNEL = "web"
CHAT_ID = r"^[A-Za-z0-9_-]{8,64}$"
# Far above what anyone types; the engine itself reads only the first part of long text.
MAX_TEXT = 20_000

router = APIRouter()


class ButtonOut(BaseModel):
    label: str
    payload: str
    url: str | None = None


class MessageOut(BaseModel):
    id: int
    text: str
    buttons: list[ButtonOut]


class ChatIn(BaseModel):
    chat_id: str = Field(pattern=CHAT_ID)
    message_id: str | None = Field(default=None, pattern=CHAT_ID)
    text: str = Field(default="", max_length=MAX_TEXT)
    payload: str | None = Field(default=None, max_length=64)
    lang: str | None = Field(default=None, pattern=r"^[a-z]{2}$")
    after: int = Field(default=0, ge=0)


class ChatOut(BaseModel):
    messages: list[MessageOut]


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def page() -> HTMLResponse:
    html = resources.files("webhook").joinpath("static/chat.html").read_text(encoding="utf-8")
    return HTMLResponse(html)


@router.post("/api/chat")
async def send(body: ChatIn, service: ServiceDep) -> ChatOut:
    incoming = Incoming(
        channel=CHANNEL,
        chat_id=body.chat_id,
        text=body.text,
        payload=body.payload or None,
        message_id=body.message_id,
        user_id=body.chat_id,
        lang_hint=body.lang,
    )
    await service.store.run(service.handle, incoming)
    return await run_in_threadpool(_unread, service, body.chat_id, body.after)


@router.get("/api/chat/{chat_id}")
async def poll(
    service: ServiceDep,
    chat_id: Annotated[str, Path(pattern=CHAT_ID)],
    after: Annotated[int, Query(ge=0)] = 0,
) -> ChatOut:
    return await run_in_threadpool(_unread, service, chat_id, after)


def _unread(service: ConversationService, chat_id: str, after: int) -> ChatOut:
    items = service.store.outbox_after(channel=CHANNEL, chat_id=chat_id, after_id=after)
    for item in items:
        if item.status != "sent":
            service.store.mark_sent(item.id)
    return ChatOut(
        messages=[
            MessageOut(
                id=item.id,
                text=item.text,
                buttons=[
                    ButtonOut(label=b.label, payload=b.payload, url=b.url) for b in item.buttons
                ],
            )
            for item in items
        ]
    )
