"""The noise statistics decide like a careful person would: noise is never a speedup."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from pytest_aide.search.noise import (
    EARLY_LOOK,
    Verdict,
    compare_samples,
    confirm_interleaved,
    needs_more_rounds,
)


def timings(rng: np.random.Generator, n: int, level: float = 1e-4, spread: float = 0.05):
    """Per-round times as a benchmark produces them: positive, skewed to the slow side."""
    return list(level * rng.lognormal(0.0, spread, n) + level * rng.exponential(0.02, n))


def process(
    rng: np.random.Generator, n: int, level: float, flip: float = 0.0, offset: float = 0.03
) -> list[float]:
    """One fresh-process measurement: its own level offset (memory layout, the machine's
    state), and with probability ``flip`` a neighbour sharing the core (70% slower)."""
    offset = rng.lognormal(0.0, offset) * (1.7 if rng.random() < flip else 1.0)
    return timings(rng, n, level * offset)


def test_identical_distributions_are_rarely_called_better():
    rng = np.random.default_rng(0)
    ours = rank_only = naive = 0
    trials = 200
    for _ in range(trials):
        ref, cand = timings(rng, 30), timings(rng, 30)
        ours += compare_samples(ref, cand, maximize=False).better
        rank_only += compare_samples(ref, cand, maximize=False, min_effect=0.0).better
        naive += np.mean(cand) < np.mean(ref)
    assert ours / trials < 0.02
    assert rank_only / trials < 0.02  # the rank test alone holds its level, alpha = 1%
    assert 0.35 < naive / trials < 0.65  # comparing means: a coin toss


def test_a_clear_speedup_is_better_and_the_interval_holds_the_truth():
    rng = np.random.default_rng(1)
    ref, cand = timings(rng, 40), timings(rng, 40, level=0.8e-4)
    verdict = compare_samples(ref, cand, maximize=False)
    assert verdict.better
    assert verdict.low <= -0.2 <= verdict.high
    assert verdict.high < 0
    assert verdict.p_value is not None and verdict.p_value < 1e-6
    assert verdict.describe().startswith("-")
    assert verdict.describe().count("%") == 3


def test_describe_formats_change_and_interval():
    verdict = Verdict(True, -0.102, -0.121, -0.080, 0.001, "test")
    assert verdict.describe() == "-10.2% [-12.1%, -8.0%]"


def test_direction_follows_maximize():
    rng = np.random.default_rng(2)
    ref, higher = timings(rng, 30), timings(rng, 30, level=1.2e-4)
    assert compare_samples(ref, higher, maximize=True).better
    assert not compare_samples(ref, higher, maximize=False).better
    assert not compare_samples(higher, ref, maximize=True).better
    verdict = compare_samples(ref, higher, maximize=True)
    assert verdict.low <= 0.2 <= verdict.high and verdict.low > 0


def test_a_small_real_change_below_min_effect_is_not_better():
    rng = np.random.default_rng(3)
    ref, cand = timings(rng, 200, spread=0.01), timings(rng, 200, level=0.98e-4, spread=0.01)
    verdict = compare_samples(ref, cand, maximize=False)
    assert verdict.p_value is not None and verdict.p_value < 0.01  # real, but small
    assert not verdict.better
    assert "min_effect" in verdict.method
    assert compare_samples(ref, cand, maximize=False, min_effect=0.01).better


@pytest.mark.parametrize("n", [1, 3, 4])
def test_too_few_samples_are_never_better(n):
    verdict = compare_samples([1.0] * 50, [0.5] * n, maximize=False)
    assert not verdict.better
    assert "too few samples" in verdict.method
    assert verdict.p_value is None
    assert math.isinf(verdict.low) and math.isinf(verdict.high)
    assert verdict.change == pytest.approx(-0.5)
    assert "too few" in verdict.describe()


def test_non_finite_samples_are_ignored_and_do_not_count():
    verdict = compare_samples([1.0] * 10, [0.5, 0.5, 0.5, math.nan, math.inf], maximize=False)
    assert not verdict.better and "n=10 vs 3" in verdict.method


def test_constant_samples():
    same = compare_samples([1.0] * 10, [1.0] * 10, maximize=False)
    assert not same.better and same.p_value == 1.0 and same.change == 0.0
    lower = compare_samples([1.0] * 10, [0.8] * 10, maximize=False)
    assert lower.better and lower.change == pytest.approx(-0.2)
    assert lower.low == pytest.approx(-0.2) and lower.high == pytest.approx(-0.2)


def test_zero_samples():
    zero_reference = compare_samples([0.0] * 10, [0.5] * 10, maximize=True)
    assert not zero_reference.better and "zero" in zero_reference.method
    # Some zero rounds (a coarse timer): the comparison runs on a linear scale.
    ref = [0.0, 1.0, 1.0, 1.1, 0.9, 1.0, 1.0, 1.05, 0.95, 1.0]
    cand = [0.0, 0.5, 0.5, 0.55, 0.45, 0.5, 0.5, 0.5, 0.5, 0.52]
    verdict = compare_samples(ref, cand, maximize=False)
    assert verdict.better and "linear" in verdict.method
    assert verdict.change == pytest.approx(-0.5, abs=0.05)


def test_rank_test_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(4)
    ref, cand = np.round(timings(rng, 40), 6), np.round(timings(rng, 35, level=0.98e-4), 6)
    ours = compare_samples(ref, cand, maximize=False, min_effect=0.0).p_value
    expected = stats.mannwhitneyu(cand, ref, alternative="less", method="asymptotic").pvalue
    assert ours == pytest.approx(expected, rel=1e-9)


def test_many_rounds_are_fast_and_still_right():
    rng = np.random.default_rng(5)
    ref, cand = timings(rng, 100_000), timings(rng, 100_000, level=0.9e-4)
    verdict = compare_samples(ref, cand, maximize=False)
    assert verdict.better and verdict.low <= -0.1 <= verdict.high
    assert "n=64 vs 64" in verdict.method


def test_same_inputs_same_verdict_and_json_safe():
    rng = np.random.default_rng(6)
    ref, cand = timings(rng, 30), timings(rng, 30, level=0.9e-4)
    assert compare_samples(ref, cand, maximize=False) == compare_samples(
        ref, cand, maximize=False
    )
    few = compare_samples([1.0], [2.0], maximize=False).to_dict()
    assert few["low"] is None and few["high"] is None
    json.dumps(few, allow_nan=False)


def interleave(rng, rounds, ratio, drift=0.0, flip=0.0, n=30):
    """(baseline, best) per round; the machine's level drifts by ``drift`` per round."""
    runs = []
    for index in range(rounds):
        level = 1e-4 * (1 + drift) ** index
        runs.append((process(rng, n, level, flip), process(rng, n, level * ratio, flip)))
    return runs


