"""Evaluations as Ray tasks: many machines and GPUs, on an engine people already run.

Each evaluation is a task that asks for its slot's resources (one CPU, and
``--aide-gpus-per-worker`` GPUs, which Ray hands over as ``CUDA_VISIBLE_DEVICES``) and runs
the same sandboxed child pytest on the node Ray picks (remote.py). The project reaches the
nodes as the job's ``runtime_env`` ``working_dir`` (the rootdir without the log dir,
``.git`` and virtualenvs; Ray uploads it once, when pytest-aide connects), or, with
``--aide-ray-shared-fs``, at its own path. A process that initialized Ray itself (a
conftest, a test of this package) has fixed its job's environment: there, only a shared
filesystem will do.

Tasks run with ``max_retries=0``: the driver decides. It enforces the timeout itself
(``ray.wait``, then ``ray.cancel(force=True)``), so a hung node cannot hold the search; a task
whose worker or node dies is an error for that attempt and is run once more (Ray places it
on a node that is alive); a second loss makes the evaluation an error, never a pass.

Timed measurements (the baseline, timed tests, re-measurements, the confirmation) all run on
one node, the measuring node, as tasks that ask for every CPU it has, after the driver has
stopped sending other work (the same gate as the local executor's): the timings of one
comparison are taken on the same machine, with nothing else of the run on it.

Ray is imported only here, and only when ``--aide-executor ray`` is used.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_aide.evaluation.evaluator import Evaluation, Evaluator
from pytest_aide.executors.base import EvaluationRequest, ExecutorError, Gate
from pytest_aide.executors.ray_node import RAY_TASK_VARIABLES, Job, Outcome, run_job
from pytest_aide.settings import AideSettings

INSTALL_HINT = "pip install 'pytest-aide[ray]'"
#: Never uploaded to the nodes: VCS data, environments, caches (and the log dir, added).
UPLOAD_EXCLUDES = [".git", ".hg", ".venv", "venv", ".tox", ".nox", "node_modules",
                   "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache",
                   ".benchmarks", "*.pyc"]
#: Seconds a task may take to start on its node (a fresh worker, the project unpacked)
#: before the driver's clock for its timeout counts against the evaluation.
START_SLACK = 30.0
#: Attempts of one evaluation whose worker or node died.
ATTEMPTS = 2


def _task(job: Job) -> Outcome:
    """The task's body (made a Ray remote function in RayExecutor.connect)."""
    import ray

    return run_job(job, ray.get_runtime_context().get_node_id())


