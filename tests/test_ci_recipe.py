"""The pre-merge recipe (examples/ci): its script, run as the workflow runs it, in a git
repository whose pull-request branch slowed a marked function."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SLOW_MODULE, SLOW_TESTS

from pytest_aide.journal import Journal

SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "ci" / "aide_pr.py"
OTHER = "import time\n\nPAUSE = 0.002  # aide: 0.001..0.004\n\n\ndef nap():\n" \
        "    time.sleep(PAUSE)\n    return 1\n"
OTHER_TESTS = "import pytest\nfrom other import nap\n\n\ndef test_nap():\n" \
              "    assert nap() == 1\n\n\n@pytest.mark.optimize(metric='mean')\n" \
              "def test_nap_speed(benchmark):\n    benchmark.pedantic(nap, rounds=5)\n"


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True,
                          text=True).stdout


@pytest.fixture
def pull_request(pytester: pytest.Pytester) -> Path:
    """main holds slow.py (CHUNK = 8) and other.py, each with a marked test; the branch
    ``pr`` sets CHUNK = 1 (slower) and leaves other.py alone."""
    root = pytester.path
    pytester.makepyfile(slow=SLOW_MODULE.replace("CHUNK = 2 ", "CHUNK = 8 "),
                        test_slow=SLOW_TESTS, other=OTHER, test_other=OTHER_TESTS)
    pytester.makeini("[pytest]\npythonpath = .\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "add", "-A")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base")
    git(root, "checkout", "-q", "-b", "pr")
    slow = root / "slow.py"
    slow.write_text(slow.read_text().replace("CHUNK = 8 ", "CHUNK = 1 "))
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "slower")
    return root


def run_script(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIDE_", "OPENAI_"))}
    env["CI"] = "true"  # as on GitHub Actions: the source is preserved
    return subprocess.run([sys.executable, str(SCRIPT), "--out", "out", *args], cwd=root,
                          env=env, capture_output=True, text=True, timeout=600)


def test_the_pull_requests_slowed_function_is_optimized_and_the_comment_written(
    pull_request: Path,
) -> None:
    before = (pull_request / "slow.py").read_bytes()
    done = run_script(pull_request, "--base", "main", "--steps", "3", "--model", "tune")
    assert done.returncode == 0, done.stdout + done.stderr
    out = pull_request / "out"
    runs = [Journal.load(p) for p in sorted(out.glob("runs/*/journal.json"))]
    assert [journal.target for journal in runs] == ["slow.py"]  # other.py was not changed
    best = runs[0].best
    assert best is not None and best.confirmed and best.confirmed["confirmed"]
    comment = (out / "pr-comment.md").read_text()
    assert "### `slow.py`" in comment and "Confirmed: time -" in comment
    assert "```diff" in comment and "-CHUNK = 1" in comment
    assert "git apply slow.py.patch" in comment
    assert (out / "slow.py.patch").read_text() == (out / "runs" / runs[0].run_id /
                                                  "best.patch").read_text()
    assert "test_slow.py::test_speed" in (out / "pytest-output.txt").read_text()
    # CI preserves the source; the patch applies to the branch's code
    assert (pull_request / "slow.py").read_bytes() == before
    git(pull_request, "apply", "--check", str(out / "slow.py.patch"))


def test_a_change_no_marked_test_targets_is_nothing_to_do(pull_request: Path) -> None:
    (pull_request / "notes.py").write_text("X = 1\n")
    git(pull_request, "add", "notes.py")
    git(pull_request, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "notes")
    done = run_script(pull_request, "--base", "HEAD~1", "--model", "tune",
                      "--fail-on", "no-improvement")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "nothing to optimize" in (pull_request / "out" / "pr-comment.md").read_text()
    assert not (pull_request / "out" / "runs").exists()
