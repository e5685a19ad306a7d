"""Results the candidate cannot forge: signed by the worker, and guarded by an audit hook.

The candidate runs in the same process as the worker that reports on it, so it could write a
results file of its own and exit, or search memory for the objects that measure it. Two
defences, in the evaluation child:

* The parent hands the worker a fresh key through an inherited pipe (never a file), which
  the worker reads and closes when it is loaded, before any project code runs. The results
  file carries an HMAC of its contents under that key, and the parent accepts only a file
  whose signature matches: one written by anything else (the candidate, a process it left
  behind) is tampering. The parent also checks the results against the child's exit status
  and pytest's own counts (verdict.py); the OS sandbox (sandbox.py) keeps everything else
  out of the candidate's reach.
* The key lives only in an audit hook (PEP 578), which Python code can neither list nor
  remove. The hook signs and writes the results once, when the worker's own writer asks from
  pytest's main thread with no frame of the candidate on the stack; it refuses any other open
  or rename of the results file; and it refuses, and reports as tampering, heap and frame
  searches (``gc.get_objects``, ``sys._getframe``, a frame's ``f_back``, ...) and trace
  hooks called from the candidate's own file.

In-process, this raises the bar; it is not a sandbox. Code compiled at run time
(``<string>``) counts as its caller's, but code the candidate compiles under the name of a
real file is not recognised as the candidate's here (the checks of integrity.py still apply
to what it does), and a C extension can do anything.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
import sys
import threading
from pathlib import Path
from types import CodeType, FrameType
from typing import Any

#: Custom audit events by which the worker talks to the hook.
WRITE_EVENT = "pytest_aide.write_results"
FINDINGS_EVENT = "pytest_aide.findings"

#: Introspection the candidate's own code has no business doing while it is measured.
_INTROSPECTION = {
    "gc.get_objects": "searched the heap (gc.get_objects)",
    "gc.get_referrers": "searched the heap (gc.get_referrers)",
    "gc.get_referents": "searched the heap (gc.get_referents)",
    "sys._current_frames": "reached into other threads' frames (sys._current_frames)",
    "sys._getframe": "reached into its callers' frames (sys._getframe)",
    "sys.settrace": "installed a trace hook (sys.settrace)",
    "sys.setprofile": "installed a profile hook (sys.setprofile)",
}
#: Native memory reached through ctypes, from anywhere below the candidate's code: how a clock
#: is replaced below Python while its function object stays the same (clock.py checks the
#: clock from outside too).
_NATIVE = {
    "ctypes.cdata": "reached native memory by address (ctypes from_address)",
    "ctypes.PyObj_FromPtr": "turned a native address into an object (ctypes)",
    "ctypes.string_at": "read native memory (ctypes.string_at)",
    "ctypes.wstring_at": "read native memory (ctypes.wstring_at)",
    "ctypes.dlsym": "looked up a clock or memory function in a native library (ctypes)",
}
#: Symbols whose lookup through ctypes ("ctypes.dlsym") only a clock or memory patch needs.
_NATIVE_SYMBOLS = {"clock_gettime", "gettimeofday", "time", "times", "getrusage", "clock",
                   "mprotect", "ptrace", "process_vm_readv", "process_vm_writev",
                   "__vdso_clock_gettime", "__clock_gettime"}
#: ``object.__getattr__`` events for attributes that lead from one frame to another.
_FRAME_LINKS = {"f_back", "tb_frame", "gi_frame", "cr_frame", "ag_frame", "f_globals",
                "f_locals", "tb_next"}
_FILE_EVENTS = {"open", "os.rename", "os.link", "os.symlink", "os.remove", "os.truncate",
                "os.chmod", "os.utime"}


#: Names the inherited file descriptor from which the worker reads the key.
KEY_FD_ENV = "PYTEST_AIDE_KEY_FD"


def new_key() -> str:
    return secrets.token_hex(32)


def key_pipe(key: str) -> int:
    """A pipe's read end holding ``key``, for the child to inherit; the caller closes it."""
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, key.encode())
    finally:
        os.close(write_end)
    return read_end


def take_key() -> str:
    """The worker's side: read the key from the inherited descriptor, close it, and forget
    where it was, so that nothing loaded later finds the descriptor or its number."""
    number = os.environ.pop(KEY_FD_ENV, "")
    if not number.isdigit():
        return ""
    fd = int(number)
    try:
        chunks = []
        while chunk := os.read(fd, 4096):
            chunks.append(chunk)
        return b"".join(chunks).decode()
    except OSError:
        return ""
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)


def signature(key: str, payload: str) -> str:
    return hmac.new(key.encode(), payload.encode(), hashlib.sha256).hexdigest()


