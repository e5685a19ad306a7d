"""The journal: every node of the search as plain data, persisted after each step.

Modelled on AIDE's journal: a flat list of nodes, each pointing at its parent. It is
written atomically (temporary file, then rename) so a killed run leaves a readable journal
from which ``--aide-resume`` continues.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any


class Status(str, Enum):
    """A node's verdict. A ``str`` enum: the journal's JSON holds the plain word."""

    GOOD = "good"
    BUGGY = "buggy"
    TAMPERED = "tampered"

    def __str__(self) -> str:
        return self.value


class Operator(str, Enum):
    """How a node came to be: AIDE's operators, and the original itself."""

    BASELINE = "baseline"
    DRAFT = "draft"
    IMPROVE = "improve"
    DEBUG = "debug"

    def __str__(self) -> str:
        return self.value


class Phase(str, Enum):
    """The parts of a run whose time is kept (``Journal.phase_seconds``), in their order."""

    SEARCH = "search"  # the baseline, the probe and the steps
    CONFIRMATION = "confirmation"
    FINAL_CHECK = "final check"


GOOD = Status.GOOD
BUGGY = Status.BUGGY
TAMPERED = Status.TAMPERED

#: 2: a duplicate is ``duplicate_of`` (not an error text), and why a good node is not the best
#: is its ``note`` (not its ``error``). Version 1 journals are read and upgraded (``_upgrade``).
JOURNAL_VERSION = 2
#: How version 1 wrote a duplicate's error.
_V1_DUPLICATE = re.compile(r"candidate is identical to node (\d+)")


@dataclass
class Usage:
    """Tokens spent on one proposal, and its estimated cost when the price is known."""

    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = None

    def add(self, other: Usage) -> Usage:
        cost = None
        if self.cost_usd is not None or other.cost_usd is not None:
            cost = (self.cost_usd or 0.0) + (other.cost_usd or 0.0)
        return Usage(
            self.input_tokens + other.input_tokens, self.output_tokens + other.output_tokens, cost
        )


