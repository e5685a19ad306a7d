"""One target's optimization run, from run directory to the written file.

Order matters for the user's safety: the baseline is measured first (nothing is written if
it fails), the journal is saved after every node, the best is confirmed against the
baseline, the artifacts are written, and only then is the target file replaced, once,
atomically, and only if it is still the original.
"""

from __future__ import annotations

import random
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pytest_aide.evaluation.evaluator import Evaluator
from pytest_aide.evaluation.sandbox import Sandbox, network_hint
from pytest_aide.executors.base import (
    Announcing,
    CapacityError,
    Executor,
    ExecutorError,
    files_this_process_writes,
)
from pytest_aide.executors.choose import make_executor
from pytest_aide.guards.selection import GuardMode
from pytest_aide.journal import Journal, Node, Phase, write_atomic
from pytest_aide.proposers.base import Proposer
from pytest_aide.report.artifacts import sources_patch
from pytest_aide.report.formatting import proposer_text
from pytest_aide.report.markdown import write_report_md
from pytest_aide.report.terminal import step_line
from pytest_aide.report.tree_html import write_tree_html
from pytest_aide.search.confirm import Progress, confirm_best
from pytest_aide.search.loop import BaselineError, Policy, Search, SearchContext
from pytest_aide.search.objective import describe
from pytest_aide.settings import AideSettings, in_ci
from pytest_aide.sources import Sources
from pytest_aide.study import Study
from pytest_aide.workspace import (
    LogDirUnwritable,
    RunNotFound,
    TargetFile,
    apply_sources,
    find_run,
    make_run_dir,
    read_source,
    read_sources,
    sha256,
    source_encoding,
    write_source,
)


def resume_command(args: list[str], run_id: str, steps: int | None = None) -> str:
    """The user's own command line, with ``--aide-resume RUN_ID`` in place of any earlier one
    (and ``--aide-steps STEPS`` in place of theirs when ``steps`` is given)."""
    replaced = {"--aide-resume"} | ({"--aide-steps"} if steps is not None else set())
    kept: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg in replaced:
            skip = True
            continue
        if arg.partition("=")[0] in replaced and "=" in arg:
            continue
        kept.append(arg)
    tail = [] if steps is None else ["--aide-steps", str(steps)]
    return shlex.join(["pytest", *kept, *tail, "--aide-resume", run_id])


def steps_done(journal: Journal) -> int:
    """Proposals in the journal (the baseline is not a step)."""
    return max(0, len(journal.nodes) - 1)


def next_command(args: list[str], journal: Journal, steps: int) -> str:
    """The command that goes on with this run: the same one for an unfinished run (it
    continues to its total), one that adds ``steps`` more for a finished one, and none for
    a run whose proposer had nothing new left (its outcome says what would help)."""
    if journal.finished and journal.exhausted:
        return ""
    if not journal.finished:
        return resume_command(args, journal.run_id)
    return resume_command(args, journal.run_id, steps_done(journal) + max(1, steps))


def resume_plan(journal: Journal, steps: int) -> str:
    """What ``--aide-steps STEPS --aide-resume`` does to ``journal``, as the header says it.

    ``--aide-steps`` is the run's total, so the command printed after an interrupted run
    continues it unchanged. A total above the steps done continues the search; a total equal
    to them finishes an interrupted run (confirm, report, write). Anything else would do
    nothing: a ResumeError (a usage error) names the ``--aide-steps`` that adds the steps.
    """
    done = steps_done(journal)
    if steps > done:
        return (f"resuming run {journal.run_id}: {done} of {steps} steps done, "
                f"{steps - done} to go")
    if steps == done and not journal.finished:
        return (f"resuming run {journal.run_id}: {done} of {steps} steps done, 0 to go; "
                "finishing it")
    planned = max(done, int(journal.settings.get("steps") or 0))
    state = "finished" if journal.finished else "not finished"
    finish = "" if journal.finished else f", or --aide-steps {done} to finish it with those"
    raise ResumeError(
        f"run {journal.run_id} has {done} of {planned} steps done ({state}); with "
        f"--aide-resume, --aide-steps is the run's total, so --aide-steps {steps} asks for "
        f"nothing more. Pass --aide-steps {done + steps} to add {_steps(steps)}{finish}."
    )


