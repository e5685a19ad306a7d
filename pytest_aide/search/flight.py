"""A node between its request and its commit, and the threads that carry it.

The search's one loop (loop.py) keeps up to N nodes in flight: each is proposed in a thread
of its own, then evaluated in another, and comes back to the loop's thread to be judged and
committed in id order.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from enum import Enum
from typing import Any

from pytest_aide.journal import Node
from pytest_aide.proposers.base import Proposal, ProposalRequest, ProposerRefused


class Stage(Enum):
    PROPOSING = "proposing"
    READY = "ready"  # proposed, waiting for a free worker
    EVALUATING = "evaluating"
    DONE = "done"  # judged, waiting for its turn to be committed


@dataclass
class Flight:
    """A node between its request and its commit."""

    node: Node
    stage: Stage = Stage.PROPOSING
    future: Future[Any] | None = None
    proposal: Proposal | None = None
    request_failed: bool = False
    exhausted: str = ""  # SearchExhausted's message: no node at all
    #: The provider refused the first request of the session: the run stops, a usage error.
    refused: ProposerRefused | None = None
    evaluated: bool = False


class OneAtATime:
    """A proposer that is not safe to call from several threads (the tuner's Optuna study
    and bookkeeping), called one call at a time; its asks still run ahead of results, as
    Optuna's ask-and-tell interface allows."""

    concurrent = True  # this wrapper is

    def __init__(self, proposer: Any) -> None:
        self.proposer = proposer
        self.name = getattr(proposer, "name", "")
        self._lock = threading.Lock()

    def propose(self, request: ProposalRequest) -> Proposal:
        with self._lock:
            return self.proposer.propose(request)

    def observe(self, node: Node, proposal: Proposal | None) -> None:
        with self._lock:
            self.proposer.observe(node, proposal)


def spawn(function: Callable[..., Any], *args: Any) -> Future[Any]:
    """``function(*args)`` in a daemon thread: a proposal request still waiting on a slow
    provider when the run is interrupted must not keep the process alive."""
    future: Future[Any] = Future()

    def body() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(function(*args))
        except BaseException as exc:  # handed to the loop's thread, which re-raises bugs
            future.set_exception(exc)

    threading.Thread(target=body, daemon=True, name=f"aide-{function.__name__}").start()
    return future
