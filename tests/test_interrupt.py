"""Interrupted and killed runs leave the user's source byte for byte as it was."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_aide.evaluation.evaluator import child_environment


def default_sigint() -> None:
    """A terminal's Ctrl-C: runners (CI, tox, ``nohup``) may start us with SIGINT ignored,
    and an ignored SIGINT is inherited, so Python would never raise KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_run(project: Path, steps: int = 30) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "--aide-steps", str(steps), "--aide-model", "tune",
         "-p", "no:cacheprovider"],
        cwd=project, env=child_environment(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True, preexec_fn=default_sigint,
    )


def wait_for(condition, process: subprocess.Popen[bytes], limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        assert process.poll() is None, process.stdout.read().decode()
        assert time.monotonic() < deadline, "the run never reached the point to interrupt"
        time.sleep(0.05)


def node_count(project: Path) -> int:
    for path in project.glob(".aide/*/journal.json"):
        try:
            return len(json.loads(path.read_text())["nodes"])
        except (OSError, ValueError):
            return 0
    return 0


def evaluating(project: Path) -> bool:
    return any(project.glob(".aide/*/nodes/*/output.txt"))


POINTS = {
    "during the baseline": lambda p: evaluating(p),
    "after two steps": lambda p: node_count(p) >= 3,
    "mid-search": lambda p: node_count(p) >= 5,
}


@pytest.mark.parametrize("point", list(POINTS))
@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_signal_leaves_the_source_as_it_was(slow_project, point: str, how: int) -> None:
    target = slow_project.path / "slow.py"
    before = target.read_bytes()
    process = start_run(slow_project.path)
    try:
        wait_for(lambda: POINTS[point](slow_project.path), process)
        os.kill(process.pid, how)
        output = process.communicate(timeout=60)[0].decode()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert target.read_bytes() == before
    assert not list(slow_project.path.glob(".slow.py.*.tmp"))
    if how == signal.SIGINT:
        assert process.returncode == pytest.ExitCode.INTERRUPTED, output
        if node_count(slow_project.path):
            assert "aide: interrupted; slow.py is unchanged" in output
            assert "--aide-resume" in output
    else:
        assert process.returncode == -signal.SIGKILL


def test_sigint_during_confirmation_leaves_the_source(slow_project) -> None:
    target = slow_project.path / "slow.py"
    before = target.read_bytes()
    process = start_run(slow_project.path, steps=3)
    try:
        wait_for(lambda: any(slow_project.path.glob(".aide/*/confirm/*/output.txt")), process,
                 limit=120)
        os.kill(process.pid, signal.SIGINT)
        output = process.communicate(timeout=60)[0].decode()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == pytest.ExitCode.INTERRUPTED, output
    assert target.read_bytes() == before
