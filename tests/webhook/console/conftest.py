"""Fixtures for console tests: the real app on each database (`store`) under a real
server, a small world of teams, volunteers and tickets, and an HTTP client."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from fastapi import FastAPI

from bot.content import ContentLibrary
from bot.conversation import ConversationService
from bot.store import Store
from tests.live import LiveServer
from tests.webhook.console.world import World, load_library, make_service
from webhook.app import create_app
from webhook.console.settings import ConsoleSettings


@pytest.fixture(scope="session")
def library() -> ContentLibrary:
    return load_library()


@pytest.fixture
def service(store: Store, library: ContentLibrary) -> ConversationService:
    return make_service(store, library)


@pytest.fixture
def world(service: ConversationService) -> World:
    return World.build(service)


def console_app(service: ConversationService, **settings: object) -> FastAPI:
    app = create_app(service)
    settings.setdefault("public_base_url", None)  # the test's, not the environment's
    app.state.console_settings = ConsoleSettings(_env_file=None, **settings)  # type: ignore[arg-type]
    return app


@pytest.fixture
def app(service: ConversationService) -> FastAPI:
    return console_app(service)


@contextmanager
def served(app: FastAPI) -> Iterator[httpx.Client]:
    """`app` under uvicorn on a free port, and a client with its own cookie jar."""
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


@pytest.fixture
def client(app: FastAPI) -> Iterator[httpx.Client]:
    with served(app) as test_client:
        yield test_client