@dataclass
class Node:
    """One candidate: where it came from, what it is, and how it did."""

    id: int
    parent: int | None
    step: int
    operator: Operator
    plan: str
    code: str
    metrics: dict[str, float | None] = field(default_factory=dict)  # objective nodeid -> value
    objective: float | None = None  # higher is better; see objective.py
    status: Status = Status.BUGGY
    #: Why the node is buggy or tampered ("" when good).
    error: str = ""
    #: Why a good node did not become the best, when there is more to say than "not better".
    note: str = ""
    #: The earlier node whose code this one repeats (it was not run again).
    duplicate_of: int | None = None
    started: float = 0.0
    duration: float = 0.0  # seconds spent evaluating
    propose_seconds: float = 0.0
    usage: Usage = field(default_factory=Usage)
    debug_depth: int = 0
    outcomes: dict[str, str] = field(default_factory=dict)  # test nodeid -> outcome
    samples: dict[str, list[float]] = field(default_factory=dict)  # benchmark rounds
    confirmed: dict[str, Any] | None = None
    speed: list[float] = field(default_factory=list)  # machine speed probes (speed.py)
    remeasured: int = 0  # times measured again next to the best (the machine's speed changed)
    remeasure_reason: str = ""  # why it was ("": the machine's speed had changed)
    #: Each timed test's benchmarked call, in seconds per fresh input (guards/fresh.py).
    fresh: dict[str, list[float]] = field(default_factory=dict)
    #: The seed of those inputs and its answers to the first of them, until the screen has
    #: compared them with the original's (not kept in the journal: they may be large).
    #: (``guards.fresh.FreshAnswers`` by marked test; the data layer does not import it).
    fresh_answers: dict[str, Any] = field(default_factory=dict, repr=False)
    #: ``[guards its evaluation ran, guards in all]`` when it ran only those that ran the
    #: functions it changed (guards/selection.py); empty when it ran them all.
    guards_run: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.operator = Operator(self.operator)
        self.status = Status(self.status)

    @property
    def is_good(self) -> bool:
        return self.status == Status.GOOD

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        del data["fresh_answers"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], version: int = JOURNAL_VERSION) -> Node:
        data = dict(data)
        if version < 2:
            _upgrade(data)
        data["usage"] = Usage(**(data.get("usage") or {}))
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class Journal:
    """All nodes of one run, plus what is needed to resume and report it."""

    run_id: str
    target: str  # path relative to the rootdir
    module: str
    objectives: list[dict[str, Any]]  # [{"nodeid", "metric", "maximize"}]
    original_sha256: str
    #: A function or class target's qualified name in the module ("" for the whole module).
    symbol: str = ""
    #: With ``target=[...]``: every target's relpath, ``target`` first (a node's ``code`` is
    #: then sources.Sources' JSON form); empty for one target, and absent from its JSON.
    targets: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    nodes: list[Node] = field(default_factory=list)
    best_id: int | None = None
    finished: bool = False
    outcome: str = ""  # a sentence on how the run ended
    exhausted: bool = False  # it ended early: the proposer had nothing new to propose
    #: Seconds each part of the run took (Phase's values): the whole run's time is their sum,
    #: not the steps' alone (the confirmation and the final check often take longer).
    phase_seconds: dict[str, float] = field(default_factory=dict)

    def add_time(self, phase: Phase, seconds: float) -> None:
        self.phase_seconds[phase.value] = self.phase_seconds.get(phase.value, 0.0) + seconds

    def __getitem__(self, node_id: int) -> Node:
        return self.nodes[node_id]

    @property
    def relpaths(self) -> list[str]:
        """Every target's relpath, the primary first (the one target's alone)."""
        return self.targets if len(self.targets) > 1 else [self.target]

    @property
    def targets_text(self) -> str:
        """The targets as a person reads them: ``a.py``, or ``a.py + b.py``."""
        return " + ".join(self.relpaths)

    @property
    def root(self) -> Node:
        return self.nodes[0]

    @property
    def best(self) -> Node | None:
        return None if self.best_id is None else self.nodes[self.best_id]

    def children(self, node_id: int) -> list[Node]:
        return [n for n in self.nodes if n.parent == node_id]

    def path_to(self, node_id: int) -> list[Node]:
        """Nodes from the root to ``node_id``, inclusive."""
        path = []
        current: int | None = node_id
        while current is not None:
            node = self.nodes[current]
            path.append(node)
            current = node.parent
        return list(reversed(path))

    def total_usage(self) -> Usage:
        total = Usage()
        for node in self.nodes:
            total = total.add(node.usage)
        return total

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": JOURNAL_VERSION,
            "run_id": self.run_id,
            "target": self.target,
            "module": self.module,
            "symbol": self.symbol,
            **({"targets": self.targets} if len(self.targets) > 1 else {}),
            "objectives": self.objectives,
            "original_sha256": self.original_sha256,
            "settings": self.settings,
            "best_id": self.best_id,
            "finished": self.finished,
            "outcome": self.outcome,
            "exhausted": self.exhausted,
            "phase_seconds": self.phase_seconds,
            "nodes": [n.to_dict() for n in self.nodes],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Journal:
        return cls(
            run_id=data["run_id"],
            target=data["target"],
            module=data["module"],
            symbol=data.get("symbol", ""),
            targets=list(data.get("targets") or []),
            objectives=data["objectives"],
            original_sha256=data["original_sha256"],
            settings=data.get("settings", {}),
            nodes=[Node.from_dict(n, int(data.get("version") or 1)) for n in data.get("nodes", [])],
            best_id=data.get("best_id"),
            finished=data.get("finished", False),
            outcome=data.get("outcome", ""),
            exhausted=data.get("exhausted", False),
            phase_seconds=dict(data.get("phase_seconds") or {}),
        )

    def save(self, path: Path) -> None:
        write_atomic(path, json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load(cls, path: Path) -> Journal:
        return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))


def _upgrade(node: dict[str, Any]) -> None:
    """A version 1 node as version 2 writes it: the duplicate's id out of its error text, and
    a good node's error (why it was not the best) as its note."""
    error = node.get("error") or ""
    duplicate = _V1_DUPLICATE.match(error)
    if duplicate and node.get("status") == Status.BUGGY.value:
        node["duplicate_of"] = int(duplicate.group(1))
    elif node.get("status") == Status.GOOD.value and error:
        node["note"], node["error"] = error, ""


def write_atomic(path: Path, text: str, encoding: str = "utf-8") -> None:
    """Write a file so that readers see the old or the new content, never a torn one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with temporary.open("w", encoding=encoding, newline="") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
