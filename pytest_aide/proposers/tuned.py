"""An LLM and the tuner in one search (``--aide-model openai:MODEL+tune``).

An LLM writes a Triton kernel with ``BLOCK_SIZE = 128``, or a loop with a chunk size; nothing
then searches that knob the way the tuner (or ``triton.autotune``) would. Here, each time a
candidate the LLM wrote becomes the best, the next improvements of it are the tuner's: a TPE
search of that candidate's own numeric knobs (UPPER_CASE constants, numeric keyword
arguments, and literals the model marked with ``# aide:`` hints, which the prompt invites),
``children`` evaluations at most, as descendants of it in the journal and the tree. The best
of them competes as usual; then the LLM improves again, from whatever is best.

Drafts and debug steps stay the LLM's. A candidate with nothing to tune is left to the LLM.
The tuner's state is not kept across ``--aide-resume``: a resumed run tunes anew.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pytest_aide.journal import Node, Operator
from pytest_aide.proposers.base import (
    Proposal,
    ProposalRequest,
    Proposer,
    ProposerConfigError,
    SearchExhausted,
)
from pytest_aide.proposers.tune.proposer import TuneProposer

#: Added to the improve prompt: knobs the model marks are searched after it.
HINT_INSTRUCTION = (
    "Numeric knobs of your code (block sizes, chunk sizes, thresholds) will be tuned after "
    "you: write them as UPPER_CASE module constants, and give each a range in a comment, "
    "e.g. `BLOCK_SIZE = 128  # aide: 16..1024 pow2`."
)
#: The same for a function or class target, whose module constants may not change: the
#: tuner reads a hinted assignment wherever it is.
HINT_INSTRUCTION_SYMBOL = (
    "Numeric knobs of your code (block sizes, chunk sizes, thresholds) will be tuned after "
    "you: write them as UPPER_CASE assignments inside `{symbol}`, and give each a range in "
    "a comment, e.g. `BLOCK_SIZE = 128  # aide: 16..1024 pow2`."
)


@dataclass
class _Tuning:
    """The tuner's search of one LLM candidate's knobs."""

    tuner: TuneProposer
    left: int


@dataclass(frozen=True)
class _Tuned:
    """``Proposal.data`` of a tuner's proposal: which tuning it came from, and its trial."""

    origin: int
    trial: object


class TunedLLMProposer:
    """The LLM's proposals, and the tuner's search of each LLM candidate that becomes best."""

    #: One call at a time: the tuner has state, and which of the two answers depends on it.
    concurrent = False

    def __init__(self, llm: Proposer, *, children: int, seed: int = 0,
                 relpaths: Sequence[str] = ()) -> None:
        self.llm = llm
        self.relpaths = list(relpaths)  # several target files: theirs (TuneProposer's)
        self.children = children
        self.seed = seed
        self.name = f"{getattr(llm, 'name', 'llm')}+tune"
        self._tunings: dict[int, _Tuning | None] = {}  # LLM node id -> its tuning (None: none)
        #: The LLM node each node descends from through tuning (itself, for an LLM node).
        self._origin: dict[int, int] = {}

    def propose(self, request: ProposalRequest) -> Proposal:
        if request.operator == Operator.IMPROVE:
            origin = self._origin.get(request.parent.id)
            tuning = self._tunings.get(origin) if origin is not None else None
            if tuning is not None and tuning.left > 0:
                try:
                    proposal = tuning.tuner.propose(request)
                except SearchExhausted:
                    tuning.left = 0
                else:
                    tuning.left -= 1
                    return Proposal(plan=f"tune node {origin}'s knobs: {proposal.plan}",
                                    code=proposal.code,
                                    data=_Tuned(origin, proposal.data))
        if request.operator in (Operator.DRAFT, Operator.IMPROVE):
            hint = (HINT_INSTRUCTION_SYMBOL.format(symbol=request.symbol) if request.symbol
                    else HINT_INSTRUCTION)
            request.instructions = "\n\n".join(filter(None, [request.instructions, hint]))
        return self.llm.propose(request)

    def observe(self, node: Node, proposal: Proposal | None) -> None:
        data = getattr(proposal, "data", None)
        if isinstance(data, _Tuned):
            self._origin[node.id] = data.origin
            tuning = self._tunings.get(data.origin)
            if tuning is not None:
                tuning.tuner.observe(node, Proposal(proposal.plan, proposal.code, data=data.trial)
                                     if proposal is not None else None)
            return
        self.llm.observe(node, proposal)
        if node.operator == Operator.BASELINE or proposal is None:
            return
        self._origin[node.id] = node.id
        if node.is_good and node.id not in self._tunings:
            self._tunings[node.id] = self._tuning_of(node)

    def _tuning_of(self, node: Node) -> _Tuning | None:
        """A tuner over ``node``'s own knobs, told how ``node`` itself did (None: it has
        none to tune)."""
        try:
            tuner = TuneProposer(node.code, seed=self.seed + node.id,
                                 target=f"node {node.id}", relpaths=self.relpaths)
        except ProposerConfigError:
            return None
        tuner.observe(node, None)
        return _Tuning(tuner, self.children)
