"""``--aide-workers`` through pytest's command line: bad values, and Ctrl-C mid-flight."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_interrupt import default_sigint, node_count

from pytest_aide.evaluation.evaluator import child_environment
from pytest_aide.journal import Journal


@pytest.mark.parametrize("args,message", [
    (["--aide-workers", "0"], "--aide-workers must be a number of evaluations at once"),
    (["--aide-workers", "many"], "--aide-workers must be a number of evaluations at once"),
    (["--aide-workers", "512"], "pass --aide-workers *"),
    (["--aide-measure", "loose"], "--aide-measure must be one of isolated, shared"),
    (["--aide-executor", "slurm"], "--aide-executor must be one of local, ray"),
    (["--aide-ray-address", "127.0.0.1:1"], "*add --aide-executor ray"),
])
def test_bad_worker_options_are_usage_errors(slow_project, args, message) -> None:
    result = slow_project.runpytest_subprocess("--aide-steps", "2", "--aide-model", "tune", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{message}*"])


def in_flight(project: Path) -> int:
    """Evaluations started (an output file) for nodes not in the journal yet."""
    done = node_count(project)
    started = {p.parent.name.split("-")[0] for p in project.glob(".aide/*/nodes/*/output.txt")}
    return sum(1 for name in started if int(name) >= done)


def children_of_run(project: Path) -> list[str]:
    """Command lines of processes still running for this project's evaluations."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(project / ".aide") in command:
            found.append(command)
    return found


def test_ctrl_c_with_two_evaluations_in_flight(slow_project) -> None:
    project = slow_project.path
    before = (project / "slow.py").read_bytes()
    command = [sys.executable, "-m", "pytest", "--aide-model", "tune", "-p", "no:cacheprovider",
               "--aide-workers", "2", "--aide-measure", "shared", "--aide-confirm-rounds", "7"]
    process = subprocess.Popen(
        [*command, "--aide-steps", "30"], cwd=project, env=child_environment(),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        preexec_fn=default_sigint,
    )
    try:
        deadline = time.monotonic() + 120
        while not (node_count(project) >= 3 and in_flight(project) >= 2):
            assert process.poll() is None, process.stdout.read().decode()
            assert time.monotonic() < deadline, "never had two evaluations in flight"
            time.sleep(0.02)
        os.kill(process.pid, signal.SIGINT)
        output = process.communicate(timeout=60)[0].decode()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == pytest.ExitCode.INTERRUPTED, output
    assert "aide: interrupted; slow.py is unchanged" in output
    assert (project / "slow.py").read_bytes() == before
    assert children_of_run(project) == []  # the children in flight were killed
    (path,) = project.glob(".aide/*/journal.json")
    journal = Journal.load(path)
    done = len(journal.nodes)
    assert [n.id for n in journal.nodes] == list(range(done))  # committed nodes only
    assert journal.outcome == "interrupted"

    # resumed, it proposes again what was in flight: the next id is the first lost one
    again = subprocess.run(
        [*command, "--aide-steps", str(done), "--aide-resume", "latest"], cwd=project,
        env=child_environment(), capture_output=True, text=True, timeout=300,
    )
    assert again.returncode == 0, again.stdout
    resumed = json.loads(path.read_text())
    assert [n["id"] for n in resumed["nodes"]] == list(range(done + 1))
    assert resumed["nodes"][done]["step"] == done and resumed["finished"]
