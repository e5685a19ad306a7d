"""The user's files and the run directories: the only module that writes them.

The promise to the user is narrow: the target file is written once, atomically, at the end,
only when the best candidate is better and passes, and only if the file is still the
original; an interrupted or killed run leaves it as it was; a best that fails the final check
is put back from its backup. Keeping every write to the user's project in one small module
(the run directory, the backup, the write, the put-back, and finding a run to resume) makes
that promise checkable in one place: nothing else in pytest-aide opens a user's file for
writing. It is a data module, below everything that runs candidates.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import signal
import threading
import time
import tokenize
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pytest_aide.journal import write_atomic
from pytest_aide.sources import Sources


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class SourceUnreadable(Exception):
    """A target Python could not import either: bytes its declared encoding does not read."""


def read_source(path: Path) -> str:
    """The file's text exactly as stored (no newline translation), so patches apply, read
    in the encoding it declares (PEP 263: a ``coding`` comment on line 1 or 2; UTF-8 else)."""
    data = path.read_bytes()
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        return data.decode(encoding)
    except (SyntaxError, UnicodeDecodeError, LookupError) as exc:
        raise SourceUnreadable(f"{path} cannot be read as Python source: {exc}") from None


def source_encoding(text: str) -> str:
    """The encoding ``text`` declares for itself (PEP 263), as it must be written to be
    imported as it reads; UTF-8 when it declares none (or one Python does not know)."""
    head = "".join(text.splitlines(keepends=True)[:2]).encode("utf-8", "replace")
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(head).readline)
    except SyntaxError:
        return "utf-8"
    return "utf-8" if encoding == "utf-8-sig" else encoding


def unencodable(text: str) -> str:
    """Why ``text`` cannot be written in the encoding it declares ('' when it can)."""
    encoding = source_encoding(text)
    try:
        text.encode(encoding)
    except UnicodeEncodeError as exc:
        line = text.count("\n", 0, exc.start) + 1
        return (f"{exc.object[exc.start:exc.end]!r} on line {line} cannot be written in "
                f"{encoding}, the encoding the file declares")
    return ""


def write_source(path: Path, text: str) -> None:
    """``text`` written atomically in the encoding it declares (byte for byte what a
    ``read_source`` of the same file gave, where it was not changed)."""
    write_atomic(path, text, encoding=source_encoding(text))


def new_run_id(module: str) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{re.sub(r'[^A-Za-z0-9_]+', '_', module)}"


#: Written into the log directory: git leaves the runs out, as it does ``.pytest_cache``.
LOG_DIR_GITIGNORE = "# made by pytest-aide: its runs are not part of the project\n*\n"


class LogDirUnwritable(Exception):
    """The log directory cannot be made or written (the message names it and the option)."""


def make_run_dir(log_dir: Path, module: str) -> tuple[str, Path]:
    """A fresh run directory; a suffix keeps two runs in the same second apart. The log
    directory gets a ``.gitignore`` of ``*`` when it has none."""
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
        ignore = log_dir / ".gitignore"
        if not ignore.exists():
            write_atomic(ignore, LOG_DIR_GITIGNORE)
        return _new_run_dir(log_dir, module)
    except OSError as exc:  # not writable, read-only, a file in the way
        raise LogDirUnwritable(
            f"cannot write the run directory under {log_dir} ({exc.strerror}): pass "
            "--aide-log-dir DIR (or the ini option aide_log_dir) with a directory you can "
            "write"
        ) from None


def _new_run_dir(log_dir: Path, module: str) -> tuple[str, Path]:
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


def backup_path(run_dir: Path, target: Path) -> Path:
    """Where a run keeps the target as it was before the run wrote it."""
    return run_dir / f"backup_{target.name}"


def write_backup(run_dir: Path, target: Path, text: str) -> Path:
    """Keep ``text`` (the target before the write) in the run directory; a backup already
    there (a resumed run that wrote before) is the older truth and stays."""
    backup = backup_path(run_dir, target)
    if not backup.exists():
        write_source(backup, text)
    return backup


@dataclass
class ApplyResult:
    written: bool
    message: str


def apply_best(target: Path, original: str, best: str, run_dir: Path | None = None
               ) -> ApplyResult:
    """Write ``best`` over ``target`` atomically, only if the file is still the original.
    With ``run_dir``, the original is backed up there first, so a put-back always has it."""
    try:
        current = read_source(target)
    except OSError as exc:
        return ApplyResult(False, f"not written: cannot read {target}: {exc}")
    if current != original:
        return ApplyResult(
            False, f"not written: {target} was edited during the run; the best code is kept "
            "in the run directory"
        )
    if run_dir is not None:
        write_backup(run_dir, target, current)
    mode = target.stat().st_mode
    write_source(target, best)
    os.chmod(target, mode)
    return ApplyResult(True, f"written to {target}")


def put_back(target: Path, run_dir: Path) -> bool:
    """Write the target back as it was before the run wrote it (its backup in ``run_dir``),
    atomically, bytes and mode as they were; False when there is no backup to put back."""
    backup = backup_path(run_dir, target)
    if not backup.is_file():
        return False
    mode = target.stat().st_mode if target.exists() else None
    write_source(target, read_source(backup))
    if mode is not None:
        os.chmod(target, mode)
    return True


#: A target file of a run with several: (its path relative to the rootdir, its path).
TargetFile = tuple[str, Path]


def read_sources(files: Sequence[TargetFile]) -> Sources:
    """Every target file's text as stored (``read_source``), in the targets' order."""
    return Sources.of([(relpath, read_source(path)) for relpath, path in files])


def several_backup_path(run_dir: Path, relpath: str) -> Path:
    """Where a run with several targets keeps one of them as it was: under ``backup/`` by
    its path in the project (two targets may share a file name)."""
    return run_dir / "backup" / relpath


def apply_sources(files: Sequence[TargetFile], current: Sources, best: Sources,
                  run_dir: Path) -> ApplyResult:
    """Write ``best`` over the target files, all or none: only if each still holds its text
    in ``current``; every one is backed up first, each new text is written beside its file,
    then all are renamed into place; a failure or an interrupt (Ctrl-C) on the way puts the
    renamed ones back from their backups before it goes on. One file: ``apply_best``."""
    if len(files) == 1:
        return apply_best(files[0][1], current.primary, best.primary, run_dir=run_dir)
    for relpath, path in files:
        try:
            text = read_source(path)
        except OSError as exc:
            return ApplyResult(False, f"not written: cannot read {path}: {exc}")
        if text != current.text(relpath):
            return ApplyResult(False, f"not written: {path} was edited during the run; the "
                               "best code is kept in the run directory")
    changed = [(relpath, path) for relpath, path in files
               if best.text(relpath) != current.text(relpath)]
    for relpath, _ in changed:
        backup = several_backup_path(run_dir, relpath)
        if not backup.exists():
            write_source(backup, current.text(relpath))
    _replace_all([(path, best.text(relpath), several_backup_path(run_dir, relpath))
                  for relpath, path in changed])
    return ApplyResult(True, "written to " + ", ".join(str(path) for _, path in changed))


def _replace_all(writes: Sequence[tuple[Path, str, Path]]) -> None:
    """Each (file, text, backup): the texts written to temporaries beside their files, then
    renamed over them; on any exception the temporaries are removed and the files already
    renamed written back from their backups (SIGINT held off meanwhile), then it is raised."""
    temporaries: list[tuple[Path, Path]] = []
    renamed: list[tuple[Path, Path]] = []
    try:
        for path, text, _ in writes:
            temporary = path.with_name(f".{path.name}.{os.getpid()}.aide-tmp")
            temporaries.append((temporary, path))
            mode = path.stat().st_mode
            with temporary.open("w", encoding=source_encoding(text), newline="") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temporary, mode)
        for (temporary, path), (_, _, backup) in zip(temporaries, writes, strict=True):
            # noted first: an interrupt just after the rename must still put this one back
            # (putting back one not yet renamed writes what it already holds)
            renamed.append((path, backup))
            os.replace(temporary, path)
    except BaseException:
        with _sigint_held():
            for temporary, _ in temporaries:
                temporary.unlink(missing_ok=True)
            for path, backup in reversed(renamed):
                mode = path.stat().st_mode
                write_source(path, read_source(backup))
                os.chmod(path, mode)
        raise


@contextmanager
def _sigint_held() -> Iterator[None]:
    """SIGINT held until the block ends (a second Ctrl-C must not stop a rollback halfway);
    in the main thread only, where Python handles signals."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


