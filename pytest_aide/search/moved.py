"""The measuring place moved (a Ray measuring node died): measure the reference again there.

Timings taken on two machines are not compared. Once the executor has moved its timed
measurements to another node, the original and the best are measured again on it, before
any candidate timed there is compared with them: their metrics, rounds and speed probes
become the new node's, the objectives are scored again, and the baseline's clock brackets
(guards/clock.py) are the original's there.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from pytest_aide.executors.base import EvaluationRequest, Executor
from pytest_aide.guards.baseline import Baseline
from pytest_aide.journal import Journal, Node, Status
from pytest_aide.search.judge import judge, timed_objectives
from pytest_aide.search.objective import ObjectiveError, score
from pytest_aide.study import Objective

#: The journal's reason for such a measurement (report: "measured again: ...").
REASON = "the measuring node was lost: measured again on its replacement"


def measure_again(executor: Executor, journal: Journal, baseline: Baseline,
                  objectives: Sequence[Objective], run_dir: Path, move: int) -> Baseline:
    """The original and the best measured again on the executor's measuring place (its
    ``move``-th); the baseline with the original's clock brackets from there."""
    root, best = journal.root, journal.best or journal.root
    timed = [o.nodeid for o in timed_objectives(list(objectives), root)]
    if not timed:
        return baseline
    for node in [root] if best is root else [root, best]:
        evaluation = executor.run_isolated(EvaluationRequest(
            node.code, run_dir / "nodes" / f"{node.id:04d}-moved-{move}", baseline, timed))
        judgement = judge(evaluation, list(objectives), timed)
        if judgement.status != Status.GOOD:
            continue  # the old figures stay; the screen's speed probes still guard them
        node.metrics = {**node.metrics, **judgement.metrics}
        node.samples = {**node.samples, **judgement.samples}
        node.speed, node.remeasure_reason = evaluation.speed, REASON
        if node is root:
            baseline = dataclasses.replace(baseline, clock=dict(evaluation.clock))
    _rescore(root, best, objectives)
    return baseline


def _rescore(root: Node, best: Node, objectives: Sequence[Objective]) -> None:
    for node in [root] if best is root else [root, best]:
        try:
            node.objective = score(list(objectives), node.metrics,
                                   None if node is root else root.metrics)
        except ObjectiveError:
            continue
