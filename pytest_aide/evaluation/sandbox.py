"""An OS sandbox per evaluation, with bubblewrap (``bwrap``): defences below Python.

In-process guards share an address space with the candidate, so a clever candidate gets
around them. Under bwrap the child pytest runs in its own PID, IPC, UTS and (unless the
user allows the network) network namespaces, and sees:

* the whole filesystem read-only (the project, the Python environment, the home directory);
* a private, empty, writable ``/tmp`` and ``$HOME`` (``HOME`` points into that ``/tmp``), and
  a private ``/dev/shm``;
* its own evaluation directory as the only writable place on disk;
* none of the optimizer's runs (the log directory is an empty ``tmpfs``);
* the candidate bind-mounted at the target's own path, so ``inspect.getsource``, Triton's JIT
  and tracebacks see the real path, and nothing tells the candidate it is a candidate. The
  target's ``__pycache__`` is hidden, so a stale ``.pyc`` of the original is never used.

Nothing outlives the evaluation: the command is the first process of its PID namespace
(``--as-pid-1``), so when it ends the kernel ends every other process there before bwrap
returns (with bwrap's own init as the first process, bwrap returned as soon as the command
ended, and a process it left ran on until ``--die-with-parent`` caught up with it); and
``--die-with-parent`` ends the sandbox if the optimizer dies. ``/proc`` is the sandbox's own,
so the optimizer's processes (and the keys in their environment) are not there to read.
Run by root, bwrap would leave the sandbox root's capabilities (with which it could remount
the project writable): they are dropped.
"""

from __future__ import annotations

import functools
import glob
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

#: How to get bubblewrap, for the messages that say it is missing.
INSTALL_HINT = (
    "install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap; Fedora/RHEL: "
    "dnf install bubblewrap; Arch: pacman -S bubblewrap; Alpine: apk add bubblewrap)"
)

#: What an unsandboxed run leaves open, said once in the header and in the summary.
UNSANDBOXED = (
    "evaluations are not sandboxed: candidate code can read this machine's files and "
    "processes, use the network and leave files or processes behind; only in-process guards "
    "apply"
)

#: The private home inside the sandbox's own /tmp.
SANDBOX_HOME = "/tmp/home"

#: Device nodes a GPU job needs, passed through when they exist.
GPU_DEVICES = ("/dev/nvidia*", "/dev/dri", "/dev/kfd")


class SandboxUnavailable(Exception):
    """``--aide-sandbox bwrap`` was asked for and bwrap cannot run here."""


@dataclass(frozen=True)
class Capabilities:
    """What a sandbox guarantees, so that the evaluator asks instead of assuming."""

    #: The project and the Python environment cannot be written from inside: the measuring
    #: code outside the project needs no watching.
    read_only_filesystem: bool
    #: Every process the child starts ends with it (its own PID namespace): nothing needs
    #: reaping, and a warm zygote may end all it sees.
    own_pid_namespace: bool
    #: A file can be bound over another path: the candidate is seen at the target's own path.
    mounts_files: bool


@dataclass(frozen=True)
class NoSandbox:
    """No OS sandbox (``--aide-sandbox off``): the command runs as it is, and the in-process
    guards, the project guard and the subreaper do what they can."""

    capabilities = Capabilities(read_only_filesystem=False, own_pid_namespace=False,
                                mounts_files=False)

    def command(self, command: list[str], **_: object) -> list[str]:
        return command


NO_SANDBOX = NoSandbox()


#: What a failed test says when it could not reach a server (the words of Python's socket
#: errors, urllib3/requests, httpx and the LLM SDKs built on it).
CONNECTION_FAILED = ("Connection refused", "Network is unreachable", "Name or service not known",
                     "Temporary failure in name resolution", "Failed to establish a new connection",
                     "ConnectError", "APIConnectionError")


def network_hint(sandbox: Sandbox | None, error: str) -> str:
    """Why tests that talk to a server fail only under pytest-aide: the sandbox has no network
    (its own loopback only). Empty unless that is the likely cause."""
    if sandbox is None or sandbox.network or not any(w in error for w in CONNECTION_FAILED):
        return ""
    return ("The evaluations run in a sandbox without the network (a loopback of its own), "
            "and the original's tests could not connect. If they need a server outside the "
            "sandbox (an LLM endpoint, a database), pass --aide-network; candidate code can "
            "then reach the network too.")


@dataclass(frozen=True)
class Sandbox:
    """How to wrap one evaluation's command in bwrap."""

    bwrap: str
    network: bool = False
    capabilities = Capabilities(read_only_filesystem=True, own_pid_namespace=True,
                                mounts_files=True)

    def command(
        self,
        command: list[str],
        *,
        workdir: Path,
        cwd: Path,
        visible: Iterable[Path] = (),
        hidden: Iterable[Path] = (),
        mounts: Iterable[tuple[Path, Path]] = (),
    ) -> list[str]:
        """``command`` inside the sandbox.

        ``visible``: read-only paths that must be seen even where they lie under ``/tmp`` (the
        project, the Python environment). ``hidden``: directories replaced by an empty tmpfs
        (the log directory). ``mounts``: ``(source, destination)`` files bound read-only over
        the destination (the candidate over the target). ``workdir``: the one writable place;
        ``cwd``: where the command starts.
        """
        args = [
            self.bwrap,
            "--die-with-parent",
            "--new-session",
            "--unshare-pid",
            "--as-pid-1",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
        ]
        if os.geteuid() == 0:  # bwrap keeps root's capabilities unless told otherwise
            args += ["--cap-drop", "ALL"]
        if not self.network:
            args.append("--unshare-net")
        args += ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
                 "--tmpfs", "/dev/shm"]
        for pattern in GPU_DEVICES:
            for device in sorted(glob.glob(pattern)):
                args += ["--dev-bind", device, device]
        for path in _under_tmp(visible):
            args += ["--ro-bind", str(path), str(path)]
        for path in hidden:
            if path.is_dir():
                args += ["--tmpfs", str(path)]
        args += ["--bind", str(workdir), str(workdir)]
        for source, destination in mounts:
            args += ["--ro-bind", str(source), str(destination)]
            pycache = destination.parent / "__pycache__"
            if pycache.is_dir():
                args += ["--tmpfs", str(pycache)]
        args += ["--dir", SANDBOX_HOME, "--setenv", "HOME", SANDBOX_HOME,
                 "--setenv", "TMPDIR", "/tmp", "--chdir", str(cwd), "--"]
        return args + command


