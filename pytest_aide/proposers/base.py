"""The one small interface every proposer implements.

The search asks ``propose(request)`` for a candidate and then tells the proposer how that
candidate did with ``observe(node)``, so that a model-free optimizer (the tuner) can learn
from results while an LLM proposer simply reads the journal summary in its next request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from pytest_aide.journal import Node, Usage


class ProposerError(Exception):
    """A proposal could not be made (request failed, reply unusable); the step is buggy."""


class ProposerConfigError(Exception):
    """The proposer cannot work as configured (missing key, unknown provider): a usage error."""


@dataclass
class ObjectiveInfo:
    nodeid: str
    metric: str
    maximize: bool
    baseline: float | None = None
    best: float | None = None


@dataclass
class ProposalRequest:
    """Everything a proposer may use to write the next candidate."""

    operator: str  # "draft", "improve" or "debug"
    parent: Node  # the node to start from (the root for drafts)
    target_path: str  # relative to the rootdir
    module: str
    original_code: str
    test_sources: dict[str, str]  # test file path -> source
    objectives: list[ObjectiveInfo]
    memory: list[Node] = field(default_factory=list)  # earlier nodes, oldest first
    instructions: str = ""
    error_output: str = ""  # for debug: the parent's trimmed failure output
    step: int = 0
    steps: int = 0


@dataclass
class Proposal:
    plan: str
    code: str
    usage: Usage = field(default_factory=Usage)
    data: Any = None  # proposer-private (e.g. the tuner's trial), handed back in observe()


class Proposer(Protocol):
    name: str

    def propose(self, request: ProposalRequest) -> Proposal: ...

    def observe(self, node: Node, proposal: Proposal | None) -> None: ...


class SearchExhausted(Exception):
    """The proposer has nothing new to propose (every configuration was tried): the search
    ends early rather than spend steps on repeats."""
