"""A mutation check the team can rerun: does the suite fail when a safety behaviour breaks?

Each entry of ``BREAKS`` names one behaviour the user relies on, the few replacements in the
source that break it, and the tests expected to notice. For each break in turn the script
copies the repository into a temporary directory (the working tree as it is, or ``--ref REV``
as committed), applies the replacements to the copy only, and runs the chosen tests there
with the copy first on ``PYTHONPATH`` (checked: the copy's ``pytest_aide`` is the one
imported, in the tests' subprocesses too). A break is caught when at least one test fails;
the report names those tests. An unbroken copy runs the same tests first; a test that fails
there too is left out of the broken runs (and named), so it is never taken for a catch.

A replacement whose text is not found exactly once stops the script at once, naming the
break: the code moved, and the table must follow it (the ``old`` texts are short on purpose).

Run: ``python benchmarks/mutations.py [--only NAME ...] [--ref REV] [--all-failures]
[--no-baseline]``; exit 0 when every break is caught. About 10 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Not part of the copy: version control, environments, caches, earlier runs.
IGNORED = (".git", ".venv", ".tox", ".aide", "__pycache__", "*.egg-info", ".pytest_cache",
           ".ruff_cache", "artifacts")


@dataclass(frozen=True)
class Edit:
    """Replace ``old`` (found exactly once) by ``new`` in ``path`` (relative to the root)."""

    path: str
    old: str
    new: str


@dataclass(frozen=True)
class Break:
    name: str
    edits: tuple[Edit, ...]
    tests: tuple[str, ...]  # files or node ids, relative to the root
    notes: str = ""


BREAKS: tuple[Break, ...] = (
    Break(
        "judge ignores tampering",
        (Edit("pytest_aide/search/judge.py",
              "    if evaluation.tampered:\n",
              "    if False:  # mutation: tampering ignored\n"),),
        ("tests/test_resume_baseline.py", "tests/test_adversaries.py"),
    ),
    Break(
        "judge ignores guards (failed guard tests)",
        (Edit("pytest_aide/search/judge.py",
              "    if not evaluation.completed or evaluation.not_passed(nodeids):\n",
              "    if not evaluation.completed:  # mutation: failed guards ignored\n"),),
        ("tests/search/test_loop.py::test_loop_keeps_the_best_passing_candidate",
         "tests/test_adversaries.py"),
    ),
    Break(
        "judge ignores the replayed answers",
        (Edit("pytest_aide/search/judge.py",
              "    if evaluation.differences:\n",
              "    if False:  # mutation: behaviour differences ignored\n"),),
        ("tests/test_behaviour.py",),
    ),
    Break(
        "guards chosen by file only",
        (Edit("pytest_aide/search/loop.py",
              "        auto = self.context.guard_mode is GuardMode.AUTO and "
              "bool(self.context.guard_suite)\n",
              "        auto = False  # mutation: guards chosen by file\n"),),
        ("tests/test_guards.py",),
    ),
    Break(
        "confirmation always true",
        (Edit("pytest_aide/search/confirm.py",
              "    confirmed = machine.confirmed\n",
              "    confirmed = True  # mutation: every timed confirmation succeeds\n"),),
        ("tests/search", "tests/test_final_check.py", "tests/test_run.py"),
    ),
    Break(
        "key kept in the child environment",
        (Edit("pytest_aide/evaluation/evaluator.py",
              "if name in dropped or (name not in kept and _SECRET.search(name)):",
              "if name in dropped:  # mutation: secrets kept"),),
        ("tests/evaluation/test_evaluator.py::test_child_environment_has_no_provider_keys",
         "tests/test_trust.py::test_a_candidate_finds_no_key_in_its_environment"),
    ),
    Break(
        "write not atomic",
        (Edit("pytest_aide/journal.py",
              '    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")\n',
              "    temporary = path  # mutation: written in place\n"),),
        ("tests/test_workspace.py",),
    ),
    Break(
        "sandbox without PID namespace",
        (Edit("pytest_aide/evaluation/sandbox.py",
              '            "--unshare-pid",\n            "--as-pid-1",\n', ""),),
        ("tests/evaluation/test_zygote.py",
         "tests/evaluation/test_sandbox.py::test_hostile_candidate_is_contained_by_the_sandbox"),
    ),
)


class TableOutOfDate(SystemExit):
    """A break's text is no longer in the code: the table must be updated."""


