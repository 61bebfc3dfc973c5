"""What every messenger adapter needs: splitting long texts, keeping tokens out of logs,
and reading the special rows the handoff puts in the outbox.

An outbox row is text and buttons. Two kinds of row carry one marker button more,
which only the Telegram and Zalo adapters read (`special()` takes it off; the web chat
and the console are never sent one):

    m:<kind>:<ref>   send the attachment `ref` (a Telegram file_id or an https URL)
                     with the text as its caption: a photo relayed during a handoff
    e:<message_id>   edit that earlier message of the chat to the text and the other
                     buttons: a volunteer group's post about a ticket
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.messages import Button, Media, MediaKind

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


_MEDIA_MARK = "m:"
_EDIT_MARK = "e:"


def media_button(kind: MediaKind | str, ref: str) -> Button:
    """The marker of a row that sends attachment `ref` with its text as the caption."""
    return Button("", f"{_MEDIA_MARK}{MediaKind(kind).value}:{ref}")


def edit_button(message_id: str) -> Button:
    """The marker of a row that edits message `message_id` of the chat."""
    return Button("", f"{_EDIT_MARK}{message_id}")


@dataclass(frozen=True)
class Special:
    """What the markers of one outbox row ask for; `buttons` are the real ones."""

    buttons: tuple[Button, ...]
    media: Media | None = None
    edit: str | None = None  # the id of the message to edit


def special(buttons: tuple[Button, ...]) -> Special:
    """Take the markers off a row's buttons."""
    media, edit, rest = None, None, []
    for button in buttons:
        if button.label or button.url is not None:
            rest.append(button)
        elif button.payload.startswith(_MEDIA_MARK):
            kind, _, ref = button.payload.removeprefix(_MEDIA_MARK).partition(":")
            if kind in MediaKind.__members__.values() and ref:
                media = Media(MediaKind(kind), ref=ref)
        elif button.payload.startswith(_EDIT_MARK):
            edit = button.payload.removeprefix(_EDIT_MARK) or None
        else:
            rest.append(button)
    return Special(tuple(rest), media, edit)


def is_url(ref: str) -> bool:
    """A reference another service can fetch (Zalo's attachments), not a Telegram file_id."""
    return ref.startswith(("https://", "http://"))
