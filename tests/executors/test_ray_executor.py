"""The Ray executor against a real local Ray cluster (two CPUs, shared by this module)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import ray
from attacks import baseline_of

from pytest_aide.evaluation.evaluator import Evaluator
from pytest_aide.evaluation.sandbox import choose
from pytest_aide.executors.base import EvaluationRequest
from pytest_aide.executors.ray_driver import RayExecutor
from pytest_aide.guards.baseline import Baseline
from pytest_aide.study import Objective, Study, Target

MODULE = "VALUE = 1\n"
#: The same module, slow to import: a window in which to kill or freeze its worker.
SLOW_MODULE = "import time\n\ntime.sleep({})\nVALUE = 1\n"
TESTS = '''
import mod


def test_value():
    assert mod.VALUE == 1


def test_score(record_property):
    record_property("score", mod.VALUE)
'''


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A local two-CPU cluster; its address, for runs in other processes."""
    # address="local": a cluster of its own, even when another (CI's, a user's) is running
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(mod=MODULE, test_mod=TESTS)
    pytester.makeini("[pytest]\npythonpath = .\n")
    return pytester


def executor_for(project: pytest.Pytester, sandboxed: bool = True, timeout: float = 120,
                 workers: int = 2) -> RayExecutor:
    study = Study(target=Target("mod", project.path / "mod.py"),
                  objectives=[Objective("test_mod.py::test_score", "score", True)],
                  guard_nodeids=["test_mod.py::test_value"],
                  test_files=[project.path / "test_mod.py"])
    sandbox = choose("auto").sandbox if sandboxed else None
    evaluator = Evaluator(study, project.path, timeout=timeout, sandbox=sandbox,
                          protected_exclude=[project.path / ".aide"])
    # this process initialized Ray itself, so the job has no working_dir: the project is
    # reached at its own path (one machine: a shared filesystem); uploads are tested below
    return RayExecutor(evaluator=evaluator, ray=ray, workers=workers, shared_fs=True)


