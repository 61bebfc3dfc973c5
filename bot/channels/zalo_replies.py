"""Which citizen message a Zalo OA message answers, so it goes out as a reply.

Zalo counts an OA message that carries the message_id of the user's message as a reply
("tin phản hồi"), and one with only a user_id as a proactive message ("tin chủ động"):
Zalo OA's help centre, "Vì sao tôi không thể gửi tin phản hồi qua ứng dụng thứ 3?"
(https://zalooa.freshdesk.com/support/solutions/articles/64000263278, read in a stored
copy on 2026-11-30: "Nếu tin gửi đi có chỉ user_id và không có message_id thì tin sẽ
được tính là tin chủ động"). Replies were counted as at most 8 per user message within
48 hours (quota_type "reply" in eTelecom's Zalo Cloud API reference,
https://docs.etelecom.vn/api-etelecom-english/api-integration/zalo-cloud/zalo-cloud-api/send-text-consulting;
Harasocial's help page on Zalo message limits: 8 replies in 48 hours, renewed when the
citizen writes again, support.harasocial.com article 42000095670);
past either limit a message goes with the user_id alone, still inside the customer-service
window. Neither limit was read on developers.zalo.me.

The count is kept per process: with several senders a message may be refused as a reply,
and is then sent again without the id (ZaloOAChannel.send_message).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from datetime import timedelta

from starlette.concurrency import run_in_threadpool

from bot.store.replies import InboundRef
from bot.store.types import utcnow

REPLY_WINDOW = timedelta(hours=48)
REPLIES_PER_MESSAGE = 8
# Message ids whose reply count is remembered; the oldest are forgotten first.
REMEMBERED = 10_000


class ReplyTracker:
    """`await reply_to(conversation_id)` names the message to answer, or None; `used(id)`
    after a reply went out; `refused(id)` when Zalo would not take it as a reply."""

    def __init__(
        self,
        last_inbound: Callable[[int], InboundRef | None],
        *,
        window: timedelta = REPLY_WINDOW,
        per_message: int = REPLIES_PER_MESSAGE,
    ) -> None:
        self._last_inbound = last_inbound
        self.window = window
        self.per_message = per_message
        self._used: OrderedDict[str, int] = OrderedDict()

    async def reply_to(self, conversation_id: int) -> str | None:
        ref = await run_in_threadpool(self._last_inbound, conversation_id)
        if ref is None or utcnow() - ref.received_at > self.window:
            return None
        if self._used.get(ref.message_id, 0) >= self.per_message:
            return None
        return ref.message_id

    def used(self, message_id: str) -> None:
        self._used[message_id] = self._used.get(message_id, 0) + 1
        self._used.move_to_end(message_id)
        while len(self._used) > REMEMBERED:
            self._used.popitem(last=False)

    def refused(self, message_id: str) -> None:
        self._used[message_id] = self.per_message
        self._used.move_to_end(message_id)
