"""The plugin's state for one pytest session; the hooks in plugin.py delegate here.

In a plain run it only reports each marked test's metric. With ``--aide-steps N`` it runs
one optimization per target before the test loop, and, when the target file was
rewritten, runs the selected tests against the new code in a child process and replays
their reports, so the terminal and the exit status are those of the code the user now has.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pytest_aide.metrics import Measurement, format_value, measure_item, resolve
from pytest_aide.settings import AideSettings, read_settings
from pytest_aide.study import Objective, Study, build_studies


class AideMetricWarning(pytest.PytestWarning):
    """A marked test finished without producing its metric."""


class AideSession:
    name = "aide-session"

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.settings: AideSettings = read_settings(config)
        self.rootdir = Path(str(config.rootpath))
        self.studies: list[Study] = []
        self.marked: dict[str, Objective] = {}
        self.measured: dict[str, Measurement] = {}
        self.results: list[Any] = []  # optimize.RunResult, imported lazily
        self.errors: list[str] = []
        self.notices: list[str] = []
        self.sandbox: Any = None  # evaluation.sandbox.Sandbox, chosen when optimizing
        self.selected_files: list[str] = []

    # -- collection -----------------------------------------------------------------------

    def pytest_ignore_collect(self, collection_path: Path) -> bool | None:
        """The run directories hold copies of the target (original, best, backup) and
        evaluations' files: never the project's tests or doctests."""
        log_dir = self.settings.log_dir
        if collection_path == log_dir or log_dir in collection_path.parents:
            return True
        return None

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.studies = build_studies(session.items, self.rootdir)
        self.marked = {o.nodeid: o for study in self.studies for o in study.objectives}
        self.selected_files = sorted({str(item.path) for item in session.items})
        if self.settings.guards == "selected":
            for study in self.studies:
                study.guard_nodeids = [item.nodeid for item in session.items]

    # -- plain run: report metrics --------------------------------------------------------

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]):
        report = yield
        objective = self.marked.get(item.nodeid)
        if objective is not None and report.when == "call":
            measurement = measure_item(item, report.capstdout)
            self.measured[item.nodeid] = measurement
            value, _ = resolve(measurement, objective.metric)
            if report.passed and value is None:
                item.warn(AideMetricWarning(
                    f"{item.nodeid} is marked optimize(metric={objective.metric!r}) but did not "
                    f"produce it; it recorded {measurement.recorded()}. Use the benchmark "
                    "fixture for a benchmark statistic, or record_property(name, value)."
                ))
        return report

    # -- optimizing -----------------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool | None:
        if not self.settings.optimizing or session.config.option.collectonly:
            return None
        if session.testsfailed and not session.config.option.continue_on_collection_errors:
            return None
        if not self.studies:
            self.notices.append(
                "--aide-steps was given but no selected test is marked "
                "@pytest.mark.optimize; ran the tests normally."
            )
            return None
        written = self._optimize_all()
        if written:
            began = time.perf_counter()
            self._final_check(session)
            self._add_final_check_time(time.perf_counter() - began)
            return True
        return None

    def _invocation_args(self) -> list[str]:
        return [str(arg) for arg in self.config.invocation_params.args]

    def _terminal(self) -> Any:
        return self.config.pluginmanager.get_plugin("terminalreporter")

    def _write_line(self, line: str, **markup: bool) -> None:
        """A line of the run's progress; it may quote a candidate (step lines, errors), so
        its control characters are escaped here, once for every caller."""
        from pytest_aide.report.formatting import printable

        terminal = self._terminal()
        if terminal is not None:
            terminal.write_line(printable(line, keep_newlines=True), **markup)

    def _rewriter(self) -> Callable[[str], None] | None:
        """Writes over the current line when the output is a terminal (progress that would
        otherwise fill the screen a line a round); None elsewhere."""
        from pytest_aide.report.formatting import printable

        terminal = self._terminal()
        if terminal is None or not terminal.isatty():
            return None

        def rewrite(line: str) -> None:
            terminal.rewrite(printable(line), erase=True)

        return rewrite

    def _optimize_all(self) -> bool:
        """One run per target; True when any of them wrote its target."""
        self._write_line("")
        self._choose_sandbox()
        written = False
        for study in self.studies:
            result = self._optimize(study)
            if result is not None:
                self.results.append(result)
                written = written or result.applied
        return written

    def _optimize(self, study: Study) -> Any:
        """Run one target: its RunResult, or None when the run failed (said and counted)."""
        from pytest_aide.proposers.base import ProposerRefused
        from pytest_aide.run import ResumeError, RunError, shortfall

        run = self._target_run(study, self._proposer_factory(study))
        try:
            result = run.run()
        except (ResumeError, ProposerRefused) as exc:
            raise pytest.UsageError(str(exc)) from None
        except RunError as exc:
            self.errors.append(str(exc))
            self._write_line(f"aide: {exc}", red=True)
            return None
        problem = shortfall(result, self.settings.fail_on)
        if problem:
            self.errors.append(problem)
        return result

    def _proposer_factory(self, study: Study) -> Callable[[str], Any]:
        """The run's proposer factory, its first proposer made now: a missing key or an
        unknown model is a usage error before anything runs."""
        from pytest_aide.workspace import SourceUnreadable, read_sources

        try:
            original = read_sources(self._target_files(study)).encode()
        except SourceUnreadable as exc:
            raise pytest.UsageError(str(exc)) from None
        first = self._make_proposer(study, original, self._notice)
        proposers = iter([first])

        def factory(code: str) -> Any:
            # a resumed run that wrote its best searches from the original, not the file
            existing = next(proposers, None)
            if existing is not None and code == original:
                return existing
            return self._make_proposer(study, code, lambda _notice: None)

        return factory

    def _make_proposer(self, study: Study, code: str, notify: Callable[[str], None]) -> Any:
        """The pytest_aide_make_proposer hook's proposer (hookspecs.py)."""
        from pytest_aide.proposers.base import ProposerConfigError

        try:
            return self.config.hook.pytest_aide_make_proposer(
                config=self.config, settings=self.settings, original_code=code, study=study,
                notify=notify,
            )
        except ProposerConfigError as exc:
            raise pytest.UsageError(f"{study.target.module}: {exc}") from None

    def _notice(self, text: str) -> None:
        self._write_line(f"aide: {text}", yellow=True)

    def _make_executor(self, settings: AideSettings, evaluator: Any) -> Any:
        """The pytest_aide_make_executor hook's executor (hookspecs.py)."""
        return self.config.hook.pytest_aide_make_executor(
            config=self.config, settings=settings, evaluator=evaluator
        )

    def _target_run(self, study: Study, proposer_factory: Callable[[str], Any]) -> Any:
        from pytest_aide.evaluation.child_options import child_options
        from pytest_aide.run import TargetRun

        return TargetRun(
            study=study,
            settings=self.settings,
            rootdir=self.rootdir,
            proposer_factory=proposer_factory,
            write_line=self._write_line,
            rewrite_line=self._rewriter(),
            pytest_args=child_options(self._invocation_args()),
            invocation_args=self._invocation_args(),
            verbose=self.config.get_verbosity() >= 0,
            sandbox=self.sandbox,
            executor_factory=self._make_executor,
            guard_suite=self._guard_suite(study) if self.settings.guards == "auto" else [],
        )

    def _guard_suite(self, study: Study) -> list[str]:
        """The files the guard probe runs (``--aide-guards auto``): the suite's test files
        (its ``testpaths``, else the rootdir) that import the target's package, and every
        file the command line selected, relative to the rootdir."""
        from pytest_aide.study import suite_files

        testpaths = [p for pattern in self.config.getini("testpaths")
                     for p in sorted(self.rootdir.glob(pattern))] or [self.rootdir]
        found = [path for target in study.targets for path in suite_files(
            testpaths, list(self.config.getini("python_files")), target.module)]
        files = dict.fromkeys([*(Path(f) for f in self.selected_files), *found])
        return [self._relpath(path) for path in files]

    def _choose_sandbox(self) -> None:
        """Once per session (the pytest_aide_make_sandbox hook): bwrap, or a notice (header
        and summary) of what is left open."""
        from pytest_aide.evaluation.sandbox import SandboxUnavailable

        try:
            choice = self.config.hook.pytest_aide_make_sandbox(
                config=self.config, settings=self.settings, rootdir=self.rootdir
            )
        except SandboxUnavailable as exc:
            raise pytest.UsageError(str(exc)) from None
        self.sandbox = choice.sandbox
        if choice.notice:
            self._notice(choice.notice)
            self.notices.append(choice.notice)

    def _add_final_check_time(self, seconds: float) -> None:
        """The final check is part of each written run's time: its journal and report say so."""
        from pytest_aide.journal import Phase
        from pytest_aide.report.markdown import write_report_md

        for result in self.results:
            if not result.applied:
                continue
            journal = result.journal
            journal.add_time(Phase.FINAL_CHECK, seconds)
            journal.save(result.run_dir / "journal.json")
            best = journal.best if journal.best_id not in (None, 0) else None
            write_report_md(journal, result.run_dir, journal.root.code,
                            best.code if best is not None else None, step_summary=False)

    def _final_check(self, session: pytest.Session) -> None:
        """A plain ``python -m pytest`` of the selected tests against the written files
        (evaluation/plain.py): its exit status decides, and a failure puts the files back."""
        selected = [item.nodeid for item in session.items]
        # the guards from other files than the selected ones hold the written code too
        guards = [n for study in self.studies for n in study.guard_nodeids
                  if n not in set(selected)]
        nodeids = list(dict.fromkeys([*selected, *guards]))
        more = f" and {len(set(guards))} guard(s) from other files" if guards else ""
        self._write_line(f"aide: final check: a plain python -m pytest of the {len(selected)} "
                         f"selected test(s){more} against the written code")
        run_dir = self.results[0].run_dir if self.results else self.settings.log_dir
        workdir = run_dir / "final-check"
        plain = self._check_plainly(nodeids, workdir)
        replay_plain_run(self.config, session.items, plain)
        missing = [n for n in nodeids if n not in plain.outcomes]
        if missing or not plain.passed:
            self._final_check_failed(session, plain, missing, workdir)

    def _final_check_failed(self, session: pytest.Session, plain: Any, missing: list[str],
                            workdir: Path) -> None:
        """Count the failure, put the written files back, and say why."""
        if plain.passed or not any(o in {"failed", "error"} for o in plain.outcomes.values()):
            session.testsfailed += 1  # no replayed report failed: count the check itself
        restored = self._put_back_written()
        self.errors.append(
            f"the final check failed: {final_check_failure(plain, missing)} (output: "
            f"{workdir / 'output.txt'}). "
            + (f"Put back as they were: {', '.join(restored)}; the best code stays in the run "
               "directory." if restored else "")
        )

    def _check_plainly(self, nodeids: list[str], workdir: Path) -> Any:
        """The plain run's result (evaluation/plain.py), in this session's sandbox."""
        from pytest_aide.evaluation.child_options import child_options
        from pytest_aide.evaluation.evaluator import Evaluator

        evaluator = Evaluator(study=self.studies[0], rootdir=self.rootdir,
                              timeout=self.settings.timeout,
                              pytest_args=child_options(self._invocation_args()),
                              protected_exclude=[self.settings.log_dir],
                              sandbox=self.sandbox, env_drop=self.settings.env_drop,
                              env_keep=self.settings.env_keep)
        return evaluator.check_plainly(nodeids, workdir)

    def _put_back_written(self) -> list[str]:
        """Undo the write of every target this session wrote (from its backup)."""
        from pytest_aide.workspace import put_back_sources

        restored = []
        for result in self.results:
            files = self._target_files(result.study)
            if result.applied and put_back_sources(files, result.run_dir):
                result.applied, result.put_back = False, True
                result.apply_message = (f"the best code stays in {self._relpath(result.run_dir)}"
                                        "; the final check's output says why it failed")
                restored.extend(relpath for relpath, _ in files)
        return restored

    def _target_files(self, study: Study) -> list[tuple[str, Path]]:
        """Every target file of ``study`` (relpath, path), the primary first."""
        return [(self._relpath(target.path), target.path) for target in study.targets]

    def _relpath(self, path: Path) -> str:
        return path.relative_to(self.rootdir).as_posix() if path.is_relative_to(
            self.rootdir) else str(path)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.errors and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    # -- the summary ----------------------------------------------------------------------

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.results or self.errors:
            self._optimization_summary(terminalreporter)
        elif self.marked and not self.settings.optimizing:
            self._metrics_summary(terminalreporter)
        for notice in self.notices:
            terminalreporter.write_line(f"aide: {notice}", yellow=True)

    def _metrics_summary(self, terminalreporter: Any) -> None:
        terminalreporter.section("aide metrics")
        width = max(len(n) for n in self.marked)
        for nodeid, objective in self.marked.items():
            measurement = self.measured.get(nodeid)
            value = resolve(measurement, objective.metric)[0] if measurement else None
            shown = format_value(value) if measurement else "not run"
            terminalreporter.write_line(f"{nodeid:<{width}}  {objective.metric}={shown}")

    def _optimization_summary(self, terminalreporter: Any) -> None:
        from pytest_aide.report.formatting import printable
        from pytest_aide.report.terminal import summary_lines
        from pytest_aide.run import next_command

        terminalreporter.section("aide optimization")
        for result in self.results:
            lines = summary_lines(
                result.journal, result.run_dir, self.rootdir,
                applied=result.applied, patch=result.patch,
                resume_hint=next_command(self._invocation_args(), result.journal,
                                         self.settings.steps),
                already_best=result.already_best, put_back=result.put_back,
            )
            for line in lines:
                terminalreporter.write_line(line)
            if not result.applied and result.apply_message:
                terminalreporter.write_line(printable(f"  {result.apply_message}"))
        for error in self.errors:  # a final check's error may name files a candidate made
            terminalreporter.write_line(printable(f"aide error: {error}", keep_newlines=True),
                                        red=True)


