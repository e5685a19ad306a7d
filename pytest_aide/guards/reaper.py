"""No leftovers without a sandbox: the optimizer becomes its children's subreaper.

A process that an unsandboxed candidate double-forks (``setsid``, a new process group) leaves
the child's process group and would outlive the evaluation. As a child subreaper (Linux's
``PR_SET_CHILD_SUBREAPER``) the optimizer inherits such orphans instead of ``init``, so after
each evaluation it can kill every child of its own that is not an evaluation still running.
(In the sandbox the PID namespace ends them all; this is for ``--aide-sandbox off``.)
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import threading
import time

_PR_SET_CHILD_SUBREAPER = 36
_LOCK = threading.Lock()
#: Evaluations running now, and warm interpreters (warm.py), by pid: never reaped.
_RUNNING: set[int] = set()
#: How long ``finished`` goes on finding and killing leftovers.
PATIENCE = 5.0


@functools.cache
def become_subreaper() -> bool:
    """Once per process; False where the kernel does not offer it. (``ctypes`` is imported
    here, in the optimizer: the worker imports this module too, for clock.py.)"""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def started(pid: int) -> None:
    with _LOCK:
        _RUNNING.add(pid)


def forget(pid: int) -> None:
    """``pid`` (a warm interpreter, started with ``started``) is stopped: nothing to reap."""
    with _LOCK:
        _RUNNING.discard(pid)


def finished(pid: int) -> None:
    """The evaluation ``pid`` ended: kill and reap every other child left behind, listing
    again until none is left (an orphan of a chain that forks while being killed is a new
    child of ours), for at most ``PATIENCE`` seconds."""
    with _LOCK:
        _RUNNING.discard(pid)
        running = set(_RUNNING)
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        left = [child for child in _children(os.getpid()) if child not in running]
        if not left:
            return
        for child in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(child, signal.SIGKILL)
        for child in left:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(child, 0)


def process_table() -> dict[int, list[str]]:
    """Every visible process: pid -> the fields of ``/proc/<pid>/stat`` after its name
    (``[state, ppid, ...]``; the name may hold spaces and parentheses)."""
    table = {}
    for name in os.listdir("/proc"):  # plain os calls: this runs after every evaluation
        if not name.isdigit():
            continue
        try:
            fd = os.open(f"/proc/{name}/stat", os.O_RDONLY)
        except OSError:
            continue
        try:
            stat = os.read(fd, 4096)
        except OSError:
            continue
        finally:
            os.close(fd)
        fields = stat.rsplit(b")", 1)[-1].decode("ascii", "replace").split()
        if len(fields) > 1:
            table[int(name)] = fields
    return table


def _children(parent: int) -> list[int]:
    return [pid for pid, fields in process_table().items() if int(fields[1]) == parent]
