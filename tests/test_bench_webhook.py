"""The webhook benchmark runs end to end with tiny counts; no timing thresholds."""

from __future__ import annotations

import json

import pytest

from bench.webhook import main, percentile


def test_percentile_is_nearest_rank() -> None:
    values = [float(n) for n in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 99), percentile([3.0], 99)) == (
        50.0,
        99.0,
        3.0,
    )


def test_tiny_run_prints_a_table_and_a_json_line(capsys: pytest.CaptureFixture[str]) -> None:
    result = main(["--updates", "10", "--workers", "2", "--rounds", "1", "--chats", "2"])
    out = capsys.readouterr().out
    assert json.loads(out.strip().splitlines()[-1]) == result
    for name in ("bare", "webhook"):
        assert result[f"{name}_per_s"] > 0 and result[f"{name}_p99_ms"] >= result[f"{name}_p50_ms"]
    assert result["ratio"] > 0 and result["drain_after_last_200_s"] >= 0
    assert 0 < result["webhook_delivered_per_s"] <= result["webhook_per_s"]
    assert result["delivered_ratio"] >= result["ratio"]
