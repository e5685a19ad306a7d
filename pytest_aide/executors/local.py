"""The local executor: evaluations in disjoint slots of this machine (slots.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pytest_aide.evaluation.evaluator import Evaluation, Evaluator
from pytest_aide.evaluation.placement import Slot
from pytest_aide.executors.base import Gate
from pytest_aide.executors.slots import measuring_slot


@dataclass
class LocalExecutor:
    """Evaluations in slots of this machine: disjoint CPU cores and GPUs (slots.py)."""

    evaluator: Evaluator
    slots: list[Slot]
    _gate: Gate = field(init=False, repr=False)
    _measuring: Slot = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._gate = Gate(len(self.slots))
        self._measuring = measuring_slot(self.slots)

    @property
    def workers(self) -> int:
        return len(self.slots)

    def check(self, source: str | None, workdir: Path,
              nodeids: list[str] | None = None) -> Evaluation:
        with self._gate.slot() as index:
            return self.evaluator.evaluate(source, workdir, nodeids, slot=self.slots[index])

    def evaluate(self, source: str | None, workdir: Path,
                 nodeids: list[str] | None = None) -> Evaluation:
        with self._gate.all():
            return self.evaluator.evaluate(source, workdir, nodeids, slot=self._measuring)

    def abort(self) -> None:
        self.evaluator.abort()

    def close(self) -> None:
        """Nothing to release: the children end with their evaluations."""

    def describe(self) -> str:
        return "; ".join(slot.describe() for slot in self.slots)
