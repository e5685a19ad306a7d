"""The Ray executor on a real cluster of several nodes: a head without CPUs and two worker
nodes of one CPU each, on loopback (``ray.cluster_utils.Cluster`` starts and ends them)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import ray
from attacks import baseline_of
from clusters import head_and_two_workers, run_while, same_auth  # noqa: F401  (same_auth: a fixture)
from ray.cluster_utils import Cluster

from pytest_aide.evaluation.evaluator import Evaluation, Evaluator
from pytest_aide.evaluation.sandbox import choose
from pytest_aide.executors.base import EvaluationRequest
from pytest_aide.executors.ray_driver import RayExecutor
from pytest_aide.guards.baseline import Baseline
from pytest_aide.journal import Journal
from pytest_aide.study import Objective, Study, Target

MODULE = "VALUE = 1\n"
TESTS = '''
import mod


def test_value():
    assert mod.VALUE == 1


def test_score(record_property):
    record_property("score", mod.VALUE)
'''
HONEST = "VALUE = 1  # the same, written differently\n"
#: Changes the environment while it is imported: caught on whichever node it runs.
CHEAT = "import os\n\nos.environ['AIDE_CHEAT'] = '1'\nVALUE = 1\n"


@pytest.fixture(scope="module")
def nodes() -> Iterator[Cluster]:
    """A head without CPUs (it runs nothing) and two worker nodes with one CPU each."""
    with head_and_two_workers() as cluster:
        ray.init(address=cluster.address, log_to_driver=False)
        try:
            yield cluster
        finally:
            ray.shutdown()


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(mod=MODULE, test_mod=TESTS)
    pytester.makeini("[pytest]\npythonpath = .\n")
    return pytester


def evaluator_for(project: pytest.Pytester) -> Evaluator:
    study = Study(target=Target("mod", project.path / "mod.py"),
                  objectives=[Objective("test_mod.py::test_score", "score", True)],
                  guard_nodeids=["test_mod.py::test_value"],
                  test_files=[project.path / "test_mod.py"])
    return Evaluator(study, project.path, timeout=120, sandbox=choose("auto").sandbox,
                     protected_exclude=[project.path / ".aide"])


def on_both_nodes(executor: RayExecutor, source: str, where: Path,
                  baseline: Baseline) -> list[Evaluation]:
    """``source`` evaluated twice at once: each worker node has one CPU, so one each."""
    requests = [EvaluationRequest(source, where / str(i), baseline) for i in range(2)]
    with ThreadPoolExecutor(2) as pool:
        evaluations = list(pool.map(executor.run_shared, requests))
    ran_on = {executor.placements[str(r.workdir)][-1].split()[5] for r in requests}
    assert len(ran_on) == 2, executor.placements
    return evaluations


def verdict(evaluation: Evaluation) -> tuple[str, dict[str, str], list[str]]:
    return (evaluation.status, {t: evaluation.outcome(t) for t in evaluation.tests},
            evaluation.findings_text)


def test_each_node_gives_the_local_verdict(nodes, project) -> None:
    runs = project.path / ".aide"  # as in a run: not the project's, not guarded
    local = evaluator_for(project)
    local_baseline = baseline_of(local.evaluate(MODULE, runs / "local" / "base",
                                                baseline=None))
    executor = RayExecutor(evaluator=evaluator_for(project), ray=ray, workers=2, shared_fs=True)
    measured = executor.run_isolated(EvaluationRequest(MODULE, runs / "base", None))
    assert measured.completed, measured.output_tail
    baseline = baseline_of(measured)  # taken on one worker node, held to on both
    for source, name in ((HONEST, "honest"), (CHEAT, "cheat")):
        expected = verdict(local.evaluate(source, runs / "local" / name,
                                          baseline=local_baseline))
        for evaluation in on_both_nodes(executor, source, runs / name, baseline):
            assert verdict(evaluation) == expected, evaluation.output_tail
    assert expected[2] == [  # the cheat's, locally and on both nodes
        "changed while the candidate was imported: interpreter: environment"]


def hold_every_cpu(seconds: float) -> list[ray.ObjectRef]:
    """Another job's tasks on both worker nodes, holding their CPUs for ``seconds``."""

    def hold() -> None:  # defined here: pickled by value, no test module on the nodes
        time.sleep(seconds)

    holders = [ray.remote(hold).options(num_cpus=1, resources={name: 1}).remote()
               for name in ("node_a", "node_b")]
    deadline = time.monotonic() + 60
    while ray.available_resources().get("CPU", 0) > 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    return holders


