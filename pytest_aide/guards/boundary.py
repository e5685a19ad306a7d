"""The project boundary: a candidate may change only the target module, and that lives in the
run directory, never in the project.

A snapshot of the project (tests, conftest files, configuration, other sources) is compared
with the tree after each evaluation; every change is undone and described, so a candidate
that edits a test, adds a conftest file or plants a bytecode cache loses, and the user's
files come out byte for byte as they were. Comparing is cheap: a file is read again only
when its ``stat`` (size, mtime, ctime, inode, mode) changed; ctime cannot be set by a
process, so writing a file and resetting its mtime still shows.

Bytecode caches (``__pycache__``) are watched but not kept: a changed or created ``.pyc``
could carry forged code for a test module, and the fix is to delete it. Evaluation children
run with ``PYTHONDONTWRITEBYTECODE=1``, so an honest run writes none.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

#: Files larger than this are kept by hash only: a change is reported, not undone.
MAX_RESTORABLE_BYTES = 2 * 1024 * 1024
#: Total content kept in memory; past it, further files are kept by hash only.
MAX_KEPT_BYTES = 256 * 1024 * 1024
#: Directories that are not the project: VCS data, environments, tool caches and databases.
SKIPPED_DIRS = frozenset(
    {
        ".git", ".hg", ".svn", ".venv", "venv", ".tox", ".nox", "node_modules",
        ".pytest_cache", ".mypy_cache", ".ruff_cache", ".benchmarks", ".hypothesis",
        "htmlcov", ".ipynb_checkpoints", ".eggs",
    }
)
#: Files tools write during a test run (coverage data); never project content.
VOLATILE_PREFIXES = (".coverage",)
CACHE_DIR = "__pycache__"


@dataclass
class _File:
    key: tuple[int, ...]
    content: bytes | None = None  # None: kept by hash only, or a cache file
    digest: str | None = None
    link: str | None = None  # the target, for a symbolic link

    @property
    def is_cache(self) -> bool:
        return self.content is None and self.digest is None and self.link is None


def _key(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_mode)


def _digest(path: str) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


@dataclass
class ProjectSnapshot:
    """The project's files as they were; :meth:`restore` puts them back and says what changed."""

    rootdir: Path
    exclude: set[str] = field(default_factory=set)
    files: dict[str, _File] = field(default_factory=dict)
    dirs: set[str] = field(default_factory=set)
    #: Paths (relative, posix) the project's own test run changes; ignored from then on.
    ignored: set[str] = field(default_factory=set)
    label: str = ""
    _kept: int = 0

    @classmethod
    def take(cls, rootdir: Path, exclude: Iterable[Path] = (), label: str = "") -> ProjectSnapshot:
        snapshot = cls(rootdir=Path(rootdir).resolve(), label=label)
        snapshot.add_exclude(exclude)
        files, snapshot.dirs = snapshot._scan()
        for rel, st in files.items():
            snapshot.files[rel] = snapshot._record(rel, st)
        return snapshot

    def add_exclude(self, paths: Iterable[Path]) -> None:
        self.exclude.update(os.path.abspath(Path(p).resolve()) for p in paths)

    # -- scanning -------------------------------------------------------------------------

    def _scan(self) -> tuple[dict[str, os.stat_result], set[str]]:
        files: dict[str, os.stat_result] = {}
        dirs: set[str] = set()
        root = str(self.rootdir)
        stack = [(root, "")]
        while stack:
            directory, prefix = stack.pop()
            try:
                entries = list(os.scandir(directory))
            except OSError:
                continue
            for entry in entries:
                rel = prefix + entry.name
                if entry.path in self.exclude or rel in self.ignored:
                    continue
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if stat.S_ISDIR(st.st_mode):
                    if entry.name in SKIPPED_DIRS or os.path.exists(
                        os.path.join(entry.path, "pyvenv.cfg")
                    ):
                        continue
                    dirs.add(rel)
                    stack.append((entry.path, rel + "/"))
                elif not entry.name.startswith(VOLATILE_PREFIXES):
                    files[rel] = st
        return files, dirs

    def _path(self, rel: str) -> str:
        return os.path.join(str(self.rootdir), *rel.split("/"))

    def _record(self, rel: str, st: os.stat_result) -> _File:
        path = self._path(rel)
        key = _key(st)
        if stat.S_ISLNK(st.st_mode):
            return _File(key, link=os.readlink(path))
        if f"{CACHE_DIR}/" in f"/{rel}" and rel.endswith((".pyc", ".pyo")):
            return _File(key)
        try:
            if st.st_size <= MAX_RESTORABLE_BYTES and self._kept + st.st_size <= MAX_KEPT_BYTES:
                with open(path, "rb") as handle:
                    content = handle.read()
                self._kept += len(content)
                return _File(key, content=content)
            return _File(key, digest=_digest(path))
        except OSError:
            return _File(key, digest="")

    def _same(self, rel: str, old: _File, st: os.stat_result) -> bool:
        """Whether the file at ``rel`` still holds what ``old`` recorded (its stat changed)."""
        path = self._path(rel)
        try:
            if old.link is not None:
                return stat.S_ISLNK(st.st_mode) and os.readlink(path) == old.link
            if old.is_cache or not stat.S_ISREG(st.st_mode) or st.st_mode != old.key[4]:
                return False
            if old.content is not None:
                if st.st_size != len(old.content):
                    return False
                with open(path, "rb") as handle:
                    return handle.read() == old.content
            return _digest(path) == old.digest
        except OSError:
            return False

    # -- comparing --------------------------------------------------------------------------

    def changes(self) -> tuple[list[str], list[str], list[str], set[str]]:
        """(modified, deleted, created, created directories) since the snapshot."""
        modified, deleted, created, dirs = self._changes()
        return modified, deleted, created, dirs - self.dirs

    def _changes(self) -> tuple[list[str], list[str], list[str], set[str]]:
        """``changes``, with every directory there is now (one scan serves both)."""
        now, dirs = self._scan()
        modified, deleted = [], []
        for rel, old in self.files.items():
            st = now.pop(rel, None)
            if st is None:
                if not old.is_cache:  # a deleted bytecode cache is harmless
                    deleted.append(rel)
            elif _key(st) != old.key:
                if self._same(rel, old, st):
                    old.key = _key(st)  # touched, not changed
                else:
                    modified.append(rel)
        return modified, deleted, sorted(now), dirs

    def refresh(self) -> list[str]:
        """Accept the tree as it is now (re-reading only what changed); the paths that changed."""
        modified, deleted, created, dirs = self._changes()
        new_dirs = dirs - self.dirs
        for rel in deleted:
            self._forget(rel)
        for rel in [*modified, *created]:
            self._forget(rel)
            with contextlib.suppress(OSError):
                self.files[rel] = self._record(rel, os.lstat(self._path(rel)))
        self.dirs = dirs
        return [*modified, *deleted, *created, *sorted(new_dirs)]

    def _forget(self, rel: str) -> None:
        old = self.files.pop(rel, None)
        if old is not None and old.content is not None:
            self._kept -= len(old.content)

    def restore(self, backup: Path | None = None) -> list[str]:
        """Undo every change since the snapshot; describe each one ("modified tests/x.py").

        Changed and created files are first copied under ``backup`` (when given), so that
        nothing written during an evaluation is lost, even an edit the user made meanwhile.
        """
        modified, deleted, created, new_dirs = self.changes()
        described: list[str] = []
        for rel in modified:
            described.append(self._put_back(rel, "modified", backup))
        for rel in deleted:
            described.append(self._put_back(rel, "deleted", backup))
        for rel in created:
            self._keep(rel, backup)
            _remove(self._path(rel))
            described.append(f"created {self.label}{rel}")
        for rel in sorted(new_dirs, key=lambda d: d.count("/"), reverse=True):
            try:
                os.rmdir(self._path(rel))
                described.append(f"created directory {self.label}{rel}")
            except OSError:
                pass
        for rel in sorted(self.dirs):
            if not os.path.isdir(self._path(rel)):
                os.makedirs(self._path(rel), exist_ok=True)
                described.append(f"deleted directory {self.label}{rel}")
        return described

    def _keep(self, rel: str, backup: Path | None) -> None:
        path = self._path(rel)
        if backup is None or not os.path.isfile(path) or os.path.islink(path):
            return
        try:
            target = backup / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
        except OSError:
            pass

    def _put_back(self, rel: str, verb: str, backup: Path | None) -> str:
        old = self.files[rel]
        path = self._path(rel)
        what = f"{verb} {self.label}{rel}"
        if verb == "modified":
            self._keep(rel, backup)
        if old.is_cache:  # a bytecode cache is never put back, only removed
            _remove(path)
            del self.files[rel]
            return what
        if old.content is None and old.link is None:
            try:  # too large to keep: report it, and accept the new state to report it once
                self.files[rel] = self._record(rel, os.lstat(path))
            except OSError:
                del self.files[rel]
            return f"{what} (too large to restore)"
        try:
            _remove(path)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            if old.link is not None:
                os.symlink(old.link, path)
            else:
                with open(path, "wb") as handle:
                    handle.write(old.content or b"")
                os.chmod(path, stat.S_IMODE(old.key[4]))
            old.key = _key(os.lstat(path))
        except OSError as exc:
            return f"{what} (could not restore: {exc})"
        return what


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        with contextlib.suppress(OSError):
            os.unlink(path)


