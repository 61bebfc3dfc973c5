"""Structured logs: a handled message is logged with its conversation, never its text;
tokens and ID-like numbers are masked; `setup_logging` writes JSON lines."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from bot.content import ContentLibrary
from bot.conversation import ConversationService
from bot.logs import JsonFormatter, log_handling, mask
from bot.messages import Incoming
from bot.store import Store

ROOT = Path(__file__).resolve().parents[1]
CITIZEN_TEXT = "Số CCCD của tôi là 001203004005, tên Nguyễn Thị Lan"


def test_a_handled_message_logs_its_conversation_and_not_its_text(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    library = ContentLibrary(flows_dir=ROOT / "flows", knowledge_dir=ROOT / "knowledge")
    service = ConversationService(store=store, library=library)
    log_handling(service)
    log_handling(service)  # idempotent: still one line a message
    incoming = Incoming(channel="telegram", chat_id="42", text=CITIZEN_TEXT, message_id="77")
    with caplog.at_level(logging.INFO, logger="bot.handled"):
        handled = service.handle(incoming)
        service.handle(incoming)  # Telegram delivered it again
    lines = [JsonFormatter().format(r) for r in caplog.records if r.name == "bot.handled"]
    assert len(lines) == 2
    first, again = (json.loads(line) for line in lines)
    assert handled.conversation_id is not None
    assert first["conversation_id"] == again["conversation_id"] == handled.conversation_id
    assert (first["channel"], first["update_id"], first["duplicate"]) == ("telegram", "77", False)
    assert again["duplicate"] is True and first["events"] and first["seconds"] >= 0
    for line in lines:
        assert "CCCD" not in line and "001203004005" not in line and "Lan" not in line


def test_tokens_and_id_numbers_are_masked_even_in_errors() -> None:
    url = "POST https://api.telegram.org/bot123456789:AAH-secret_token_value_xyz/sendMessage"
    assert mask(url) == "POST https://api.telegram.org/bot<token>/sendMessage"
    assert mask("gọi 0912345678, CCCD 001203004005, năm 1965") == (
        "gọi <number>, CCCD <number>, năm 1965"
    )
    try:
        raise ValueError("bad id 001203004005")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    data = json.loads(JsonFormatter().format(record))
    assert "ValueError: bad id <number>" in data["error"]


def test_setup_logging_writes_json_lines_for_every_logger() -> None:
    code = (
        "import logging; from bot.logs import setup_logging; setup_logging('INFO');"
        "logging.getLogger('uvicorn.error').info('started');"
        "logging.getLogger('bot.x').warning('chat %s', 'x', extra={'conversation_id': 5});"
        "logging.getLogger('httpx').info('HTTP Request: POST /bot1:' + 'A' * 30)"  # too chatty
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert [(d["logger"], d["message"]) for d in lines] == [
        ("uvicorn.error", "started"),
        ("bot.x", "chat x"),
    ]
    assert lines[1]["conversation_id"] == 5 and lines[1]["level"] == "WARNING"
