"""In-process counters for /metrics, written in Prometheus' text format (0.0.4).

Each process counts its own: with several processes, Prometheus scrapes each one
and sums. No dependency: counters, gauges and one histogram are a few lines.
"""

from __future__ import annotations

import math
import threading
from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

PREFIX = "citizen_bot"
# Seconds to handle one update (parse, lock, route, commit); the upper bounds.
LATENCY_BUCKETS: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
# Update outcomes: handled, duplicate, ignored (from the channel runtime), rejected
# (4xx: wrong secret, not an update) and failed (5xx: the database was down).
OUTCOMES = ("handled", "duplicate", "ignored", "rejected", "failed")


@dataclass
class _Histogram:
    counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    total: float = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.total += seconds


@dataclass(frozen=True)
class SenderFigures:
    """One channel's sender counters (see bot.outbox.SenderStats)."""

    sent: int
    failed: int
    blocked: int
    retried: int
    rate_limited: int


class Metrics:
    """Counters of one process. Thread-safe: updates are counted from the event loop
    and read by the /metrics route."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._updates: dict[tuple[str, str], int] = {}
        self._latency: dict[str, _Histogram] = {}

    def update(self, channel: str, outcome: str, seconds: float | None = None) -> None:
        """Count one update of `channel` with `outcome`; `seconds` it took to handle
        (observed in the latency histogram when given)."""
        with self._lock:
            key = (channel, outcome)
            self._updates[key] = self._updates.get(key, 0) + 1
            if seconds is not None:
                self._latency.setdefault(channel, _Histogram()).observe(seconds)

    def count(self, channel: str, outcome: str) -> int:
        with self._lock:
            return self._updates.get((channel, outcome), 0)

    def render(
        self,
        *,
        senders: Mapping[str, SenderFigures],
        outbox_depth: int,
        flows_loaded: int,
    ) -> str:
        """Everything in the text exposition format, ending with a newline."""
        with self._lock:
            updates = dict(self._updates)
            latency = {c: (list(h.counts), h.total) for c, h in self._latency.items()}
        out: list[str] = []
        _family(out, "updates_total", "counter", "Updates received, by channel and outcome.")
        for (channel, outcome), value in sorted(updates.items()):
            out.append(_sample("updates_total", value, channel=channel, outcome=outcome))
        _family(out, "messages_out_total", "counter", "Messages delivered or given up.")
        _family(out, "send_retries_total", "counter", "Sends tried again, by reason.")
        for channel, figures in sorted(senders.items()):
            for outcome in ("sent", "failed", "blocked"):
                value = getattr(figures, outcome)
                out.append(_sample("messages_out_total", value, channel=channel, outcome=outcome))
            for reason, value in (
                ("rate_limited", figures.rate_limited),
                ("error", figures.retried),
            ):
                out.append(_sample("send_retries_total", value, channel=channel, reason=reason))
        _family(out, "outbox_depth", "gauge", "Messages waiting in the outbox (all processes).")
        out.append(_sample("outbox_depth", outbox_depth))
        _family(out, "update_seconds", "histogram", "Time to handle one update, in seconds.")
        for channel, (counts, total) in sorted(latency.items()):
            cumulative = 0
            for bound, count in zip((*LATENCY_BUCKETS, math.inf), counts, strict=True):
                cumulative += count
                le = "+Inf" if bound == math.inf else repr(bound)
                out.append(_sample("update_seconds_bucket", cumulative, channel=channel, le=le))
            out.append(_sample("update_seconds_sum", total, channel=channel))
            out.append(_sample("update_seconds_count", cumulative, channel=channel))
        _family(out, "flows_loaded", "gauge", "Flows currently loaded.")
        out.append(_sample("flows_loaded", flows_loaded))
        return "\n".join(out) + "\n"


def _family(out: list[str], name: str, kind: str, help_text: str) -> None:
    out.append(f"# HELP {PREFIX}_{name} {help_text}")
    out.append(f"# TYPE {PREFIX}_{name} {kind}")


def _sample(name: str, value: float, **labels: str) -> str:
    text = _labels(labels.items())
    number = repr(value) if isinstance(value, float) else str(value)
    return f"{PREFIX}_{name}{text} {number}"


def _labels(pairs: Iterable[tuple[str, str]]) -> str:
    items = [f'{k}="{_escape(v)}"' for k, v in pairs]
    return "{" + ",".join(items) + "}" if items else ""


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
