"""Journals built in code for the report tests: a small but complete search tree.

Tree of :func:`single_objective_journal` (mean, lower is better):

    #0 baseline ── #1 draft ── #5 improve (tampered)
               ├── #2 draft (buggy) ── #3 debug (buggy) ── #4 debug ── #6 improve ★ ── #7 improve
"""

from __future__ import annotations

from pytest_aide.journal import BUGGY, GOOD, TAMPERED, Journal, Node, Usage

BENCH = "tests/test_k.py::test_speed"
ACCURACY = "tests/test_k.py::test_accuracy"

ORIGINAL = "def total(x):\n    return sum(range(x))\n"
BEST = "def total(x):\n    return x * (x - 1) // 2\n"
ZERO_DIV = (
    "Traceback (most recent call last):\n  File 'k.py', line 2\n"
    "ZeroDivisionError: division by zero\n"
)
ASSERTION = (
    "_____ test_ok _____\nE   assert 3 == 4\n"
    "FAILED tests/test_k.py::test_ok - AssertionError: assert 3 == 4\n"
    "===== 1 failed, 2 passed in 0.12s =====\n"
)
TAMPER = "candidate changed the measurement: benchmark results were rewritten"
#: code that tries to break out of the JSON <script> element of tree.html
BREAKOUT = "def total(x):\n    return 0  # </script><script>alert(1)</script> <!--\n"

LLM = Usage(input_tokens=1000, output_tokens=234, cost_usd=0.0012)
CONFIRMED = {"confirmed": True, "change": -0.11, "low": -0.14, "high": -0.08, "metric": "mean"}


def _node(id, parent, operator, code, status=GOOD, metrics=None, **extra) -> Node:
    fields = dict(
        id=id,
        parent=parent,
        step=id,
        operator=operator,
        plan=f"plan of #{id}: {operator}",
        code=code,
        metrics=metrics or {},
        status=status,
        started=1_700_000_000.0 + 10 * id,
        duration=2.0,
        propose_seconds=0.0 if operator == "baseline" else 1.5,
        usage=Usage() if operator == "baseline" else LLM,
        outcomes={BENCH: "passed" if status == GOOD else "failed"},
    )
    fields.update(extra)
    return Node(**fields)


def _mean(value: float) -> dict:
    return {"metrics": {BENCH: value}, "objective": -value}


def single_objective_journal() -> Journal:
    nodes = [
        _node(0, None, "baseline", ORIGINAL, **_mean(0.00125)),
        _node(1, 0, "draft", ORIGINAL + "# draft 1\n", **_mean(0.00130)),
        _node(2, 0, "draft", "def total(x):\n    return 1 / 0\n", BUGGY, error=ZERO_DIV),
        _node(
            3, 2, "debug", "def total(x):\n    return 3\n", BUGGY, error=ASSERTION, debug_depth=1
        ),
        _node(
            4, 3, "debug", ORIGINAL.replace("sum", "int(sum") + ")", debug_depth=2, **_mean(0.0012)
        ),
        _node(5, 1, "improve", BREAKOUT, TAMPERED, error=TAMPER),
        _node(6, 4, "improve", BEST, confirmed=CONFIRMED, **_mean(0.0011)),
        _node(7, 6, "improve", BEST + "# tweak\n", **_mean(0.00115)),
    ]
    return Journal(
        run_id="20240101-120000-k",
        target="src/k.py",
        module="k",
        objectives=[{"nodeid": BENCH, "metric": "mean", "maximize": False}],
        original_sha256="0" * 64,
        settings={"steps": 7, "model": "openai:gpt-test", "seed": 0},
        nodes=nodes,
        best_id=6,
        finished=True,
        outcome="completed 7 steps",
    )


def multi_objective_journal() -> Journal:
    """Two objectives: speed (lower is better) and accuracy (higher is better)."""

    def both(mean: float, accuracy: float, score: float) -> dict:
        return {"metrics": {BENCH: mean, ACCURACY: accuracy}, "objective": score}

    nodes = [
        _node(0, None, "baseline", ORIGINAL, **both(0.002, 0.90, 0.0)),
        _node(1, 0, "draft", BEST, **both(0.0015, 0.91, 0.3)),
        _node(2, 1, "improve", BEST + "# worse\n", BUGGY, error=ZERO_DIV),
        _node(3, 1, "improve", BEST + "# best\n", **both(0.001, 0.92, 0.7)),
    ]
    return Journal(
        run_id="20240102-090000-k",
        target="src/k.py",
        module="k",
        objectives=[
            {"nodeid": BENCH, "metric": "mean", "maximize": False},
            {"nodeid": ACCURACY, "metric": "accuracy", "maximize": True},
        ],
        original_sha256="0" * 64,
        settings={"steps": 3, "model": "tune"},
        nodes=nodes,
        best_id=3,
        finished=True,
    )


def failed_baseline_journal() -> Journal:
    """The original code already fails its tests: nothing to compare against."""
    journal = single_objective_journal()
    journal.nodes = [
        _node(0, None, "baseline", ORIGINAL, BUGGY, error=ASSERTION, objective=None),
    ]
    journal.best_id = None
    journal.finished = False
    journal.outcome = "the baseline fails its tests"
    return journal
