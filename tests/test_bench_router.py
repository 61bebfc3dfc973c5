"""The router benchmark and the tuning script run end to end on tiny sizes; the tuning
grid's shortcut agrees with the router. No timing thresholds: figures vary."""

from __future__ import annotations

import json

import pytest

from bench import router as bench
from bench import tune_router as tune
from bot.router import Router, Thresholds


def test_tiny_benchmark_prints_a_table_and_a_json_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = bench.main(["--entries", "300", "--queries", "40"])
    out = capsys.readouterr().out
    assert json.loads(out.strip().splitlines()[-1]) == result
    for key in ("shipped_p99_us", "synthetic_p99_us", "synthetic_build_s"):
        assert isinstance(result[key], float) and result[key] > 0, key
    assert result["synthetic_index_peak_mb"] > 0
    assert result["shipped_found"] > 0.5
    assert "router / extractOne" in out


def test_synthetic_entries_are_fixed_by_the_seed() -> None:
    one = bench.synthetic_entries(7, 50)
    two = bench.synthetic_entries(7, 50)
    assert one == two and len(one) == 50
    examples = [e for entry in one.values() for e in entry.examples["vi"]]
    assert all(3 <= len(e.split()) <= 10 for e in examples)


@pytest.mark.parametrize(
    "limits",
    [Thresholds(), Thresholds(40, 30, 0, 5), Thresholds(70, 50, 10, 30), Thresholds(90, 90, 20)],
)
def test_the_grid_shortcut_agrees_with_the_router(limits: Thresholds) -> None:
    parts = tune.shipped_parts()
    router = Router(thresholds=limits, **parts)
    messages = tune.read_labelled(tune.DEV)
    cases = tune.cases(router, messages)
    for message, case in zip(messages, cases, strict=True):
        route = router.route(message.text)
        kind, target, offered = tune.decided(case, limits)
        assert (kind if kind != "answer" else route.kind, target) == (route.kind, route.id)
        assert offered == tuple(c[1] for c in route.candidates if route.kind == "clarify")


def test_several_runs_report_each_figure_as_their_median(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = bench.main(["--entries", "100", "--queries", "20", "--runs", "2"])
    out = capsys.readouterr().out
    assert result["runs"] == 2
    assert "run 1: " in out and "run 2: " in out and "median of 2 runs" in out


def test_the_median_is_a_measured_value() -> None:
    assert bench._median([3.0, 1.0, 2.0]) == 2.0
    assert bench._median([4.0, 1.0]) == 1.0


def test_the_shipped_values_figures_agree_with_the_router(
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tune.main(["--current", "--dev", str(tune.DEV)])
    figs = out["eval_dev.yaml"]
    router = Router(**tune.shipped_parts())
    messages = tune.read_labelled(tune.DEV)
    assert figs.right == sum(tune.is_right(router.route(m.text), m.want) for m in messages)
    assert out["all"] == figs
    assert "eval_dev.yaml: accuracy" in capsys.readouterr().out
