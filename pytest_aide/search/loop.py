"""AIDE's tree search over candidates, with one loop for one worker or many.

The search owns the journal. Its one loop (``Search.run``) asks the policy for each node
(from the journal as it stands, nodes in flight counted), hands proposals and evaluations to
threads, and commits finished nodes in id order: judged, compared with the best, saved,
observed, reported. With one worker one node is in flight at a time, exactly the serial
loop; with N, N evaluations and N + 1 proposal requests, and node ids, journal writes, step
lines and verdicts still come as a serial run of the same proposals gives them (a duplicate
of an earlier node is one even when both were in flight).

A node's step is a small API (``new_node``, ``request``, ``propose_into``, ``precheck``,
``evaluate_node``, ``judge_evaluation``, ``commit``) that only this loop drives. The journal is
saved after every commit, so a killed run loses the nodes in flight and nothing else; an
interrupt (Ctrl-C) kills every child in flight and waits for their evaluations to end (each
restores the project).
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import dataclass, field
from pathlib import Path

from pytest_aide.evaluation.evaluator import Evaluation
from pytest_aide.executors.base import Announcing, EvaluationRequest, Executor
from pytest_aide.guards import baseline as baselines
from pytest_aide.guards.baseline import Baseline, BaselineMissing
from pytest_aide.guards.replay import Call
from pytest_aide.guards.selection import GuardChoice, GuardMode, changed_functions, choose
from pytest_aide.journal import Journal, Node, Operator, Status, Usage
from pytest_aide.metrics import HotSpot, resolve
from pytest_aide.proposers.base import (
    ObjectiveInfo,
    Proposal,
    ProposalRequest,
    Proposer,
    ProposerError,
    ProposerRefused,
    ProposerRequestError,
    SearchExhausted,
    TargetFile,
)
from pytest_aide.search import moved
from pytest_aide.search.flight import Flight, OneAtATime, Stage, spawn
from pytest_aide.search.judge import LOCATION_STATS, judge, timed_objectives
from pytest_aide.search.measure import ISOLATED, evaluate_candidate
from pytest_aide.search.noise import MIN_SAMPLES
from pytest_aide.search.objective import ObjectiveError, score
from pytest_aide.search.policy import Policy
from pytest_aide.search.sameness import normal_form
from pytest_aide.search.screen import Screen
from pytest_aide.sources import Sources, SourcesError
from pytest_aide.study import Objective, Study
from pytest_aide.workspace import unencodable

MAX_FAILED_REQUESTS = 3
#: How long the loop sleeps between looks when nothing finishes (Ctrl-C is seen at once
#: either way).
POLL_SECONDS = 0.5

__all__ = ["BaselineError", "Policy", "Search", "SearchContext", "forges_output_metric"]


#: A guard's outcomes that fail a candidate: such guards run first for the next ones.
FAILED_OUTCOMES = frozenset({"failed", "error"})


#: Characters of guard-test source a function or class target's prompt may show (its
#: module's skeleton is about 6,000).
SYMBOL_TEST_SOURCE_BUDGET = 12_000


class BaselineError(Exception):
    """The original code does not pass or measure; the search cannot start."""


@dataclass
class SearchContext:
    """What the search needs besides the journal: how to propose, run and report."""

    study: Study
    #: Where evaluations run (executors/base.py); one local worker is the serial case.
    executor: Executor
    proposer: Proposer
    run_dir: Path
    original_code: str
    test_sources: dict[str, str]
    instructions: str = ""
    budget_usd: float | None = None
    on_step: Callable[[Node], None] = lambda node: None
    #: ``--aide-measure``: timed tests alone on the measuring place (isolated) or not.
    measure: str = ISOLATED
    #: ``--aide-guards``; with AUTO, ``guard_suite`` (files, relative to the rootdir) is what
    #: the guard probe runs on the original under coverage (guards/selection.py).
    guard_mode: GuardMode = GuardMode.FILES
    guard_suite: list[str] = field(default_factory=list)
    #: Replay the original's recorded answers against candidates, within this tolerance
    #: (None: canonical.py's defaults).
    compare: bool = True
    rtol: float | None = None
    atol: float | None = None
    #: Characters of test source the prompt may show (the guard tests, most specific first).
    test_source_budget: int = 60_000
    #: Reads a test file's source for the prompt (relative path -> text).
    read_test: Callable[[str], str] = lambda path: ""


class Search:
    def __init__(self, context: SearchContext, journal: Journal, policy: Policy) -> None:
        self.context = context
        self.journal = journal
        self.policy = policy
        self.objectives: list[Objective] = context.study.objectives
        proposer = context.proposer
        # in flight, proposals are requested from threads
        self.proposer = proposer if getattr(proposer, "concurrent", False) \
            else OneAtATime(proposer)
        #: What every candidate is held to; set by ``measure_baseline`` or ``resume``.
        self.baseline: Baseline | None = None
        #: How the guards were chosen, for the header.
        self.guard_choice: GuardChoice | None = None
        #: The guards each node's evaluation runs, by node id (``guards_of``).
        self._selected: dict[int, list[str]] = {}
        #: The target's functions each guard ran on the original (the probe's map): with a
        #: function target, the prompt shows the tests that ran it.
        self._guard_functions: dict[str, list[str]] = {}
        #: How many candidates each guard failed: they run first (``_cascade``).
        self._failures: Counter[str] = Counter()
        #: Each code's normal form (search/sameness.py), by its text.
        self._normal_forms: dict[str, str | None] = {}
        self.stop_reason = ""
        self.exhausted = False  # the proposer had nothing new: more steps would add none
        #: Proposals made in this session (a resumed run's earlier ones not counted): a
        #: provider's refusal before the first is a usage error, and none at all a failed run.
        self.proposed = 0
        #: Moves of the measuring place followed so far (search/moved.py), and what the
        #: summary says of them.
        self._moves = 0
        self.remeasured: list[str] = []

    @property
    def journal_path(self) -> Path:
        return self.context.run_dir / "journal.json"

    @property
    def guards(self) -> list[str]:
        """The tests every candidate must pass (the baseline's)."""
        return list(self._baseline().guards)

    @property
    def skipped_guards(self) -> list[str]:
        return list(self.baseline.skipped) if self.baseline else []

    def _baseline(self) -> Baseline:
        if self.baseline is None:
            raise BaselineMissing("the search has no baseline: measure_baseline() or resume()")
        return self.baseline

    # -- the baseline -------------------------------------------------------------------

    def measure_baseline(self) -> Node:
        """Evaluate the original code as the root, alone, and keep what it established as
        the run's baseline (saved beside the journal); raise BaselineError when it cannot be.

        Guard tests that the original code skips or xfails (a GPU-only test on a CPU
        machine, say) guard nothing here and are left out; every other test must pass.
        """
        node = Node(id=0, parent=None, step=0, operator=Operator.BASELINE,
                    plan="original code", code=self.context.original_code, started=time.time())
        probed, calls, functions = self._probe()
        self._guard_functions = functions
        if probed is not None:  # the marked tests' files, and the tests that run the target
            self.context.study.guard_nodeids = list(dict.fromkeys(
                [*self.context.study.guard_nodeids, *probed.guards]))
        fresh = self._benchmarked_calls(calls)
        evaluation = self._run_original(node, calls, fresh)
        found = self._judge_original(node, evaluation, probed)
        missing = {o.nodeid: evaluation.fresh_missing.get(o.nodeid) or
                   ("" if o.nodeid in fresh else "no call it makes into the target was recorded")
                   for o in self.objectives if o.metric in LOCATION_STATS}
        found = dataclasses.replace(found, calls=calls, fresh_calls=fresh,
                                    guard_functions=functions,
                                    fresh_missing={n: why for n, why in missing.items() if why},
                                    profile={n: [s.to_dict() for s in spots]
                                             for n, spots in evaluation.profile.items()},
                                    **self._tolerance())
        self.journal.nodes.append(node)
        self.journal.best_id = 0
        self.journal.save(self.journal_path)
        found.save(self.context.run_dir)
        self.baseline = found
        self.proposer.observe(node, None)
        self.context.on_step(node)
        return node

    def resume(self) -> bool:
        """Pick up a loaded journal: the run's saved baseline (or, for a run that saved none,
        the original measured again), and the proposer's memory. True when the baseline had
        to be measured again."""
        loaded = baselines.load(self.context.run_dir)
        measured_again = loaded is None
        if loaded is None:
            root = self.journal.root
            again = Node(id=0, parent=None, step=0, operator=Operator.BASELINE,
                         plan=root.plan, code=root.code)
            found = self._judge_original(again, self._run_original(again, name="0000-resumed"))
            # the guards the run has used so far: its candidates were held to those
            guards = [n for n, outcome in root.outcomes.items() if outcome == "passed"]
            loaded = dataclasses.replace(found, guards=tuple(guards))
            loaded.save(self.context.run_dir)
        self.baseline = loaded
        self._guard_functions = dict(loaded.guard_functions)
        self._use_guards(list(loaded.guards), loaded.guard_choice(self._marked()))
        for node in self.journal.nodes:
            self.proposer.observe(node, None)
            self._count_failures(node)
        return measured_again

    def _benchmarked_calls(self, calls: list[Call]) -> dict[str, int]:
        """Each timed marked test's first recorded call into the target: what its benchmark
        times, and what is timed on fresh inputs (guards/fresh.py)."""
        found = {}
        for objective in self.objectives:
            if objective.metric not in LOCATION_STATS:
                continue
            call = next((c for c in calls if c.test == objective.nodeid and c.stable), None)
            if call is not None:
                found[objective.nodeid] = call.id
        return found

    def _run_original(self, node: Node, calls: list[Call] | None = None,
                      fresh: dict[str, int] | None = None, name: str = "0000") -> Evaluation:
        """The original's own run; it replays the recorded ``calls`` after its tests as
        candidates will, so that what the replay leaves is the same on both sides, and times
        the benchmarked calls on fresh inputs, the reference for candidates'."""
        started = time.perf_counter()
        evaluation = self.context.executor.run_isolated(EvaluationRequest(
            node.code, self.context.run_dir / "nodes" / name,
            baseline=Baseline(calls=calls, fresh_calls=fresh or {}) if calls else None,
            nodeids=self.context.study.nodeids, replay=bool(calls), fresh=bool(fresh),
            profile=bool(fresh)))
        node.duration = time.perf_counter() - started
        return evaluation

    def _marked(self) -> list[str]:
        return [o.nodeid for o in self.objectives]

    def _probe(self) -> tuple[GuardChoice | None, list[Call], dict[str, list[str]]]:
        """The original run once, untimed, before the baseline: under coverage (guards
        chosen by what they run: the tests during which the target's code ran and that
        passed, guards/selection.py) and recording its calls into the target (replay.py).
        Also the target's functions each test ran (a candidate runs the guards that ran
        what it changed). (None, [], {}) when neither is asked for."""
        auto = self.context.guard_mode is GuardMode.AUTO and bool(self.context.guard_suite)
        record = self.context.compare
        if not (auto or record):
            return None, [], {}
        nodeids = list(self.context.guard_suite) if auto else self.context.study.nodeids
        evaluation = self.context.executor.run_isolated(EvaluationRequest(
            None, self.context.run_dir / "nodes" / "0000-probe", baseline=None,
            nodeids=nodeids, coverage=auto, record_calls=record))
        if not evaluation.completed or (auto and evaluation.executed_target is None):
            raise BaselineError(
                "the probe of the original (its tests under coverage, to find those that run "
                f"the target, and its answers recorded) did not complete ({evaluation.status}); "
                "pass --aide-guards files and --aide-compare off to do without:\n"
                + evaluation.error_summary(nodeids)[-3000:])
        calls = evaluation.recorded_calls or []
        if not auto:
            return None, calls, {}
        outcomes = {n: t.outcome for n, t in evaluation.tests.items()}
        choice = choose(GuardMode.AUTO, outcomes, self._marked(), evaluation.executed_target)
        functions = evaluation.target_functions
        return dataclasses.replace(choice, per_candidate=bool(functions)), calls, functions

    def _runs_symbol(self, nodeid: str) -> bool:
        """The guard ran the function or class target (always so for a module target, or
        when the probe mapped no functions)."""
        symbol = self.context.study.target.symbol
        if not symbol or not self._guard_functions:
            return True
        return any(f == symbol or f.startswith(f"{symbol}.")
                   for f in self._guard_functions.get(nodeid, ()))

    def _tolerance(self) -> dict[str, float]:
        given = {"rtol": self.context.rtol, "atol": self.context.atol}
        return {k: float(v) for k, v in given.items() if v is not None}

    def _use_guards(self, guards: list[str], choice: GuardChoice) -> None:
        """Every later evaluation runs ``guards`` (with the marked tests), and the prompt
        shows their files."""
        marked = self._marked()
        self.context.study.guard_nodeids = [g for g in guards if g not in marked]
        self.guard_choice = choice
        self.context.test_sources = self._guard_sources()

    def _guard_sources(self) -> dict[str, str]:
        """The test files the prompt shows: the marked tests' first, then the files with the
        most guards, within the budget (a file that does not fit is left out). With a
        function target, only files whose guards ran that function, within a smaller budget:
        the prompt is about one definition, and a real suite's files would fill it."""
        sources = dict(self.context.test_sources)
        counts: dict[str, int] = {}
        for nodeid in self.context.study.guard_nodeids:
            if self._runs_symbol(nodeid):
                path = nodeid.split("::")[0]
                counts[path] = counts.get(path, 0) + 1
        budget = self.context.test_source_budget
        if self.context.study.target.symbol:
            budget = min(budget, SYMBOL_TEST_SOURCE_BUDGET)
        room = budget - sum(len(t) for t in sources.values())
        for path in sorted(counts, key=lambda p: (-counts[p], p)):
            if path in sources:
                continue
            text = self.context.read_test(path)
            if text and len(text) <= room:
                sources[path] = text
                room -= len(text)
        return sources

    def _judge_original(self, node: Node, evaluation: Evaluation,
                        probed: GuardChoice | None = None) -> Baseline:
        """Judge the original's run (BaselineError when it does not pass or measure), and
        what it establishes: the tests that guard candidates, its state and clocks."""
        marked = set(self._marked())
        nodeids = self.context.study.nodeids
        skipped = [n for n in nodeids if n not in marked
                   and evaluation.outcome(n) in {"skipped", "xfailed", "xpassed"}]
        output_metrics = [
            o.metric for o in self.objectives
            if (result := evaluation.tests.get(o.nodeid))
            and resolve(result.measurement, o.metric)[1] == "output"
        ]
        self.judge_evaluation(node, evaluation, [n for n in nodeids if n not in skipped])
        if node.status != Status.GOOD:
            raise BaselineError(_baseline_message(node))
        _check_rounds(node, self.objectives)
        guards = [n for n, outcome in node.outcomes.items() if outcome == "passed"]
        choice = probed or choose(self.context.guard_mode,
                                  {n: evaluation.outcome(n) for n in nodeids}, list(marked))
        left_out = dict(choice.left_out)
        if probed is not None:  # the probe's count, and what the baseline's own run skipped
            for nodeid in skipped:
                outcome = evaluation.outcome(nodeid)
                left_out[outcome] = left_out.get(outcome, 0) + 1
        choice = GuardChoice(choice.mode, tuple(g for g in guards if g not in marked),
                             choice.suite, left_out, choice.per_candidate)
        self._use_guards(guards, choice)
        return Baseline(state=evaluation.state, clock=evaluation.clock, guards=tuple(guards),
                        skipped=tuple(skipped), output_metrics=tuple(output_metrics),
                        guard_mode=choice.mode.value, suite=choice.suite,
                        left_out=choice.left_out)

    # -- a node's step ------------------------------------------------------------------

    def new_node(self, step: int, pending: Sequence[Node] = ()) -> tuple[Node, Node]:
        """The next node as the policy chooses it (no plan or code yet), and its parent."""
        operator, parent = self.policy.next(self.journal, pending)
        node = Node(id=step, parent=parent.id, step=step, operator=operator,
                    plan="", code="", started=time.time(),
                    debug_depth=parent.debug_depth + 1 if operator == Operator.DEBUG else 0)
        return node, parent

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
            symbol=self.journal.symbol,
            also=[TargetFile(path, t.module, t.symbol) for path, t in
                  zip(self.journal.relpaths[1:], self.context.study.also, strict=True)],
            original_code=self.context.original_code,
            test_sources=self.context.test_sources,
            objectives=infos,
            memory=list(self.journal.nodes),
            instructions=self.context.instructions,
            error_output=parent.error if operator == Operator.DEBUG else "",
            step=step,
            steps=steps,
            profile={nodeid: [HotSpot.from_dict(s) for s in spots]
                     for nodeid, spots in (self.baseline.profile if self.baseline else {}).items()
                     if spots},
        )

    def propose_into(self, node: Node, request: ProposalRequest) -> tuple[Proposal | None, bool]:
        """Ask the proposer for ``node``'s code; touches nothing but ``node`` (safe in another
        thread). The proposal, and whether the request itself failed (ProposerRequestError).
        A failed proposal makes the node buggy; SearchExhausted passes through, and so does
        ProposerRefused before this session's first proposal."""
        proposal: Proposal | None = None
        failed = False
        began = time.perf_counter()
        try:
            proposal = self.proposer.propose(request)
        except ProposerError as exc:
            if isinstance(exc, ProposerRefused) and not self.proposed:
                raise  # the key, model or URL is wrong: no step will do better
            node.status, node.error = Status.BUGGY, f"proposal failed: {exc}"
            failed = isinstance(exc, ProposerRequestError)
            node.plan = "(no proposal)"
            usage = getattr(exc, "usage", None)
            if isinstance(usage, Usage):
                node.usage = usage
        node.propose_seconds = time.perf_counter() - began
        if proposal is not None:
            node.plan, node.code, node.usage = proposal.plan, proposal.code, proposal.usage
            self.proposed += 1
        return proposal, failed

    def duplicate_of(self, node: Node, earlier: Sequence[Node] = ()) -> Node | None:
        """The journaled node (or one of ``earlier``) whose code ``node`` repeats: the same
        text, or the same once comments, docstrings, formatting and local names are set
        aside (search/sameness.py)."""
        nodes = [*self.journal.nodes, *earlier]
        same = next((n for n in nodes if n.code == node.code), None)
        if same is not None:
            return same
        form = self._normal_form(node)
        return next((n for n in nodes if n.duplicate_of is None and form is not None
                     and self._normal_form(n) == form), None)

    def _normal_form(self, node: Node) -> str | None:
        if node.code not in self._normal_forms:
            self._normal_forms[node.code] = self._files_form(node.code)
        return self._normal_forms[node.code]

    def _files_form(self, code: str) -> str | None:
        """``normal_form`` of each target file of ``code``, together (None: one does not
        parse, or the code does not hold the run's files)."""
        try:
            forms = [normal_form(text) for _, text in self.sources(code)]
        except SourcesError:
            return None
        return None if None in forms else "\0".join(forms)  # type: ignore[arg-type]

    def sources(self, code: str) -> Sources:
        """A node's code as the files it holds (one target: that file alone)."""
        return Sources.decode(code, self.journal.relpaths)

    @staticmethod
    def mark_duplicate(node: Node, duplicate: Node) -> None:
        """``node`` repeats ``duplicate``: not run (or its run discarded), nothing learnt."""
        node.status, node.duplicate_of = Status.BUGGY, duplicate.id
        node.error = (f"candidate is identical to node {duplicate.id}: nothing changed"
                      if node.code == duplicate.code else
                      f"candidate does what node {duplicate.id} does (only comments, "
                      "docstrings, formatting or local names differ): not run")
        node.metrics, node.samples, node.outcomes = {}, {}, {}
        node.objective, node.speed, node.duration = None, [], 0.0

    def precheck(self, node: Node, earlier: Sequence[Node] = ()) -> bool:
        """True when ``node`` must be evaluated; else it is judged here without running: a
        duplicate of a journaled node (or of one in ``earlier``), code that does not
        compile, or code that forges a metric read from the output."""
        duplicate = self.duplicate_of(node, earlier)
        if duplicate is not None:
            self.mark_duplicate(node, duplicate)
            return False
        try:
            files = self.sources(node.code)
        except SourcesError as exc:
            node.status, node.error = Status.BUGGY, f"candidate cannot be read: {exc}"
            return False
        original = self.sources(self.context.original_code)
        for relpath, text in files:
            if not self._precheck_file(node, relpath, text, original.text(relpath)):
                return False
        return True

    def _precheck_file(self, node: Node, relpath: str, text: str, original: str) -> bool:
        """``precheck`` of one target file's text: it compiles, it can be written, and it
        adds no line that could forge a metric read from the output."""
        try:
            compile(text, relpath, "exec")
        except SyntaxError as exc:
            node.status = Status.BUGGY
            node.error = (f"candidate does not compile: {relpath}, line "
                          f"{exc.lineno}: SyntaxError: {exc.msg}")
            return False
        unwritable = unencodable(text)
        if unwritable:
            where = f"{relpath}: " if len(self.journal.relpaths) > 1 else ""
            node.status, node.error = (Status.BUGGY,
                                       f"candidate cannot be written: {where}{unwritable}")
            return False
        forged = forges_output_metric(text, original, list(self._baseline().output_metrics))
        if forged:
            node.status = Status.TAMPERED
            node.error = forged
            return False
        return True

    def evaluate_node(self, node: Node) -> Evaluation:
        """Run ``node``'s tests (in a thread of its own when several are in flight)."""
        started = time.perf_counter()
        baseline = self._baseline()
        timed = [o.nodeid for o in timed_objectives(self.objectives, self.journal.root)]
        guards = self.guards_of(node)
        if len(guards) < len(baseline.guards):
            node.guards_run = [len(guards), len(baseline.guards)]
        evaluation = evaluate_candidate(
            self.context.executor, node.code,
            self.context.run_dir / "nodes" / f"{node.id:04d}", baseline,
            self._cascade(guards), timed, self.context.measure, guards,
        )
        node.duration = time.perf_counter() - started
        return evaluation

    def judge_evaluation(self, node: Node, evaluation: Evaluation,
                         guards: list[str] | None = None) -> None:
        """``node``'s verdict on an evaluation: status, metrics, and its objective."""
        judgement = judge(evaluation, self.objectives,
                          self.guards_of(node) if guards is None else guards)
        node.status = Status(judgement.status)
        node.metrics = judgement.metrics
        node.samples = judgement.samples
        node.outcomes = judgement.outcomes
        node.error = judgement.error
        node.speed = evaluation.speed
        node.fresh = judgement.fresh
        node.fresh_answers = dict(evaluation.fresh_answers)
        if node.status == Status.GOOD:
            baseline = self.journal.root.metrics if self.journal.nodes else None
            try:
                node.objective = score(self.objectives, node.metrics, baseline)
            except ObjectiveError as exc:
                node.status, node.error = Status.BUGGY, str(exc)

    def commit(self, node: Node, proposal: Proposal | None) -> None:
        """Journal a judged node: compare it with the best, save, tell the proposer, report."""
        self.journal.nodes.append(node)
        self._count_failures(node)
        if node.status == Status.GOOD:
            best = self.journal.best or self.journal.root
            comparison = self._screen().compare(node, best)
            node.fresh_answers = {}
            if comparison.better:
                self.journal.best_id = node.id
            elif comparison.verdict.makes_buggy:
                node.status, node.error = Status.BUGGY, comparison.reason
            else:
                node.note = comparison.reason
        self.journal.save(self.journal_path)
        self.proposer.observe(node, proposal)
        self.context.on_step(node)

    def _count_failures(self, node: Node) -> None:
        self._failures.update(n for n, outcome in node.outcomes.items()
                              if outcome in FAILED_OUTCOMES and n not in self._marked())

    def _cascade(self, guards: list[str]) -> list[str]:
        """The order a candidate's tests run in, the first failure ending its evaluation:
        the guards that failed earlier candidates (most often first), then the others, then
        the marked tests (the costly benchmark only once every guard has passed)."""
        failures = dict(self._failures)  # a copy: commits update it from another thread
        marked = self._marked()
        rest = sorted((g for g in guards if g not in marked), key=lambda g: -failures.get(g, 0))
        return [*rest, *marked]

    def guards_of(self, node: Node) -> list[str]:
        """The guards ``node``'s evaluation runs: those that ran, on the original, a function
        it changed (guards/selection.py); all of them when it changed module-level code.
        The screen runs the rest before it becomes the best."""
        if node.id not in self._selected:
            changed = self._changed_functions(node.code)
            self._selected[node.id] = list(self._baseline().guards_for(changed, self._marked()))
        return self._selected[node.id]

    def _changed_functions(self, code: str) -> frozenset[str] | None:
        """``changed_functions`` of the primary target; None (every guard) when another
        target file changed too: the coverage maps the primary's functions alone."""
        original, candidate = self.sources(self.context.original_code), self.sources(code)
        if any(path != original.relpaths[0] for path in original.changed(candidate)):
            return None
        return changed_functions(original.primary, candidate.primary)

    def fresh_notes(self) -> list[str]:
        """For the header: each timed test whose call is not timed on fresh inputs, and why
        (with ``--aide-compare off`` nothing is recorded, so none is: not said)."""
        if not self.context.compare:
            return []
        return [f"fresh inputs: none for {nodeid.split('::')[-1]} ({why}): the benchmark's own "
                "input alone judges its speed (inputs= on the marker gives fresh inputs)"
                for nodeid, why in self._baseline().fresh_missing.items()]

    def _unrun_guards(self, node: Node) -> list[str]:
        chosen = set(self.guards_of(node))
        return [g for g in self.guards if g not in chosen]

    def _screen(self) -> Screen:
        return Screen(self.context.executor, self.objectives, self.context.run_dir,
                      self._baseline(), self.judge_evaluation, self._unrun_guards)

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

    # -- the one loop -------------------------------------------------------------------

    def run(self, steps: int) -> None:
        """Propose until the journal holds ``steps`` proposals, or a stop condition, with up
        to ``executor.workers`` evaluations in flight."""
        self._baseline()
        workers = self.context.executor.workers
        # proposals requested ahead of the evaluations only when several run at once: with
        # one worker, each proposal sees every earlier result, as AIDE's loop does
        in_flight = 1 if workers == 1 else 2 * workers + 1
        flights: dict[int, Flight] = {}
        next_id = len(self.journal.nodes)
        failed_requests = 0
        stopping = False
        try:
            while True:
                while (not stopping and next_id <= steps and len(flights) < in_flight
                       and _count(flights, Stage.PROPOSING, Stage.READY) < workers + 1):
                    flights[next_id] = self._request(next_id, steps, flights)
                    next_id += 1
                self._start_evaluations(flights, workers)
                while flights and flights[min(flights)].stage == Stage.DONE:
                    flight = flights.pop(min(flights))
                    if flight.refused is not None:
                        raise flight.refused
                    if flight.exhausted:
                        self.stop_reason = f"stopped early: {flight.exhausted}"
                        self.exhausted = True
                        stopping = True
                        self._drop(flights)
                        break
                    self._commit(flight)
                    failed_requests = failed_requests + 1 if flight.request_failed else 0
                    stopping = self.should_stop(failed_requests) or stopping
                if not flights:
                    if stopping or next_id > steps:
                        return
                    continue  # the next node is requested at the top
                self._collect(flights)
        except BaseException:
            self._drop(flights)
            raise

    def _request(self, node_id: int, steps: int, flights: dict[int, Flight]) -> Flight:
        pending = [f.node for f in flights.values()]
        node, parent = self.new_node(node_id, pending)
        request = self.request(node.operator, parent, node.step, steps)
        flight = Flight(node)
        flight.future = spawn(self._propose, flight, request)
        return flight

    def _propose(self, flight: Flight, request: ProposalRequest) -> None:
        try:
            flight.proposal, flight.request_failed = self.propose_into(flight.node, request)
        except SearchExhausted as exc:
            flight.exhausted = str(exc)
        except ProposerRefused as exc:
            flight.refused = exc

    def _start_evaluations(self, flights: dict[int, Flight], workers: int) -> None:
        for node_id in sorted(flights):
            flight = flights[node_id]
            if flight.stage != Stage.READY:
                continue
            if flight.proposal is None or flight.exhausted:
                flight.stage = Stage.DONE
                continue
            earlier = [f.node for i, f in flights.items() if i < node_id and f.node.code]
            if not self.precheck(flight.node, earlier):
                flight.stage = Stage.DONE
                continue
            if _count(flights, Stage.EVALUATING) >= workers:
                continue
            flight.stage = Stage.EVALUATING
            flight.future = spawn(self.evaluate_node, flight.node)

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
            if flight.stage == Stage.PROPOSING:
                flight.stage = Stage.READY
            elif flight.stage == Stage.EVALUATING:
                self.follow_the_measuring_place()
                self.judge_evaluation(flight.node, result)
                flight.evaluated = True
                flight.stage = Stage.DONE

    def follow_the_measuring_place(self) -> None:
        """After the executor moved its timed measurements (a measuring node lost), the
        original and the best are measured again there before any comparison."""
        executor = self.context.executor
        moves = len(executor.events()) if isinstance(executor, Announcing) else 0
        if moves == self._moves:
            return
        self._moves = moves
        self.baseline = moved.measure_again(executor, self.journal, self._baseline(),
                                            self.objectives, self.context.run_dir, moves)
        self.baseline.save(self.context.run_dir)
        self.journal.save(self.journal_path)
        best = self.journal.best
        which = "the original" + ("" if best is None or best.id == 0 else
                                  f" and the best (node {best.id})")
        self.remeasured.append(f"{which} measured again on the new measuring node")

    def _commit(self, flight: Flight) -> None:
        node = flight.node
        if flight.evaluated:
            # an earlier node still in flight when this one started may have had its code
            duplicate = self.duplicate_of(node)
            if duplicate is not None:
                self.mark_duplicate(node, duplicate)
        self.commit(node, flight.proposal)

    def _drop(self, flights: dict[int, Flight]) -> None:
        """Give up on every node in flight: kill their children, and wait until their
        evaluations have ended (and restored the project). Proposal requests are left to
        finish in their daemon threads; nothing reads them."""
        evaluating = [f.future for f in flights.values()
                      if f.stage == Stage.EVALUATING and f.future is not None]
        if evaluating:
            self.context.executor.abort()
            while wait(evaluating, timeout=1.0).not_done:
                self.context.executor.abort()  # one may have started a child since
        flights.clear()


def _count(flights: dict[int, Flight], *stages: Stage) -> int:
    return sum(1 for f in flights.values() if f.stage in stages)


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


def _check_rounds(node: Node, objectives: list[Objective]) -> None:
    """A timed baseline with too few rounds can never be beaten credibly: say so now."""
    too_few = [
        f"{o.nodeid} recorded {len(node.samples[o.nodeid])} round(s)"
        for o in objectives
        if o.metric in LOCATION_STATS and 0 < len(node.samples.get(o.nodeid, [])) < MIN_SAMPLES
    ]
    if too_few:
        raise BaselineError(
            "; ".join(too_few) + f": with fewer than {MIN_SAMPLES} rounds no change can be "
            "told from noise, so no candidate could ever count as faster. Let "
            "pytest-benchmark run more rounds (e.g. benchmark.pedantic(..., rounds=10))."
        )


def _baseline_message(node: Node) -> str:
    what = "is tampered" if node.status == Status.TAMPERED else "does not pass or measure"
    return f"the original code {what}, so there is nothing to improve from:\n{node.error}"
