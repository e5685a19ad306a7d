"""The OS sandbox, tried as a hostile candidate would: each attack below wins without it.

One candidate makes every attack when it is imported and writes what it saw into its own
evaluation directory (the one place it may write); the tests then check the machine from
outside. Real bubblewrap, no mocks: CI installs it (``.ci/run``).
"""

from __future__ import annotations

import contextlib
import json
import os
import py_compile
import shutil
import socket
import subprocess
import sys
import sysconfig
import textwrap
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import IN_CI

from pytest_aide.evaluation.evaluator import Evaluator
from pytest_aide.evaluation.sandbox import Sandbox, choose, network_hint, probe
from pytest_aide.study import Objective, Study, Target

pytestmark = pytest.mark.skipif(
    bool(probe()) and not IN_CI,
    reason=f"bubblewrap unusable here ({probe()}); CI installs it and runs these",
)

ATTACKS = '''
import json, os, socket, subprocess, sys

seen = {"file": __file__, "source_marker": "CANDIDATE-MARKER" in open(__file__).read()}
workdir = WORKDIR
seen["optimizer_variables"] = sorted(k for k in os.environ if k.startswith("PYTEST_AIDE"))
try:
    with open(os.path.join(ROOTDIR, "conftest.py"), "w") as handle:
        handle.write("raise SystemExit('planted')\\n")
    seen["conftest"] = "written"
except OSError as exc:
    seen["conftest"] = type(exc).__name__
import site, sysconfig
startup = os.path.join(sysconfig.get_paths()["purelib"], LEFTOVER + ".pth")
try:
    with open(startup, "w") as handle:  # run by every later interpreter of this environment
        handle.write("import os\\n")
    seen["pth"] = "written"
except OSError as exc:
    seen["pth"] = type(exc).__name__
seen["pth_path"] = startup
for place in (os.path.expanduser("~"), "/tmp"):
    with open(os.path.join(place, LEFTOVER), "w") as handle:
        handle.write("left behind")
seen["home"] = os.path.expanduser("~")
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", SURVIVOR],
                 start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
found = []
for pid in os.listdir("/proc"):
    if pid.isdigit():
        try:
            with open(f"/proc/{pid}/environ", "rb") as handle:
                if CANARY.encode() in handle.read():
                    found.append(pid)
        except OSError:
            pass
seen["canary_pids"] = found
seen["pids"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
try:
    socket.create_connection(("127.0.0.1", PORT), timeout=2).close()
    seen["network"] = "connected"
except OSError as exc:
    seen["network"] = type(exc).__name__
seen["log_dir"] = sorted(os.listdir(os.path.join(ROOTDIR, ".aide")))
with open(os.path.join(workdir, "seen.json"), "w") as handle:
    json.dump(seen, handle)
'''


