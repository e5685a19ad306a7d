"""The project snapshot: every change made during an evaluation is undone and described."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pytest_aide.guards import boundary
from pytest_aide.guards.boundary import ProjectGuard, ProjectSnapshot


def files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_k.py").write_text("def test_k():\n    assert True\n")
    (tmp_path / "pyproject.toml").write_text("[tool.pytest.ini_options]\n")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "k.py").write_text("X = 1\n")
    (tmp_path / "empty").mkdir()
    return tmp_path


def test_restore_undoes_and_describes_every_change(project: Path) -> None:
    before = files(project)
    snapshot = ProjectSnapshot.take(project)
    (project / "tests" / "test_k.py").write_text("def test_k():\n    pass\n")
    (project / "pyproject.toml").unlink()
    (project / "conftest.py").write_text("")
    (project / "new" / "deep").mkdir(parents=True)
    (project / "new" / "deep" / "x.py").write_text("")
    (project / "pkg" / "k.py").unlink()
    (project / "pkg" / "k.py").mkdir()  # a file replaced by a directory
    (project / "empty").rmdir()
    assert sorted(snapshot.restore(project.parent / "kept")) == [
        "created conftest.py",
        "created directory new",
        "created directory new/deep",
        "created new/deep/x.py",
        "deleted directory empty",
        "deleted pkg/k.py",
        "deleted pyproject.toml",
        "modified tests/test_k.py",
    ]
    assert files(project) == before and (project / "empty").is_dir()
    assert not (project / "new").exists()
    kept = project.parent / "kept" / "tests" / "test_k.py"
    assert kept.read_text() == "def test_k():\n    pass\n"  # nothing written is lost
    assert snapshot.restore() == []


def test_a_same_size_edit_with_the_old_mtime_is_still_found(project: Path) -> None:
    test = project / "tests" / "test_k.py"
    before = test.read_bytes()
    snapshot = ProjectSnapshot.take(project)
    stat = test.stat()
    test.write_bytes(before.replace(b"True", b"1==1"))
    os.utime(test, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert snapshot.restore() == ["modified tests/test_k.py"]
    assert test.read_bytes() == before


def test_touching_a_file_is_not_a_change(project: Path) -> None:
    snapshot = ProjectSnapshot.take(project)
    os.utime(project / "pkg" / "k.py")
    assert snapshot.restore() == []


def test_caches_environments_and_excluded_paths_are_not_the_project(project: Path) -> None:
    (project / ".venv").mkdir()
    (project / "env").mkdir()
    (project / "env" / "pyvenv.cfg").write_text("")
    (project / ".aide").mkdir()
    snapshot = ProjectSnapshot.take(project, exclude=[project / ".aide"])
    for path in (".venv/x.py", "env/lib.py", ".aide/run/node.py", ".pytest_cache/v", ".coverage"):
        (project / path).parent.mkdir(parents=True, exist_ok=True)
        (project / path).write_text("")
    assert snapshot.restore() == []


def test_a_planted_bytecode_cache_is_removed(project: Path) -> None:
    snapshot = ProjectSnapshot.take(project)
    pyc = project / "tests" / "__pycache__" / "test_k.cpython-311-pytest-9.0.pyc"
    pyc.parent.mkdir()
    pyc.write_bytes(b"forged")
    assert snapshot.restore() == [
        "created tests/__pycache__/test_k.cpython-311-pytest-9.0.pyc",
        "created directory tests/__pycache__",
    ]
    assert not pyc.parent.exists()


def test_a_large_file_is_reported_by_hash(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(boundary, "MAX_RESTORABLE_BYTES", 10)
    data = project / "data.bin"
    data.write_bytes(b"0" * 100)
    snapshot = ProjectSnapshot.take(project)
    data.write_bytes(b"1" * 100)
    assert snapshot.restore() == ["modified data.bin (too large to restore)"]
    assert snapshot.restore() == []  # reported once


def test_among_a_few_thousand_files_each_change_is_found(tmp_path: Path) -> None:
    """The same tree as ``benchmarks/bench_boundary.py`` times: nothing changed is nothing
    reported, and a change deep in it is found and undone."""
    for i in range(3000):
        folder = tmp_path / f"pkg{i % 30}"
        folder.mkdir(exist_ok=True)
        (folder / f"m{i}.py").write_text("x = 1\n" * 50)
    snapshot = ProjectSnapshot.take(tmp_path)
    assert snapshot.restore() == []
    (tmp_path / "pkg7" / "m2407.py").write_text("x = 2\n" * 50)  # same size
    (tmp_path / "pkg29" / "m2999.py").unlink()
    assert sorted(snapshot.restore()) == ["deleted pkg29/m2999.py", "modified pkg7/m2407.py"]
    assert (tmp_path / "pkg7" / "m2407.py").read_text() == "x = 1\n" * 50
    assert (tmp_path / "pkg29" / "m2999.py").read_text() == "x = 1\n" * 50


def test_the_guard_accepts_edits_between_evaluations(project: Path) -> None:
    guard = ProjectGuard(project)
    token = guard.begin()
    (project / "conftest.py").write_text("")
    assert guard.end(token) == ["created conftest.py"]
    (project / "pkg" / "k.py").write_text("X = 2\n")  # e.g. the session writing the best code
    token = guard.begin()
    assert guard.end(token) == []
    assert (project / "pkg" / "k.py").read_text() == "X = 2\n"


def test_what_the_projects_own_tests_write_is_learned_not_charged(project: Path) -> None:
    guard = ProjectGuard(project)
    token = guard.begin()
    (project / "report.txt").write_text("from the user's own tests")
    assert guard.end(token, trusted=True) == []
    token = guard.begin()
    (project / "report.txt").write_text("again")
    (project / "conftest.py").write_text("")
    assert guard.end(token) == ["created conftest.py"]


def test_overlapping_evaluations_are_all_charged(project: Path) -> None:
    guard = ProjectGuard(project)
    first, second = guard.begin(), guard.begin()
    (project / "conftest.py").write_text("")
    assert guard.end(second) == ["created conftest.py"]
    assert guard.end(first) == ["created conftest.py"]
