"""The search core: AIDE's policy, baseline checks, the objective, and the loop."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pytest_aide.evaluation.evaluator import Evaluator
from pytest_aide.executors.local import LocalExecutor
from pytest_aide.journal import BUGGY, GOOD, Journal, Node
from pytest_aide.proposers.base import (
    Proposal,
    ProposalRequest,
    ProposerError,
    SearchExhausted,
)
from pytest_aide.search.loop import BaselineError, Policy, Search, SearchContext
from pytest_aide.search.objective import ObjectiveError, score
from pytest_aide.search.screen import MAX_REMEASURES
from pytest_aide.study import Objective, Study, Target


def journal_with(statuses: list[tuple[str, str, int | None]]) -> Journal:
    """A journal whose nodes have (operator, status, parent)."""
    journal = Journal(run_id="r", target="m.py", module="m", objectives=[], original_sha256="")
    journal.nodes.append(Node(0, None, 0, "baseline", "", "root", status=GOOD, objective=1.0))
    for index, (operator, status, parent) in enumerate(statuses, start=1):
        journal.nodes.append(
            Node(index, parent, index, operator, "", f"code {index}", status=status,
                 objective=float(index) if status == GOOD else None)
        )
    journal.best_id = 0
    return journal


def test_policy_drafts_first_then_debugs_or_improves_with_a_seeded_choice() -> None:
    policy = Policy(drafts=2, debug_prob=0.5, max_debug_depth=1, rng=random.Random(7))
    journal = journal_with([])
    assert policy.next(journal) == ("draft", journal.root)
    journal = journal_with([("draft", BUGGY, 0)])
    assert policy.next(journal)[0] == "draft"
    journal = journal_with([("draft", BUGGY, 0), ("draft", GOOD, 0)])
    journal.best_id = 2
    choices = [policy.next(journal) for _ in range(200)]
    debugs = [parent.id for op, parent in choices if op == "debug"]
    improves = [parent.id for op, parent in choices if op == "improve"]
    assert set(debugs) == {1} and set(improves) == {2}
    assert 60 < len(debugs) < 140  # about half, as debug_prob says
    again = Policy(drafts=2, debug_prob=0.5, max_debug_depth=1, rng=random.Random(7))
    assert [again.next(journal) for _ in range(200)] == choices


def test_policy_respects_debug_depth_and_leaves() -> None:
    policy = Policy(drafts=1, debug_prob=1.0, max_debug_depth=1, rng=random.Random(0))
    journal = journal_with([("draft", BUGGY, 0)])
    assert policy.next(journal) == ("debug", journal.nodes[1])
    journal = journal_with([("draft", BUGGY, 0), ("debug", BUGGY, 1)])
    journal.nodes[2].debug_depth = 1  # too deep to debug again; node 1 is no longer a leaf
    assert policy.next(journal) == ("improve", journal.root)


def test_aggregate_objective_is_a_geometric_mean_of_oriented_ratios() -> None:
    objectives = [Objective("t::a", "mean", False), Objective("t::b", "accuracy", True)]
    baseline = {"t::a": 2.0, "t::b": 0.5}
    assert score(objectives, baseline, None) == pytest.approx(1.0)
    # twice as fast, same accuracy: sqrt(2 * 1)
    assert score(objectives, {"t::a": 1.0, "t::b": 0.5}, baseline) == pytest.approx(2**0.5)
    # same time, accuracy 0.5 -> 1.0 : sqrt(1 * 2)
    assert score(objectives, {"t::a": 2.0, "t::b": 1.0}, baseline) == pytest.approx(2**0.5)
    with pytest.raises(ObjectiveError, match="positive"):
        score(objectives, {"t::a": 2.0, "t::b": 0.0}, baseline)
    with pytest.raises(ObjectiveError, match="missing"):
        score(objectives, {"t::a": 2.0}, baseline)
    single = [Objective("t::a", "mean", False)]
    assert score(single, {"t::a": 3.0}, None) == -3.0


@dataclass
class ScriptedProposer:
    """Returns the given codes in order; records the requests it saw."""

    codes: list[str]
    name: str = "scripted"
    requests: list[ProposalRequest] = field(default_factory=list)
    observed: list[int] = field(default_factory=list)

    def propose(self, request: ProposalRequest) -> Proposal:
        self.requests.append(request)
        if not self.codes:
            raise SearchExhausted("nothing left to try")
        code = self.codes.pop(0)
        if code == "FAIL":
            raise ProposerError("the model said nothing useful")
        return Proposal(plan=f"plan {len(self.requests)}", code=code)

    def observe(self, node: Node, proposal: Proposal | None) -> None:
        self.observed.append(node.id)


def make_search(project: pytest.Pytester, proposer: ScriptedProposer, objective: Objective):
    path = project.path / "slow.py"
    study = Study(
        target=Target("slow", path),
        objectives=[objective],
        guard_nodeids=[f"test_slow.py::test_correct[{n}]" for n in (0, 1, 7, 64, 100)],
        test_files=[project.path / "test_slow.py"],
    )
    journal = Journal(run_id="r", target="slow.py", module="slow",
                      objectives=[], original_sha256="")
    context = SearchContext(
        study=study, executor=LocalExecutor(Evaluator(study, project.path)), proposer=proposer,
        run_dir=project.path / ".aide" / "r", original_code=path.read_text(),
        test_sources={"test_slow.py": (project.path / "test_slow.py").read_text()},
        # the screen's rules are the subject here: no probe run to count among the
        # scripted evaluations (replay: tests/test_behaviour.py)
        compare=False,
    )
    policy = Policy(drafts=1, debug_prob=0.0, max_debug_depth=1, rng=random.Random(0))
    return Search(context, journal, policy), journal


def test_loop_keeps_the_best_passing_candidate(slow_project) -> None:
    original = (slow_project.path / "slow.py").read_text()
    fast = original.replace("CHUNK = 2", "CHUNK = 16")
    wrong_but_fast = original.replace("CHUNK = 2", "CHUNK = 64").replace("total +=", "total -=")
    proposer = ScriptedProposer([fast, wrong_but_fast, "def broken(:\n", "FAIL", fast])
    search, journal = make_search(
        slow_project, proposer, Objective("test_slow.py::test_speed", "mean", False)
    )
    search.measure_baseline()
    search.run(5)
    statuses = [n.status for n in journal.nodes]
    assert statuses == [GOOD, GOOD, BUGGY, BUGGY, BUGGY, BUGGY]
    assert journal.best_id == 1
    assert "test_correct" in journal.nodes[2].error  # the guard that kept it out
    assert "does not compile" in journal.nodes[3].error
    assert "proposal failed" in journal.nodes[4].error
    assert "identical to node 1" in journal.nodes[5].error
    assert journal.nodes[5].duplicate_of == 1 and journal.nodes[2].duplicate_of is None
    assert proposer.requests[0].operator == "draft"
    assert proposer.requests[1].operator == "improve" and proposer.requests[1].parent.id == 1
    assert "CHUNK = 2" in proposer.requests[0].original_code
    assert proposer.observed == [0, 1, 2, 3, 4, 5]
    saved = Journal.load(slow_project.path / ".aide" / "r" / "journal.json")
    assert [n.status for n in saved.nodes] == statuses


def test_baseline_that_fails_a_guard_stops_the_search(slow_project) -> None:
    path = slow_project.path / "slow.py"
    path.write_text(path.read_text().replace("total +=", "total -="))
    search, journal = make_search(
        slow_project, ScriptedProposer([]), Objective("test_slow.py::test_speed", "mean", False)
    )
    with pytest.raises(BaselineError, match=r"test_correct\[7\]: failed"):
        search.measure_baseline()
    assert journal.nodes == []


def test_baseline_without_its_metric_names_what_was_recorded(slow_project) -> None:
    search, _ = make_search(
        slow_project, ScriptedProposer([]),
        Objective("test_slow.py::test_speed", "accuracy", True),
    )
    with pytest.raises(BaselineError) as info:
        search.measure_baseline()
    message = str(info.value)
    assert "test_slow.py::test_speed: metric 'accuracy' is missing" in message
    assert "benchmark stats (" in message


def test_journal_round_trips(tmp_path: Path) -> None:
    journal = journal_with([("draft", GOOD, 0), ("improve", BUGGY, 1)])
    journal.nodes[1].usage.input_tokens = 12
    journal.save(tmp_path / "journal.json")
    again = Journal.load(tmp_path / "journal.json")
    assert again.to_dict() == journal.to_dict()
    assert [n.id for n in again.path_to(2)] == [0, 1, 2]


def test_guards_the_original_skips_are_left_out(slow_project) -> None:
    slow_project.makepyfile(
        test_slow=(slow_project.path / "test_slow.py").read_text()
        + "\n\n@pytest.mark.skip(reason='needs a GPU')\ndef test_gpu_only():\n    assert False\n"
    )
    search, _ = make_search(
        slow_project, ScriptedProposer([]), Objective("test_slow.py::test_speed", "mean", False)
    )
    search.context.study.guard_nodeids.append("test_slow.py::test_gpu_only")
    root = search.measure_baseline()
    assert root.status == GOOD
    assert search.skipped_guards == ["test_slow.py::test_gpu_only"]
    assert "test_slow.py::test_gpu_only" not in search.guards


def test_a_candidate_printing_an_output_metric_is_tampered() -> None:
    from pytest_aide.search.loop import forges_output_metric

    original = "def run():\n    return 0.5\n"
    cheat = "def run():\n    print('accuracy: 1.0')\n    return 0.5\n"
    assert "accuracy" in forges_output_metric(cheat, original, ["accuracy"])
    assert forges_output_metric(original + "# tweak\n", original, ["accuracy"]) == ""
    assert forges_output_metric(cheat, original, []) == ""


def test_the_search_stops_early_when_the_proposer_is_exhausted(slow_project) -> None:
    fast = (slow_project.path / "slow.py").read_text().replace("CHUNK = 2", "CHUNK = 16")
    search, journal = make_search(
        slow_project, ScriptedProposer([fast]), Objective("test_slow.py::test_speed", "mean", False)
    )
    search.measure_baseline()
    search.run(10)
    assert len(journal.nodes) == 2
    assert search.stop_reason == "stopped early: nothing left to try"
    assert search.exhausted


class SpeedScriptedEvaluator(Evaluator):
    """A real evaluator whose machine-speed probes are replaced by ``speeds``, in order."""

    speeds: list[list[float]]

    def evaluate(self, source, workdir, nodeids=None, slot=None, **options):
        evaluation = super().evaluate(source, workdir, nodeids, slot, **options)
        evaluation.speed = self.speeds.pop(0) if self.speeds else [1.0, 1.0]
        return evaluation


def scripted_search(slow_project, evaluator_class: type[Evaluator], script: str,
                    values: list[list[float]], chunk: int = 3):
    """A search of one candidate (CHUNK 2 -> ``chunk``), judged by a real evaluator of
    ``evaluator_class`` whose attribute ``script`` replays ``values``."""
    original = (slow_project.path / "slow.py").read_text()
    proposer = ScriptedProposer([original.replace("CHUNK = 2", f"CHUNK = {chunk}")])
    search, journal = make_search(
        slow_project, proposer, Objective("test_slow.py::test_speed", "mean", False)
    )
    evaluator = evaluator_class(search.context.study, slow_project.path)
    setattr(evaluator, script, values)
    search.context.executor = LocalExecutor(evaluator)
    search.measure_baseline()
    search.run(1)
    return journal


def speed_search(slow_project, speeds: list[list[float]], chunk: int = 3):
    """Scripted machine-speed probes (by default a third fewer sleeps)."""
    return scripted_search(slow_project, SpeedScriptedEvaluator, "speeds", speeds, chunk)


def test_a_candidate_measured_at_another_machine_speed_is_measured_again(slow_project) -> None:
    # baseline while the CPU was 70% slower; candidate at full speed (so its win says
    # nothing); then both again, side by side
    journal = speed_search(slow_project, [[1.7, 1.7], [1.0, 1.0], [1.0, 1.0], [1.02, 0.98]])
    candidate = journal.nodes[1]
    assert candidate.remeasured == 1 and journal.best_id == 1
    assert candidate.speed == [1.02, 0.98]  # it keeps the measurement that was compared
    nodes = slow_project.path / ".aide" / "r" / "nodes"
    assert (nodes / "0001-again1-best").is_dir() and (nodes / "0001-again1-candidate").is_dir()


def test_a_change_too_large_for_the_speed_change_to_explain_is_compared_as_it_is(
    slow_project,
) -> None:
    # CHUNK 16: an eighth of the sleeps, far more than a 70% slower CPU could explain
    journal = speed_search(slow_project, [[1.0, 1.0], [1.7, 1.7]], chunk=16)
    assert journal.nodes[1].remeasured == 0 and journal.best_id == 1, (
        journal.nodes[1].status, journal.nodes[1].error, journal.nodes[0].metrics,
        journal.nodes[1].metrics)
    assert not list((slow_project.path / ".aide" / "r" / "nodes").glob("*again*"))


def test_a_candidate_never_measured_at_the_best_speed_is_not_taken(slow_project) -> None:
    attempts = 1 + MAX_REMEASURES
    # the best always measured while the CPU was 70% slower, so that the candidate's win
    # never says anything: (best, candidate) at first and in odd pairs, the other way round
    # in even ones
    best_first, candidate_first = [[1.7, 1.7], [1.0, 1.0]], [[1.0, 1.0], [1.7, 1.7]]
    journal = speed_search(
        slow_project, best_first + (best_first + candidate_first) * (MAX_REMEASURES // 2))
    candidate = journal.nodes[1]
    assert candidate.status == GOOD and journal.best_id == 0
    assert "not compared: the machine's speed changed (" in candidate.note
    assert f"during each of {attempts} measurements next to the best" in candidate.note
    assert candidate.error == ""


def test_a_candidate_faster_on_a_slower_machine_is_not_measured_again(slow_project) -> None:
    journal = speed_search(slow_project, [[1.0, 1.0], [1.7, 1.7]])
    assert journal.nodes[1].remeasured == 0 and journal.best_id == 1
    assert not list((slow_project.path / ".aide" / "r" / "nodes").glob("*again*"))


def test_a_candidate_worse_on_a_machine_as_fast_is_not_measured_again(slow_project) -> None:
    # CHUNK 1: twice the sleeps, measured while the CPU ran three times as fast as for the
    # baseline (too big a change of speed for the difference to be taken as it is)
    journal = speed_search(slow_project, [[3.0, 3.0], [1.0, 1.0]], chunk=1)
    assert journal.nodes[1].remeasured == 0 and journal.best_id == 0
    assert not list((slow_project.path / ".aide" / "r" / "nodes").glob("*again*"))


class SampleScriptedEvaluator(Evaluator):
    """A real evaluator whose timed test's rounds are replaced by ``rounds``, in order."""

    rounds: list[list[float]]

    def evaluate(self, source, workdir, nodeids=None, slot=None, **options):
        evaluation = super().evaluate(source, workdir, nodeids, slot, **options)
        measurement = evaluation.tests["test_slow.py::test_speed"].measurement
        measurement.samples = self.rounds.pop(0)
        measurement.benchmark["mean"] = sum(measurement.samples) / len(measurement.samples)
        evaluation.speed = [1.0, 1.0]
        return evaluation


