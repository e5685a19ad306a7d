"""``pytest_aide.optimize``: the same run started from Python, its result read back."""

from __future__ import annotations

import pytest

import pytest_aide
from pytest_aide.journal import Journal

MODULE = """\
import time

PAUSE = 0.004  # aide: 0.0005..0.004


def work(values):
    time.sleep(PAUSE)
    return sum(values)
"""

TESTS = """\
from slow import work


def test_work_is_right():
    assert work([1, 2, 3]) == 6


def test_speed(benchmark):
    assert benchmark.pedantic(work, args=([1, 2, 3],), rounds=10, iterations=1) == 6
"""


def test_optimize_marks_the_test_runs_the_search_and_returns_what_it_found(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str],
) -> None:
    pytester.makepyfile(slow=MODULE, test_slow=TESTS)
    result = pytest_aide.optimize("test_slow.py::test_speed", metric="mean", steps=2,
                                  model="tune", rootdir=pytester.path,
                                  options=["--aide-sandbox", "off", "-p", "no:cacheprovider"])
    printed = capsys.readouterr().out
    assert "step 0/2 baseline" in printed  # the run's own output, as it came
    assert result.exit_code == 0, printed[-3000:]
    assert result.run_dir is not None and (result.run_dir / "journal.json").is_file()
    assert result.baseline_metrics["test_slow.py::test_speed"] > 0.003
    assert result.improved and result.confirmed
    assert result.best_metrics["test_slow.py::test_speed"] < \
        result.baseline_metrics["test_slow.py::test_speed"]
    assert result.best_code is not None and "PAUSE = 0.004" not in result.best_code
    assert result.written and (pytester.path / "slow.py").read_text() == result.best_code


def test_optimize_keeps_the_file_when_asked_and_refuses_no_steps(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(slow=MODULE, test_slow=TESTS)
    before = (pytester.path / "slow.py").read_text()
    result = pytest_aide.optimize(["test_slow.py::test_speed"], metric="mean", steps=1,
                                  model="tune", rootdir=pytester.path, preserve_source=True,
                                  quiet=True, options=["--aide-sandbox", "off"])
    assert result.run_dir is not None and not result.written
    assert (pytester.path / "slow.py").read_text() == before
    with pytest.raises(ValueError, match="steps must be at least 1, not 0"):
        pytest_aide.optimize("test_slow.py", steps=0)


SCORED = """\
K = 3  # aide: 1..12


def score():
    return -abs(K - 7)
"""

SCORE_TESTS = """\
import pytest
from scored import score


{mark}
def test_score(record_property):
    record_property("score", score())
"""


def test_optimize_gives_the_same_run_as_pytest_on_the_same_target(
    pytester: pytest.Pytester, tmp_path,
) -> None:
    """A deterministic metric and the seeded tuner: the API's run and the command line's
    propose the same candidates, measure the same figures and pick the same best."""
    marked = '@pytest.mark.optimize(metric="score", maximize=True)'
    (pytester.path / "scored.py").write_text(SCORED)
    (pytester.path / "test_scored.py").write_text(SCORE_TESTS.format(mark=marked))
    cli = pytester.runpytest_subprocess("test_scored.py", "--aide-steps", "4", "--aide-model",
                                        "tune", "--aide-preserve-source", "-p",
                                        "no:cacheprovider")
    assert cli.ret == 0, cli.stdout.str()
    (cli_path,) = pytester.path.glob(".aide/*/journal.json")
    by_cli = Journal.load(cli_path)

    api_root = tmp_path / "api"
    api_root.mkdir()
    (api_root / "scored.py").write_text(SCORED)
    (api_root / "test_scored.py").write_text(SCORE_TESTS.format(mark="# marked by the API"))
    result = pytest_aide.optimize("test_scored.py::test_score", metric="score", maximize=True,
                                  steps=4, model="tune", rootdir=api_root,
                                  preserve_source=True, quiet=True,
                                  options=["-p", "no:cacheprovider"])
    assert result.exit_code == 0 and result.journal is not None
    by_api = result.journal
    assert [n.code for n in by_api.nodes] == [n.code for n in by_cli.nodes]
    assert [n.metrics for n in by_api.nodes] == [n.metrics for n in by_cli.nodes]
    assert by_api.best_id == by_cli.best_id not in (None, 0)
    best = by_cli.best
    assert best is not None
    assert result.best_metrics == best.metrics and result.best_code == best.code
    assert result.baseline_metrics == by_cli.nodes[0].metrics == {
        "test_scored.py::test_score": -4.0}
