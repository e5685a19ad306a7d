"""The screen: is a good candidate better than the best, on measurements that may be compared?

The rules are pure functions in judge.py (``is_better``, ``pair_comparable``); this module
runs the measurements they ask for. A timed candidate measured while the machine ran at
another speed than when the best was measured (see speed.py), unless it won on a machine no
faster or lost on one no slower, is measured again next to the best, alternately, until the
two may be compared; the candidate keeps the measurement that was compared. A timed candidate
whose verdict asks for a second look (``Outcome.second_look``) is measured once more next to
the best; the confirmation, not this screen, guards what is written. A candidate about to
become the best must also hold its speedup on fresh inputs, answer them as the original does
(asked of the original now), and pass the guards its evaluation left out; failing either of
the last two makes it buggy.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pytest_aide.evaluation.evaluator import Evaluation
from pytest_aide.evaluation.speed import difference
from pytest_aide.executors.base import EvaluationRequest, Executor
from pytest_aide.guards.baseline import Baseline
from pytest_aide.guards.fresh import fresh_difference
from pytest_aide.journal import Node, Status
from pytest_aide.search.judge import (
    SECOND_LOOK_REASONS,
    Comparison,
    Outcome,
    fresh_holds,
    is_better,
    judge,
    pair_comparable,
    timed_objectives,
)
from pytest_aide.study import Objective

#: Times a candidate and the best are measured again side by side when the machine's speed
#: changed between their measurements, before giving up on comparing them.
MAX_REMEASURES = 4


@dataclass
class Screen:
    """Compares good candidates with the best, measuring them again when the rules ask."""

    executor: Executor
    objectives: list[Objective]
    run_dir: Path
    baseline: Baseline
    #: Sets a node's verdict from an evaluation (``Search.judge_evaluation``'s rule).
    judge: Callable[[Node, Evaluation, list[str]], None]
    #: The guards a node's evaluation did not run (it ran those that ran what it changed).
    unrun_guards: Callable[[Node], list[str]] = lambda node: []

    def compare(self, node: Node, best: Node) -> Comparison:
        comparison = self._compare(node, best)
        if not comparison.better:
            return comparison
        timed = [o.nodeid for o in timed_objectives(self.objectives, node)]
        return (fresh_holds(node, best, timed) or self._answers_hold(node)
                or self._other_guards_pass(node) or comparison)

    def _other_guards_pass(self, node: Node) -> Comparison | None:
        """None when the guards its evaluation left out (they ran none of the functions it
        changed) pass too: no candidate becomes the best without passing every guard."""
        rest = self.unrun_guards(node)
        if not rest:
            return None
        evaluation = self.executor.run_shared(EvaluationRequest(
            node.code, self.run_dir / "nodes" / f"{node.id:04d}-other-guards",
            baseline=self.baseline, nodeids=rest))
        judgement = judge(evaluation, [], rest)
        if judgement.status == Status.GOOD:
            return None
        return Comparison(Outcome.FAILS_ANOTHER_GUARD,
                          f"{Outcome.FAILS_ANOTHER_GUARD.value}: {judgement.error}")

    def _answers_hold(self, node: Node) -> Comparison | None:
        """None when the candidate answered the fresh inputs it was timed on as the original
        answers them (asked of the original now, in a run of its own: the inputs were
        drawn in the candidate's process, after it ran); else how they differ."""
        seeds = {nodeid: answers.seed for nodeid, answers in node.fresh_answers.items()}
        if not seeds:
            return None
        evaluation = self.executor.run_shared(EvaluationRequest(
            None, self.run_dir / "nodes" / f"{node.id:04d}-fresh-answers",
            baseline=self.baseline, nodeids=list(seeds), fresh_seeds=seeds))
        for nodeid, answers in node.fresh_answers.items():
            difference = fresh_difference(evaluation.original_answers.get(nodeid, []),
                                          answers.answers, self.baseline.tolerance)
            if difference:
                return Comparison(Outcome.BEHAVES_DIFFERENTLY,
                                  f"{Outcome.BEHAVES_DIFFERENTLY.value} {difference}")
        return None

    def _compare(self, node: Node, best: Node) -> Comparison:
        timed = [o.nodeid for o in timed_objectives(self.objectives, node)]
        if not timed:
            return is_better(node, best, self.objectives)
        if pair_comparable(node, best, timed):
            first = is_better(node, best, self.objectives)
            if not first.verdict.second_look:
                return first
            second = self._measure_again(node, best, timed, second_look=first.verdict)
            if second.better:
                return second
            return Comparison(second.verdict,
                              f"{first.reason}; measured again next to the best: "
                              f"{second.reason or second.verdict.value}")
        return self._measure_again(node, best, timed)

    def _measure_again(self, node: Node, best: Node, timed: list[str],
                       second_look: Outcome | None = None) -> Comparison:
        """The candidate and the best measured side by side until a pair may be compared
        (at most ``MAX_REMEASURES`` pairs), then ``is_better`` on that pair. The candidate
        takes the compared measurement, unless this is a second look that it lost: its
        first, comparable measurement stays."""
        changed = difference(best.speed, node.speed)
        for attempt in range(1, MAX_REMEASURES + 1):
            pair = self._measure_side_by_side(node, best, attempt)
            if isinstance(pair, Comparison):
                return pair
            candidate, reference = pair
            if pair_comparable(candidate, reference, timed):
                comparison = is_better(candidate, reference, self.objectives)
                if comparison.better or second_look is None:
                    node.metrics, node.samples = candidate.metrics, candidate.samples
                    node.objective, node.speed = candidate.objective, candidate.speed
                    node.remeasured = attempt
                    node.remeasure_reason = SECOND_LOOK_REASONS.get(second_look, "") \
                        if second_look is not None else ""
                if comparison.verdict is Outcome.NOT_BETTER and second_look is None:
                    return Comparison(Outcome.NOT_BETTER,
                                      "not better than the best when measured again next to it")
                return comparison
            changed = difference(reference.speed, candidate.speed)
        return Comparison(
            Outcome.NOT_BETTER,
            f"not compared: the machine's speed changed ({changed}) during each of "
            f"{MAX_REMEASURES + (second_look is None)} measurements next to the best",
        )

    def _measure_side_by_side(self, node: Node, best: Node,
                              attempt: int) -> tuple[Node, Node] | Comparison:
        """(candidate, best) measured again, one after the other (which first alternates);
        only the marked tests run, since the candidate already passed its guards."""
        nodeids = [o.nodeid for o in self.objectives]
        measured = {}
        sides = [("best", best), ("candidate", node)]
        for label, source in sides if attempt % 2 else reversed(sides):
            workdir = self.run_dir / "nodes" / f"{node.id:04d}-again{attempt}-{label}"
            evaluation = self.executor.run_isolated(EvaluationRequest(
                source.code, workdir, baseline=self.baseline, nodeids=nodeids))
            again = dataclasses.replace(source, samples={}, metrics={}, objective=None)
            self.judge(again, evaluation, [])
            if again.status != Status.GOOD:
                other = "best" if label == "candidate" else "candidate"
                return Comparison(Outcome.NOT_BETTER,
                                  f"the {label} did not pass when measured again next to the "
                                  f"{other}: {again.error[:300]}")
            measured[label] = again
        return measured["candidate"], measured["best"]
