"""The child side of an evaluation: a small pytest plugin
(``-p pytest_aide.evaluation.worker``).

It maps the target module's import name to the candidate's file (so the tests, and
``inspect.getsource`` or Triton's JIT, see the candidate), records every test's outcome and
measurement, and writes them as JSON for the parent, signed (seal.py). It never edits the
user's files.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_aide.evaluation import WORKER_ENV
from pytest_aide.evaluation.profile import profiles
from pytest_aide.evaluation.speed import probe
from pytest_aide.guards import clock, device_timing, fingerprint, seal, selection
from pytest_aide.guards.fresh import FRESH_SHARE, original_answers, time_fresh
from pytest_aide.guards.integrity import MeasuringIntegrity
from pytest_aide.guards.reads import TargetReads
from pytest_aide.guards.replay import Recorder, replay
from pytest_aide.metrics import measure_item
from pytest_aide.study import MARKER
from pytest_aide.workspace import SourceUnreadable, read_source

#: Identities of clocks and measuring code, recorded before the candidate first runs.
_INTEGRITY = MeasuringIntegrity()


class CandidateFinder(importlib.abc.MetaPathFinder):
    """Serves one module name from the candidate's file instead of the project's (with no
    path, the candidate is mounted at the target's own: it only notes the first import)."""

    def __init__(self, module: str, path: str | None, search_locations: list[str] | None) -> None:
        self.module = module
        self.path = path
        self.search_locations = search_locations

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != self.module:
            return None
        _INTEGRITY.arm()  # the candidate's code runs next: record the baseline first
        if self.path is None:
            return None
        return importlib.util.spec_from_file_location(
            fullname, self.path, submodule_search_locations=self.search_locations
        )


class RecordingLoader(importlib.abc.Loader):
    """Runs the target module as its own loader would, then lets the recorder wrap its
    functions before any test module binds them (replay.py)."""

    def __init__(self, loader: Any, recorder: Recorder) -> None:
        self.loader = loader
        self.recorder = recorder

    def create_module(self, spec: Any) -> Any:
        return self.loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self.loader.exec_module(module)
        self.recorder.install(module)

    def __getattr__(self, name: str) -> Any:  # get_source, get_code...: the real loader's
        return getattr(self.loader, name)


class RecordingFinder(importlib.abc.MetaPathFinder):
    """Finds the target module as the finders after it do, and loads it through a
    RecordingLoader (the guard probe only: the original's calls are recorded)."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != self.recorder.module:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = RecordingLoader(spec.loader, self.recorder)
                return spec
        return None


def _load_config() -> dict[str, Any]:
    """The parent's settings (the file is deleted once read) and the key, from its pipe."""
    location = os.environ.get(WORKER_ENV)
    if not location:
        return {}
    path = Path(location)
    config = json.loads(path.read_text(encoding="utf-8"))
    path.unlink(missing_ok=True)
    config["key"] = seal.take_key()
    config["marks"] = clock.MarkWriter.from_environment()
    # measured runs look like plain runs: no variable of the optimizer's reaches project code
    for name in [n for n in os.environ if n.startswith("PYTEST_AIDE_")]:
        del os.environ[name]
    return config


def _write_results(payload: str) -> None:
    """The one function the audit hook accepts a request to write the results from."""
    sys.audit(seal.WRITE_EVENT, payload)


def install_candidate(config: dict[str, Any]) -> None:
    """Serve each target module from its candidate file (the primary's settings, and with
    several targets each of ``also``'s)."""
    for one in [config, *config.get("also", [])]:
        module = one.get("module")
        candidate = one.get("candidate")
        if not module or not candidate:
            continue
        sys.modules.pop(module, None)
        # a mounted candidate sits at the target's own path: plain imports find it
        path = None if one.get("mounted") else candidate
        sys.meta_path.insert(0, CandidateFinder(module, path, one.get("search_locations")))


def _candidate_files(config: dict[str, Any]) -> list[str] | None:
    """The file names the candidate's code runs from (None: the project's own code)."""
    if not config.get("candidate"):
        return None
    return [config["candidate"], *(one["candidate"] for one in config.get("also", []))]


def _target_modules(config: dict[str, Any]) -> tuple[str, ...]:
    """Every target module: the primary's, then the others'."""
    names = [config.get("module") or "", *(one["module"] for one in config.get("also", []))]
    return tuple(name for name in names if name)


_CONFIG = _load_config()
fingerprint.restart()  # what project code changes in the environment counts, not what it got
#: The guard probe's recorder of the original's calls (replay.py), installed before the
#: target is first imported.
_RECORDER = Recorder(_CONFIG["module"]) if _CONFIG.get("record_calls") else None
if _RECORDER is not None:
    sys.meta_path.insert(0, RecordingFinder(_RECORDER))
if _CONFIG.get("results"):
    seal.install(_CONFIG.pop("key", ""), Path(_CONFIG["results"]), _candidate_files(_CONFIG),
                 _write_results.__code__, _CONFIG.get("allowed"))
if _CONFIG.get("marks"):
    _CONFIG["marks"].install()  # before any project code, or identities are recorded
install_candidate(_CONFIG)


def _outcome(previous: str | None, report: pytest.TestReport) -> str:
    """Fold one phase's report into the test's overall outcome."""
    if previous in {"error", "failed"}:
        return previous
    if hasattr(report, "wasxfail"):
        return "xfailed" if report.skipped else ("xpassed" if report.passed else "failed")
    if report.failed:
        return "failed" if report.when == "call" else "error"
    if report.skipped:
        return "skipped"
    if previous in {"skipped", "xfailed", "xpassed"}:
        return previous
    return "passed"


class StateWatch:
    """Fingerprints of what the tests rely on: once all is loaded, and around each test."""

    def __init__(self, target: str | tuple[str, ...], rootdir: Path) -> None:
        self.target = target
        self.rootdir = rootdir
        self.modules: list[str] = []
        self.test_modules: list[Any] = []
        self.at_collection: dict[str, str] = {}
        self.at_end: dict[str, str] = {}
        self.during: dict[str, list[str]] = {}
        self._before: dict[str, Any] = {}

    def loaded(self, session: pytest.Session) -> None:
        seen = {}
        for item in session.items:
            module = getattr(item, "module", None)
            if module is not None:
                seen[id(module)] = module
        self.test_modules = list(seen.values())
        self.modules = fingerprint.watched_modules(self.test_modules, self.rootdir, self.target)
        self.at_collection = fingerprint.digests(self.modules, self.test_modules, self.target)

    def before(self) -> None:
        self._before = fingerprint.identities(self.modules, self.test_modules)

    def after(self, nodeid: str) -> None:
        now = fingerprint.identities(self.modules, self.test_modules)
        found = fingerprint.changed(self._before, now)
        if found:
            self.during[nodeid] = found

    def finished(self) -> None:
        if self.modules or self.test_modules:
            self.at_end = fingerprint.digests(self.modules, self.test_modules, self.target)

    def to_dict(self) -> dict[str, Any]:
        return {"at_collection": self.at_collection, "at_end": self.at_end,
                "during": self.during}


class TargetCoverage:
    """Which tests execute the target's code (``--aide-guards auto``): coverage.py measuring
    only the target's file, with one context per test, so that a line run while the module
    was imported (collection) counts for no test."""

    def __init__(self, path: str, also: list[str] | None = None) -> None:
        import coverage

        self.path = path
        #: The other target files (``target=[...]``): a test that runs their code guards too;
        #: their functions are named ``file.py::qualname``, apart from the primary's.
        self.also = list(also or [])
        self.cov = coverage.Coverage(data_file=None, include=[path, *self.also],
                                     config_file=False)
        self.cov.start()

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None):
        self.cov.switch_context(item.nodeid)
        yield
        self.cov.switch_context("")

    def executed(self) -> dict[str, list[str]]:
        """The functions of the target each test ran (``selection.AT_IMPORT``: those that ran
        while it was imported); a test that ran only module-level code has an empty list."""
        self.cov.stop()
        data = self.cov.get_data()
        found: dict[str, list[str]] = {}
        for path in [self.path, *self.also]:
            prefix = "" if path == self.path else f"{Path(path).name}::"
            for context, names in self._functions_run(data, path, bool(self.also)).items():
                found.setdefault(context, []).extend(prefix + name for name in names)
        return found

    @staticmethod
    def _functions_run(data: Any, path: str, several: bool) -> dict[str, list[str]]:
        """Each context's functions of ``path`` that ran (``several``: other files were
        measured too, and are left out)."""
        lines: dict[str, set[int]] = {}
        for measured in data.measured_files():
            if several and os.path.realpath(measured) != os.path.realpath(path):
                continue
            for line, names in (data.contexts_by_lineno(measured) or {}).items():
                for name in names:
                    lines.setdefault(name, set()).add(line)
        try:
            spans = selection.function_spans(read_source(Path(path)))
        except (OSError, SourceUnreadable):
            spans = []
        return {context: selection.functions_run(spans, ran) for context, ran in lines.items()}


