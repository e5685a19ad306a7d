"""The built-in tuner: distinct, valid candidates that learn from what was observed."""

from __future__ import annotations

import importlib.util
import math
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_aide.journal import BUGGY, GOOD, Node
from pytest_aide.proposers.base import (
    Proposal,
    ProposalRequest,
    ProposerConfigError,
    SearchExhausted,
)
from pytest_aide.proposers.tune.proposer import TuneProposer
from pytest_aide.proposers.tune.tunables import find_tunables

ROOT = Path(__file__).resolve().parents[3]

MODULE = '''\
"""A kernel with knobs — größe."""
import math

BLOCK_SIZE = 1024  # aide: 64..4096 pow2
EPS = 1e-3


def run(x):
    return launch(x, num_warps=4, seed=7)  # seed is never tuned
'''


def knobs(code: str) -> dict[str, object]:
    return {t.name: t.value for t in find_tunables(code)}


def score(code: str) -> float:
    """A made-up objective (higher is better), best at BLOCK_SIZE=256, 8 warps, EPS=1e-2."""
    values = knobs(code)
    return -(
        (math.log2(values["BLOCK_SIZE"]) - 8) ** 2  # type: ignore[arg-type]
        + (math.log2(values["launch.num_warps@9"]) - 3) ** 2  # type: ignore[arg-type]
        + (math.log10(values["EPS"]) + 2) ** 2  # type: ignore[arg-type]
    )


def outside_literals(code: str) -> list[str]:
    pieces, position = [], 0
    for tunable in find_tunables(code):
        pieces.append(code[position : tunable.start])
        position = tunable.end
    return [*pieces, code[position:]]


def node(step: int, code: str, objective: float | None, operator: str = "improve") -> Node:
    status = GOOD if objective is not None else BUGGY
    parent = None if operator == "baseline" else 0
    return Node(step, parent, step, operator, "", code, objective=objective, status=status)


def request(code: str, operator: str = "improve", step: int = 1) -> ProposalRequest:
    return ProposalRequest(
        operator=operator,
        parent=node(0, code, 0.0, "baseline"),
        target_path="kernel.py",
        module="kernel",
        original_code=code,
        test_sources={},
        objectives=[],
        step=step,
        steps=20,
    )


def run_search(proposer: TuneProposer, steps: int) -> list[Proposal]:
    proposer.observe(node(0, MODULE, score(MODULE), "baseline"), None)
    proposals = []
    for step in range(1, steps + 1):
        operator = ("draft", "improve", "debug")[step % 3]
        proposal = proposer.propose(request(MODULE, operator, step))
        proposer.observe(node(step, proposal.code, score(proposal.code)), proposal)
        proposals.append(proposal)
    return proposals


def test_candidates_are_distinct_valid_and_differ_only_in_literals():
    proposer = TuneProposer(MODULE, seed=3)
    assert proposer.name == "tune"
    proposals = run_search(proposer, 15)
    codes = [p.code for p in proposals]
    assert len(set(codes)) == len(codes)
    assert MODULE not in codes
    tunables = find_tunables(MODULE)
    for code in codes:
        compile(code, "kernel.py", "exec")
        values = knobs(code)
        assert set(values) == {t.name for t in tunables}
        assert all(t.contains(values[t.name]) for t in tunables)
        # outside the literals, the candidate is the original byte for byte
        assert outside_literals(code) == outside_literals(MODULE)
        assert "seed=7" in code


def test_plan_names_what_changed():
    proposer = TuneProposer(MODULE, seed=0)
    proposal = proposer.propose(request(MODULE))
    changed = {n: v for n, v in knobs(proposal.code).items() if v != knobs(MODULE)[n]}
    assert changed
    for name in changed:
        assert f"{name} {knobs(MODULE)[name]} -> " in proposal.plan
    assert proposal.plan.count("->") == len(changed)


def test_baseline_is_a_completed_trial_at_the_original_values():
    import optuna

    proposer = TuneProposer(MODULE, seed=0)
    proposer.observe(node(0, MODULE, -3.5, "baseline"), None)
    (trial,) = proposer.study.trials
    assert trial.state == optuna.trial.TrialState.COMPLETE
    assert trial.value == -3.5
    assert trial.params == {"BLOCK_SIZE": 10, "EPS": 1e-3, "launch.num_warps@9": 2}  # 2**10, 2**2


def test_failed_nodes_are_told_as_bad_and_never_proposed_again():
    import optuna

    proposer = TuneProposer(MODULE, seed=1)
    proposer.observe(node(0, MODULE, -1.0, "baseline"), None)
    first = proposer.propose(request(MODULE))
    proposer.observe(node(1, first.code, None), first)
    assert proposer.study.trials[-1].state == optuna.trial.TrialState.PRUNED
    later = [proposer.propose(request(MODULE, step=s)).code for s in range(2, 12)]
    assert first.code not in later


def test_the_search_improves_on_the_baseline():
    proposals = run_search(TuneProposer(MODULE, seed=0), 30)
    assert max(score(p.code) for p in proposals) > score(MODULE) + 1.0


def test_same_seed_same_sequence_other_seed_other_sequence():
    def codes(seed: int) -> list[str]:
        return [p.code for p in run_search(TuneProposer(MODULE, seed=seed), 12)]

    assert codes(5) == codes(5)
    assert codes(5) != codes(6)


