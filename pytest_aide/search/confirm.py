"""Confirming the final best before it may reach the user's file.

A best found during the search was measured once, next to whatever the machine was doing
then. Before it is written, timed metrics are measured again against the baseline,
interleaved (baseline, best, baseline, best, ...) in fresh processes, and the change must
hold across those rounds. A round in which the machine's speed changed between the two
measurements (speed.py) says nothing about the code, unless the change is too large for
the speed difference to explain: it is measured again. Untimed metrics
(accuracy, ...) are re-run once and must still beat the baseline and pass.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_aide.evaluation.speed import difference
from pytest_aide.executors.base import EvaluationRequest, Executor
from pytest_aide.guards.baseline import Baseline
from pytest_aide.journal import GOOD, Node
from pytest_aide.search.judge import (
    InterleavedConfirmation,
    RoundTaken,
    fresh_shortfall,
    judge,
    timed_objectives,
)
from pytest_aide.search.objective import ObjectiveError, score
from pytest_aide.study import Objective


@dataclass
class Confirmation:
    confirmed: bool
    summary: str
    details: dict[str, Any]


def confirm_best(
    executor: Executor,
    objectives: list[Objective],
    baseline: Baseline,
    root: Node,
    best: Node,
    workdir: Path,
    rounds: int,
    progress: Callable[[str], None] = lambda line: None,
) -> Confirmation:
    """Measure ``best`` against ``root`` again, held to ``baseline`` like every candidate:
    timed objectives in interleaved rounds, untimed ones by one more run."""
    timed = timed_objectives(objectives, best)
    if timed and rounds > 0:
        return _confirm_timed(executor, objectives, timed, baseline, root, best, workdir,
                              rounds, progress)
    return _confirm_rerun(executor, objectives, baseline, root, best, workdir, progress)


def _confirm_rerun(executor: Executor, objectives: list[Objective], baseline: Baseline,
                   root: Node, best: Node, workdir: Path,
                   progress: Callable[[str], None]) -> Confirmation:
    progress("confirming the best: running it again")
    evaluation = executor.run_isolated(EvaluationRequest(best.code, workdir / "rerun", baseline,
                                                         replay=bool(baseline.calls)))
    judgement = judge(evaluation, objectives, baseline.guards)
    if judgement.status != GOOD:
        return Confirmation(False, "the best did not pass again: " + judgement.error[:300],
                            {"confirmed": False})
    try:
        value = score(objectives, judgement.metrics, root.metrics)
    except ObjectiveError as exc:
        return Confirmation(False, str(exc), {"confirmed": False})
    confirmed = root.objective is not None and value > root.objective
    summary = "reproduced on a second run" if confirmed else "not better than the baseline again"
    return Confirmation(confirmed, summary, {"confirmed": confirmed, "method": "rerun",
                                             "rerun_objective": value})


def _confirm_timed(executor: Executor, objectives: list[Objective], timed: list[Objective],
                   baseline: Baseline, root: Node, best: Node, workdir: Path, rounds: int,
                   progress: Callable[[str], None]) -> Confirmation:
    """Interleaved rounds in fresh processes, driven by judge.InterleavedConfirmation."""
    nodeids = [o.nodeid for o in timed]
    machine = InterleavedConfirmation(nodeids, rounds)
    fresh: dict[str, dict[str, list[float]]] = {"baseline": {}, "best": {}}
    index = 0
    while not machine.done:
        progress(f"confirming the best: interleaved round {machine.kept + 1} (at most {rounds})")
        measured = _measure_round(executor, timed, baseline, root, best, workdir, index,
                                  first="baseline" if machine.kept % 2 == 0 else "best")
        index += 1
        if isinstance(measured, Confirmation):
            return measured
        samples, speeds, timings = measured
        for label, by_test in timings.items():
            for nodeid, calls in by_test.items():
                fresh[label].setdefault(nodeid, []).extend(calls)
        if machine.add(samples["baseline"], samples["best"],
                       (speeds["baseline"], speeds["best"])) is RoundTaken.DISCARDED:
            progress(f"confirming the best: round discarded, the machine's speed changed "
                     f"({difference(speeds['baseline'], speeds['best'])}); measuring it again")
    return _held_on_fresh_inputs(_timed_confirmation(machine), fresh)


def _held_on_fresh_inputs(confirmation: Confirmation,
                          fresh: dict[str, dict[str, list[float]]]) -> Confirmation:
    """A confirmed speedup must hold on the fresh inputs each round timed too (new ones in
    every process): one that holds only on the benchmark's own input is not confirmed."""
    if not confirmation.confirmed:
        return confirmation
    per_test = confirmation.details.get("per_test", {})
    for nodeid, verdict in per_test.items():
        claimed = verdict.get("change")
        if not isinstance(claimed, float):
            continue
        shortfall = fresh_shortfall(claimed, fresh["baseline"].get(nodeid, []),
                                    fresh["best"].get(nodeid, []))
        if shortfall:
            details = {**confirmation.details, "confirmed": False, "fresh": shortfall}
            return Confirmation(False, f"NOT confirmed: {nodeid.split('::')[-1]} is "
                                f"{shortfall}", details)
    return confirmation


def _measure_round(executor: Executor, timed: list[Objective], baseline: Baseline, root: Node,
                   best: Node, workdir: Path, index: int, first: str
                   ) -> tuple[dict[str, Any], dict[str, list[float]], dict[str, Any]] \
        | Confirmation:
    """One round: the baseline and the best measured one after the other (``first`` first,
    alternating, so that drift within a round favours neither), each also timed on fresh
    inputs drawn anew in its process; a failure ends it all."""
    nodeids = [o.nodeid for o in timed]
    samples, speeds, fresh = {}, {}, {}
    order = [("baseline", root.code), ("best", best.code)]
    for label, code in order if first == "baseline" else reversed(order):
        evaluation = executor.run_isolated(EvaluationRequest(
            code, workdir / f"{index}-{label}", baseline, nodeids,
            fresh=bool(baseline.fresh_calls)))
        judgement = judge(evaluation, timed, [])
        if judgement.status != GOOD:
            return Confirmation(
                False, f"the {label} failed while confirming: {judgement.error[:300]}",
                {"confirmed": False},
            )
        samples[label], speeds[label] = judgement.samples, evaluation.speed
        fresh[label] = judgement.fresh
    return samples, speeds, fresh


def _timed_confirmation(machine: InterleavedConfirmation) -> Confirmation:
    """What a decided confirmation says, and keeps in the journal."""
    discarded = machine.discarded
    if not machine.verdicts:
        return Confirmation(False, f"NOT confirmed: the machine's speed changed during each of "
                            f"{discarded} interleaved rounds", {"confirmed": False,
                                                                "discarded": discarded})
    unsteady = (f" ({discarded} more discarded: the machine's speed changed during them)"
                if discarded else "")
    confirmed = machine.confirmed
    parts = [f"{n.split('::')[-1]} {v.describe()}" for n, v in machine.verdicts.items()]
    summary = ("confirmed" if confirmed else "NOT confirmed") + f" over {machine.kept} " \
        f"interleaved rounds{unsteady}: " + "; ".join(parts)
    first = next(iter(machine.verdicts.values()))
    details = {
        **first.to_dict(),
        "confirmed": confirmed,
        "method": "interleaved",
        "rounds": machine.kept,
        "discarded": discarded,
        "metric": "time",
        "per_test": {n: v.to_dict() for n, v in machine.verdicts.items()},
    }
    return Confirmation(confirmed, summary, details)