BASELINE_ROUNDS = [1.0, 1.1, 0.9, 1.05, 0.95, 1.0, 1.02, 0.98, 1.08, 0.92]
WITHIN_NOISE_ROUNDS = [0.97, 1.12, 0.88, 1.02, 0.96, 0.99, 1.0, 0.97, 1.05, 0.93]  # 1% lower
FASTER_ROUNDS = [0.7 * r for r in BASELINE_ROUNDS]


def rounds_search(slow_project, rounds: list[list[float]]):
    return scripted_search(slow_project, SampleScriptedEvaluator, "rounds", rounds)


def test_a_speedup_within_noise_gets_a_second_look_next_to_the_best(slow_project) -> None:
    # baseline; the candidate 1% faster, not credibly; then the best and the candidate again
    journal = rounds_search(slow_project, [BASELINE_ROUNDS, WITHIN_NOISE_ROUNDS,
                                           BASELINE_ROUNDS, FASTER_ROUNDS])
    candidate = journal.nodes[1]
    assert journal.best_id == 1 and candidate.remeasured == 1
    assert candidate.samples["test_slow.py::test_speed"] == FASTER_ROUNDS
    from pytest_aide.report.formatting import node_note

    assert node_note(candidate) == ("measured again next to the best: its improvement was "
                                    "within noise at first")


