"""The zygote's clean-up kills every process it can see: it must refuse to do so anywhere but
in a PID namespace of its own (it once killed the shell of the person who ran it by hand).

Outside a sandbox the clean-up runs in a plain subprocess whose ``os.kill`` really kills only
one sibling process and records every other attempt, and whose file removals are recorded,
not done: a broken check shows up as recorded attempts and a dead sibling, not as the loss of
this machine's processes and of /tmp.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import IN_CI

from pytest_aide.evaluation.sandbox import Sandbox, choose, probe, python_paths
from pytest_aide.evaluation.zygote import OUTSIDE_NAMESPACE, pid_namespace

ROOT = Path(__file__).resolve().parents[2]

CLEAN_UP = """
import json, os, pathlib, shutil, sys
from pytest_aide.evaluation import zygote

sibling, attempts, real_kill = int(sys.argv[1]), [], os.kill

def kill(pid, sig):
    attempts.append(pid)
    if pid == sibling:
        real_kill(pid, sig)

os.kill = kill
shutil.rmtree = lambda path, *a, **k: attempts.append(str(path))
pathlib.Path.unlink = lambda path, *a, **k: attempts.append(str(path))
try:
    zygote.clean_up({os.getpid()}, zygote.Kept.now())
    outcome = "cleaned up"
except zygote.NotIsolated as exc:
    outcome = str(exc)
print(json.dumps({"outcome": outcome, "attempts": attempts}))
"""


@pytest.mark.parametrize("launcher", ["named", "unnamed"])
def test_the_clean_up_refuses_outside_its_own_pid_namespace(launcher: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop(OUTSIDE_NAMESPACE, None)
    if launcher == "named":  # started as the launcher starts it, but with no sandbox around it
        env[OUTSIDE_NAMESPACE] = pid_namespace()
    sibling = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        done = subprocess.run([sys.executable, "-c", CLEAN_UP, str(sibling.pid)], env=env,
                              capture_output=True, text=True, timeout=120, check=True)
        report = json.loads(done.stdout)
        assert sibling.poll() is None, "the clean-up killed a process outside any sandbox"
        assert report["attempts"] == []
        assert report["outcome"].startswith("the zygote's clean-up refuses to run")
    finally:
        sibling.kill()
        sibling.wait()


@pytest.mark.skipif(bool(probe()) and not IN_CI,
                    reason=f"bubblewrap unusable here ({probe()}); CI installs it and runs this")
def test_in_the_sandbox_the_zygote_is_in_a_pid_namespace_of_its_own(tmp_path: Path) -> None:
    sandbox = choose("bwrap").sandbox
    assert isinstance(sandbox, Sandbox)
    check = "from pytest_aide.evaluation.zygote import namespace_problem as p; print(repr(p()))"
    command = sandbox.command([sys.executable, "-c", check], workdir=tmp_path, cwd=tmp_path,
                              visible=[ROOT, *python_paths()])
    env = {**os.environ, "PYTHONPATH": str(ROOT), OUTSIDE_NAMESPACE: pid_namespace()}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "''"
