"""Judging one candidate: the study's tests in a child pytest, the candidate in place.

Each evaluation gets its own directory (candidate file, worker settings, results, output),
so several can run at once. The child runs in the rootdir with the user's configuration;
the parent reads back a structured :class:`Evaluation`. A child that hangs is killed with
its whole process group; one that dies without results is an error, never a pass.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_aide.evaluation import WORKER_ENV, WORKER_PLUGIN, placement
from pytest_aide.evaluation.plain import PlainRun, parse_outcomes, plain_command
from pytest_aide.evaluation.sandbox import NO_SANDBOX, NoSandbox, Sandbox, python_paths
from pytest_aide.evaluation.warm import WarmPool, WarmUnavailable, Zygote, library_imports
from pytest_aide.guards import clock, fingerprint, reaper, seal
from pytest_aide.guards.baseline import Baseline
from pytest_aide.guards.boundary import ProjectGuard, measuring_code_dirs
from pytest_aide.guards.findings import Finding, FindingKind
from pytest_aide.guards.fresh import FreshAnswers
from pytest_aide.guards.integrity import new_findings
from pytest_aide.guards.replay import Call, differences
from pytest_aide.guards.verdict import disagreements, phase_checked_outcome
from pytest_aide.metrics import HotSpot, Measurement, resolve
from pytest_aide.sources import Sources
from pytest_aide.study import Objective, Study, Target
from pytest_aide.workspace import SourceUnreadable, read_source, source_encoding

PASSED = "passed"
#: Variables a candidate must never see: any whose name contains one of these words
#: (``OPENAI_API_KEY``, ``SECRET_KEY``, ``HF_TOKEN``, ``PGPASSWORD``, ``AWS_CREDENTIALS``...).
#: A test that needs one (``TOKENIZERS_PARALLELISM``, say) names it with --aide-env-keep.
_SECRET = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH", re.IGNORECASE)
_KEEP = {"PATH", "HOME", "PYTHONPATH", "LANG", "LC_ALL", "LC_CTYPE", "TERM", "TMPDIR", "USER",
         "LOGNAME", "SHELL", "TZ"}


def child_environment(
    base: dict[str, str] | None = None, drop: Iterable[str] = (), keep: Iterable[str] = ()
) -> dict[str, str]:
    """The environment for candidate code: the user's, less keys and secrets, less the names
    in ``drop``; the names in ``keep`` pass even when they look secret."""
    env = dict(os.environ if base is None else base)
    kept = _KEEP | set(keep)
    dropped = set(drop)
    for name in list(env):
        if name in dropped or (name not in kept and _SECRET.search(name)):
            del env[name]
    env.pop("PYTEST_CURRENT_TEST", None)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


@dataclass
class TestResult:
    nodeid: str
    outcome: str
    duration: float = 0.0
    longrepr: str = ""
    measurement: Measurement = field(default_factory=Measurement)


@dataclass
class Evaluation:
    """What one child run of the study's tests produced."""

    status: str  # "completed", "timeout", "crashed" (no results), "error" (could not start)
    tests: dict[str, TestResult] = field(default_factory=dict)
    returncode: int | None = None
    duration: float = 0.0
    output_tail: str = ""
    reports: list[dict[str, Any]] = field(default_factory=list)
    collection_errors: list[str] = field(default_factory=list)
    #: What the guards saw the candidate do (any finding makes it tampered).
    tampered: list[Finding] = field(default_factory=list)
    #: Machine speed probes just before and after the tests (see speed.py).
    speed: list[float] = field(default_factory=list)
    #: Fingerprints of the state the tests rely on (see fingerprint.py).
    state: dict[str, Any] = field(default_factory=dict)
    #: Each benchmark's reported time bracketed by the parent's clock (see clock.py).
    clock: dict[str, clock.Bracket] = field(default_factory=dict)
    #: With ``coverage=True``: the tests during which the target's code ran.
    executed_target: list[str] | None = None
    #: With ``coverage=True``: the target's functions each test ran (guards/selection.py).
    target_functions: dict[str, list[str]] = field(default_factory=dict)
    #: With ``record_calls=True``: the original's calls into the target (replay.py).
    recorded_calls: list[Call] | None = None
    #: How the candidate's answers to the recorded calls differ from the original's.
    differences: list[str] = field(default_factory=list)
    #: The candidate's answers to the recorded calls, by call id (replay.py).
    replayed: dict[str, Any] | None = None
    #: Each benchmarked call's seconds on fresh inputs, by marked test (fresh.py).
    fresh: dict[str, list[float]] = field(default_factory=dict)
    #: Why a marked test's call could not be timed on fresh inputs, by marked test.
    fresh_missing: dict[str, str] = field(default_factory=dict)
    #: Where each benchmarked call spends its time, by marked test (evaluation/profile.py).
    profile: dict[str, list[HotSpot]] = field(default_factory=dict)
    #: The seed of those inputs and the answers to the first of them, by marked test.
    fresh_answers: dict[str, FreshAnswers] = field(default_factory=dict)
    #: With ``fresh_seeds``: the original's answers to those inputs, by marked test.
    original_answers: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def completed(self) -> bool:
        return self.status == "completed"

    @property
    def findings_text(self) -> list[str]:
        """The findings as a person reads them."""
        return [str(finding) for finding in self.tampered]

    def outcome(self, nodeid: str) -> str:
        result = self.tests.get(nodeid)
        return result.outcome if result and result.outcome else "not run"

    def metric(self, objective: Objective) -> float | None:
        result = self.tests.get(objective.nodeid)
        if result is None:
            return None
        return resolve(result.measurement, objective.metric)[0]

    def not_passed(self, nodeids: Iterable[str]) -> list[str]:
        """Tests that did not pass: failed, errored, skipped, xfailed or never ran."""
        return [n for n in nodeids if self.outcome(n) != PASSED]

    def _failure_lines(self, nodeids: Iterable[str]) -> list[str]:
        """Each test that did not pass, with the end of its report; when a failure ended
        the run early, the tests it left unrun are counted, not listed."""
        not_passed = self.not_passed(nodeids)
        unrun = [n for n in not_passed if self.outcome(n) == "not run"]
        if unrun and len(unrun) < len(not_passed):
            not_passed = [n for n in not_passed if n not in unrun]
        else:
            unrun = []
        lines = []
        for nodeid in not_passed:
            result = self.tests.get(nodeid)
            detail = excerpt(result.longrepr) if result else ""
            lines.append(f"{nodeid}: {self.outcome(nodeid)}" + (f"\n{detail}" if detail else ""))
        return [*lines, _unrun_line(len(unrun))] if unrun else lines

    def error_summary(self, nodeids: Iterable[str], limit: int = 4000) -> str:
        """A readable account of what went wrong, trimmed for journals and prompts."""
        if self.status == "timeout":
            head = f"evaluation timed out after {self.duration:.0f}s and was killed"
        elif self.status == "crashed":
            head = f"the test process died without results (exit code {self.returncode})"
        elif self.status == "error":
            head = "the test process could not be started"
        else:
            head = ""
        lines = [head] if head else []
        lines += [f"tampering: {t}" for t in self.tampered]
        lines += self.collection_errors
        lines += self._failure_lines(nodeids)
        text = "\n".join(line for line in lines if line)[:limit]
        if self.status != "completed" or not text:
            room = max(0, limit - len(text) - 1)
            text = (text + "\n" + self.output_tail[-room:]).strip() if room else text
        return text


