"""The terminal chat: `citizen-bot chat`. Same engine and store as the messengers."""

from __future__ import annotations

from collections.abc import Callable

from bot.conversation import ConversationService, build_service
from bot.messages import Incoming, Outgoing

CHANNEL = "console"
PROMPT = "bạn> "


def render(message: Outgoing) -> str:
    """A bot message as terminal text, buttons as numbered lines."""
    lines = [
        f"bot> {line}" if i == 0 else f"     {line}"
        for i, line in enumerate(message.text.splitlines() or [""])
    ]
    lines += [f"     {n}. {button.label}" for n, button in enumerate(message.buttons, 1)]
    return "\n".join(lines)


def run_console(
    *,
    user: str,
    service: ConversationService | None = None,
    read: Callable[[str], str] = input,
    write: Callable[[str], None] = print,
) -> None:
    """Read lines until end of input; each line is one message to the bot."""
    service = service or build_service()
    chat_id = f"console-{user}"
    write("Gõ tin nhắn rồi bấm Enter. Gõ số để chọn nút. Ctrl-D để thoát.")
    handled = service.handle(Incoming(channel=CHANNEL, chat_id=chat_id, text="/start"))
    _show(service, handled.outgoing, handled.outbox_ids, write)
    while True:
        try:
            text = read(PROMPT)
        except (EOFError, KeyboardInterrupt):
            write("")
            return
        handled = service.handle(Incoming(channel=CHANNEL, chat_id=chat_id, text=text))
        _show(service, handled.outgoing, handled.outbox_ids, write)


def _show(
    service: ConversationService,
    messages: tuple[Outgoing, ...],
    ids: tuple[int, ...],
    write: Callable[[str], None],
) -> None:
    for message, outbox_id in zip(messages, ids, strict=True):
        write(render(message))
        service.store.mark_sent(outbox_id)
