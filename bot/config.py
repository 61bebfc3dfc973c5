"""Settings, read once from the environment (and `.env`) through `get_settings()`."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob of citizen-bot; names match the environment variables."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    database_url: str = "sqlite:///data/citizen-bot.db"
    flows_dir: Path = Path("flows")
    knowledge_dir: Path = Path("knowledge")
    # How often the running server looks for edited content, in seconds.
    content_reload_seconds: float = 2.0

    host: str = "127.0.0.1"
    port: int = 8000
    public_base_url: str | None = None

    telegram_bot_token: str | None = None
    telegram_webhook_secret: str | None = None
    telegram_api_base_url: str = "https://api.telegram.org/bot"
    # One Bot API call (send, answer, getMe) may take this long before it counts as failed.
    telegram_timeout_seconds: float = Field(default=10.0, gt=0)
    # How long one getUpdates call waits for news in long-polling mode.
    telegram_poll_seconds: int = Field(default=25, ge=0, le=50)
    volunteer_chat_id: str | None = None
    # How often the handoff timers (re-post, return to the queue, expire) run, in seconds.
    handoff_timer_seconds: float = Field(default=5.0, gt=0)

    # Zalo (bot/channels/zalo.py). ZALO_MODE auto: the OA API when the OA settings are
    # there, else the Zalo Bot API when ZALO_BOT_TOKEN is, else no Zalo.
    zalo_mode: Literal["auto", "oa", "bot", "off"] = "auto"
    zalo_app_id: str | None = None
    zalo_app_secret: str | None = None
    zalo_oa_secret_key: str | None = None
    # The first token pair only: later pairs live in the database (refresh tokens work once).
    zalo_oa_access_token: str | None = None
    zalo_oa_refresh_token: str | None = None
    zalo_oa_api_base_url: str = "https://openapi.zalo.me"
    zalo_oauth_base_url: str = "https://oauth.zaloapp.com"
    zalo_bot_token: str | None = None
    zalo_bot_webhook_secret: str | None = None
    zalo_bot_api_base_url: str = "https://bot-api.zaloplatforms.com"
    zalo_timeout_seconds: float = Field(default=10.0, gt=0)
    # Refresh the access token this long before Zalo says it expires.
    zalo_refresh_margin_seconds: float = Field(default=300.0, ge=0)

    # The outbox sender (bot/outbox.py). Telegram allows about 30 messages a second
    # overall and about one a second to one chat.
    outbox_rate_per_second: float = Field(default=25.0, gt=0)
    outbox_burst: int = Field(default=5, ge=1)
    outbox_chat_interval_seconds: float = Field(default=1.0, ge=0)
    # 5xx and timeouts: wait backoff * 2^(attempt-1) (with jitter, at most the cap), and
    # give a message up after this many attempts.
    outbox_backoff_seconds: float = Field(default=1.0, gt=0)
    outbox_backoff_cap_seconds: float = Field(default=300.0, gt=0)
    outbox_max_attempts: int = Field(default=10, ge=1)
    # A message being sent is leased for this long; if its sender dies, another one
    # sends it after the lease. Keep it well above telegram_timeout_seconds.
    outbox_lease_seconds: float = Field(default=60.0, gt=0)
    # Messages in flight at once (each to a different chat). 16 at a 0.3 s round trip is
    # about 50 a second, above the rate; every extra connection costs CPU (httpcore).
    outbox_concurrency: int = Field(default=16, ge=1)
    # With nothing to do, the sender looks at the store this often (new replies wake it).
    outbox_idle_seconds: float = Field(default=1.0, gt=0)

    default_lang: str = "vi"
    # Failed answers at one step before a volunteer is offered.
    max_step_failures: int = Field(default=2, ge=1)
    # Messages longer than this are cut before they reach the engine.
    max_message_chars: int = Field(default=4000, ge=100)

    # `citizen-bot validate` warnings (bot/flow/editorial.py): a message longer than a
    # phone screen, and a source not checked again for this many days.
    content_max_message_chars: int = Field(default=600, ge=50)
    content_max_message_lines: int = Field(default=12, ge=1)
    content_source_max_age_days: int = Field(default=180, ge=1)

    log_level: str = "INFO"


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings; tests call `get_settings.cache_clear()` after changing env."""
    return Settings()
