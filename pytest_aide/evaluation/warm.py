"""Warm evaluations: each candidate still in a fresh, sandboxed process, started by a fork of
an interpreter that has already imported pytest, its plugins and the tests' libraries.

A cold evaluation spends most of a short test run starting Python and importing (PyTorch
alone takes seconds). The zygote (zygote.py) is started once, in the same bwrap sandbox an
evaluation gets, with one writable scratch directory of its own (the slot). Per evaluation
the parent writes the candidate into the slot's file, which is mounted at the target's own
path, hands the zygote the evaluation's arguments, environment and descriptors (output, key,
clock marks) over a socket, and the zygote forks the child. Results are written into the slot
and copied to the evaluation's own directory.

The target and the project's own modules are never imported by the zygote (they may import
the target), so each child imports them afresh, the candidate among them. Where forking is
unsafe (threads or a CUDA context after the imports) or the zygote cannot start, evaluations
start cold, and the header says so once.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pytest_aide.evaluation.sandbox import Sandbox, python_paths
from pytest_aide.evaluation.zygote import OUTSIDE_NAMESPACE, pid_namespace
from pytest_aide.guards import reaper
from pytest_aide.workspace import source_encoding

ZYGOTE = "pytest_aide.evaluation.zygote"
#: Seconds a zygote may take to import everything and say it is ready.
START_TIMEOUT = 120.0


class WarmUnavailable(Exception):
    """The zygote cannot serve: evaluate cold (the message says why)."""


def library_imports(test_files: list[Path], rootdir: Path, target_module: str) -> list[str]:
    """Top-level modules the test files import that are libraries, not the project: never
    the target's package or anything found under the rootdir."""
    names: list[str] = []
    for path in test_files:
        try:
            tree = ast.parse(path.read_bytes())  # bytes: ast honours the coding declaration
        except (OSError, SyntaxError, UnicodeDecodeError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names += [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.append(node.module.split(".")[0])
    target_root = target_module.split(".")[0]
    wanted = []
    for name in dict.fromkeys(names):
        if name == target_root or name in sys.builtin_module_names:
            continue
        if _is_project_module(name, rootdir):
            continue
        wanted.append(name)
    return wanted


def _is_project_module(name: str, rootdir: Path) -> bool:
    import importlib.util

    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return True  # not importable from here: leave it to the child
    if spec is None:
        return True
    places = [spec.origin, *(spec.submodule_search_locations or [])]
    for place in places:
        if place and Path(place).resolve().is_relative_to(rootdir.resolve()):
            return True
    return False


@dataclass
class Zygote:
    """One warm interpreter in its sandbox, serving one evaluation at a time."""

    sandbox: Sandbox
    rootdir: Path
    slot: Path  # its writable scratch directory
    target: Path
    original: str
    modules: list[str]
    env: dict[str, str]
    hidden: list[Path] = field(default_factory=list)
    python: str = sys.executable
    #: With several targets: each other target's path and original text, mounted as the
    #: primary is (``also_files``).
    also: list[tuple[Path, str]] = field(default_factory=list)
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _socket: socket.socket | None = field(default=None, init=False, repr=False)

    @property
    def candidate_file(self) -> Path:
        """Outside the slot: the child sees it only through the read-only mount at the
        target's path, so it can neither change nor replace what the next child imports."""
        return self.slot.parent / f"{self.slot.name}-candidate" / self.target.name

    @property
    def also_files(self) -> list[Path]:
        """The other targets' candidate files, beside ``candidate_file``."""
        return [self.candidate_file.parent / str(index) / path.name
                for index, (path, _) in enumerate(self.also, start=1)]

    def _mounts(self) -> list[tuple[Path, Path]]:
        return [(self.candidate_file, self.target),
                *zip(self.also_files, (path for path, _ in self.also), strict=True)]

    def start(self) -> None:
        """Start the zygote and wait until it is ready; WarmUnavailable if it cannot be."""
        self.stop()
        self.slot.mkdir(parents=True, exist_ok=True)
        for file, text in zip([self.candidate_file, *self.also_files],
                              [self.original, *(text for _, text in self.also)], strict=True):
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_text(text, encoding=source_encoding(text))
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        command = self.sandbox.command(
            [self.python, "-m", ZYGOTE, str(theirs.fileno()), *self.modules],
            workdir=self.slot, cwd=self.rootdir,
            visible=[self.rootdir, *python_paths()], hidden=self.hidden,
            mounts=self._mounts(),
        )
        try:
            with (self.slot / "zygote.log").open("wb") as log:  # the child keeps its own copy
                self._process = subprocess.Popen(
                    command, cwd=self.rootdir, stdin=subprocess.DEVNULL,
                    env={**self.env, OUTSIDE_NAMESPACE: pid_namespace()},
                    stdout=subprocess.DEVNULL, stderr=log,
                    start_new_session=True, pass_fds=(theirs.fileno(),),
                )
        except OSError as exc:
            ours.close()
            raise WarmUnavailable(f"the warm interpreter could not start: {exc}") from None
        finally:
            theirs.close()
        reaper.started(self._process.pid)  # an unsandboxed evaluation must not reap it
        self._socket = ours
        try:
            ready = self._receive(START_TIMEOUT)
        except TimeoutError:
            self.stop()
            raise WarmUnavailable(f"it was not ready after {START_TIMEOUT:.0f}s") from None
        if ready.get("refused"):
            self.stop()
            raise WarmUnavailable(f"it refused to serve: {ready['refused']}")
        if ready.get("unsafe"):
            self.stop()
            raise WarmUnavailable(f"forking it is unsafe: {ready['unsafe']}")

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def _receive(self, timeout: float | None) -> dict:
        """The zygote's next message; TimeoutError, or WarmUnavailable when it is gone."""
        assert self._socket is not None
        self._socket.settimeout(timeout)
        try:
            data = self._socket.recv(1 << 16)
        except TimeoutError:
            raise
        except OSError:
            data = b""
        if not data:
            self.stop()
            raise WarmUnavailable("the warm interpreter stopped answering")
        return json.loads(data)

    def prepare(self, source: str, also: Sequence[str] = ()) -> None:
        """Before an evaluation: a running zygote, an empty slot (nothing of the last child's
        is left to this one) and ``source`` where the target's mount shows it (``also``: the
        other targets' texts, where theirs do)."""
        if self._process is None or self._process.poll() is not None:
            self.start()
        for item in self.slot.iterdir():
            if item.is_dir() and not item.is_symlink():
                shutil.rmtree(item, ignore_errors=True)
            else:
                item.unlink(missing_ok=True)
        for file, text in zip([self.candidate_file, *self.also_files], [source, *also],
                              strict=True):
            with file.open("w", encoding=source_encoding(text)) as handle:
                handle.write(text)  # in place: the mount follows the file, not its name

    def run(self, args: list[str], env: dict[str, str], fds: list[tuple[str, int]],
            output: int, timeout: float, sent: Callable[[], None] = lambda: None
            ) -> tuple[str, int | None]:
        """Fork one child for ``args`` (after ``prepare``): ("completed", its exit code),
        ("timeout", None) or ("crashed", None). After a timeout or a crash the zygote is
        stopped, and starts again at the next ``prepare``. ``sent``: called once the
        descriptors are the child's."""
        assert self._socket is not None
        request = {"args": args, "env": env, "cwd": str(self.rootdir),
                   "__fd_variables__": [name for name, _ in fds]}
        try:
            socket.send_fds(self._socket, [json.dumps(request).encode()],
                            [output, *(fd for _, fd in fds)])
        finally:
            sent()
        try:
            answer = self._receive(30.0)
        except TimeoutError:
            self.stop()
            raise WarmUnavailable("the warm interpreter did not fork") from None
        if "cold" in answer:
            raise WarmUnavailable(f"forking it became unsafe: {answer['cold']}")
        try:
            finished = self._receive(timeout)
        except TimeoutError:
            self.stop()
            return "timeout", None
        except WarmUnavailable:
            return "crashed", None
        return "completed", int(finished["exit"])

    def stop(self) -> None:
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.close()
            self._socket = None
        if self._process is not None:
            reaper.forget(self._process.pid)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._process.pid, 9)
            with contextlib.suppress(Exception):
                self._process.wait(timeout=10)
            self._process = None


@dataclass
class WarmPool:
    """Zygotes for the evaluations that run at once (one each); the first that cannot serve
    turns warm starts off for the rest of the run, so every evaluation is started alike."""

    make: Callable[[Path], Zygote]  # a new zygote with its slot directory
    slots: Path
    notice: str = ""
    _idle: list[Zygote] = field(default_factory=list)
    _count: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self) -> Zygote | None:
        with self._lock:
            if self.notice:
                return None
            if self._idle:
                return self._idle.pop()
            self._count += 1
            slot = self.slots / f"{self._count - 1:02d}"
        if slot.exists():
            shutil.rmtree(slot, ignore_errors=True)
        return self.make(slot)

    def give_back(self, zygote: Zygote) -> None:
        with self._lock:
            self._idle.append(zygote)

    def give_up(self, zygote: Zygote | None, why: str) -> None:
        if zygote is not None:
            zygote.stop()
        with self._lock:
            if not self.notice:
                self.notice = f"evaluations start cold: {why}"
            idle, self._idle = self._idle, []
        for other in idle:
            other.stop()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for zygote in idle:
            zygote.stop()
