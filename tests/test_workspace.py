"""The one write to the user's file: atomic (a kill at any point leaves the old file or the new
one, never a mix), only over the original, backed up first, put back byte for byte; and the
resume lookup.

The kill tests run the real ``apply_best`` in a subprocess whose file operations on the
target's folder are hooked to stop at one point (half the bytes written, before the flush to
disk, before or after the rename) and say so on a pipe; the test then SIGKILLs it there.
"""

from __future__ import annotations

import json
import os
import select
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_aide.workspace import (
    RunNotFound,
    apply_best,
    backup_path,
    find_run,
    put_back,
    read_source,
    unencodable,
    write_source,
)

ROOT = Path(__file__).resolve().parents[1]

OLD = "def work(n):\r\n    return n\r\n"  # CRLF: kept byte for byte
NEW = "".join(f"VALUE_{i} = {i}  # a long new module\n" for i in range(100_000))

#: Runs apply_best with one hook; writes "stopped" to stdout where it stops, then waits.
WRITER = """
import builtins, io, os, sys, time
from pathlib import Path
from pytest_aide.workspace import apply_best, read_source

point, target, run_dir = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
new, old = sys.stdin.read(), read_source(target)
folder = str(target.parent)

def stop():
    sys.stdout.write("stopped\\n")
    sys.stdout.flush()
    time.sleep(600)

class HalfWriter:
    def __init__(self, handle):
        self.handle = handle
    def write(self, text):
        self.handle.write(text[: len(text) // 2])
        self.handle.flush()
        os.fsync(self.handle.fileno())
        stop()
    def __getattr__(self, name):
        return getattr(self.handle, name)
    def __enter__(self):
        return self
    def __exit__(self, *exc):
        return self.handle.__exit__(*exc)

real_open, real_fsync, real_replace = io.open, os.fsync, os.replace

def hooked_open(file, mode="r", *args, **kwargs):
    handle = real_open(file, mode, *args, **kwargs)
    in_folder = os.path.dirname(os.path.abspath(os.fspath(file))) == folder
    if in_folder and any(c in mode for c in "wax+"):
        return HalfWriter(handle)
    return handle

def hooked_fsync(fd):
    if os.path.dirname(os.readlink(f"/proc/self/fd/{fd}")) == folder:
        stop()
    real_fsync(fd)

def hooked_replace(source, destination, *args, **kwargs):
    if os.path.dirname(os.path.abspath(os.fspath(destination))) != folder:
        return real_replace(source, destination, *args, **kwargs)  # the backup
    if point == "after-replace":
        real_replace(source, destination, *args, **kwargs)
    stop()

if point == "mid-write":
    io.open = builtins.open = hooked_open
elif point == "before-fsync":
    os.fsync = hooked_fsync
else:
    os.replace = hooked_replace
apply_best(target, old, new, run_dir)
sys.stdout.write("finished\\n")
"""


def write_and_kill(tmp_path: Path, point: str) -> Path:
    """Run apply_best over a fresh target, stopped at ``point`` and SIGKILLed there."""
    project, run_dir = tmp_path / "project", tmp_path / "run"
    project.mkdir()
    run_dir.mkdir()
    target = project / "mod.py"
    target.write_bytes(OLD.encode())
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-c", WRITER, point, str(target), str(run_dir)], env=env,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(NEW)
        process.stdin.close()
        ready, _, _ = select.select([process.stdout], [], [], 120)
        line = process.stdout.readline() if ready else "(nothing in 120 s)"
        assert line == "stopped\n", (line, process.stderr.read() if process.poll() else "")
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=60) == -signal.SIGKILL
    finally:
        process.kill()
        process.wait()
    return target


@pytest.mark.parametrize(("point", "expected"), [
    ("mid-write", OLD),  # half the new bytes written somewhere
    ("before-fsync", OLD),  # all written, not yet on disk
    ("before-replace", OLD),
    ("after-replace", NEW),
], ids=["mid-write", "before-fsync", "before-replace", "after-replace"])
def test_a_kill_during_the_write_leaves_the_old_file_or_the_new_never_a_mix(
    tmp_path: Path, point: str, expected: str
) -> None:
    target = write_and_kill(tmp_path, point)
    content = target.read_bytes().decode()
    assert content in (OLD, NEW), f"a torn file: {len(content)} characters"
    assert content == expected
    assert backup_path(tmp_path / "run", target).read_bytes() == OLD.encode()


