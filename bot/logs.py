"""Structured logs: one JSON object a line, without personal data.

`setup_logging()` sends every logger (uvicorn's too) to stderr as JSON lines with the
fields a log collector filters on (conversation_id, channel, outcome, seconds) taken
from `extra=`. What must never be logged: message text, names, phone or ID numbers,
tokens. Log calls pass ids and outcomes only; as a second guard, bot tokens in URLs
(httpx logs them) and ID-like numbers are masked in every line.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from datetime import UTC, datetime
from functools import wraps
from typing import Any

from bot.conversation import ConversationService, Handled
from bot.messages import Incoming

# Fields copied from `extra=` into the JSON line; anything else passed there is dropped.
FIELDS = ("conversation_id", "channel", "outcome", "update_id", "duplicate", "events", "seconds")
# A Telegram bot token (in a Bot API URL), and 9-12 digit runs (ID and phone numbers).
_TOKEN = re.compile(r"\d{5,}:[A-Za-z0-9_-]{20,}")
_LONG_NUMBER = re.compile(r"(?<![\d.])\d{9,12}(?![\d.])")
# Chatty loggers: per-request lines that carry addresses and URLs but nothing we need.
_QUIET = {"httpx": logging.WARNING, "httpcore": logging.WARNING, "uvicorn.access": logging.WARNING}

log = logging.getLogger("bot.handled")


def mask(text: str) -> str:
    """`text` with bot tokens and ID-like numbers masked."""
    return _LONG_NUMBER.sub("<number>", _TOKEN.sub("<token>", text))


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, known fields, error."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": mask(record.getMessage()),
        }
        for name in FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                data[name] = value
        if record.exc_info:
            data["error"] = mask(self.formatException(record.exc_info))
        return json.dumps(data, ensure_ascii=False, default=str)


def setup_logging(level: str = "INFO", stream: Any = None) -> None:
    """Route every log record to `stream` (stderr) as JSON lines at `level`."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    for name, quiet in _QUIET.items():
        logging.getLogger(name).setLevel(max(quiet, root.level))


def log_handling(service: ConversationService) -> None:
    """Log one line for each message `service` handles: its conversation, channel,
    whether it was a duplicate, the engine's event kinds and the time taken; never
    its text. Wraps `service.handle` on this instance (once)."""
    handle = service.handle
    if getattr(handle, "_logged", False):
        return

    @wraps(handle)
    def logged(incoming: Incoming, *, volunteers: bool = False) -> Handled:
        start = time.perf_counter()
        handled = handle(incoming, volunteers=volunteers)
        if handled.volunteer:
            return handled  # the desk handles and logs it
        if not log.isEnabledFor(logging.INFO):
            return handled  # skip building the line (LOG_LEVEL=WARNING under load)
        log.info(
            "message handled",
            extra={
                "conversation_id": handled.conversation_id,
                "channel": incoming.channel,
                "update_id": incoming.message_id,
                "duplicate": handled.duplicate,
                "events": [type(event).__name__ for event in handled.events],
                "seconds": round(time.perf_counter() - start, 4),
            },
        )
        return handled

    logged._logged = True  # type: ignore[attr-defined]
    service.handle = logged  # type: ignore[method-assign]
