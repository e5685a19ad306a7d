"""The run directory's files, the patch, and the one write to the user's source."""

from __future__ import annotations

import difflib
import hashlib
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from pytest_aide.journal import write_atomic


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_source(path: Path) -> str:
    """The file's text exactly as stored (no newline translation), so patches apply."""
    with path.open(encoding="utf-8", newline="") as handle:
        return handle.read()


def new_run_id(module: str) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{re.sub(r'[^A-Za-z0-9_]+', '_', module)}"


def make_run_dir(log_dir: Path, module: str) -> tuple[str, Path]:
    """A fresh run directory; a suffix keeps two runs in the same second apart."""
    base = new_run_id(module)
    for suffix in range(1000):
        run_id = base if suffix == 0 else f"{base}-{suffix}"
        path = log_dir / run_id
        try:
            path.mkdir(parents=True)
        except FileExistsError:
            continue
        return run_id, path
    raise RuntimeError(f"cannot create a run directory under {log_dir}")


def unified_patch(original: str, best: str, relpath: str) -> str:
    """A diff that ``git apply`` takes from the rootdir."""
    lines = difflib.unified_diff(
        original.splitlines(keepends=True),
        best.splitlines(keepends=True),
        fromfile=f"a/{relpath}",
        tofile=f"b/{relpath}",
    )
    text = ""
    for line in lines:
        text += line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
    if text:
        text = f"diff --git a/{relpath} b/{relpath}\n" + text
    return text


@dataclass
class ApplyResult:
    written: bool
    message: str


def apply_best(target: Path, original: str, best: str) -> ApplyResult:
    """Write ``best`` over ``target`` atomically, only if the file is still the original."""
    try:
        current = read_source(target)
    except OSError as exc:
        return ApplyResult(False, f"not written: cannot read {target}: {exc}")
    if current != original:
        return ApplyResult(
            False, f"not written: {target} was edited during the run; the best code is kept "
            "in the run directory"
        )
    mode = target.stat().st_mode
    write_atomic(target, best)
    os.chmod(target, mode)
    return ApplyResult(True, f"written to {target}")
