"""A Telegram volunteer's photo reaches a Zalo OA citizen as an image: the Zalo sender
fetches it from the fake Bot API (getFile, then the file server), uploads it to the
fake OA (/v2.0/oa/upload/image) and sends a media message; when that keeps failing, the
outbox retries it with its back-off and then sends the text with a note. Through
/telegram/webhook and /zalo/webhook of one app, on both databases (`store`)."""

from __future__ import annotations

import logging

import pytest

from bot.store import OutboxStatus
from tests.fakes.telegram import Citizen
from tests.fakes.zalo import ZaloCitizen
from tests.webhook import test_handoff_zalo as harness
from tests.webhook.test_handoff_telegram import GROUP
from tests.webhook.test_handoff_zalo import Both

# The app, the fakes and the content of the cross-channel handoff tests.
served_api, api = harness.served_api, harness.api
served_zalo, zalo, service, both = harness.served_zalo, harness.zalo, harness.service, harness.both

PHOTO_ID = "AgAC-large"  # the largest size of tests.fakes.telegram.Citizen.photo()
PHOTO = b"\xff\xd8\xff\xe0 a photo of the VNeID screen \x00\x01\x02"
NOTE = "nói lại bằng lời"  # from knowledge/handoff.yaml media_not_shown


def _in_handoff(both: Both, user_id: str) -> tuple[ZaloCitizen, Citizen]:
    """A Zalo citizen whose ticket the Telegram volunteer Lan has claimed."""
    citizen, lan = ZaloCitizen(user_id), Citizen(2001, "Lan")
    both.join(lan)
    both.oa(citizen.text("gặp người thật"))
    both.claim(lan, both.on_telegram(GROUP, 1)[-1])
    both.on_zalo(citizen, 2)
    both.settled("telegram", lan.chat_id)
    return citizen, lan


def test_a_volunteers_photo_reaches_the_zalo_citizen_as_an_image(
    both: Both, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    citizen, lan = _in_handoff(both, "zalo-photo-1")
    told = len(both.api.messages(lan.id))
    both.api.files[PHOTO_ID] = PHOTO

    both.telegram(lan.photo("Bác bấm vào nút này"))
    shown = both.on_zalo(citizen, 3)[-1]
    assert shown.image == PHOTO and shown.text == "🙋 Lan: [ảnh] Bác bấm vào nút này"
    [upload] = both.zalo.uploads
    assert upload.data == PHOTO and upload.content_type == "image/jpeg"
    assert upload.access_token == "access-0"
    assert [c.params["file_id"] for c in both.api.calls_of("getFile")] == [PHOTO_ID]
    assert both.api.downloads == [f"photos/{PHOTO_ID}.jpg"]

    both.settled("zalo", citizen.user_id)
    row = both.service.store.outbox_after(channel="zalo", chat_id=citizen.user_id)[-1]
    assert row.status == OutboxStatus.SENT and row.attempts == 1
    assert len(both.api.messages(lan.id)) == told  # nothing to tell the volunteer
    # The file URL holds the bot token: it is in no log line and no stored row.
    token = both.api.token
    assert caplog.records and not [r for r in caplog.records if token in r.getMessage()]
    stored = [row.text, row.last_error or "", *(b.payload for b in row.buttons)]
    assert not [s for s in stored if token in s]


def test_an_upload_that_fails_is_retried_with_the_outbox_back_off(both: Both) -> None:
    citizen, lan = _in_handoff(both, "zalo-photo-2")
    both.api.files[PHOTO_ID] = PHOTO
    both.zalo.upload_errors = 2  # HTTP 500 twice, then it works

    both.telegram(lan.photo())
    shown = both.on_zalo(citizen, 3)[-1]
    assert shown.image == PHOTO and shown.text == "🙋 Lan: [ảnh]"
    both.settled("zalo", citizen.user_id)
    row = both.service.store.outbox_after(channel="zalo", chat_id=citizen.user_id)[-1]
    assert row.status == OutboxStatus.SENT and row.attempts == 3  # two 500s, then sent
    assert both.zalo.upload_errors == 0
    assert [u.data for u in both.zalo.uploads] == [PHOTO]
    assert len(both.api.calls_of("getFile")) == 3  # fetched again at each try


def test_an_upload_that_keeps_failing_ends_as_the_text_note(both: Both) -> None:
    citizen, lan = _in_handoff(both, "zalo-photo-3")
    both.api.files[PHOTO_ID] = PHOTO
    both.zalo.upload_errors = 50

    both.telegram(lan.photo("Mặt sau thẻ"))
    sent = both.on_zalo(citizen, 3)[-1]
    assert sent.image is None
    assert sent.text.startswith("🙋 Lan: [ảnh] Mặt sau thẻ\n") and NOTE in sent.text
    both.settled("zalo", citizen.user_id)
    row = both.service.store.outbox_after(channel="zalo", chat_id=citizen.user_id)[-1]
    # Three tries of the photo (the app's media_attempts), the third sent in words.
    assert row.status == OutboxStatus.SENT and row.attempts == 3
    assert both.zalo.upload_errors == 47 and not both.zalo.uploads
    assert len(both.zalo.messages(citizen.user_id)) == 3  # the photo's row once
    told = both.on_telegram(lan.id, 3)[-1].text  # the join, the claim, then this
    assert told.startswith("Người dân nhắn qua Zalo nên chưa xem được tệp bạn gửi")


def test_a_file_telegram_refuses_goes_in_words_at_once(both: Both) -> None:
    citizen, lan = _in_handoff(both, "zalo-photo-4")
    # No file under PHOTO_ID: getFile answers 400, which no retry can mend.
    both.telegram(lan.photo("Ảnh lỗi"))
    sent = both.on_zalo(citizen, 3)[-1]
    assert sent.image is None and sent.text.startswith("🙋 Lan: [ảnh] Ảnh lỗi\n")
    assert NOTE in sent.text
    both.settled("zalo", citizen.user_id)
    row = both.service.store.outbox_after(channel="zalo", chat_id=citizen.user_id)[-1]
    assert row.status == OutboxStatus.SENT and row.attempts == 1
    assert not both.zalo.uploads and both.api.downloads == []
    assert "Zalo" in both.on_telegram(lan.id, 3)[-1].text


@pytest.mark.parametrize(
    ("base_url", "file_url"),
    [
        ("https://api.telegram.org/bot", "https://api.telegram.org/file/bot"),
        ("http://127.0.0.1:8081/bot", "http://127.0.0.1:8081/file/bot"),
        (
            "https://api.telegram.org/bot{token}/test",
            "https://api.telegram.org/file/bot{token}/test",
        ),
    ],
)
def test_the_file_server_is_found_beside_the_bot_api(base_url: str, file_url: str) -> None:
    from bot.channels.telegram import file_url_of

    assert file_url_of(base_url) == file_url