@dataclass
class Outcome:
    name: str
    caught_by: list[str] = field(default_factory=list)
    exit_code: int | None = None
    seconds: float = 0.0
    problem: str = ""  # the run itself went wrong (timeout, collection error)


def copy_repository(destination: Path, ref: str | None) -> Path:
    """The repository (working tree, or ``ref`` as committed) copied to ``destination``."""
    if ref is None:
        shutil.copytree(ROOT, destination, ignore=shutil.ignore_patterns(*IGNORED))
        return destination
    destination.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", "--format=tar", ref], cwd=ROOT, check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(destination)], input=archive, check=True)
    return destination


def apply(edits: tuple[Edit, ...], copy: Path, name: str) -> None:
    for edit in edits:
        path = copy / edit.path
        text = path.read_text(encoding="utf-8") if path.is_file() else ""
        found = text.count(edit.old)
        if found != 1:
            raise TableOutOfDate(
                f"error: break {name!r}: the text to replace is found {found} times in "
                f"{edit.path}, not once (the code moved): update BREAKS in {__file__}\n"
                f"  text: {edit.old!r}")
        path.write_text(text.replace(edit.old, edit.new), encoding="utf-8")


def environment(copy: Path) -> dict[str, str]:
    """The tests' environment: the copy first on the path, CI's rule that a skip fails (a
    break that makes a tool unusable must not pass as skipped tests), no stray run."""
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    env["CI"] = "true"
    env["PYTHONPATH"] = os.pathsep.join([str(copy), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def check_imported_from(copy: Path) -> None:
    """The copy's pytest_aide is the one imported (an editable install must not win)."""
    code = "import pytest_aide, pytest_aide.plugin; print(pytest_aide.__file__)"
    done = subprocess.run([sys.executable, "-c", code], cwd=copy, env=environment(copy),
                          capture_output=True, text=True, check=True)
    where = Path(done.stdout.strip()).resolve()
    if not where.is_relative_to(copy.resolve()):
        raise SystemExit(f"error: the copy's tests would import pytest_aide from {where}")


def failed_tests(output: str) -> list[str]:
    """The node ids in pytest's short summary (``-rfE``); lines before it (a pytester run's
    own output, shown in a failure) do not count."""
    _, marker, summary = output.rpartition("short test summary info")
    found = []
    for line in summary.splitlines() if marker else []:
        kind, _, rest = line.partition(" ")
        if kind in {"FAILED", "ERROR"} and rest:
            found.append(rest.split(" - ", 1)[0].strip())
    return list(dict.fromkeys(found))


def covered(tests: list[str]) -> tuple[str, ...]:
    """``tests`` less those inside another entry (a node id in a listed file or folder), so
    that no test runs twice."""
    kept = []
    for test in dict.fromkeys(tests):
        path = test.split("::", 1)[0]
        inside = any(other != test and "::" not in other
                     and (path == other or path.startswith(other.rstrip("/") + "/"))
                     for other in tests)
        if not inside:
            kept.append(test)
    return tuple(kept)


def run_tests(copy: Path, tests: tuple[str, ...], stop_at_first: bool, timeout: float,
              name: str, logs: Path | None, skip: frozenset[str] = frozenset()) -> Outcome:
    """Run ``tests`` in ``copy``, less ``skip`` (those failing without any break: with -x,
    they would stop the run before the tests that matter)."""
    deselect = [arg for test in sorted(skip) for arg in ("--deselect", test)]
    command = [sys.executable, "-m", "pytest", "-q", "-rfE", "-p", "no:cacheprovider",
               "-p", "no:randomly", *(["-x"] if stop_at_first else []), *deselect, *tests]
    started = time.monotonic()
    outcome = Outcome(name)
    try:
        done = subprocess.run(command, cwd=copy, env=environment(copy), capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        outcome.problem = f"timed out after {timeout:.0f}s"
        outcome.seconds = time.monotonic() - started
        return outcome
    outcome.seconds = time.monotonic() - started
    outcome.exit_code = done.returncode
    outcome.caught_by = failed_tests(done.stdout)
    if logs is not None:
        logs.mkdir(parents=True, exist_ok=True)
        log = logs / (re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") + ".txt")
        log.write_text(done.stdout + done.stderr, encoding="utf-8")
    if done.returncode not in (0, 1):
        tail = (done.stdout + done.stderr).strip().splitlines()[-3:]
        outcome.problem = f"pytest exited {done.returncode}: " + " | ".join(tail)
    return outcome


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=None, help="break names (substrings)")
    parser.add_argument("--ref", default=None, help="a git revision instead of the work tree")
    parser.add_argument("--all-failures", action="store_true",
                        help="run every chosen test (no -x): name all that catch a break")
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip the unbroken run of the same tests")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per pytest run")
    parser.add_argument("--logs", type=Path, default=None,
                        help="keep each pytest run's output in this folder")
    options = parser.parse_args(argv)
    chosen = [b for b in BREAKS if options.only is None
              or any(o.lower() in b.name.lower() for o in options.only)]
    if not chosen:
        parser.error(f"--only {' '.join(options.only)}: no break of that name; the breaks: "
                     + "; ".join(b.name for b in BREAKS))
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="aide-mutations-") as place:
        for index, item in enumerate(chosen):  # every replacement checked before any run
            apply(item.edits, copy_repository(Path(place) / f"check-{index}", options.ref),
                  item.name)
        failing_anyway: frozenset[str] = frozenset()
        if not options.no_baseline:
            copy = copy_repository(Path(place) / "unbroken", options.ref)
            check_imported_from(copy)
            tests = covered([t for b in chosen for t in b.tests])
            print(f"unbroken: {' '.join(tests)}", flush=True)
            baseline = run_tests(copy, tests, False, options.timeout, "unbroken", options.logs)
            failing_anyway = frozenset(baseline.caught_by)
            print(f"  {baseline.seconds:.0f}s; failing without any break: "
                  f"{', '.join(sorted(failing_anyway)) or 'none'}"
                  + (f" ({baseline.problem})" if baseline.problem else ""), flush=True)
        for index, item in enumerate(chosen):
            copy = Path(place) / f"check-{index}"
            check_imported_from(copy)
            print(f"{item.name}: {' '.join(item.tests)}", flush=True)
            outcome = run_tests(copy, covered(list(item.tests)), not options.all_failures,
                                options.timeout, item.name, options.logs, failing_anyway)
            print(f"  {outcome.seconds:.0f}s; caught by: {', '.join(outcome.caught_by) or '-'}"
                  + (f" ({outcome.problem})" if outcome.problem else ""), flush=True)
            outcomes.append(outcome)
            shutil.rmtree(copy, ignore_errors=True)
    print_table(outcomes)
    return 0 if all(o.caught_by and not o.problem for o in outcomes) else 1


def print_table(outcomes: list[Outcome]) -> None:
    print("\n| break | caught by | seconds |\n| --- | --- | --- |")
    for outcome in outcomes:
        caught = "<br>".join(f"`{t}`" for t in outcome.caught_by) or "**NOT CAUGHT**"
        if outcome.problem:
            caught += f" ({outcome.problem})"
        print(f"| {outcome.name} | {caught} | {outcome.seconds:.0f} |")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
