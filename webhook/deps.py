"""FastAPI dependencies as `Annotated` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from bot.conversation import ConversationService


def get_service(request: Request) -> ConversationService:
    service: ConversationService = request.app.state.service
    return service


ServiceDep = Annotated[ConversationService, Depends(get_service)]