def _symbol_text(symbol: str) -> str:
    """A function or class target, after its file in the header: ``mod.py:func``."""
    return f":{symbol}" if symbol else ""


def _workers_text(executor: Executor, measure: str) -> str:
    how = ("timed metrics measured alone, the other slots drained (--aide-measure isolated)"
           if measure == "isolated" else
           "timed metrics measured next to the other evaluations (--aide-measure shared)")
    count = executor.workers
    return f"{count} worker{'s' if count != 1 else ''} ({executor.describe()}); {how}"


def _steps(count: int) -> str:
    return f"{count} step" if count == 1 else f"{count} steps"


def _first(*values: float | None) -> float | None:
    return next((v for v in values if v is not None), None)


def _read_or_empty(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""


def _wrote_its_best(journal: Journal, current: str) -> bool:
    """The file holds the best that this finished run wrote, and the journal still has the
    original it started from: such a run may be continued."""
    best = journal.best
    return (journal.finished and best is not None and best.id != 0 and best.code == current
            and sha256(journal.root.code) == journal.original_sha256)


class RunError(Exception):
    """The run cannot go on (the baseline fails); nothing was written."""


class ResumeError(RunError):
    """``--aide-resume`` names no usable run: a usage error."""


class SetupError(ResumeError):
    """The executor cannot be had as configured (slots that do not fit, Ray missing or
    unreachable): a usage error."""


@dataclass
class RunResult:
    study: Study
    journal: Journal
    run_dir: Path
    applied: bool = False
    already_best: bool = False  # the target holds the best, written when the run first finished
    put_back: bool = False  # written, then put back because the final check failed
    apply_message: str = ""
    patch: Path | None = None
    wanted: int = 0  # steps this session was to add
    proposed: int = 0  # proposals made in them
    confirmed: bool = False  # a candidate was confirmed better than the original


def shortfall(result: RunResult, fail_on: str) -> str:
    """Why a finished run is not a success under ``--aide-fail-on`` ('' when it is): no
    proposal could be made at all (``error``, the default; a proposer with nothing left to
    try did its job), or nothing was confirmed better (``no-improvement``); ``never``
    accepts both."""
    if fail_on == "never":
        return ""
    where = result.study.target.path.name
    if result.wanted and not result.proposed and not result.journal.exhausted:
        last = result.journal.nodes[-1].error if len(result.journal.nodes) > 1 else ""
        because = f"; the last: {last.splitlines()[0]}" if last else ""
        return (f"{where}: no proposal could be made in {_steps(result.wanted)} "
                f"({result.journal.outcome}){because}")
    if fail_on == "no-improvement" and not result.confirmed:
        return (f"{where}: nothing was confirmed better than the original "
                f"(--aide-fail-on no-improvement)")
    return ""


@dataclass
class TargetRun:
    """Runs the search for one study and finishes it."""

    study: Study
    settings: AideSettings
    rootdir: Path
    proposer_factory: Callable[[str], Proposer]
    write_line: Callable[[str], None]
    #: Writes over the terminal's current line (None when the output is not a terminal).
    rewrite_line: Callable[[str], None] | None = None
    pytest_args: list[str] = field(default_factory=list)
    invocation_args: list[str] = field(default_factory=list)
    verbose: bool = True
    sandbox: Sandbox | None = None
    #: Makes the executor from the settings and the evaluator (the pytest_aide_make_executor
    #: hook; its default is executors/choose.py's make_executor); ExecutorError when it
    #: cannot be had.
    executor_factory: Callable[[AideSettings, Evaluator], Executor] = make_executor
    #: With ``--aide-guards auto``: the test files (relative to the rootdir) that the guard
    #: probe runs on the original under coverage (session.py finds them).
    guard_suite: list[str] = field(default_factory=list)

    @property
    def relpath(self) -> str:
        """The target's path, as messages name it; with several targets, every one's, joined
        by ' + '."""
        return " + ".join(self.study.relpaths(self.rootdir))

    @property
    def files(self) -> list[TargetFile]:
        """Every target file (relpath, path), the primary first."""
        return [(t.relpath(self.rootdir), t.path) for t in self.study.targets]

    @property
    def relpaths(self) -> list[str]:
        return self.study.relpaths(self.rootdir)

    def _kept(self, run_dir: Path, prefix: str) -> Path:
        """Where ``_keep`` puts the code (for several targets, their directory)."""
        if len(self.study.targets) == 1:
            return run_dir / f"{prefix}_{self.study.target.path.name}"
        return run_dir / prefix

    def _keep(self, run_dir: Path, prefix: str, code: str) -> None:
        """``code`` kept in the run directory: ``<prefix>_<name>`` for one target; for
        several, each file as ``<prefix>/<relpath>``."""
        if len(self.study.targets) == 1:
            write_source(self._kept(run_dir, prefix), code)
            return
        for relpath, text in Sources.decode(code, self.relpaths):
            write_source(run_dir / prefix / relpath, text)

    def resume_hint(self, journal: Journal) -> str:
        return resume_command(self.invocation_args, journal.run_id)

    # -- setting up -----------------------------------------------------------------------

    def _find_run(self, wanted: str) -> Path:
        try:
            return find_run(self.settings.log_dir, self.relpaths[0], wanted,
                            also=self.relpaths[1:])
        except RunNotFound as exc:
            raise ResumeError(str(exc)) from None

    def _open(self, current: str) -> tuple[Journal, Path, str]:
        """The journal, its run dir, and the header's words on what this run does."""
        if self.settings.resume:
            run_dir = self._find_run(self.settings.resume)
            journal = Journal.load(run_dir / "journal.json")
            if not journal.nodes:
                raise ResumeError(f"cannot resume {journal.run_id}: its journal has no baseline")
            if journal.original_sha256 != sha256(current) and not _wrote_its_best(journal, current):
                raise ResumeError(
                    f"cannot resume {journal.run_id}: {self.relpath} changed since that run "
                    "started (its journal's candidates were written for the old file). "
                    "Start a new run, or restore the file from "
                    f"{self._kept(run_dir, 'original')}."
                )
            plan = resume_plan(journal, self.settings.steps)
            journal.settings["steps"] = max(self.settings.steps, steps_done(journal))
            journal.finished = False
            return journal, run_dir, plan
        try:
            run_id, run_dir = make_run_dir(self.settings.log_dir, self.study.target.module)
        except LogDirUnwritable as exc:
            raise SetupError(str(exc)) from None
        journal = Journal(
            run_id=run_id,
            target=self.relpaths[0],
            targets=self.relpaths if len(self.relpaths) > 1 else [],
            module=self.study.target.module,
            symbol=self.study.target.symbol,
            objectives=[
                {"nodeid": o.nodeid, "metric": o.metric, "maximize": o.maximize}
                for o in self.study.objectives
            ],
            original_sha256=sha256(current),
            settings={
                "steps": self.settings.steps,
                "model": self.settings.model,
                "drafts": self.settings.drafts,
                "debug_prob": self.settings.debug_prob,
                "max_debug_depth": self.settings.max_debug_depth,
                "seed": self.settings.seed,
                "sandbox": "bwrap" if self.sandbox else "off",
                "objective": describe(self.study.objectives),
            },
        )
        self._keep(run_dir, "original", current)
        return journal, run_dir, f"{self.settings.steps} steps; run {run_id}"

    # -- running --------------------------------------------------------------------------

    def run(self) -> RunResult:
        started = time.perf_counter()
        current = read_sources(self.files).encode()
        journal, run_dir, plan = self._open(current)
        resumed = bool(self.settings.resume)
        # A finished run may have written its best: the search still starts from the original.
        original = journal.root.code if resumed else current
        done_before = steps_done(journal)
        executor = self._executor(self._evaluator(run_dir), run_dir)
        try:
            proposer = self.proposer_factory(original)
            search = self._search(journal, run_dir, executor, proposer, original, started)
            result = RunResult(study=self.study, journal=journal, run_dir=run_dir)
            self._header(journal, executor, proposer, plan)
            try:
                self._start(search, resumed)
                if executor.notice():
                    self.write_line(f"aide: {executor.notice()}")
                search.run(self.settings.steps)
                journal.add_time(Phase.SEARCH, time.perf_counter() - started)
                result.wanted = max(0, self.settings.steps - done_before)
                result.proposed = search.proposed
                self._finish(result, executor, search, original, current)
            except KeyboardInterrupt:
                self._interrupted(result)
                raise
            except CapacityError as exc:  # no place to run: the code is not to blame
                journal.outcome = f"stopped: {exc}"
                journal.save(run_dir / "journal.json")
                raise RunError(f"{self.relpath}: stopped: {exc}") from None
        finally:
            executor.close()
        return result

    def _evaluator(self, run_dir: Path) -> Evaluator:
        # with several workers, this process writes its output while evaluations run
        own = files_this_process_writes(self.rootdir) if self.settings.parallel else []
        return Evaluator(
            study=self.study, rootdir=self.rootdir, timeout=self.settings.timeout,
            pytest_args=self.pytest_args, protected_exclude=[self.settings.log_dir, *own],
            sandbox=self.sandbox, env_drop=self.settings.env_drop,
            env_keep=self.settings.env_keep, warm=self.settings.warm == "auto",
            warm_dir=run_dir,
        )

    def _search(self, journal: Journal, run_dir: Path, executor: Executor, proposer: Proposer,
                original: str, started: float) -> Search:
        context = SearchContext(
            study=self.study,
            executor=executor,
            proposer=proposer,
            run_dir=run_dir,
            original_code=original,
            test_sources={
                p.relative_to(self.rootdir).as_posix() if p.is_relative_to(self.rootdir)
                else str(p): read_source(p)
                for p in self.study.test_files
            },
            instructions=self.settings.instructions,
            budget_usd=self.settings.budget,
            on_step=lambda node: self._progress(journal, node, started),
            measure=self.settings.measure,
            guard_mode=GuardMode(self.settings.guards),
            guard_suite=self.guard_suite,
            compare=self.settings.compare == "on" and self.study.replays_answers,
            rtol=_first(self.study.rtol, self.settings.rtol),
            atol=_first(self.study.atol, self.settings.atol),
            read_test=lambda path: _read_or_empty(self.rootdir / path),
        )
        rng = random.Random(self.settings.seed + len(journal.nodes))
        policy = Policy(self.settings.drafts, self.settings.debug_prob,
                        self.settings.max_debug_depth, rng)
        return Search(context, journal, policy)

    def _header(self, journal: Journal, executor: Executor, proposer: Proposer,
                plan: str) -> None:
        name = getattr(proposer, "name", None)
        journal.settings["proposer"] = name
        self.write_line(
            f"aide: optimizing {self.relpath}{_symbol_text(journal.symbol)} for "
            f"{describe(self.study.objectives)} "
            f"with {proposer_text(name)}; {plan}"
        )
        if self.settings.parallel:
            journal.settings.update(workers=executor.workers, measure=self.settings.measure,
                                    executor=self.settings.executor)
            self.write_line(f"aide: {_workers_text(executor, self.settings.measure)}")

    def _start(self, search: Search, resumed: bool) -> None:
        """The baseline: measured for a new run (RunError when the original fails), loaded
        for a resumed one, or measured again when that run saved none."""
        journal = search.journal
        try:
            if resumed and search.resume():
                self.write_line("aide: this run saved no baseline (made by an older "
                                "pytest-aide): the original was measured again")
            elif not resumed:
                search.measure_baseline()
        except BaselineError as exc:
            journal.outcome = f"baseline failed: {exc}"
            journal.save(search.journal_path)
            hint = network_hint(self.sandbox, str(exc))
            raise RunError(f"{self.relpath}: {exc}" + (f"\n{hint}" if hint else "")) from None
        for note in search.fresh_notes():
            self.write_line(f"aide: {note}")
        if self.settings.compare == "on" and not self.study.replays_answers:
            self.write_line(
                "aide: the original's answers are not replayed: "
                + ("a marker says compare=False" if self.study.compare is False else
                   "no marked test measures speed, and a better score means different "
                   "answers (compare=True in the marker replays them)")
                + "; the tests alone judge behaviour")
        choice = search.guard_choice
        if choice is not None:
            self.write_line(f"aide: {choice.header(self.study.target.path.name)}")
            if choice.only_marked():
                self.write_line(
                    f"aide: warning: only the marked tests guard {self.relpath}: a faster "
                    "candidate that computes something else but keeps the metric would pass. "
                    "Add tests that check its answers (any file of the suite: --aide-guards "
                    "auto finds them by coverage)"
                )

    def _interrupted(self, result: RunResult) -> None:
        journal, run_dir = result.journal, result.run_dir
        journal.outcome = "interrupted"
        journal.save(run_dir / "journal.json")
        state = "was already written" if result.applied else "is unchanged"
        again = (f"Resume with: {self.resume_hint(journal)}" if journal.nodes
                 else "Nothing to resume: the baseline had not finished.")
        self.write_line(
            f"aide: interrupted; {self.relpath} {state}. Journal: "
            f"{run_dir / 'journal.json'}. {again}"
        )

    def _executor(self, evaluator: Evaluator, run_dir: Path) -> Executor:
        """The executor the settings ask for (one local worker: the serial case)."""
        try:
            executor = self.executor_factory(self.settings, evaluator)
        except ExecutorError as exc:
            evaluator.close()
            raise SetupError(str(exc)) from None
        if isinstance(executor, Announcing):
            executor.say = lambda text: self.write_line(f"aide: {text}")
            executor.run_dir = run_dir
        return executor

    def _progress(self, journal: Journal, node: Node, started: float) -> None:
        if self.verbose:
            self.write_line(
                step_line(journal, node, self.settings.steps,
                                 time.perf_counter() - started)
            )

    # -- finishing ------------------------------------------------------------------------

    def _confirm_progress(self, progress: Progress) -> None:
        """On a terminal, one line rewritten as each round ends; elsewhere (a CI log) the
        start only, and any round discarded."""
        if not self.verbose:
            return
        line = f"aide: {progress.text()}"
        if self.rewrite_line is not None:
            self.rewrite_line(line)
        elif progress.kept == 0 or progress.rerun or progress.just_discarded:
            self.write_line(line)

    def _finish(self, result: RunResult, executor: Executor, search: Search,
                original: str, current: str) -> None:
        """Confirm, keep and report the best; write it over ``current`` (the file as this
        run found it: the original, or the best this run wrote when it first finished)."""
        journal, run_dir = result.journal, result.run_dir
        best = journal.best
        improved = best is not None and best.id != 0
        if improved:
            began = time.perf_counter()
            confirmation = confirm_best(
                executor, self.study.objectives, search.baseline, journal.root, best,
                run_dir / "confirm", self.settings.confirm_rounds, self._confirm_progress,
            )
            if self.rewrite_line is not None and self.verbose:
                self.write_line("")  # the rewritten progress line stays, and ends
            best.confirmed = confirmation.details
            journal.add_time(Phase.CONFIRMATION, time.perf_counter() - began)
            result.confirmed = confirmation.confirmed
            self._keep(run_dir, "best", best.code)
            before, after = (Sources.decode(code, self.relpaths) for code in (original,
                                                                             best.code))
            result.patch = run_dir / "best.patch"
            write_atomic(result.patch, sources_patch(before, after),
                         encoding=source_encoding(before.primary))
            if not confirmation.confirmed:
                result.apply_message = (f"not written: the improvement was not confirmed "
                                        f"({confirmation.summary})")
            elif self.settings.preserve_source:
                why = "--aide-preserve-source, on when CI is set" if in_ci() else \
                    "--aide-preserve-source"
                result.apply_message = (f"not written ({why}): apply "
                                        f"{result.patch} with git apply")
            elif best.code == current:
                result.already_best = True
            else:
                # the original is backed up in the run dir before the file is written
                applied = apply_sources(self.files, Sources.decode(current, self.relpaths),
                                        Sources.decode(best.code, self.relpaths), run_dir)
                result.applied, result.apply_message = applied.written, applied.message
        else:
            result.apply_message = "not written: no candidate beat the baseline"
        journal.finished = True
        events = executor.events() if isinstance(executor, Announcing) else []
        journal.outcome = "; ".join([search.stop_reason or "completed", *events,
                                     *search.remeasured])
        journal.exhausted = search.exhausted
        journal.save(run_dir / "journal.json")
        write_report_md(
            journal, run_dir, original, best.code if improved else None
        )
        write_tree_html(journal, run_dir / "tree.html")
