"""How many evaluations the built-in tuner needs, next to plain random search.

Each problem is a small module source whose UPPER_CASE constants and keyword arguments are
the tunables, and whose ``score()`` (higher is better) has a known optimum. Both searches
get the same budget and see the same spaces (``find_tunables``); random search samples
them uniformly (on each tunable's own scale: log, powers of two, linear). A run "reaches"
the optimum at the first evaluation whose score is within 1% of it.

    python benchmarks/bench_tuner.py [--budget 40] [--seeds 10]
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pytest_aide.journal import GOOD, Node
from pytest_aide.proposers.base import ProposalRequest
from pytest_aide.proposers.tune.proposer import TuneProposer, sample_uniform
from pytest_aide.proposers.tune.tunables import apply_values, find_tunables


@dataclass
class Problem:
    name: str
    source: str  # defines score() -> float, higher is better
    optimum: float

    def score(self, code: str) -> float:
        namespace: dict[str, object] = {}
        exec(compile(code, f"<{self.name}>", "exec"), namespace)
        return float(namespace["score"]())  # type: ignore[operator]

    def reached(self, value: float) -> bool:
        return value >= self.optimum - 0.01 * abs(self.optimum)


QUADRATIC_LOG = Problem(
    "quadratic, log-scale float",
    """
import math

LEARNING_RATE = 1e-3  # default space: 1e-4..1e-2, log
WIDTH = 2.0  # default space: 0.2..20, log


def score():
    lr_error = math.log10(LEARNING_RATE) - math.log10(4e-3)
    width_error = math.log10(WIDTH) - math.log10(5.5)
    return 100.0 - 40.0 * lr_error**2 - 30.0 * width_error**2
""",
    optimum=100.0,
)

BLOCK_SIZE = Problem(
    "pow2 block size + num_warps",
    '''
import math

BLOCK_SIZE = 64  # default space: 8..512, powers of two


def launch(n, BLOCK_SIZE, num_warps):
    """A model of a kernel's throughput: best at BLOCK_SIZE=256 with 8 warps."""
    b, w = math.log2(BLOCK_SIZE), math.log2(num_warps)
    return 100.0 - 6.0 * (b - 8) ** 2 - 4.0 * (w - 3) ** 2 - 2.0 * (b - w - 5) ** 2


def score():
    return launch(1 << 20, BLOCK_SIZE=BLOCK_SIZE, num_warps=4)  # num_warps: 1..32, pow2
''',
    optimum=100.0,
)

INTEGER = Problem(
    "integer hyper-parameters",
    '''
import math


class Forest:
    """A model of a validation accuracy: best at 300 trees, depth 14, leaves of 2."""

    def __init__(self, n_estimators, max_depth, min_samples_leaf, random_state):
        self.n, self.depth, self.leaf = n_estimators, max_depth, min_samples_leaf

    def accuracy(self):
        trees = 0.05 * math.log2(self.n / 300) ** 2
        return 0.95 - trees - 0.002 * (self.depth - 14) ** 2 - 0.003 * (self.leaf - 2) ** 2


def score():
    model = Forest(n_estimators=100, max_depth=6, min_samples_leaf=3, random_state=0)
    return model.accuracy()
''',
    optimum=0.95,
)

PROBLEMS = [QUADRATIC_LOG, BLOCK_SIZE, INTEGER]

Search = Callable[[Problem, int, int], list[float]]


def tuner_scores(problem: Problem, budget: int, seed: int) -> list[float]:
    """Scores of the TuneProposer's first ``budget`` proposals (after the baseline)."""
    proposer = TuneProposer(problem.source, seed=seed)
    baseline = problem.score(problem.source)
    root = _node(0, "baseline", problem.source, baseline)
    proposer.observe(root, None)
    scores = []
    for step in range(1, budget + 1):
        proposal = proposer.propose(ProposalRequest(
            operator="improve", parent=root, target_path="problem.py", module="problem",
            original_code=problem.source, test_sources={}, objectives=[], step=step,
            steps=budget,
        ))
        value = problem.score(proposal.code)
        proposer.observe(_node(step, "improve", proposal.code, value), proposal)
        scores.append(value)
    return scores


def random_scores(problem: Problem, budget: int, seed: int) -> list[float]:
    """Scores of ``budget`` configurations drawn uniformly from the same spaces."""
    rng = random.Random(seed)
    tunables = find_tunables(problem.source)
    scores = []
    for _ in range(budget):
        values = {t.name: sample_uniform(t, rng) for t in tunables}
        scores.append(problem.score(apply_values(problem.source, tunables, values)))
    return scores


def evaluations_to_reach(problem: Problem, scores: list[float]) -> int | None:
    """1-based index of the first score within 1% of the optimum, or None."""
    for index, value in enumerate(scores, start=1):
        if problem.reached(value):
            return index
    return None


@dataclass
class Tally:
    hits: list[int | None]
    seconds: float

    def median(self, budget: int) -> float:
        """Median evaluations, counting a run that never reached it as budget + 1."""
        return statistics.median(budget + 1 if h is None else h for h in self.hits)

    @property
    def misses(self) -> int:
        return sum(h is None for h in self.hits)


def run(search: Search, problem: Problem, budget: int, seeds: int) -> Tally:
    started = time.perf_counter()
    hits = [evaluations_to_reach(problem, search(problem, budget, seed)) for seed in range(seeds)]
    return Tally(hits, time.perf_counter() - started)


def _node(step: int, operator: str, code: str, value: float) -> Node:
    good = math.isfinite(value)
    return Node(
        id=step, parent=None if step == 0 else 0, step=step, operator=operator, plan="",
        code=code, objective=value if good else None, status=GOOD if good else "buggy",
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=40)
    parser.add_argument("--seeds", type=int, default=20)
    args = parser.parse_args()
    budget, seeds = args.budget, args.seeds
    print(f"evaluations to come within 1% of the optimum: median over {seeds} seeds, budget "
          f"{budget} (a run that never gets there counts as {budget + 1})")  # fmt: skip
    header = f"{'problem':32} {'tuner':>7} {'never':>6} {'random':>7} {'never':>6} {'ratio':>6}"
    print(header)
    print("-" * len(header))
    ratios = []
    for problem in PROBLEMS:
        tuner = run(tuner_scores, problem, budget, seeds)
        rand = run(random_scores, problem, budget, seeds)
        ratio = tuner.median(budget) / rand.median(budget)
        ratios.append(ratio)
        print(f"{problem.name:32} {tuner.median(budget):7.1f} {tuner.misses:>3}/{seeds:<2} "
              f"{rand.median(budget):7.1f} {rand.misses:>3}/{seeds:<2} {ratio:6.2f}"
              f"   (tuner {tuner.seconds:.1f}s, random {rand.seconds:.1f}s)")  # fmt: skip
    geometric = math.exp(statistics.fmean(math.log(r) for r in ratios))
    print(f"geometric mean ratio tuner/random: {geometric:.2f} (goal: <= 0.50)")


if __name__ == "__main__":
    main()