def test_time_in_the_queue_is_not_the_evaluations(nodes, project) -> None:
    said: list[str] = []
    executor = RayExecutor(evaluator=evaluator_for(project), ray=ray, workers=2,
                           shared_fs=True, notice_after=1.0, say=said.append)
    executor.evaluator.timeout = 6
    holders = hold_every_cpu(9)  # longer than the timeout
    started = time.monotonic()
    evaluation = executor.run_shared(EvaluationRequest(MODULE, project.path / ".aide" / "q",
                                                       None))
    ray.get(holders)
    assert time.monotonic() - started > 6
    assert evaluation.status == "completed", evaluation.output_tail
    assert evaluation.outcome("test_mod.py::test_value") == "passed"
    assert said == ["waiting for a node with 1 CPU(s): the cluster has none free"]


@pytest.mark.usefixtures("same_auth")
def test_a_run_that_finds_no_free_node_stops_and_says_why(nodes, slow_project) -> None:
    holders = hold_every_cpu(60)
    try:
        result = slow_project.runpytest_subprocess(
            "--aide-steps", "1", "--aide-model", "tune", "--aide-executor", "ray",
            "--aide-ray-address", nodes.address, "--aide-timeout", "2", "--aide-ray-wait", "4",
        )
    finally:
        for holder in holders:
            ray.cancel(holder, force=True)
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    result.stdout.fnmatch_lines([
        "*aide: waiting for the measuring node * to have 1 CPU(s) free: other work holds them",
        "*slow.py: stopped: --aide-executor ray: waiting for the measuring node * no evaluation "
        "could start within --aide-ray-wait 4s*",
    ])
    assert "does not pass or measure" not in result.stdout.str()


@pytest.mark.usefixtures("same_auth")
def test_a_whole_run_on_two_nodes_outlives_its_measuring_node(nodes, slow_project) -> None:
    # the run measures on the first node with a CPU (its own, the head, has none)
    measuring = next(n["NodeID"] for n in ray.nodes()
                     if n.get("Alive") and n["Resources"].get("CPU", 0) >= 1)
    (victim,) = [n for n in nodes.worker_nodes if n.node_id == measuring]

    def kill_once_the_baseline_is_measured() -> None:
        deadline = time.monotonic() + 180
        while not list(slow_project.path.glob(".aide/*/baseline.json")):
            if time.monotonic() > deadline:
                return
            time.sleep(0.1)
        nodes.remove_node(victim)

    # the module's last test: its cluster is not made whole again
    result = run_while(slow_project, nodes.address, kill_once_the_baseline_is_measured)
    assert result.ret == 0, result.stdout.str()
    survivor = next(n for n in nodes.worker_nodes if n is not victim)
    result.stdout.fnmatch_lines([
        "*aide: 2 workers (Ray: 3 node(s), 2 CPU(s)*",
        f"aide: the measuring node {victim.node_ip_address} ({measuring:.8}) was lost; timed "
        f"measurements moved to {survivor.node_ip_address} ({survivor.node_id:.8})",
        "*the original*measured again on the new measuring node*",
    ])
    # the lost evaluation ran again: no node is buggy or tampered for it
    (path,) = slow_project.path.glob(".aide/*/journal.json")
    journal = Journal.load(path)
    assert [n.status for n in journal.nodes] == ["good"] * 4, [n.error for n in journal.nodes]
    (run,) = slow_project.path.glob(".aide/*/nodes")
    placements = " ".join(p.read_text() for p in run.glob("*/placement.txt"))
    ran_on = {n["NodeID"] for n in ray.nodes() if n["NodeID"] in placements}
    assert len(ran_on) >= 2, placements  # the lost node, and the one that took its place
    # uploaded as the job's working_dir: the child ran in Ray's copy, not in the project
    assert "working_dir_files" in placements and str(slow_project.path) not in placements