def _unrun_line(count: int) -> str:
    return (f"{count} more test{'s' if count != 1 else ''} not run: the first failure ends a "
            "candidate's evaluation")


def excerpt(report: str, room: int = 1500) -> str:
    """The end of a test's failure report, where pytest puts the error and its location,
    with the error's own lines (``E   ...``) kept when the report is longer than ``room``."""
    text = report.strip()
    if len(text) <= room:
        return text
    tail = text[-room:]
    errors = [line for line in text.splitlines() if line.startswith("E ")][:12]
    missing = [line for line in errors if line not in tail]
    return "\n".join([*missing, "...", tail]) if missing else tail


@dataclass
class Evaluator:
    """Runs a study's tests in a child pytest against candidate source text."""

    study: Study
    rootdir: Path
    timeout: float = 600.0
    python: str = sys.executable
    pytest_args: list[str] = field(default_factory=list)
    #: Paths under the rootdir that are not the project (the log dir): not guarded, and
    #: hidden from a sandboxed child.
    protected_exclude: list[Path] = field(default_factory=list)
    #: The OS sandbox each child runs in (None: none, only the in-process guards).
    sandbox: Sandbox | None = None
    #: Variables dropped from the child's environment although they look harmless, and
    #: variables passed although they look secret (--aide-env-drop, --aide-env-keep).
    env_drop: list[str] = field(default_factory=list)
    env_keep: list[str] = field(default_factory=list)
    #: Start each child from a warm, sandboxed interpreter (warm.py); needs the sandbox.
    warm: bool = False
    #: Where the warm interpreters keep their scratch directories (default: under the
    #: first evaluation's directory's parent).
    warm_dir: Path | None = None
    _guard: ProjectGuard = field(init=False, repr=False, compare=False)
    _warm: WarmPool | None = field(default=None, init=False, repr=False)
    #: Children running now, so that an interrupted parallel run can end them all (abort).
    _running: set[subprocess.Popen[bytes]] = field(default_factory=set, init=False, repr=False)

    def __post_init__(self) -> None:
        # One guard for all of this evaluator's evaluations, made before any can run, so that
        # evaluations started at once from several threads share it.
        # The sandbox mounts everything but the scratch directory read-only: the measuring
        # code outside the project needs watching only without it.
        watch = [] if self._isolation.capabilities.read_only_filesystem \
            else measuring_code_dirs(self.rootdir)
        self._guard = ProjectGuard(self.rootdir, self.protected_exclude, watch)

    @property
    def _isolation(self) -> Sandbox | NoSandbox:
        """The sandbox each child runs in, ``NO_SANDBOX`` when there is none."""
        return self.sandbox if self.sandbox is not None else NO_SANDBOX

    @property
    def warm_notice(self) -> str:
        """Why evaluations start cold although warm starts were asked for ("" if not)."""
        return self._warm.notice if self._warm is not None else ""

    def close(self) -> None:
        """Stop the warm interpreters."""
        if self._warm is not None:
            self._warm.close()

    def _warm_pool(self, workdir: Path) -> WarmPool | None:
        capabilities = self._isolation.capabilities
        # a zygote ends every process it sees, and mounts each candidate at the target's path
        if not self.warm or not (capabilities.own_pid_namespace and capabilities.mounts_files):
            return None
        if self._warm is None:
            sandbox = self.sandbox
            original = _read_text(self.study.target.path) or ""
            also = [(t.path, _read_text(t.path) or "") for t in self.study.also]
            modules = library_imports(self.study.test_files, self.rootdir, self.study.target.module)
            env = child_environment(drop=self.env_drop, keep=self.env_keep)

            def make(slot: Path) -> Zygote:
                return Zygote(sandbox=sandbox, rootdir=self.rootdir, slot=slot,
                              target=self.study.target.path, original=original,
                              modules=modules, env=env, hidden=self.protected_exclude,
                              python=self.python, also=also)

            self._warm = WarmPool(make, (self.warm_dir or workdir.parent) / "warm")
        return self._warm
    def command(self, nodeids: list[str]) -> list[str]:
        return [
            self.python,
            "-m",
            "pytest",
            "-p",
            WORKER_PLUGIN,
            "-p",
            "no:cacheprovider",
            "-q",
            *self.pytest_args,
            *nodeids,
        ]

    def _texts(self, source: str) -> list[tuple[Target, str]]:
        """Each target with its text in the candidate ``source``, the primary first."""
        sources = Sources.decode(source, self.study.relpaths(self.rootdir))
        return [(target, text)
                for target, (_, text) in zip(self.study.targets, sources, strict=True)]

    def _original(self) -> str | None:
        """The target files as they are, as a candidate is stored (None: one is unreadable)."""
        texts = [_read_text(target.path) for target in self.study.targets]
        if any(text is None for text in texts):
            return None
        return Sources.of(list(zip(self.study.relpaths(self.rootdir), texts, strict=True))
                          ).encode()  # type: ignore[arg-type]

    def _code_findings(self, source: str, original: str | None) -> list[str]:
        """``new_findings`` of each target's text against its original's (with several
        targets, each finding names its file)."""
        if len(self.study.targets) == 1:
            return new_findings(source, original)
        before = dict(self._texts(original)) if original is not None else {}
        return [f"{target.path.name}: {finding}" for target, text in self._texts(source)
                for finding in new_findings(text, before.get(target))]

    def _worker_settings(
        self, source: str | None, workdir: Path, original: str | None,
        results: Path | None = None, mounted: list[Path] | None = None,
    ) -> dict[str, Any]:
        """What the worker reads first: where to write its results (default: the workdir)
        and where the candidate is; ``mounted``: the files a warm zygote mounts at the
        targets' paths, instead of the workdir's copies. With several targets, the others'
        are in ``also``, each as the primary's are."""
        settings: dict[str, Any] = {"results": str(results or workdir / "results.json"),
                                    "module": self.study.target.module}
        if source is None:
            return settings
        settings["allowed"] = seal.allowed_introspection(original)
        entries = []
        for index, (target, text) in enumerate(self._texts(source)):
            candidate = workdir / "candidate" / (
                target.path.name if index == 0 else f"{index}/{target.path.name}")
            candidate.parent.mkdir(parents=True, exist_ok=True)
            candidate.write_text(text, encoding=source_encoding(text))
            entries.append(self._candidate_entry(
                target, candidate, mounted[index] if mounted else None))
        settings.update(entries[0])
        if len(entries) > 1:
            settings["also"] = entries[1:]
        return settings

    def _candidate_entry(self, target: Target, candidate: Path, mounted: Path | None
                         ) -> dict[str, Any]:
        """Where the worker finds one target's candidate code."""
        entry: dict[str, Any] = {"module": target.module}
        if self._isolation.capabilities.mounts_files:
            # bind-mounted at the target's own path (see _command): imported as the original
            entry["candidate"] = str(target.path)
            entry["mounted"] = str(mounted or candidate)
            return entry
        entry["candidate"] = str(candidate)
        if target.path.name == "__init__.py":
            entry["search_locations"] = [str(target.path.parent)]
        return entry

    def _command(self, nodeids: list[str], settings: dict[str, Any], workdir: Path) -> list[str]:
        """The child's command line, inside the sandbox when there is one."""
        command = self.command(nodeids)
        mounts = [(Path(entry["mounted"]), Path(entry["candidate"]))
                  for entry in [settings, *settings.get("also", [])] if entry.get("mounted")]
        return self._isolation.command(
            command,
            workdir=workdir,
            cwd=self.rootdir,
            visible=[self.rootdir, *python_paths()],
            hidden=self.protected_exclude,
            mounts=mounts,
        )

    def evaluate(
        self, source: str | None, workdir: Path, nodeids: list[str] | None = None,
        slot: placement.Slot | None = None, *, baseline: Baseline | None,
        coverage: bool = False, record_calls: bool = False, replay: bool = False,
        fresh: bool = False, fresh_seeds: dict[str, int] | None = None,
        first_failure_ends: bool = False, profile: bool = False,
    ) -> Evaluation:
        """Run the tests with ``source`` as the target module (None: the file on disk), on
        ``slot``'s cores and GPUs when one is given (placement.py), else wherever the OS puts it.

        Whatever the run changed in the project is undone and, like code that reaches into
        the measuring machinery, listed in ``Evaluation.tampered``. A candidate's state and
        clock are compared with ``baseline``'s (guards/baseline.py); a caller that has none
        says so with ``baseline=None`` (the original's own run, or a test of one mechanism),
        since without it, changes to the state the tests rely on go unseen. ``coverage``:
        record which tests run the target's code (``Evaluation.executed_target``), with
        pytest-benchmark's timing off (``--benchmark-disable``: one call, no rounds).
        ``record_calls``: record the original's calls into the target (the guard probe);
        ``replay``: make the baseline's recorded calls on this code after its tests, and
        list how its answers differ (``Evaluation.differences``); ``fresh``: time the
        benchmarked calls on fresh inputs after the tests (``Evaluation.fresh``);
        ``fresh_seeds``: no test runs (they are collected only), the original answers the
        fresh inputs a candidate was timed on (``Evaluation.original_answers``);
        ``first_failure_ends``: the child stops at the first failing test (``-x``);
        ``profile``: with ``fresh``, each benchmarked call is profiled once after the tests
        (``Evaluation.profile``).
        """
        original = self._original()
        workdir.parent.mkdir(parents=True, exist_ok=True)
        # The workdir is excluded before it exists: an evaluation that ends in between must
        # not take it for something a candidate created, and undo it.
        token = self._guard.begin(exclude=[workdir])
        try:
            workdir.mkdir(parents=True, exist_ok=True)
            calls = baseline.replayed_calls() if replay and baseline is not None else None
            requests = baseline.fresh_requests() if baseline is not None else {}
            seeded = {nodeid: {**requests[nodeid], "seed": seed}
                      for nodeid, seed in (fresh_seeds or {}).items() if nodeid in requests}
            evaluation = self._run(source, workdir, nodeids, original, slot,
                                   _Extra(coverage, record_calls, calls,
                                          (requests if fresh else None) or None,
                                          seeded or None, first_failure_ends,
                                          profile and fresh))
        finally:
            trusted = source is None or source == original
            changed = self._guard.end(token, trusted, backup=workdir / "tampered-files")
        evaluation.tampered[:0] = [Finding(FindingKind.PROJECT_FILE, c) for c in changed]
        if not trusted:
            if calls:
                evaluation.differences = differences(
                    baseline.calls, evaluation.replayed or {}, baseline.tolerance)  # type: ignore[union-attr]
            self._compare_state(evaluation, baseline)
            evaluation.tampered.extend(
                Finding(FindingKind.CLOCK, finding) for finding in
                clock.clock_findings(evaluation.clock, baseline.clock if baseline else None)
            )
        if source is not None:
            found = self._code_findings(source, original)
            evaluation.tampered[:0] = [Finding(FindingKind.CODE, f) for f in found]
        return evaluation

    @staticmethod
    def _compare_state(evaluation: Evaluation, baseline: Baseline | None) -> None:
        """The candidate's fingerprints against the original code's (fingerprint.py)."""
        if not evaluation.state or baseline is None or not baseline.state:
            return
        baseline_state = baseline.state
        at_import = fingerprint.changed_since_baseline(
            baseline_state.get("at_collection", {}), evaluation.state.get("at_collection", {})
        )
        if at_import:
            evaluation.tampered.append(Finding(
                FindingKind.STATE, f"changed while the candidate was imported: {_names(at_import)}"
            ))
        expected = baseline_state.get("during", {})
        named: set[str] = set()
        for nodeid, names in evaluation.state.get("during", {}).items():
            new = fingerprint.new_changes(names, expected.get(nodeid, []))
            named.update(new)
            if new:
                evaluation.tampered.append(
                    Finding(FindingKind.STATE, f"changed during {nodeid}: {_names(new)}"))
        in_session = [
            fingerprint.changed_since_baseline(state.get("at_collection", {}),
                                               state.get("at_end", {}))
            if state.get("at_end") else []
            for state in (baseline_state, evaluation.state)
        ]
        new = [n for n in fingerprint.new_changes(in_session[1], in_session[0])
               if n not in named]
        if new:
            evaluation.tampered.append(
                Finding(FindingKind.STATE, f"changed during the tests: {_names(new)}"))

    def abort(self) -> None:
        """Kill every child running now (an interrupted parallel run); each evaluation then
        ends as a failure in its own thread, its guard restoring the project."""
        for process in list(self._running):
            _kill_group(process, only_leftovers=True)

    def _run(
        self, source: str | None, workdir: Path, nodeids: list[str] | None, original: str | None,
        slot: placement.Slot | None = None, extra: _Extra | None = None,
    ) -> Evaluation:
        extra = extra or _Extra()
        # A slot's child starts cold: a warm one would be forked by a zygote, on its cores;
        # so does a probe, whose tracing and recording start before anything is imported.
        probe = extra.coverage or extra.record_calls
        pool = self._warm_pool(workdir) if slot is None and not probe else None
        zygote = pool.take() if pool is not None else None
        if zygote is not None:
            try:
                evaluation = self._run_warm(zygote, source, workdir, nodeids, original,
                                            extra)
            except WarmUnavailable as exc:
                pool.give_up(zygote, str(exc))  # type: ignore[union-attr]
            else:
                pool.give_back(zygote)  # type: ignore[union-attr]
                return evaluation
        settings = self._worker_settings(source, workdir, original)
        extra.apply(settings, self.study.target.path, [t.path for t in self.study.also])
        key, env, results_path = self._hand_over(settings, workdir / "worker.json")
        key_fd = seal.key_pipe(key)
        env[seal.KEY_FD_ENV] = str(key_fd)
        marks = clock.MarkReader()
        env[clock.MARKS_FD_ENV] = str(marks.write_fd)
        if slot is not None:
            env.update(slot.environment())
        arguments = [*(nodeids or self.study.nodeids), *extra.pytest_arguments()]
        command = self._command(arguments, settings, workdir)
        try:
            launched = self._launch(command, env, workdir, (key_fd, marks.write_fd),
                                    started=marks.start, slot=slot)
        finally:
            os.close(key_fd)  # the child holds the only other end
            if not marks.started:
                marks.abandon()
        marks.join()
        return _evaluation(launched, results_path, key, marks)

    def _hand_over(self, settings: dict[str, Any], settings_path: Path
                   ) -> tuple[str, dict[str, str], Path]:
        """Write the worker's settings where it finds them, clear old results; a new key and
        a clean environment for the child."""
        settings_path.write_text(json.dumps(settings), encoding="utf-8")
        results_path = Path(settings["results"])
        results_path.unlink(missing_ok=True)
        env = child_environment(drop=self.env_drop, keep=self.env_keep)
        env[WORKER_ENV] = str(settings_path)
        return seal.new_key(), env, results_path

    def _run_warm(self, zygote: Zygote, source: str | None, workdir: Path,
                  nodeids: list[str] | None, original: str | None,
                  extra: _Extra | None = None) -> Evaluation:
        """``_run``, forked from a warm interpreter (warm.py): the worker's settings and
        results live in the zygote's slot, the only place it may write."""
        shown = source if source is not None else original
        texts = ([text for _, text in self._texts(shown)] if shown is not None
                 else [""] * len(self.study.targets))
        zygote.prepare(texts[0], texts[1:])
        slot = zygote.slot
        settings = self._worker_settings(source, workdir, original, results=slot / "results.json",
                                         mounted=[zygote.candidate_file, *zygote.also_files])
        if extra is not None:
            extra.apply(settings, self.study.target.path, [t.path for t in self.study.also])
        key, env, results_path = self._hand_over(settings, slot / "worker.json")
        key_fd = seal.key_pipe(key)
        marks = clock.MarkReader()
        output_path = workdir / "output.txt"
        args = self.command([*(nodeids or self.study.nodeids),
                             *(extra.pytest_arguments() if extra else [])])[3:]
        begun = time.perf_counter()
        try:
            with output_path.open("wb") as output:
                pid = zygote.pid or 0
                status, returncode = zygote.run(
                    args, env,
                    [(seal.KEY_FD_ENV, key_fd), (clock.MARKS_FD_ENV, marks.write_fd)],
                    output.fileno(), self.timeout, sent=lambda: marks.start(pid),
                )
        finally:
            os.close(key_fd)
            if not marks.started:
                marks.abandon()
        marks.join()
        launched = Launched(status, returncode, time.perf_counter() - begun, output_path)
        return _evaluation(launched, results_path, key, marks)

    def check_plainly(self, nodeids: list[str], workdir: Path) -> PlainRun:
        """The final check (plain.py): the tests in a plain ``python -m pytest`` against the
        project's files as they are now, sandboxed and guarded like any evaluation."""
        workdir.parent.mkdir(parents=True, exist_ok=True)
        token = self._guard.begin(exclude=[workdir])
        try:
            workdir.mkdir(parents=True, exist_ok=True)
            command = plain_command(self.pytest_args, nodeids, self.python)
            command = self._isolation.command(
                command, workdir=workdir, cwd=self.rootdir,
                visible=[self.rootdir, *python_paths()], hidden=self.protected_exclude,
                mounts=[],
            )
            env = child_environment(drop=self.env_drop, keep=self.env_keep)
            launched = self._launch(command, env, workdir, ())
        finally:
            changed = self._guard.end(token, False, backup=workdir / "tampered-files")
        output = launched.output()
        return PlainRun(status=launched.status, returncode=launched.returncode,
                        outcomes=parse_outcomes(output, nodeids), output=output,
                        duration=launched.duration, changed=changed)

    def _launch(self, command: list[str], env: dict[str, str], workdir: Path,
                pass_fds: tuple[int, ...], started: Callable[[int], None] | None = None,
                slot: placement.Slot | None = None) -> Launched:
        """Run one child to its end or its timeout; kill whatever it left behind."""
        output_path = workdir / "output.txt"
        begun = time.perf_counter()
        status = "completed"
        returncode: int | None = None
        with output_path.open("wb") as output:
            try:
                with placement.placed(slot):
                    process = subprocess.Popen(
                        command,
                        cwd=self.rootdir,
                        env=env,
                        stdin=subprocess.DEVNULL,
                        stdout=output,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                        pass_fds=pass_fds,
                    )
            except OSError as exc:
                output.write(str(exc).encode())
                return Launched("error", None, 0.0, output_path)
            if started is not None:
                started(process.pid)
            # without a PID namespace of its own, the child's leftovers are reaped here
            reaps = (not self._isolation.capabilities.own_pid_namespace
                     and reaper.become_subreaper())
            if reaps:
                reaper.started(process.pid)
            self._running.add(process)
            try:
                returncode = _wait(process, self.timeout)
            except subprocess.TimeoutExpired:
                status = "timeout"
                _kill_group(process)
            except BaseException:
                _kill_group(process)
                raise
            finally:
                self._running.discard(process)
                _kill_group(process, only_leftovers=True)
                if reaps:
                    reaper.finished(process.pid)
        return Launched(status, returncode, time.perf_counter() - begun, output_path)