def test_a_candidate_slower_on_average_but_faster_in_its_typical_round_gets_a_second_look(
    slow_project,
) -> None:
    # 5% faster in every round but one, which an interrupt made twice as slow: the mean
    # says slower (1.06 against 1.0), the rounds say faster
    outlier = [0.95 * r for r in BASELINE_ROUNDS[:-1]] + [2.0]
    journal = rounds_search(slow_project, [BASELINE_ROUNDS, outlier,
                                           BASELINE_ROUNDS, FASTER_ROUNDS])
    candidate = journal.nodes[1]
    assert journal.best_id == 1 and candidate.remeasured == 1
    from pytest_aide.report.formatting import node_note

    assert node_note(candidate) == ("measured again next to the best: its typical round was "
                                    "faster at first")


def test_a_second_look_that_is_within_noise_again_keeps_the_best(slow_project) -> None:
    journal = rounds_search(slow_project, [BASELINE_ROUNDS, WITHIN_NOISE_ROUNDS,
                                           BASELINE_ROUNDS, WITHIN_NOISE_ROUNDS])
    candidate = journal.nodes[1]
    assert journal.best_id == 0 and candidate.status == GOOD and candidate.remeasured == 0
    assert candidate.note == ("improvement within noise; measured again next to the best: "
                              "improvement within noise")
    nodes = slow_project.path / ".aide" / "r" / "nodes"
    assert (nodes / "0001-again1-best").is_dir() and (nodes / "0001-again1-candidate").is_dir()


