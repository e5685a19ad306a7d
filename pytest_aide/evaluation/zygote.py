"""The warm side of an evaluation: a sandboxed interpreter that forks one child per evaluation.

Started once (``python -m pytest_aide.evaluation.zygote FD MODULE...``) inside the sandbox,
it imports pytest, its plugins and the libraries the tests import (never the target or the
project's own modules, which may import it), then waits on the socket ``FD``. For each
request it forks a child that runs ``pytest.main`` with the request's arguments and
environment, its output on the descriptor passed with the request, so the child starts with
all of that already loaded. When the child ends, nothing of it is left for the next one:
every other process in the sandbox is killed (``kill(-1)``, which the kernel delivers to all at
once, so a chain that forks while being killed ends too; again until none is listed), the
private ``/tmp``, home and ``/dev/shm`` are emptied, and every System V shared memory segment,
semaphore set and message queue is removed (the sandbox has an IPC namespace of its own).
What the zygote itself made while it imported is kept. That clean-up
is only safe in a PID namespace of its own: the zygote checks that it is in one (a namespace
other than its launcher's, whose first process is its parent or itself) and refuses to serve
or to clean up anywhere else, where it would kill the user's own processes.

Forking is unsafe once Python threads run or a CUDA context exists; the zygote then says so when it
is ready, and the parent starts each evaluation cold (warm.py).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import shutil
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_aide.guards.reaper import process_table

#: Names, in a request's environment, of the descriptors passed with it (in this order
#: after the output): filled in with the numbers they have in the child.
FD_VARIABLES = "__fd_variables__"
#: In the zygote's environment: the PID namespace of the process that started it
#: (``/proc/self/ns/pid`` there), which the zygote must not be in.
OUTSIDE_NAMESPACE = "PYTEST_AIDE_OUTSIDE_PID_NAMESPACE"
#: POSIX shared memory (``shm_open``) and its files: the sandbox's own tmpfs.
SHARED_MEMORY = Path("/dev/shm")
#: System V IPC: each kind's file in /proc/sysvipc and libc's call that removes one.
IPC_REMOVERS = {"shm": "shmctl", "sem": "semctl", "msg": "msgctl"}
IPC_RMID = 0


class NotIsolated(RuntimeError):
    """The zygote is not in a PID namespace of its own: killing every process it sees would
    kill processes outside the sandbox."""


def pid_namespace() -> str:
    """This process's PID namespace, e.g. ``pid:[4026531836]`` (the same from any /proc)."""
    return os.readlink("/proc/self/ns/pid")


def namespace_problem() -> str:
    """Why this process is not in a PID namespace of its own ("" when it is).

    Its own: /proc shows this namespace, the namespace differs from the launcher's (named in
    ``OUTSIDE_NAMESPACE``; unnamed is refused), and its first process is this process or its
    parent (bwrap's init), so the namespace was made for it, not inherited from a container.
    """
    try:
        ours = pid_namespace()
        first = os.readlink("/proc/1/ns/pid")
        seen_as = int(os.readlink("/proc/self"))
    except (OSError, ValueError) as exc:
        return f"its PID namespace cannot be read ({exc})"
    outside = os.environ.get(OUTSIDE_NAMESPACE, "")
    if not outside:
        return f"its launcher's PID namespace is not named ({OUTSIDE_NAMESPACE} is unset)"
    if ours == outside:
        return f"it runs in its launcher's PID namespace ({ours})"
    if seen_as != os.getpid():
        return "/proc shows another PID namespace than its own"
    if first != ours or 1 not in (os.getpid(), os.getppid()):
        return "its PID namespace's first process is neither it nor its parent"
    return ""


def warm_up(modules: list[str]) -> list[str]:
    """Import pytest, its plugins and ``modules``; the names that failed.

    pytest rewrites a plugin's asserts as it loads it, and warns about (and cannot rewrite) a
    plugin already imported by anything else; so the plugins are imported here through
    pytest's own rewriting hook, marked for them as pytest marks them, which the child's
    pytest then accepts as its own work.
    """
    from importlib.metadata import entry_points

    import pytest  # noqa: F401
    from _pytest.assertion import install_importhook
    from _pytest.config import get_config

    # pytest-aide's own plugin is left to the child (this module is pytest-aide's: see
    # run_child, which forgets it)
    plugins = [entry.module for entry in entry_points(group="pytest11")
               if entry.module.split(".")[0] not in sys.modules]
    failed = []
    hook = install_importhook(get_config())
    try:
        hook.mark_rewrite(*{name.split(".")[0] for name in plugins})
        for name in plugins:
            try:
                importlib.import_module(name)
            except BaseException:
                failed.append(name)
    finally:
        sys.meta_path.remove(hook)
    for name in ["_pytest.python", "_pytest.runner", *modules]:
        try:
            importlib.import_module(name)
        except BaseException:  # a library that cannot load here is loaded cold, by the child
            failed.append(name)
    return failed


def fork_unsafe() -> str:
    """Why forking now would give a broken child ("" when it is safe)."""
    # Python threads may hold locks the child would inherit held. (Native thread pools of
    # BLAS and OpenMP libraries are left alone: they shut down and restart across a fork.)
    if threading.active_count() > 1:
        return f"{threading.active_count() - 1} thread(s) started while importing"
    torch = sys.modules.get("torch")
    cuda = getattr(torch, "cuda", None)
    with contextlib.suppress(Exception):
        if cuda is not None and cuda.is_initialized():
            return "a CUDA context was created while importing"
    return ""