@pytest.fixture
def listener() -> Iterator[int]:
    """A TCP port on loopback that accepts connections, for the network attack."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            with contextlib.suppress(OSError):  # the accept timed out: look at stop again
                server.accept()[0].close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    server.close()


@pytest.fixture
def optimizer_with_secret() -> Iterator[str]:
    """A process of 'the optimizer' whose environment holds a provider key."""
    canary = f"sk-canary-{uuid.uuid4().hex}"
    env = dict(os.environ, OPENAI_API_KEY=canary)
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], env=env)
    yield canary
    process.kill()
    process.wait()


def study_of(root: Path) -> Study:
    return Study(
        target=Target("slow", root / "slow.py"),
        objectives=[Objective("test_slow.py::test_speed", "mean", False)],
        guard_nodeids=["test_slow.py::test_correct[7]"],
        test_files=[root / "test_slow.py"],
    )


def hostile_candidate(root: Path, port: int, canary: str, tag: str, name: str) -> str:
    original = (root / "slow.py").read_text()
    constants = (
        f"WORKDIR = {str(root / '.aide' / 'run' / name)!r}\n"
        f"ROOTDIR = {str(root)!r}\nLEFTOVER = 'aide-leftover-{tag}'\n"
        f"SURVIVOR = 'aide-survivor-{tag}'\nCANARY = {canary!r}\nPORT = {port}\n"
    )
    return "# CANDIDATE-MARKER\n" + constants + ATTACKS + original


def evaluate(root: Path, candidate: str, sandbox: Sandbox | None, name: str) -> dict:
    study = study_of(root)
    (root / ".aide" / "other-run").mkdir(parents=True, exist_ok=True)
    (root / ".aide" / "other-run" / "journal.json").write_text("{}")
    evaluator = Evaluator(study, root, timeout=60, sandbox=sandbox,
                          pytest_args=["-p", "no:randomly"], protected_exclude=[root / ".aide"])
    workdir = root / ".aide" / "run" / name  # as in hostile_candidate
    evaluation = evaluator.evaluate(candidate, workdir, baseline=None)
    assert evaluation.completed, evaluation.output_tail
    seen_path = workdir / "seen.json"
    assert seen_path.exists(), evaluation.output_tail
    seen = json.loads(seen_path.read_text())
    seen["tampered"] = evaluation.findings_text
    seen["outcome"] = evaluation.outcome("test_slow.py::test_correct[7]")
    return seen


def survivors(tag: str) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if f"aide-survivor-{tag}".encode() in cmdline:
            found.append(int(pid))
    return found


def test_hostile_candidate_is_contained_by_the_sandbox(
    slow_project: pytest.Pytester, listener: int, optimizer_with_secret: str
) -> None:
    root = slow_project.path
    tag = uuid.uuid4().hex[:12]
    sandbox = choose("bwrap").sandbox
    seen = evaluate(root, hostile_candidate(root, listener, optimizer_with_secret, tag, "boxed"),
                    sandbox, "boxed")
    # the candidate sits at the target's real path, and it is the candidate's code there
    assert seen["file"] == str(root / "slow.py") and seen["source_marker"]
    assert seen["outcome"] == "passed"
    # the project is read-only, and stays as it was
    assert seen["conftest"] == "OSError"
    assert not (root / "conftest.py").exists()
    # so is the Python environment: no start-up hook for later evaluations
    assert seen["pth"] == "OSError" and not Path(seen["pth_path"]).exists()
    # nothing it wrote to its home or /tmp is left on the machine
    assert seen["home"] != str(Path.home())
    assert not (Path.home() / f"aide-leftover-{tag}").exists()
    assert not (Path("/tmp") / f"aide-leftover-{tag}").exists()
    # nothing it started outlives the evaluation
    assert survivors(tag) == []
    # the optimizer's processes, and the key in their environment, are out of sight
    assert seen["canary_pids"] == []
    assert os.getpid() not in seen["pids"] and max(seen["pids"]) < 100
    # no network, loopback included: the optimizer's own servers are out of reach
    assert seen["network"] != "connected"
    # no other run's files (journals, keys) are visible
    assert seen["log_dir"] == ["run"]
    # and nothing says that this is a measured run
    assert seen["optimizer_variables"] == []


def test_the_same_candidate_without_the_sandbox_reaches_everything(
    slow_project: pytest.Pytester, listener: int, optimizer_with_secret: str
) -> None:
    """The attacks are real: unsandboxed, they win (which is what the sandbox is for), but
    for the process left behind."""
    root = slow_project.path
    tag = uuid.uuid4().hex[:12]
    try:
        seen = evaluate(root, hostile_candidate(root, listener, optimizer_with_secret, tag, "open"),
                        None, "open")
        assert seen["canary_pids"], "the optimizer's key was not found through /proc"
        assert seen["network"] == "connected"
        assert "other-run" in seen["log_dir"]
        assert (Path("/tmp") / f"aide-leftover-{tag}").exists()
        assert seen["pth"] == "written"
        # one thing holds without the sandbox: the optimizer, as subreaper, kills the orphan
        assert survivors(tag) == []
    finally:
        for pid in survivors(tag):
            os.kill(pid, 9)
        (Path("/tmp") / f"aide-leftover-{tag}").unlink(missing_ok=True)
        (Path.home() / f"aide-leftover-{tag}").unlink(missing_ok=True)
        Path(sysconfig.get_paths()["purelib"], f"aide-leftover-{tag}.pth").unlink(missing_ok=True)


def test_network_is_there_when_the_user_allows_it(
    slow_project: pytest.Pytester, listener: int
) -> None:
    root = slow_project.path
    tag = uuid.uuid4().hex[:12]
    sandbox = choose("bwrap", network=True).sandbox
    seen = evaluate(root, hostile_candidate(root, listener, "no-canary", tag, "net"),
                    sandbox, "net")
    assert seen["network"] == "connected"
    assert survivors(tag) == []


def test_a_stale_pyc_of_the_original_never_stands_in_for_the_candidate(
    slow_project: pytest.Pytester,
) -> None:
    """A .pyc that Python would take without looking at the source (unchecked hash)."""
    root = slow_project.path
    target = root / "slow.py"
    cached = root / "__pycache__" / f"slow.{sys.implementation.cache_tag}.pyc"
    py_compile.compile(str(target), cfile=str(cached),
                       invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    wrong = target.read_text().replace("total += sum", "total -= sum")
    evaluator = Evaluator(study_of(root), root, timeout=60, sandbox=choose("bwrap").sandbox,
                          protected_exclude=[root / ".aide"])
    evaluation = evaluator.evaluate(wrong, root / ".aide" / "run" / "pyc", baseline=None)
    assert evaluation.completed, evaluation.output_tail
    assert evaluation.outcome("test_slow.py::test_correct[7]") == "failed"


def test_a_project_under_tmp_is_still_visible(pytester: pytest.Pytester) -> None:
    """pytester's projects live under /tmp, which the sandbox replaces by its own."""
    assert str(pytester.path).startswith("/tmp")
    pytester.makepyfile(slow="def work(n):\n    return sum(range(n))\n")
    pytester.makepyfile(test_slow=textwrap.dedent("""
        from slow import work

        def test_correct():
            assert work(7) == 21
    """))
    study = Study(target=Target("slow", pytester.path / "slow.py"), objectives=[],
                  guard_nodeids=["test_slow.py::test_correct"])
    evaluator = Evaluator(study, pytester.path, sandbox=choose("bwrap").sandbox)
    evaluation = evaluator.evaluate(None, pytester.path / ".aide" / "base", baseline=None)
    assert evaluation.completed, evaluation.output_tail
    assert evaluation.outcome("test_slow.py::test_correct") == "passed"


