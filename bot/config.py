"""Settings, read once from the environment (and `.env`) through `get_settings()`."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

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
    volunteer_chat_id: str | None = None

    default_lang: str = "vi"
    # Failed answers at one step before a volunteer is offered.
    max_step_failures: int = Field(default=2, ge=1)
    # Messages longer than this are cut before they reach the engine.
    max_message_chars: int = Field(default=4000, ge=100)

    log_level: str = "INFO"


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings; tests call `get_settings.cache_clear()` after changing env."""
    return Settings()
