"""The one small interface every proposer implements.

The search asks ``propose(request)`` for a candidate and then tells the proposer how that
candidate did with ``observe(node)``, so that a model-free optimizer (the tuner) can learn
from results while an LLM proposer simply reads the journal summary in its next request.
The contracts that the search relies on beyond the signatures are written on ``Proposer``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from pytest_aide.journal import Node, Usage
from pytest_aide.metrics import HotSpot


class ProposerError(Exception):
    """A proposal could not be made (request failed, reply unusable); the step is buggy.

    ``usage``: the tokens the failed attempt still spent (set by the proposer when it knows
    them); the search books them on the buggy node, so that the cost and ``--aide-budget``
    count them.
    """

    usage: Usage | None = None


class ProposerRequestError(ProposerError):
    """The request itself failed after the SDK's own retries (network, 5xx, 429, bad response).

    Unlike an unusable reply, this says nothing about the candidate: the search stops after
    a few of these in a row instead of burning its steps on a dead endpoint.
    """


class ProposerRefused(ProposerRequestError):
    """The provider refused the request for what it was, not for now (HTTP 400, 401, 403,
    404: the key, the model or the URL is wrong): retrying will not mend it. At a run's first
    request it is a usage error (the search stops at once, exit 4); later, a failed request."""


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
class TargetFile:
    """One target file of a run with several (``target=[...]``)."""

    path: str  # relative to the rootdir
    module: str
    symbol: str = ""  # a function or class target in it ("" for the whole file)


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
    #: Where each benchmarked call spent its time on the original, by marked test: the
    #: target's hottest functions (evaluation/profile.py).
    profile: dict[str, list[HotSpot]] = field(default_factory=dict)
    #: A function or class target: its qualified name in the module (``func``,
    #: ``Class.method``); the candidate may change only that definition. "" for the module.
    symbol: str = ""
    #: With ``target=[...]``: the other targets. A node's code then holds every target file
    #: (sources.Sources' JSON form, the primary ``target_path`` first).
    also: list[TargetFile] = field(default_factory=list)

    @property
    def files(self) -> list[TargetFile]:
        """Every target file, the primary first."""
        return [TargetFile(self.target_path, self.module, self.symbol), *self.also]


@dataclass
class Proposal:
    plan: str
    code: str
    usage: Usage = field(default_factory=Usage)
    data: Any = None  # proposer-private (e.g. the tuner's trial), handed back in observe()


class Proposer(Protocol):
    """Writes candidates; made by the ``pytest_aide_make_proposer`` hook (hookspecs.py).

    What the search relies on, beyond the signatures:

    - ``name``: shown in the header and kept in the journal (e.g. ``openai:gpt-5.5``).
    - ``concurrent`` (optional, default False): True when ``propose`` and ``observe`` may be
      called from several threads at once. A parallel search (``--aide-workers``) keeps
      several requests in flight for such a proposer, and serializes the calls of any other
      behind one lock, so that a proposer with state (the tuner) needs no locking of its own.
    - ``observe`` is called once for every node the journal gets, in the journal's order:
      the baseline (with ``proposal`` None), then each step with the proposal it came from
      (None when the proposal failed). On ``--aide-resume`` every journaled node is observed
      again, in order, with ``proposal`` None, before the first new request: a proposer
      rebuilds what it learnt from the nodes alone, never from a ``Proposal.data`` of an
      earlier process.
    - ``propose`` raises ``SearchExhausted`` when it has no new candidate to offer: the run
      stops early with the outcome "stopped early: <message>" and is marked exhausted (no
      "more steps" command is offered). Any other failure is a ``ProposerError`` (the step
      becomes a buggy node; ``ProposerRequestError`` for a failed request, several of which
      in a row stop the search), carrying in ``usage`` the tokens it spent.
    - A configuration problem found while the proposer is made (missing key, unknown
      model) is a ``ProposerConfigError``, raised before anything runs: a usage error.
    """

    name: str

    def propose(self, request: ProposalRequest) -> Proposal:
        """The next candidate for ``request``; SearchExhausted or ProposerError otherwise."""
        ...

    def observe(self, node: Node, proposal: Proposal | None) -> None:
        """How a journaled node did (replayed with ``proposal`` None on resume)."""
        ...


class SearchExhausted(Exception):
    """The proposer has nothing new to propose (every configuration was tried): the search
    ends early ("stopped early: <message>", journal marked exhausted) rather than spend
    steps on repeats."""
