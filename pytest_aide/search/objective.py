"""One number per candidate, higher is better, and the rule for "better".

With one marked test the objective is its metric, negated when lower is better, so the
terminal can still show the raw metric. With several marked tests for one target the
metrics have different units, so the objective is unit-free: the geometric mean over the
objectives of each metric's ratio to its baseline, oriented so that higher is better
(1.0 = the baseline, 1.25 = 25% better on geometric average). Such ratios need positive
metrics; a non-positive value makes the candidate's objective undefined (it is buggy).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from pytest_aide.metrics import is_finite
from pytest_aide.study import Objective


class ObjectiveError(ValueError):
    """The objective cannot be computed for these metrics (the message says why)."""


def score(
    objectives: Sequence[Objective],
    metrics: Mapping[str, float | None],
    baseline: Mapping[str, float | None] | None,
) -> float:
    """The candidate's objective; raises ObjectiveError when a metric is unusable."""
    for objective in objectives:
        if not is_finite(metrics.get(objective.nodeid)):
            raise ObjectiveError(
                f"{objective.nodeid}: metric {objective.metric!r} is missing or not finite "
                f"({metrics.get(objective.nodeid)!r})"
            )
    if len(objectives) == 1:
        value = float(metrics[objectives[0].nodeid])  # type: ignore[arg-type]
        return value if objectives[0].maximize else -value
    if baseline is None:  # the baseline itself
        baseline = metrics
    logs = []
    for objective in objectives:
        value = float(metrics[objective.nodeid])  # type: ignore[arg-type]
        reference = baseline.get(objective.nodeid)
        if value <= 0 or reference is None or reference <= 0:
            raise ObjectiveError(
                f"{objective.nodeid}: metric {objective.metric!r} = {value!r} (baseline "
                f"{reference!r}); combining several marked tests takes ratios, which need "
                "positive metrics"
            )
        ratio = value / reference if objective.maximize else reference / value
        logs.append(math.log(ratio))
    return math.exp(sum(logs) / len(logs))


def describe(objectives: Sequence[Objective]) -> str:
    """How the objective is defined, for the terminal and the report."""
    if len(objectives) == 1:
        o = objectives[0]
        return f"{o.metric} of {o.nodeid} ({o.direction})"
    return (
        "score = geometric mean over the marked tests of each metric's ratio to its baseline "
        "(higher is better; 1.0 = baseline): "
        + ", ".join(f"{o.metric} of {o.nodeid} ({o.direction})" for o in objectives)
    )
