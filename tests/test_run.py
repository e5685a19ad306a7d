"""The whole job through pytest's command line, with the offline tuner."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from report_journals import single_objective_journal

from pytest_aide.journal import GOOD, Journal, Node
from pytest_aide.run import ResumeError, next_command, resume_plan
from pytest_aide.workspace import sha256

SPEED = "test_slow.py::test_speed"


def journals(root: Path) -> list[Journal]:
    return [Journal.load(p) for p in sorted(root.glob(".aide/*/journal.json"))]


def test_search_improves_writes_the_best_and_keeps_the_artifacts(slow_project) -> None:
    original = (slow_project.path / "slow.py").read_bytes()
    result = slow_project.runpytest_subprocess("--aide-steps", "6", "--aide-model", "tune")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines([
        "*aide: optimizing slow.py for mean of test_slow.py::test_speed (lower is better)*",
        "step 0/6 baseline*",
        "step 1/6 draft <- 0*",
        "*aide: final check: a plain python -m pytest of the 6 selected test(s) against the "
        "written code*",
        "*= aide optimization =*",
        "*target: slow.py written*",
        "*6 passed*",
    ])
    (journal,) = journals(slow_project.path)
    run_dir = slow_project.path / ".aide" / journal.run_id
    assert len(journal.nodes) == 7 and journal.finished
    # the whole run's time, with its parts: the confirmation and final check are not free
    assert set(journal.phase_seconds) == {"search", "confirmation", "final check"}
    assert all(seconds > 0 for seconds in journal.phase_seconds.values())
    result.stdout.fnmatch_lines(["*6 steps: *; *s: search *s, confirmation *s, final check *s*"])
    assert "final check" in (slow_project.path / ".aide" / journal.run_id / "report.md"
                             ).read_text()
    best = journal.best
    assert best is not None and best.id != 0 and best.confirmed["confirmed"]
    now = (slow_project.path / "slow.py").read_text()
    assert now == best.code != original.decode()
    assert (run_dir / "original_slow.py").read_bytes() == original
    assert (run_dir / "backup_slow.py").read_bytes() == original
    assert (run_dir / "best_slow.py").read_text() == best.code
    for name in ("report.md", "tree.html", "best.patch"):
        assert (run_dir / name).is_file()
    # the patch applies to the original from the rootdir
    (slow_project.path / "slow.py").write_bytes(original)
    subprocess.run(["git", "init", "-q"], cwd=slow_project.path, check=True)
    subprocess.run(["git", "apply", str(run_dir / "best.patch")], cwd=slow_project.path,
                   check=True)
    assert (slow_project.path / "slow.py").read_text() == best.code
    # the runs are no part of the project: git leaves them out
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"],
                            cwd=slow_project.path, check=True, capture_output=True, text=True)
    assert ".aide" not in status.stdout and "slow.py" in status.stdout


def test_the_confirmation_is_one_line_rewritten_on_a_terminal(slow_project) -> None:
    """In a pseudo-terminal the confirmation's progress is one line, rewritten each round;
    in a log (no terminal) only its start is written."""
    import pty

    main, secondary = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest", "--aide-steps", "3", "--aide-model", "tune",
         "--aide-preserve-source", "-p", "no:cacheprovider"],
        cwd=slow_project.path, stdin=secondary, stdout=secondary, stderr=secondary)
    os.close(secondary)
    chunks = []
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # the other side closed: the run ended
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(main)
    assert process.wait(timeout=300) == 0
    output = b"".join(chunks).decode(errors="replace")
    rounds = re.findall(r"\raide: confirming the best: round (\d+) of at most", output)
    assert len(rounds) >= 3 and rounds == sorted(rounds, key=int), output[-3000:]
    lines = [line for line in output.split("\n") if "confirming the best: round" in line]
    assert len(lines) == 1  # every round on the same line

    logged = slow_project.runpytest_subprocess("--aide-steps", "3", "--aide-model", "tune",
                                               "--aide-preserve-source")
    text = logged.stdout.str()
    assert text.count("confirming the best: interleaved rounds with the original") == 1
    assert "confirming the best: round" not in text


def test_a_plain_run_afterwards_collects_nothing_from_the_runs(slow_project) -> None:
    """A project that overrides ``norecursedirs`` (which would leave ``.aide`` out) and
    collects doctests would otherwise import the run directories' copies of the target."""
    slow_project.makeini("[pytest]\npythonpath = .\nnorecursedirs = build\n"
                         "addopts = --doctest-modules\n")
    before = slow_project.runpytest_subprocess("--collect-only", "-q")
    result = slow_project.runpytest_subprocess("--aide-steps", "1", "--aide-model", "tune",
                                               "--aide-preserve-source")
    assert result.ret == 0, result.stdout.str()
    assert list(slow_project.path.glob(".aide/*/original_slow.py"))
    after = slow_project.runpytest_subprocess("--collect-only", "-q")
    assert after.ret == 0, after.stdout.str()
    collected = [[line for line in run.stdout.lines if "::" in line] for run in (before, after)]
    assert collected[0] == collected[1] and collected[0]


