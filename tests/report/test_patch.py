"""best.patch: a diff that git apply takes, whatever characters the file holds."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from pytest_aide.report.artifacts import unified_patch


@pytest.mark.parametrize("original", [
    "a = 1\n\x0c\nb = 2\n",          # a form feed between sections (PEP 8 allows it)
    "a = 1\r\nb = 2\r\n",            # Windows line ends
    "s = 'x\x1cy\x85z\u2028w'\nb = 2\n",  # separators that str.splitlines splits at
    "a = 1\nb = 2",                  # no newline at the end
])
def test_git_apply_takes_the_patch(tmp_path: Path, original: str) -> None:
    best = original.replace("b = 2", "b = 3")
    target = tmp_path / "pkg" / "mod.py"
    target.parent.mkdir()
    target.write_bytes(original.encode())
    patch = tmp_path / "best.patch"
    patch.write_bytes(unified_patch(original, best, "pkg/mod.py").encode())
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    applied = subprocess.run(["git", "apply", "best.patch"], cwd=tmp_path,
                             capture_output=True, text=True)
    assert applied.returncode == 0, applied.stderr
    assert target.read_bytes() == best.encode()
