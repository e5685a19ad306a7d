"""The Ray executor on a real cluster of several nodes: a head without CPUs and two worker
nodes of one CPU each, on loopback (``ray.cluster_utils.Cluster`` starts and ends them)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import ray
from attacks import baseline_of
from ray.cluster_utils import Cluster

from pytest_aide.evaluation.evaluator import Evaluation, Evaluator
from pytest_aide.evaluation.sandbox import choose
from pytest_aide.executors.base import EvaluationRequest
from pytest_aide.executors.ray_driver import RayExecutor
from pytest_aide.guards.baseline import Baseline
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


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def nodes() -> Iterator[Cluster]:
    """A head without CPUs (it runs nothing) and two worker nodes with one CPU each."""
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 0, "gcs_server_port": _free_port(), "include_dashboard": False})
    for name in ("a", "b"):
        cluster.add_node(num_cpus=1, resources={f"node_{name}": 1})
    ray.init(address=cluster.address, log_to_driver=False)
    yield cluster
    ray.shutdown()
    cluster.shutdown()


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
