"""Channel-neutral messages: what a citizen sent, what the bot sends back.

No SDK types here. Each channel adapter translates its messenger's updates into
`Incoming` and renders `Outgoing` with its own buttons and limits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class MediaKind(StrEnum):
    PHOTO = "photo"
    VOICE = "voice"
    AUDIO = "audio"
    VIDEO = "video"
    STICKER = "sticker"
    DOCUMENT = "document"
    LOCATION = "location"
    OTHER = "other"


@dataclass(frozen=True)
class Media:
    """An attachment. `ref` is the channel's own file id or URL, kept for a volunteer."""

    kind: MediaKind
    ref: str | None = None
    latitude: float | None = None
    longitude: float | None = None


@dataclass(frozen=True)
class Button:
    """A choice offered to the citizen. `payload` comes back in `Incoming.payload`.

    Payloads are short ASCII strings (Telegram allows 64 bytes of callback data):
    `c:<flow>:<step>:<n>` a choice, `g:<command>` a global word, `f:<flow>` start a flow,
    `a:<answer id>` show a knowledge answer.
    """

    label: str
    payload: str
    url: str | None = None  # a link button opens this instead of sending `payload`


@dataclass(frozen=True)
class Incoming:
    """One message from a citizen, as any channel delivers it."""

    channel: str
    chat_id: str
    text: str = ""
    payload: str | None = None  # set when a button was pressed
    media: Media | None = None
    message_id: str | None = None  # the channel's id of this update; unique per channel
    user_id: str | None = None
    lang_hint: str | None = None  # the messenger's language setting, if it tells


@dataclass(frozen=True)
class Outgoing:
    """One message from the bot to a chat."""

    chat_id: str
    text: str
    buttons: tuple[Button, ...] = field(default_factory=tuple)
