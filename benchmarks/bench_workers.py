"""Several workers, measured side by side in one run on this machine.

1. Throughput: evaluations per minute of a correctness-heavy study (40 guard tests that
   compute, an untimed metric) with 1 and 2 local workers, with 2 workers on a local
   one-node Ray cluster of two CPUs, and with 2 workers on a local cluster of three nodes
   (a head without CPUs, two worker nodes of one CPU each: one evaluation on each). Goals:
   2 workers >= 1.6x one; Ray, on one node and on two, >= 0.8x the local executor with the
   same workers. The four are run in turn, twice, and the better of each pair is kept; both
   clusters stay up throughout, and the driver connects to each in its turn (connecting
   and starting the workers are not timed).
2. Honest timing: a timed metric (pytest-benchmark's mean of a pure-Python function)
   measured in slot 0 with the machine otherwise idle, against the same measured while an
   evaluation of the correctness-heavy study runs in slot 1 (what ``--aide-measure shared``
   does). Printed: the median and the spread (interquartile range over the median) of each,
   and how far the median moved. This is the figure behind the ``isolated`` default.

Run: ``python benchmarks/bench_workers.py [evaluations] [timed-repeats]`` (default 8, 12;
about five minutes on a 2-core machine). Needs Ray (``pip install 'pytest-aide[ray]'``).
"""

from __future__ import annotations

import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path

from pytest_aide.evaluation.evaluator import Evaluator
from pytest_aide.evaluation.sandbox import choose
from pytest_aide.executors.base import EvaluationRequest
from pytest_aide.executors.local import LocalExecutor
from pytest_aide.executors.slots import plan_slots
from pytest_aide.study import Objective, Study, Target

HEAVY_MODULE = """\
def collatz(n):
    steps = 0
    while n != 1:
        n = 3 * n + 1 if n % 2 else n // 2
        steps += 1
    return steps
"""
HEAVY_TESTS = """\
import pytest
from heavy import collatz


@pytest.mark.parametrize("start", range(40))
def test_collatz(start):
    assert all(collatz(n) >= 0 for n in range(1 + start * 2000, 1 + (start + 1) * 2000))


def test_score(record_property):
    record_property("score", collatz(27))
"""
TIMED_MODULE = "def work(n):\n    return sum(i * i for i in range(n))\n"
TIMED_TESTS = """\
from work import work


def test_speed(benchmark):
    benchmark.pedantic(work, args=(20000,), rounds=20, iterations=3)
"""


def heavy_study(root: Path) -> Study:
    root.mkdir(parents=True, exist_ok=True)
    (root / "heavy.py").write_text(HEAVY_MODULE)
    (root / "test_heavy.py").write_text(HEAVY_TESTS)
    (root / "pytest.ini").write_text("[pytest]\npythonpath = .\n")
    guards = [f"test_heavy.py::test_collatz[{n}]" for n in range(40)]
    return Study(Target("heavy", root / "heavy.py"),
                 [Objective("test_heavy.py::test_score", "score", True)], guards,
                 [root / "test_heavy.py"])


def candidates(count: int) -> list[str]:
    """Distinct candidates (every one evaluated in full, as the search would)."""
    return [HEAVY_MODULE + f"\nVARIANT = {index}\n" for index in range(count)]


def throughput(executor, root: Path, count: int, workers: int, label: str) -> float:
    """Evaluations per minute of ``count`` candidates, ``workers`` at a time."""
    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(
            lambda item: executor.run_shared(EvaluationRequest(
                item[1], root / ".aide" / label / f"{item[0]:03d}", None)),
            enumerate(candidates(count)),
        ))
    seconds = time.perf_counter() - started
    for evaluation in results:
        assert evaluation.completed and not evaluation.tampered, (
            evaluation.tampered, evaluation.status, evaluation.output_tail[-2000:])
        assert evaluation.outcome("test_heavy.py::test_collatz[39]") == "passed"
    return 60 * count / seconds


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def cluster(head_cpus: int, worker_nodes: int) -> Iterator[str]:
    """A local Ray cluster with ports of its own (never another one on this machine): a
    head with ``head_cpus`` CPUs and ``worker_nodes`` nodes of one CPU each; its address."""
    from ray.cluster_utils import Cluster

    nodes = Cluster(initialize_head=True, head_node_args={
        "num_cpus": head_cpus, "gcs_server_port": free_port(), "include_dashboard": False})
    try:
        for _ in range(worker_nodes):
            nodes.add_node(num_cpus=1)
        nodes.wait_for_nodes()
        yield nodes.address
    finally:
        nodes.shutdown()


@contextmanager
def on_ray(address: str, study: Study, root: Path) -> Iterator[object]:
    """A RayExecutor of two workers, connected to ``address`` and warmed up (the workers
    on every node started): what a run has once it has connected."""
    import ray

    from pytest_aide.executors.ray_driver import RayExecutor

    ray.init(address=address, include_dashboard=False, log_to_driver=False)
    try:
        # Ray initialized here: the project is reached at its own path (one machine); its
        # own evaluator: fingerprints taken in Ray's workers (their environment) are
        # compared with each other, as in a run on Ray
        executor = RayExecutor(evaluator=Evaluator(study, root, sandbox=choose("auto").sandbox,
                                                   protected_exclude=[root / ".aide"]),
                               ray=ray, workers=2, shared_fs=True)
        throughput(executor, root, 2, 2, f"warm-up-{time.monotonic_ns()}")
        yield executor
    finally:
        ray.shutdown()


def nodes_used(executor) -> set[str]:
    """The Ray nodes a RayExecutor's evaluations ran on (their placements' last lines)."""
    return {lines[-1].split(" ran on node ")[1].split()[0]
            for lines in executor.placements.values()}


