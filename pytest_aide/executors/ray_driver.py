"""Evaluations as Ray tasks: many machines and GPUs, on an engine people already run.

Each evaluation is a task that asks for its slot's resources (one CPU, and
``--aide-gpus-per-worker`` GPUs, which Ray hands over as ``CUDA_VISIBLE_DEVICES``) and runs
the same sandboxed child pytest on the node Ray picks (remote.py). The project reaches the
nodes as the job's ``runtime_env`` ``working_dir`` (the rootdir without the log dir,
``.git`` and virtualenvs; Ray uploads it once, when pytest-aide connects), or, with
``--aide-ray-shared-fs``, at its own path. A process that initialized Ray itself (a
conftest, a test of this package) has fixed its job's environment: there, only a shared
filesystem will do.

Tasks run with ``max_retries=0``: the driver decides. A task is a generator whose first
answer says that it started (``Started``): the time it waited in Ray's queue for a node is
not the evaluation's. Waiting, the driver says for what (``waiting for a node with 1 CPU(s):
the cluster has none free``), and past ``--aide-ray-wait`` it stops the run with that
(``CapacityError``), never blaming the code. Once the task runs, the driver enforces the
timeout itself (``ray.wait``, then ``ray.cancel(force=True)``), so a hung node cannot hold
the search; a task whose worker or node dies is an error for that attempt and is run once
more (Ray places it on a node that is alive); a second loss makes the evaluation an error,
never a pass.

Timed measurements (the baseline, timed tests, re-measurements, the confirmation) all run on
one node, the measuring node, as tasks that ask for every CPU it has, after the driver has
stopped sending other work (the same gate as the local executor's): the timings of one
comparison are taken on the same machine, with nothing else of the run on it.

Ray prints what its cluster publishes to every driver (a dying raylet's last 20 log lines,
once per agent of that node; a node marked dead) on the driver's stdout, whatever
``log_to_driver`` says (``ray._private.worker.listen_error_messages``). While this executor
holds the connection, those lines go to ``ray.log`` in the run directory instead
(``RayMessages``); what they mean for the run, the driver says itself.

Ray is imported only here, and only when ``--aide-executor ray`` is used.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_aide.evaluation.evaluator import Evaluation, Evaluator
from pytest_aide.executors.base import CapacityError, EvaluationRequest, ExecutorError, Gate
from pytest_aide.executors.ray_node import RAY_TASK_VARIABLES, Job, Outcome, Started, run_job
from pytest_aide.settings import AideSettings

INSTALL_HINT = "pip install 'pytest-aide[ray]'"
#: Never uploaded to the nodes: VCS data, environments, caches (and the log dir, added).
UPLOAD_EXCLUDES = [".git", ".hg", ".venv", "venv", ".tox", ".nox", "node_modules",
                   "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache",
                   ".benchmarks", "*.pyc"]
#: Seconds past ``--aide-timeout`` (counted from the task's start) before the driver
#: cancels a task: the child's own limit should have ended it by then.
GRACE = 30.0
#: Seconds a task may wait for a node before the driver says what it waits for.
NOTICE_AFTER = 10.0
#: Attempts of one evaluation whose worker or node died.
ATTEMPTS = 2


def _task(job: Job) -> Iterator[Started | Outcome]:
    """The task's body (a Ray generator task, made remote in RayExecutor): it says that it
    started, then runs the evaluation."""
    import ray

    node = ray.get_runtime_context().get_node_id()
    yield Started(node, socket.gethostname())
    yield run_job(job, node)


#: Seconds a first, empty task may take to answer when pytest-aide connects.
CHECK_WAIT = 60.0


def _hello() -> Iterator[int]:
    yield 1


def _token_hint() -> str:
    if os.environ.get("RAY_AUTH_MODE", "").lower() == "token":
        return ""
    return (". A cluster started with 'ray start' on Ray 2.5x and later asks for a token: "
            "export RAY_AUTH_MODE=token here, with its token in ~/.ray/auth_token, "
            "RAY_AUTH_TOKEN_PATH or RAY_AUTH_TOKEN")


def _check_answers(ray: Any) -> None:
    """A task's streamed answers reach this process (each evaluation's first answer says
    that it started). A driver in token mode on a cluster without tokens connects and runs
    tasks, but hears none of them: say so now, not after --aide-ray-wait."""
    probe = ray.remote(num_cpus=0, max_retries=0)(_hello).remote()
    ready, _ = ray.wait([probe], timeout=CHECK_WAIT)
    if ready:
        return
    with contextlib.suppress(Exception):
        ray.cancel(probe, force=True)
    token = os.environ.get("RAY_AUTH_MODE", "").lower() == "token"
    raise ExecutorError(
        f"--aide-executor ray: connected, but no task answered within {CHECK_WAIT:g}s"
        + ("; RAY_AUTH_MODE=token is set here: a cluster that does not use tokens never "
           "answers a driver that does (unset RAY_AUTH_MODE)" if token else
           "; is every node's raylet up and reachable from this machine?"))


def _to_stderr(text: str) -> None:
    print(f"aide: {text}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class MeasuringMove:
    """The measuring node died; timed measurements moved to another node."""

    lost: str  # the dead node's address
    to: str  # the new measuring node's address

    def __str__(self) -> str:
        return f"the measuring node {self.lost} was lost; timed measurements moved to {self.to}"


@dataclass
class RayMessages:
    """Ray's messages to this driver, kept in a file (see the module docstring): Ray's
    printer, which its listener looks up by name at each message, is swapped for one that
    writes to ``path`` (printing as Ray does until the run names it) and put back at
    ``restore``."""

    worker: Any  # ray._private.worker
    path: Path | None = None
    _printer: Callable[..., None] | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def divert(cls, ray: Any) -> RayMessages | None:
        """Swap the printer; None where this Ray has none of that name (nothing diverted)."""
        worker = getattr(getattr(ray, "_private", None), "worker", None)
        if not callable(getattr(worker, "print_to_stdstream", None)):
            return None
        messages = cls(worker)
        messages._printer = worker.print_to_stdstream
        worker.print_to_stdstream = messages.keep
        return messages

    def keep(self, data: dict[str, Any], ignore_prefix: bool = False) -> None:
        if self.path is None and self._printer is not None:
            self._printer(data, ignore_prefix)
            return
        assert self.path is not None
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        text = "".join(f"{stamp} ({data.get('pid', 'ray')}) {line}\n"
                       for line in data.get("lines", []))
        # a write that fails must not end Ray's listener thread (it would print no more)
        with self._lock, contextlib.suppress(OSError), self.path.open("a", encoding="utf-8") as log:
            log.write(text)

    def restore(self) -> None:
        if self._printer is not None and self.worker.print_to_stdstream == self.keep:
            self.worker.print_to_stdstream = self._printer


class NodesLost(CapacityError):
    """An evaluation's node died under both its attempts: the cluster, not the code."""


