"""What every messenger adapter needs: splitting long texts, keeping tokens out of logs,
and reading the special rows the handoff puts in the outbox.

An outbox row is text and buttons. Some rows carry marker buttons more, which only
the Telegram and Zalo adapters read (`special()` takes it off; the web chat
and the console are never sent one):

    m:<kind>:<ref>   send the attachment `ref` (a Telegram file_id or an https URL)
                     with the text as its caption: a photo relayed during a handoff
    w:<note>         where the attachment cannot be sent after all, send the text and
                     this note under it (Zalo: a volunteer's Telegram photo whose
                     fetch or upload kept failing); `send` then returns the id
                     through `in_words()`, so the help desk can tell the volunteer
    e:<message_id>   edit that earlier message of the chat to the text and the other
                     buttons: a volunteer group's post about a ticket
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
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
        # Formatted now, not later: an argument may change after the call (PTB logs
        # getFile's answer, then puts the token-bearing file URL into that same dict).
        record.msg = record.getMessage().replace(self.token, "<token>")
        record.args = ()
        return True


# Fetches the bytes of a file by the reference a media marker holds (a Telegram
# file_id); raises `RetryableSend` or `PermanentSend`. The Telegram channel has one
# (`TelegramChannel.fetch_file`); the Zalo channel is given it when the app starts, so
# it never imports Telegram code.
FileSource = Callable[[str], Awaitable[bytes]]

_MEDIA_MARK = "m:"
_NOTE_MARK = "w:"
_EDIT_MARK = "e:"


def media_button(kind: MediaKind | str, ref: str) -> Button:
    """The marker of a row that sends attachment `ref` with its text as the caption."""
    return Button("", f"{_MEDIA_MARK}{MediaKind(kind).value}:{ref}")


def note_button(note: str) -> Button:
    """The marker of the words sent under the text when the row's attachment cannot go."""
    return Button("", f"{_NOTE_MARK}{note}")


def edit_button(message_id: str) -> Button:
    """The marker of a row that edits message `message_id` of the chat."""
    return Button("", f"{_EDIT_MARK}{message_id}")


@dataclass(frozen=True)
class Special:
    """What the markers of one outbox row ask for; `buttons` are the real ones."""

    buttons: tuple[Button, ...]
    media: Media | None = None
    edit: str | None = None  # the id of the message to edit
    note: str | None = None  # said under the text if `media` cannot be sent


def special(buttons: tuple[Button, ...]) -> Special:
    """Take the markers off a row's buttons."""
    media, edit, note, rest = None, None, None, []
    for button in buttons:
        if button.label or button.url is not None:
            rest.append(button)
        elif button.payload.startswith(_MEDIA_MARK):
            kind, _, ref = button.payload.removeprefix(_MEDIA_MARK).partition(":")
            if kind in MediaKind.__members__.values() and ref:
                media = Media(MediaKind(kind), ref=ref)
        elif button.payload.startswith(_EDIT_MARK):
            edit = button.payload.removeprefix(_EDIT_MARK) or None
        elif button.payload.startswith(_NOTE_MARK):
            note = button.payload.removeprefix(_NOTE_MARK) or None
        else:
            rest.append(button)
    return Special(tuple(rest), media, edit, note)


# A channel's id of a row whose attachment went as words (the note) starts with this,
# so the outbox's `AfterSend` hook (the help desk) can tell the volunteer.
_IN_WORDS = "words:"


def in_words(external_id: str) -> str:
    """The id `send` returns for a row whose attachment could not go (text and note)."""
    return f"{_IN_WORDS}{external_id}"


def went_in_words(external_id: str) -> bool:
    return external_id.startswith(_IN_WORDS)


def is_url(ref: str) -> bool:
    """A reference another service can fetch (Zalo's attachments), not a Telegram file_id."""
    return ref.startswith(("https://", "http://"))


# --- typed /commands, the same on every channel ---------------------------------------

# /command → engine payload. /stop stops and forgets (the Telegram convention for
# "leave me alone"); the word "dừng" typed in a chat still only stops the guide.
COMMANDS = {
    "start": "g:start",
    "menu": "g:menu",
    "help": "g:help",
    "human": "g:human",
    "stop": "g:forget",
    "back": "g:back",
    "restart": "g:restart",
}
LANGS = ("vi", "en")
# A /start deep-link parameter that can be a flow id (ours are lower snake case).
_FLOW_ID = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def typed_command(text: str) -> str | None:
    """The engine payload of a typed /command ("/stop" → "g:forget", "/start vneid_install"
    → that flow, "/lang en"), or None for any other text and for unknown commands, which
    the router then reads as words. "/menu@citizen_bot" (a group's form) counts too."""
    if not text.startswith("/"):
        return None
    head, _, rest = text[1:].strip().partition(" ")
    name = head.partition("@")[0].lower()
    argument = rest.strip()
    if name == "start" and argument:
        return f"f:{argument}" if _FLOW_ID.match(argument) else "g:start"
    if name == "lang":
        lang = argument.lower()[:2]
        return f"g:lang_{lang}" if lang in LANGS else None
    return COMMANDS.get(name)