@dataclass
class _Extra:
    """What an evaluation does beyond running the tests (the worker reads its settings)."""

    coverage: bool = False
    record_calls: bool = False
    #: The recorded calls to make on the candidate after its tests (args only).
    replay: list[dict[str, Any]] | None = None
    #: The benchmarked calls to time on fresh inputs after the tests, by marked test.
    fresh: dict[str, dict[str, Any]] | None = None
    #: The benchmarked calls and the seeds of the fresh inputs the original is to answer.
    fresh_answers: dict[str, dict[str, Any]] | None = None
    first_failure_ends: bool = False
    profile: bool = False

    def pytest_arguments(self) -> list[str]:
        """A probe takes one call of each benchmark (no rounds); answering fresh inputs
        needs the tests collected (their imports), not run; a candidate's cascade stops at
        its first failure."""
        if self.fresh_answers:
            return ["--collect-only"]
        if self.coverage or self.record_calls:
            return ["--benchmark-disable"]
        return ["-x"] if self.first_failure_ends else []

    def apply(self, settings: dict[str, Any], target: Path, also: Iterable[Path] = ()
              ) -> None:
        """``also``: the other target files, measured by the coverage probe too."""
        if self.coverage:
            settings["coverage_of"] = str(target)
            settings["coverage_also"] = [str(path) for path in also]
        if self.record_calls:
            settings["record_calls"] = True
        if self.replay is not None:
            settings["replay"] = self.replay
        if self.fresh:
            settings["fresh"] = self.fresh
        if self.fresh_answers:
            settings["fresh_answers"] = self.fresh_answers
        if self.profile:
            settings["profile"] = True