def measure_throughput(root: Path, count: int) -> dict[str, float]:
    study = heavy_study(root / "heavy")
    sandbox = choose("auto").sandbox
    evaluator = Evaluator(study, root / "heavy", sandbox=sandbox,
                          protected_exclude=[root / "heavy" / ".aide"])
    one = LocalExecutor(evaluator, plan_slots(1))
    two = LocalExecutor(evaluator, plan_slots(2))
    best: dict[str, float] = {}
    with ExitStack() as clusters:
        one_node = clusters.enter_context(cluster(head_cpus=2, worker_nodes=0))
        two_nodes = clusters.enter_context(cluster(head_cpus=0, worker_nodes=2))
        for round_ in range(2):
            for label, executor, address in (("1 local worker", one, None),
                                             ("2 local workers", two, None),
                                             ("2 workers, Ray, 1 node", None, one_node),
                                             ("2 workers, Ray, 2 nodes", None, two_nodes)):
                workers = 1 if executor is one else 2
                name = f"{label.replace(' ', '-').replace(',', '')}-{round_}"
                with ExitStack() as connection:
                    if address is not None:
                        executor = connection.enter_context(
                            on_ray(address, study, root / "heavy"))
                    rate = throughput(executor, root / "heavy", count, workers, name)
                if address == two_nodes:
                    assert len(nodes_used(executor)) == 2, executor.placements
                best[label] = max(best.get(label, 0.0), rate)
    return best


def keep_busy(evaluator: Evaluator, workdirs: Path, slot, stop: threading.Event) -> None:
    """Evaluations of the heavy study in ``slot``, one after another, until ``stop``."""
    run = 0
    while not stop.is_set():
        evaluator.evaluate(HEAVY_MODULE, workdirs / str(run), slot=slot, baseline=None)
        run += 1


def measure_spread(root: Path, repeats: int) -> dict[str, list[float]]:
    """Means of the timed test in slot 0, alone and with slot 1 running the heavy study."""
    timed_root = root / "timed"
    timed_root.mkdir(parents=True, exist_ok=True)
    (timed_root / "work.py").write_text(TIMED_MODULE)
    (timed_root / "test_work.py").write_text(TIMED_TESTS)
    (timed_root / "pytest.ini").write_text("[pytest]\npythonpath = .\n")
    speed = "test_work.py::test_speed"
    study = Study(Target("work", timed_root / "work.py"), [Objective(speed, "mean", False)],
                  [], [timed_root / "test_work.py"])
    sandbox = choose("auto").sandbox
    timed = Evaluator(study, timed_root, sandbox=sandbox,
                      protected_exclude=[timed_root / ".aide"])
    heavy = Evaluator(heavy_study(root / "busy"), root / "busy", sandbox=sandbox,
                      protected_exclude=[root / "busy" / ".aide"])
    slots = plan_slots(2)
    means: dict[str, list[float]] = {"alone": [], "other core busy": []}
    for index in range(repeats):
        for label in ("alone", "other core busy") if index % 2 else ("other core busy", "alone"):
            stop = threading.Event()
            busy = None
            if label != "alone":
                busy = threading.Thread(target=keep_busy,
                                        args=(heavy, root / "busy" / ".aide" / str(index),
                                              slots[1], stop))
                busy.start()
                time.sleep(1.0)  # the busy evaluation is past its start-up
            try:
                evaluation = timed.evaluate(TIMED_MODULE,
                                            timed_root / ".aide" / f"{index}-{label[:5]}",
                                            slot=slots[0], baseline=None)
            finally:
                stop.set()
                if busy is not None:
                    busy.join()
            assert evaluation.completed, evaluation.output_tail[-2000:]
            means[label].append(evaluation.tests[speed].measurement.benchmark["mean"])
    return means


def spread(values: list[float]) -> float:
    q1, _, q3 = statistics.quantiles(values, n=4)
    return (q3 - q1) / statistics.median(values)


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 8
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 12
    with tempfile.TemporaryDirectory(prefix="aide-bench-workers-") as tmp:
        root = Path(tmp)
        rates = measure_throughput(root, count)
        means = measure_spread(root, repeats)
    one, two = rates["1 local worker"], rates["2 local workers"]
    ray_one_node, ray_two_nodes = rates["2 workers, Ray, 1 node"], rates["2 workers, Ray, 2 nodes"]
    print(f"throughput, correctness-heavy study (40 guard tests), {count} evaluations each, "
          "best of 2 rounds:")
    for label, rate in rates.items():
        print(f"  {label:<24} {rate:6.1f} evaluations/min")
    print(f"  2 local workers / 1: {two / one:.2f}x (goal >= 1.6x)")
    print(f"  Ray on 1 node / local, 2 workers each: {ray_one_node / two:.2f}x (goal >= 0.8x)")
    print(f"  Ray on 2 nodes / local, 2 workers each: {ray_two_nodes / two:.2f}x "
          "(goal >= 0.8x)")
    alone, shared = means["alone"], means["other core busy"]
    moved = statistics.median(shared) / statistics.median(alone) - 1
    print(f"timed metric (mean of a pure-Python function), {repeats} evaluations each, in "
          "slot 0:")
    print(f"  alone:           median {statistics.median(alone) * 1e3:.3f} ms, spread "
          f"(IQR/median) {spread(alone):.1%}, range {min(alone) * 1e3:.3f}.."
          f"{max(alone) * 1e3:.3f} ms")
    print(f"  other core busy: median {statistics.median(shared) * 1e3:.3f} ms, spread "
          f"(IQR/median) {spread(shared):.1%}, range {min(shared) * 1e3:.3f}.."
          f"{max(shared) * 1e3:.3f} ms")
    print(f"  median moved by {moved:+.1%} with the other core busy")


if __name__ == "__main__":
    main()
