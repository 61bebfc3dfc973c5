"""Fixtures for webhook tests: the real app with real content, served on a local port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.content import ContentLibrary
from bot.conversation import ConversationService
from bot.store import Store
from tests.live import LiveServer
from webhook.app import create_app

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def service(store: Store) -> ConversationService:
    library = ContentLibrary(flows_dir=ROOT / "flows", knowledge_dir=ROOT / "knowledge")
    return ConversationService(store=store, library=library)


@pytest.fixture
def live(service: ConversationService) -> Iterator[LiveServer]:
    with LiveServer(create_app(service)) as server:
        yield server
