"""Slots: disjoint cores and GPUs, children born pinned, measurements alone."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable

import pytest
from attacks import baseline_of

from pytest_aide.evaluation.evaluator import Evaluator
from pytest_aide.evaluation.placement import Slot, placed
from pytest_aide.executors.base import Gate
from pytest_aide.executors.slots import SlotError, measuring_slot, plan_slots
from pytest_aide.study import Objective, Study, Target


def test_slots_are_disjoint_and_cover_the_cores_and_gpus() -> None:
    slots = plan_slots(2, 2, cpus=[0, 1, 2, 3, 4], gpus=["0", "1", "2", "3"])
    assert [s.cpus for s in slots] == [(0, 1, 2), (3, 4)]
    assert [s.gpus for s in slots] == [("0", "1"), ("2", "3")]
    assert slots[1].environment() == {"CUDA_VISIBLE_DEVICES": "2,3"}
    assert Slot(0, (0,)).environment() == {}  # the user's CUDA_VISIBLE_DEVICES stays
    assert len(plan_slots(None, 1, cpus=list(range(8)), gpus=["0", "1", "2"])) == 3
    measuring = measuring_slot(slots)
    assert set(measuring.cpus) == {c for s in slots for c in s.cpus}
    assert measuring.gpus == ("0", "1")


@pytest.mark.parametrize("workers,gpus,fix", [
    (3, 0, "--aide-workers 2"), (2, 2, "--aide-workers 1"), (None, 4, "--aide-gpus-per-worker"),
])
def test_slots_that_do_not_fit_say_which_option_to_change(workers, gpus, fix) -> None:
    with pytest.raises(SlotError, match=fix):
        plan_slots(workers, gpus, cpus=[0, 1], gpus=["0", "1"])


def test_a_child_started_in_a_slot_runs_on_its_cores_and_gpus(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(mod="VALUE = 1\n")
    pytester.makepyfile(test_where='''
        import os
        import mod

        def test_where(record_property):
            record_property("cpus", "cpu " + str(sorted(os.sched_getaffinity(0))))
            record_property("gpus", "gpu " + str(os.environ.get("CUDA_VISIBLE_DEVICES")))
            assert mod.VALUE == 1
    ''')
    pytester.makeini("[pytest]\npythonpath = .\n")
    nodeid = "test_where.py::test_where"
    study = Study(target=Target("mod", pytester.path / "mod.py"),
                  objectives=[Objective(nodeid, "cpus", True)], guard_nodeids=[],
                  test_files=[pytester.path / "test_where.py"])
    evaluator = Evaluator(study, pytester.path)
    mine = sorted(os.sched_getaffinity(0))
    slot = Slot(0, (mine[-1],), ("7",))
    evaluation = evaluator.evaluate("VALUE = 1\n", pytester.path / "run", slot=slot, baseline=None)
    assert evaluation.outcome(nodeid) == "passed", evaluation.output_tail
    properties = evaluation.tests[nodeid].measurement.properties
    assert properties == {"cpus": f"cpu {[mine[-1]]}", "gpus": "gpu 7"}
    assert sorted(os.sched_getaffinity(0)) == mine  # the parent's thread is as it was


def test_placed_pins_only_the_calling_thread() -> None:
    mine = os.sched_getaffinity(0)
    seen: dict[str, set[int]] = {}
    one = sorted(mine)[:1]
    with placed(Slot(0, tuple(one))):
        seen["inside"] = os.sched_getaffinity(0)
        other = threading.Thread(target=lambda: seen.update(other=os.sched_getaffinity(0)))
        other.start()
        other.join()
    assert seen["inside"] == set(one)
    assert seen["other"] == set(one)  # a thread inherits its creator's affinity
    assert os.sched_getaffinity(0) == mine


def blocked_in(thread: threading.Thread, function: str) -> bool:
    """Whether ``thread`` is waiting on a condition inside ``function`` (its Python stack
    ends in ``threading``'s wait, with ``function`` below it): a thread's place, seen
    without sleeping for it."""
    frame = sys._current_frames().get(thread.ident or -1)
    if frame is None or frame.f_code.co_name != "wait":
        return False
    while frame is not None:
        if frame.f_code.co_name == function:
            return True
        frame = frame.f_back
    return False


def wait_until(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.001)


def test_a_measurement_waits_for_the_slots_to_drain_and_holds_back_new_loans() -> None:
    """Each step waits for the one before (events, and the threads' own places), so the order
    holds however slowly a loaded machine runs the threads."""
    gate = Gate(2)
    events: list[str] = []
    lock = threading.Lock()
    a_in, release_a, measuring_in, release_measure = (threading.Event() for _ in range(4))

    def log(what: str) -> None:
        with lock:
            events.append(what)

    def guard(name: str, inside: threading.Event | None, release: threading.Event | None
              ) -> None:
        with gate.slot():
            log(f"{name} start")
            if inside is not None and release is not None:
                inside.set()
                assert release.wait(60)
            log(f"{name} end")

    def measure() -> None:
        with gate.all():
            log("measure start")
            measuring_in.set()
            assert release_measure.wait(60)
            log("measure end")

    first = threading.Thread(target=guard, args=("a", a_in, release_a))
    measuring = threading.Thread(target=measure)
    late = threading.Thread(target=guard, args=("b", None, None))
    first.start()
    assert a_in.wait(60)
    measuring.start()
    # waiting for "a" to drain (or, were the gate broken, measuring already)
    wait_until(lambda: blocked_in(measuring, "all") or measuring_in.is_set())
    late.start()
    wait_until(lambda: blocked_in(late, "slot") or "b start" in events)
    assert gate.busy() == 1 and events == ["a start"]  # a slot is free, but "b" waits
    release_a.set()
    assert measuring_in.wait(60)
    assert gate.busy() == 2 and "b start" not in events  # held back while it measures
    release_measure.set()
    for thread in (first, measuring, late):
        thread.join(60)
    assert events == ["a start", "a end", "measure start", "measure end", "b start", "b end"]
    assert gate.busy() == 0


def test_slots_with_other_gpus_are_not_taken_for_tampering(pytester: pytest.Pytester) -> None:
    # the baseline sees GPU 0, a candidate in the second slot GPU 1: each slot's own
    # CUDA_VISIBLE_DEVICES is not an environment the candidate changed
    pytester.makepyfile(mod="VALUE = 1\n")
    pytester.makepyfile(test_mod="import mod\n\ndef test_value():\n    assert mod.VALUE == 1\n")
    pytester.makeini("[pytest]\npythonpath = .\n")
    nodeid = "test_mod.py::test_value"
    study = Study(target=Target("mod", pytester.path / "mod.py"), objectives=[],
                  guard_nodeids=[nodeid], test_files=[pytester.path / "test_mod.py"])
    evaluator = Evaluator(study, pytester.path)
    cpus = tuple(sorted(os.sched_getaffinity(0)))
    original = (pytester.path / "mod.py").read_text()
    baseline = evaluator.evaluate(original, pytester.path / "base", slot=Slot(0, cpus, ("0",)),
                                  baseline=None)
    assert baseline.completed and baseline.state
    # the candidate is compared with the baseline's fingerprints, environment included
    candidate = evaluator.evaluate(original + "# a candidate\n", pytester.path / "cand",
                                   slot=Slot(1, cpus, ("1",)), baseline=baseline_of(baseline))
    assert candidate.outcome(nodeid) == "passed" and candidate.tampered == []
