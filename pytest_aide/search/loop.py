"""AIDE's tree search over candidates: draft, debug, improve.

The policy is AIDE's: draft independent rewrites of the original until there are enough
drafts; then, with probability ``debug_prob``, debug a buggy leaf whose debug chain is not
too deep; otherwise improve the best good node. Every node is evaluated, judged, put in the
journal, and the journal is saved before the next step, so a killed run loses one step.
"""

from __future__ import annotations

import dataclasses
import math
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pytest_aide.evaluation.evaluator import Evaluation, Evaluator
from pytest_aide.evaluation.speed import comparable, difference
from pytest_aide.executors.base import Executor
from pytest_aide.journal import BUGGY, GOOD, TAMPERED, Journal, Node, Usage
from pytest_aide.metrics import resolve
from pytest_aide.proposers.base import (
    ObjectiveInfo,
    Proposal,
    ProposalRequest,
    Proposer,
    ProposerError,
    ProposerRequestError,
    SearchExhausted,
)
from pytest_aide.search.judge import LOCATION_STATS, SECOND_LOOK_VERDICTS, is_better, judge
from pytest_aide.search.noise import MIN_SAMPLES
from pytest_aide.search.objective import ObjectiveError, score
from pytest_aide.study import Objective, Study

MAX_FAILED_REQUESTS = 3
#: Times a candidate and the best are measured again side by side when the machine's speed
#: changed between their measurements, before giving up on comparing them.
MAX_REMEASURES = 4
DUPLICATE = "candidate is identical to node"


class BaselineError(Exception):
    """The original code does not pass or measure; the search cannot start."""


@dataclass
class Policy:
    """AIDE's choice of the next operator and parent node."""

    drafts: int
    debug_prob: float
    max_debug_depth: int
    rng: random.Random = field(default_factory=random.Random)

    def next(self, journal: Journal, pending: Sequence[Node] = ()) -> tuple[str, Node]:
        """The next operator and parent. ``pending``: nodes already requested but not yet in
        the journal (a parallel run): their drafts count, and their parents are not leaves."""
        nodes = journal.nodes[1:]
        drafts = sum(1 for n in [*nodes, *pending] if n.operator == "draft")
        if drafts < self.drafts:
            return "draft", journal.root
        if self.rng.random() < self.debug_prob:
            taken = {n.parent for n in pending}
            debuggable = [
                n for n in nodes
                if n.status == BUGGY and n.code and not n.error.startswith(DUPLICATE)
                and not journal.children(n.id) and n.id not in taken
                and n.debug_depth < self.max_debug_depth
            ]
            if debuggable:
                return "debug", self.rng.choice(debuggable)
        best = journal.best or journal.root
        return "improve", best


@dataclass
class SearchContext:
    """What the search needs besides the journal: how to propose, run and report."""

    study: Study
    #: Runs the baseline and re-measurements: an Evaluator, or with several workers an
    #: Executor, whose ``evaluate`` measures alone (evaluation/executor.py).
    evaluator: Evaluator | Executor
    proposer: Proposer
    run_dir: Path
    original_code: str
    test_sources: dict[str, str]
    instructions: str = ""
    budget_usd: float | None = None
    on_step: Callable[[Node], None] = lambda node: None


