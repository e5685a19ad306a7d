"""One candidate evaluated while others run: honest timing with several workers.

Timings taken while another evaluation shares the cores or the GPU are not comparable with
the baseline's, which ran alone. So with ``--aide-measure isolated`` (the default) a
candidate with timed objectives is run in two children: first its guard tests (every test
but the timed ones) in a slot of its own, in parallel with other candidates'; then, only
when they all pass, its timed tests alone on the measuring place, once every slot has
drained (``Executor.run_isolated``). Buggy candidates, usually most of them, never hold the
machine; a timed test that fails is still a failed guard. Untimed objectives (accuracy)
run with the guards. With ``--aide-measure shared`` the whole evaluation runs in a slot,
next to the others: faster, and as noisy as ``benchmarks/bench_workers.py`` shows.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from pytest_aide.evaluation.evaluator import Evaluation
from pytest_aide.executors.base import EvaluationRequest, Executor
from pytest_aide.guards.baseline import Baseline

ISOLATED = "isolated"


def evaluate_candidate(
    executor: Executor,
    code: str,
    workdir: Path,
    baseline: Baseline,
    nodeids: list[str],
    timed: list[str],
    measure: str = ISOLATED,
    guards: Sequence[str] | None = None,
) -> Evaluation:
    """The candidate's evaluation over ``nodeids``, its ``timed`` tests measured alone when
    ``measure`` is isolated; the ``guards`` (the baseline's, or those chosen for the
    candidate) must pass before they are. With one
    worker nothing runs beside an evaluation: one child runs everything."""
    replay = bool(baseline.calls)  # the original's answers, in the run that runs the guards
    fresh = bool(timed and baseline.fresh_calls)  # its speed on inputs it never saw
    if executor.workers == 1:
        return executor.run_isolated(EvaluationRequest(code, workdir, baseline, nodeids,
                                                       replay=replay, fresh=fresh,
                                                       first_failure_ends=True))
    if measure != ISOLATED or not timed:
        return executor.run_shared(EvaluationRequest(code, workdir, baseline, nodeids,
                                                     replay=replay, fresh=fresh,
                                                     first_failure_ends=True))
    untimed = [n for n in nodeids if n not in timed]
    checked = (executor.run_shared(EvaluationRequest(code, workdir, baseline, untimed,
                                                     replay=replay, first_failure_ends=True))
               if untimed else None)
    required = baseline.guards if guards is None else guards
    if checked is not None and not _passes(checked, [g for g in required if g not in timed]):
        return checked
    measured = executor.run_isolated(EvaluationRequest(
        code, workdir.with_name(workdir.name + "-timed"), baseline, timed,
        replay=replay and checked is None, fresh=fresh))
    return measured if checked is None else combine(checked, measured)


def _passes(evaluation: Evaluation, guards: list[str]) -> bool:
    return (evaluation.completed and not evaluation.tampered and not evaluation.differences
            and not evaluation.not_passed(guards))


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
        differences=[*checked.differences, *measured.differences],
    )
