"""The local executor: evaluations on this machine, in disjoint slots (slots.py) or, with
one worker and no GPUs to share out, wherever the OS puts them (the serial case)."""

from __future__ import annotations

from dataclasses import dataclass, field

from pytest_aide.evaluation.evaluator import Evaluation, Evaluator
from pytest_aide.evaluation.placement import Slot
from pytest_aide.executors.base import EvaluationRequest, Gate
from pytest_aide.executors.slots import measuring_slot


@dataclass
class LocalExecutor:
    """Evaluations in slots of this machine: disjoint CPU cores and GPUs (slots.py).

    No slots: one worker, unplaced. Its children may then start from a warm interpreter
    (warm.py), which a placed child cannot: a zygote forks on its own cores.
    """

    evaluator: Evaluator
    slots: list[Slot] = field(default_factory=list)
    _gate: Gate = field(init=False, repr=False)
    _measuring: Slot | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._gate = Gate(max(1, len(self.slots)))
        self._measuring = measuring_slot(self.slots) if self.slots else None

    @property
    def workers(self) -> int:
        return max(1, len(self.slots))

    def run_shared(self, request: EvaluationRequest) -> Evaluation:
        with self._gate.slot() as index:
            return self._run(request, self.slots[index] if self.slots else None)

    def run_isolated(self, request: EvaluationRequest) -> Evaluation:
        with self._gate.all():
            return self._run(request, self._measuring)

    def _run(self, request: EvaluationRequest, slot: Slot | None) -> Evaluation:
        return self.evaluator.evaluate(request.source, request.workdir, request.nodeids,
                                       slot=slot, baseline=request.baseline,
                                       coverage=request.coverage,
                                       record_calls=request.record_calls, replay=request.replay,
                                       fresh=request.fresh, fresh_seeds=request.fresh_seeds,
                                       first_failure_ends=request.first_failure_ends,
                                       profile=request.profile)

    def abort(self) -> None:
        self.evaluator.abort()

    def close(self) -> None:
        """Stop the warm interpreters; the children end with their evaluations."""
        self.evaluator.close()

    def describe(self) -> str:
        if not self.slots:
            return "this machine, one evaluation at a time"
        return "; ".join(slot.describe() for slot in self.slots)

    def notice(self) -> str:
        return self.evaluator.warm_notice
