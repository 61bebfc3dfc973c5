"""One exception tree for citizen-bot.

CitizenBotError
├── ConfigError            a setting is missing or wrong; the message names it
├── ContentError           flows/ or knowledge/ cannot be used
│   └── FlowLoadError      one or more `file:line: message` problems (.problems)
├── StoreError             the database refused or is unreachable
└── ChannelError           a messenger API call failed
    ├── RetryableSend      try again later (429 with .retry_after, 5xx, timeout)
    └── PermanentSend      never retry (400 bad request, chat gone)
        ├── ChatBlocked    the citizen blocked the bot (403)
        └── OutsideWindow  Zalo: the citizen has not written recently enough to be answered
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class CitizenBotError(Exception):
    """Base of every error citizen-bot raises on purpose."""


class ConfigError(CitizenBotError):
    """A setting is missing or has a value that cannot work."""


class ContentError(CitizenBotError):
    """Content (flows, knowledge) cannot be used."""


@dataclass(frozen=True, order=True)
class Problem:
    """One problem found in a content file, printed as `file:line: message`."""

    file: str
    line: int
    message: str
    severity: str = "error"  # "error" blocks loading; "warning" is only reported

    def __str__(self) -> str:
        tag = "" if self.severity == "error" else f"{self.severity}: "
        return f"{self.file}:{self.line}: {tag}{self.message}"


class FlowLoadError(ContentError):
    """Content failed to load; `.problems` lists every `file:line: message`."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class StoreError(CitizenBotError):
    """The database refused an operation or could not be reached."""


class ChannelError(CitizenBotError):
    """A messenger API call failed."""


class RetryableSend(ChannelError):
    """Sending failed for now; retry after `retry_after` seconds (None: back off)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentSend(ChannelError):
    """Sending can never succeed (blocked by the user, chat gone, bad request)."""


class ChatBlocked(PermanentSend):
    """The citizen blocked the bot: nothing more can reach this chat until they write."""


class OutsideWindow(PermanentSend):
    """Zalo refuses to message a citizen who has not written to the OA within its
    messaging window: nothing can reach them until they write again."""