def python_paths() -> list[Path]:
    """Where this interpreter, its libraries and the loaded packages live: they must be
    visible in the sandbox. Packages installed in editable mode are found by an import hook,
    not through ``sys.path``, so each loaded top-level package's own location counts too
    (pytest-aide itself, checked out under ``/tmp``, is one)."""
    places = _python_places(tuple(sys.path), len(sys.modules))
    return [p for p in places if p.exists()]


@functools.lru_cache(maxsize=8)
def _python_places(path: tuple[str, ...], module_count: int) -> tuple[Path, ...]:
    """``python_paths`` before the check that each exists, worked out again when
    ``sys.path`` or the number of loaded modules changes: an evaluation each second would
    otherwise spend milliseconds on the same few hundred paths."""
    paths = {Path(sys.prefix), Path(sys.base_prefix), Path(sys.exec_prefix),
             Path(sys.executable).parent}
    paths.update(Path(entry) for entry in path if entry)
    for name, module in list(sys.modules.items()):
        if "." in name:
            continue
        locations = list(getattr(module, "__path__", None) or [])
        file = getattr(module, "__file__", None)
        if not locations and isinstance(file, str):
            locations = [file]
        paths.update(Path(p) for p in locations if isinstance(p, str))
    return tuple(sorted(paths))


def _under_tmp(paths: Iterable[Path]) -> list[Path]:
    """The paths that the sandbox's empty /tmp would hide, outermost first, no repeats.

    ``/tmp`` itself is left out: bound read-only, it would leave the sandbox no private
    ``/tmp`` (bwrap fails to make its home there). It comes in as a ``sys.path`` entry (a
    script or ``PYTHONPATH`` there); what is loaded from it is listed by its own location.
    """
    kept: list[Path] = []
    for path in _real_paths_under_tmp(tuple(paths)):
        if path.exists() and not any(path.is_relative_to(k) for k in kept):
            kept.append(path)
    return kept


@functools.lru_cache(maxsize=32)
def _real_paths_under_tmp(paths: tuple[Path, ...]) -> tuple[Path, ...]:
    """The real paths under /tmp among ``paths``, sorted (resolving links is what costs)."""
    real = {Path(os.path.realpath(p)) for p in paths}
    return tuple(sorted(p for p in real if p != Path("/tmp") and p.is_relative_to("/tmp")))


@functools.cache
def probe(bwrap: str | None = None) -> str:
    """'' when bwrap works here; else why not (missing, or refused by the kernel)."""
    found = bwrap or shutil.which("bwrap")
    if not found:
        return "bwrap is not installed"
    scratch = Path(tempfile.mkdtemp(prefix="aide-probe-"))
    check = Sandbox(found).command(["true"], workdir=scratch, cwd=scratch)
    try:
        done = subprocess.run(check, capture_output=True, timeout=30, text=True)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bwrap did not run: {exc}"
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        return f"bwrap cannot create a sandbox here ({reason})"
    return ""


@dataclass
class SandboxChoice:
    """The sandbox a run uses (None: none), and what to tell the user about it."""

    sandbox: Sandbox | None
    notice: str = ""


def choose(mode: str, network: bool = False, rootdir: Path | None = None) -> SandboxChoice:
    """``auto``: bwrap when it works, else a notice; ``bwrap``: bwrap or an error; ``off``."""
    if mode == "off":
        return SandboxChoice(None, f"--aide-sandbox off: {UNSANDBOXED}")
    problem = probe()
    if not problem:
        if rootdir is not None and Path(os.path.realpath(rootdir)) == Path("/tmp"):
            raise SandboxUnavailable(
                f"--aide-sandbox {mode}: pytest's rootdir is /tmp itself (with no pytest.ini, "
                "pyproject.toml or other configuration file above the tests, pytest falls back "
                "to a common directory), and each sandboxed evaluation has a private /tmp, "
                "so the project cannot be shown there; run pytest from the project's own "
                "directory, give the project a pytest.ini, or pass --rootdir=DIR "
                "(or --aide-sandbox off)"
            )
        return SandboxChoice(Sandbox(shutil.which("bwrap") or "bwrap", network=network))
    if mode == "bwrap":
        raise SandboxUnavailable(
            f"--aide-sandbox bwrap: {problem}; {INSTALL_HINT}, or pass --aide-sandbox auto"
        )
    return SandboxChoice(None, f"{problem}, so {UNSANDBOXED}; {INSTALL_HINT}")
