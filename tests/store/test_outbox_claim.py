"""The outbox's sender contract (claim_due, block_chat) on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from bot.messages import Outgoing
from bot.store import ConversationStatus, OutboxStatus, Store
from bot.store.types import utcnow

CHANNEL = "test"


def queue(store: Store, chat_id: str, *texts: str) -> list[int]:
    with store.conversation(channel=CHANNEL, chat_id=chat_id) as tx:
        return tx.queue_outgoing([Outgoing(chat_id=chat_id, text=t) for t in texts])


def claim(
    store: Store, seconds_from_now: float = 1, lease: float = 30, limit: int = 50
) -> list[str]:
    now = utcnow() + timedelta(seconds=seconds_from_now)
    items = store.claim_due(channel=CHANNEL, now=now, lease_seconds=lease, limit=limit)
    assert all(i.status == OutboxStatus.SENDING for i in items)
    return [i.text for i in items]


def test_claim_hands_out_the_head_of_each_chat_once(store: Store) -> None:
    a = queue(store, "a", "a1", "a2")
    queue(store, "b", "b1")
    assert claim(store) == ["a1", "b1"]
    # Claimed messages are leased: nobody else gets them, nor the chat's next one.
    assert claim(store) == []
    store.mark_sent(a[0], external_id="7")
    assert claim(store) == ["a2"]
    assert store.due_outbox(channel=CHANNEL, now=utcnow() + timedelta(seconds=1)) == []


def test_claim_respects_the_limit_and_the_channel(store: Store) -> None:
    for chat in ("a", "b", "c"):
        queue(store, chat, chat + "1")
    assert store.claim_due(channel="other", now=utcnow(), lease_seconds=30) == []
    assert claim(store, limit=2) == ["a1", "b1"]
    assert claim(store, limit=0) == []
    assert claim(store, limit=5) == ["c1"]


def test_claim_waits_for_next_attempt(store: Store) -> None:
    [first] = queue(store, "a", "a1")
    store.mark_retry(first, at=utcnow() + timedelta(seconds=60), error="429")
    assert claim(store) == []
    assert claim(store, seconds_from_now=61) == ["a1"]


def test_an_expired_lease_is_claimed_again(store: Store) -> None:
    queue(store, "a", "a1", "a2")
    assert claim(store, lease=10) == ["a1"]
    assert claim(store, seconds_from_now=5) == []  # lease running
    # The sender died: after the lease the same message (not the next) is due again.
    assert claim(store, seconds_from_now=12) == ["a1"]


def test_a_retried_claim_goes_back_to_pending_with_an_attempt_counted(store: Store) -> None:
    [first] = queue(store, "a", "a1")
    [item] = store.claim_due(channel=CHANNEL, now=utcnow(), lease_seconds=30)
    store.mark_retry(item.id, at=utcnow(), error="500")
    [again] = store.claim_due(
        channel=CHANNEL, now=utcnow() + timedelta(seconds=1), lease_seconds=30
    )
    assert (again.id, again.attempts, again.last_error) == (first, 1, "500")


def test_concurrent_claimers_never_share_a_message(store: Store) -> None:
    for n in range(40):
        queue(store, f"chat{n}", f"m{n}-1", f"m{n}-2")
    claimed: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(4)

    def claimer() -> None:
        start.wait()
        while True:
            items = store.claim_due(channel=CHANNEL, now=utcnow(), lease_seconds=30, limit=7)
            if not items:
                return
            with lock:
                claimed.extend(i.text for i in items)
            for item in items:
                store.mark_sent(item.id)

    with ThreadPoolExecutor(max_workers=4) as pool:
        for future in [pool.submit(claimer) for _ in range(4)]:
            future.result(timeout=60)
    assert sorted(claimed) == sorted(f"m{n}-{k}" for n in range(40) for k in (1, 2))
    assert len(claimed) == len(set(claimed))
    # Per chat, the first message was claimed before the second.
    for n in range(40):
        assert claimed.index(f"m{n}-1") < claimed.index(f"m{n}-2")


def test_block_chat_fails_what_is_left_and_marks_the_conversation(store: Store) -> None:
    first, _second = queue(store, "a", "a1", "Số 0912345678")
    queue(store, "b", "b1")
    [item, _b] = store.claim_due(channel=CHANNEL, now=utcnow(), lease_seconds=30)
    assert item.id == first
    assert store.block_chat(channel=CHANNEL, chat_id="a", error="403 Forbidden") == 2
    items = store.outbox_after(channel=CHANNEL, chat_id="a")
    assert [i.status for i in items] == [OutboxStatus.FAILED, OutboxStatus.FAILED]
    assert items[1].text == "Số 09******78" and items[1].last_error == "403 Forbidden"
    assert [i.attempts for i in items] == [1, 0]  # the one being sent was tried
    with store.conversation(channel=CHANNEL, chat_id="a") as tx:
        assert tx.status is ConversationStatus.BLOCKED
    # Other chats go on.
    assert [i.chat_id for i in store.outbox_after(channel=CHANNEL, chat_id="b")] == ["b"]
    assert store.block_chat(channel=CHANNEL, chat_id="nobody", error="403") == 0
