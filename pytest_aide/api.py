"""``pytest_aide.optimize``: the same search, started from Python (a notebook, a script).

It runs pytest in a child process, exactly as ``pytest TESTS --aide-steps N`` would (the same
sandbox, guards, confirmation and final check), so that nothing the notebook has imported
or changed leaks into the measurements. The marker's arguments may be given here instead of
on the tests: the child then marks the selected tests itself (``_Mark``). When the child
ends, the run's journal is read and returned as an ``OptimizeResult``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_aide.journal import Journal

#: How the child is told what to mark (JSON: the marker's keyword arguments).
_MARK_ARGUMENT = "--aide-api-mark"


@dataclass
class OptimizeResult:
    """What a run found, read from its journal."""

    #: pytest's exit status (0: the run finished; see the README's exit codes).
    exit_code: int
    #: The run directory (journal, report, tree, patch); None when no run started.
    run_dir: Path | None
    journal: Journal | None
    #: The best code, when a candidate beat the original (else None); with several targets,
    #: every file's as ``pytest_aide.sources.Sources`` stores them (``Sources.decode(best_code,
    #: journal.relpaths)``).
    best_code: str | None
    #: The marked tests' metrics on the original and on the best, by test id.
    baseline_metrics: dict[str, float]
    best_metrics: dict[str, float]
    #: Whether the best was confirmed against the original (None: no best to confirm).
    confirmed: bool | None
    #: Whether the target file (every target file) now holds the best code.
    written: bool

    @property
    def improved(self) -> bool:
        return self.best_code is not None and bool(self.confirmed)


def optimize(tests: str | Sequence[str], *, steps: int, metric: str | None = None,
             maximize: bool | None = None, target: str | None = None,
             model: str | None = None, rootdir: str | os.PathLike[str] | None = None,
             preserve_source: bool = False, options: Sequence[str] = (),
             quiet: bool = False) -> OptimizeResult:
    """Optimize the code ``tests`` measure, ``steps`` steps, as ``pytest TESTS --aide-steps
    STEPS`` run in ``rootdir`` (default: the current directory) would.

    ``metric``/``maximize``/``target`` mark the selected tests as
    ``@pytest.mark.optimize(metric=..., maximize=..., target=...)`` does (give ``metric``
    for tests that carry no marker); ``model``: ``--aide-model`` (e.g. ``"tune"`` or
    ``"openai:MODEL"``); ``preserve_source``: keep the target file as it is; ``options``:
    more pytest or ``--aide-*`` options. The run's output is printed unless ``quiet``.
    """
    if steps < 1:
        raise ValueError(f"steps must be at least 1, not {steps}")
    where = Path(rootdir or os.getcwd()).resolve()
    selected = [tests] if isinstance(tests, str) else list(tests)
    command = [sys.executable, "-m", "pytest", *selected, "--aide-steps", str(steps),
               "-p", "pytest_aide.api", *options]
    if model is not None:
        command += ["--aide-model", model]
    if preserve_source:
        command.append("--aide-preserve-source")
    mark = {k: v for k, v in (("metric", metric), ("maximize", maximize), ("target", target))
            if v is not None}
    if mark:
        command += [_MARK_ARGUMENT, json.dumps(mark)]
    log_dir = where / ".aide"
    before = _runs(log_dir)
    exit_code = _run(command, where, quiet)
    new = sorted(_runs(log_dir) - before, key=lambda p: p.stat().st_mtime)
    return _result(exit_code, new[-1] if new else None, where)


def _run(command: list[str], cwd: Path, quiet: bool) -> int:
    """The child's exit status; its output printed as it comes, unless ``quiet``."""
    with subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, errors="replace") as child:
        assert child.stdout is not None
        for line in child.stdout:
            if not quiet:
                print(line, end="", flush=True)
        return child.wait()


def _runs(log_dir: Path) -> set[Path]:
    return {p for p in log_dir.iterdir() if (p / "journal.json").exists()} \
        if log_dir.is_dir() else set()


def _result(exit_code: int, run_dir: Path | None, rootdir: Path) -> OptimizeResult:
    if run_dir is None:
        return OptimizeResult(exit_code, None, None, None, {}, {}, None, False)
    journal = Journal.load(run_dir / "journal.json")
    best = journal.best
    improved = best is not None and best.id != journal.root.id
    confirmed = (best.confirmed or {}).get("confirmed") if improved and best else None
    best_code = best.code if improved and best else None
    written = best_code is not None and _holds(rootdir, journal, best_code)
    return OptimizeResult(exit_code, run_dir, journal, best_code,
                          dict(journal.root.metrics), dict(best.metrics) if improved and best
                          else {}, None if confirmed is None else bool(confirmed), written)


def _holds(rootdir: Path, journal: Journal, code: str) -> bool:
    """Every target file holds its text in ``code`` (several targets: sources.Sources' form)."""
    from pytest_aide.sources import Sources, SourcesError

    try:
        sources = Sources.decode(code, journal.relpaths)
    except SourcesError:
        return False
    return all((rootdir / relpath).is_file() and (rootdir / relpath).read_text(
        encoding="utf-8", errors="replace") == text for relpath, text in sources)


# -- the child's side: marking the selected tests ------------------------------------------


def pytest_addoption(parser: Any) -> None:
    parser.addoption(_MARK_ARGUMENT, default=None,
                     help="(pytest_aide.optimize) mark the selected tests with these "
                          "optimize() arguments, as JSON")


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    """Mark every selected test that carries no ``optimize`` marker of its own."""
    import pytest

    from pytest_aide.study import MARKER

    given = config.getoption(_MARK_ARGUMENT)
    if not given:
        return
    mark = getattr(pytest.mark, MARKER)(**json.loads(given))
    for item in items:
        if item.get_closest_marker(MARKER) is None:
            item.add_marker(mark)
