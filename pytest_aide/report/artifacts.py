"""The patch a run offers: a unified diff of the best code against the original.

It writes nothing: the run directory, the backup and the one write to the user's source
belong to ``pytest_aide.workspace``.
"""

from __future__ import annotations

import difflib


def unified_patch(original: str, best: str, relpath: str) -> str:
    """A diff that ``git apply`` takes from the rootdir."""
    # lines as git sees them: split at "\n" only (str.splitlines also splits at form feeds,
    # "\r", "\x1c"... and git apply then rejects the patch)
    lines = difflib.unified_diff(
        _lines(original),
        _lines(best),
        fromfile=f"a/{relpath}",
        tofile=f"b/{relpath}",
    )
    text = ""
    for line in lines:
        text += line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
    if text:
        text = f"diff --git a/{relpath} b/{relpath}\n" + text
    return text


def _lines(text: str) -> list[str]:
    """``text``'s lines, each with its ``\n`` (the last may have none)."""
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    return lines + ([parts[-1]] if parts[-1] else [])