def read_signed(path: Path, key: str) -> tuple[dict[str, Any] | None, str]:
    """The results' data and "" when the signature matches; (None, why) when it does not."""
    try:
        envelope = json.loads(path.read_text(encoding="utf-8"))
        payload, mac = envelope["payload"], envelope["mac"]
    except (OSError, ValueError, KeyError, TypeError):
        return None, ""  # no readable results: the child died before writing them
    if not isinstance(payload, str) or not isinstance(mac, str) or not hmac.compare_digest(
        mac, signature(key, payload)
    ):
        return None, ("the results file was not written by pytest-aide's worker (its "
                      "signature does not match): something else wrote or replaced it")
    return json.loads(payload), ""


def allowed_introspection(original: str | None) -> list[str]:
    """The introspection the original module itself does (named in its source): a candidate
    that keeps it is not refused for it."""
    if not original:
        return []
    names = [*_INTROSPECTION, *_FRAME_LINKS]
    native = list(_NATIVE) if "ctypes" in original else []
    return [name for name in names if name.rsplit(".", 1)[-1] in original] + native


def install(key: str, results: Path, candidate: str | list[str] | None, writer: CodeType,
            allowed: list[str] | None = None) -> None:
    """Add the audit hook that alone can write ``results`` (see the module docstring).

    ``writer`` is the code object of the worker's function that asks for the write, with
    ``sys.audit(WRITE_EVENT, payload)``; ``candidate`` the candidate's file name, or its
    file names when it has several targets (None: the
    project's own code is evaluated, and nothing is refused but touching the results);
    ``allowed``: events and frame attributes not refused (``allowed_introspection``).
    """
    allowed = set(allowed or ())
    files = {candidate} if isinstance(candidate, str) else set(candidate or ())
    sealed = {os.path.abspath(p) for p in (results, results.with_suffix(".tmp"))}
    main = threading.main_thread()
    findings: list[str] = []
    state = {"written": False}
    inside = threading.local()

    def candidate_on_stack(frame: FrameType | None, only_first: bool) -> bool:
        while frame is not None:
            if frame.f_code.co_filename in files:
                return True
            # code made at run time ("<string>") speaks for whoever called it
            if only_first and not frame.f_code.co_filename.startswith("<"):
                return False
            frame = frame.f_back
        return False

    def write(payload: str) -> None:
        envelope = json.dumps({"payload": payload, "mac": signature(key, payload)})
        temporary = results.with_suffix(".tmp")
        temporary.write_text(envelope, encoding="utf-8")
        os.replace(temporary, results)
        state["written"] = True

    def refuse(why: str) -> None:
        findings.append(why)
        raise PermissionError(f"pytest-aide: {why}")

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event in _FILE_EVENTS:  # every open: the cheap test first
            paths = [a for a in args[:2] if isinstance(a, (str, bytes, os.PathLike))]
            if not any(os.path.abspath(os.fsdecode(p)) in sealed for p in paths):
                return
        elif event == "object.__getattr__":
            if len(args) < 2 or args[1] not in _FRAME_LINKS or args[1] in allowed:
                return
        elif event in _NATIVE:
            if event == "ctypes.dlsym" and (len(args) < 2 or str(args[1]) not in _NATIVE_SYMBOLS):
                return
        elif event not in _INTROSPECTION and event not in (WRITE_EVENT, FINDINGS_EVENT):
            return
        if event in allowed or getattr(inside, "busy", False):
            return
        inside.busy = True  # the hook's own frame walks and file writes are not checked
        try:
            try:
                caller: FrameType | None = sys._getframe(1)
            except ValueError:  # called from C with no Python frame (e.g. at exit)
                caller = None
            check(event, args, caller)
        finally:
            inside.busy = False

    def check(event: str, args: tuple[Any, ...], caller: FrameType | None) -> None:
        if event == FINDINGS_EVENT:
            args[0].extend(findings)
        elif event == WRITE_EVENT:
            if (caller is not None and caller.f_code is writer
                    and threading.current_thread() is main and not state["written"]
                    and not candidate_on_stack(caller, False)):
                write(args[0])
            else:
                findings.append("something other than the worker asked to write the results")
        elif event in _FILE_EVENTS:
            refuse(f"touched the results file ({event})")
        elif event in _NATIVE:
            # ctypes' own Python frames lie between: any frame of the candidate's counts
            if candidate is not None and candidate_on_stack(caller, False):
                refuse(_NATIVE[event])
        elif candidate is not None and candidate_on_stack(caller, True):
            refuse(_INTROSPECTION.get(event) or f"walked frames (.{args[1]})")

    sys.addaudithook(hook)


def findings() -> list[str]:
    """What the hook refused so far."""
    found: list[str] = []
    sys.audit(FINDINGS_EVENT, found)
    return found
