"""Choosing the executor that the settings ask for (the default of the make-executor hook)."""

from __future__ import annotations

from pytest_aide.evaluation.evaluator import Evaluator
from pytest_aide.executors.base import Executor, ExecutorError
from pytest_aide.executors.local import LocalExecutor
from pytest_aide.executors.slots import SlotError, plan_slots
from pytest_aide.settings import AideSettings


def make_executor(settings: AideSettings, evaluator: Evaluator) -> Executor:
    """The executor the settings ask for; ExecutorError when it cannot be had."""
    if settings.executor == "ray":
        from pytest_aide.executors.ray_driver import RayExecutor

        return RayExecutor.connect(settings, evaluator)
    if not settings.parallel:
        return LocalExecutor(evaluator)
    try:
        slots = plan_slots(settings.workers, settings.gpus_per_worker)
    except SlotError as exc:
        raise ExecutorError(str(exc)) from None
    return LocalExecutor(evaluator, slots)
