"""The confirmation decides what is written: a best whose speedup is noise is not confirmed,
by the pure rule (judge.InterleavedConfirmation) and through a whole run."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from pytest_aide.search.judge import InterleavedConfirmation, RoundTaken

STEADY = [1.0, 1.0]


def noisy_rounds(level: float, seed: int, rounds: int = 10) -> list[float]:
    rng = random.Random(seed)
    return [level * (1 + rng.gauss(0, 0.05)) for _ in range(rounds)]


def run_machine(best_level: float, seed: int, most: int = 20) -> InterleavedConfirmation:
    machine = InterleavedConfirmation(["t::speed"], most)
    index = 0
    while not machine.done:
        taken = machine.add({"t::speed": noisy_rounds(1.0, seed * 1000 + index)},
                            {"t::speed": noisy_rounds(best_level, seed * 1000 + index + 500)},
                            (STEADY, STEADY))
        assert taken is RoundTaken.KEPT
        index += 1
    return machine


def test_identical_code_is_not_confirmed() -> None:
    results = [run_machine(1.0, seed) for seed in range(30)]
    assert not any(m.confirmed for m in results)
    assert all(m.done and m.kept <= 20 for m in results)


def test_a_clear_speedup_is_confirmed_at_the_early_look() -> None:
    machine = run_machine(0.7, 1)
    assert machine.confirmed and machine.kept == 4
    assert "confirmed at the early look" in machine.verdicts["t::speed"].method


def test_a_modest_speedup_is_confirmed_at_the_first_look() -> None:
    machine = run_machine(0.93, 2)  # four rounds of 7% do not clear the early look here
    assert machine.confirmed and machine.kept == 8


def test_an_8_percent_speedup_is_confirmed_and_3_percent_is_not() -> None:
    """The floor is 5%: a change below it is not worth a rewrite, however consistent its
    rounds (and identical code's rounds can be consistent by a few percent)."""
    eight = [run_machine(0.92, seed) for seed in range(8)]
    assert sum(m.confirmed for m in eight) >= 6
    assert not any(run_machine(0.97, seed).confirmed for seed in range(8))


def test_a_round_measured_across_a_speed_change_is_discarded_and_bounded() -> None:
    # the baseline measured on a CPU 70% slower, the best at full speed: its win says nothing
    machine = InterleavedConfirmation(["t::speed"], 7)
    for _ in range(14):
        assert machine.add({"t::speed": [1.0] * 10}, {"t::speed": [0.8] * 10},
                           ([1.7, 1.7], [1.0, 1.0])) is RoundTaken.DISCARDED
    assert machine.done and not machine.confirmed and machine.discarded == 14


CONFTEST = """\
import dataclasses

import pytest

from pytest_aide.executors.local import LocalExecutor

NODEID = "test_steady.py::test_speed"
BASE = [0.010 * (1 + 0.01 * i) for i in range(10)]


class NoiseAtTheConfirmation(LocalExecutor):
    \"\"\"The search sees the candidate 40% faster; the confirmation sees it as the noise it is
    (the same rounds as the original's, give or take).\"\"\"

    def run_isolated(self, request):
        evaluation = super().run_isolated(request)
        result = evaluation.tests.get(NODEID)
        if result is None or not result.measurement.samples:
            return evaluation
        original = request.source is None or "PAUSE = 0.004" in request.source
        confirming = "confirm" in request.workdir.parts
        samples = BASE if original or confirming else [0.6 * s for s in BASE]
        if confirming and not original:
            samples = list(reversed(BASE))
        result.measurement.samples = list(samples)
        result.measurement.benchmark["mean"] = sum(samples) / len(samples)
        evaluation.speed = [1.0, 1.0]
        return evaluation


@pytest.hookimpl(tryfirst=True)
def pytest_aide_make_executor(settings, evaluator):
    return NoiseAtTheConfirmation(evaluator)
"""


def test_a_best_that_is_noise_is_not_written(pytester: pytest.Pytester) -> None:
    from attacks import STEADY_MODULE

    pytester.makepyfile(steady=STEADY_MODULE, conftest=CONFTEST, test_steady="""\
import pytest
from steady import work


def test_correct():
    assert work(7) == sum(range(7))


@pytest.mark.optimize(metric="mean")
def test_speed(benchmark):
    benchmark.pedantic(work, args=(10,), rounds=10, iterations=1)
""")
    pytester.makeini("[pytest]\npythonpath = .\n")
    before = (pytester.path / "steady.py").read_text()
    result = pytester.runpytest_subprocess("--aide-steps", "1", "--aide-model", "tune",
                                           "--aide-sandbox", "off", "-p", "no:cacheprovider")
    output = result.stdout.str()
    assert "best=" in output and "(-40.0%)" in output, output  # the search took it
    result.stdout.fnmatch_lines(["*not written: the improvement was not confirmed*"])
    assert (pytester.path / "steady.py").read_text() == before
    assert not list(Path(pytester.path).glob(".aide/*/backup_*"))


def test_a_confirmed_speedup_that_vanishes_on_fresh_inputs_is_not_confirmed() -> None:
    from pytest_aide.search.confirm import Confirmation, _held_on_fresh_inputs
    from pytest_aide.search.judge import SCREEN_FRESH_NOISE, fresh_shortfall

    # 40% faster on the benchmark's input; on fresh inputs as slow as the original
    assert fresh_shortfall(-0.4, [1.0] * 12, [1.0] * 12).startswith(
        "faster only on the benchmark's own input (-40.0%; fresh inputs: +0.0%)")
    assert fresh_shortfall(-0.4, [1.0] * 12, [0.62] * 12) == ""  # holds, within noise
    assert fresh_shortfall(-0.4, [], [0.5]) == ""  # nothing timed on fresh inputs
    # a real 8% whose dozen fresh calls came out 10% slower (one noisy pair): the screen
    # lets it through, the confirmation's pooled rounds hold it to the tighter rule
    assert fresh_shortfall(-0.08, [1.0] * 12, [1.1] * 12, SCREEN_FRESH_NOISE) == ""
    assert fresh_shortfall(-0.08, [1.0] * 12, [1.1] * 12) != ""
    assert fresh_shortfall(-0.9, [1.0] * 12, [1.0] * 12, SCREEN_FRESH_NOISE) != ""
    confirmed = Confirmation(True, "confirmed", {
        "confirmed": True, "change": -0.4,
        "per_test": {"t.py::test_speed": {"change": -0.4}}})
    fresh = {"baseline": {"t.py::test_speed": [1.0] * 24},
             "best": {"t.py::test_speed": [0.98] * 24}}
    verdict = _held_on_fresh_inputs(confirmed, fresh)
    assert not verdict.confirmed and not verdict.details["confirmed"]
    assert "test_speed is faster only on the benchmark's own input" in verdict.summary
    honest = {"baseline": fresh["baseline"], "best": {"t.py::test_speed": [0.6] * 24}}
    assert _held_on_fresh_inputs(confirmed, honest).confirmed


def test_the_progress_says_rounds_the_change_so_far_and_what_is_left() -> None:
    from pytest_aide.search.confirm import Progress

    assert Progress(0, 20, 0.0).text() == (
        "confirming the best: interleaved rounds with the original, at most 20")
    middle = Progress(3, 20, 6.0, change=-0.421, low=-0.503, high=-0.35)
    assert middle.text() == ("confirming the best: round 3 of at most 20, -42.1% so far "
                             "(-50.3% .. -35.0%), at most 34.0s left")
    early = Progress(1, 20, 2.0, change=float("nan"), low=float("-inf"), high=float("inf"))
    assert early.text() == "confirming the best: round 1 of at most 20, at most 38.0s left"
    assert Progress(8, 20, 16.0, 1, -0.4, -0.5, -0.3, done=True).text().endswith(
        ", 1 discarded (the machine's speed changed), decided in 16.0s")