@dataclass
class Launched:
    """How one child process ended, and where its output is."""

    status: str
    returncode: int | None
    duration: float
    output_path: Path

    def output(self) -> str:
        try:
            return self.output_path.read_bytes().decode("utf-8", "replace")
        except OSError:
            return ""

    def tail(self, size: int = 6000) -> str:
        return self.output()[-size:]


def _names(names: list[str], limit: int = 6) -> str:
    names = list(dict.fromkeys(names))
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _read_text(path: Path) -> str | None:
    """The target's source as Python reads it (its declared encoding), None if it cannot
    be read."""
    try:
        return read_source(path)
    except (OSError, SourceUnreadable):
        return None


def _wait(process: subprocess.Popen[bytes], timeout: float) -> int:
    """``process.wait(timeout)`` without its polling: given a timeout, Popen sleeps up to
    50 ms between looks, which every evaluation would wait on top of its own time. A pidfd
    becomes readable the moment the process ends (Linux 5.3+; elsewhere, Popen's way)."""
    try:
        pidfd = os.pidfd_open(process.pid)
    except (AttributeError, OSError):
        return process.wait(timeout=timeout)
    try:
        ready, _, _ = select.select([pidfd], [], [], timeout)
    finally:
        os.close(pidfd)
    if not ready:
        raise subprocess.TimeoutExpired(process.args, timeout)
    return process.wait()