def test_interleaved_real_speedup_with_drift_is_confirmed():
    rng = np.random.default_rng(7)
    verdict = confirm_interleaved(interleave(rng, 8, 0.85, drift=0.3), maximize=False)
    assert verdict.better, verdict.method
    assert len(verdict.rounds) == 8
    assert all(-0.25 < change < -0.05 for change in verdict.rounds)
    assert verdict.low <= -0.15 <= verdict.high


def test_interleaved_identical_with_drift_is_not_better():
    rng = np.random.default_rng(8)
    trials = 200
    better = sum(
        confirm_interleaved(interleave(rng, 8, 1.0, drift=0.2, flip=0.2), maximize=False).better
        for _ in range(trials)
    )
    assert better / trials < 0.02


def sequential(rng: np.random.Generator, factor: float, flip: float, most: int = 20) -> Verdict:
    """The confirmation as pytest-aide runs it: rounds are added until it decides."""
    runs: list = []
    while True:
        runs += interleave(rng, 1, factor, flip=flip)
        verdict = confirm_interleaved(runs, maximize=False, max_rounds=most)
        if not needs_more_rounds(verdict):
            return verdict


def test_interleaved_detects_a_real_speedup_despite_a_neighbour():
    rng = np.random.default_rng(9)
    verdicts = [sequential(rng, 0.85, flip=0.05) for _ in range(100)]
    assert sum(v.better for v in verdicts) / len(verdicts) > 0.9
    # a clear win usually stops at the first look
    assert np.median([len(v.rounds) for v in verdicts]) == 8


def test_sequential_identical_is_rarely_confirmed():
    rng = np.random.default_rng(12)
    verdicts = [sequential(rng, 1.0, flip=0.1) for _ in range(300)]
    assert sum(v.better for v in verdicts) / len(verdicts) < 0.01


def test_interleaved_needs_the_rounds_to_agree_not_a_lucky_minority():
    rng = np.random.default_rng(10)
    same = interleave(rng, 8, 1.0)
    lucky = [(a, [x * 0.8 for x in b]) if i < 3 else (a, b) for i, (a, b) in enumerate(same)]
    verdict = confirm_interleaved(lucky, maximize=False)
    assert not verdict.better and "sign test" in verdict.method