def final_check_failure(plain: Any, missing: list[str]) -> str:
    """Why the final check failed, in words (``missing``: selected tests it did not report)."""
    if plain.status != "completed":
        return f"it {plain.status.replace('error', 'could not start')}"
    if plain.changed:
        return "it changed project files: " + ", ".join(plain.changed[:4])
    if plain.returncode == 0:
        return f"it exited 0 but did not report {len(missing)} of the tests"
    return f"it exited {plain.returncode}"


def replay_plain_run(config: pytest.Config, items: list[pytest.Item], plain: Any) -> None:
    """Show the plain run's outcomes as this session's own, test by test (one report each:
    the plain run's phases are not known, only its verdict per test)."""
    from pytest_aide.report.formatting import printable

    sections = plain.failures()
    hook = config.hook
    for item in items:
        outcome = plain.outcomes.get(item.nodeid)
        if outcome is None:
            continue
        when = "setup" if outcome == "error" else "call"
        reported = {"error": "failed", "xfailed": "skipped", "xpassed": "passed"}.get(
            outcome, outcome)
        longrepr: Any = None
        if reported == "skipped":
            path, line, _ = item.location
            longrepr = (path, (line or 0) + 1, f"{outcome} in the final check")
        elif reported == "failed":
            # the written candidate's failure output: shown, its escape sequences not obeyed
            longrepr = printable(sections.get(item.location[2]) or "", keep_newlines=True) \
                or f"{outcome} in the final check"
        report = pytest.TestReport(item.nodeid, item.location, dict.fromkeys(item.keywords, 1),
                                   reported, longrepr, when)
        if outcome in {"xfailed", "xpassed"}:
            report.wasxfail = ""
        hook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
        hook.pytest_runtest_logreport(report=report)
        hook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