def _kill_group(process: subprocess.Popen[bytes], only_leftovers: bool = False) -> None:
    """Kill the child's whole process group (grandchildren too); reap the child."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    if not only_leftovers:
        process.wait()


def _evaluation(launched: Launched, results_path: Path, key: str,
                marks: clock.MarkReader) -> Evaluation:
    """What a finished child said, read and checked against its key and marks."""
    evaluation = Evaluation(status=launched.status, returncode=launched.returncode,
                            duration=launched.duration, output_tail=launched.tail())
    if launched.status == "completed":
        _read_results(evaluation, results_path, key, marks)
    # Read, it has served: its reports, fingerprints and answers are 1 MB or more per
    # evaluation on a large module; what is kept is in the journal and baseline.json.
    with contextlib.suppress(OSError):
        results_path.unlink()
    return evaluation


def _read_judging(evaluation: Evaluation, data: dict[str, Any]) -> None:
    """What the probe and the behaviour checks reported: coverage, recorded calls, the
    replayed answers, fresh-input timings."""
    if "executed_target" in data:
        evaluation.executed_target = [str(n) for n in data["executed_target"]]
    evaluation.target_functions = {str(test): [str(f) for f in functions]
                                   for test, functions in
                                   (data.get("target_functions") or {}).items()}
    if "recorded_calls" in data:
        evaluation.recorded_calls = [Call.from_dict(c) for c in data["recorded_calls"]]
    evaluation.replayed = data.get("replayed")
    evaluation.profile = {str(n): [HotSpot.from_dict(s) for s in spots]
                          for n, spots in (data.get("profile") or {}).items()}
    _read_fresh(evaluation, data)


def _read_fresh(evaluation: Evaluation, data: dict[str, Any]) -> None:
    """The fresh inputs' timings, why there were none, their seed and answers (a candidate's),
    or the original's answers to a candidate's (fresh.py)."""
    fresh = {str(n): v for n, v in (data.get("fresh") or {}).items() if isinstance(v, dict)}
    evaluation.fresh = {n: [float(t) for t in v.get("times") or []] for n, v in fresh.items()}
    evaluation.fresh_missing = {n: str(v["missing"]) for n, v in fresh.items()
                                if v.get("missing")}
    evaluation.fresh_answers = {n: FreshAnswers(int(v["seed"]), list(v.get("answers") or []))
                                for n, v in fresh.items() if v.get("seed") is not None}
    evaluation.original_answers = {str(n): list(v or [])
                                   for n, v in (data.get("original_answers") or {}).items()}


def _read_results(evaluation: Evaluation, path: Path, key: str, marks: clock.MarkReader) -> None:
    data, forged = seal.read_signed(path, key)
    if forged:
        evaluation.tampered.append(Finding(FindingKind.RESULTS, forged))
        return
    if data is None:
        evaluation.status = "crashed"
        return
    evaluation.tampered.extend(
        Finding(FindingKind.RESULTS, disagreement) for disagreement in
        disagreements(data, returncode=evaluation.returncode, output=evaluation.output_tail))
    evaluation.reports = data.get("reports", [])
    evaluation.collection_errors = data.get("collection_errors", [])
    evaluation.tampered.extend(Finding(FindingKind.MEASURING, str(t))
                               for t in data.get("tampered", []))
    evaluation.speed = [float(s) for s in data.get("speed", [])]
    evaluation.state = data.get("state") or {}
    _read_judging(evaluation, data)
    evaluation.clock, problems = marks.brackets(data.get("clock") or {})
    evaluation.tampered.extend(Finding(FindingKind.CLOCK, problem) for problem in problems)
    for nodeid, entry in data.get("tests", {}).items():
        evaluation.tests[nodeid] = TestResult(
            nodeid=nodeid,
            outcome=phase_checked_outcome(nodeid, entry.get("outcome"), evaluation.reports),
            duration=float(entry.get("duration") or 0.0),
            longrepr=entry.get("longrepr") or "",
            measurement=Measurement.from_dict(entry.get("measurement") or {}),
        )
