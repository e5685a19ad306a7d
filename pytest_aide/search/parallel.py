"""The search with several evaluations at once, and proposals requested while they run.

One thread, the caller's, owns the journal: it asks the policy for each node (from the
journal as it stands, the nodes in flight counted), hands proposals and evaluations to
threads, and commits finished nodes in id order: judged, compared with the best, saved,
observed, reported. So node ids, journal writes and step lines come in the order of a
serial run, and a node's verdict is the one a serial run of the same proposals gives it
(a duplicate of an earlier node is one even when both were in flight). At most N
evaluations and N + 1 proposal requests are in flight.

An interrupt (Ctrl-C) kills every child in flight and waits for their evaluations to end
(each restores the project), and the journal holds only committed nodes: a resumed run
re-proposes what was in flight. A SIGKILL loses the nodes in flight and nothing else.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from typing import Any

from pytest_aide.evaluation.evaluator import Evaluation
from pytest_aide.executors.base import Executor
from pytest_aide.journal import BUGGY, Node
from pytest_aide.proposers.base import Proposal, ProposalRequest, SearchExhausted
from pytest_aide.search.judge import LOCATION_STATS
from pytest_aide.search.loop import DUPLICATE, Search
from pytest_aide.search.measure import ISOLATED, evaluate_candidate

PROPOSING, READY, EVALUATING, DONE = "proposing", "ready", "evaluating", "done"
#: How long the coordinator sleeps between looks when nothing finishes (Ctrl-C is seen
#: at once either way).
POLL_SECONDS = 0.5


@dataclass
class Flight:
    """A node between its request and its commit."""

    node: Node
    stage: str = PROPOSING
    future: Future[Any] | None = None
    proposal: Proposal | None = None
    request_failed: bool = False
    exhausted: str = ""  # SearchExhausted's message: no node at all
    evaluated: bool = False


class OneAtATime:
    """A proposer that is not safe to call from several threads (the tuner's Optuna study
    and bookkeeping), called one call at a time; its asks still run ahead of results, as
    Optuna's ask-and-tell interface allows."""

    def __init__(self, proposer: Any) -> None:
        self.proposer = proposer
        self.name = getattr(proposer, "name", "")
        self._lock = threading.Lock()

    def propose(self, request: ProposalRequest) -> Proposal:
        with self._lock:
            return self.proposer.propose(request)

    def observe(self, node: Node, proposal: Proposal | None) -> None:
        with self._lock:
            self.proposer.observe(node, proposal)


def spawn(function: Callable[..., Any], *args: Any) -> Future[Any]:
    """``function(*args)`` in a daemon thread: a proposal request still waiting on a slow
    provider when the run is interrupted must not keep the process alive."""
    future: Future[Any] = Future()

    def body() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(function(*args))
        except BaseException as exc:  # handed to the coordinator, which re-raises bugs
            future.set_exception(exc)

    threading.Thread(target=body, daemon=True, name=f"aide-{function.__name__}").start()
    return future