def test_a_log_dir_that_cannot_be_written_is_a_usage_error_naming_the_option(
    slow_project,
) -> None:
    (slow_project.path / "occupied").write_text("a file where the log dir would go\n")
    result = slow_project.runpytest_subprocess("--aide-steps", "1", "--aide-model", "tune",
                                               "--aide-log-dir", "occupied/runs")
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    result.stderr.fnmatch_lines(["*cannot write the run directory under*occupied/runs*"
                                 "--aide-log-dir*"])


def test_a_latin_1_target_is_optimized_and_written_in_latin_1(slow_project) -> None:
    """PEP 263: the file declares its encoding; Python imports it so, and so is it written,
    byte for byte outside the change."""
    from conftest import SLOW_MODULE

    module = "# -*- coding: latin-1 -*-\n" + SLOW_MODULE + "\nGREETING = 'caf\u00e9'\n"
    (slow_project.path / "slow.py").write_bytes(module.encode("latin-1"))
    slow_project.makepyfile(test_greet="from slow import GREETING\n\n\n"
                                       "def test_greeting():\n"
                                       "    assert GREETING == 'caf\\xe9'\n")
    result = slow_project.runpytest_subprocess("--aide-steps", "3", "--aide-model", "tune")
    assert result.ret == 0, result.stdout.str()
    (journal,) = journals(slow_project.path)
    written = (slow_project.path / "slow.py").read_bytes()
    assert journal.best is not None and written == journal.best.code.encode("latin-1")
    assert written != module.encode("latin-1")  # the tuner's CHUNK won
    changed = [(a, b) for a, b in zip(module.encode("latin-1").splitlines(),
                                      written.splitlines(), strict=True) if a != b]
    assert len(changed) == 1 and changed[0][0].startswith(b"CHUNK = ")


def test_preserve_source_never_writes(slow_project) -> None:
    original = (slow_project.path / "slow.py").read_bytes()
    result = slow_project.runpytest_subprocess(
        "--aide-steps", "3", "--aide-model", "tune", "--aide-preserve-source"
    )
    assert result.ret == 0
    assert (slow_project.path / "slow.py").read_bytes() == original
    (journal,) = journals(slow_project.path)
    assert journal.best_id != 0
    assert (slow_project.path / ".aide" / journal.run_id / "best.patch").is_file()
    result.stdout.fnmatch_lines(["*not written (--aide-preserve-source)*"])


