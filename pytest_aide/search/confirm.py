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

import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_aide.executors.base import EvaluationRequest, Executor
from pytest_aide.guards.baseline import Baseline
from pytest_aide.journal import GOOD, Node
from pytest_aide.report.formatting import fmt_change, fmt_seconds
from pytest_aide.search.judge import (
    InterleavedConfirmation,
    RoundTaken,
    fresh_shortfall,
    judge,
    timed_objectives,
)
from pytest_aide.search.objective import ObjectiveError, score
from pytest_aide.study import Objective


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


@dataclass(frozen=True)
class Progress:
    """Where a confirmation stands, after each measured round (the terminal shows it)."""

    kept: int  # rounds kept so far
    most: int  # the most rounds it may take
    seconds: float  # spent so far
    discarded: int = 0  # rounds measured across a change of the machine's speed
    #: The first timed test's change so far, and its interval (None before a verdict).
    change: float | None = None
    low: float | None = None
    high: float | None = None
    done: bool = False
    rerun: bool = False  # an untimed best, run once more
    just_discarded: bool = False  # this round was measured across a change of speed

    @property
    def seconds_left(self) -> float | None:
        """At most this many seconds more, at the pace so far (None before a round)."""
        measured = self.kept + self.discarded
        if self.done or not measured:
            return None if not self.done else 0.0
        return self.seconds / measured * (self.most - self.kept)

    def text(self) -> str:
        """``confirming the best: round 3 of at most 20, -42.1% so far (-50.3% .. -35.0%),
        at most 51s left``."""
        if self.rerun:
            return "confirming the best: running it once more next to the original"
        if not self.kept and not self.discarded:
            return (f"confirming the best: interleaved rounds with the original, at most "
                    f"{self.most}")
        text = f"confirming the best: round {self.kept} of at most {self.most}"
        if _finite(self.change):  # a change and an interval once there are enough rounds
            text += f", {fmt_change(self.change)} so far"
            if _finite(self.low) and _finite(self.high):
                text += f" ({fmt_change(self.low)} .. {fmt_change(self.high)})"
        if self.discarded:
            text += f", {self.discarded} discarded (the machine's speed changed)"
        left = self.seconds_left
        if self.done:
            text += f", decided in {fmt_seconds(self.seconds)}"
        elif left is not None:
            text += f", at most {fmt_seconds(left)} left"
        return text


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
    progress: Callable[[Progress], None] = lambda progress: None,
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
                   progress: Callable[[Progress], None]) -> Confirmation:
    progress(Progress(0, 1, 0.0, rerun=True))
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
                   progress: Callable[[Progress], None]) -> Confirmation:
    """Interleaved rounds in fresh processes, driven by judge.InterleavedConfirmation."""
    nodeids = [o.nodeid for o in timed]
    machine = InterleavedConfirmation(nodeids, rounds)
    fresh: dict[str, dict[str, list[float]]] = {"baseline": {}, "best": {}}
    index = 0
    began = time.perf_counter()
    progress(Progress(0, rounds, 0.0))
    while not machine.done:
        measured = _measure_round(executor, timed, baseline, root, best, workdir, index,
                                  first="baseline" if machine.kept % 2 == 0 else "best")
        index += 1
        if isinstance(measured, Confirmation):
            return measured
        samples, speeds, timings = measured
        for label, by_test in timings.items():
            for nodeid, calls in by_test.items():
                fresh[label].setdefault(nodeid, []).extend(calls)
        taken = machine.add(samples["baseline"], samples["best"],
                            (speeds["baseline"], speeds["best"]))
        first = next(iter(machine.verdicts.values()), None)
        progress(Progress(machine.kept, rounds, time.perf_counter() - began, machine.discarded,
                          *((first.change, first.low, first.high) if first else ()),
                          done=machine.done,
                          just_discarded=taken is RoundTaken.DISCARDED))
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
        place = workdir / f"{index}-{label}"
        evaluation = executor.run_isolated(EvaluationRequest(
            code, place, baseline, nodeids, fresh=bool(baseline.fresh_calls)))
        # the code is the journal's root's or best's: its copy per round would fill the run
        # directory (20 rounds of a 4,000-line module: 2 MB); the round's output stays
        shutil.rmtree(place / "candidate", ignore_errors=True)
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