def test_a_small_space_is_exhausted_without_repeats_then_the_tuner_says_so():
    source = "USE_CACHE = True\n"
    proposer = TuneProposer(source, seed=0)
    proposer.observe(node(0, source, 1.0, "baseline"), None)
    flipped = proposer.propose(request(source))
    assert flipped.code == "USE_CACHE = False\n"
    assert flipped.plan == "USE_CACHE True -> False"
    proposer.observe(node(1, flipped.code, 2.0), flipped)
    with pytest.raises(SearchExhausted, match="tried every configuration of its 1 tunable"):
        proposer.propose(request(source, step=2))


def test_replayed_nodes_without_a_proposal_are_read_from_their_code():
    proposer = TuneProposer(MODULE, seed=0)
    code = MODULE.replace("BLOCK_SIZE = 1024", "BLOCK_SIZE = 256")
    proposer.observe(node(4, code, 2.0), None)
    (trial,) = proposer.study.trials
    assert (trial.params["BLOCK_SIZE"], trial.value) == (8, 2.0)
    proposals = [proposer.propose(request(MODULE, step=s)).code for s in range(1, 15)]
    assert code not in proposals


def test_no_tunables_is_a_configuration_error_that_says_how_to_fix_it():
    with pytest.raises(ProposerConfigError) as info:
        TuneProposer("def f(x):\n    return x + 1\n", target="calc.py")
    message = str(info.value)
    assert "found nothing to tune in calc.py" in message
    assert "# aide:" in message
    assert "UPPER_CASE" in message
    assert "--aide-model openai:MODEL" in message


def test_a_malformed_hint_is_a_configuration_error():
    with pytest.raises(ProposerConfigError, match="line 1: malformed hint"):
        TuneProposer("N = 4  # aide: lots\n")


def test_importing_the_tuner_does_not_import_optuna():
    check = "import sys, pytest_aide.proposers.tune.proposer; assert 'optuna' not in sys.modules"
    subprocess.run([sys.executable, "-c", check], check=True, cwd=ROOT)


def test_benchmark_smoke(monkeypatch):
    spec = importlib.util.spec_from_file_location("bench_tuner", ROOT / "benchmarks/bench_tuner.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_tuner", bench)  # dataclasses look it up
    spec.loader.exec_module(bench)
    started = time.perf_counter()
    problem = bench.QUADRATIC_LOG
    tuner = bench.run(bench.tuner_scores, problem, 12, 1)
    rand = bench.run(bench.random_scores, problem, 12, 1)
    assert len(tuner.hits) == len(rand.hits) == 1
    assert problem.score(problem.source) < problem.optimum
    assert bench.evaluations_to_reach(problem, [0.0, problem.optimum]) == 2
    assert time.perf_counter() - started < 5


PADDED = '''\
PAD_WIDTH = 8  # aide: 1..16
BATCH = 64  # aide: 8..512 pow2


def render(rows):
    return [str(row).rjust(PAD_WIDTH) for row in rows]
'''


def test_a_literal_whose_move_alone_fails_the_tests_is_frozen_and_said_so():
    """The tuner tunes speed, not output: a knob of behaviour (a padding width) fails the
    guards when moved alone, and is left as it is from then on."""
    proposer = TuneProposer(PADDED, seed=3)
    assert "PAD_WIDTH, BATCH" in proposer.space_text()
    proposer.observe(node(0, PADDED, -1.0, "baseline"), None)
    first = proposer.propose(request(PADDED))
    assert knobs(first.code)["BATCH"] == 64 and knobs(first.code)["PAD_WIDTH"] != 8
    failed = node(1, first.code, None)
    failed.outcomes = {"test_render.py::test_padding": "failed"}
    proposer.observe(failed, first)
    second = proposer.propose(request(PADDED, step=2))
    assert knobs(second.code)["PAD_WIDTH"] == 8 and knobs(second.code)["BATCH"] != 64
    proposer.observe(node(2, second.code, -0.9), second)
    later = [proposer.propose(request(PADDED, step=s)) for s in range(3, 7)]
    for proposal in later:
        proposer.observe(node(3, proposal.code, -1.0), proposal)
    assert {knobs(p.code)["PAD_WIDTH"] for p in later} == {8}
    assert len({knobs(p.code)["BATCH"] for p in later}) > 1
    assert proposer.frozen == {"PAD_WIDTH"}


def test_a_move_that_fails_without_failing_a_test_freezes_nothing():
    proposer = TuneProposer(PADDED, seed=3)
    first = proposer.propose(request(PADDED))
    crashed = node(1, first.code, None)
    crashed.outcomes = {"test_render.py::test_padding": "not run"}  # a timeout, a crash
    proposer.observe(crashed, first)
    assert proposer.frozen == set()


def test_a_plan_reads_as_a_change_from_the_parent_node():
    proposer = TuneProposer(PADDED, seed=3)
    parent_code = PADDED.replace("BATCH = 64", "BATCH = 128")
    parent = node(1, parent_code, -0.5)
    improve = ProposalRequest(operator="improve", parent=parent, target_path="kernel.py",
                              module="kernel", original_code=PADDED, test_sources={},
                              objectives=[], step=2, steps=20)
    proposal = proposer.propose(improve)
    moved = knobs(proposal.code)
    for name, value in knobs(parent_code).items():
        if moved[name] != value:
            assert f"{name} {value} -> {moved[name]}" in proposal.plan
    assert "BATCH 64 ->" not in proposal.plan or moved["BATCH"] == 128