@dataclass
class RayExecutor:
    """Evaluations on a Ray cluster; see the module docstring."""

    evaluator: Evaluator
    ray: Any  # the ray module
    workers: int
    gpus_per_worker: int = 0
    shared_fs: bool = False
    connected: bool = False  # this executor called ray.init, and disconnects at the end
    start_slack: float = START_SLACK
    _remote: Any = field(default=None, repr=False)
    _gate: Gate = field(init=False, repr=False)
    _measuring_node: str | None = field(default=None, repr=False)
    _running: set[Any] = field(default_factory=set, repr=False)
    #: Where each evaluation ran, by workdir (for its node directory and the tests).
    placements: dict[str, list[str]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._gate = Gate(self.workers)
        self._remote = self.ray.remote(max_retries=0)(_task)

    # -- connecting -----------------------------------------------------------------------

    @classmethod
    def connect(cls, settings: AideSettings, evaluator: Evaluator) -> RayExecutor:
        try:
            import ray
        except ImportError:
            raise ExecutorError(
                f"--aide-executor ray: the ray package is not installed: {INSTALL_HINT}"
            ) from None
        connected = not ray.is_initialized()
        if not connected and not settings.ray_shared_fs:
            raise ExecutorError(
                "--aide-executor ray: Ray was initialized in this process before pytest-aide "
                "could give the job the project as its working_dir; pass --aide-ray-shared-fs "
                "if the project lies at the same path on every node, or do not call ray.init "
                "in the test process"
            )
        if connected:
            address = settings.ray_address or os.environ.get("RAY_ADDRESS") or None
            runtime_env = None if settings.ray_shared_fs else {
                "working_dir": str(evaluator.rootdir), "excludes": upload_excludes(evaluator),
            }
            try:
                ray.init(address=address, runtime_env=runtime_env, log_to_driver=False,
                         include_dashboard=False, configure_logging=False)
            except Exception as exc:  # Ray raises many kinds: connection, auth, version
                where = address or "a local cluster"
                detail = " ".join(str(exc).split())[:600]
                raise ExecutorError(
                    f"--aide-executor ray: cannot connect to {where} ({type(exc).__name__}: "
                    f"{detail}). Start a cluster with 'ray start --head' and pass "
                    "--aide-ray-address HOST:PORT (or set RAY_ADDRESS), or leave both unset "
                    "for a local cluster"
                ) from None
        workers = settings.workers or _auto_workers(ray, settings.gpus_per_worker)
        return cls(evaluator=evaluator, ray=ray, workers=workers,
                   gpus_per_worker=settings.gpus_per_worker, shared_fs=settings.ray_shared_fs,
                   connected=connected)

    # -- the Executor protocol ------------------------------------------------------------

    def run_shared(self, request: EvaluationRequest) -> Evaluation:
        with self._gate.slot():
            return self._evaluate(request, exclusive=False)

    def run_isolated(self, request: EvaluationRequest) -> Evaluation:
        with self._gate.all():
            return self._evaluate(request, exclusive=True)

    def abort(self) -> None:
        for ref in list(self._running):
            self._cancel(ref)

    def close(self) -> None:
        if self.connected and self.ray.is_initialized():
            self.ray.shutdown()  # disconnects; a local cluster this run started stops too
        self.evaluator.close()

    def notice(self) -> str:
        return ""

    def describe(self) -> str:
        resources = self.ray.cluster_resources()
        nodes = sum(1 for n in self.ray.nodes() if n.get("Alive"))
        gpus = f", {self.gpus_per_worker} GPU(s) per task" if self.gpus_per_worker else ""
        where = "shared filesystem" if self.shared_fs else "project uploaded as working_dir"
        return (f"Ray: {nodes} node(s), {resources.get('CPU', 0):g} CPU(s), "
                f"{resources.get('GPU', 0):g} GPU(s){gpus}; {where}")

    # -- running one evaluation -----------------------------------------------------------

    def _evaluate(self, request: EvaluationRequest, exclusive: bool) -> Evaluation:
        workdir = request.workdir
        job = self._job(request)
        options = self._options(exclusive)
        workdir.mkdir(parents=True, exist_ok=True)
        lost: list[str] = []
        for attempt in range(1, ATTEMPTS + 1):
            started = time.perf_counter()
            ref = self._remote.options(**options).remote(job)
            self._running.add(ref)
            try:
                ready, _ = self.ray.wait([ref], timeout=self.evaluator.timeout + self.start_slack)
                if not ready:
                    self._cancel(ref)
                    return self._timed_out(workdir, time.perf_counter() - started)
                outcome: Outcome = self.ray.get(ref)
            except self._lost_errors() as exc:
                lost.append(f"attempt {attempt}: {type(exc).__name__}: "
                            f"{' '.join(str(exc).split())[:300]}")
                continue
            except self.ray.exceptions.RayError as exc:
                return self._failed(workdir, [f"{type(exc).__name__}: {exc}"], rerun=False)
            finally:
                self._running.discard(ref)
            return self._received(outcome, workdir, attempt, lost)
        return self._failed(workdir, lost, rerun=True)

    def _job(self, request: EvaluationRequest) -> Job:
        evaluator = self.evaluator
        workdir = request.workdir
        root = evaluator.rootdir.resolve()
        excluded = [str(Path(p).resolve().relative_to(root)) for p in evaluator.protected_exclude
                    if Path(p).resolve().is_relative_to(root)]
        return Job(
            source=request.source, nodeids=request.nodeids, study=evaluator.study,
            driver_rootdir=str(evaluator.rootdir), timeout=evaluator.timeout,
            pytest_args=evaluator.pytest_args, excluded=excluded, sandbox=evaluator.sandbox,
            env_drop=evaluator.env_drop, env_keep=evaluator.env_keep,
            baseline=request.baseline, coverage=request.coverage,
            record_calls=request.record_calls, replay=request.replay, fresh=request.fresh,
            fresh_seeds=request.fresh_seeds, first_failure_ends=request.first_failure_ends,
            profile=request.profile,
            driver_environment={n: os.environ.get(n) for n in RAY_TASK_VARIABLES},
            workdir=str(workdir) if self.shared_fs else None,
        )

    def _options(self, exclusive: bool) -> dict[str, Any]:
        options: dict[str, Any] = {"num_cpus": 1, "num_gpus": self.gpus_per_worker,
                                   "max_retries": 0}
        if exclusive:
            node, cpus = self._measuring()
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            options["num_cpus"] = cpus  # nothing else of the run's, or anyone's, beside it
            options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(node, soft=False)
        return options

    def _measuring(self) -> tuple[str, float]:
        """The node every timed measurement runs on, and its CPUs: this driver's node when
        it has the GPUs a slot needs, else the first live node that has."""
        alive = [n for n in self.ray.nodes() if n.get("Alive")]
        if self._measuring_node not in {n["NodeID"] for n in alive}:
            here = self.ray.get_runtime_context().get_node_id()
            fits = [n for n in alive
                    if n["Resources"].get("GPU", 0) >= self.gpus_per_worker
                    and n["Resources"].get("CPU", 0) >= 1]
            if not fits:
                raise ExecutorError(
                    f"no live Ray node has {self.gpus_per_worker} GPU(s) and a CPU for the "
                    "timed measurements; lower --aide-gpus-per-worker or add such a node"
                )
            fits.sort(key=lambda n: n["NodeID"] != here)
            self._measuring_node = fits[0]["NodeID"]
        node = next(n for n in alive if n["NodeID"] == self._measuring_node)
        return node["NodeID"], float(node["Resources"].get("CPU", 1))

    def _lost_errors(self) -> tuple[type[BaseException], ...]:
        """Ray's errors for a task whose worker, node or result was lost (not its own bug)."""
        exceptions = self.ray.exceptions
        names = ("WorkerCrashedError", "NodeDiedError", "ObjectLostError", "OwnerDiedError",
                 "LocalRayletDiedError", "RaySystemError", "TaskUnschedulableError",
                 "ActorUnschedulableError")
        return tuple(getattr(exceptions, n) for n in names if hasattr(exceptions, n))

    def _cancel(self, ref: Any) -> None:
        with contextlib.suppress(Exception):  # already finished, or its node is gone
            self.ray.cancel(ref, force=True)

    # -- results ----------------------------------------------------------------------------

    def _received(self, outcome: Outcome, workdir: Path, attempt: int,
                  lost: list[str]) -> Evaluation:
        evaluation = outcome.evaluation
        if not self.shared_fs:
            (workdir / "output.txt").write_bytes(outcome.output)
        self.placements[str(workdir)] = [*lost, f"attempt {attempt}: ran on node "
                                         f"{outcome.node} ({outcome.host}) in {outcome.rootdir}"]
        (workdir / "placement.txt").write_text("\n".join(self.placements[str(workdir)]) + "\n")
        if lost:
            evaluation.output_tail = (f"(run again after the first attempt was lost: "
                                      f"{lost[0]})\n" + evaluation.output_tail)
        return evaluation

    def _failed(self, workdir: Path, reasons: list[str], rerun: bool) -> Evaluation:
        head = (f"the Ray task was lost {len(reasons)} times (its worker or node died); "
                "the evaluation counts as an error" if rerun else "the Ray task failed")
        text = head + ":\n" + "\n".join(reasons)
        (workdir / "output.txt").write_text(text + "\n")
        return Evaluation(status="error", output_tail=text)

    def _timed_out(self, workdir: Path, seconds: float) -> Evaluation:
        text = (f"the Ray task was cancelled by the driver after {seconds:.0f}s "
                f"(--aide-timeout {self.evaluator.timeout:g})")
        (workdir / "output.txt").write_text(text + "\n")
        return Evaluation(status="timeout", duration=seconds, output_tail=text)


def upload_excludes(evaluator: Evaluator) -> list[str]:
    """What the working_dir upload leaves out: UPLOAD_EXCLUDES, and the paths under the
    rootdir that are not the project (the log dir; this run's own output files)."""
    root = evaluator.rootdir.resolve()
    extra = ["/" + Path(p).resolve().relative_to(root).as_posix()
             for p in evaluator.protected_exclude if Path(p).resolve().is_relative_to(root)]
    return [*UPLOAD_EXCLUDES, *extra]


def _auto_workers(ray: Any, gpus_per_worker: int) -> int:
    """``--aide-workers auto`` on a cluster: a task per CPU (per K GPUs with GPUs)."""
    resources = ray.cluster_resources()
    if gpus_per_worker:
        return max(1, int(resources.get("GPU", 0) // gpus_per_worker))
    return max(1, int(resources.get("CPU", 1)))
