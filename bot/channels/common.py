"""What every messenger adapter needs: splitting long texts, keeping tokens out of logs."""

from __future__ import annotations

import logging

# Telegram's limit, in UTF-16 code units; Zalo's is lower and passed explicitly.
MAX_TEXT = 4096


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """`text` in parts of at most `limit` UTF-16 code units (Telegram's measure), cut at
    a paragraph, else a line, else a sentence, else a word, else anywhere."""
    parts: list[str] = []
    rest = text
    while _units(rest) > limit:
        cut = _cut(rest, limit)
        head, rest = rest[:cut].rstrip(), rest[cut:].lstrip()
        if head:
            parts.append(head)
    if rest.strip() or not parts:
        parts.append(rest)
    return parts


def _units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _cut(text: str, limit: int) -> int:
    """Where to cut `text` so the first part fits in `limit` units."""
    fits = len(text)
    while _units(text[:fits]) > limit:  # astral characters (emoji) count twice
        fits -= max(1, (_units(text[:fits]) - limit) // 2)
    window = text[:fits]
    for separator in ("\n\n", "\n", ". ", "? ", "! ", "; ", " "):
        at = window.rfind(separator)
        if at > fits // 4:  # a cut too early would make many tiny messages
            return at + len(separator)
    return fits


class HideToken(logging.Filter):
    """Masks a token (it sits in API URLs) in log lines."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.token in message:
            record.msg = message.replace(self.token, "<token>")
            record.args = ()
        return True
