"""Turning an evaluation into a verdict on a candidate, and the rule for "better".

A candidate is good only if it completed, nothing was tampered with, every guard test
passed, and every metric is present and finite. "Better" for a benchmark statistic also
needs the improvement to be credible given the rounds recorded (see noise.py): a higher
objective alone may be noise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from pytest_aide.evaluation.evaluator import Evaluation
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


def judge(
    evaluation: Evaluation, objectives: Sequence[Objective], guards: Sequence[str]
) -> Judgement:
    """Good, buggy or tampered, with the metrics and a reason a person can act on."""
    nodeids = list(dict.fromkeys([*guards, *(o.nodeid for o in objectives)]))
    judgement = Judgement(status=GOOD)
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


#: The screen's verdicts on a timed candidate that may well be faster than the best, but
#: whose one pair of measurements does not show it (search/loop.py gives it one second look):
#: faster on average, not credibly; or no faster on average, though its typical round is (a
#: few slow rounds, an interrupt or a page fault, move a mean far more than a median).
WITHIN_NOISE = "improvement within noise"
TYPICAL_ROUND_FASTER = "not better on average, though its typical round was faster"
SECOND_LOOK_VERDICTS = {
    WITHIN_NOISE: "its improvement was within noise at first",
    TYPICAL_ROUND_FASTER: "its typical round was faster at first",
}


def is_better(candidate: Node, best: Node, objectives: Sequence[Objective]) -> tuple[bool, str]:
    """Whether ``candidate`` beats ``best``, and why not when it does not."""
    if not candidate.is_good or candidate.objective is None:
        return False, "not good"
    no_higher = best.objective is not None and candidate.objective <= best.objective
    timed = [
        o for o in objectives
        if o.metric in LOCATION_STATS and candidate.samples.get(o.nodeid)
        and best.samples.get(o.nodeid)
    ]
    if not timed:
        return (False, "not better") if no_higher else (True, "")
    from pytest_aide.search.noise import SCREEN_MIN_EFFECT, compare_samples

    credible, typical_faster = False, True
    for objective in timed:
        reference, samples = best.samples[objective.nodeid], candidate.samples[objective.nodeid]
        if compare_samples(samples, reference, maximize=False,
                           min_effect=SCREEN_MIN_EFFECT).better:
            if no_higher:
                return False, "not better"
            name = objective.nodeid.split("::")[-1]
            return False, (f"{name}'s rounds are credibly slower than the best's, "
                           f"whatever the {objective.metric} says")
        faster = compare_samples(reference, samples, maximize=False, min_effect=SCREEN_MIN_EFFECT)
        credible = credible or faster.better
        typical_faster = typical_faster and faster.change < 0  # NaN: not faster
    if no_higher:
        return False, TYPICAL_ROUND_FASTER if typical_faster else "not better"
    if not credible:
        return False, WITHIN_NOISE
    return True, ""
