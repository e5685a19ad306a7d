"""The node's side of a Ray evaluation: the same sandboxed child pytest, where Ray put it.

A Ray task (ray_executor.py) calls :func:`run_job` on some node of the cluster. The project
is there either as the task's working directory (the job's ``runtime_env`` ``working_dir``,
uploaded from the driver) or at the driver's own path (a shared filesystem). An Evaluator
made for that copy runs the child, guards the project's files there, checks the signed
results with a key made there, and compares the candidate's fingerprints with the
baseline's, which the driver sends along with every job (guards/baseline.py). This module
imports nothing of Ray: it runs in a Ray worker, which has Ray loaded already.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_aide.evaluation.evaluator import Evaluation, Evaluator
from pytest_aide.evaluation.sandbox import Sandbox
from pytest_aide.guards.baseline import Baseline
from pytest_aide.study import Study, Target

#: Variables Ray sets in a task's worker by the task's resources (OMP_NUM_THREADS follows
#: num_cpus): the child gets the driver's values instead (Job.driver_environment).
RAY_TASK_VARIABLES = ("OMP_NUM_THREADS",)
#: Output kept from the node's run, for the driver's node directory.
OUTPUT_BYTES = 200_000


@dataclass
class Job:
    """One evaluation, as the driver sends it."""

    source: str | None
    nodeids: list[str] | None
    study: Study
    driver_rootdir: str
    timeout: float
    pytest_args: list[str] = field(default_factory=list)
    #: Paths under the rootdir that are not the project (the log dir), relative to it.
    excluded: list[str] = field(default_factory=list)
    sandbox: Sandbox | None = None
    env_drop: list[str] = field(default_factory=list)
    env_keep: list[str] = field(default_factory=list)
    #: What candidates are held to, measured on the measuring node (guards/baseline.py).
    baseline: Baseline | None = None
    #: Record which tests run the target's code (the guard probe).
    coverage: bool = False
    record_calls: bool = False
    replay: bool = False
    fresh: bool = False
    fresh_seeds: dict[str, int] | None = None
    first_failure_ends: bool = False
    profile: bool = False
    #: The driver's values of the variables Ray sets per task (None: unset there), so that
    #: every placement runs the child with the same environment, as a local run would.
    driver_environment: dict[str, str | None] = field(default_factory=dict)
    #: Shared filesystem: the driver's workdir, used as it is (else a fresh one here).
    workdir: str | None = None


@dataclass(frozen=True)
class Started:
    """A task's first answer: it runs now, on this node. The driver's clock for its time
    limit starts here, not while it waited in Ray's queue for a node."""

    node: str
    host: str


@dataclass
class Outcome:
    """What comes back to the driver: the evaluation, and where it ran."""

    evaluation: Evaluation
    node: str
    host: str
    rootdir: str  # where the project was on the node
    output: bytes = b""


#: One evaluator per worker process and project (Ray reuses workers: the guard's snapshot
#: of the project is taken once, not for every task).
_EVALUATORS: dict[tuple[Any, ...], Evaluator] = {}


def run_job(job: Job, node: str) -> Outcome:
    """Run ``job`` here; ``node``: Ray's id for this node (the caller knows it)."""
    shared = job.workdir is not None
    rootdir = Path(job.driver_rootdir) if shared else Path.cwd()
    evaluator = _evaluator(job, rootdir)
    for name, value in job.driver_environment.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    workdir = Path(job.workdir) if shared else Path(tempfile.mkdtemp(prefix="aide-eval-"))
    try:
        evaluation = evaluator.evaluate(job.source, workdir, job.nodeids,
                                        baseline=job.baseline, coverage=job.coverage,
                                        record_calls=job.record_calls, replay=job.replay,
                                        fresh=job.fresh, fresh_seeds=job.fresh_seeds,
                                        first_failure_ends=job.first_failure_ends,
                                        profile=job.profile)
        output = _tail(workdir / "output.txt")
    finally:
        if not shared:
            shutil.rmtree(workdir, ignore_errors=True)
    return Outcome(evaluation, node, socket.gethostname(), str(rootdir), output)


def _evaluator(job: Job, rootdir: Path) -> Evaluator:
    sandbox = job.sandbox
    if sandbox is not None:
        # this node's bwrap; where there is none the child cannot start: an error, not a pass
        sandbox = dataclasses.replace(sandbox, bwrap=shutil.which("bwrap") or "bwrap")
    key = (str(rootdir), job.driver_rootdir, job.timeout, tuple(job.pytest_args),
           tuple(job.excluded), sandbox, tuple(job.env_drop), tuple(job.env_keep),
           job.study.target, tuple(job.study.nodeids))
    evaluator = _EVALUATORS.get(key)
    if evaluator is None:
        evaluator = Evaluator(
            study=relocate(job.study, Path(job.driver_rootdir), rootdir), rootdir=rootdir,
            timeout=job.timeout, pytest_args=job.pytest_args,
            protected_exclude=[rootdir / p for p in job.excluded], sandbox=sandbox,
            env_drop=job.env_drop, env_keep=job.env_keep,
        )
        _EVALUATORS[key] = evaluator
    return evaluator


def relocate(study: Study, old: Path, new: Path) -> Study:
    """``study`` with its paths under ``old`` moved under ``new`` (the node's copy)."""
    if old == new:
        return study

    def moved(path: Path) -> Path:
        return new / path.relative_to(old) if path.is_relative_to(old) else path

    def target(one: Target) -> Target:
        return Target(one.module, moved(one.path), one.symbol)

    return dataclasses.replace(study, target=target(study.target),
                               also=tuple(target(t) for t in study.also),
                               test_files=[moved(p) for p in study.test_files])


def _tail(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            handle.seek(max(0, os.path.getsize(path) - OUTPUT_BYTES))
            return handle.read()
    except OSError:
        return b""
