"""The search with two workers: the serial run's journal, in order, faster. One loop serves
both: with one worker it is the serial run."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field

import pytest

from pytest_aide.evaluation.evaluator import Evaluator
from pytest_aide.executors.local import LocalExecutor
from pytest_aide.executors.slots import plan_slots
from pytest_aide.journal import Journal, Node
from pytest_aide.proposers.base import Proposal, ProposalRequest, ProposerError
from pytest_aide.search.loop import Policy, Search, SearchContext
from pytest_aide.study import Objective, Study, Target

SPEED = "test_slow.py::test_speed"


@dataclass
class ByStep:
    """The same proposal for the same step, whatever order the requests arrive in."""

    codes: dict[int, str]
    name: str = "by-step"
    observed: list[int] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight: int = 0
    concurrent: bool = True
    delay: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def propose(self, request: ProposalRequest) -> Proposal:
        with self._lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            time.sleep(self.delay)
            code = self.codes[request.step]
            if code == "FAIL":
                raise ProposerError("the model said nothing useful")
            return Proposal(plan=f"plan {request.step}", code=code)
        finally:
            with self._lock:
                self.in_flight -= 1

    def observe(self, node: Node, proposal: Proposal | None) -> None:
        self.observed.append(node.id)


def make_search(project: pytest.Pytester, proposer: ByStep, run: str, workers: int = 1):
    path = project.path / "slow.py"
    study = Study(
        target=Target("slow", path),
        objectives=[Objective(SPEED, "mean", False)],
        guard_nodeids=[f"test_slow.py::test_correct[{n}]" for n in (0, 1, 7, 64, 100)],
        test_files=[project.path / "test_slow.py"],
    )
    journal = Journal(run_id=run, target="slow.py", module="slow", objectives=[],
                      original_sha256="")
    reported: list[int] = []
    context = SearchContext(
        # the log dir is not the project: the journal is written while evaluations run
        study=study, proposer=proposer,
        executor=LocalExecutor(Evaluator(study, project.path,
                                         protected_exclude=[project.path / ".aide"]),
                               plan_slots(workers) if workers > 1 else []),
        run_dir=project.path / ".aide" / run, original_code=path.read_text(),
        test_sources={"test_slow.py": (project.path / "test_slow.py").read_text()},
        on_step=lambda node: reported.append(node.id),
    )
    policy = Policy(drafts=2, debug_prob=0.0, max_debug_depth=1, rng=random.Random(0))
    return Search(context, journal, policy), journal, reported


def test_two_workers_give_the_serial_verdicts_in_order(slow_project) -> None:
    original = (slow_project.path / "slow.py").read_text()
    fast = original.replace("CHUNK = 2", "CHUNK = 16")
    wrong = original.replace("CHUNK = 2", "CHUNK = 64").replace("total +=", "total -=")
    codes = {1: wrong, 2: fast, 3: "def broken(:\n", 4: "FAIL", 5: fast,
             6: original.replace("CHUNK = 2", "CHUNK = 1")}
    serial, serial_journal, _ = make_search(slow_project, ByStep(dict(codes)), "serial")
    serial.measure_baseline()
    serial.run(6)
    assert serial.context.executor.workers == 1

    proposer = ByStep(dict(codes), delay=0.3)
    search, journal, reported = make_search(slow_project, proposer, "parallel", workers=2)
    search.measure_baseline()
    search.run(6)

    def verdicts(j: Journal) -> list[tuple[int, int, str, str, str]]:
        return [(n.id, n.step, n.operator, n.status, n.error.split(":")[0]) for n in j.nodes]

    assert verdicts(journal) == verdicts(serial_journal)
    assert journal.best_id == serial_journal.best_id == 2
    assert reported == proposer.observed == list(range(7))  # ordered, each node once
    assert "identical to node 2" in journal.nodes[5].error
    assert proposer.most_in_flight == 3  # requests were pipelined: N + 1 at most
    saved = Journal.load(slow_project.path / ".aide" / "parallel" / "journal.json")
    assert [n.id for n in saved.nodes] == list(range(7))
    nodes = slow_project.path / ".aide" / "parallel" / "nodes"
    # the wrong candidate's guards failed, so its timed test never held the machine
    assert not (nodes / "0001-timed").exists() and (nodes / "0002-timed").is_dir()