def test_a_file_edited_during_the_run_is_not_overwritten(
    slow_project, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_aide.search.loop import Search

    commit = Search.commit

    def commit_then_edit(self, node, proposal):
        commit(self, node, proposal)
        with (slow_project.path / "slow.py").open("a") as handle:
            handle.write(f"# the user edited this during step {node.step}\n")

    monkeypatch.setattr(Search, "commit", commit_then_edit)
    result = slow_project.runpytest("--aide-steps", "2", "--aide-model", "tune")
    text = (slow_project.path / "slow.py").read_text()
    assert "CHUNK = 2 " in text and "edited this during step 2" in text
    result.stdout.fnmatch_lines(["*not written: *slow.py was edited during the run*"])
    (journal,) = journals(slow_project.path)
    assert (slow_project.path / ".aide" / journal.run_id / "best_slow.py").is_file()


#: test_speed with a metric that does not depend on the machine: every candidate that changes
#: CHUNK costs 1, the original 2. The first run's first such candidate is its best and is
#: written; the resumed run's candidates only tie with it, so the file already holds the best.
TIED_COST_TESTS = """\
import pytest
import slow
from slow import work


@pytest.mark.parametrize("n", [0, 1, 7, 64, 100])
def test_correct(n):
    assert work(n) == sum(range(n))


@pytest.mark.optimize(metric="cost", maximize=False)
def test_speed(record_property):
    record_property("cost", 2 if slow.CHUNK == 2 else 1)
"""


def test_resume_with_more_steps_than_done_continues_a_finished_run(slow_project) -> None:
    slow_project.makepyfile(test_slow=TIED_COST_TESTS)
    first = slow_project.runpytest_subprocess("--aide-steps", "2", "--aide-model", "tune")
    assert first.ret == 0
    (journal,) = journals(slow_project.path)
    target = slow_project.path / "slow.py"
    after_first = target.read_text()  # the first run's best when it was confirmed
    first.stdout.fnmatch_lines([
        f"*more steps: pytest *--aide-model tune --aide-steps 4 --aide-resume {journal.run_id}",
    ])
    second = slow_project.runpytest_subprocess(
        "--aide-steps", "4", "--aide-model", "tune", "--aide-resume", "latest",
    )
    assert second.ret == 0, second.stdout.str()
    second.stdout.fnmatch_lines([
        f"*with tune (built-in offline tuner); resuming run {journal.run_id}: 2 of 4 steps "
        "done, 2 to go",
        "step 3/4*",
        "step 4/4*",
        f"*more steps: pytest *--aide-model tune --aide-steps 8 --aide-resume {journal.run_id}",
    ])
    (resumed,) = journals(slow_project.path)
    assert resumed.run_id == journal.run_id
    assert len(resumed.nodes) == 5 and resumed.finished
    assert resumed.settings["steps"] == 4
    def essentials(node):
        return (node.id, node.parent, node.operator, node.code, node.metrics, node.status)

    assert [essentials(n) for n in resumed.nodes[:3]] == [essentials(n) for n in journal.nodes]
    codes = [n.code for n in resumed.nodes if n.code]
    assert len(codes) == len(set(codes))  # the tuner did not repeat itself after resuming
    # the first run wrote its best, and the search went on from the original
    run_dir = slow_project.path / ".aide" / journal.run_id
    assert (run_dir / "original_slow.py").read_text() == resumed.root.code
    assert after_first == journal.best.code != resumed.root.code
    # nothing after it did better (ties), so the file is left as the first run wrote it
    assert resumed.best.id == journal.best.id
    assert target.read_text() == after_first
    output = second.stdout.str()
    assert "target: slow.py already holds the best (written when this run first finished)" \
        in output
    assert "target: slow.py written" not in output and "apply it" not in output
    assert "- 4 steps\n" in (run_dir / "report.md").read_text()


def finished_run(project: pytest.Pytester, steps: int, wrote_best: bool = False) -> Path:
    """A finished run of ``steps`` steps in the project's journal, built by hand: resuming it
    needs no evaluation. With ``wrote_best`` its step 1 was the best and is in the file."""
    original = (project.path / "slow.py").read_text()
    nodes = [Node(id=0, parent=None, step=0, operator="baseline", plan="original code",
                  code=original, status=GOOD, metrics={SPEED: 0.01}, objective=-0.01,
                  outcomes={SPEED: "passed"})]
    for step in range(1, steps + 1):
        nodes.append(Node(id=step, parent=0, step=step, operator="draft", plan=f"try {step}",
                          code=original.replace("CHUNK = 2 ", f"CHUNK = {step + 2} "),
                          status=GOOD, metrics={SPEED: 0.02}, objective=-0.02))
    journal = Journal(
        run_id="20240101-000000-slow", target="slow.py", module="slow",
        objectives=[{"nodeid": SPEED, "metric": "mean", "maximize": False}],
        original_sha256=sha256(original), settings={"steps": steps, "model": "tune"},
        nodes=nodes, best_id=0, finished=True, outcome="completed",
    )
    if wrote_best:
        journal.best_id = 1
        (project.path / "slow.py").write_text(nodes[1].code)
    path = project.path / ".aide" / journal.run_id / "journal.json"
    journal.save(path)
    return path


@pytest.mark.parametrize(("steps", "add", "wrote_best"), [
    ("1", "--aide-steps 3 to add 1 step", False),
    ("2", "--aide-steps 4 to add 2 steps", False),
    ("2", "--aide-steps 4 to add 2 steps", True),  # the file holds the run's best: still its run
], ids=["fewer", "equal", "equal-after-writing-its-best"])
def test_resume_with_no_more_steps_than_done_is_a_usage_error_naming_the_fix(
    slow_project, steps: str, add: str, wrote_best: bool
) -> None:
    path = finished_run(slow_project, steps=2, wrote_best=wrote_best)
    before = path.read_bytes()
    result = slow_project.runpytest_subprocess(
        "--aide-steps", steps, "--aide-model", "tune", "--aide-resume", "latest"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([
        "*run 20240101-000000-slow has 2 of 2 steps done (finished); with --aide-resume, "
        f"--aide-steps is the run's total, so --aide-steps {steps} asks for nothing more. "
        f"Pass {add}.",
    ])
    assert path.read_bytes() == before
    assert not (path.parent / "nodes").exists()  # nothing was evaluated


def test_resume_without_steps_is_a_usage_error(slow_project) -> None:
    result = slow_project.runpytest("--aide-resume", "latest")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--aide-resume latest needs --aide-steps N, the run's total*"])


def test_resume_plan_counts_steps_toward_the_total() -> None:
    journal = single_objective_journal()  # 7 steps, finished
    assert resume_plan(journal, 10) == (
        "resuming run 20240101-120000-k: 7 of 10 steps done, 3 to go"
    )
    with pytest.raises(ResumeError, match=r"Pass --aide-steps 14 to add 7 steps[.]$"):
        resume_plan(journal, 7)
    # an interrupted run: the same total finishes it, a smaller one names both ways on
    journal.finished = False
    journal.settings["steps"] = 20
    assert resume_plan(journal, 7).endswith("7 of 7 steps done, 0 to go; finishing it")
    with pytest.raises(ResumeError, match=(
        r"has 7 of 20 steps done \(not finished\).*Pass --aide-steps 12 to add 5 steps, or "
        r"--aide-steps 7 to finish it with those[.]$"
    )):
        resume_plan(journal, 5)


def test_next_command_resumes_an_unfinished_run_and_extends_a_finished_one() -> None:
    journal = single_objective_journal()
    args = ["tests", "--aide-steps=7", "--aide-resume", "latest"]
    assert next_command(args, journal, 7) == (
        "pytest tests --aide-steps 14 --aide-resume 20240101-120000-k"
    )
    journal.finished = False
    assert next_command(args, journal, 7) == (
        "pytest tests --aide-steps=7 --aide-resume 20240101-120000-k"
    )


def test_a_run_whose_tuner_tried_everything_offers_no_more_steps(pytester) -> None:
    """More steps of a proposer with nothing new would only confirm and write again:
    the summary says what would help instead of offering them."""
    pytester.makepyfile(
        tiny="import time\n\nDELAY = 2  # aide: 1..2\n\n\ndef run():\n"
             "    time.sleep(DELAY / 1000)\n    return DELAY\n",
        test_tiny="import pytest\nfrom tiny import run\n\n\ndef test_runs():\n"
                  "    assert run() > 0\n\n\n@pytest.mark.optimize(metric='mean')\n"
                  "def test_speed(benchmark):\n    benchmark.pedantic(run, rounds=5)\n",
    )
    pytester.makeini("[pytest]\npythonpath = .\n")
    result = pytester.runpytest_subprocess("--aide-steps", "5", "--aide-model", "tune")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*stopped early: the tuner has tried every configuration*"])
    assert "more steps:" not in result.stdout.str()
    (journal,) = journals(pytester.path)
    assert journal.finished and journal.exhausted
    assert next_command(["tests"], journal, 5) == ""
    journal.exhausted = False  # a run that ended otherwise goes on with more steps
    assert next_command(["tests"], journal, 5).endswith(f"--aide-resume {journal.run_id}")


def test_resume_refuses_when_the_target_changed(slow_project) -> None:
    assert slow_project.runpytest_subprocess(
        "--aide-steps", "1", "--aide-model", "tune", "--aide-preserve-source"
    ).ret == 0
    path = slow_project.path / "slow.py"
    path.write_text(path.read_text() + "\n# changed\n")
    result = slow_project.runpytest_subprocess(
        "--aide-steps", "2", "--aide-model", "tune", "--aide-resume", "latest"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*cannot resume*slow.py changed since that run started*"])


def test_baseline_failure_is_an_error_and_writes_nothing(slow_project) -> None:
    path = slow_project.path / "slow.py"
    path.write_text(path.read_text().replace("total +=", "total -="))
    before = path.read_bytes()
    result = slow_project.runpytest_subprocess("--aide-steps", "3", "--aide-model", "tune")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([
        "*the original code does not pass or measure*",
        "*test_slow.py::test_correct[[]7[]]: failed*",
    ])
    assert path.read_bytes() == before


def test_missing_metric_in_the_baseline_names_what_was_recorded(pytester) -> None:
    pytester.makepyfile(acc="WEIGHT = 0.5\n\ndef predict():\n    return WEIGHT\n")
    pytester.makepyfile(
        test_acc="""
        import pytest
        from acc import predict

        @pytest.mark.optimize(metric="accuracy", maximize=True)
        def test_it(record_property):
            record_property("acc", predict())
        """
    )
    pytester.makeini("[pytest]\npythonpath = .\n")
    result = pytester.runpytest_subprocess("--aide-steps", "2", "--aide-model", "tune")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([
        "*test_acc.py::test_it: metric 'accuracy' is missing; the test recorded "
        "record_property(acc)*"
    ])


def test_several_marked_tests_share_an_aggregate_objective(pytester) -> None:
    pytester.makepyfile(
        model="""
        import time
        SCALE = 1  # aide: choices 1 2 4 8
        DELAY = 0.004  # aide: choices 0.004 0.002 0.001


        def predict(x):
            time.sleep(DELAY)
            return min(1.0, 0.2 * SCALE)
        """
    )
    pytester.makepyfile(
        test_model="""
        import pytest
        from model import predict

        @pytest.mark.optimize(metric="quality", maximize=True)
        def test_quality(record_property):
            record_property("quality", predict(1))

        @pytest.mark.optimize(metric="median")
        def test_latency(benchmark):
            benchmark.pedantic(predict, args=(1,), rounds=15)
        """
    )
    pytester.makeini("[pytest]\npythonpath = .\n")
    result = pytester.runpytest_subprocess(
        "--aide-steps", "5", "--aide-model", "tune", "--aide-preserve-source"
    )
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*score = geometric mean*"])
    (journal,) = journals(pytester.path)
    assert journal.root.objective == pytest.approx(1.0)
    settings = json.loads((pytester.path / ".aide" / journal.run_id / "journal.json")
                          .read_text())["settings"]
    assert settings["objective"].startswith("score = geometric mean")


def test_too_few_benchmark_rounds_stop_before_the_search(slow_project) -> None:
    tests = slow_project.path / "test_slow.py"
    tests.write_text(tests.read_text().replace("rounds=12", "rounds=3"))
    result = slow_project.runpytest_subprocess("--aide-steps", "2", "--aide-model", "tune")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([
        "*test_slow.py::test_speed recorded 3 round(s): with fewer than 5 rounds no change can "
        "be told from noise*rounds=10*"
    ])


def test_too_few_confirmation_rounds_are_a_usage_error(slow_project) -> None:
    result = slow_project.runpytest("--aide-steps", "2", "--aide-confirm-rounds", "6")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--aide-confirm-rounds must be at least 7, not 6*"])
