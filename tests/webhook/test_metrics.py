"""GET /metrics over HTTP: updates by outcome, messages out, retries, outbox depth,
the latency histogram and flows loaded, after real traffic through the webhook."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bot.content import ContentLibrary
from bot.conversation import ConversationService
from bot.metrics import LATENCY_BUCKETS, Metrics, SenderFigures
from bot.store import Store
from tests.fakes.telegram import Citizen, FakeBotApi, served
from tests.live import LiveServer
from tests.webhook.test_telegram import HEADER, Bot, telegram_settings
from webhook.app import create_app

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = re.compile(r'^([a-z_]+)(\{(?:[a-z_]+="[^"]*",?)*\})? (-?[0-9.e+]+|\+Inf)$')


def scrape(url: str) -> dict[str, float]:
    """Every sample of /metrics, keyed by its name and labels as written."""
    response = httpx.get(url + "/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples: dict[str, float] = {}
    for line in response.text.splitlines():
        if line.startswith("#"):
            continue
        match = SAMPLE.match(line)
        assert match is not None, line
        samples[line.rsplit(" ", 1)[0]] = float(match.group(3))
    return samples


@pytest.fixture
def api() -> Iterator[FakeBotApi]:
    with served() as fake:
        yield fake


@pytest.fixture
def service(store: Store) -> ConversationService:
    library = ContentLibrary(flows_dir=ROOT / "flows", knowledge_dir=ROOT / "knowledge")
    return ConversationService(store=store, library=library)


def test_metrics_count_what_the_webhook_and_the_sender_did(
    api: FakeBotApi, service: ConversationService
) -> None:
    lan = Citizen(7001)
    api.fail("sendMessage", 1, status=500)  # one retry
    with LiveServer(create_app(service, settings=telegram_settings(api))) as server:
        bot = Bot(server, api, service)
        start = lan.text("/start")
        assert bot.post(start).status_code == 200
        assert bot.post(start).status_code == 200  # Telegram delivers it again
        assert bot.post({"update_id": 9101, "poll": {"id": "1"}}).status_code == 200
        assert bot.post(lan.text("menu"), secret="wrong").status_code == 401
        assert bot.post(None, content=b"not json").status_code == 400
        assert bot.post({"no": "update"}).status_code == 400
        bot.delivered(lan)
        samples = scrape(server.url)
        bot.client.close()

    def updates(outcome: str) -> float:
        return samples[f'citizen_bot_updates_total{{channel="telegram",outcome="{outcome}"}}']

    assert [updates(o) for o in ("handled", "duplicate", "ignored", "rejected")] == [1, 1, 1, 3]
    assert samples['citizen_bot_messages_out_total{channel="telegram",outcome="sent"}'] == 2
    assert samples['citizen_bot_messages_out_total{channel="telegram",outcome="failed"}'] == 0
    assert samples['citizen_bot_send_retries_total{channel="telegram",reason="error"}'] == 1
    assert samples["citizen_bot_outbox_depth"] == 0
    # Handled, duplicate and ignored updates are timed; refused ones are not.
    assert samples['citizen_bot_update_seconds_count{channel="telegram"}'] == 3
    assert samples['citizen_bot_update_seconds_bucket{channel="telegram",le="+Inf"}'] == 3
    assert samples['citizen_bot_update_seconds_sum{channel="telegram"}'] > 0
    assert samples["citizen_bot_flows_loaded"] == len(service.library.catalog.flows()) > 0


def test_the_outbox_depth_counts_undelivered_replies(
    api: FakeBotApi, service: ConversationService
) -> None:
    api.fail("sendMessage", 1000, status=500)  # Telegram is down: replies wait
    settings = telegram_settings(api, outbox_backoff_seconds=30, outbox_backoff_cap_seconds=30)
    with LiveServer(create_app(service, settings=settings)) as server:
        response = httpx.post(
            server.url + "/telegram/webhook",
            json=Citizen(7002).text("/start"),
            headers={HEADER: telegram_settings(api).telegram_webhook_secret or ""},
        )
        assert response.status_code == 200
        assert scrape(server.url)["citizen_bot_outbox_depth"] == 2


def test_the_histogram_is_cumulative_and_labels_are_escaped() -> None:
    metrics = Metrics()
    for seconds in (0.001, 0.02, 0.02, 99.0):
        metrics.update('we"b', "handled", seconds)
    text = metrics.render(
        senders={"telegram": SenderFigures(sent=5, failed=1, blocked=0, retried=2, rate_limited=3)},
        outbox_depth=4,
        flows_loaded=7,
    )
    lines = text.splitlines()
    buckets = [line for line in lines if line.startswith("citizen_bot_update_seconds_bucket")]
    assert len(buckets) == len(LATENCY_BUCKETS) + 1
    assert buckets[0] == 'citizen_bot_update_seconds_bucket{channel="we\\"b",le="0.005"} 1'
    assert buckets[2].endswith(',le="0.025"} 3')
    assert buckets[-1].endswith('le="+Inf"} 4')
    assert 'citizen_bot_send_retries_total{channel="telegram",reason="rate_limited"} 3' in lines
    assert "citizen_bot_outbox_depth 4" in lines and "citizen_bot_flows_loaded 7" in lines
    assert text.endswith("\n")