def test_the_two_looks_of_the_sequential_design():
    faster, slower = ([1.0] * 10, [0.8] * 10), ([1.0] * 10, [1.2] * 10)
    all_improve = confirm_interleaved([faster] * 8, maximize=False, max_rounds=20)
    assert all_improve.better and "confirmed at the first look" in all_improve.method
    three_bad = confirm_interleaved([faster] * 5 + [slower] * 3, maximize=False, max_rounds=20)
    assert needs_more_rounds(three_bad) and not three_bad.better
    five_bad = confirm_interleaved([faster] * 3 + [slower] * 5, maximize=False, max_rounds=20)
    assert not needs_more_rounds(five_bad) and not five_bad.better
    # at the last look: 16 of 20 improving passes (p = 0.0059), 15 of 20 does not
    assert confirm_interleaved([faster] * 16 + [slower] * 4, maximize=False).better
    assert not confirm_interleaved([faster] * 15 + [slower] * 5, maximize=False).better


def test_interleaved_direction_and_too_few_rounds():
    rng = np.random.default_rng(11)
    higher = interleave(rng, 8, 1.2)
    assert confirm_interleaved(higher, maximize=True).better
    assert not confirm_interleaved(higher, maximize=False).better
    one = confirm_interleaved(higher[:1], maximize=True)
    assert not one.better and "too few usable rounds" in one.method
    short = confirm_interleaved([(a, b[:3]) for a, b in higher], maximize=True)
    assert not short.better and "0 of 8" in short.method


def test_interleaved_zero_baseline_round_is_not_better():
    runs = [([1.0] * 10, [0.5] * 10), ([0.0] * 10, [0.5] * 10)]
    verdict = confirm_interleaved(runs, maximize=True)
    assert not verdict.better and "zero" in verdict.method


def test_benchmark_times_rounds_like_pytest_benchmark(monkeypatch):
    """Smoke test of benchmarks/bench_noise.py's measurement (the script is not run here)."""
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_noise.py"
    spec = importlib.util.spec_from_file_location("bench_noise", path)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_noise", bench)  # its dataclasses look it up
    spec.loader.exec_module(bench)
    samples = bench.measure(lambda: bench.faster_function(bench.VALUES), max_time=0.005)
    assert len(samples) >= 5 and all(0 < s < 0.01 for s in samples)
    # each process also times the function on fresh inputs, as an evaluation does
    fresh = bench.time_fresh_inputs("faster")
    assert len(fresh) == 12 and all(0 < s < 0.01 for s in fresh)


def test_a_large_speedup_is_confirmed_at_the_early_look_and_identical_code_is_not():
    """Four rounds decide a 40% speedup; the early look keeps identical code's chance of
    being confirmed under its own share of alpha, heavy tails and drift included."""
    rng = np.random.default_rng(21)
    large = [sequential(rng, 0.6, flip=0.05) for _ in range(100)]
    assert sum(v.better for v in large) >= 98
    assert np.median([len(v.rounds) for v in large]) == EARLY_LOOK
    assert "confirmed at the early look" in large[0].method
    identical = [confirm_interleaved(interleave(rng, EARLY_LOOK, 1.0, flip=0.2, n=10),
                                     maximize=False, max_rounds=20) for _ in range(2000)]
    assert sum(v.better for v in identical) <= 2
    # 10% at 4 rounds with processes 5% apart is not clear yet: more rounds
    modest = confirm_interleaved(interleave(rng, EARLY_LOOK, 0.9, flip=0.3), maximize=False,
                                 max_rounds=20)
    assert needs_more_rounds(modest)


def test_the_early_looks_t_tail_is_students():
    from scipy import stats

    from pytest_aide.search.noise import _t_upper_tail

    for t, df in [(0.5, 6), (2.0, 6), (8.0, 6), (15.0, 6), (-1.0, 10), (3.0, 2)]:
        assert _t_upper_tail(t, df) == pytest.approx(stats.t.sf(t, df), rel=1e-9, abs=1e-15)


def test_no_early_look_unless_the_machine_kept_one_speed():
    """A process slowed by a neighbour looks like a large change; the early look is taken
    only when no change of machine speed among the processes could explain the rounds'."""
    from pytest_aide.search.judge import InterleavedConfirmation

    rng = np.random.default_rng(3)
    runs = interleave(rng, EARLY_LOOK, 0.6)
    steady_probes, one_slow = [0.0010, 0.0011], [0.0018, 0.0011]
    for probes, early in ((steady_probes, True), (one_slow, False)):
        machine = InterleavedConfirmation(["t"], 20)
        for index, (baseline, best) in enumerate(runs):
            slow = probes if index == 2 else steady_probes
            machine.add({"t": baseline}, {"t": best}, (slow, slow))
        assert machine.done is early and machine.confirmed is early
        assert machine.kept == EARLY_LOOK
