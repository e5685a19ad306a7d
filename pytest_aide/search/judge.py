"""Turning an evaluation into a verdict on a candidate, and the rule for "better".

A candidate is good only if it completed, nothing was tampered with, every guard test
passed, and every metric is present and finite. "Better" for a benchmark statistic also
needs the improvement to be credible given the rounds recorded (see noise.py): a higher
objective alone may be noise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from pytest_aide.evaluation.evaluator import Evaluation
from pytest_aide.evaluation.speed import SPEED_TOLERANCE, comparable, spread, won
from pytest_aide.journal import BUGGY, GOOD, TAMPERED, Node
from pytest_aide.metrics import is_finite
from pytest_aide.search.noise import block_medians
from pytest_aide.study import Objective

#: Benchmark statistics that describe where the times lie, so rank tests on rounds apply.
LOCATION_STATS = {"min", "max", "mean", "median", "q1", "q3", "ld15iqr", "hd15iqr", "ops"}


@dataclass
class Judgement:
    status: str
    metrics: dict[str, float | None] = field(default_factory=dict)
    samples: dict[str, list[float]] = field(default_factory=dict)
    outcomes: dict[str, str] = field(default_factory=dict)
    error: str = ""
    fresh: dict[str, list[float]] = field(default_factory=dict)


def judge(
    evaluation: Evaluation, objectives: Sequence[Objective], guards: Sequence[str]
) -> Judgement:
    """Good, buggy or tampered, with the metrics and a reason a person can act on."""
    nodeids = list(dict.fromkeys([*guards, *(o.nodeid for o in objectives)]))
    judgement = Judgement(status=GOOD, fresh=dict(evaluation.fresh))
    judgement.outcomes = {n: evaluation.outcome(n) for n in nodeids}
    for objective in objectives:
        judgement.metrics[objective.nodeid] = evaluation.metric(objective)
        result = evaluation.tests.get(objective.nodeid)
        if result and result.measurement.samples:
            # Block medians: the same verdicts as all rounds, and a small journal.
            judgement.samples[objective.nodeid] = block_medians(result.measurement.samples)
    if evaluation.tampered:
        judgement.status = TAMPERED
        judgement.error = evaluation.error_summary(nodeids)
        return judgement
    if not evaluation.completed or evaluation.not_passed(nodeids):
        judgement.status = BUGGY
        judgement.error = evaluation.error_summary(nodeids)
        return judgement
    if evaluation.differences:
        judgement.status = BUGGY
        judgement.error = "behaves differently: " + "; ".join(evaluation.differences)
        return judgement
    missing = []
    for objective in objectives:
        value = judgement.metrics[objective.nodeid]
        if not is_finite(value):
            result = evaluation.tests.get(objective.nodeid)
            recorded = result.measurement.recorded() if result else "nothing"
            state = "missing" if value is None else f"not finite ({value})"
            missing.append(
                f"{objective.nodeid}: metric {objective.metric!r} is {state}; "
                f"the test recorded {recorded}"
            )
    if missing:
        judgement.status = BUGGY
        judgement.error = "\n".join(missing)
    return judgement


class Outcome(Enum):
    """The screen's answer to "is this candidate better than the best?"."""

    BETTER = "better"
    NOT_GOOD = "not good"
    NOT_BETTER = "not better"
    #: Its objective is higher, but its rounds are credibly slower than the best's.
    CREDIBLY_SLOWER = "credibly slower"
    #: Faster on average, not credibly: it gets a second look next to the best.
    WITHIN_NOISE = "improvement within noise"
    #: No faster on average, though its typical round is (a few slow rounds, an interrupt or a
    #: page fault, move a mean far more than a median): it gets a second look too.
    TYPICAL_ROUND_FASTER = "not better on average, though its typical round was faster"
    #: Faster on the benchmark's own input, not on fresh inputs of the same kind (an answer
    #: prepared for that input, a cache keyed by its content).
    ONLY_ON_ITS_INPUT = "faster only on the benchmark's own input"
    #: Faster, but its answers to the fresh inputs it was timed on are not the original's
    #: (right only on the inputs the tests show): the node is buggy.
    BEHAVES_DIFFERENTLY = "behaves differently"
    #: Its evaluation ran the guards that ran what it changed; another guard fails on it.
    FAILS_ANOTHER_GUARD = "fails a guard its evaluation did not run"

    @property
    def makes_buggy(self) -> bool:
        """The candidate is wrong, not merely not better: the node is buggy."""
        return self in (Outcome.BEHAVES_DIFFERENTLY, Outcome.FAILS_ANOTHER_GUARD)

    @property
    def second_look(self) -> bool:
        """One noisy pair of processes hides a real speedup often enough
        (``benchmarks/bench_noise.py``) that these verdicts are measured once more."""
        return self in SECOND_LOOK_REASONS


