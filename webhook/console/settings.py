"""The console's settings: CONSOLE_* from the environment (and `.env`), plus
PUBLIC_BASE_URL, which decides whether the session cookie is `Secure`."""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.console_accounts import ConsolePolicy


class ConsoleSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CONSOLE_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    # A session ends this long after sign-in.
    session_hours: float = Field(default=12.0, gt=0)
    # This many failed sign-ins under one name within the window lock it for a while.
    max_failures: int = Field(default=5, ge=1)
    failure_window_minutes: float = Field(default=15.0, gt=0)
    lock_minutes: float = Field(default=15.0, gt=0)
    # This many failed sign-ins from one client address within the window lock it.
    max_failures_per_client: int = Field(default=20, ge=1)
    public_base_url: str | None = Field(
        default=None, validation_alias=AliasChoices("PUBLIC_BASE_URL", "public_base_url")
    )

    @property
    def secure_cookie(self) -> bool:
        return (self.public_base_url or "").lower().startswith("https://")

    @property
    def policy(self) -> ConsolePolicy:
        return ConsolePolicy(
            session_ttl=timedelta(hours=self.session_hours),
            max_failures=self.max_failures,
            failure_window=timedelta(minutes=self.failure_window_minutes),
            lock_for=timedelta(minutes=self.lock_minutes),
            max_failures_per_client=self.max_failures_per_client,
        )


@lru_cache
def get_console_settings() -> ConsoleSettings:
    return ConsoleSettings()
