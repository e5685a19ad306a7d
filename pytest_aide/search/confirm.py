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

from pytest_aide.evaluation.evaluator import Evaluator
from pytest_aide.evaluation.speed import comparable, difference, won
from pytest_aide.journal import GOOD, Node
from pytest_aide.search.judge import LOCATION_STATS, judge
from pytest_aide.search.objective import ObjectiveError, score
from pytest_aide.study import Objective

#: Rounds measured across a change of machine speed that may be discarded, per round wanted:
#: a shared machine can change speed during half of all pairs for minutes at a time.
MAX_DISCARDED_PER_ROUND = 2


@dataclass
class Confirmation:
    confirmed: bool
    summary: str
    details: dict[str, Any]


def confirm_best(
    evaluator: Evaluator,
    objectives: list[Objective],
    guards: list[str],
    root: Node,
    best: Node,
    workdir: Path,
    rounds: int,
    progress: Callable[[str], None] = lambda line: None,
) -> Confirmation:
    timed = [o for o in objectives if o.metric in LOCATION_STATS and best.samples.get(o.nodeid)]
    if timed and rounds > 0:
        return _confirm_timed(evaluator, objectives, timed, guards, root, best, workdir, rounds,
                              progress)
    return _confirm_rerun(evaluator, objectives, guards, root, best, workdir, progress)


def _confirm_rerun(evaluator, objectives, guards, root, best, workdir, progress) -> Confirmation:
    progress("confirming the best: running it again")
    evaluation = evaluator.evaluate(best.code, workdir / "rerun")
    judgement = judge(evaluation, objectives, guards)
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


def _confirm_timed(evaluator, objectives, timed, guards, root, best, workdir, rounds,
                   progress) -> Confirmation:
    from pytest_aide.search.noise import confirm_interleaved, median_change, needs_more_rounds

    nodeids = [o.nodeid for o in timed]
    pairs: dict[str, list[tuple[list[float], list[float]]]] = {n: [] for n in nodeids}
    verdicts = {}
    discarded = 0
    for index in range(MAX_DISCARDED_PER_ROUND * rounds + rounds):
        kept = len(pairs[nodeids[0]])
        if kept == rounds or discarded == MAX_DISCARDED_PER_ROUND * rounds:
            break
        progress(f"confirming the best: interleaved round {kept + 1} (at most {rounds})")
        measured, speeds = {}, {}
        # Alternate which side runs first, so that drift within a round favours neither.
        order = [("baseline", root.code), ("best", best.code)]
        for label, code in order if kept % 2 == 0 else reversed(order):
            evaluation = evaluator.evaluate(code, workdir / f"{index}-{label}", nodeids=nodeids)
            judgement = judge(evaluation, timed, [])
            if judgement.status != GOOD:
                return Confirmation(
                    False, f"the {label} failed while confirming: {judgement.error[:300]}",
                    {"confirmed": False},
                )
            measured[label], speeds[label] = judgement.samples, evaluation.speed
        changes = [median_change(measured["baseline"].get(n, []), measured["best"].get(n, []))
                   for n in nodeids]
        # by sign both ways (speed.comparable), so that identical code wins as often as not
        if not comparable(speeds["baseline"], speeds["best"], changes, won(changes)):
            discarded += 1
            progress(f"confirming the best: round discarded, the machine's speed changed "
                     f"({difference(speeds['baseline'], speeds['best'])}); measuring it again")
            continue
        for nodeid in nodeids:
            pairs[nodeid].append((measured["baseline"].get(nodeid, []),
                                  measured["best"].get(nodeid, [])))
        verdicts = {n: confirm_interleaved(pairs[n], maximize=False, max_rounds=rounds)
                    for n in nodeids}
        undecided = [v for v in verdicts.values() if needs_more_rounds(v)]
        if not undecided or any(not v.better and v not in undecided for v in verdicts.values()):
            break  # decided, or one test already failed to confirm
    rounds = len(next(iter(pairs.values())))
    unsteady = (f" ({discarded} more discarded: the machine's speed changed during them)"
                if discarded else "")
    if not verdicts:
        return Confirmation(False, f"NOT confirmed: the machine's speed changed during each of "
                            f"{discarded} interleaved rounds", {"confirmed": False,
                                                                "discarded": discarded})
    confirmed = all(v.better for v in verdicts.values())
    parts = [f"{n.split('::')[-1]} {v.describe()}" for n, v in verdicts.items()]
    summary = ("confirmed" if confirmed else "NOT confirmed") + f" over {rounds} interleaved " \
        f"rounds{unsteady}: " + "; ".join(parts)
    first = next(iter(verdicts.values()))
    details = {
        **first.to_dict(),
        "confirmed": confirmed,
        "method": "interleaved",
        "rounds": rounds,
        "discarded": discarded,
        "metric": "time",
        "per_test": {n: v.to_dict() for n, v in verdicts.items()},
    }
    return Confirmation(confirmed, summary, details)