@dataclass
class RayExecutor:
    """Evaluations on a Ray cluster; see the module docstring."""

    evaluator: Evaluator
    ray: Any  # the ray module
    workers: int
    gpus_per_worker: int = 0
    shared_fs: bool = False
    connected: bool = False  # this executor called ray.init, and disconnects at the end
    grace: float = GRACE
    #: Seconds an evaluation may wait for a node (``--aide-ray-wait``), and after how many
    #: it says so.
    queue_wait: float = AideSettings.ray_wait
    notice_after: float = NOTICE_AFTER
    #: How news reaches the user (the run gives its line writer: executors.base.Announcing).
    say: Callable[[str], None] = field(default=_to_stderr, repr=False)
    _remote: Any = field(default=None, repr=False)
    _gate: Gate = field(init=False, repr=False)
    _measuring_node: str | None = field(default=None, repr=False)
    #: Nodes that died under an evaluation: never chosen to measure on again.
    _dead: set[str] = field(default_factory=set, repr=False)
    #: Each measuring node lost and its replacement, in order (the summary says them).
    moves: list[MeasuringMove] = field(default_factory=list, repr=False)
    _running: set[Any] = field(default_factory=set, repr=False)
    #: Where each evaluation ran, by workdir (for its node directory and the tests).
    placements: dict[str, list[str]] = field(default_factory=dict, repr=False)
    #: Ray's own messages to this driver, diverted while this executor holds the connection.
    messages: RayMessages | None = field(default=None, repr=False)

    @property
    def run_dir(self) -> Path | None:
        """The run's directory (executors.base.Announcing): Ray's messages go to its
        ``ray.log``."""
        return self.messages.path.parent if self.messages and self.messages.path else None

    @run_dir.setter
    def run_dir(self, path: Path | None) -> None:
        if self.messages is not None:
            self.messages.path = None if path is None else path / "ray.log"

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
                    f"for a local cluster{_token_hint()}"
                ) from None
        messages = RayMessages.divert(ray) if connected else None
        try:
            _check_answers(ray)
        except ExecutorError:
            if messages is not None:
                messages.restore()
            raise
        workers = settings.workers or _auto_workers(ray, settings.gpus_per_worker)
        return cls(evaluator=evaluator, ray=ray, workers=workers,
                   gpus_per_worker=settings.gpus_per_worker, shared_fs=settings.ray_shared_fs,
                   connected=connected, queue_wait=settings.ray_wait, messages=messages)

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
        if self.messages is not None:
            self.messages.restore()  # after shutdown: its listener has stopped
        self.evaluator.close()

    def notice(self) -> str:
        return ""

    def events(self) -> list[str]:
        """The measuring nodes lost so far, for the run's summary and journal."""
        return [str(move) for move in self.moves]

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
        workdir.mkdir(parents=True, exist_ok=True)
        lost: list[str] = []
        died = 0  # attempts lost with their node
        for attempt in range(1, ATTEMPTS + 1):
            options = self._options(exclusive)  # each time: a lost measuring node is replaced
            task = self._remote.options(**options).remote(job)
            self._running.add(task)
            try:
                self._wait_for_start(task, options)
                started = time.perf_counter()
                ready, _ = self.ray.wait([task], timeout=self.evaluator.timeout + self.grace)
                if not ready:
                    self._cancel(task)
                    return self._timed_out(workdir, time.perf_counter() - started)
                outcome: Outcome = self.ray.get(next(task))
            except self._lost_errors() as exc:
                lost.append(f"attempt {attempt}: {type(exc).__name__}: "
                            f"{' '.join(str(exc).split())[:300]}")
                if self._node_died(exc, options):
                    died += 1
                continue
            except self.ray.exceptions.RayError as exc:
                return self._failed(workdir, [f"{type(exc).__name__}: {exc}"], rerun=False)
            finally:
                self._running.discard(task)
            return self._received(outcome, workdir, attempt, lost)
        if died == ATTEMPTS:
            self._failed(workdir, lost, rerun=True)
            raise NodesLost(f"--aide-executor ray: an evaluation's node died under each of its "
                            f"{ATTEMPTS} attempts: {'; '.join(lost)}")
        return self._failed(workdir, lost, rerun=True)

    def _node_died(self, exc: BaseException, options: dict[str, Any]) -> bool:
        """Whether a lost attempt lost its node (not only its worker, which the candidate
        may have brought down); a dead measuring node is never measured on again."""
        exceptions = self.ray.exceptions
        kinds = tuple(getattr(exceptions, n) for n in
                      ("NodeDiedError", "LocalRayletDiedError", "TaskUnschedulableError")
                      if hasattr(exceptions, n))
        pinned = "scheduling_strategy" in options and self._measuring_node is not None
        alive = {n["NodeID"] for n in self.ray.nodes() if n.get("Alive")}
        died = isinstance(exc, kinds) or (pinned and self._measuring_node not in alive)
        if died and pinned:
            self._dead.add(self._measuring_node)  # type: ignore[arg-type]
        return died

    def _wait_for_start(self, task: Any, options: dict[str, Any]) -> None:
        """Until ``task`` runs on a node (its first answer, ``Started``): the time in Ray's
        queue is not the evaluation's. Past ``notice_after`` it says what it waits for; past
        ``queue_wait``, CapacityError. A task that failed before it started raises here."""
        ready, _ = self.ray.wait([task], timeout=min(self.notice_after, self.queue_wait))
        if not ready:
            self.say(self._waiting_for(options))
            ready, _ = self.ray.wait([task], timeout=max(0.0, self.queue_wait
                                                         - self.notice_after))
        if not ready:
            self._cancel(task)
            raise CapacityError(
                f"--aide-executor ray: {self._waiting_for(options)}; no evaluation could start "
                f"within --aide-ray-wait {self.queue_wait:g}s (free the cluster's CPUs, add "
                "nodes, or wait longer with a larger --aide-ray-wait)")
        self.ray.get(next(task))

    def _waiting_for(self, options: dict[str, Any]) -> str:
        """What a task that has not started waits for, as the user reads it."""
        cpus, gpus = float(options["num_cpus"]), float(options.get("num_gpus") or 0)
        need = f"{cpus:g} CPU(s)" + (f" and {gpus:g} GPU(s)" if gpus else "")
        alive = [n for n in self.ray.nodes() if n.get("Alive")]
        if "scheduling_strategy" in options:
            where = next((n for n in alive if n["NodeID"] == self._measuring_node), {})
            return (f"waiting for the measuring node {_address(where, self._measuring_node)} "
                    f"to have {need} free: other work holds them")
        if any(n["Resources"].get("CPU", 0) >= cpus and n["Resources"].get("GPU", 0) >= gpus
               for n in alive):
            return f"waiting for a node with {need}: the cluster has none free"
        return f"waiting for a node with {need}: no live node of the cluster has that many"

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
        every = self.ray.nodes()
        alive = [n for n in every if n.get("Alive") and n["NodeID"] not in self._dead]
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
            if self._measuring_node is not None:
                self._moved(every, fits[0])
            self._measuring_node = fits[0]["NodeID"]
        node = next(n for n in alive if n["NodeID"] == self._measuring_node)
        return node["NodeID"], float(node["Resources"].get("CPU", 1))

    def _moved(self, nodes: list[dict[str, Any]], to: dict[str, Any]) -> None:
        """Say and keep that the measuring node was lost, and where measuring goes now."""
        lost = next((n for n in nodes if n["NodeID"] == self._measuring_node), {})
        move = MeasuringMove(_address(lost, self._measuring_node), _address(to, to["NodeID"]))
        self.moves.append(move)
        self.say(str(move))

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


def _address(node: dict[str, Any], node_id: str | None) -> str:
    """A node as a person finds it: its address and the start of its id."""
    return f"{node.get('NodeManagerAddress', '?')} ({node_id or '':.8})"


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