#: Why a candidate given a second look was measured again (the journal's remeasure reason).
SECOND_LOOK_REASONS = {
    Outcome.WITHIN_NOISE: "its improvement was within noise at first",
    Outcome.TYPICAL_ROUND_FASTER: "its typical round was faster at first",
}


@dataclass(frozen=True)
class Comparison:
    """A verdict, and the words a person reads (the node's note when it is not taken)."""

    verdict: Outcome
    reason: str = ""

    @property
    def better(self) -> bool:
        return self.verdict is Outcome.BETTER


def timed_objectives(objectives: Sequence[Objective], *nodes: Node) -> list[Objective]:
    """The objectives that are timed: a benchmark statistic of where the times lie, with
    rounds recorded by each of ``nodes``. The one definition of "timed"."""
    return [o for o in objectives
            if o.metric in LOCATION_STATS and all(n.samples.get(o.nodeid) for n in nodes)]


def screen_samples(reference: Sequence[float], candidate: Sequence[float],
                   lower_on_average: bool, alpha: float | None = None) -> Outcome:
    """One timed metric's verdict from two sets of rounds (lower is better): credibly
    slower, better, within noise, typical round faster, or not better. ``lower_on_average``:
    whether the candidate's statistic is lower than the best's. Used by ``is_better`` and
    by ``benchmarks/bench_noise.py``."""
    from pytest_aide.search.noise import SCREEN_MIN_EFFECT, compare_samples

    extra = {} if alpha is None else {"alpha": alpha}
    if compare_samples(candidate, reference, maximize=False, min_effect=SCREEN_MIN_EFFECT,
                       **extra).better:
        return Outcome.CREDIBLY_SLOWER
    faster = compare_samples(reference, candidate, maximize=False, min_effect=SCREEN_MIN_EFFECT,
                             **extra)
    if not lower_on_average:
        return Outcome.TYPICAL_ROUND_FASTER if faster.change < 0 else Outcome.NOT_BETTER
    return Outcome.BETTER if faster.better else Outcome.WITHIN_NOISE


def is_better(candidate: Node, best: Node, objectives: Sequence[Objective]) -> Comparison:
    """Whether ``candidate`` beats ``best``, and why not when it does not."""
    if not candidate.is_good or candidate.objective is None:
        return Comparison(Outcome.NOT_GOOD)
    no_higher = best.objective is not None and candidate.objective <= best.objective
    timed = timed_objectives(objectives, candidate, best)
    if not timed:
        return Comparison(Outcome.NOT_BETTER if no_higher else Outcome.BETTER)
    verdicts = []
    for objective in timed:
        verdict = screen_samples(best.samples[objective.nodeid],
                                 candidate.samples[objective.nodeid], not no_higher)
        if verdict is Outcome.CREDIBLY_SLOWER:
            if no_higher:
                return Comparison(Outcome.NOT_BETTER)
            name = objective.nodeid.split("::")[-1]
            return Comparison(verdict, f"{name}'s rounds are credibly slower than the best's, "
                                       f"whatever the {objective.metric} says")
        verdicts.append(verdict)
    if no_higher:
        typical = all(v is Outcome.TYPICAL_ROUND_FASTER for v in verdicts)
        return _said(Outcome.TYPICAL_ROUND_FASTER if typical else Outcome.NOT_BETTER)
    if all(v is Outcome.WITHIN_NOISE for v in verdicts):
        return _said(Outcome.WITHIN_NOISE)
    return Comparison(Outcome.BETTER)