def run_child(request: dict[str, Any], fds: list[int], server: socket.socket) -> None:
    """In the forked child: become the evaluation's pytest; never returns."""
    code = 3
    try:
        server.close()
        not_dumpable(1)
        os.setsid()
        output, *passed = fds
        os.dup2(output, 1)
        os.dup2(output, 2)
        os.close(output)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        env = dict(request["env"])
        for name in ("HOME", "TMPDIR"):  # the sandbox's own, as a cold child has them
            if name in os.environ:
                env[name] = os.environ[name]
        for name, fd in zip(request.get(FD_VARIABLES, []), passed, strict=False):
            env[name] = str(fd)
        os.environ.clear()
        os.environ.update(env)
        os.chdir(request["cwd"])
        sys.argv = ["pytest", *request["args"]]
        # pytest-aide's modules (this one among them) were imported without pytest's assert
        # rewriting, which the child's pytest would warn about: it imports them afresh
        own = __name__.split(".")[0]
        for name in [n for n in sys.modules if n.split(".")[0] == own]:
            del sys.modules[name]
        signal.signal(signal.SIGINT, signal.default_int_handler)
        import pytest

        code = int(pytest.main(request["args"]))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


class Leftovers(RuntimeError):
    """Processes a child left could not all be ended: the zygote stops serving."""


@dataclass(frozen=True)
class Kept:
    """What the zygote itself holds once it has imported: never cleaned away."""

    shared_memory_files: frozenset[str]
    ipc_objects: frozenset[tuple[str, int]]

    @classmethod
    def now(cls) -> Kept:
        return cls(frozenset(_names(SHARED_MEMORY)), frozenset(ipc_objects()))


def ipc_objects() -> set[tuple[str, int]]:
    """The System V IPC objects in this IPC namespace, as (kind, id)."""
    found = set()
    for kind in IPC_REMOVERS:
        try:
            lines = Path("/proc/sysvipc", kind).read_text().splitlines()[1:]
        except OSError:
            continue
        found.update((kind, int(line.split()[1])) for line in lines if len(line.split()) > 1)
    return found


def _names(place: Path) -> list[str]:
    try:
        return os.listdir(place)
    except OSError:
        return []


def end_leftovers(keep: set[int], patience: float = 5.0) -> None:
    """Kill every process but ``keep`` (the zygote and its namespace's first process, which
    ``kill(-1)`` spares) until none is left; Leftovers after ``patience`` seconds."""
    deadline = time.monotonic() + patience
    while True:
        with contextlib.suppress(ChildProcessError):
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        alive = [pid for pid, fields in process_table().items()
                 if pid not in keep and fields[0] != "Z"]
        if not alive:
            return
        if time.monotonic() > deadline:
            raise Leftovers(f"processes {alive[:8]} survived the clean-up")
        with contextlib.suppress(ProcessLookupError):
            os.kill(-1, signal.SIGKILL)
        time.sleep(0.001)


def remove_ipc_objects(kept: frozenset[tuple[str, int]]) -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for kind, ident in ipc_objects() - kept:
        remover = IPC_REMOVERS[kind]
        if kind == "sem":
            getattr(libc, remover)(ident, 0, IPC_RMID)
        else:
            getattr(libc, remover)(ident, IPC_RMID, None)


def clean_up(keep: set[int], kept: Kept) -> None:
    """Kill every process but ``keep`` in this PID namespace; empty /tmp, the home and
    /dev/shm, and remove the System V IPC objects, but what ``kept`` names.

    NotIsolated, before anything is touched, outside a PID namespace of its own."""
    problem = namespace_problem()
    if problem:
        raise NotIsolated(f"the zygote's clean-up refuses to run: {problem}")
    end_leftovers(keep)
    places = {Path("/tmp"): frozenset(), Path(os.environ.get("HOME", "/tmp")): frozenset(),
              SHARED_MEMORY: kept.shared_memory_files}
    for place, spared in places.items():
        for name in set(_names(place)) - spared:
            item = place / name
            with contextlib.suppress(OSError):
                if item.is_dir() and not item.is_symlink():
                    shutil.rmtree(item)
                else:
                    item.unlink()
    remove_ipc_objects(kept.ipc_objects)


def send(server: socket.socket, message: dict[str, Any]) -> None:
    """One message a packet (the socket is SOCK_SEQPACKET: boundaries are kept)."""
    server.send(json.dumps(message).encode())


def not_dumpable(flag: int) -> None:
    """PR_SET_DUMPABLE: 0 in the zygote, so that no child can ptrace it or write its memory
    through /proc and change what later children start from; 1 again in each child."""
    import ctypes

    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(4, flag, 0, 0, 0)


def serve(server: socket.socket, modules: list[str]) -> None:
    problem = namespace_problem()
    if problem:  # evaluations start cold: each child is then alone in its sandbox
        send(server, {"ready": False, "refused": problem})
        return
    not_dumpable(0)
    failed = warm_up(modules)
    home = Path(os.environ.get("HOME", "/tmp"))
    home.mkdir(parents=True, exist_ok=True)
    send(server, {"ready": True, "unsafe": fork_unsafe(), "failed": failed})
    keep, kept = {1, os.getpid()}, Kept.now()
    while True:
        try:
            data, fds, _, _ = socket.recv_fds(server, 1 << 20, 8)
        except OSError:
            return
        if not data:
            return
        request = json.loads(data)
        unsafe = fork_unsafe()
        if unsafe:
            for fd in fds:
                os.close(fd)
            send(server, {"cold": unsafe})
            continue
        pid = os.fork()
        if pid == 0:
            run_child(request, fds, server)
        for fd in fds:
            os.close(fd)
        send(server, {"started": pid})
        _, status = os.waitpid(pid, 0)
        clean_up(keep, kept)
        send(server, {"exit": os.waitstatus_to_exitcode(status)})


def main(argv: list[str]) -> None:
    server = socket.socket(fileno=int(argv[0]))
    serve(server, argv[1:])


if __name__ == "__main__":
    main(sys.argv[1:])
