"""The handoff's timers and volunteer hours from the environment (HANDOFF_*, and `.env`):
what `bot/handoff.py`'s `HandoffPolicy` holds, set by an operator without code.

    HANDOFF_REPOST_MINUTES           10   a ticket nobody took: posted to the province
    HANDOFF_RETURN_MINUTES           15   a silent volunteer: the ticket back to the queue
    HANDOFF_EXPIRE_WAITING_HOURS     24   a ticket nobody took: closed, the citizen told
    HANDOFF_ABANDON_CLAIMED_HOURS    24   a claimed ticket where nobody wrote: closed
    HANDOFF_HOURS_START, _END      7, 21  volunteers on duty, local hours (equal: always)
    HANDOFF_TIMEZONE       Asia/Ho_Chi_Minh
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.handoff import HandoffPolicy, VolunteerHours

__all__ = ["HandoffSettings", "get_handoff_settings"]


class HandoffSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="HANDOFF_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    repost_minutes: float = Field(default=10.0, gt=0)
    return_minutes: float = Field(default=15.0, gt=0)
    expire_waiting_hours: float = Field(default=24.0, gt=0)
    abandon_claimed_hours: float = Field(default=24.0, gt=0)
    hours_start: int = Field(default=7, ge=0, le=24)
    hours_end: int = Field(default=21, ge=0, le=24)
    timezone: str = "Asia/Ho_Chi_Minh"

    @property
    def policy(self) -> HandoffPolicy:
        """Raises ConfigError for a time zone the host does not know."""
        return HandoffPolicy(
            hours=VolunteerHours(start=self.hours_start, end=self.hours_end, tz=self.timezone),
            repost_after_seconds=self.repost_minutes * 60,
            return_after_seconds=self.return_minutes * 60,
            expire_waiting_after_seconds=self.expire_waiting_hours * 3600,
            abandon_claimed_after_seconds=self.abandon_claimed_hours * 3600,
        )


@lru_cache
def get_handoff_settings() -> HandoffSettings:
    return HandoffSettings()
