"""What a candidate is: the text of every target file, the primary target first.

A run with one target keeps what it always had: a candidate is that file's text, in the
journal and everywhere it travels. With ``target=[...]`` a candidate is several files that are
evaluated, judged and written together; it still travels as one string (the journal's
``code``, an evaluation request's ``source``), a JSON object relpath -> text in the targets'
order, so that the journal, the executors (Ray ships it as data) and the comparisons of code
stay as they are. Which form a string has is never guessed from its content: the study (or
the journal) says how many targets there are, and ``decode`` is told their relpaths.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass


class SourcesError(ValueError):
    """A stored candidate does not hold the files its run's targets name."""


@dataclass(frozen=True)
class Sources:
    """relpath -> text, ordered: the primary target's file first."""

    files: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, pairs: Sequence[tuple[str, str]]) -> Sources:
        return cls(tuple((path, text) for path, text in pairs))

    @property
    def relpaths(self) -> list[str]:
        return [path for path, _ in self.files]

    @property
    def primary(self) -> str:
        """The primary target's text (the one file of a one-target run)."""
        return self.files[0][1]

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self.files)

    def __len__(self) -> int:
        return len(self.files)

    def text(self, relpath: str) -> str:
        for path, text in self.files:
            if path == relpath:
                return text
        raise KeyError(relpath)

    def replace(self, relpath: str, text: str) -> Sources:
        """These sources with ``relpath``'s text replaced (the others as they are)."""
        if relpath not in self.relpaths:
            raise KeyError(relpath)
        return Sources(tuple((p, text if p == relpath else t) for p, t in self.files))

    def changed(self, other: Sources) -> list[str]:
        """The relpaths whose text differs in ``other``."""
        return [path for path, text in self.files if other.text(path) != text]

    def encode(self) -> str:
        """The one string a candidate travels as: the file's text when there is one."""
        if len(self.files) == 1:
            return self.files[0][1]
        return json.dumps(dict(self.files), indent=1, ensure_ascii=False)

    @classmethod
    def decode(cls, code: str, relpaths: Sequence[str]) -> Sources:
        """The candidate ``code`` of a run whose targets are ``relpaths``."""
        if len(relpaths) == 1:
            return cls(((relpaths[0], code),))
        try:
            data = json.loads(code)
        except ValueError as exc:
            raise SourcesError(f"a candidate of {len(relpaths)} files is not their JSON "
                               f"object: {exc}") from None
        if not isinstance(data, dict) or set(data) != set(relpaths) or not all(
                isinstance(text, str) for text in data.values()):
            names = sorted(data) if isinstance(data, dict) else type(data).__name__
            raise SourcesError(f"a candidate names the files {names}, not the run's targets "
                               f"{list(relpaths)}")
        return cls(tuple((path, data[path]) for path in relpaths))
