"""The patch a run offers: a unified diff of the best code against the original.

It writes nothing: the run directory, the backup and the one write to the user's source
belong to ``pytest_aide.workspace``.
"""

from __future__ import annotations

import difflib

from pytest_aide.sources import Sources, SourcesError


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


def sources_patch(original: Sources, best: Sources) -> str:
    """One diff over every target file (``unified_patch`` of each, in the targets' order):
    ``git apply`` takes it from the rootdir, all files at once."""
    return "".join(unified_patch(text, best.text(relpath), relpath)
                   for relpath, text in original)


def code_patch(relpaths: list[str], original: str, best: str) -> str:
    """``sources_patch`` of two candidates as a run with the targets ``relpaths`` stores
    them (one target: ``unified_patch`` of the file's texts); a candidate that holds other
    files than the run's (a proposer's mistake, judged buggy) is diffed as it was stored."""
    try:
        return sources_patch(Sources.decode(original, relpaths), Sources.decode(best, relpaths))
    except SourcesError:
        return unified_patch(original, best, relpaths[0])


def _lines(text: str) -> list[str]:
    """``text``'s lines, each with its ``\n`` (the last may have none)."""
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    return lines + ([parts[-1]] if parts[-1] else [])
