"""The whole job through pytest's command line, with the offline tuner."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from pytest_aide.journal import Journal


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
        "*aide: running the selected tests against the final code*",
        "*= aide optimization =*",
        "*target: slow.py written*",
        "*6 passed*",
    ])
    (journal,) = journals(slow_project.path)
    run_dir = slow_project.path / ".aide" / journal.run_id
    assert len(journal.nodes) == 7 and journal.finished
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

    step = Search.step

    def edit_then_step(self, *args, **kwargs):
        node = step(self, *args, **kwargs)
        with (slow_project.path / "slow.py").open("a") as handle:
            handle.write(f"# the user edited this during step {node.step}\n")
        return node

    monkeypatch.setattr(Search, "step", edit_then_step)
    result = slow_project.runpytest("--aide-steps", "2", "--aide-model", "tune")
    text = (slow_project.path / "slow.py").read_text()
    assert "CHUNK = 2 " in text and "edited this during step 2" in text
    result.stdout.fnmatch_lines(["*not written: *slow.py was edited during the run*"])
    (journal,) = journals(slow_project.path)
    assert (slow_project.path / ".aide" / journal.run_id / "best_slow.py").is_file()


def test_resume_continues_the_journal(slow_project) -> None:
    first = slow_project.runpytest_subprocess(
        "--aide-steps", "2", "--aide-model", "tune", "--aide-preserve-source"
    )
    assert first.ret == 0
    (journal,) = journals(slow_project.path)
    second = slow_project.runpytest_subprocess(
        "--aide-steps", "4", "--aide-model", "tune", "--aide-preserve-source",
        "--aide-resume", "latest",
    )
    assert second.ret == 0, second.stdout.str()
    second.stdout.fnmatch_lines([f"*run {journal.run_id} (resumed)*", "step 3/4*", "step 4/4*"])
    (resumed,) = journals(slow_project.path)
    assert resumed.run_id == journal.run_id
    assert len(resumed.nodes) == 5
    def essentials(node):
        return (node.id, node.parent, node.operator, node.code, node.metrics, node.status)

    assert [essentials(n) for n in resumed.nodes[:3]] == [essentials(n) for n in journal.nodes]
    codes = [n.code for n in resumed.nodes if n.code]
    assert len(codes) == len(set(codes))  # the tuner did not repeat itself after resuming


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