def test_a_candidate_not_faster_on_average_gets_no_second_look(slow_project) -> None:
    journal = rounds_search(slow_project, [BASELINE_ROUNDS, [1.01 * r for r in BASELINE_ROUNDS]])
    assert journal.best_id == 0 and journal.nodes[1].remeasured == 0
    assert not list((slow_project.path / ".aide" / "r" / "nodes").glob("*again*"))


def test_a_rewrite_that_only_renames_locals_or_adds_comments_is_not_run(slow_project) -> None:
    """A no-op rewrite costs no evaluation: it is a duplicate of what it repeats, and the
    next prompt's memory says so."""
    original = (slow_project.path / "slow.py").read_text()
    fast = original.replace("CHUNK = 2", "CHUNK = 16")
    renamed = ('"""Sums in chunks."""\n' + fast.replace("total", "acc")
               .replace("start", "first").replace("    return acc", "    # done\n    return acc"))
    renamed_and_changed = renamed.replace("time.sleep(0.0004)", "time.sleep(0.0005)")
    proposer = ScriptedProposer([fast, renamed, renamed_and_changed])
    search, journal = make_search(
        slow_project, proposer, Objective("test_slow.py::test_speed", "mean", False)
    )
    search.measure_baseline()
    search.run(3)
    noop, changed = journal.nodes[2], journal.nodes[3]
    assert noop.duplicate_of == 1 and not noop.outcomes and noop.duration == 0.0
    assert noop.error == ("candidate does what node 1 does (only comments, docstrings, "
                          "formatting or local names differ): not run")
    assert not (slow_project.path / ".aide" / "r" / "nodes" / "0002").exists()
    assert changed.duplicate_of is None and changed.outcomes  # a real change runs