def _said(verdict: Outcome) -> Comparison:
    """A verdict whose reason is its own words ("" for plain "not better")."""
    return Comparison(verdict, "" if verdict is Outcome.NOT_BETTER else verdict.value)


#: A speedup on fresh inputs may fall short of the benchmark's by this share of it, or by
#: this much (one call per fresh input is noisier than a benchmark round), before it is not
#: taken: a cheat's speedup vanishes on fresh inputs, an honest one shrinks by noise only.
FRESH_SHORTFALL = 0.5
FRESH_NOISE = 0.15
#: The screen's: one pair of processes, a dozen fresh calls each, under a loaded machine's
#: noise (``bench_noise``: 4 in 100 real 8% speedups lost there at 0.15); a cheat's speedup
#: is far larger than this, and the confirmation, over all its rounds' calls, keeps 0.15.
SCREEN_FRESH_NOISE = 0.25


def fresh_holds(candidate: Node, best: Node, timed: Sequence[str]) -> Comparison | None:
    """None when each timed test's speedup over the best holds on fresh inputs (or either
    side has no fresh timing); else why it is not taken."""

    for nodeid in timed:
        claimed = _relative(candidate.metrics.get(nodeid), best.metrics.get(nodeid))
        shortfall = fresh_shortfall(claimed, best.fresh.get(nodeid) or [],
                                    candidate.fresh.get(nodeid) or [], SCREEN_FRESH_NOISE)
        if shortfall:
            return Comparison(Outcome.ONLY_ON_ITS_INPUT, shortfall)
    return None


def fresh_shortfall(claimed: float, before: Sequence[float], after: Sequence[float],
                    noise: float = FRESH_NOISE) -> str:
    """Why a ``claimed`` relative change (``-0.4``: 40% faster) does not hold on fresh inputs,
    timed as ``before`` (the reference's calls) and ``after`` (the candidate's); '' when it
    holds, or when either side has no fresh timing. ``noise``: the shortfall always allowed."""
    from pytest_aide.search.noise import median_change

    if not before or not after or math.isnan(claimed):
        return ""
    fresh = median_change(list(before), list(after))
    if math.isnan(fresh) or fresh - claimed <= max(FRESH_SHORTFALL * abs(claimed), noise):
        return ""
    return f"{Outcome.ONLY_ON_ITS_INPUT.value} ({claimed:+.1%}; fresh inputs: {fresh:+.1%})"


def pair_comparable(candidate: Node, best: Node, timed: Sequence[str]) -> bool:
    """Whether a candidate's measurement may be compared with the best's, by their speed
    probes (``speed.comparable``): taken at the same speed, or won against the odds."""
    changes = [_relative(candidate.metrics.get(n), best.metrics.get(n)) for n in timed]
    won = (None if candidate.objective is None or best.objective is None
           else candidate.objective > best.objective)
    return comparable(best.speed, candidate.speed, changes, won)


def _relative(value: float | None, reference: float | None) -> float:
    """``value`` against ``reference`` (-0.8: 80% lower); NaN when either is unusable."""
    if value is None or reference is None or reference <= 0:
        return math.nan
    return value / reference - 1


#: Confirmation rounds measured across a change of machine speed that may be discarded, per
#: round wanted: a shared machine can change speed during half of all pairs for minutes.
MAX_DISCARDED_PER_ROUND = 2


class RoundTaken(Enum):
    """What became of one interleaved confirmation round."""

    KEPT = "kept"
    #: The machine's speed changed between the two measurements, and the change of code is
    #: not large enough to tell through it: the round says nothing about the code.
    DISCARDED = "discarded"