def test_tmp_itself_on_the_python_path_leaves_the_sandbox_its_own_tmp(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A script or PYTHONPATH in /tmp puts /tmp on sys.path: binding all of it read-only
    would leave bwrap no writable /tmp to start in, and every evaluation would crash."""
    monkeypatch.syspath_prepend("/tmp")
    outside = Path("/tmp") / f"aide-outside-{uuid.uuid4().hex}"
    outside.write_text("the machine's /tmp")
    pytester.makepyfile(slow="def work(n):\n    return sum(range(n))\n")
    pytester.makepyfile(test_slow=textwrap.dedent(f"""
        import os

        from slow import work

        def test_correct():
            assert work(7) == 21
            assert not os.path.exists({str(outside)!r})  # /tmp is still the sandbox's own
    """))
    study = Study(target=Target("slow", pytester.path / "slow.py"), objectives=[],
                  guard_nodeids=["test_slow.py::test_correct"])
    evaluator = Evaluator(study, pytester.path, sandbox=choose("bwrap").sandbox,
                          protected_exclude=[pytester.path / ".aide"])
    try:
        evaluation = evaluator.evaluate(None, pytester.path / ".aide" / "base", baseline=None)
    finally:
        outside.unlink()
    assert evaluation.completed, evaluation.output_tail
    assert evaluation.outcome("test_slow.py::test_correct") == "passed", evaluation.output_tail


# ---------------------------------------------------------------------------------------------
# --aide-sandbox through pytest's command line


def journal_settings(root: Path) -> dict:
    (path,) = root.glob(".aide/*/journal.json")
    return json.loads(path.read_text())["settings"]


def test_a_run_is_sandboxed_by_default_and_says_nothing_about_it(slow_project) -> None:
    result = slow_project.runpytest_subprocess("--aide-steps", "1", "--aide-model", "tune",
                                               "--aide-preserve-source")
    assert result.ret == 0, result.stdout.str()
    assert "not sandboxed" not in result.stdout.str()
    assert journal_settings(slow_project.path)["sandbox"] == "bwrap"


def test_a_project_rooted_at_tmp_itself_is_refused_with_the_fix(slow_project) -> None:
    """Started in /tmp with no configuration file, pytest roots the project at /tmp; the
    sandbox's private /tmp cannot show it, and every evaluation used to die without results."""
    original = (slow_project.path / "slow.py").read_text()
    result = slow_project.runpytest_subprocess("--aide-steps", "1", "--aide-model", "tune",
                                               "--rootdir=/tmp")
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    result.stderr.fnmatch_lines(["*pytest's rootdir is /tmp itself*--rootdir=DIR*"])
    assert (slow_project.path / "slow.py").read_text() == original
    assert not list(slow_project.path.glob(".aide/*/journal.json"))


def test_sandbox_off_says_what_it_leaves_open(slow_project) -> None:
    result = slow_project.runpytest_subprocess("--aide-steps", "1", "--aide-model", "tune",
                                               "--aide-preserve-source", "--aide-sandbox", "off")
    assert result.ret == 0, result.stdout.str()
    # in the header, before the search, and again at the end
    result.stdout.fnmatch_lines([
        "aide: --aide-sandbox off: evaluations are not sandboxed: candidate code can read*",
        "step 0/1 baseline*",
        "*aide: --aide-sandbox off: evaluations are not sandboxed*",
    ])
    assert journal_settings(slow_project.path)["sandbox"] == "off"


def path_without_bwrap(tmp_path: Path) -> str:
    """A PATH with this interpreter and git but no bwrap."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("git",):
        found = shutil.which(tool)
        if found:
            (bin_dir / tool).symlink_to(found)
    return f"{Path(sys.executable).parent}{os.pathsep}{bin_dir}"


def test_without_bwrap_auto_goes_on_and_says_how_to_install_it(
    slow_project, monkeypatch, tmp_path
) -> None:
    monkeypatch.setenv("PATH", path_without_bwrap(tmp_path))
    result = slow_project.runpytest_subprocess("--aide-steps", "1", "--aide-model", "tune",
                                               "--aide-preserve-source")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines([
        "aide: bwrap is not installed, so evaluations are not sandboxed*apt-get install "
        "bubblewrap*",
    ])


def test_without_bwrap_sandbox_bwrap_is_a_usage_error(slow_project, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", path_without_bwrap(tmp_path))
    result = slow_project.runpytest_subprocess("--aide-steps", "1", "--aide-model", "tune",
                                               "--aide-sandbox", "bwrap")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([
        "*--aide-sandbox bwrap: bwrap is not installed; install bubblewrap (Debian/Ubuntu: "
        "apt-get install bubblewrap*or pass --aide-sandbox auto*",
    ])


def test_an_unknown_sandbox_mode_is_a_usage_error(slow_project) -> None:
    result = slow_project.runpytest_subprocess("--aide-steps", "1", "--aide-sandbox", "docker")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--aide-sandbox must be one of auto, bwrap, off, not 'docker'*"])


@pytest.mark.parametrize("error, sandbox, hinted", [
    ("E   openai.APIConnectionError: Connection error.", Sandbox("bwrap"), True),
    ("ConnectionRefusedError: [Errno 111] Connection refused", Sandbox("bwrap"), True),
    ("ConnectionRefusedError: [Errno 111] Connection refused",
     Sandbox("bwrap", network=True), False),  # the network was there: something else failed
    ("ConnectionRefusedError: [Errno 111] Connection refused", None, False),  # no sandbox
    ("AssertionError: assert 3 == 4", Sandbox("bwrap"), False),
])
def test_a_baseline_that_could_not_connect_is_told_about_aide_network(
    error: str, sandbox: Sandbox | None, hinted: bool
) -> None:
    hint = network_hint(sandbox, error)
    assert ("--aide-network" in hint) is hinted
