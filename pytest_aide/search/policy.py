"""AIDE's choice of the next operator and parent node: draft, debug or improve.

Draft independent rewrites of the original until there are enough drafts; then, with
probability ``debug_prob``, debug a buggy leaf whose debug chain is not too deep; otherwise
improve the best good node.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from pytest_aide.journal import Journal, Node, Operator, Status


@dataclass
class Policy:
    """AIDE's choice of the next operator and parent."""

    drafts: int
    debug_prob: float
    max_debug_depth: int
    rng: random.Random = field(default_factory=random.Random)

    def next(self, journal: Journal, pending: Sequence[Node] = ()) -> tuple[Operator, Node]:
        """The next operator and parent. ``pending``: nodes already requested but not yet in
        the journal (several in flight): their drafts count, and their parents are not
        leaves."""
        nodes = journal.nodes[1:]
        drafts = sum(1 for n in [*nodes, *pending] if n.operator == Operator.DRAFT)
        if drafts < self.drafts:
            return Operator.DRAFT, journal.root
        if self.rng.random() < self.debug_prob:
            taken = {n.parent for n in pending}
            debuggable = [
                n for n in nodes
                if n.status == Status.BUGGY and n.code and n.duplicate_of is None
                and not journal.children(n.id) and n.id not in taken
                and n.debug_depth < self.max_debug_depth
            ]
            if debuggable:
                return Operator.DEBUG, self.rng.choice(debuggable)
        best = journal.best or journal.root
        return Operator.IMPROVE, best