class Search:
    def __init__(self, context: SearchContext, journal: Journal, policy: Policy) -> None:
        self.context = context
        self.journal = journal
        self.policy = policy
        self.objectives: list[Objective] = context.study.objectives
        self.guards: list[str] = []
        self.skipped_guards: list[str] = []
        self.output_metrics: list[str] = []  # metrics read from printed lines
        self.stop_reason = ""
        self.exhausted = False  # the proposer had nothing new: more steps would add none
        self.last_request_failed = False

    @property
    def journal_path(self) -> Path:
        return self.context.run_dir / "journal.json"

    # -- evaluation ---------------------------------------------------------------------

    def _evaluate(self, node: Node, guards: list[str] | None = None) -> Evaluation:
        started = time.perf_counter()
        workdir = self.context.run_dir / "nodes" / f"{node.id:04d}"
        evaluation = self.context.evaluator.evaluate(node.code, workdir)
        node.duration = time.perf_counter() - started
        self._judge(node, evaluation, self.guards if guards is None else guards)
        return evaluation

    def _judge(self, node: Node, evaluation: Evaluation, guards: list[str]) -> None:
        judgement = judge(evaluation, self.objectives, guards)
        node.status = judgement.status
        node.metrics = judgement.metrics
        node.samples = judgement.samples
        node.outcomes = judgement.outcomes
        node.error = judgement.error
        node.speed = evaluation.speed
        if node.status == GOOD:
            baseline = self.journal.root.metrics if self.journal.nodes else None
            try:
                node.objective = score(self.objectives, node.metrics, baseline)
            except ObjectiveError as exc:
                node.status, node.error = BUGGY, str(exc)

    def baseline(self) -> Node:
        """Evaluate the original code as the root; raise BaselineError when it cannot be.

        Guard tests that the original code skips or xfails (a GPU-only test on a CPU
        machine, say) guard nothing here and are left out; every other test must pass.
        """
        node = Node(id=0, parent=None, step=0, operator="baseline", plan="original code",
                    code=self.context.original_code, started=time.time())
        marked = {o.nodeid for o in self.objectives}
        evaluation = self._evaluate(node, self.context.study.nodeids)
        self.skipped_guards = [
            n for n in self.context.study.nodeids
            if n not in marked and evaluation.outcome(n) in {"skipped", "xfailed"}
        ]
        self.output_metrics = [
            o.metric for o in self.objectives
            if (result := evaluation.tests.get(o.nodeid))
            and resolve(result.measurement, o.metric)[1] == "output"
        ]
        if self.skipped_guards:
            kept = [n for n in self.context.study.nodeids if n not in self.skipped_guards]
            self._judge(node, evaluation, kept)
        if node.status != GOOD:
            raise BaselineError(_baseline_message(node))
        too_few = [
            f"{o.nodeid} recorded {len(node.samples[o.nodeid])} round(s)"
            for o in self.objectives
            if o.metric in LOCATION_STATS and 0 < len(node.samples.get(o.nodeid, [])) < MIN_SAMPLES
        ]
        if too_few:
            raise BaselineError(
                "; ".join(too_few) + f": with fewer than {MIN_SAMPLES} rounds no change can be "
                "told from noise, so no candidate could ever count as faster. Let "
                "pytest-benchmark run more rounds (e.g. benchmark.pedantic(..., rounds=10))."
            )
        self.guards = [n for n, outcome in node.outcomes.items() if outcome == "passed"]
        self.journal.nodes.append(node)
        self.journal.best_id = 0
        self.journal.save(self.journal_path)
        self.context.proposer.observe(node, None)
        self.context.on_step(node)
        return node

    def resume_state(self) -> None:
        """Rebuild what the loop needs from a loaded journal (guards, proposer memory)."""
        root = self.journal.root
        self.guards = [n for n, outcome in root.outcomes.items() if outcome == "passed"]
        for node in self.journal.nodes:
            self.context.proposer.observe(node, None)

    # -- the loop -------------------------------------------------------------------------

    def request(self, operator: str, parent: Node, step: int, steps: int) -> ProposalRequest:
        """What the proposer is asked, from the journal as it stands now."""
        best = self.journal.best
        infos = [
            ObjectiveInfo(
                nodeid=o.nodeid, metric=o.metric, maximize=o.maximize,
                baseline=self.journal.root.metrics.get(o.nodeid),
                best=best.metrics.get(o.nodeid) if best else None,
            )
            for o in self.objectives
        ]
        return ProposalRequest(
            operator=operator,
            parent=parent,
            target_path=self.journal.target,
            module=self.journal.module,
            original_code=self.context.original_code,
            test_sources=self.context.test_sources,
            objectives=infos,
            memory=list(self.journal.nodes),
            instructions=self.context.instructions,
            error_output=parent.error if operator == "debug" else "",
            step=step,
            steps=steps,
        )

    def step(self, step: int, steps: int) -> Node | None:
        """One proposal, judged and journaled; None when the proposer has nothing new."""
        node, parent = self.new_node(step)
        try:
            proposal = self.propose(node, parent, steps)
        except SearchExhausted as exc:
            self.stop_reason = f"stopped early: {exc}"
            self.exhausted = True
            return None
        if proposal is not None:
            self._check_and_evaluate(node)
        self.commit(node, proposal)
        return node

    # The step's parts, which search/parallel.py also runs, some of them in other threads.

    def new_node(self, step: int, pending: Sequence[Node] = ()) -> tuple[Node, Node]:
        """The next node as the policy chooses it (no plan or code yet), and its parent."""
        operator, parent = self.policy.next(self.journal, pending)
        node = Node(id=step, parent=parent.id, step=step, operator=operator,
                    plan="", code="", started=time.time(),
                    debug_depth=parent.debug_depth + 1 if operator == "debug" else 0)
        return node, parent

    def propose(self, node: Node, parent: Node, steps: int,
                request: ProposalRequest | None = None) -> Proposal | None:
        """Ask the proposer for ``node``'s code. A failed proposal makes the node buggy (and
        returns None); SearchExhausted passes through. Touches nothing but ``node``."""
        proposal, self.last_request_failed = self.propose_into(
            node, request or self.request(node.operator, parent, node.step, steps)
        )
        return proposal

    def propose_into(self, node: Node, request: ProposalRequest) -> tuple[Proposal | None, bool]:
        """``propose`` without touching the search (safe in another thread): the proposal,
        and whether the request itself failed (ProposerRequestError)."""
        proposal: Proposal | None = None
        failed = False
        began = time.perf_counter()
        try:
            proposal = self.context.proposer.propose(request)
        except ProposerError as exc:
            node.status, node.error = BUGGY, f"proposal failed: {exc}"
            failed = isinstance(exc, ProposerRequestError)
            node.plan = "(no proposal)"
            usage = getattr(exc, "usage", None)
            if isinstance(usage, Usage):
                node.usage = usage
        node.propose_seconds = time.perf_counter() - began
        if proposal is not None:
            node.plan, node.code, node.usage = proposal.plan, proposal.code, proposal.usage
        return proposal, failed

    def commit(self, node: Node, proposal: Proposal | None) -> None:
        """Journal a judged node: compare it with the best, save, tell the proposer, report."""
        self.journal.nodes.append(node)
        if node.status == GOOD:
            best = self.journal.best or self.journal.root
            better, why = self._compare(node, best)
            if better:
                self.journal.best_id = node.id
            elif why not in {"not better", ""}:
                node.error = why
        self.journal.save(self.journal_path)
        self.context.proposer.observe(node, proposal)
        self.context.on_step(node)

    def precheck(self, node: Node, earlier: Sequence[Node] = ()) -> bool:
        """True when ``node`` must be evaluated; else it is judged here without running: a
        duplicate of a journaled node (or of one in ``earlier``), code that does not
        compile, or code that forges a metric read from the output."""
        duplicate = next((n for n in [*self.journal.nodes, *earlier] if n.code == node.code),
                         None)
        if duplicate is not None:
            node.status = BUGGY
            node.error = f"{DUPLICATE} {duplicate.id}: nothing changed"
            return False
        try:
            compile(node.code, self.journal.target, "exec")
        except SyntaxError as exc:
            node.status = BUGGY
            node.error = f"candidate does not compile: {exc.msg} (line {exc.lineno})"
            return False
        forged = forges_output_metric(node.code, self.context.original_code, self.output_metrics)
        if forged:
            node.status = TAMPERED
            node.error = forged
            return False
        return True

    def judge_evaluation(self, node: Node, evaluation: Evaluation) -> None:
        """``node``'s verdict on an evaluation run elsewhere (search/parallel.py)."""
        self._judge(node, evaluation, self.guards)

    def _check_and_evaluate(self, node: Node) -> None:
        if self.precheck(node):
            self._evaluate(node)

    def _compare(self, node: Node, best: Node) -> tuple[bool, str]:
        """``is_better``, on measurements that may be compared (``_comparable``).

        A timed candidate measured while the machine ran at another speed than when the best
        was measured (see speed.py), unless it won on a machine no faster or lost on one no
        slower, is measured again next to the best, alternately, until the two may be
        compared; the candidate keeps the measurement that was compared.
        A timed candidate faster than the best, but within noise, or no faster on average
        though its typical round is, is given one second look next to the best
        (``SECOND_LOOK_VERDICTS``): one noisy pair of processes hides a real speedup often
        enough (``benchmarks/bench_noise.py``), and the confirmation, not this screen,
        guards what is written.
        """
        timed = [o.nodeid for o in self.objectives
                 if o.metric in LOCATION_STATS and node.samples.get(o.nodeid)]
        if not timed:
            return is_better(node, best, self.objectives)
        if _comparable(node, best, timed):
            better, first = is_better(node, best, self.objectives)
            if first not in SECOND_LOOK_VERDICTS:
                return better, first
            second, why = self._measure_again(node, best, timed, second_look=first)
            return second, "" if second else f"{first}; measured again next to the best: {why}"
        return self._measure_again(node, best, timed)

    def _measure_again(self, node: Node, best: Node, timed: list[str],
                       second_look: str = "") -> tuple[bool, str]:
        """The candidate and the best measured side by side until a pair may be compared
        (at most ``MAX_REMEASURES`` pairs), then ``is_better`` on that pair. The candidate
        takes the compared measurement, unless this is a ``second_look`` (the first verdict,
        one of ``SECOND_LOOK_VERDICTS``) that it lost: its first, comparable measurement
        stays."""
        changed = difference(best.speed, node.speed)
        for attempt in range(1, MAX_REMEASURES + 1):
            pair = self._measure_side_by_side(node, best, attempt)
            if isinstance(pair, str):
                return False, pair
            candidate, reference = pair
            if _comparable(candidate, reference, timed):
                better, why = is_better(candidate, reference, self.objectives)
                if better or not second_look:
                    node.metrics, node.samples = candidate.metrics, candidate.samples
                    node.objective, node.speed = candidate.objective, candidate.speed
                    node.remeasured = attempt
                    node.remeasure_reason = SECOND_LOOK_VERDICTS.get(second_look, "")
                if not better and why == "not better" and not second_look:
                    why = "not better than the best when measured again next to it"
                return better, why
            changed = difference(reference.speed, candidate.speed)
        return False, (f"not compared: the machine's speed changed ({changed}) during each of "
                       f"{MAX_REMEASURES + (not second_look)} measurements next to the best")

    def _measure_side_by_side(
        self, node: Node, best: Node, attempt: int
    ) -> tuple[Node, Node] | str:
        """(candidate, best) measured again, one after the other (which first alternates);
        only the marked tests run, since the candidate already passed its guards."""
        nodeids = [o.nodeid for o in self.objectives]
        measured = {}
        sides = [("best", best), ("candidate", node)]
        for label, source in sides if attempt % 2 else reversed(sides):
            workdir = self.context.run_dir / "nodes" / f"{node.id:04d}-again{attempt}-{label}"
            evaluation = self.context.evaluator.evaluate(source.code, workdir, nodeids=nodeids)
            again = dataclasses.replace(source, samples={}, metrics={}, objective=None)
            self._judge(again, evaluation, [])
            if again.status != GOOD:
                return (f"the {label} did not pass when measured again next to the "
                        f"{'best' if label == 'candidate' else 'candidate'}: {again.error[:300]}")
            measured[label] = again
        return measured["candidate"], measured["best"]

    def run(self, steps: int) -> None:
        """Propose until the journal holds ``steps`` proposals, or a stop condition."""
        failed_requests = 0
        while len(self.journal.nodes) - 1 < steps:
            if self.step(len(self.journal.nodes), steps) is None:
                break
            failed_requests = failed_requests + 1 if self.last_request_failed else 0
            if self.should_stop(failed_requests):
                break

    def should_stop(self, failed_requests: int) -> bool:
        """After a committed step: too many failed requests in a row, or the budget spent
        (``stop_reason`` says which)."""
        if failed_requests >= MAX_FAILED_REQUESTS:
            self.stop_reason = (
                f"stopped after {MAX_FAILED_REQUESTS} failed proposal requests in a row"
            )
            return True
        cost = self.journal.total_usage().cost_usd
        if self.context.budget_usd is not None and cost is not None and (
            cost >= self.context.budget_usd
        ):
            self.stop_reason = (
                f"stopped: estimated cost ${cost:.4f} reached the budget "
                f"${self.context.budget_usd:.4f}"
            )
            return True
        return False


