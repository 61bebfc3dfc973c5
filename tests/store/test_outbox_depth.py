"""Store.outbox_depth: the undelivered messages /metrics reports, on both databases."""

from __future__ import annotations

from bot.messages import Outgoing
from bot.store import Store
from bot.store.types import utcnow


def queue(store: Store, channel: str, chat_id: str, *texts: str) -> list[int]:
    with store.conversation(channel=channel, chat_id=chat_id) as tx:
        return tx.queue_outgoing([Outgoing(chat_id=chat_id, text=t) for t in texts])


def test_depth_counts_pending_and_sending_but_not_finished(store: Store) -> None:
    assert store.outbox_depth() == 0
    sent, failed, _waiting = queue(store, "telegram", "a", "a1", "a2", "a3")
    queue(store, "zalo", "b", "b1")
    assert store.outbox_depth() == 4
    claimed = store.claim_due(channel="zalo", now=utcnow(), lease_seconds=30)
    assert len(claimed) == 1
    assert store.outbox_depth(channel="zalo") == 1  # being sent still counts
    store.mark_sent(sent, external_id="1")
    store.mark_failed(failed, error="400")
    assert store.outbox_depth(channel="telegram") == 1
    assert store.outbox_depth(channel="other") == 0
    assert store.outbox_depth() == 2
