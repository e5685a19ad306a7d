"""One candidate evaluated while others run: honest timing with several workers.

Timings taken while another evaluation shares the cores or the GPU are not comparable with
the baseline's, which ran alone. So with ``--aide-measure isolated`` (the default) a
candidate with timed objectives is run in two children: first its guard tests (every test
but the timed ones) in a slot of its own, in parallel with other candidates'; then, only
when they all pass, its timed tests alone on the measuring place, once every slot has
drained (``Executor.evaluate``). Buggy candidates, usually most of them, never hold the
machine; a timed test that fails is still a failed guard. Untimed objectives (accuracy)
run with the guards. With ``--aide-measure shared`` the whole evaluation runs in a slot,
next to the others: faster, and as noisy as ``benchmarks/bench_workers.py`` shows.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from pytest_aide.evaluation.evaluator import Evaluation
from pytest_aide.executors.base import Executor

ISOLATED = "isolated"


def evaluate_candidate(
    executor: Executor,
    code: str,
    workdir: Path,
    nodeids: list[str],
    timed: list[str],
    guards: list[str],
    measure: str = ISOLATED,
) -> Evaluation:
    """The candidate's evaluation over ``nodeids``, its ``timed`` tests measured alone when
    ``measure`` is isolated; ``guards`` are the tests that must pass before they are."""
    if measure != ISOLATED or not timed:
        return executor.check(code, workdir, nodeids)
    untimed = [n for n in nodeids if n not in timed]
    checked = executor.check(code, workdir, untimed) if untimed else None
    if checked is not None and not _passes(checked, [g for g in guards if g not in timed]):
        return checked
    measured = executor.evaluate(code, workdir.with_name(workdir.name + "-timed"), timed)
    return measured if checked is None else combine(checked, measured)


def _passes(evaluation: Evaluation, guards: list[str]) -> bool:
    return evaluation.completed and not evaluation.tampered and not evaluation.not_passed(guards)


def combine(checked: Evaluation, measured: Evaluation) -> Evaluation:
    """The guard run and the timed run as one evaluation: every test's result, every
    finding of either, and the timed run's status and machine-speed probes."""
    return dataclasses.replace(
        measured,
        tests={**checked.tests, **measured.tests},
        duration=checked.duration + measured.duration,
        output_tail=(checked.output_tail[-3000:] + "\n" + measured.output_tail[-3000:]).strip(),
        reports=[*checked.reports, *measured.reports],
        collection_errors=[*checked.collection_errors, *measured.collection_errors],
        tampered=[*checked.tampered, *measured.tampered],
    )
