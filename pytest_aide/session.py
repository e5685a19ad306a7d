"""The plugin's state for one pytest session; the hooks in plugin.py delegate here.

In a plain run it only reports each marked test's metric. With ``--aide-steps N`` it runs
one optimization per target before the test loop, and, when the target file was
rewritten, runs the selected tests against the new code in a child process and replays
their reports, so the terminal and the exit status are those of the code the user now has.
"""

from __future__ import annotations

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

    # -- collection -----------------------------------------------------------------------

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.studies = build_studies(session.items, self.rootdir)
        self.marked = {o.nodeid: o for study in self.studies for o in study.objectives}

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
            self._final_check(session)
            return True
        return None

    def _invocation_args(self) -> list[str]:
        return [str(arg) for arg in self.config.invocation_params.args]

    def _terminal(self) -> Any:
        return self.config.pluginmanager.get_plugin("terminalreporter")

    def _write_line(self, line: str, **markup: bool) -> None:
        terminal = self._terminal()
        if terminal is not None:
            terminal.write_line(line, **markup)

    def _optimize_all(self) -> bool:
        from pytest_aide.evaluation.child_options import child_options
        from pytest_aide.proposers.base import ProposerConfigError
        from pytest_aide.proposers.select import make_proposer
        from pytest_aide.report.artifacts import read_source
        from pytest_aide.run import ResumeError, RunError, TargetRun

        verbose = self.config.get_verbosity() >= 0
        self._write_line("")
        self._choose_sandbox()
        written = False
        for study in self.studies:
            # Check the proposer before anything runs: a missing key is a usage error.
            try:
                original = read_source(study.target.path)
                first, notice = make_proposer(self.settings, original)
            except ProposerConfigError as exc:
                raise pytest.UsageError(f"{study.target.module}: {exc}") from None
            if notice:
                self._write_line(f"aide: {notice}", yellow=True)
            proposers = iter([first])

            def factory(code: str, proposers=proposers, checked=original) -> Any:
                # a resumed run that wrote its best searches from the original, not the file
                existing = next(proposers, None)
                if existing is not None and code == checked:
                    return existing
                return make_proposer(self.settings, code)[0]

            run = TargetRun(
                study=study,
                settings=self.settings,
                rootdir=self.rootdir,
                proposer_factory=factory,
                write_line=self._write_line,
                pytest_args=child_options(self._invocation_args()),
                invocation_args=self._invocation_args(),
                verbose=verbose,
                sandbox=self.sandbox,
            )
            try:
                result = run.run()
            except ResumeError as exc:
                raise pytest.UsageError(str(exc)) from None
            except RunError as exc:
                self.errors.append(str(exc))
                self._write_line(f"aide: {exc}", red=True)
                continue
            self.results.append(result)
            written = written or result.applied
        return written

    def _choose_sandbox(self) -> None:
        """Once per session: bwrap, or a notice (header and summary) of what is left open."""
        from pytest_aide.evaluation.sandbox import SandboxUnavailable, choose

        try:
            choice = choose(self.settings.sandbox, self.settings.network)
        except SandboxUnavailable as exc:
            raise pytest.UsageError(str(exc)) from None
        self.sandbox = choice.sandbox
        if choice.notice:
            self._write_line(f"aide: {choice.notice}", yellow=True)
            self.notices.append(choice.notice)

    def _final_check(self, session: pytest.Session) -> None:
        """Run the selected tests against the rewritten files and replay their reports."""
        from pytest_aide.evaluation.child_options import child_options
        from pytest_aide.evaluation.evaluator import Evaluator

        self._write_line("aide: running the selected tests against the final code")
        run_dir = self.results[0].run_dir if self.results else self.settings.log_dir
        evaluator = Evaluator(study=self.studies[0], rootdir=self.rootdir,
                              timeout=self.settings.timeout,
                              pytest_args=child_options(self._invocation_args()),
                              protected_exclude=[self.settings.log_dir],
                              sandbox=self.sandbox, env_drop=self.settings.env_drop,
                              env_keep=self.settings.env_keep)
        nodeids = [item.nodeid for item in session.items]
        evaluation = evaluator.evaluate(None, run_dir / "final-check", nodeids=nodeids)
        hook = self.config.hook
        for data in evaluation.reports:
            report = hook.pytest_report_from_serializable(config=self.config, data=data)
            if report is None:
                continue
            if getattr(report, "when", None) == "setup":
                hook.pytest_runtest_logstart(nodeid=report.nodeid, location=report.location)
            hook.pytest_runtest_logreport(report=report)
            if getattr(report, "when", None) == "teardown":
                hook.pytest_runtest_logfinish(nodeid=report.nodeid, location=report.location)
        missing = [n for n in nodeids if evaluation.outcome(n) == "not run"]
        if not evaluation.completed or missing:
            session.testsfailed += max(1, len(missing))
            self.errors.append(
                "the final check did not complete: "
                + evaluation.error_summary(nodeids, limit=2000)
            )

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
        from pytest_aide.report.terminal import summary_lines
        from pytest_aide.run import next_command

        terminalreporter.section("aide optimization")
        for result in self.results:
            lines = summary_lines(
                result.journal, result.run_dir, self.rootdir,
                applied=result.applied, patch=result.patch,
                resume_hint=next_command(self._invocation_args(), result.journal,
                                         self.settings.steps),
                already_best=result.already_best,
            )
            for line in lines:
                terminalreporter.write_line(line)
            if not result.applied and result.apply_message:
                terminalreporter.write_line(f"  {result.apply_message}")
        for error in self.errors:
            terminalreporter.write_line(f"aide error: {error}", red=True)