class ParallelSearch:
    """Runs ``search``'s steps with up to ``executor.workers`` evaluations in flight."""

    def __init__(self, search: Search, executor: Executor, measure: str = ISOLATED) -> None:
        self.search = search
        self.executor = executor
        self.workers = executor.workers
        self.measure = measure

    @property
    def timed(self) -> list[str]:
        """Objectives whose baseline recorded benchmark rounds: measured alone (measure.py)."""
        root = self.search.journal.root
        return [o.nodeid for o in self.search.objectives
                if o.metric in LOCATION_STATS and root.samples.get(o.nodeid)]

    def run(self, steps: int) -> None:
        context = self.search.context
        proposer = context.proposer
        if not getattr(proposer, "concurrent", False):
            context.proposer = OneAtATime(proposer)
        try:
            self._run(steps)
        finally:
            context.proposer = proposer

    def _run(self, steps: int) -> None:
        journal = self.search.journal
        flights: dict[int, Flight] = {}
        next_id = len(journal.nodes)
        failed_requests = 0
        stopping = False
        try:
            while True:
                while (not stopping and next_id <= steps
                       and self._count(flights, PROPOSING, READY) < self.workers + 1):
                    flights[next_id] = self._request(next_id, steps, flights)
                    next_id += 1
                self._start_evaluations(flights)
                while flights and flights[min(flights)].stage == DONE:
                    flight = flights.pop(min(flights))
                    if flight.exhausted:
                        self.search.stop_reason = f"stopped early: {flight.exhausted}"
                        self.search.exhausted = True
                        stopping = True
                        self._drop(flights)
                        break
                    self._commit(flight)
                    failed_requests = failed_requests + 1 if flight.request_failed else 0
                    stopping = self.search.should_stop(failed_requests) or stopping
                if not flights:
                    return
                self._collect(flights)
        except BaseException:
            self._drop(flights)
            raise

    # -- the coordinator's parts ------------------------------------------------------------

    def _request(self, node_id: int, steps: int, flights: dict[int, Flight]) -> Flight:
        pending = [f.node for f in flights.values()]
        node, parent = self.search.new_node(node_id, pending)
        request = self.search.request(node.operator, parent, node.step, steps)
        flight = Flight(node)
        flight.future = spawn(self._propose, flight, request)
        return flight

    def _propose(self, flight: Flight, request: ProposalRequest) -> None:
        try:
            flight.proposal, flight.request_failed = self.search.propose_into(
                flight.node, request
            )
        except SearchExhausted as exc:
            flight.exhausted = str(exc)

    def _start_evaluations(self, flights: dict[int, Flight]) -> None:
        for node_id in sorted(flights):
            flight = flights[node_id]
            if flight.stage != READY:
                continue
            if flight.proposal is None or flight.exhausted:
                flight.stage = DONE
                continue
            earlier = [f.node for i, f in flights.items() if i < node_id and f.node.code]
            if not self.search.precheck(flight.node, earlier):
                flight.stage = DONE
                continue
            if self._count(flights, EVALUATING) >= self.workers:
                continue
            flight.stage = EVALUATING
            flight.future = spawn(self._evaluate, flight.node)

    def _evaluate(self, node: Node) -> Evaluation:
        started = time.perf_counter()
        search = self.search
        workdir = search.context.run_dir / "nodes" / f"{node.id:04d}"
        evaluation = evaluate_candidate(
            self.executor, node.code, workdir, search.context.study.nodeids, self.timed,
            search.guards, self.measure,
        )
        node.duration = time.perf_counter() - started
        return evaluation

    def _collect(self, flights: dict[int, Flight]) -> None:
        """Wait until something in flight finishes, then move it on."""
        running = [f.future for f in flights.values() if f.future is not None]
        if running:
            wait(running, timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
        for flight in flights.values():
            future = flight.future
            if future is None or not future.done():
                continue
            flight.future = None
            result = future.result()  # a bug in a thread is raised here, not lost
            if flight.stage == PROPOSING:
                flight.stage = READY
            elif flight.stage == EVALUATING:
                self.search.judge_evaluation(flight.node, result)
                flight.evaluated = True
                flight.stage = DONE

    def _commit(self, flight: Flight) -> None:
        node = flight.node
        if flight.evaluated:
            # An earlier node still in flight when this one started may have had its code.
            duplicate = next((n for n in self.search.journal.nodes if n.code == node.code), None)
            if duplicate is not None:
                node.status, node.error = BUGGY, f"{DUPLICATE} {duplicate.id}: nothing changed"
                node.metrics, node.samples, node.outcomes = {}, {}, {}
                node.objective, node.speed, node.duration = None, [], 0.0
        self.search.commit(node, flight.proposal)

    def _drop(self, flights: dict[int, Flight]) -> None:
        """Give up on every node in flight: kill their children, and wait until their
        evaluations have ended (and restored the project). Proposal requests are left to
        finish in their daemon threads; nothing reads them."""
        evaluating = [f.future for f in flights.values()
                      if f.stage == EVALUATING and f.future is not None]
        if evaluating:
            self.executor.abort()
            while wait(evaluating, timeout=1.0).not_done:
                self.executor.abort()  # one may have started a child since
        flights.clear()

    @staticmethod
    def _count(flights: dict[int, Flight], *stages: str) -> int:
        return sum(1 for f in flights.values() if f.stage in stages)
