"""Does ``compare_samples`` call noise a speedup? Measured with real timings on this machine.

Each evaluation in pytest-aide runs the benchmark in a fresh pytest process, so each
measurement here is a fresh Python process that times a real function the way
pytest-benchmark does (calibrated iterations per round, ``time.perf_counter``, per-round
times divided by the iterations). Then, side by side:

(a) identical candidates: the same function measured in two separate processes, as two
    evaluations would. How often is the candidate called "better"?
(b) a real 10% speedup: a function doing 10% less work (the true ratio is checked by a long
    interleaved measurement). How often is it detected?

for ``compare_samples`` (rank test + Hodges-Lehmann interval + min_effect) and for the naive
rule "candidate mean < reference mean". Then (c, d) the interleaved confirmation alone and
(e, f) the whole of what pytest-aide does: the search's screen, then the confirmation. Each
process also probes the machine's speed before and after measuring (``speed.probe``, as
the worker does), and (c)-(f) measure a pair again when the probes disagree, as pytest-aide
does (``speed.comparable``): the 2-core VM this was written on slows one of its CPUs by ~70% for
seconds at a time, and a pair measured across such a change compares nothing. Every check
that bears on speed is on, as in an evaluation: each process also times the function on 12
fresh inputs after its rounds (``fresh.time_fresh``, as the worker does), and a speedup the
screen or the confirmation takes must hold there too (``judge.fresh_shortfall``, and the
confirmation's own ``confirm._held_on_fresh_inputs``).

Run on a quiet machine: ``python benchmarks/bench_noise.py --trials 30 --confirm-trials 15
--pipeline-trials 100`` (about 10 minutes).
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import os
import pickle
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

WORK = 2000  # loop iterations of the reference function
#: The benchmark's input, and the call as the baseline records it (fresh inputs are made
#: from it: the same length and range, new values).
VALUES = list(range(WORK))
RECORDED = base64.b64encode(pickle.dumps(((VALUES,), {}))).decode("ascii")


def reference_function(values: list[int]) -> int:
    total = 0
    for i in values:
        total += (i * i) % 7
    return total


def faster_function(values: list[int]) -> int:
    """The same loop doing 10% less work."""
    total = 0
    for i in values[: len(values) * 9 // 10]:
        total += (i * i) % 7
    return total


def slightly_faster_function(values: list[int]) -> int:
    """The same loop doing 5% less work: what mature code usually offers."""
    total = 0
    for i in values[: len(values) * 95 // 100]:
        total += (i * i) % 7
    return total


def much_faster_function(values: list[int]) -> int:
    """The same loop doing 40% less work: the early look should decide it in 4 rounds."""
    total = 0
    for i in values[: len(values) * 6 // 10]:
        total += (i * i) % 7
    return total


FUNCTIONS: dict[str, Callable[[list[int]], int]] = {
    "reference": reference_function,
    "faster": faster_function,
    "slightly_faster": slightly_faster_function,
    "much_faster": much_faster_function,
}


def measure(function: Callable[[], object], max_time: float, min_rounds: int = 5) -> list[float]:
    """Per-round times per call, as pytest-benchmark's ``BenchmarkFixture._raw`` records them
    (default settings: min_time 5us, calibration_precision 10, no warmup)."""
    timer = time.perf_counter
    precision = min(_timer_precision(timer) for _ in range(3))
    min_time = max(0.000005, precision * 10)

    def run(loops: range) -> float:
        start = timer()
        for _ in loops:
            function()
        return timer() - start

    loops = 1
    while True:  # pytest-benchmark's _calibrate_timer
        duration = run(range(loops))
        if duration >= min_time:
            break
        if duration >= min_time * 5 / 10:
            loops = math.ceil(min_time * loops / duration)
            if loops == 1:
                break
        else:
            loops *= 10
    rounds = max(math.ceil(max_time / duration), min_rounds)
    loops_range = range(loops)
    return [run(loops_range) / loops for _ in range(rounds)]


def _timer_precision(timer: Callable[[], float]) -> float:
    t1 = timer()
    t2 = timer()
    while t2 == t1:
        t2 = timer()
    return t2 - t1


#: The sandbox each fresh process runs in (--sandbox; main() sets it), as evaluations do.
SANDBOX: list = []


def measure_in_fresh_process(name: str, max_time: float) -> dict[str, list[float]]:
    """{"samples": per-round times, "speed": machine speed probes before and after,
    "fresh": seconds per fresh input}."""
    command = [sys.executable, __file__, "--child", name, "--max-time", str(max_time)]
    if SANDBOX:
        import tempfile
        from pathlib import Path

        from pytest_aide.evaluation.sandbox import python_paths

        here = Path(__file__).resolve().parent
        with tempfile.TemporaryDirectory() as scratch:
            command = SANDBOX[0].command(command, workdir=Path(scratch), cwd=here,
                                         visible=[here, *python_paths()])
            output = subprocess.run(command, check=True, capture_output=True, text=True,
                                    cwd=here).stdout
        return json.loads(output)
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output)


def child(name: str, max_time: float) -> None:
    from pytest_aide.evaluation.speed import probe

    before = probe()
    function = FUNCTIONS[name]
    samples = measure(lambda: function(VALUES), max_time)
    after = probe()
    print(json.dumps({"samples": samples, "speed": [before, after],
                      "fresh": time_fresh_inputs(name)}))


def time_fresh_inputs(name: str) -> list[float]:
    """Seconds per fresh input, as the worker times the benchmarked call after the tests."""
    from pytest_aide.guards.fresh import time_fresh

    module = sys.modules[__name__]
    return time_fresh(module, {"name": FUNCTIONS[name].__name__, "args": RECORDED}).times


@dataclass
class Pairs:
    """Counts of pairs measured and of pairs measured again (the machine's speed changed)."""

    measured: int = 0
    again: int = 0

    def pair(self, candidate: str, index: int, max_time: float,
             tries: int = 1) -> tuple[dict[str, list[float]], dict[str, list[float]]] | None:
        """(reference, candidate) measurements, each from a fresh process, from the first of at
        most ``tries`` pairs that may be compared by the search's rule (``speed.comparable``
        on the means; None: none could). Which runs first alternates with ``index`` so that
        slow drift favours neither; they are told apart by position, not name, since in the
        identical case both are "reference"."""
        from pytest_aide.evaluation.speed import comparable

        for attempt in range(tries):
            self.measured += 1
            self.again += attempt > 0
            if index % 2:
                cand = measure_in_fresh_process(candidate, max_time)
                ref = measure_in_fresh_process("reference", max_time)
            else:
                ref = measure_in_fresh_process("reference", max_time)
                cand = measure_in_fresh_process(candidate, max_time)
            before, after = _mean(ref["samples"]), _mean(cand["samples"])
            if tries == 1 or comparable(ref["speed"], cand["speed"], [after / before - 1],
                                        after < before):
                return ref, cand
        return None


def run_trials(
    candidate: str, trials: int, max_time: float, alpha: float, min_effect: float
) -> dict[str, object]:
    from pytest_aide.search.noise import compare_samples

    ours = rank_only = naive = 0
    changes = []
    pairs = Pairs()
    for trial in range(trials):
        measured = pairs.pair(candidate, trial, max_time)
        assert measured is not None  # one try: always compared
        ref, cand = measured[0]["samples"], measured[1]["samples"]
        verdict = compare_samples(ref, cand, maximize=False, alpha=alpha, min_effect=min_effect)
        ours += verdict.better
        rank_only += compare_samples(ref, cand, maximize=False, alpha=alpha, min_effect=0.0).better
        naive += sum(cand) / len(cand) < sum(ref) / len(ref)
        changes.append(verdict.change)
    return {"ours": ours / trials, "rank": rank_only / trials, "naive": naive / trials,
            "changes": changes, "n": len(ref)}


def confirm_sequentially(pairs: Pairs, candidate: str, most: int, max_time: float,
                         alpha: float, min_effect: float) -> tuple[bool, bool, int]:
    """pytest-aide's confirmation, by its own state machine (``judge.InterleavedConfirmation``,
    which ``confirm._confirm_timed`` drives): interleaved rounds, added until it decides (at
    most ``most``), a round whose speed probes disagree measured again, the speedup then
    held to the fresh inputs every process timed. Returns (confirmed, means-of-all-rounds
    says faster, rounds used)."""
    from pytest_aide.search.confirm import _held_on_fresh_inputs, _timed_confirmation
    from pytest_aide.search.judge import InterleavedConfirmation, RoundTaken

    machine = InterleavedConfirmation(["t"], most, alpha=alpha, min_effect=min_effect)
    naive: list[tuple[list[float], list[float]]] = []  # every pair: the means' view
    fresh: dict[str, dict[str, list[float]]] = {"baseline": {"t": []}, "best": {"t": []}}
    while not machine.done:
        pairs.measured += 1
        if machine.kept % 2:
            cand = measure_in_fresh_process(candidate, max_time)
            ref = measure_in_fresh_process("reference", max_time)
        else:
            ref = measure_in_fresh_process("reference", max_time)
            cand = measure_in_fresh_process(candidate, max_time)
        naive.append((ref["samples"], cand["samples"]))
        fresh["baseline"]["t"].extend(ref["fresh"])
        fresh["best"]["t"].extend(cand["fresh"])
        taken = machine.add({"t": ref["samples"]}, {"t": cand["samples"]},
                            (ref["speed"], cand["speed"]))
        pairs.again += taken is RoundTaken.DISCARDED
    faster = sum(_mean(c) for _, c in naive) < sum(_mean(r) for r, _ in naive)
    confirmation = _held_on_fresh_inputs(_timed_confirmation(machine), fresh)
    return confirmation.confirmed, faster, machine.kept


def run_interleaved(
    candidate: str, trials: int, rounds: int, max_time: float, alpha: float, min_effect: float
) -> tuple[float, float, float, float]:
    """(share confirmed, share whose means say faster, median rounds kept, share of pairs
    measured again)."""
    import statistics

    better = naive = 0
    used = []
    pairs = Pairs()
    for _ in range(trials):
        confirmed, faster_means, count = confirm_sequentially(pairs, candidate, rounds,
                                                              max_time, alpha, min_effect)
        better += confirmed
        naive += faster_means
        used.append(count)
    return (better / trials, naive / trials, statistics.median(used),
            pairs.again / pairs.measured)


def screen(ref: list[float], cand: list[float], alpha: float) -> str:
    """The search's screen on a timed metric, by its own rule (``judge.screen_samples``):
    "better", "second look" (faster on average, not credibly; or no faster on average,
    though its typical round is) or "no"."""
    from pytest_aide.search.judge import Outcome, screen_samples

    outcome = screen_samples(ref, cand, _mean(cand) < _mean(ref), alpha=alpha)
    if outcome is Outcome.BETTER:
        return "better"
    return "second look" if outcome.second_look else "no"


@dataclass
class Pipeline:
    """What became of each trial of the whole pipeline."""

    accepted: int = 0
    naive: int = 0  # the first comparable pair's means say faster
    second_looks: int = 0
    lost_at_screen: int = 0
    #: Better at the screen, but not on the fresh inputs both processes timed.
    lost_on_fresh_inputs: int = 0
    lost_at_confirmation: int = 0
    not_comparable: int = 0


def run_pipeline(
    candidate: str, trials: int, rounds: int, max_time: float, alpha: float, min_effect: float
) -> tuple[Pipeline, float]:
    """What pytest-aide does end to end: the screen during the search (one pair, and a
    second look at another pair when the first may hide a speedup, as
    ``search/screen.py`` does; a speedup it takes must hold on the pair's fresh inputs),
    then, only for a candidate it passes, the interleaved
    confirmation before anything is written. Returns the counts and the share of pairs
    measured again."""
    from pytest_aide.search.judge import SCREEN_FRESH_NOISE, fresh_shortfall
    from pytest_aide.search.screen import MAX_REMEASURES

    result = Pipeline()
    pairs = Pairs()
    for trial in range(trials):
        measured = pairs.pair(candidate, trial, max_time, tries=1 + MAX_REMEASURES)
        if measured is None:
            result.not_comparable += 1
            continue
        result.naive += _mean(measured[1]["samples"]) < _mean(measured[0]["samples"])
        verdict = screen(measured[0]["samples"], measured[1]["samples"], alpha)
        if verdict == "second look":
            result.second_looks += 1
            measured = pairs.pair(candidate, trial + 1, max_time, tries=MAX_REMEASURES)
            verdict = screen(measured[0]["samples"], measured[1]["samples"], alpha) \
                if measured is not None else "no"
        if verdict != "better" or measured is None:
            result.lost_at_screen += 1
            continue
        ref, cand = measured
        claimed = _mean(cand["samples"]) / _mean(ref["samples"]) - 1
        if fresh_shortfall(claimed, ref["fresh"], cand["fresh"], SCREEN_FRESH_NOISE):
            result.lost_on_fresh_inputs += 1
            continue
        if confirm_sequentially(pairs, candidate, rounds, max_time, alpha, min_effect)[0]:
            result.accepted += 1
        else:
            result.lost_at_confirmation += 1
    return result, pairs.again / pairs.measured


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def true_ratio(seconds: float) -> float:
    """The faster function's true time ratio: many interleaved in-process measurements."""
    import statistics

    ratios = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        ref = statistics.median(measure(lambda: reference_function(VALUES), 0.02))
        fast = statistics.median(measure(lambda: faster_function(VALUES), 0.02))
        ratios.append(fast / ref)
    return statistics.median(ratios)


def spread(changes: list[float]) -> str:
    import statistics

    ordered = sorted(changes)
    q = statistics.quantiles(ordered, n=20)
    return f"median {statistics.median(ordered):+.1%}, 5-95% [{q[0]:+.1%}, {q[-1]:+.1%}]"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child")
    parser.add_argument("--max-time", type=float, default=0.05)
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--confirm-trials", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=20, help="most confirmation rounds")
    parser.add_argument("--pipeline-trials", type=int, default=100)
    parser.add_argument("--five-trials", type=int, default=100,
                        help="the whole pipeline for a 5%% speedup (0: none)")
    parser.add_argument("--large-trials", type=int, default=20,
                        help="confirmations of a 40%% speedup, for its rounds (0: none)")
    parser.add_argument("--alpha", type=float, default=None)
    parser.add_argument("--min-effect", type=float, default=None)
    parser.add_argument("--sandbox", choices=("auto", "bwrap", "off"), default="auto",
                        help="run each fresh process in the evaluations' sandbox (default auto)")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.max_time)
        return
    from pytest_aide.evaluation.sandbox import choose

    sandbox = choose(args.sandbox).sandbox
    SANDBOX[:] = [sandbox] if sandbox is not None else []
    import inspect

    from pytest_aide.search.noise import CONFIRM_MIN_EFFECT, compare_samples

    defaults = inspect.signature(compare_samples).parameters
    alpha = args.alpha if args.alpha is not None else defaults["alpha"].default
    min_effect = args.min_effect if args.min_effect is not None else defaults["min_effect"].default
    # the confirmation's own floor (noise.CONFIRM_MIN_EFFECT) unless --min-effect says
    confirm_floor = args.min_effect if args.min_effect is not None else CONFIRM_MIN_EFFECT
    started = time.perf_counter()
    print(f"cpus={os.cpu_count()} python={sys.version.split()[0]} alpha={alpha} "
          f"min_effect={min_effect} (one pair), {confirm_floor} (confirmation) "
          f"max_time={args.max_time}s per measurement; "
          f"{'each process in the bwrap sandbox' if SANDBOX else 'not sandboxed'}")
    ratio = true_ratio(8.0)
    print(f"true time ratio faster/reference (long interleaved measurement): {ratio:.3f}")
    same = run_trials("reference", args.trials, args.max_time, alpha, min_effect)
    fast = run_trials("faster", args.trials, args.max_time, alpha, min_effect)

    def confirmations(candidate: str, trials: int) -> tuple[float, float, float, float]:
        return run_interleaved(candidate, trials, args.rounds, args.max_time, alpha,
                               confirm_floor)

    def pipeline(candidate: str, trials: int) -> tuple[Pipeline, float]:
        return run_pipeline(candidate, trials, args.rounds, args.max_time, alpha,
                            confirm_floor)

    same_c = confirmations("reference", args.confirm_trials)
    fast_c = confirmations("faster", args.confirm_trials)
    large_c = confirmations("much_faster", args.large_trials) if args.large_trials else None
    same_p = pipeline("reference", args.pipeline_trials)
    fast_p = pipeline("faster", args.pipeline_trials)
    five_p = pipeline("slightly_faster", args.five_trials) if args.five_trials else None
    print(f"rounds per measurement: {same['n']}; one fresh process per measurement")
    print(f"{'case':<44} {'ours':>7} {'rank only':>10} {'means':>7}")
    rows = [
        (f"(a) identical, one pair: called better (n={args.trials})", same),
        (f"(b) 10% faster, one pair: detected (n={args.trials})", fast),
    ]
    for label, result in rows:
        print(f"{label:<44} {result['ours']:>7.1%} {result['rank']:>10.1%} {result['naive']:>7.1%}")
    label = f"(confirmation alone, n={args.confirm_trials})"
    print(f"{'(c) identical confirmed ' + label:<44} {same_c[0]:>7.1%} {'':>10} {same_c[1]:>7.1%}"
          f"   median rounds {same_c[2]:.1f}, pairs measured again {same_c[3]:.0%}")
    print(f"{'(d) 10% faster confirmed ' + label:<44} {fast_c[0]:>7.1%} {'':>10} "
          f"{fast_c[1]:>7.1%}   median rounds {fast_c[2]:.1f}, pairs measured again "
          f"{fast_c[3]:.0%}")
    if large_c is not None:
        label = f"(confirmation alone, n={args.large_trials})"
        print(f"{'(g) 40% faster confirmed ' + label:<44} {large_c[0]:>7.1%} {'':>10} "
              f"{large_c[1]:>7.1%}   median rounds {large_c[2]:.1f} (goal <= 4), pairs "
              f"measured again {large_c[3]:.0%}")
    label = f"(screen + confirmation, n={args.pipeline_trials})"
    pipelines = [("(e) identical accepted ", same_p, args.pipeline_trials),
                 ("(f) 10% faster accepted ", fast_p, args.pipeline_trials)]
    if five_p is not None:
        pipelines.append(("(h) 5% faster accepted ", five_p, args.five_trials))
    for name, (counts, again), n in pipelines:
        print(f"{name + label:<44} {counts.accepted / n:>7.1%} {'':>10} {counts.naive / n:>7.1%}"
              f"   pairs measured again {again:.0%}; second looks {counts.second_looks}, "
              f"lost at the screen {counts.lost_at_screen}, on fresh inputs "
              f"{counts.lost_on_fresh_inputs}, at the confirmation "
              f"{counts.lost_at_confirmation}, never comparable {counts.not_comparable}, "
              f"passed the screen {n - counts.lost_at_screen - counts.not_comparable}")
    print("goals: (e) 0% accepted and passing the screen <= 5%; (f) at least 98%; "
          "(h) at least 90%; (g) median rounds <= 4")
    print(f"estimated change, identical: {spread(same['changes'])}")
    print(f"estimated change, faster:    {spread(fast['changes'])}")
    print(f"total time {time.perf_counter() - started:.0f}s")


if __name__ == "__main__":
    main()
