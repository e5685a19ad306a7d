"""Measurements are compared only when the machine ran at the same speed for both."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pytest_aide.evaluation.evaluator import Evaluation
from pytest_aide.evaluation.evaluator import TestResult as Result
from pytest_aide.evaluation.speed import (
    agree,
    comparable,
    difference,
    probe,
    too_large_to_explain,
    won,
)
from pytest_aide.executors.base import EvaluationRequest
from pytest_aide.guards.baseline import Baseline
from pytest_aide.journal import GOOD, Node
from pytest_aide.metrics import Measurement
from pytest_aide.search.confirm import confirm_best
from pytest_aide.study import Objective

NODEID = "test_k.py::test_speed"


def test_probes_agree_before_with_before_and_after_with_after() -> None:
    assert agree([1.0, 1.2], [1.05, 1.15])  # a busy "after" on both sides is fine
    assert not agree([1.0, 1.0], [1.7, 1.7])  # a CPU ~70% slower throughout
    assert not agree([1.0, 1.0], [1.0, 1.7])  # it slowed down during the second
    assert not agree([1.0, 1.0], [1.0, float("nan")])
    assert not agree([1.0, 1.0], [0.0, 1.0])
    assert agree([], [1.0, 1.0]) and agree([], [])  # journals from before the probes


def test_difference_names_the_largest_change() -> None:
    assert difference([1.0, 1.0], [1.1, 1.7]) == "+70%"
    assert difference([1.0, 1.0], [0.5, 1.1]) == "-50%"
    assert difference([], []) == "n/a"


def test_only_a_change_beyond_the_speed_difference_is_too_large_to_explain() -> None:
    slower = ([1.0, 1.0], [1.7, 1.7])  # the second measured on a CPU 70% slower
    assert too_large_to_explain(*slower, [-0.8])  # 5x faster: not the CPU's doing
    assert too_large_to_explain(*slower, [2.0])  # 3x slower, either way round
    assert not too_large_to_explain(*slower, [-0.1])
    assert not too_large_to_explain(*slower, [0.5])  # about what the CPU alone would do
    assert not too_large_to_explain(*slower, [-0.8, 0.1])  # every change must be
    assert not too_large_to_explain([], [], [-0.8])
    assert not too_large_to_explain(*slower, [float("nan")])


def test_a_win_on_a_machine_no_faster_is_comparable_and_so_is_its_mirror() -> None:
    steady, slower = [1.0, 1.0], [1.7, 1.7]
    assert comparable(steady, slower, [-0.1], second_won=True)  # won although slower
    assert not comparable(steady, slower, [0.1], second_won=False)  # lost: the CPU's doing?
    assert comparable(slower, steady, [0.1], second_won=False)  # lost although faster
    assert not comparable(slower, steady, [-0.1], second_won=True)  # won: the CPU's doing?
    # one probe within the tolerance and one slower still counts as "no faster"
    assert comparable(steady, [0.95, 1.7], [-0.1], second_won=True)
    assert not comparable(steady, [0.8, 1.7], [-0.1], second_won=True)  # faster before
    assert not comparable(steady, slower, [-0.1], second_won=None)
    # swapping two sides turns one rule into the other, so identical code is kept as
    # often winning as losing
    for first, second in ((steady, slower), (slower, steady), (steady, [0.95, 1.7])):
        for change in (-0.1, 0.1):
            assert comparable(first, second, [change], change < 0) == comparable(
                second, first, [-change], -change < 0)


def test_won_needs_every_change_on_one_side() -> None:
    assert won([-0.1, -0.2]) is True and won([0.1, 0.3]) is False
    assert won([-0.1, 0.1]) is None and won([0.0]) is None and won([]) is None
    assert won([float("nan")]) is None


def test_probe_is_short_and_positive() -> None:
    seconds = probe()
    assert 0 < seconds < 0.5


@dataclass
class ScriptedEvaluator:
    """An executor without a child process: the baseline ("A") takes 1.0 per round, the
    best ("B") 0.8, and each evaluation gets the next machine speed from ``speeds``."""

    speeds: list[list[float]]
    best_level: float = 0.8
    calls: list[str] = field(default_factory=list)

    workers = 1

    def run_isolated(self, request: EvaluationRequest) -> Evaluation:
        source = request.source
        self.calls.append(source or "")
        level = 1.0 if source == "A" else self.best_level
        samples = [level * (1 + 0.01 * i) for i in range(10)]
        measurement = Measurement(benchmark={"mean": sum(samples) / 10}, samples=samples)
        result = Result(NODEID, "passed", measurement=measurement)
        speed = self.speeds.pop(0) if self.speeds else [1.0, 1.0]
        return Evaluation(status="completed", tests={NODEID: result}, speed=speed)


def confirm(evaluator: ScriptedEvaluator, rounds: int, tmp_path: Path):
    objective = Objective(NODEID, "mean", False)
    root = Node(0, None, 0, "baseline", "", "A", status=GOOD, objective=-1.0,
                samples={NODEID: [1.0] * 10})
    best = Node(1, 0, 1, "draft", "", "B", status=GOOD, objective=-0.8,
                samples={NODEID: [0.8] * 10})
    return confirm_best(evaluator, [objective], Baseline(),  # type: ignore[arg-type]
                        root, best, tmp_path, rounds)


def test_a_round_measured_across_a_speed_change_is_measured_again(tmp_path: Path) -> None:
    # the baseline measured on a CPU 70% slower, the best at full speed: its win says nothing
    evaluator = ScriptedEvaluator(speeds=[[1.7, 1.7], [1.0, 1.0]])
    confirmation = confirm(evaluator, 20, tmp_path)
    assert confirmation.confirmed, confirmation.summary
    # a 20% speedup, every round alike: decided at the early look (4 rounds kept)
    assert confirmation.details["rounds"] == 4 and confirmation.details["discarded"] == 1
    assert len(evaluator.calls) == 2 * 5
    assert "1 more discarded: the machine's speed changed" in confirmation.summary


def test_a_round_whose_change_dwarfs_the_speed_change_is_kept(tmp_path: Path) -> None:
    evaluator = ScriptedEvaluator(speeds=[[1.0, 1.0], [1.7, 1.7]] * 4, best_level=0.2)
    confirmation = confirm(evaluator, 20, tmp_path)
    assert confirmation.confirmed and confirmation.details["discarded"] == 0
    # -80% in every round, far beyond the 70% change of speed: decided at the early look
    assert len(evaluator.calls) == 2 * 4


def test_a_round_the_best_won_on_a_slower_machine_is_kept(tmp_path: Path) -> None:
    # rounds alternate which side goes first: the best always on the CPU 70% slower
    steady, slower = [1.0, 1.0], [1.7, 1.7]
    evaluator = ScriptedEvaluator(speeds=[steady, slower, slower, steady] * 4)
    confirmation = confirm(evaluator, 20, tmp_path)
    assert confirmation.confirmed and confirmation.details["discarded"] == 0
    assert len(evaluator.calls) == 2 * 8


def test_a_best_never_measured_at_a_steady_speed_is_not_confirmed(tmp_path: Path) -> None:
    # the baseline slows down during each of its measurements, so the best always wins
    # on a machine that was faster for it
    evaluator = ScriptedEvaluator(speeds=[[1.0, 1.5], [1.0, 1.0]] * 14)
    confirmation = confirm(evaluator, 7, tmp_path)
    assert not confirmation.confirmed
    assert "the machine's speed changed during each of 14" in confirmation.summary
    assert len(evaluator.calls) == 2 * 14


def test_the_spread_of_machine_speed_is_the_widest_gap_between_the_same_probes():
    import math

    from pytest_aide.evaluation.speed import spread

    assert spread([[1.00, 2.0], [1.05, 2.1], [1.08, 1.98]]) == pytest.approx(math.log(1.08))
    assert spread([[1.00, 2.0], [1.7, 2.0]]) == pytest.approx(math.log(1.7))
    assert math.isinf(spread([[1.0, 2.0], [1.0]])) and math.isinf(spread([]))
    assert math.isinf(spread([[1.0, 2.0], [0.0, 2.0]]))