class WorkerRecorder:
    """Collects outcomes, measurements and serialised reports; writes them at the end."""

    def __init__(self, config: pytest.Config, settings: dict[str, Any]) -> None:
        self.config = config
        self.writes_results = bool(settings.get("results"))
        self.tests: dict[str, dict[str, Any]] = {}
        self.reports: list[dict[str, Any]] = []
        self.collected: list[str] = []
        self.collection_errors: list[str] = []
        self.speed: list[float] = []  # machine speed probes, before and after the tests
        self.state = StateWatch(_target_modules(settings), Path(str(config.rootpath)))
        self.marks: clock.MarkWriter = settings.get("marks") or clock.MarkWriter(None)
        self.clock: dict[str, dict[str, Any]] = {}  # nodeid -> its mark and reported seconds
        self.coverage: TargetCoverage | None = None
        self.reads: TargetReads | None = None
        #: Each marked test's ``inputs=`` (fresh inputs of its own making), by node id.
        self.inputs: dict[str, Any] = {}

    def _test(self, nodeid: str) -> dict[str, Any]:
        return self.tests.setdefault(
            nodeid,
            {"outcome": None, "duration": 0.0, "longrepr": "", "measurement": None},
        )

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]):
        outcome = yield
        report: pytest.TestReport = outcome.get_result()
        if report.when == "call" or (report.when == "setup" and not report.passed):
            entry = self._test(item.nodeid)
            _INTEGRITY.check_measurement(item)
            entry["measurement"] = measure_item(item, report.capstdout).to_dict()
            if item.nodeid in self.marks.marked:
                fixture = getattr(item, "funcargs", {}).get("benchmark")
                self.clock[item.nodeid] = {"mark": self.marks.marked[item.nodeid],
                                           **clock.reported(fixture)}

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtestloop(self, session: pytest.Session):
        self.speed.append(probe())
        yield
        self.speed.append(probe())

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.collection_errors.append(f"{report.nodeid}: {str(report.longrepr)[-4000:]}")

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.collected = [item.nodeid for item in session.items]
        for item in session.items:
            marker = item.get_closest_marker(MARKER)
            if marker is not None and marker.kwargs.get("inputs") is not None:
                self.inputs[item.nodeid] = marker.kwargs["inputs"]
        self.state.loaded(session)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item: pytest.Item):
        if _RECORDER is not None:
            _RECORDER.current_test = item.nodeid
            _RECORDER.current_marked = item.get_closest_marker(MARKER) is not None
        self.marks.current = item.nodeid
        self.state.before()
        yield
        self.marks.current = ""
        self.state.after(item.nodeid)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "teardown":
            _INTEGRITY.check(f"after {report.nodeid}")
        entry = self._test(report.nodeid)
        entry["outcome"] = _outcome(entry["outcome"], report)
        entry["duration"] += report.duration
        if report.failed and report.longrepr is not None:
            entry["longrepr"] = (entry["longrepr"] + "\n" + str(report.longrepr))[-8000:]
        elif report.skipped and isinstance(report.longrepr, tuple):
            entry["longrepr"] = str(report.longrepr[2])
        data = self.config.hook.pytest_report_to_serializable(config=self.config, report=report)
        if data is not None:
            self.reports.append(data)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if not self.writes_results:
            return
        # the candidate's code runs again here: before the last checks, which see what it did
        # (not when a test failed: the candidate is wrong already, its answers and speed moot)
        judged = self._judged_afterwards() if not session.testsfailed else {}
        answers = (_original_answers(_CONFIG["module"], _CONFIG["fresh_answers"], self.inputs)
                   if _CONFIG.get("fresh_answers") else None)
        _INTEGRITY.check("at the end of the session")
        self.state.finished()
        payload = {
            "exitstatus": int(exitstatus),
            "collected": self.collected,
            "collection_errors": self.collection_errors,
            "tests": self.tests,
            "reports": self.reports,
            "tampered": _INTEGRITY.tampered + seal.findings(),
            "speed": self.speed,
            "state": self.state.to_dict(),
            "clock": self.clock,
        }
        if self.coverage is not None:
            functions = self.coverage.executed()
            for reader in self.reads.readers if self.reads is not None else ():
                functions.setdefault(reader, [])  # read the target's values, ran none of it
            payload["executed_target"] = sorted(c for c in functions if c != selection.AT_IMPORT)
            payload["target_functions"] = functions
        module = sys.modules.get(_CONFIG.get("module") or "")
        if _RECORDER is not None and module is not None:
            _RECORDER.check_stability(module)
            payload["recorded_calls"] = [call.to_dict() for call in _RECORDER.calls]
        payload.update(judged)
        if answers is not None:
            payload["original_answers"] = answers
        _write_results(json.dumps(payload, default=str))

    def _judged_afterwards(self) -> dict[str, Any]:
        """What runs the candidate's code again after its tests passed: the replay of the
        original's calls, the fresh inputs, the profile of the benchmarked calls."""
        name = _CONFIG["module"]
        found: dict[str, Any] = {}
        if _CONFIG.get("replay") is not None:
            found["replayed"] = _replayed(name, _CONFIG["replay"])
        if _CONFIG.get("fresh"):
            found["fresh"] = _fresh(name, _CONFIG["fresh"], self.inputs, self.tests)
            if _CONFIG.get("profile"):
                found["profile"] = profiles(_target(name), _CONFIG["fresh"])
        return found