def test_the_best_is_written_only_over_the_original_with_its_mode(tmp_path: Path) -> None:
    target = tmp_path / "mod.py"
    target.write_bytes(OLD.encode())
    target.chmod(0o750)
    edited = apply_best(target, "something else\n", NEW, tmp_path / "run")
    assert not edited.written and "was edited during the run" in edited.message
    assert target.read_bytes() == OLD.encode() and not (tmp_path / "run").exists()
    written = apply_best(target, OLD, NEW, tmp_path / "run")
    assert written.written and read_source(target) == NEW
    assert stat.S_IMODE(target.stat().st_mode) == 0o750
    assert put_back(target, tmp_path / "run")
    assert target.read_bytes() == OLD.encode()  # CRLF and all
    assert stat.S_IMODE(target.stat().st_mode) == 0o750
    assert not put_back(target, tmp_path / "elsewhere")  # no backup there: nothing done
    assert target.read_bytes() == OLD.encode()


def journal(log_dir: Path, run_id: str, target: str) -> Path:
    path = log_dir / run_id / "journal.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"target": target}))
    return path.parent


def test_the_resume_lookup_finds_this_targets_runs_only(tmp_path: Path) -> None:
    first = journal(tmp_path, "20240101-000000-a", "a.py")
    journal(tmp_path, "20240102-000000-b", "b.py")
    latest = journal(tmp_path, "20240103-000000-a", "a.py")
    os.utime(first / "journal.json", (1, 1))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "journal.json").write_text("{not json")
    assert find_run(tmp_path, "a.py", "latest") == latest
    assert find_run(tmp_path, "a.py", first.name) == first
    with pytest.raises(RunNotFound, match=r"that run optimized another target, not a\.py"):
        find_run(tmp_path, "a.py", "20240102-000000-b")
    with pytest.raises(RunNotFound, match="no journal at") as missing:
        find_run(tmp_path, "a.py", "nope")
    # the runs there are named, the latest first
    assert str(missing.value).endswith(
        f"the runs of a.py there: {latest.name}, {first.name} (or 'latest')")
    with pytest.raises(RunNotFound, match=r"no earlier run for c\.py"):
        find_run(tmp_path, "c.py", "latest")


LATIN_1 = "# -*- coding: latin-1 -*-\nGREETING = 'caf\u00e9'\r\nN = 2\n"


def test_a_declared_encoding_is_read_and_written_byte_for_byte(tmp_path: Path) -> None:
    target = tmp_path / "greet.py"
    target.write_bytes(LATIN_1.encode("latin-1"))
    text = read_source(target)
    assert text == LATIN_1  # decoded as Python decodes it, line endings as stored
    result = apply_best(target, text, text.replace("N = 2", "N = 3"), run_dir=tmp_path / "run")
    assert result.written
    assert target.read_bytes() == LATIN_1.replace("N = 2", "N = 3").encode("latin-1")
    assert backup_path(tmp_path / "run", target).read_bytes() == LATIN_1.encode("latin-1")
    assert put_back(target, tmp_path / "run")
    assert target.read_bytes() == LATIN_1.encode("latin-1")


def test_a_candidate_its_declared_encoding_cannot_hold_is_named(tmp_path: Path) -> None:
    assert unencodable(LATIN_1) == ""
    assert "line 2" in unencodable(LATIN_1.replace("caf\u00e9", "caf\u0113"))
    assert "iso-8859-1" in unencodable(LATIN_1.replace("caf\u00e9", "caf\u0113"))
    write_source(tmp_path / "plain.py", "X = '\u0113'\n")  # no declaration: UTF-8
    assert (tmp_path / "plain.py").read_bytes() == "X = '\u0113'\n".encode()
