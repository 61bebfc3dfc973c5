"""The benchmark runs end to end with tiny counts; no timing thresholds (figures vary)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from bench.engine import DEMO_FLOW_ID, main, percentile

TIMINGS = (
    "engine_us",
    "baseline_us",
    "engine_ratio",
    "engine_steps_per_s",
    "baseline_steps_per_s",
    "store_us",
    "store_baseline_us",
    "store_ratio",
    "store_steps_per_s",
    "store_p50_us",
    "store_p99_us",
    "store_baseline_p50_us",
    "store_baseline_p99_us",
)


def test_tiny_run_prints_a_table_and_a_json_line(capsys: pytest.CaptureFixture[str]) -> None:
    result = main(["--rounds", "1", "--conversations", "2"])
    out = capsys.readouterr().out
    printed = json.loads(out.strip().splitlines()[-1])
    assert printed == result
    for key in TIMINGS:
        value = printed[key]
        assert isinstance(value, float) and value > 0, key
    # A difference of two timings: its sign is noise in a run this small.
    share = printed["store_engine_share"]
    assert isinstance(share, float) and math.isfinite(share)
    assert printed["store_p99_us"] >= printed["store_p50_us"]
    assert printed["journal_mode"] == "wal"
    assert printed["steps_per_conversation"] > 1
    assert "engine / baseline" in out


def test_a_flow_that_does_not_load_falls_back_to_the_demo_flow(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    result = main(
        ["--rounds", "1", "--conversations", "1", "--flows-dir", str(tmp_path), "--flow", "nope"]
    )
    assert str(result["flow"]).startswith(f"{DEMO_FLOW_ID}@")
    assert "nope not usable" in capsys.readouterr().out


def test_percentile_is_nearest_rank() -> None:
    samples = list(range(1, 101))
    assert percentile(samples, 50) == 50
    assert percentile(samples, 99) == 99
    assert percentile([7], 99) == 7