def ray_workers_running_evaluations() -> list[int]:
    """Pids of this cluster's Ray worker processes whose child is an evaluation's pytest:
    only those that descend from this process (the cluster is ours), never another run's on
    the same machine."""
    parents: dict[int, int] = {}
    commands: dict[int, bytes] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            commands[int(entry.name)] = (entry / "cmdline").read_bytes()
            parents[int(entry.name)] = int(
                (entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    workers = set()
    for pid, command in commands.items():
        parent = parents.get(pid, 0)
        if (b"pytest_aide.evaluation.worker" in command
                and commands.get(parent, b"").startswith(b"ray::")
                and _descends_from(parent, os.getpid(), parents)):
            workers.add(parent)
    return sorted(workers)


def _descends_from(pid: int, ancestor: int, parents: dict[int, int]) -> bool:
    seen = set()
    while pid and pid not in seen:
        if pid == ancestor:
            return True
        seen.add(pid)
        pid = parents.get(pid, 0)
    return False


def kill_workers(times: int, how: int = signal.SIGKILL,
                 signalled: list[int] | None = None) -> threading.Thread:
    """In the background: ``times`` times, wait for a worker running an evaluation, signal it
    (its pid goes into ``signalled``)."""

    def body() -> None:
        deadline = time.monotonic() + 120
        for _ in range(times):
            while not (found := ray_workers_running_evaluations()):
                if time.monotonic() > deadline:
                    return
                time.sleep(0.05)
            for pid in found:
                os.kill(pid, how)
                if signalled is not None:
                    signalled.append(pid)
            while ray_workers_running_evaluations() == found and time.monotonic() < deadline:
                time.sleep(0.05)

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    return thread


def isolated(executor: RayExecutor, source: str, workdir: Path):
    return executor.run_isolated(EvaluationRequest(source, workdir, None))


def shared(executor: RayExecutor, source: str, workdir: Path, baseline: Baseline | None = None):
    return executor.run_shared(EvaluationRequest(source, workdir, baseline))


def test_a_candidate_runs_as_a_task(cluster, project) -> None:
    executor = executor_for(project)
    baseline = isolated(executor, MODULE, project.path / "run" / "base")  # the measuring node
    assert baseline.completed and baseline.outcome("test_mod.py::test_value") == "passed", (
        baseline.output_tail)
    # the baseline reaches the node as data: an honest candidate there is not tampered
    good = shared(executor, "VALUE = 1  # same, written differently\n", project.path / "run" / "a",
                  baseline_of(baseline))
    wrong = shared(executor, "VALUE = 2\n", project.path / "run" / "b", baseline_of(baseline))
    assert good.outcome("test_mod.py::test_value") == "passed" and not good.tampered
    assert wrong.outcome("test_mod.py::test_value") == "failed"
    placement = (project.path / "run" / "a" / "placement.txt").read_text()
    assert f"ran on node {ray.get_runtime_context().get_node_id()}" in placement
    assert placement.rstrip().endswith(f"in {project.path}")
    assert "2 passed" in (project.path / "run" / "a" / "output.txt").read_text()


def test_the_project_is_guarded_where_the_child_ran(cluster, project) -> None:
    # unsandboxed, a candidate can write the project's copy on the node: that is caught there
    executor = executor_for(project, sandboxed=False)
    tests = (project.path / "test_mod.py").read_text()
    isolated(executor, MODULE, project.path / "run" / "base")
    cheat = "import pathlib\npathlib.Path('test_mod.py').write_text('def test_value(): pass')\n"
    evaluation = shared(executor, cheat + MODULE, project.path / "run" / "cheat")
    assert any("changed project file: modified test_mod.py" in t for t in evaluation.findings_text)
    assert (project.path / "test_mod.py").read_text() == tests  # undone by the node's guard


def test_a_task_whose_worker_dies_is_run_once_more(cluster, project) -> None:
    executor = executor_for(project)
    killer = kill_workers(times=1)
    evaluation = shared(executor, SLOW_MODULE.format(2), project.path / "run" / "once")
    killer.join(5)
    assert evaluation.outcome("test_mod.py::test_value") == "passed", (  # the second attempt's
        evaluation.output_tail)
    assert "run again after the first attempt was lost: attempt 1: WorkerCrashedError" in (
        evaluation.output_tail)


def test_a_task_lost_twice_is_an_error_never_a_pass(cluster, project) -> None:
    executor = executor_for(project)
    killer = kill_workers(times=2)
    evaluation = shared(executor, SLOW_MODULE.format(30), project.path / "run" / "twice")
    killer.join(5)
    assert evaluation.status == "error" and not evaluation.tests
    assert evaluation.not_passed(["test_mod.py::test_value"]) == ["test_mod.py::test_value"]
    assert "the Ray task was lost 2 times" in evaluation.output_tail


def test_the_driver_cancels_a_task_past_its_timeout(cluster, project) -> None:
    # a frozen worker never answers: only the driver's clock can end the evaluation
    executor = executor_for(project, timeout=10)
    executor.grace = 1.0
    frozen: list[int] = []
    killer = kill_workers(times=1, how=signal.SIGSTOP, signalled=frozen)
    started = time.monotonic()
    try:
        # it runs for most of the timeout: a busy machine's killer still finds it running
        evaluation = shared(executor, SLOW_MODULE.format(8), project.path / "run" / "frozen")
        elapsed = time.monotonic() - started
    finally:
        killer.join(5)
        for pid in frozen:  # a frozen worker cannot act on its cancellation: end it here
            os.kill(pid, signal.SIGKILL)
    assert frozen, "no worker was frozen"
    assert evaluation.status == "timeout", evaluation.output_tail
    assert "cancelled by the driver" in evaluation.output_tail
    assert elapsed < 20


def test_ray_initialized_elsewhere_needs_a_shared_filesystem(cluster, slow_project) -> None:
    from pytest_aide.executors.base import ExecutorError
    from pytest_aide.settings import AideSettings

    evaluator = executor_for(slow_project).evaluator
    with pytest.raises(ExecutorError, match="pass --aide-ray-shared-fs"):
        RayExecutor.connect(AideSettings(executor="ray", workers=2), evaluator)


def test_without_ray_installed_the_executor_is_a_usage_error(slow_project) -> None:
    blocked = ("import sys; sys.modules['ray'] = None; import pytest; "
               "sys.exit(pytest.main(['--aide-steps', '1', '--aide-model', 'tune', "
               "'--aide-executor', 'ray', '-p', 'no:cacheprovider']))")
    done = subprocess.run([sys.executable, "-c", blocked], cwd=slow_project.path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, done.stdout + done.stderr
    assert "pip install 'pytest-aide[ray]'" in done.stderr


def test_a_failed_connection_names_the_token_unless_it_was_sent(monkeypatch) -> None:
    from pytest_aide.executors.ray_driver import _token_hint

    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    assert "export RAY_AUTH_MODE=token here" in _token_hint()
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    assert _token_hint() == ""
