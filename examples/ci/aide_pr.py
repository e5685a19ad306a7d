"""Pre-merge optimization: optimize the marked code a pull request changed, and say so.

Run from the repository's root in a checkout of the pull request's head:

    python aide_pr.py --base origin/main [--steps 10] [--out aide-out] [--fail-on error]
                      [-- EXTRA PYTEST ARGS]

1. The Python files changed since ``--base`` (``git diff BASE...HEAD``, the pull request's
   own changes).
2. The tests marked ``@pytest.mark.optimize`` whose target is one of them (collected with
   pytest, targets resolved as pytest-aide resolves them); none: nothing to do.
3. ``pytest <those tests> --aide-steps N`` with the source preserved and the runs kept in
   ``OUT/runs``; its output in ``OUT/pytest-output.txt``.
4. ``OUT/pr-comment.md``, ready to post: per target, the confirmed figure with its interval,
   the change, and how to apply it; each run's ``best.patch`` copied to ``OUT`` as
   ``<target>.patch``.

The exit status is pytest's, so ``--fail-on`` (pytest-aide's ``--aide-fail-on``) decides
when the job goes red: ``error`` (the default: the run could not do its job),
``no-improvement`` (nothing confirmed faster) or ``never``. The model comes from
``--model`` or pytest-aide's usual choice (``AIDE_MODEL``, then a provider key in the
environment, else the offline tuner).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_aide.journal import Journal
from pytest_aide.report.formatting import (
    confirmed_text,
    fmt_change,
    fmt_metric,
    metric_change,
    totals_text,
)
from pytest_aide.study import build_studies

COMMENT = "pr-comment.md"


def changed_python_files(base: str, root: Path) -> set[Path]:
    """The ``.py`` files added, changed or renamed on this branch since it left ``base``."""
    names = subprocess.run(
        ["git", "diff", "--name-only", "--diff-filter=AMR", f"{base}...HEAD", "--", "*.py"],
        cwd=root, check=True, capture_output=True, text=True,
    ).stdout.split()
    return {(root / name).resolve() for name in names}


class _Collector:
    def __init__(self) -> None:
        self.items: list[pytest.Item] = []

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.items = list(session.items)


def marked_tests_of(changed: set[Path], root: Path, pytest_args: list[str]) -> dict[str, list[str]]:
    """Target (relative path) -> its marked tests' node ids, for the targets in ``changed``."""
    collector = _Collector()
    with contextlib.redirect_stdout(io.StringIO()):
        code = pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", "-m", "optimize",
                            *pytest_args], plugins=[collector])
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        raise SystemExit(f"aide_pr: collecting the marked tests failed (pytest exit {code})")
    selected = {}
    for study in build_studies(collector.items, root):
        if study.target.path.resolve() in changed:
            relative = str(study.target.path.resolve().relative_to(root))
            selected[relative] = [objective.nodeid for objective in study.objectives]
    return selected


def target_section(journal: Journal, run_dir: Path, out: Path) -> list[str]:
    """One target's part of the comment."""
    lines = [f"### `{journal.target}`", ""]
    best = journal.best if journal.best_id not in (None, 0) else None
    confirmed = bool(best and best.confirmed and best.confirmed.get("confirmed"))
    for objective in journal.objectives:
        nodeid = objective["nodeid"]
        metric = objective["metric"]
        figure = f"{metric} of `{nodeid}`: {fmt_metric(journal.root.metrics.get(nodeid), metric)}"
        if best is not None:
            change = fmt_change(metric_change(journal, best, nodeid))
            figure += f" -> {fmt_metric(best.metrics.get(nodeid), metric)} ({change})"
        lines.append(f"- {figure}")
    lines.append("")
    if best is None:
        lines += [f"No candidate beat the code of this branch ({totals_text(journal)}).", ""]
        return lines
    lines += [confirmed_text(best.confirmed or {}).capitalize() + ".", ""]
    patch = run_dir / "best.patch"
    if not confirmed or not patch.is_file():
        lines += ["The change is not offered: its speedup was not confirmed.", ""]
        return lines
    name = journal.target.replace("/", "_") + ".patch"
    shutil.copyfile(patch, out / name)
    lines += [
        f"The change ({best.plan.splitlines()[0] if best.plan else 'no plan given'}):",
        "",
        "<details><summary>best.patch</summary>",
        "",
        "```diff",
        patch.read_text(encoding="utf-8", errors="replace").rstrip("\n"),
        "```",
        "",
        "</details>",
        "",
        f"Apply it: download this job's artifact and run `git apply {name}` at the "
        "repository's root.",
        "",
        f"Search: {totals_text(journal)}.",
        "",
    ]
    return lines


def write_comment(out: Path, runs: list[Path], selected: dict[str, list[str]]) -> Path:
    lines = ["## pytest-aide", ""]
    if not selected:
        lines.append("No test marked `@pytest.mark.optimize` targets a module this change "
                     "touches: nothing to optimize.")
    elif not runs:
        lines.append("The optimization did not run to the end: see the job's log and "
                     "`pytest-output.txt` in its artifact.")
    for run_dir in runs:
        lines += target_section(Journal.load(run_dir / "journal.json"), run_dir, out)
    path = out / COMMENT
    path.write_text("\n".join(lines).rstrip("\n") + "\n", encoding="utf-8")
    return path


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the branch the pull request goes into")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("aide-out"))
    parser.add_argument("--fail-on", default="error",
                        choices=["error", "no-improvement", "never"])
    parser.add_argument("--model", help="pytest-aide's --aide-model (default: its own choice)")
    parser.add_argument("pytest_args", nargs="*", help="after --: more pytest arguments")
    args = parser.parse_args(argv)
    root = Path.cwd().resolve()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    selected = marked_tests_of(changed_python_files(args.base, root), root, args.pytest_args)
    if not selected:
        print(f"aide_pr: {write_comment(out, [], selected)}: nothing to optimize")
        return 0
    log_dir = out / "runs"
    before = set(log_dir.glob("*/journal.json")) if log_dir.is_dir() else set()
    command = [sys.executable, "-m", "pytest", *[n for ids in selected.values() for n in ids],
               "--aide-steps", str(args.steps), "--aide-preserve-source",
               "--aide-log-dir", str(log_dir), "--aide-fail-on", args.fail_on,
               *(["--aide-model", args.model] if args.model else []), *args.pytest_args]
    print("aide_pr: " + " ".join(command[2:]), flush=True)
    with (out / "pytest-output.txt").open("w", encoding="utf-8") as output:
        process = subprocess.Popen(command, cwd=root, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
        assert process.stdout is not None
        for line in process.stdout:  # shown as it comes, and kept
            sys.stdout.write(line)
            output.write(line)
        code = process.wait()
    runs = sorted(p.parent for p in set(log_dir.glob("*/journal.json")) - before)
    (out / "runs.json").write_text(json.dumps([str(p) for p in runs], indent=1) + "\n")
    print(f"aide_pr: {write_comment(out, runs, selected)}")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
