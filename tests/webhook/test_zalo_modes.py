"""The Zalo mode is chosen by configuration (ZALO_MODE and which settings are there), and
a mode that cannot work stops the start with a message that names the setting. Real
start-ups against the fake Zalo (getMe, setWebhook over HTTP). Both databases."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from bot.channels.zalo import ZaloBotChannel, ZaloOAChannel
from bot.conversation import ConversationService
from bot.errors import ConfigError
from tests.fakes.zalo import BOT_TOKEN, FakeZalo, served
from tests.webhook.test_zalo import PUBLIC, zalo_settings
from webhook.zalo import start_zalo

BOT = {"zalo_bot_token": BOT_TOKEN, "zalo_bot_webhook_secret": "zalo-bot-secret-123"}
NO_OA = {"zalo_app_id": None, "zalo_oa_access_token": None}


@pytest.fixture(scope="module")
def served_fake() -> Iterator[FakeZalo]:
    with served() as fake:
        yield fake


@pytest.fixture
def fake(served_fake: FakeZalo) -> FakeZalo:
    served_fake.reset()
    return served_fake


def started(fake: FakeZalo, service: ConversationService, **values: Any) -> str:
    """The kind of channel Zalo starts with, or "none"."""

    async def main() -> str:
        runtime = await start_zalo(zalo_settings(fake, **values), service)
        if runtime is None:
            return "none"
        await runtime.stop()
        kind = {ZaloOAChannel: "oa", ZaloBotChannel: "bot"}[type(runtime.channel)]
        return kind

    return asyncio.run(main())


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"zalo_mode": "auto"}, "oa"),  # OA settings and a bot token: the OA
        ({"zalo_mode": "auto", **NO_OA}, "bot"),
        ({"zalo_mode": "auto", **NO_OA, "zalo_bot_token": None}, "none"),
        ({"zalo_mode": "off"}, "none"),
        ({"zalo_mode": "oa"}, "oa"),
        ({"zalo_mode": "bot"}, "bot"),
    ],
)
def test_the_mode_is_chosen_by_configuration(
    fake: FakeZalo, service: ConversationService, values: dict[str, Any], expected: str
) -> None:
    assert started(fake, service, **{"public_base_url": PUBLIC, **BOT, **values}) == expected
    if expected == "bot":
        assert fake.bot_webhook == {
            "url": PUBLIC + "/zalo/bot/webhook",
            "secret_token": BOT["zalo_bot_webhook_secret"],
        }


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"zalo_mode": "oa", "zalo_oa_secret_key": None}, "ZALO_OA_SECRET_KEY"),
        ({"zalo_mode": "oa", "zalo_app_secret": None}, "ZALO_APP_SECRET"),
        ({"zalo_mode": "oa", "zalo_oa_refresh_token": None}, "ZALO_OA_REFRESH_TOKEN"),
        ({"zalo_mode": "bot", **BOT}, "PUBLIC_BASE_URL"),
        ({"zalo_mode": "bot", **BOT, "zalo_bot_webhook_secret": "short"}, "8-256"),
        (
            {"zalo_mode": "bot", **BOT, "zalo_bot_token": "1:wrong", "public_base_url": PUBLIC},
            "ZALO_BOT_TOKEN",
        ),
    ],
)
def test_a_mode_that_cannot_work_stops_the_start_naming_the_setting(
    fake: FakeZalo, service: ConversationService, values: dict[str, Any], named: str
) -> None:
    if named == "8-256":
        values = {**values, "public_base_url": PUBLIC}
    with pytest.raises(ConfigError, match=named):
        started(fake, service, **values)