def forges_output_metric(code: str, original: str, metrics: list[str]) -> str:
    """A reason when the candidate adds text that could print a ``metric: value`` line.

    A metric read from the captured output is only as honest as what prints it: a candidate
    must not be able to print the line itself.
    """
    for metric in metrics:
        pattern = re.compile(rf"(^|[^\w.-]){re.escape(metric)}\s*[:=]", re.MULTILINE)
        if len(pattern.findall(code)) > len(pattern.findall(original)):
            return (f"the candidate adds text that prints the metric line '{metric}: ...' "
                    "(the metric is read from the test's output)")
    return ""


def _comparable(node: Node, best: Node, timed: list[str]) -> bool:
    """``speed.comparable`` for a candidate against the best."""
    changes = [_relative(node.metrics.get(n), best.metrics.get(n)) for n in timed]
    won = (None if node.objective is None or best.objective is None
           else node.objective > best.objective)
    return comparable(best.speed, node.speed, changes, won)


def _relative(value: float | None, reference: float | None) -> float:
    """``value`` against ``reference`` (-0.8: 80% lower); NaN when either is unusable."""
    if value is None or reference is None or reference <= 0:
        return math.nan
    return value / reference - 1


def _baseline_message(node: Node) -> str:
    what = "is tampered" if node.status == TAMPERED else "does not pass or measure"
    return f"the original code {what}, so there is nothing to improve from:\n{node.error}"
