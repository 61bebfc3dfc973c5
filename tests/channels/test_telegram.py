"""The Telegram adapter: reading updates, rendering messages, and the real
python-telegram-bot client against the fake Bot API over HTTP."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.channels.common import MAX_TEXT, split_text
from bot.channels.telegram import (
    TelegramChannel,
    UnreadableUpdate,
    keyboard,
    parse,
    read_update,
)
from bot.errors import ChatBlocked, ConfigError, PermanentSend, RetryableSend
from bot.messages import Button, Media, MediaKind
from bot.store import OutboxItem, OutboxStatus
from tests.fakes.telegram import Citizen, FakeBotApi, served

LAN = Citizen(777, language_code="vi")


# --- reading updates -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "payload"),
    [
        ("/start", "g:start"),
        ("/start vneid_activate", "f:vneid_activate"),
        ("/start from-a-poster", "g:start"),
        ("/menu", "g:menu"),
        ("/menu@citizen_test_bot", "g:menu"),
        ("/help", "g:help"),
        ("/human", "g:human"),
        ("/stop", "g:forget"),
        ("/lang en", "g:lang_en"),
        ("/lang VI", "g:lang_vi"),
        ("/lang fr", None),
        ("/whatever", None),
        ("kich hoat vneid", None),
    ],
)
def test_commands_become_engine_payloads(text: str, payload: str | None) -> None:
    incoming = parse(LAN.text(text))
    assert incoming is not None
    assert (incoming.text, incoming.payload) == (text, payload)


def test_a_text_message() -> None:
    update = LAN.text("xin chào")
    incoming = parse(update)
    assert incoming is not None
    assert incoming.channel == "telegram"
    assert (incoming.chat_id, incoming.user_id) == ("777", "777")
    assert incoming.message_id == str(update["update_id"])  # unique per bot
    assert (incoming.lang_hint, incoming.media) == ("vi", None)


@pytest.mark.parametrize(
    ("code", "hint"), [("vi", "vi"), ("en-US", "en"), ("fr", None), (None, None)]
)
def test_language_hint(code: str | None, hint: str | None) -> None:
    incoming = parse(Citizen(1, language_code=code).text("hi"))
    assert incoming is not None and incoming.lang_hint == hint


@pytest.mark.parametrize(
    ("make", "media"),
    [
        (LAN.photo, Media(MediaKind.PHOTO, ref="AgAC-large")),  # the largest size
        (LAN.voice, Media(MediaKind.VOICE, ref="AwAC-voice")),
        (LAN.sticker, Media(MediaKind.STICKER, ref="CAAC-sticker")),
        (LAN.video, Media(MediaKind.VIDEO, ref="BAAC-video")),
    ],
)
def test_attachments_keep_their_file_id(make: Any, media: Media) -> None:
    incoming = parse(make())
    assert incoming is not None and (incoming.text, incoming.media) == ("", media)


def test_a_location_and_a_captioned_photo() -> None:
    where = parse(LAN.location(10.7769, 106.7009))
    assert where is not None and where.media == Media(
        MediaKind.LOCATION, latitude=10.7769, longitude=106.7009
    )
    captioned = parse(LAN.photo(caption="loi quet chip"))
    assert captioned is not None
    assert (captioned.text, captioned.payload) == ("loi quet chip", None)
    assert captioned.media is not None and captioned.media.kind is MediaKind.PHOTO


def test_a_contact_or_a_dice_is_media_the_bot_cannot_read() -> None:
    contact = LAN.text("x")
    del contact["message"]["text"]
    contact["message"]["contact"] = {"phone_number": "0912345678", "first_name": "Lan"}
    incoming = parse(contact)
    assert incoming is not None and incoming.media == Media(MediaKind.OTHER)
    dice = LAN.text("x")
    del dice["message"]["text"]
    dice["message"]["dice"] = {"emoji": "🎲", "value": 3}
    incoming = parse(dice)
    assert incoming is not None and incoming.media == Media(MediaKind.OTHER)


def sent(text: str, buttons: list[dict[str, Any]]) -> Any:
    from tests.fakes.telegram import Sent

    return Sent(41, LAN.id, text, {"inline_keyboard": [[b] for b in buttons]}, 0.0)


def test_a_button_press() -> None:
    message = sent("Bạn đã nhận?", [{"text": "1. Đã nhận", "callback_data": "c:f:s:0"}])
    update = read_update(LAN.press(message, "Đã nhận"))
    assert update.kind == "callback_query"
    assert update.callback_query_id == f"cq-{update.update_id}"
    assert update.incoming is not None
    assert (update.incoming.payload, update.incoming.text) == ("c:f:s:0", "")
    assert update.incoming.message_id == str(update.update_id)
    assert update.pressed is not None
    assert (update.pressed.chat_id, update.pressed.message_id) == ("777", 41)
    assert (update.pressed.label, update.pressed.data) == ("1. Đã nhận", "c:f:s:0")


def test_a_numbered_button_press_reads_as_the_typed_number() -> None:
    message = sent("Chọn", [{"text": "2. Dài", "callback_data": "n:2"}])
    incoming = parse(LAN.press(message, "Dài"))
    assert incoming is not None and (incoming.text, incoming.payload) == ("2", None)


def test_a_callback_without_data_is_answered_but_not_handled() -> None:
    update = LAN.callback(sent("x", []), "")
    del update["callback_query"]["data"]
    read = read_update(update)
    assert read.incoming is None and read.callback_query_id is not None


def test_blocking_the_bot_is_noticed() -> None:
    assert read_update(LAN.blocked_bot()).blocked_chat == "777"
    unblocked = LAN.blocked_bot()
    unblocked["my_chat_member"]["new_chat_member"]["status"] = "member"
    assert read_update(unblocked).blocked_chat is None


def test_updates_the_bot_does_not_handle() -> None:
    assert read_update(LAN.edited("sửa")).kind == "edited_message"
    assert read_update({"update_id": 5, "poll": {"id": "p"}}).incoming is None
    group = LAN.text("menu")
    group["message"]["chat"] = {"id": -1001, "type": "group", "title": "Tình nguyện viên"}
    assert parse(group) is None
    from_bot = LAN.text("hi")
    from_bot["message"]["from"]["is_bot"] = True
    assert parse(from_bot) is None


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"update_id": "1"},
        {"update_id": True, "message": {}},
        {"update_id": 3, "message": {"text": "no chat, no date"}},
        {"update_id": 4, "callback_query": {"id": "1"}},
        {"update_id": 5, "message": "hello"},
    ],
)
def test_json_that_is_no_update_is_refused(data: dict[str, Any]) -> None:
    with pytest.raises(UnreadableUpdate):
        read_update(data)


# --- rendering -------------------------------------------------------------------------------


def test_keyboard_numbers_choices_one_a_row() -> None:
    markup = keyboard(
        (
            Button("Đã nhận", "c:vneid_activate:got_sms:0"),
            Button("Xem hướng dẫn", "x", url="https://vneid.gov.vn"),
            Button("Cần người giúp", "g:human"),
        )
    )
    assert markup is not None
    rows = markup.to_dict()["inline_keyboard"]
    assert rows == [
        [{"text": "1. Đã nhận", "callback_data": "c:vneid_activate:got_sms:0"}],
        [{"text": "Xem hướng dẫn", "url": "https://vneid.gov.vn"}],
        # Link buttons are not numbered: the engine numbers only the others.
        [{"text": "2. Cần người giúp", "callback_data": "g:human"}],
    ]
    assert keyboard(()) is None


def test_overlong_button_data_becomes_the_button_number() -> None:
    long_payload = "c:" + "a_very_long_flow_id_" * 3 + ":step:1"
    assert len(long_payload) > 64
    markup = keyboard((Button("Một", "g:menu"), Button("Hai", long_payload)))
    assert markup is not None
    assert markup.to_dict()["inline_keyboard"][1][0]["callback_data"] == "n:2"


def test_short_text_is_one_part() -> None:
    assert split_text("Xin chào") == ["Xin chào"]
    assert split_text("") == [""]


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("Một hai ba.\n\nBốn năm sáu.", ["Một hai ba.", "Bốn năm sáu."]),
        ("Dòng một dài.\nDòng hai dài.", ["Dòng một dài.", "Dòng hai dài."]),
        ("Câu một ở đây. Câu hai ở đây.", ["Câu một ở đây.", "Câu hai ở đây."]),
        ("từ từ từ từ từ từ từ từ từ từ", ["từ từ từ từ từ từ", "từ từ từ từ"]),
        ("x" * 40, ["x" * 20, "x" * 20]),
    ],
)
def test_long_text_is_cut_at_the_best_boundary(text: str, parts: list[str]) -> None:
    assert split_text(text, limit=20) == parts


def test_emoji_count_twice_like_telegram_counts() -> None:
    parts = split_text("🙂" * 3000)
    assert [len(p) for p in parts] == [2048, 952]
    assert all(len(p.encode("utf-16-le")) // 2 <= MAX_TEXT for p in parts)


def test_every_part_fits() -> None:
    text = "\n".join(f"Bước {n}: mở ứng dụng, bấm nút, chờ một chút." for n in range(400))
    parts = split_text(text)
    assert len(parts) > 1 and all(len(p) <= MAX_TEXT for p in parts)
    assert "\n".join(parts) == text


# --- the client against the fake Bot API --------------------------------------------------


@pytest.fixture(scope="module")
def served_api() -> Iterator[FakeBotApi]:
    with served() as fake:
        yield fake


@pytest.fixture
def api(served_api: FakeBotApi) -> FakeBotApi:
    served_api.reset()
    return served_api


def item(text: str, *buttons: Button, chat_id: str = "777") -> OutboxItem:
    now = datetime.now(UTC)
    return OutboxItem(
        id=1,
        conversation_id=1,
        channel="telegram",
        chat_id=chat_id,
        seq=1,
        text=text,
        buttons=buttons,
        status=OutboxStatus.SENDING,
        attempts=0,
        next_attempt_at=now,
        last_error=None,
        external_id=None,
        created_at=now,
        sent_at=None,
    )


def run(api: FakeBotApi, work: Any, token: str | None = None, timeout: float = 5.0) -> Any:
    """Run `work(channel)` with a started channel, then close it."""

    async def main() -> Any:
        channel = TelegramChannel(token or api.token, base_url=api.base_url, timeout=timeout)
        try:
            await channel.start()
            return await work(channel)
        finally:
            await channel.close()

    return asyncio.run(main())


def test_send_renders_text_and_buttons(api: FakeBotApi) -> None:
    async def work(channel: TelegramChannel) -> str:
        return await channel.send(item("Chọn một", Button("Đã nhận", "c:f:s:0")))

    message_id = run(api, work)
    [message] = api.messages(777)
    assert message_id == str(message.message_id)
    assert message.text == "Chọn một"
    assert message.labels == ["1. Đã nhận"]
    assert api.calls_of("sendMessage")[0].params["link_preview_options"] == {"is_disabled": True}


def test_send_splits_long_text_with_buttons_on_the_last_part(api: FakeBotApi) -> None:
    text = "\n\n".join(["Một đoạn hướng dẫn dài. " * 100] * 4)

    async def work(channel: TelegramChannel) -> str:
        return await channel.send(item(text, Button("Xong", "g:menu")))

    last_id = run(api, work)
    messages = api.messages(777)
    assert len(messages) == 4  # a paragraph of 2,400 characters each: two do not fit
    assert [bool(m.buttons) for m in messages] == [False, False, False, True]
    assert last_id == str(messages[-1].message_id)


@pytest.mark.parametrize(
    ("fault", "error", "retry_after"),
    [
        ("429", RetryableSend, 1.0),
        ("500", RetryableSend, None),
        ("502", RetryableSend, None),
        ("hang", RetryableSend, None),
        ("403", ChatBlocked, None),
    ],
)
def test_send_failures_are_mapped(
    api: FakeBotApi, fault: str, error: type[Exception], retry_after: float | None
) -> None:
    if fault == "hang":
        api.hang("sendMessage")
    elif fault == "403":
        api.block(777)
    else:
        api.fail("sendMessage", status=int(fault), retry_after=1)

    async def work(channel: TelegramChannel) -> Exception:
        with pytest.raises(error) as caught:
            await channel.send(item("Xin chào"))
        return caught.value

    raised = run(api, work, timeout=0.3 if fault == "hang" else 5.0)
    assert type(raised) is error
    if isinstance(raised, RetryableSend):
        assert raised.retry_after == retry_after
    assert api.messages(777) == []


def test_a_bad_request_is_permanent(api: FakeBotApi) -> None:
    async def work(channel: TelegramChannel) -> None:
        with pytest.raises(PermanentSend) as caught:
            await channel.send(item("   "))  # Telegram refuses an empty text
        assert not isinstance(caught.value, ChatBlocked)

    run(api, work)


def test_answer_typing_choice_webhook_and_polling(api: FakeBotApi) -> None:
    api.queue_update(LAN.text("một"))
    api.queue_update(LAN.text("hai"))

    async def work(channel: TelegramChannel) -> tuple[list[str], list[str]]:
        await channel.answer_callback("cq-1")
        await channel.typing("777")
        await channel.show_choice("777", 41, "1. Đã nhận", "c:f:s:0")
        await channel.show_choice("777", 42, None, None)
        await channel.set_webhook("https://bot.example.org/telegram/webhook", "s3cret")
        await channel.delete_webhook()
        first = await channel.poll(None, 0)
        after = await channel.poll(first[0]["update_id"] + 1, 0)
        return [u["message"]["text"] for u in first], [u["message"]["text"] for u in after]

    first, after = run(api, work)
    assert (first, after) == (["một", "hai"], ["hai"])
    assert api.answered == ["cq-1"]
    assert api.actions == [(777, "typing")]
    assert api.edits[0]["reply_markup"] == {
        "inline_keyboard": [[{"text": "✓ 1. Đã nhận", "callback_data": "c:f:s:0"}]]
    }
    assert "reply_markup" not in api.edits[1]
    setting = api.calls_of("setWebhook")[0].params
    assert setting["secret_token"] == "s3cret"
    assert setting["url"] == "https://bot.example.org/telegram/webhook"


def test_a_rejected_token_is_a_config_error_that_hides_the_token(
    api: FakeBotApi, caplog: pytest.LogCaptureFixture
) -> None:
    async def work(channel: TelegramChannel) -> None:
        raise AssertionError("started with a bad token")

    with caplog.at_level(logging.DEBUG), pytest.raises(ConfigError) as caught:
        run(api, work, token="99:not-the-token")
    assert "TELEGRAM_BOT_TOKEN was rejected" in str(caught.value)
    assert "99:not-the-token" not in str(caught.value)
    assert "99:not-the-token" not in caplog.text  # httpx logs request URLs


def test_an_empty_token_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="TELEGRAM_BOT_TOKEN"):
        TelegramChannel("")