def test_a_guard_that_failed_before_runs_first_and_its_failure_ends_the_evaluation(
    slow_project,
) -> None:
    """The cascade: a wrong candidate costs one guard, not the suite and the benchmark."""
    original = (slow_project.path / "slow.py").read_text()
    wrong = original.replace("total +=", "total -=")
    wrong_again = wrong.replace("CHUNK = 2", "CHUNK = 32")
    right = original.replace("CHUNK = 2", "CHUNK = 16")
    proposer = ScriptedProposer([wrong, wrong_again, right])
    search, journal = make_search(
        slow_project, proposer, Objective("test_slow.py::test_speed", "mean", False)
    )
    search.measure_baseline()
    search.run(3)
    first, second, third = journal.nodes[1:]
    # the first runs the guards in their order and stops at test_correct[7]
    assert first.outcomes["test_slow.py::test_correct[7]"] == "failed"
    assert first.outcomes["test_slow.py::test_correct[0]"] == "passed"
    assert first.outcomes["test_slow.py::test_speed"] == "not run"
    # the second runs test_correct[7] first: nothing else runs
    assert [n for n, o in second.outcomes.items() if o != "not run"] == \
        ["test_slow.py::test_correct[7]"]
    assert second.error.startswith("test_slow.py::test_correct[7]: failed")
    assert "5 more tests not run: the first failure ends a candidate's evaluation" \
        in second.error
    assert set(third.outcomes.values()) == {"passed"} and journal.best_id == 3