def _fresh(name: str, calls: dict[str, dict[str, Any]], inputs: dict[str, Any],
           tests: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Each benchmarked call timed on fresh inputs (fresh.py), by the marked test (made by
    its marker's ``inputs=`` when it has one), within ``FRESH_SHARE`` of that test's time."""
    module = sys.modules.get(name)
    if module is None:
        return {}
    return {nodeid: time_fresh(module, call, given=inputs.get(nodeid),
                               budget=FRESH_SHARE * tests.get(nodeid, {}).get("duration", 0.0)
                               ).to_dict()
            for nodeid, call in calls.items()}


def _original_answers(name: str, requests: dict[str, dict[str, Any]],
                      inputs: dict[str, Any]) -> dict[str, Any]:
    """The original's answers to the fresh inputs a candidate was timed on (its seeds)."""
    module = _target(name)
    if module is None:
        return {}
    return {nodeid: original_answers(module, request, int(request["seed"]), inputs.get(nodeid))
            for nodeid, request in requests.items()}


def _target(name: str) -> Any:
    """The target module as the tests imported it, or imported now (None if it fails)."""
    module = sys.modules.get(name)
    if module is None:
        try:
            module = importlib.import_module(name)
        except Exception:
            return None
    return module


def _replayed(name: str, calls: list[dict[str, Any]]) -> dict[int, Any]:
    """The recorded calls made on the candidate, after its tests (replay.py)."""
    if not calls:
        return {}
    module = _target(name)
    if module is None:
        return {}  # every call then counts as not replayed
    return replay(module, calls)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """pytest-benchmark's session (and its timer) exists by now, not yet when this plugin's
    ``pytest_configure`` runs: its timer is made to wait for GPU work, then accepted."""
    if _CONFIG:
        device_timing.wrap_benchmark_timer(session.config)
        _INTEGRITY.note_benchmark_timer(session.config)


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    if _CONFIG:
        _INTEGRITY.arm()
        recorder = WorkerRecorder(config, _CONFIG)
        config.pluginmanager.register(recorder, "aide-worker-recorder")
        if _CONFIG.get("coverage_of"):
            recorder.coverage = TargetCoverage(_CONFIG["coverage_of"],
                                               _CONFIG.get("coverage_also"))
            config.pluginmanager.register(recorder.coverage, "aide-target-coverage")
            if _CONFIG.get("module"):
                recorder.reads = TargetReads(_CONFIG["module"])
                config.pluginmanager.register(recorder.reads, "aide-target-reads")