def measuring_code_dirs(rootdir: Path) -> list[Path]:
    """Installed packages whose files decide how a test is run and timed (outside the project).

    A candidate that rewrites ``pytest_benchmark/stats.py`` in site-packages would fool every
    later evaluation from inside the measuring code itself; these directories are watched too.
    """
    found: list[Path] = []
    for name in ("_pytest", "pytest", "pytest_benchmark", "pytest_aide", "pluggy"):
        module = sys.modules.get(name)
        file = getattr(module, "__file__", None)
        if not file:
            continue
        directory = Path(file).resolve().parent
        try:
            directory.relative_to(rootdir.resolve())
            continue  # part of the project: already in the project snapshot
        except ValueError:
            found.append(directory)
    return found


class ProjectGuard:
    """One project snapshot shared by an evaluator's evaluations, checked after each one.

    The snapshot is refreshed (stat only) when an evaluation starts and none is running, so
    edits made between evaluations (by the user, or the session writing the best code at the
    end) are accepted, while every change made during an evaluation is undone and reported.
    When evaluations overlap, a change is charged to every evaluation running at the time it
    is found: the one that made it is always among them, an innocent one may be too.
    """

    def __init__(self, rootdir: Path, exclude: Iterable[Path] = (), watch: Iterable[Path] = ()):
        self.rootdir = Path(rootdir)
        self._exclude = list(exclude)
        self._watch = list(watch)
        self._snapshots: list[ProjectSnapshot] = []
        self._lock = threading.Lock()
        self._running: dict[int, list[str]] = {}
        self._overlapped: set[int] = set()
        self._next = 0

    def begin(self, exclude: Iterable[Path] = ()) -> int:
        """Note an evaluation's start; ``exclude``: its own directory. Returns its token."""
        with self._lock:
            if not self._snapshots:
                self._snapshots = [ProjectSnapshot.take(self.rootdir, [*self._exclude, *exclude])]
                self._snapshots += [
                    ProjectSnapshot.take(d, label=f"{d}{os.sep}") for d in self._watch
                ]
            else:
                self._snapshots[0].add_exclude(exclude)
                if not self._running:
                    for snapshot in self._snapshots:
                        snapshot.refresh()
            if self._running:
                self._overlapped.update(self._running)
                self._overlapped.add(self._next)
            self._next += 1
            token = self._next - 1
            self._running[token] = []
            return token

    def end(self, token: int, trusted: bool = False, backup: Path | None = None) -> list[str]:
        """Check the tree after the evaluation ``token``; the changes charged to it.

        ``trusted``: the evaluation ran the user's own code. When it ran alone, what it
        changed is what the project's tests do by themselves (output files, data caches):
        those paths are left as they are and ignored from then on, never charged.
        """
        with self._lock:
            alone = token not in self._overlapped
            if trusted and alone:
                project = self._snapshots[0]
                project.ignored.update(project.refresh())
                for snapshot in self._snapshots[1:]:
                    snapshot.refresh()
                found: list[str] = []
            else:
                found = [c for s in self._snapshots for c in s.restore(backup)]
            for charged in self._running.values():
                charged.extend(found)
            self._overlapped.discard(token)
            return self._running.pop(token)