@dataclass
class InterleavedConfirmation:
    """The confirmation of a timed best as a small state machine: rounds of (baseline, best)
    measured in fresh processes are added until it is decided (``done``); ``outcome`` then
    says whether the best is confirmed. confirm.py measures; ``benchmarks/bench_noise.py``
    feeds it measured pairs the same way, so the benchmark measures this very rule."""

    nodeids: list[str]
    #: The most rounds kept (the sequential design's maximum).
    rounds: int
    alpha: float | None = None
    min_effect: float | None = None
    pairs: dict[str, list[tuple[list[float], list[float]]]] = field(default_factory=dict)
    discarded: int = 0
    verdicts: dict[str, Any] = field(default_factory=dict)  # nodeid -> noise.Verdict
    #: Each kept round's speed probes, both sides': the early look (a large speedup in
    #: ``EARLY_LOOK`` rounds) is taken only when no change of machine speed could explain
    #: any round's change (``_speed_explains_none``).
    speeds: list[list[float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.pairs = {n: [] for n in self.nodeids}

    @property
    def kept(self) -> int:
        return len(self.pairs[self.nodeids[0]]) if self.nodeids else 0

    @property
    def done(self) -> bool:
        """No more rounds: decided, out of rounds, or out of rounds to discard."""
        if self.kept >= self.rounds or self.discarded >= MAX_DISCARDED_PER_ROUND * self.rounds:
            return True
        if not self.verdicts:
            return False
        from pytest_aide.search.noise import needs_more_rounds

        undecided = [v for v in self.verdicts.values() if needs_more_rounds(v)]
        # decided, or one test already failed to confirm
        return not undecided or any(not v.better and v not in undecided
                                    for v in self.verdicts.values())

    def add(self, baseline: dict[str, list[float]], best: dict[str, list[float]],
            speeds: tuple[list[float], list[float]]) -> RoundTaken:
        """One round's samples per test and the two sides' speed probes."""
        from pytest_aide.search.noise import confirm_interleaved, median_change

        changes = [median_change(baseline.get(n, []), best.get(n, [])) for n in self.nodeids]
        # by sign both ways (speed.comparable), so that identical code wins as often as not
        if not comparable(speeds[0], speeds[1], changes, won(changes)):
            self.discarded += 1
            return RoundTaken.DISCARDED
        extra = {k: v for k, v in (("alpha", self.alpha), ("min_effect", self.min_effect))
                 if v is not None}
        for nodeid in self.nodeids:
            self.pairs[nodeid].append((baseline.get(nodeid, []), best.get(nodeid, [])))
        self.speeds += [list(speeds[0]), list(speeds[1])]
        self.verdicts = {n: confirm_interleaved(self.pairs[n], maximize=False,
                                                max_rounds=self.rounds,
                                                early=self._speed_explains_none(),
                                                **extra)
                         for n in self.nodeids}
        return RoundTaken.KEPT

    @property
    def confirmed(self) -> bool:
        return bool(self.verdicts) and all(v.better for v in self.verdicts.values())

    def _speed_explains_none(self) -> bool:
        """Whether every kept round's change, of every test, is larger than the widest
        difference of machine speed among all the rounds' processes, with
        ``SPEED_TOLERANCE`` to spare: a process that ran on a slower CPU (70% slower for
        seconds, on the VM this was built on) then cannot be what made a round look faster.
        The early look's t-test assumes processes differ by small amounts; this is where
        that is checked."""
        from pytest_aide.search.noise import median_change

        # the probes taken before the tests: the one after can be slowed by the code
        # itself (threads it left spinning: torch's, OpenMP's), which is not the machine
        margin = spread([probes[:1] for probes in self.speeds]) + math.log1p(SPEED_TOLERANCE)
        changes = [median_change(a, b) for runs in self.pairs.values() for a, b in runs]
        return all(c > -1 and abs(math.log1p(c)) > margin for c in changes)