def put_back_sources(files: Sequence[TargetFile], run_dir: Path) -> bool:
    """``put_back`` of every target file that has a backup (several targets: under
    ``backup/``); False when none had one."""
    if len(files) == 1:
        return put_back(files[0][1], run_dir)
    restored = False
    for relpath, path in files:
        backup = several_backup_path(run_dir, relpath)
        if backup.is_file():
            mode = path.stat().st_mode if path.exists() else None
            write_source(path, read_source(backup))
            if mode is not None:
                os.chmod(path, mode)
            restored = True
    return restored


class RunNotFound(Exception):
    """``--aide-resume`` names no run of this target (the message says what was looked for)."""


def find_run(log_dir: Path, relpath: str, wanted: str, also: Sequence[str] = ()) -> Path:
    """The run directory to resume: ``wanted`` is a run id or ``latest`` (this target's most
    recent run in ``log_dir``); RunNotFound when there is none, or it optimized another
    target. ``also``: a run of several targets, the others (the same list, in its order)."""
    targets = [relpath, *also]
    name = " + ".join(targets)
    runs = sorted(log_dir.glob("*/journal.json"), key=lambda p: p.stat().st_mtime)
    mine = [path.parent for path in runs if _journal_targets(path) == targets]
    if wanted == "latest":
        if not mine:
            raise RunNotFound(f"--aide-resume latest: no earlier run for {name} in {log_dir}")
        return mine[-1]
    path = log_dir / wanted
    if not (path / "journal.json").is_file():
        there = (f"the runs of {name} there: {', '.join(p.name for p in reversed(mine[-5:]))}"
                 f" (or 'latest')" if mine else f"there is no run of {name} there")
        raise RunNotFound(f"--aide-resume {wanted}: no journal at {path / 'journal.json'}; "
                          f"{there}")
    if path not in mine:
        raise RunNotFound(f"--aide-resume {wanted}: that run optimized another target, "
                          f"not {name}")
    return path


def _journal_targets(path: Path) -> list[str] | None:
    """The targets a journal names, the primary first (None when it cannot be read)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return list(data.get("targets") or [data.get("target")])
    except (OSError, ValueError, AttributeError, TypeError):
        return None
